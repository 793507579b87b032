"""MIDI re-voicing: basic-pitch (ONNX) transcription, FluidSynth rendering, feel, clear failures."""

import shutil

import librosa
import numpy as np
import pytest
from conftest import SR, midi_hz

from covermill import instruments
from covermill.errors import BackendUnavailableError, ParameterError
from covermill.instruments import midi as M

pretty_midi = pytest.importorskip("pretty_midi")
pytest.importorskip("onnxruntime")
try:  # through covermill, which keeps TensorFlow (covermill[magenta]) out of basic_pitch's import
    M._import_basic_pitch()
except BackendUnavailableError as exc:
    pytest.skip(str(exc), allow_module_level=True)
needs_fluidsynth = pytest.mark.skipif(
    shutil.which("fluidsynth") is None or not M.DEFAULT_SOUNDFONT.is_file(),
    reason="needs Debian fluidsynth + fluid-soundfont-gm (make sysdeps)")


def chord_midi(chords, *, program=0, seconds=1.0, start=0.1):
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=program)
    for i, chord in enumerate(chords):
        for p in chord:
            inst.notes.append(pretty_midi.Note(velocity=90, pitch=p, start=start + i * seconds,
                                               end=start + (i + 0.9) * seconds))
    pm.instruments.append(inst)
    return pm


def additive_chords(chords, *, seconds=1.0, sr=SR):
    """Chords of 4-harmonic tones (not FluidSynth), 10 ms fades; shape (2, n)."""
    t = np.arange(int(seconds * sr)) / sr
    env = np.minimum(1.0, np.minimum(t / 0.01, (seconds - t) / 0.05))
    out = []
    for chord in chords:
        x = sum(np.sin(2 * np.pi * k * midi_hz(p) * t) / k ** 1.5 for p in chord for k in range(1, 5))
        out.append(0.1 * env * x)
    y = np.concatenate(out).astype(np.float32)
    return np.vstack([y, y])


PROGRESSION = [(60, 64, 67), (65, 69, 72), (67, 71, 74), (57, 60, 64)]  # C F G Am


@needs_fluidsynth
def test_fluidsynth_triad_transcribes_back_to_c_e_g():
    audio = M.render_midi(chord_midi([(60, 64, 67)], seconds=1.5), sr=SR)
    assert audio.shape[0] == 2 and audio.dtype == np.float32 and np.max(np.abs(audio)) > 0.01
    notes = M.transcribe(audio, sr=SR)
    long_notes = {n.pitch for n in notes if n.end - n.start > 0.5}
    assert {60, 64, 67} <= long_notes  # (basic-pitch may add the root's octave, 72: still a C)
    assert {n.pitch % 12 for n in notes} == {0, 4, 7}  # C, E, G and no other pitch class, even in short notes


def segment_chroma(y, *, sr, n_segments):
    c = librosa.feature.chroma_cqt(y=np.asarray(y).mean(axis=0), sr=sr, hop_length=1024)
    return np.stack([seg.mean(axis=1) for seg in np.array_split(c, n_segments, axis=1)])


@pytest.fixture(scope="module")
def piano():
    x = additive_chords(PROGRESSION)
    inst = instruments.get_midi("Acoustic Grand Piano")
    return x, inst, inst.revoice(x, sr=SR)


@needs_fluidsynth
def test_revoiced_chroma_matches_the_input(piano):
    x, inst, y = piano
    assert y.shape == (1, x.shape[1]) and y.dtype == np.float32 and np.all(np.isfinite(y))
    cx, cy = segment_chroma(x, sr=SR, n_segments=4), segment_chroma(y, sr=SR, n_segments=4)
    cos = np.sum(cx * cy, axis=1) / (np.linalg.norm(cx, axis=1) * np.linalg.norm(cy, axis=1))
    assert np.all(cos > 0.8), cos
    # every chord's three pitch classes are the three strongest in the piano's chroma
    for chord, c in zip(PROGRESSION, cy, strict=True):
        assert set(np.argsort(c)[-3:]) == {p % 12 for p in chord}
    # the played notes are kept for OUT/midi/<stem>.mid, with the program
    assert inst.midi_.instruments[0].program == 0 and len(inst.midi_.instruments[0].notes) >= 12


@needs_fluidsynth
def test_time_ratio_and_semitones_move_notes_not_audio(piano):
    x, _, _ = piano
    inst = instruments.get_midi(0, octave_shift=-1)
    y = inst.revoice(x, sr=SR, time_ratio=1.25, semitones=2)
    assert abs(y.shape[1] - round(x.shape[1] / 1.25)) <= 1
    source = {(round(n.start, 2), n.pitch) for n in inst.notes_}
    played = {(round(n.start * 1.25, 2), n.pitch + 10) for n in inst.midi_.instruments[0].notes}
    assert len(source & played) >= 0.9 * len(source)
    cx = segment_chroma(x, sr=SR, n_segments=4)
    cy = segment_chroma(y, sr=SR, n_segments=4)
    cos = np.sum(np.roll(cx, 2, axis=1) * cy, axis=1) / (np.linalg.norm(cx, axis=1) * np.linalg.norm(cy, axis=1))
    assert np.all(cos > 0.8), cos


def test_feel_quantize_swing_velocity():
    beats = np.arange(0.0, 5.0, 0.5)  # 120 BPM
    notes = [pretty_midi.Note(velocity=100, pitch=60, start=s, end=s + 0.1) for s in (1.0 + 0.11, 1.25, 2.0)]
    out = M.apply_feel(notes, beats=beats, quantize=1.0, swing=0.6, velocity_scale=0.5)
    # 1.11 snaps to the 16th at 1.125 (beat position 0.25), which swing 0.6 moves to 0.3 (1.15);
    # the off-beat 8th (0.5) moves to 0.6 of the beat; the downbeat stays
    assert [round(n.start, 3) for n in out] == [1.15, 1.3, 2.0]
    assert [round(n.end - n.start, 3) for n in out] == [0.1] * 3 and all(n.velocity == 50 for n in out)
    half = M.apply_feel(notes[:1], beats=beats, quantize=0.5)
    assert half[0].start == pytest.approx(1.1175)


@pytest.mark.parametrize(("program", "number"), [("Acoustic Grand Piano", 0), ("acoustic_grand_piano", 0),
                                                 ("Vibraphone", 11), (33, 33)])
def test_program_names_and_numbers(program, number):
    assert M.program_number(program) == number


@pytest.mark.parametrize(("program", "message"), [
    ("Kazoo Deluxe", r"unknown General MIDI program 'Kazoo Deluxe'"),
    ("Acoustic Grand Pian", r"did you mean 'Acoustic Grand Piano'"),
    (128, r"0-127"),
])
def test_unknown_program_is_one_clear_line(program, message):
    with pytest.raises(ParameterError, match=message) as info:
        instruments.get_midi(program).check()
    assert "\n" not in str(info.value)


def test_missing_soundfont_is_one_clear_line(tmp_path):
    inst = instruments.get_midi("Acoustic Grand Piano", soundfont=tmp_path / "nope.sf2")
    with pytest.raises(BackendUnavailableError, match=r"soundfont .*nope.sf2 not found; check the path"):
        inst.revoice(additive_chords(PROGRESSION[:1]), sr=SR)
    bad = tmp_path / "bad.sf2"
    bad.write_bytes(b"not a soundfont at all")
    with pytest.raises(ParameterError, match="is not a SoundFont 2"):
        instruments.get_midi(0, soundfont=bad).check()


@needs_fluidsynth
@pytest.mark.parametrize("kind", ["silence", "noise"])
def test_stem_without_notes_is_one_clear_line(kind, rng):
    y = np.zeros((2, 2 * SR), np.float32) if kind == "silence" else (1e-4 * rng.standard_normal((2, 2 * SR)))
    inst = instruments.get_midi("Acoustic Grand Piano")
    with pytest.raises(M.NoNotesError, match="no notes found to re-voice as MIDI") as info:
        inst.revoice(y.astype(np.float32), sr=SR)
    assert "\n" not in str(info.value)
    assert inst.midi_.instruments[0].notes == []


@needs_fluidsynth
def test_same_notes_as_basic_pitch_predict_with_its_onnx_model(tmp_path, capsys):
    """Our array windowing + onnxruntime reproduce basic-pitch's own file-based predict()."""
    import logging
    from pathlib import Path

    import soundfile as sf

    audio = M.render_midi(chord_midi([(60, 64, 67), (62, 65, 69)], seconds=1.0), sr=22050, soundfont=M.FLUIDR3)
    path = tmp_path / "chords.wav"
    sf.write(str(path), audio.T, 22050)
    logging.disable(logging.WARNING)
    try:
        import basic_pitch
        from basic_pitch.inference import predict
    finally:
        logging.disable(logging.NOTSET)
    model = Path(basic_pitch.__file__).parent / "saved_models" / "icassp_2022" / "nmp.onnx"
    _, _, events = predict(str(path), model)
    theirs = sorted((round(float(s), 2), int(p)) for s, _, p, _, _ in events)
    ours = sorted((round(n.start, 2), n.pitch) for n in M.transcribe(audio, sr=22050, min_level_db=-200))
    assert ours == theirs
