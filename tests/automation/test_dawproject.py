"""DAWproject export: schema-valid XML (the format's own XSDs), embedded audio, clip and note timings."""

from __future__ import annotations

import io
import logging
import zipfile
from pathlib import Path
from xml.etree.ElementTree import fromstring as parse_xml  # our own output

import numpy as np
import pytest
import soundfile as sf
import xmlschema

from covermill.automation.dawproject import DawTrack, markers_from_leadsheet, write_dawproject
from covermill.errors import ParameterError
from covermill.leadsheet import LeadSheet, Note, Section

SCHEMAS = Path(__file__).resolve().parents[1] / "data" / "dawproject"
SR = 44100


@pytest.fixture(scope="module")
def schemas():
    return xmlschema.XMLSchema(SCHEMAS / "Project.xsd"), xmlschema.XMLSchema(SCHEMAS / "MetaData.xsd")


def _wav(path: Path, seconds: float, channels: int = 2, sr: int = SR) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    y = (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    sf.write(path, np.repeat(y[:, None], channels, axis=1), sr, subtype="FLOAT")
    return path


@pytest.fixture
def project(tmp_path):
    bass = _wav(tmp_path / "bass.wav", 6.0)
    drums = _wav(tmp_path / "drums.wav", 6.0, channels=1)
    notes = [Note(0.5, 1.0, 60, 100), Note(1.0, 2.0, 64, 64)]
    tracks = [DawTrack("bass", audio=bass, volume_db=-6.0, pan=-0.5, role="bass"),
              DawTrack("drums & perc", audio=drums, volume_db=0.0, pan=0.25, role="drums"),
              DawTrack("piano", notes=notes, volume_db=-3.0, midi_program=0),
              DawTrack("original", audio=bass, mute=True, role="original")]
    out = write_dawproject(tmp_path / "out" / "cover.dawproject", tracks=tracks, bpm=120.0, beats_per_bar=4,
                           bars_s=[0.25, 2.25, 4.25], markers=[(0.25, "A"), (4.25, "B")],
                           metadata={"Title": "Song (cover)", "artist": "covermill", "Genre": "jazz"}, sr=SR)
    return out


def test_project_and_metadata_validate_against_the_format_schemas(project, schemas):
    with zipfile.ZipFile(project) as z:
        proj, meta = z.read("project.xml"), z.read("metadata.xml")
    schemas[0].validate(io.BytesIO(proj))
    schemas[1].validate(io.BytesIO(meta))
    m = parse_xml(meta)
    assert [e.tag for e in m] == ["Title", "Artist", "Genre"]  # the schema's order
    assert m.find("Artist").text == "covermill"


def test_the_schema_check_has_teeth(project, schemas):
    with zipfile.ZipFile(project) as z:
        proj = z.read("project.xml").decode()
    broken = proj.replace('<Clip time="3.5"', '<Clip', 1)  # a clip without its required start time
    assert broken != proj
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        schemas[0].validate(io.BytesIO(broken.encode()))


def test_audio_is_embedded_and_every_file_reference_exists(project):
    with zipfile.ZipFile(project) as z:
        names = set(z.namelist())
        root = parse_xml(z.read("project.xml"))
        refs = [f.get("path") for f in root.iter("File")]
        assert refs and all(r in names for r in refs)
        assert all(f.get("external") == "false" for f in root.iter("File"))
        assert {"project.xml", "metadata.xml", "audio/bass.wav", "audio/drums_perc.wav", "audio/original.wav"} <= names
        y, sr = sf.read(io.BytesIO(z.read("audio/drums_perc.wav")))
    assert sr == SR and y.ndim == 1 and len(y) == 6 * SR


def test_tracks_mixer_tempo_and_meter(project):
    with zipfile.ZipFile(project) as z:
        root = parse_xml(z.read("project.xml"))
    assert root.find("Transport/Tempo").get("value") == "120"
    assert root.find("Transport/TimeSignature").get("numerator") == "4"
    tracks = {t.get("name"): t for t in root.find("Structure").findall("Track")}
    assert list(tracks) == ["bass", "drums & perc", "piano", "original", "Master"]
    bass = tracks["bass"].find("Channel")
    assert float(bass.find("Volume").get("value")) == pytest.approx(10 ** (-6 / 20), abs=1e-6)
    assert float(bass.find("Pan").get("value")) == pytest.approx(0.25)  # -0.5 -> normalized 0.25
    assert bass.get("audioChannels") == "2" and tracks["drums & perc"].find("Channel").get("audioChannels") == "1"
    assert tracks["original"].find("Channel/Mute").get("value") == "true"
    master = tracks["Master"].find("Channel")
    assert master.get("role") == "master" and bass.get("destination") == master.get("id")
    assert tracks["piano"].get("contentType") == "notes" and tracks["bass"].get("contentType") == "audio"


def test_clip_and_note_timings_in_beats(project):
    with zipfile.ZipFile(project) as z:
        root = parse_xml(z.read("project.xml"))
    lanes = {ln.get("track"): ln for ln in root.find("Arrangement/Lanes").findall("Lanes")}
    ids = {t.get("name"): t.get("id") for t in root.find("Structure").findall("Track")}
    # first downbeat at 0.25 s = 0.5 beat at 120 BPM -> clips start at 3.5 beats, the downbeat on bar 2 (beat 4)
    clip = lanes[ids["bass"]].find("Clips/Clip")
    assert float(clip.get("time")) == pytest.approx(3.5)
    assert float(clip.get("duration")) == pytest.approx(12.0)  # 6 s at 120 BPM
    warps = clip.find("Warps")
    assert warps.find("Audio").get("sampleRate") == str(SR)
    points = [(float(w.get("time")), float(w.get("contentTime"))) for w in warps.findall("Warp")]
    assert points == [(0.0, 0.0), (12.0, 6.0)]
    notes = lanes[ids["piano"]].find("Clips/Clip/Notes").findall("Note")
    assert [(float(n.get("time")), float(n.get("duration")), int(n.get("key"))) for n in notes] == [
        (1.0, 1.0, 60), (2.0, 2.0, 64)]
    assert float(notes[0].get("vel")) == pytest.approx(100 / 127, abs=1e-6)
    assert float(lanes[ids["piano"]].find("Clips/Clip").get("time")) == pytest.approx(3.5)
    markers = [(float(m.get("time")), m.get("name")) for m in root.find("Arrangement/Markers")]
    assert (4.0, "A") in markers and (12.0, "B") in markers
    assert [t for t, name in markers if name.startswith("bar ")] == [4.0, 8.0, 12.0]


def test_pretty_midi_instrument_is_accepted(tmp_path, schemas):
    import pretty_midi

    inst = pretty_midi.Instrument(program=33, name="bass")
    inst.notes.append(pretty_midi.Note(velocity=90, pitch=40, start=1.5, end=2.0))
    out = write_dawproject(tmp_path / "m.dawproject", tracks=[DawTrack("bass", notes=inst)], bpm=90.0,
                           bars_s=[0.0], sr=SR)
    with zipfile.ZipFile(out) as z:
        proj = z.read("project.xml")
        assert z.namelist() == ["project.xml", "metadata.xml"]
    schemas[0].validate(io.BytesIO(proj))
    note = parse_xml(proj).find(".//Note")
    assert float(note.get("time")) == pytest.approx(1.5 * 90 / 60) and note.get("key") == "40"


def test_no_bars_gives_a_grid_from_the_tempo_and_a_warning(tmp_path, schemas, caplog):
    wav = _wav(tmp_path / "a.wav", 5.0)
    warnings: list[str] = []
    with caplog.at_level(logging.WARNING):
        out = write_dawproject(tmp_path / "x.dawproject", tracks=[DawTrack("a", audio=wav)], bpm=120.0,
                               beats_per_bar=3, sr=SR, warnings=warnings)
    assert len(warnings) == 1 and "no bars" in warnings[0] and "no bars" in caplog.text
    with zipfile.ZipFile(out) as z:
        proj = z.read("project.xml")
    schemas[0].validate(io.BytesIO(proj))
    root = parse_xml(proj)
    assert float(root.find(".//Clip").get("time")) == 0.0
    bars = [float(m.get("time")) for m in root.find("Arrangement/Markers")]
    assert bars == [0.0, 3.0, 6.0, 9.0]  # 5 s = 10 beats: bars at beats 0, 3, 6, 9


def test_leadsheet_markers(tmp_path):
    sheet = LeadSheet(duration_s=8.0, bpm=120.0, beats_s=tuple(np.arange(0, 8, 0.5)), downbeats_s=(0.0, 2.0, 4.0, 6.0),
                      sections=(Section(0, 4, "A"), Section(4, 6, "B"), Section(6, 8, "A")))
    markers, bars = markers_from_leadsheet(sheet)
    assert markers == [(0, "A"), (4, "B"), (6, "A 2")] and bars == [0.0, 2.0, 4.0, 6.0]


@pytest.mark.parametrize("kw, match", [
    ({"bpm": 0.0}, "bpm"),
    ({"tracks": [DawTrack("x")]}, "either an audio file or MIDI notes"),
    ({"tracks": [DawTrack("x", audio="/nonexistent.wav")]}, "no such audio file"),
    ({"tracks": [DawTrack("x", notes=[], pan=2.0)]}, "pan=2.0"),
    ({"metadata": {"Mood": "x"}}, "metadata key 'Mood'"),
])
def test_bad_input_is_refused_and_nothing_is_written(tmp_path, kw, match):
    args = {"tracks": [DawTrack("x", notes=[Note(0, 1, 60)])], "bpm": 120.0, "sr": SR, **kw}
    with pytest.raises(ParameterError, match=match):
        write_dawproject(tmp_path / "bad.dawproject", **args)
    assert list(tmp_path.iterdir()) == []


def test_audio_at_another_rate_is_refused(tmp_path):
    wav = _wav(tmp_path / "a.wav", 1.0, sr=48000)
    with pytest.raises(ParameterError, match="48000 Hz"):
        write_dawproject(tmp_path / "p.dawproject", tracks=[DawTrack("a", audio=wav)], bpm=120.0, sr=SR)
    assert not (tmp_path / "p.dawproject").exists()
