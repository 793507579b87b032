"""Note-true re-voicing: a lead played from its cleaned notes, chords played polyphonically,
voice leading, the Voicing every render returns, and what happens without notes."""

import dataclasses
import itertools
import shutil

import librosa
import numpy as np
import pytest
from conftest import midi_hz

from covermill import instruments
from covermill.errors import ParameterError
from covermill.instruments import NoNotesError, Voicing, voice_chords
from covermill.instruments.chords import candidates, movement
from covermill.instruments.features import Controls, extract_controls, retime
from covermill.instruments.midi import DEFAULT_SOUNDFONT
from covermill.instruments.notes import (
    allocate_voices,
    expression_cents,
    lead_line,
    monophonic,
    retime_notes,
    stem_notes,
)
from covermill.instruments.parametric import BUILTIN_TIMBRES, NOTE_DIP_DB, ParametricInstrument, octave_shift
from covermill.leadsheet import Chord, Note

SR = 22050
LEAD = (62, 64, 66, 67, 69, 67, 66, 64)  # D major run, inside the tenor sax's range
NOTE_S, STEP_S, FIRST_S = 0.42, 0.5, 0.2
CLEAN = tuple(Note(FIRST_S + STEP_S * i, FIRST_S + STEP_S * i + NOTE_S, p) for i, p in enumerate(LEAD))
WRONG = 3  # the stem sings this note a semitone flat (a wrong note the cleaned list corrects)
BLEED = 55  # G3 from another stem, under the whole lead


def lead_stem(*, sr=SR, vibrato_cents=30.0):
    """A sung-like lead: the notes (one sung a semitone wrong) with 5.5 Hz vibrato, plus a steady
    bleed of another pitch at -16 dB; shape (2, n)."""
    n = int((FIRST_S + STEP_S * len(LEAD) + 0.3) * sr)
    t = np.arange(n) / sr
    f = np.zeros(n)
    for i, note in enumerate(CLEAN):
        a, b = int(note.start_s * sr), int(note.end_s * sr)
        f[a:b] = midi_hz(note.pitch - (1 if i == WRONG else 0))
    f *= 2.0 ** (vibrato_cents / 1200 * np.sin(2 * np.pi * 5.5 * t))
    env = np.convolve((f > 0).astype(float), np.ones(int(0.01 * sr)) / int(0.01 * sr), mode="same")
    phase = 2 * np.pi * np.cumsum(f) / sr
    voice = sum(np.sin(k * phase) / k for k in (1, 2, 3))
    bleed = 0.15 * np.sin(2 * np.pi * midi_hz(BLEED) * t)
    y = (0.3 * env * voice + bleed).astype(np.float32)
    return np.vstack([y, y])


def pitch_per_note(audio, notes, *, sr=SR):
    """Median MIDI pitch (pyin) in the middle of each note, and the spread (std, cents) there."""
    f0, voiced, _ = librosa.pyin(audio, fmin=80, fmax=1000, sr=sr, frame_length=2048, hop_length=256)
    times = librosa.times_like(f0, sr=sr, hop_length=256)
    out = []
    for n in notes:
        m = (times > n.start_s + 0.08) & (times < n.end_s - 0.06) & voiced
        midi = librosa.hz_to_midi(f0[m])
        out.append((float(np.median(midi)), float(np.std(midi) * 100)) if m.sum() >= 3 else (np.nan, np.nan))
    return out


def off_by(played, pitch):
    """Semitones between two MIDI pitches, folded to the nearest octave (f0 trackers jump octaves)."""
    return abs((played - pitch + 6) % 12 - 6)


@pytest.fixture(scope="module")
def stem():
    return lead_stem()


@pytest.fixture(scope="module")
def sax_notes(stem):
    return instruments.get("tenor_sax").render(stem, sr=SR, notes=CLEAN, mode="notes")


def test_notes_mode_plays_the_notes_not_the_stems_pitch(stem, sax_notes):
    assert isinstance(sax_notes, Voicing) and sax_notes.midi is None
    audio = sax_notes.audio
    assert audio.shape == (1, stem.shape[1]) and audio.dtype == np.float32 and np.all(np.isfinite(audio))
    assert sax_notes.notes == CLEAN  # already in the sax's range: played as given
    played = pitch_per_note(audio[0], CLEAN)
    errors = [off_by(p, n.pitch) for (p, _), n in zip(played, CLEAN, strict=True)]
    assert max(errors) < 0.3, errors  # every note, the wrong one included, within 30 cents
    # the expressive path follows the stem: its wrong note stays wrong
    expressive = instruments.get("tenor_sax").render(stem, sr=SR).audio
    wrong = pitch_per_note(expressive[0], CLEAN)[WRONG][0]
    assert off_by(wrong, CLEAN[WRONG].pitch - 1) < 0.3


def test_notes_mode_keeps_the_stems_vibrato_as_expression(stem):
    plain = ParametricInstrument(dataclasses.replace(BUILTIN_TIMBRES["tenor_sax"], vibrato_cents=0.0))
    on = plain.render(stem, sr=SR, notes=CLEAN, mode="notes", expression=True).audio[0]
    off = plain.render(stem, sr=SR, notes=CLEAN, mode="notes", expression=False).audio[0]
    spread_on = np.median([s for _, s in pitch_per_note(on, CLEAN)])
    spread_off = np.median([s for _, s in pitch_per_note(off, CLEAN)])
    # the stem's +-30 cent vibrato, as far as the stem's f0 track (pyin on a 25-cent grid, smoothed) holds it
    assert spread_off < 2.0 and spread_on > 4.0, (spread_on, spread_off)


def test_expression_is_limited_and_bleed_is_ignored():
    pitch = np.full(8, 60.0)
    f0 = midi_hz(60) * 2.0 ** (np.array([0, 30, -30, 0, 150, 0, 1200 + 20, 0]) / 1200)  # 150 cents: another note
    cents = expression_cents(f0, pitch)
    assert cents[4] == 0.0  # another note's pitch adds nothing
    assert np.all(np.abs(cents) <= 50.0)
    assert cents[1] == pytest.approx(30.0, abs=0.5) and cents[6] == pytest.approx(20.0, abs=0.5)  # octave-folded
    assert np.all(expression_cents(np.zeros(8), pitch) == 0.0)


def test_notes_mode_plays_only_the_notes(stem):
    rest = 4  # the note list leaves this note out: the stem's note and its bleed are not played
    audio = instruments.get("tenor_sax").render(stem, sr=SR, notes=CLEAN[:rest] + CLEAN[rest + 1 :], mode="notes").audio[0]
    rms = lambda a, b: float(np.sqrt(np.mean(audio[int(a * SR) : int(b * SR)] ** 2)))  # noqa: E731
    gap = rms(CLEAN[rest].start_s + 0.3, CLEAN[rest + 1].start_s)  # after the previous note's release
    assert gap < 0.01 * rms(CLEAN[rest - 1].start_s + 0.1, CLEAN[rest - 1].end_s - 0.05)


def test_expressive_mode_is_todays_revoice_bit_for_bit(stem):
    """``render`` in expressive mode, ``revoice``, and the re-voicing as it was written before notes existed."""
    for name, ratio, semitones in (("tenor_sax", 1.0, 0.0), ("cello", 0.8, -3.5)):
        inst = instruments.get(name)
        voicing = inst.render(stem, sr=SR, time_ratio=ratio, semitones=semitones)
        assert voicing.notes is None and voicing.midi is None
        assert np.array_equal(voicing.audio, inst.revoice(stem, sr=SR, time_ratio=ratio, semitones=semitones))
        controls = extract_controls(stem, sr=SR)  # the former revoice, step by step
        n_out = int(round(stem.shape[1] / ratio))
        if ratio != 1.0:
            controls = retime(controls, time_ratio=ratio, n_frames=int(np.ceil(n_out / SR * controls.frame_rate)) + 1)
        factor = 2.0 ** (semitones / 12.0) * octave_shift(controls.f0_hz * 2.0 ** (semitones / 12.0),
                                                           inst.timbre.range_hz)
        controls = Controls(controls.f0_hz * factor, controls.voiced, controls.loudness_db, controls.frame_rate)
        out = inst.synthesize(controls, sr=SR, n_samples=n_out)
        out *= float(np.sqrt(np.mean(stem.astype(np.float64) ** 2))) / float(np.sqrt(np.mean(out.astype(np.float64) ** 2)))
        assert np.array_equal(voicing.audio, out[None, :])


def test_notes_are_retimed_by_the_caller_and_detuned_by_the_fraction(stem):
    notes = retime_notes(CLEAN, time_ratio=0.8, semitones=2.5)
    assert notes[0].start_s == pytest.approx(CLEAN[0].start_s / 0.8) and notes[0].pitch == CLEAN[0].pitch + 2
    v = instruments.get("tenor_sax").render(stem, sr=SR, time_ratio=0.8, semitones=2.5, notes=notes, mode="notes")
    assert v.audio.shape == (1, round(stem.shape[1] / 0.8))
    played = pitch_per_note(v.audio[0], notes)
    # +2 from the notes, the remaining half semitone as detune; the run moved by an octave or not
    assert all(abs((p - n.pitch - 0.5 + 6) % 12 - 6) < 0.3 for (p, _), n in zip(played, notes, strict=True))


# ---------------------------------------------------------------- chords

CHORDS = tuple(Chord(i * 1.0, (i + 1) * 1.0, root, q) for i, (root, q) in enumerate([(0, "maj"), (9, "min")] * 2))


def test_voice_leading_moves_little_and_stays_in_range():
    low, high = 52, 76
    notes = voice_chords(CHORDS, low=low, high=high, voices=4)
    by_chord = [tuple(n.pitch for n in g) for _, g in itertools.groupby(notes, key=lambda n: n.start_s)]
    assert len(by_chord) == 4 and all(len(v) == 4 for v in by_chord)
    for chord, v in zip(CHORDS, by_chord, strict=True):
        assert all(low <= p <= high for p in v)
        assert {p % 12 for p in v} == chord.pitch_classes
    steps = [movement(a, b) for a, b in zip(by_chord[:-1], by_chord[1:], strict=True)]
    assert max(steps) <= 2  # C - Am: one voice, G to A, moves a tone
    # and no path through the candidates moves less in total
    options = [candidates(c, (low, high), 4) for c in CHORDS]
    best = min(sum(movement(a, b) for a, b in zip(p[:-1], p[1:], strict=True)) for p in itertools.product(*options))
    assert sum(steps) == best


def test_voice_chords_rests_merges_and_refuses():
    chords = (Chord(0, 1, 0), Chord(1, 2, 0), Chord(2, 3, None), Chord(3, 4, 7, "7"))
    notes = voice_chords(chords, low=48, high=72, voices=3)
    assert {n.start_s for n in notes} == {0, 3} and {n.end_s for n in notes if n.start_s == 0} == {2}
    assert voice_chords((Chord(0, 1, None),), low=48, high=72) == ()
    with pytest.raises(ParameterError, match="narrower than an octave"):
        voice_chords(chords, low=60, high=65)
    with pytest.raises(ParameterError, match="voices"):
        voice_chords(chords, low=48, high=72, voices=0)


def test_voices_and_top_line():
    notes = (Note(0, 1, 60), Note(0, 1, 64), Note(0, 1, 67), Note(1, 2, 62), Note(0.5, 1.5, 72))
    voices = allocate_voices(notes)
    assert len(voices) == 4 and sum(len(v) for v in voices) == len(notes)
    assert all(a.end_s <= b.start_s for v in voices for a, b in zip(v[:-1], v[1:], strict=False))
    assert [n.pitch for n in monophonic(notes)] == [67, 72, 62]
    assert [(n.start_s, n.end_s) for n in monophonic(notes)] == [(0, 0.5), (0.5, 1.5), (1.5, 2)]


def test_lead_line_keeps_the_notes_the_stems_f0_confirms():
    rate = 100.0
    f0 = np.zeros(300)
    f0[0:100], f0[100:200] = midi_hz(64), midi_hz(67) * 2  # the lead: E4, then G (an octave off: still G)
    bleed = Note(0.0, 3.0, 76, 120)  # a loud, high note from another stem, over everything
    notes = (Note(0.0, 1.0, 64, 60), Note(1.0, 2.0, 67, 60), Note(2.2, 2.8, 60, 90), bleed)
    assert [n.pitch for n in monophonic(notes)] == [76]  # the top line would play the bleed only
    assert [n.pitch for n in monophonic(notes, priority=lambda n: -n.pitch)] == [64, 67, 60]  # the bottom line
    line = lead_line(notes, f0, rate)
    assert [(n.pitch, n.start_s, n.end_s) for n in line] == [(64, 0.0, 1.0), (67, 1.0, 2.0)]


def chroma_share(audio, chords, *, sr=SR):
    """Per chord: the share of the (CQT) chroma energy on its pitch classes."""
    chroma = librosa.feature.chroma_cqt(y=audio, sr=sr, hop_length=512)
    times = librosa.times_like(chroma, sr=sr, hop_length=512)
    out = []
    for c in chords:
        m = (times > c.start_s + 0.1) & (times < c.end_s - 0.1)
        energy = chroma[:, m].sum(axis=1) ** 2
        out.append(float(energy[sorted(c.pitch_classes)].sum() / energy.sum()))
    return out


@pytest.mark.parametrize("name", sorted(BUILTIN_TIMBRES))
def test_chords_mode_plays_the_chords(name):
    notes = voice_chords(CHORDS, low=52, high=76, voices=4)
    n = int(4.2 * SR)
    t = np.arange(n) / SR
    stem = (0.2 * np.sin(2 * np.pi * 300 * t) * np.minimum(1, t / 0.05)).astype(np.float32)[None]  # loudness only
    v = instruments.get(name).render(stem, sr=SR, notes=notes, mode="chords")
    assert v.audio.shape == (1, n) and np.all(np.isfinite(v.audio))
    assert len(v.notes) == len(notes)
    shares = chroma_share(v.audio[0], CHORDS)
    assert min(shares) > 0.85, shares
    # a single f0 line cannot do this: the expressive path of the same stem plays one pitch class
    assert max(chroma_share(instruments.get(name).revoice(stem, sr=SR)[0], CHORDS)) < 0.85


def test_polyphony_is_level_normalised():
    inst = instruments.get("organ")
    one = inst.play_polyphonic((Note(0.1, 0.9, 60),), sr=SR, n_samples=SR)
    four = inst.play_polyphonic(tuple(Note(0.1, 0.9, p) for p in (48, 55, 60, 64)), sr=SR, n_samples=SR)
    rms = lambda x: float(np.sqrt(np.mean(x**2)))  # noqa: E731
    assert 0.6 < rms(four) / rms(one) < 1.6


def test_chords_hold_their_level_through_the_stems_dips():
    """A chord keeps its level where the stem it follows decays or dips inside the chord (a
    separated keys stem fading under bleed): its second half is as loud as its first."""
    n = int(4.0 * SR)
    t = np.arange(n) / SR
    env = np.where((t % 2.0) < 1.0, 1.0, 0.1)  # each 2-s chord: loud first second, 20 dB down in the second
    stem = (0.2 * env * np.sin(2 * np.pi * 300 * t)).astype(np.float32)[None]
    notes = voice_chords((Chord(0.0, 2.0, 0, "maj"), Chord(2.0, 4.0, 9, "min")), low=52, high=76, voices=4)
    out = instruments.get("organ").render(stem, sr=SR, notes=notes, mode="chords").audio[0]
    rms = lambda a, b: float(np.sqrt(np.mean(out[int(a * SR):int(b * SR)] ** 2)))  # noqa: E731
    for start in (0.0, 2.0):
        first, second = rms(start + 0.2, start + 0.9), rms(start + 1.1, start + 1.9)
        assert second > 0.7 * first, (start, first, second)  # followed, the second half is 20 dB (10x) down
    # a melody (notes mode) still follows the stem's fade inside a note, but by at most NOTE_DIP_DB
    line = instruments.get("organ").render(stem, sr=SR, notes=(Note(0.0, 2.0, 60),), mode="notes",
                                           expression=False).audio[0]
    ratio = np.sqrt(np.mean(line[int(1.1 * SR):int(1.9 * SR)] ** 2) / np.mean(line[int(0.2 * SR):int(0.9 * SR)] ** 2))
    assert 10 ** (-(NOTE_DIP_DB + 1.5) / 20) < ratio < 10 ** (-(NOTE_DIP_DB - 1.5) / 20), ratio  # not 20 dB


# ---------------------------------------------------------------- no notes, bad input


def test_no_notes_is_silence_and_nonoteserror():
    silence = np.zeros((2, 2 * SR), np.float32)
    assert stem_notes(silence, sr=SR) == ()
    inst = instruments.get("tenor_sax")
    for mode, notes in (("notes", None), ("chords", None), ("notes", ())):
        with pytest.raises(NoNotesError, match="no notes to play") as info:
            inst.render(silence, sr=SR, notes=notes, mode=mode)
        v = info.value.voicing
        assert v.audio.shape == (1, 2 * SR) and np.max(np.abs(v.audio)) == 0.0 and v.notes == ()
    assert np.max(np.abs(inst.render(silence, sr=SR).audio)) == 0.0  # expressive: silence, no error (as before)
    with pytest.raises(ParameterError, match="mode='sung'"):
        inst.render(silence, sr=SR, mode="sung")
    with pytest.raises(ParameterError, match="start_s < end_s"):
        inst.render(silence, sr=SR, notes=(Note(1.0, 0.5, 60),), mode="notes")


def test_stem_notes_transcribes_a_chord():
    t = np.arange(int(1.5 * SR)) / SR
    y = sum(np.sin(2 * np.pi * k * midi_hz(p) * t) / k**1.5 for p in (57, 60, 64) for k in range(1, 5))
    y = (0.1 * y * np.minimum(1, np.minimum(t / 0.01, (1.5 - t) / 0.05))).astype(np.float32)
    notes = stem_notes(y[None], sr=SR)
    assert all(isinstance(n, Note) for n in notes)
    assert {n.pitch % 12 for n in notes if n.duration_s > 0.5} == {9, 0, 4}


needs_fluidsynth = pytest.mark.skipif(shutil.which("fluidsynth") is None or not DEFAULT_SOUNDFONT.is_file(),
                                      reason="needs Debian fluidsynth + fluid-soundfont-gm (make sysdeps)")


@needs_fluidsynth
def test_midi_instrument_plays_given_notes(stem):
    inst = instruments.get_midi("Tenor Sax")
    v = inst.render(stem, sr=SR, notes=CLEAN, mode="notes")
    played = v.midi.instruments[0].notes
    assert [(n.pitch, round(n.start, 3)) for n in played] == [(n.pitch, round(n.start_s, 3)) for n in CLEAN]
    assert v.notes == CLEAN and v.midi.instruments[0].program == 66
    assert not hasattr(inst, "midi_")  # render keeps nothing on the instrument
    pitches = pitch_per_note(v.audio[0], CLEAN)
    assert max(off_by(p, n.pitch) for (p, _), n in zip(pitches, CLEAN, strict=True)) < 0.3
    chords = voice_chords(CHORDS, low=52, high=76, voices=4)
    v = instruments.get_midi("Electric Piano 1").render(stem, sr=SR, notes=chords, mode="chords")
    assert len(v.midi.instruments[0].notes) == len(chords) and min(chroma_share(v.audio[0], CHORDS)) > 0.8


@needs_fluidsynth
def test_midi_and_drums_without_notes_give_silence_and_nonoteserror():
    silence = np.zeros((2, 2 * SR), np.float32)
    for inst in (instruments.get_midi("Tenor Sax"), instruments.get_drums("jazz")):
        with pytest.raises(NoNotesError) as info:
            inst.render(silence, sr=SR)
        v = info.value.voicing
        assert np.max(np.abs(v.audio)) == 0.0 and v.notes == () and v.midi.instruments[0].notes == []
