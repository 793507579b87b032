"""MIDI re-voicing through recipes and the render pipeline: OUT/midi/<stem>.mid, clear failures."""

import json
import shutil

import numpy as np
import pytest
from conftest import SR, song, write

from covermill.automation.pipeline import render
from covermill.errors import BackendUnavailableError, RecipeError
from covermill.instruments.midi import DEFAULT_SOUNDFONT, _import_basic_pitch
from covermill.recipes import load_recipe

pretty_midi = pytest.importorskip("pretty_midi")
pytest.importorskip("onnxruntime")
try:  # through covermill, which keeps TensorFlow (covermill[magenta]) out of basic_pitch's import
    _import_basic_pitch()
except BackendUnavailableError as exc:
    pytest.skip(str(exc), allow_module_level=True)
needs_fluidsynth = pytest.mark.skipif(
    shutil.which("fluidsynth") is None or not DEFAULT_SOUNDFONT.is_file(),
    reason="needs Debian fluidsynth + fluid-soundfont-gm (make sysdeps)")

MIXED = """name: mixed
stems:
  other: {revoice: {midi_program: "Electric Piano 1", swing: 0.6, quantize: 0.5}}
  vocals: {action: mute}
  bass: {revoice: {midi_program: 32}}
  drums: {revoice: {drum_kit: brush}}
tempo: {ratio: 0.9}
"""


def recipe_file(tmp_path, text, name="r.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_builtin_piano_trio_mixes_midi_and_parametric():
    r = load_recipe("pop_to_piano_trio")
    assert r.stem("other").revoice.midi_program == "Acoustic Grand Piano"
    assert r.stem("vocals").revoice.instrument == "vibraphone"
    assert r.stem("drums").action == "mute" and r.parts["drums"].style == "jazz_swing" and r.parts["drums"].kit == "jazz"
    # the piano leads, the vibes behind it: the taste model hears a jazz trio there (#16, BENCHMARKS)
    assert r.stem("other").gain_db > r.stem("vocals").gain_db
    assert r.parts["comping"].style == "trio_piano"  # the song's chords struck through each bar (recall, #15)


@pytest.mark.parametrize(("text", "message"), [
    ("name: x\nstems:\n  other:\n    revoice: {midi_program: Kazoo}\n",
     r"r.yaml:4: stems.other.revoice.midi_program: unknown General MIDI program 'Kazoo'"),
    ("name: x\nstems:\n  drums:\n    revoice: {drum_kit: bongos}\n", r"r.yaml:4: .*unknown drum kit 'bongos'"),
    ("name: x\nstems:\n  drums:\n    revoice: {drum_kit: brush, octave_shift: 1}\n", r"octave_shift does not apply"),
    ("name: x\nstems:\n  other:\n    revoice: {midi_program: 300}\n", r"r.yaml:4: .*0-127"),
    ("name: x\nstems:\n  other:\n    revoice: {midi_program: 0, instrument: flute}\n", r"exactly one of"),
    ("name: x\nstems:\n  other:\n    revoice: {instrument: flute, swing: 0.6}\n", r"swing only apply to `midi_program`"),
    ("name: x\nstems:\n  other:\n    revoice: {midi_program: 0, swing: 0.9}\n", r"swing: .*less than or equal to 0.75"),
])
def test_recipe_errors_name_file_and_line(tmp_path, text, message):
    with pytest.raises(RecipeError, match=message) as info:
        load_recipe(recipe_file(tmp_path, text))
    assert "\n" not in str(info.value)


def test_missing_soundfont_fails_before_any_work(tmp_path):
    text = "name: x\nstems:\n  other: {revoice: {midi_program: 0, soundfont: fonts/missing.sf2}}\n"
    recipe = load_recipe(recipe_file(tmp_path, text))
    with pytest.raises(BackendUnavailableError, match=r"soundfont .*fonts/missing.sf2 not found"):
        render(tmp_path / "no_song_needed.wav", recipe, tmp_path / "out", recipe_root=tmp_path)
    assert not (tmp_path / "out").exists()


@needs_fluidsynth
def test_render_writes_midi_per_stem(tmp_path):
    path = write(tmp_path / "song.wav", song(bars=3))
    recipe = load_recipe(recipe_file(tmp_path, MIXED))
    result = render(path, recipe, tmp_path / "out", recipe_root=tmp_path)
    qa = json.loads(result.qa_path.read_text())
    assert qa["outputs"]["midi"] == {"other": "midi/other.mid", "bass": "midi/bass.mid", "drums": "midi/drums.mid"}
    drums = pretty_midi.PrettyMIDI(str(tmp_path / "out" / "midi" / "drums.mid")).instruments[0]
    assert drums.is_drum and drums.program == 40 and len(drums.notes) >= 10  # conftest.song's clicks
    assert {"cover", "stems", "recipe", "report", "midi"} <= set(qa["outputs"])  # + lead sheet, cover stems, DAW
    bass = pretty_midi.PrettyMIDI(str(tmp_path / "out" / "midi" / "bass.mid"))
    assert bass.instruments[0].program == 32
    pitches = [n.pitch for n in bass.instruments[0].notes]
    # the bass line of conftest.song (roots 36, 41, 43) comes back, transposed by nothing
    assert pitches and {36, 41, 43} & set(pitches)
    assert not list(tmp_path.glob(".out.staging-*"))


@needs_fluidsynth
def test_silent_stem_is_a_warning_not_a_crash(tmp_path):
    path = write(tmp_path / "silence.wav", np.zeros((2, 3 * SR), np.float32))
    recipe = load_recipe(recipe_file(tmp_path, "name: x\nstems:\n  other: {revoice: {midi_program: 0}}\n"))
    result = render(path, recipe, tmp_path / "out")
    assert any("stem 'other': no notes found" in w for w in result.warnings)
    assert (tmp_path / "out" / "midi" / "other.mid").is_file()


@needs_fluidsynth
def test_melody_part_plays_the_cover_sheets_melody(tmp_path):
    """A `melody` part is the lead sheet's melody at the cover's tempo and key, on its own track."""
    path = write(tmp_path / "song.wav", song(bars=4))
    recipe = load_recipe(recipe_file(tmp_path, "name: x\nstems:\n  vocals: {action: keep}\nparts:\n"
                                               "  melody: {style: reggae_melodica, gain_db: -6}\n"
                                               "tempo: {ratio: 0.8}\nkey: {semitones: 2}\n"))
    result = render(path, recipe, tmp_path / "out", recipe_root=tmp_path)
    out = tmp_path / "out"
    sheet = json.loads((out / "leadsheet.json").read_text())
    assert sheet["melody"], "the test song's lead should give the sheet a melody"
    part = pretty_midi.PrettyMIDI(str(out / "midi" / "parts" / "melody.mid")).instruments[0]
    assert part.program == 22 and len(part.notes) == len(sheet["melody"])  # Harmonica, every note
    played = sorted(part.notes, key=lambda n: n.start)
    for note, sung in zip(played, sheet["melody"], strict=True):
        assert (note.pitch - sung["pitch"] - 2) % 12 == 0  # moved by the key change (and octaves)
        assert abs(note.start - sung["start_s"] / 0.8) < 0.03  # at the cover's tempo
    assert (out / "cover_stems" / "part_melody.wav").is_file() and not any("melody part" in w for w in result.warnings)
