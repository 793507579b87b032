"""The command line, end to end: real renders of synthesized songs, and every refusal."""

import json
import os

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from conftest import DEMO_SONG, SR, file_digest, song, write

from covermill.cli import main

QA_KEYS = {"song", "recipe", "duration_s", "tempo", "loudness_lufs", "cover_similarity", "stages"}
QUICK = "name: quick\nstems:\n  vocals: {revoice: {instrument: flute}}\n  drums: {gain_db: -6}\ntempo: {ratio: 0.9}\n"


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result


@pytest.fixture(scope="module")
def quick_recipe(tmp_path_factory):
    p = tmp_path_factory.mktemp("recipes") / "quick.yaml"
    p.write_text(QUICK)
    return p


def check_outputs(out, *, silent=False):
    qa = json.loads((out / "qa.json").read_text())
    assert QA_KEYS <= set(qa)
    assert {"source_bpm", "cover_bpm"} <= set(qa["tempo"])
    assert (out / "recipe.yaml").is_file()
    report = (out / "report.html").read_text()
    assert report.startswith("<!DOCTYPE html>") and qa["outputs"]["report"] == "report.html"
    # spectrograms of original and cover, beat chroma, cross-recurrence, genre bars; the Listen
    # section's two spectrogram strips (original, cover) under the playhead
    assert report.count("data:image/png;base64,") == (0 if silent else 7)
    assert "src='cover.wav'" in report and (out / "original.flac").is_file()
    cover, sr = sf.read(out / "cover.wav", always_2d=True)
    assert sr == SR and cover.shape[1] == 2 and np.all(np.isfinite(cover))
    assert sorted(p.name for p in (out / "stems").iterdir()) == ["bass.wav", "drums.wav", "other.wav", "vocals.wav"]
    text = (out / "qa.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert not [p for p in out.parent.iterdir() if ".staging-" in p.name or p.name.endswith(".part")]
    if silent:
        assert np.max(np.abs(cover)) == 0
        assert qa["cover"] is None
    else:
        keys = {"qmax", "twodftm_distance", "is_cover", "threshold"}
        assert keys <= set(qa["cover"]) and keys <= set(qa["cover"]["reference"])
        assert 0 <= qa["cover"]["reference"]["qmax"] <= 1
    return qa, cover


def test_draft_render_uses_r2_and_says_so(tmp_path, quick_recipe):
    src = write(tmp_path / "song.wav", song(bars=4), SR)
    out = tmp_path / "draft"
    result = run("render", src, "-r", quick_recipe, "-o", out, "--draft", "-q")
    assert result.exit_code == 0, result.output
    qa, cover = check_outputs(out)
    assert "quality: draft" in (out / "recipe.yaml").read_text()  # the written recipe reproduces the render
    assert qa["tempo"]["ratio"] == 0.9 and abs(cover.shape[0] - round(song(bars=4).shape[1] / 0.9)) <= 2


@pytest.mark.parametrize(
    "name,sr,channels",
    [("8k mono.wav", 8000, 1), ("96k six channels.flac", 96000, 6), ("Ünïcødé 'quoted' \"song\".wav", SR, 2)],
)
def test_render_unusual_inputs(tmp_path, quick_recipe, name, sr, channels):
    y = song(bars=4, sr=sr)
    y = np.vstack([y] * 3)[:channels] if channels != 2 else y
    src = write(tmp_path / name, y, sr)
    digest = file_digest(src)
    out = tmp_path / "out dir"
    result = run("render", src, "-r", quick_recipe, "-o", out, "--quiet")
    assert result.exit_code == 0, result.output
    qa, cover = check_outputs(out)
    assert file_digest(src) == digest
    assert qa["tempo"]["ratio"] == 0.9
    assert abs(cover.shape[0] - round(y.shape[1] / sr * SR / 0.9)) <= 2


def test_render_silence_warns_and_stays_silent(tmp_path):
    src = write(tmp_path / "silence.wav", np.zeros((2, 4 * SR), np.float32))
    result = run("render", src, "-o", tmp_path / "out", "--quiet")
    assert result.exit_code == 0, result.output
    assert "silent" in result.output
    qa, _ = check_outputs(tmp_path / "out", silent=True)
    assert qa["cover_similarity"] is None and qa["loudness_lufs"] is None


def test_rerender_replaces_outputs(tmp_path, quick_recipe):
    src = write(tmp_path / "s.wav", song(bars=4))
    out = tmp_path / "out"
    assert run("render", src, "-r", quick_recipe, "-o", out, "-q").exit_code == 0
    first = file_digest(out / "cover.wav")
    (tmp_path / "r2.yaml").write_text(QUICK.replace("ratio: 0.9", "ratio: 1.1"))
    assert run("render", src, "-r", tmp_path / "r2.yaml", "-o", out, "-q").exit_code == 0
    assert file_digest(out / "cover.wav") != first
    assert json.loads((out / "qa.json").read_text())["tempo"]["ratio"] == 1.1


BAD_SONGS = {
    "missing": (lambda d: d / "nope.wav", "no such file"),
    "empty": (lambda d: (d / "empty.wav").write_bytes(b"") and d / "empty.wav" or d / "empty.wav", "empty"),
    "corrupt": (lambda d: ((d / "bad.wav").write_bytes(os.urandom(8000)), d / "bad.wav")[1], "cannot be decoded"),
    "text": (lambda d: ((d / "t.wav").write_text("hello\n" * 100), d / "t.wav")[1], "cannot be decoded"),
    "folder": (lambda d: (d / "folder.wav").mkdir() or d / "folder.wav", "is a folder"),
    "short": (lambda d: write(d / "short.wav", song(bars=1)[:, : SR // 2]), "at least"),
}


@pytest.mark.parametrize("case", sorted(BAD_SONGS))
def test_bad_songs_refused_cleanly(tmp_path, case):
    make, match = BAD_SONGS[case]
    src = make(tmp_path)
    before = file_digest(src) if src.is_file() else None
    out = tmp_path / "out"
    result = run("render", src, "-o", out, "-q")
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and match in lines[0] and str(src) in lines[0]
    assert "Traceback" not in result.output
    assert not out.exists()  # no partial output
    if before:
        assert file_digest(src) == before


@pytest.mark.parametrize(
    "recipe_text,match",
    [
        ("name: x\nstems: [1, 2\n", "malformed YAML"),
        ("name: !!python/object/apply:os.getcwd []\n", "tags are not allowed"),
        ("name: x\nstems:\n  drums: {gian_db: 1}\n", "did you mean 'gain_db'"),
        ("name: x\nstems:\n  drums: {gain_db: 500}\n", "gain_db"),
        ("name: x\nstems:\n  drums: {pan: 3}\n", "pan"),
    ],
)
def test_bad_recipes_refused_cleanly(tmp_path, recipe_text, match):
    src = write(tmp_path / "s.wav", song(bars=2))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(recipe_text)
    result = run("render", src, "-r", recipe, "-o", tmp_path / "out", "-q")
    assert result.exit_code != 0 and match in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_unknown_recipe_name_and_out_is_a_file(tmp_path):
    src = write(tmp_path / "s.wav", song(bars=2))
    result = run("render", src, "-r", "pop_to_jaz", "-o", tmp_path / "out", "-q")
    assert result.exit_code != 0 and "unknown recipe 'pop_to_jaz'" in result.output
    afile = tmp_path / "taken"
    afile.write_text("keep me")
    result = run("render", src, "-o", afile, "-q")
    assert result.exit_code != 0 and "exists and is a file" in result.output
    assert afile.read_text() == "keep me"


def test_recipes_commands(tmp_path):
    assert "pop_to_jazz" in run("recipes", "list").output
    shown = run("recipes", "show", "pop_to_jazz")
    assert shown.exit_code == 0 and "bpm_delta: -15" in shown.output
    good = tmp_path / "good.yaml"
    good.write_text(shown.output)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: b\nstems:\n  drums: {gian_db: 1}\n")
    assert run("recipes", "validate", good).exit_code == 0
    result = run("recipes", "validate", good, bad)
    assert result.exit_code == 1 and "bad.yaml:3" in result.output
    schema = json.loads(run("recipes", "schema").output)
    assert "stems" in schema["properties"]
    assert "tenor_sax" in run("instruments", "list").output


@pytest.mark.slow
def test_demo_song_end_to_end(tmp_path):
    """The README's demo: the cover is the same song, at the recipe's tempo and loudness."""
    assert DEMO_SONG.is_file()
    out = tmp_path / "demo"
    result = run("render", DEMO_SONG, "--recipe", "pop_to_jazz", "-o", out, "-q")
    assert result.exit_code == 0, result.output
    qa, _ = check_outputs(out)
    t = qa["tempo"]
    assert abs(t["target_bpm"] - (t["source_bpm"] - 15)) < 0.05
    assert abs(t["cover_bpm"] - t["target_bpm"]) / t["target_bpm"] < 0.03
    assert abs(qa["loudness_lufs"] - (-14.0)) <= 1.0
    assert qa["true_peak_db"] <= -1.0
    assert qa["cover_similarity"] > qa["cover_similarity_floor"] + 0.15
    g = qa["genre"]  # the cover moves toward jazz
    assert g["model_class"] == "jazz" and g["target_prob_cover"] > g["target_prob_original"]
    assert qa["cover"]["is_cover"] and not qa["cover"]["reference"]["is_cover"]
    assert qa["cover"]["qmax"] > qa["cover"]["reference"]["qmax"] + 0.2


def test_excerpt_renders_only_that_part(tmp_path, quick_recipe):
    src = write(tmp_path / "s.wav", song(bars=8))  # 16 s
    out = tmp_path / "out"
    result = run("render", src, "-r", quick_recipe, "-o", out, "-q", "--excerpt", "4:6")
    assert result.exit_code == 0, result.output
    qa = json.loads((out / "qa.json").read_text())
    assert qa["source_duration_s"] == pytest.approx(6.0, abs=0.01)
    assert qa["excerpt"] == {"start_s": 4.0, "seconds": 6.0}
    bad = run("render", src, "-r", quick_recipe, "-o", tmp_path / "o2", "-q", "--excerpt", "60:5")
    assert bad.exit_code != 0 and "excerpt starts at 60 s" in bad.output and not (tmp_path / "o2").exists()
    assert run("render", src, "-o", tmp_path / "o3", "--excerpt", "x").exit_code == 2


def test_recipes_new(tmp_path):
    target = tmp_path / "mine.yaml"
    result = run("recipes", "new", "mine", "--from", "bossa_nova", "-o", target)
    assert result.exit_code == 0 and target.is_file()
    assert run("recipes", "validate", target).exit_code == 0
    assert run("recipes", "new", "mine", "-o", target).exit_code != 0  # never overwrites


def test_out_that_would_overwrite_the_input_is_refused(tmp_path, quick_recipe):
    """Hardening #18.2: the input is only ever read, also when it sits where the render writes."""
    out = tmp_path / "same"
    (out / "stems").mkdir(parents=True)
    src = write(out / "cover.wav", song(bars=4))
    before = file_digest(src)
    result = run("render", src, "-r", quick_recipe, "-o", out, "-q")
    assert result.exit_code != 0 and "the input is only ever read" in result.output
    stem_src = write(out / "stems" / "vocals.wav", song(bars=4))
    result = run("render", stem_src, "-r", quick_recipe, "-o", out, "-q")
    assert result.exit_code != 0 and "choose another -o OUT" in result.output
    assert file_digest(src) == before and not (out / "qa.json").exists()


@pytest.mark.parametrize("excerpt", ["nan:5", "0:inf", "inf:3", "0:nan"])
def test_excerpt_must_be_finite(tmp_path, quick_recipe, excerpt):
    src = write(tmp_path / "s.wav", song(bars=4))
    result = run("render", src, "-r", quick_recipe, "-o", tmp_path / "o", "--excerpt", excerpt, "-q")
    assert result.exit_code == 2 and "finite" in result.output and "Traceback" not in result.output


def test_out_with_a_newline_is_refused_before_the_work(tmp_path, quick_recipe):
    src = write(tmp_path / "s.wav", song(bars=4))
    result = run("render", src, "-r", quick_recipe, "-o", tmp_path / "a\nb", "-q")
    assert result.exit_code == 1 and "line break" in result.output
    assert not (tmp_path / "a\nb").exists()


def test_rerender_leaves_no_outputs_of_the_earlier_render(tmp_path, quick_recipe):
    """Hardening #18.22: OUT holds one render. MIDI of an earlier recipe is removed; files
    covermill did not write are never touched."""
    src = write(tmp_path / "s.wav", song(bars=4))
    out = tmp_path / "out"
    (tmp_path / "midi.yaml").write_text("name: m\nstems:\n  other: {revoice: {instrument: flute}}\n")
    assert run("render", src, "-r", tmp_path / "midi.yaml", "-o", out, "-q").exit_code == 0
    (out / "midi").mkdir(exist_ok=True)
    (out / "midi" / "other.mid").write_bytes(b"MThd")  # as if an earlier render had played `other` through MIDI
    qa = json.loads((out / "qa.json").read_text())
    qa["outputs"]["midi"] = {"other": "midi/other.mid"}
    (out / "qa.json").write_text(json.dumps(qa))
    (out / "mine.txt").write_text("the user's notes")
    assert run("render", src, "-r", quick_recipe, "-o", out, "-q").exit_code == 0
    assert not (out / "midi" / "other.mid").exists()
    assert (out / "mine.txt").read_text() == "the user's notes"
    outputs = json.loads((out / "qa.json").read_text())["outputs"]
    assert "midi" not in outputs and (out / outputs["leadsheet_midi"]).is_file()



def test_render_writes_lead_sheet_cover_stems_and_parts(tmp_path):
    """Issues 15-17: every render writes the lead sheet (JSON + MIDI), each part of the cover as
    heard before the master (their sum through the master chain is cover.wav), and its genre
    parts' MIDI."""
    from covermill.automation.master import master
    from covermill.leadsheet import LeadSheet
    from covermill.recipes import load_recipe

    src = write(tmp_path / "s.wav", song(bars=8))
    recipe = tmp_path / "parts.yaml"
    recipe.write_text("name: p\nstems:\n  vocals: {revoice: {instrument: flute}}\n  drums: {gain_db: -6}\n"
                      "  bass: {action: mute}\nparts:\n  bass: {style: walking, gain_db: -3}\n"
                      "  drums: {style: jazz_swing, kit: brush, gain_db: -8}\nmaster: {lufs: -16}\n")
    out = tmp_path / "out"
    result = run("render", src, "-r", recipe, "-o", out, "-q")
    assert result.exit_code == 0, result.output
    qa = json.loads((out / "qa.json").read_text())
    sheet = LeadSheet.from_dict(json.loads((out / "leadsheet.json").read_text()))
    assert sheet.beats_s and sheet.key is not None and any(c.root is not None for c in sheet.chords)
    assert qa["leadsheet"]["key"] == sheet.key.label and qa["parts"] == {"bass": "walking", "drums": "jazz_swing"}
    import pretty_midi

    for name in ("bass", "drums"):
        pm = pretty_midi.PrettyMIDI(str(out / qa["outputs"]["parts_midi"][name]))
        assert pm.instruments[0].notes and pm.instruments[0].is_drum == (name == "drums")
    lead = pretty_midi.PrettyMIDI(str(out / "midi" / "leadsheet.mid"))
    assert [i.name for i in lead.instruments] == ["melody", "chords", "bass"]
    assert set(qa["outputs"]["cover_stems"]) == {"vocals", "drums", "other", "part_bass", "part_drums"}
    cover, sr = sf.read(out / "cover.wav", always_2d=True, dtype="float32")
    stems = [sf.read(out / p, always_2d=True, dtype="float32")[0].T for p in qa["outputs"]["cover_stems"].values()]
    assert all(s.shape == (2, cover.shape[0]) for s in stems)  # sample-aligned with cover.wav
    again = master(np.sum(stems, axis=0), sr=sr, spec=load_recipe(recipe).master).audio
    np.testing.assert_allclose(again, cover.T, atol=2e-5)


def test_render_writes_a_dawproject_that_validates(tmp_path):
    """Issue 17.2: every render writes OUT/cover.dawproject: one audio track per cover stem, the
    MIDI parts as note clips, tempo and meter; project.xml and metadata.xml validate against the
    format's XML Schemas (tests/data/dawproject, MIT)."""
    import zipfile
    from pathlib import Path

    import xmlschema

    schemas = Path(__file__).parent / "data" / "dawproject"
    src = write(tmp_path / "s.wav", song(bars=8))
    recipe = tmp_path / "parts.yaml"
    recipe.write_text("name: p\nstems:\n  drums: {action: mute}\nparts:\n  drums: {style: jazz_swing}\n")
    out = tmp_path / "out"
    assert run("render", src, "-r", recipe, "-o", out, "-q").exit_code == 0
    qa = json.loads((out / "qa.json").read_text())
    with zipfile.ZipFile(out / qa["outputs"]["dawproject"]) as z:
        names = set(z.namelist())
        project, meta = z.read("project.xml"), z.read("metadata.xml")
    xmlschema.XMLSchema(schemas / "Project.xsd").validate(project.decode())
    xmlschema.XMLSchema(schemas / "MetaData.xsd").validate(meta.decode())
    assert {f"{t}.wav" for t in qa["outputs"]["cover_stems"]} <= {Path(n).name for n in names}
    text = project.decode()
    assert "part_drums (MIDI)" in text and "<Notes" in text and "TimeSignature" in text


def test_styles_list_shows_the_melody_doublings():
    out = run("styles", "list", "--kind", "melody").output.splitlines()
    assert out and all(line.split()[0] == "melody" and line.split()[2] == "any" for line in out)
    assert {"reggae_melodica", "folk_harmonica", "orchestral_flute"} <= {line.split()[1] for line in out}
