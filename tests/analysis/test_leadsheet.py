"""Lead sheets of songs synthesized here from known scores (additive chords, a melody, a bass, clicks)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from covermill.analysis.leadsheet import lead_sheet
from covermill.analysis.melody import bass_from_chords, clean_melody, subdivide
from covermill.leadsheet import CHORD_INTERVALS, Chord, Key, LeadSheet, Note

SR = 22050  # the analysis rate: nothing to resample


def _tone(midi: float, n: int, *, harmonics: int = 5, amp: float = 0.1) -> np.ndarray:
    t = np.arange(n) / SR
    f = 440.0 * 2 ** ((midi - 69) / 12)
    out = sum(np.sin(2 * np.pi * k * f * t) / k for k in range(1, harmonics + 1) if k * f < SR / 2)
    env = np.minimum(1.0, t / 0.01) * np.exp(-t * 1.5) * np.minimum(1.0, (n / SR - t) / 0.02)
    return (amp * out * env).astype(np.float32)


def synth_song(progression, *, bpm: float, beats_per_bar: int, bars: int, seed: int = 0, lead_in_s: float = 0.3):
    """A song and its score: ``progression`` (root, quality) per bar, cycled for ``bars`` bars.

    Returns ``(audio (2, n), truth LeadSheet, lead_f0)`` where ``lead_f0`` is the melody's exact
    f0 (with a 6-Hz vibrato of +-0.3 semitone) at 100 frames/s, as pYIN of a clean stem would give it.
    """
    rng = np.random.default_rng(seed)
    period = 60.0 / bpm
    n_beats = bars * beats_per_bar
    beats = lead_in_s + period * np.arange(n_beats + 1)
    duration = float(beats[-1] + 0.5)
    y = np.zeros(int(duration * SR), np.float32)
    chords, melody, bass = [], [], []
    for bar in range(bars):
        root, quality = progression[bar % len(progression)]
        t0, t1 = beats[bar * beats_per_bar], beats[(bar + 1) * beats_per_bar]
        a, n = int(t0 * SR), int((t1 - t0) * SR)
        for i in CHORD_INTERVALS[quality]:
            y[a:a + n] += _tone(48 + (root + i) % 12, n, amp=0.08)
        y[a:a + n] += _tone(36 + root, n, amp=0.12, harmonics=3)
        chords.append(Chord(float(t0), float(t1), root, quality))
        bass.append(Note(float(t0), float(t1), 36 + root))
        tones = [(root + i) % 12 for i in CHORD_INTERVALS[quality]]
        for b in range(beats_per_bar):
            s0, s1 = beats[bar * beats_per_bar + b], beats[bar * beats_per_bar + b + 1]
            pitch = 60 + int(rng.choice(tones)) + 12 * (rng.random() < 0.3)
            melody.append(Note(float(s0), float(s1 - 0.05), pitch))
    for i, b in enumerate(beats[:-1]):  # clicks: a kick and a loud tick on the downbeat, ticks elsewhere
        a = int(b * SR)
        t = np.arange(int(0.05 * SR)) / SR
        tick = rng.standard_normal(len(t)).astype(np.float32) * np.exp(-t * 120).astype(np.float32)
        y[a:a + len(t)] += (0.25 if i % beats_per_bar == 0 else 0.1) * tick
        if i % beats_per_bar == 0:
            y[a:a + len(t)] += 0.4 * np.sin(2 * np.pi * 60 * t).astype(np.float32) * np.exp(-t * 40).astype(np.float32)
    times = np.arange(0, duration, 0.01)
    f0 = np.full(len(times), np.nan)
    for note in melody:
        on = (times >= note.start_s) & (times < note.end_s)
        f0[on] = 440 * 2 ** ((note.pitch - 69 + 0.3 * np.sin(2 * np.pi * 6 * times[on])) / 12)
        a = int(note.start_s * SR)
        tone = _tone(note.pitch, int(note.duration_s * SR), amp=0.07, harmonics=3)
        y[a:a + len(tone)] += tone
    vp = np.where(np.isfinite(f0), 0.9, 0.05)
    truth = LeadSheet(duration_s=duration, bpm=bpm, beats_s=tuple(beats[:-1]),
                      downbeats_s=tuple(beats[:-1:beats_per_bar]), beats_per_bar=beats_per_bar,
                      chords=tuple(chords), melody=tuple(melody), bass=tuple(bass))
    return np.stack([y, y]), truth, (times, f0, vp)


def chord_accuracy(truth: LeadSheet, est: LeadSheet) -> float:
    """Share of 50-ms frames inside the score's chords where root and major/minor third agree."""
    hits = total = 0
    for t in np.arange(truth.chords[0].start_s, truth.chords[-1].end_s, 0.05):
        a, b = truth.chord_at(t), est.chord_at(t)
        total += 1
        if a is not None and b is not None and b.root == a.root and (3 in CHORD_INTERVALS[a.quality]) == (
                b.quality in ("min", "min7", "dim")):
            hits += 1
    return hits / total


C_MAJOR_POP = [(0, "maj"), (9, "min"), (5, "maj"), (7, "maj")]
CHORUS = [(5, "maj"), (7, "maj"), (4, "min"), (9, "min")]
A_MINOR_WALTZ = [(9, "min"), (2, "min"), (4, "maj"), (9, "min")]


@pytest.fixture(scope="module")
def pop():
    y, truth, lead = synth_song(C_MAJOR_POP * 2 + CHORUS, bpm=120, beats_per_bar=4, bars=12, seed=1)
    return y, truth, lead, lead_sheet(y, sr=SR, lead_f0=lead)


@pytest.fixture(scope="module")
def waltz():
    y, truth, lead = synth_song(A_MINOR_WALTZ, bpm=132, beats_per_bar=3, bars=16, seed=2)
    return y, truth, lead, lead_sheet(y, sr=SR, lead_f0=lead)


@pytest.mark.parametrize("song", ["pop", "waltz"])
def test_chords_key_and_meter_follow_the_score(song, request):
    _, truth, _, sheet = request.getfixturevalue(song)
    assert chord_accuracy(truth, sheet) >= 0.8
    want = Key(0, "major") if song == "pop" else Key(9, "minor")
    assert (sheet.key.tonic, sheet.key.mode) == (want.tonic, want.mode)
    assert sheet.beats_per_bar == truth.beats_per_bar
    assert abs(sheet.bpm - truth.bpm) < 2
    found = [min(abs(np.asarray(sheet.downbeats_s) - d)) < 0.07 for d in truth.downbeats_s[1:-1]]
    assert np.mean(found) >= 0.8
    assert not sheet.warnings
    assert set(sheet.methods) >= {"beats", "meter", "key", "chords", "melody", "bass", "sections"}


def test_chords_tile_the_song(pop):
    _, _, _, sheet = pop
    assert sheet.chords[0].start_s == 0.0 and sheet.chords[-1].end_s == pytest.approx(sheet.duration_s)
    assert all(a.end_s == pytest.approx(b.start_s) for a, b in zip(sheet.chords, sheet.chords[1:], strict=False))


def test_melody_notes_match_the_score(pop):
    _, truth, _, sheet = pop
    got = {round(n.start_s, 1): n.pitch for n in sheet.melody}
    right = [abs(got.get(round(n.start_s, 1), -1) - n.pitch) == 0 for n in truth.melody]
    assert np.mean(right) >= 0.9  # vibrato of +-0.3 semitone is not in the pitch
    assert all(n.duration_s >= 0.09 for n in sheet.melody)


def test_bass_follows_the_chord_roots_without_a_bass_f0(pop):
    _, truth, _, sheet = pop
    assert sheet.methods["bass"] == "chord roots"
    for note in sheet.bass:
        chord = sheet.chord_at(note.start_s + 1e-3)
        assert chord is not None and note.pitch % 12 == chord.root and 36 <= note.pitch < 48


def test_sections_repeat_labels(pop):
    _, truth, _, sheet = pop  # verse twice (8 bars), chorus (4 bars)
    assert [s.label for s in sheet.sections] == ["A", "B"]
    assert sheet.sections[0].start_s == 0.0 and sheet.sections[-1].end_s == pytest.approx(sheet.duration_s)
    assert sheet.sections[1].start_s == pytest.approx(truth.downbeats_s[8], abs=0.07)


def test_json_round_trip(waltz):
    _, _, _, sheet = waltz
    back = LeadSheet.from_dict(json.loads(sheet.to_json()))
    assert back.to_dict() == sheet.to_dict()
    assert back.chords == sheet.chords and back.melody == sheet.melody and back.key == sheet.key


def _drum_loop(seconds: float, bpm: float = 110.0) -> np.ndarray:
    rng = np.random.default_rng(3)
    y = np.zeros(int(seconds * SR), np.float32)
    t = np.arange(int(0.15 * SR)) / SR
    kick = np.sin(2 * np.pi * (50 + 80 * np.exp(-t * 30)) * t) * np.exp(-t * 20)
    snare = 0.5 * rng.standard_normal(len(t)) * np.exp(-t * 25)
    hat = 0.2 * rng.standard_normal(len(t)) * np.exp(-t * 80)
    step = 60.0 / bpm / 2
    for i in range(int(seconds / step)):
        a = int(i * step * SR)
        for w in ([kick] if i % 4 == 0 else [snare] if i % 4 == 2 else []) + [hat]:
            e = min(len(y), a + len(w))
            y[a:e] += w[: e - a]
    return np.stack([y, y])


@pytest.mark.parametrize("name", ["silence", "noise", "drums"])
def test_unpitched_input_gives_warnings_not_errors(name):
    rng = np.random.default_rng(0)
    y = {"silence": np.zeros((2, 4 * SR), np.float32),
         "noise": (0.1 * rng.standard_normal((2, 6 * SR))).astype(np.float32),
         "drums": _drum_loop(10.0)}[name]
    sheet = lead_sheet(y, sr=SR, lead_f0=(np.arange(10) / 100, np.full(10, np.nan), np.zeros(10)))
    assert "no chord" in sheet.warnings
    assert any(w.startswith("no melody") for w in sheet.warnings)
    assert all(c.root is None for c in sheet.chords) and sheet.key is None and not sheet.melody
    json.loads(sheet.to_json())
    if name == "drums":
        assert sheet.has_beat and abs(sheet.bpm - 110) < 3


def test_short_song_and_free_time():
    y, _, _ = synth_song(C_MAJOR_POP, bpm=120, beats_per_bar=4, bars=2)
    sheet = lead_sheet(y[:, : 3 * SR], sr=SR)
    assert sheet.duration_s == pytest.approx(3.0)
    assert any(c.root == 0 for c in sheet.chords)
    # rubato: chords held for irregular lengths, no clicks
    rng = np.random.default_rng(5)
    parts, t = [], 0.0
    for root in [0, 9, 5, 7, 0, 4, 5, 7]:
        n = int(rng.uniform(0.7, 2.6) * SR)
        parts.append(sum(_tone(48 + (root + i) % 12, n, amp=0.08) for i in CHORD_INTERVALS["maj"]))
        t += n / SR
    free = np.concatenate(parts)
    sheet = lead_sheet(np.stack([free, free]), sr=SR)
    assert "free time: no stable beat" in sheet.warnings
    assert not sheet.has_beat and sheet.chords and sheet.key is not None


def test_free_sr_and_mono_input(pop):
    y, truth, _, _ = pop
    sheet = lead_sheet(y[0, : 8 * SR], sr=SR)  # (n,) is accepted like (channels, n)
    assert sheet.duration_s == pytest.approx(8.0)


# ------------------------------------------------------------------ clean_melody (pure)


def _track(segments, fps=100.0, vp=0.9):
    """f0 track from ``(start_s, end_s, midi)`` segments (midi may be an array-valued function of t)."""
    end = max(e for _, e, _ in segments) + 0.2
    times = np.arange(0, end, 1 / fps)
    f0 = np.full(len(times), np.nan)
    for s, e, m in segments:
        on = (times >= s) & (times < e)
        f0[on] = 440 * 2 ** (((m(times[on]) if callable(m) else m) - 69) / 12)
    return times, f0, np.where(np.isfinite(f0), vp, 0.0)


def test_clean_melody_keeps_vibrato_out_of_the_pitch():
    times, f0, vp = _track([(0.0, 1.0, lambda t: 67 + 0.45 * np.sin(2 * np.pi * 5.5 * t))])
    notes = clean_melody(times, f0, vp, key=Key(7, "major"))
    assert [n.pitch for n in notes] == [67]
    assert notes[0].start_s == pytest.approx(0.0) and notes[0].end_s == pytest.approx(1.0, abs=0.02)


def test_clean_melody_gates_low_confidence_and_short_blips():
    times, f0, vp = _track([(0.0, 0.5, 60), (0.5, 0.53, 72), (0.53, 1.0, 62)])
    vp[(times > 1.05)] = 0.0
    notes = clean_melody(times, f0, vp, key=Key(0, "major"), min_note_s=0.09)
    assert [n.pitch for n in notes] == [60, 62]  # the 30-ms blip joins the note before it
    weak = clean_melody(times, f0, np.full_like(vp, 0.3), key=Key(0, "major"))
    assert weak == ()


def test_clean_melody_snaps_ambiguous_pitches_to_chord_then_scale_tones():
    times, f0, vp = _track([(0.0, 0.5, 66.55), (0.6, 1.1, 65.5)])
    chords = [Chord(0.0, 0.55, 7, "maj"), Chord(0.55, 1.2, 2, "min")]  # G major, then D minor
    notes = clean_melody(times, f0, vp, key=Key(0, "major"), chords=chords)
    assert [n.pitch for n in notes] == [67, 65]  # G (chord tone of G), F (chord tone of Dm)
    clear = clean_melody(*_track([(0.0, 0.5, 66.1)]), key=Key(0, "major"), chords=chords)
    assert [n.pitch for n in clear] == [66]  # unambiguous: kept off-key


def test_clean_melody_moves_late_onsets_back_onto_the_grid():
    times, f0, vp = _track([(0.07, 0.5, 60), (0.56, 1.0, 64)])
    grid = subdivide(np.array([0.0, 0.5, 1.0]), 4)
    notes = clean_melody(times, f0, vp, key=None, onset_grid_s=grid)
    assert [round(n.start_s, 3) for n in notes] == [0.0, 0.5]


def test_clean_melody_moves_a_late_legato_boundary_back_onto_the_grid():
    """Sung legato, the smoothed f0 reaches a leap late (60 -> 64 was heard at 0.63 s) and the f0
    tracker itself lags: the boundary goes back to where the raw f0 changed, then to the grid (the
    previous note is cut); a gap stays a gap."""
    times, f0, vp = _track([(0.0, 0.54, 60), (0.54, 1.04, 64), (1.04, 1.5, 62)])  # changes 40 ms late
    grid = subdivide(np.array([0.0, 0.5, 1.0, 1.5]), 4)
    notes = clean_melody(times, f0, vp, key=None, onset_grid_s=grid)
    assert [n.pitch for n in notes] == [60, 64, 62]
    assert [round(n.start_s, 3) for n in notes] == [0.0, 0.5, 1.0]
    assert [round(n.end_s, 2) for n in notes[:2]] == [0.5, 1.0]  # no overlap: the previous note ends there
    gap = clean_melody(*_track([(0.0, 0.45, 60), (0.56, 1.0, 64)]), key=None, onset_grid_s=grid)
    assert gap[1].start_s == pytest.approx(0.5) and gap[0].end_s == pytest.approx(0.45, abs=0.02)
    short = clean_melody(*_track([(0.4, 0.56, 60), (0.56, 1.0, 64)]), key=None, onset_grid_s=grid, min_note_s=0.05)
    assert short[0].end_s - short[0].start_s >= 0.059  # a note is never cut shorter than MIN_CUT_S


def test_clean_melody_on_empty_input():
    assert clean_melody(np.zeros(0), np.zeros(0), np.zeros(0), key=None) == ()
    assert clean_melody(np.arange(5) / 100, np.full(5, np.nan), np.zeros(5), key=None) == ()


def test_bass_from_chords_restrikes_on_bar_lines():
    chords = [Chord(0.0, 4.0, 9, "min"), Chord(4.0, 6.0, None), Chord(6.0, 8.0, 2, "7")]
    notes = bass_from_chords(chords, downbeats_s=[0.0, 2.0, 4.0, 6.0])
    assert [(n.start_s, n.end_s, n.pitch) for n in notes] == [(0.0, 2.0, 45), (2.0, 4.0, 45), (6.0, 8.0, 38)]


def test_lead_sheet_modules_import_no_other_stage():
    import ast
    from pathlib import Path

    import covermill.analysis as analysis

    for name in ("leadsheet", "chords", "meter", "melody", "sections"):
        tree = ast.parse((Path(analysis.__file__).parent / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = ("." * node.level) + (node.module or "")
            elif isinstance(node, ast.Import):
                target = ",".join(a.name for a in node.names)
            else:
                continue
            assert not any(stage in target for stage in ("instruments", "stems", "automation", "recipes")), \
                f"analysis/{name}.py imports {target}"


def test_bass_f0_gives_the_bass_line(waltz):
    y, truth, _, _ = waltz
    times = np.arange(0, truth.duration_s, 0.01)
    f0 = np.full(len(times), np.nan)
    for n in truth.bass:
        on = (times >= n.start_s) & (times < n.end_s - 0.05)
        f0[on] = 440 * 2 ** ((n.pitch - 69) / 12)
    sheet = lead_sheet(y, sr=SR, bass_f0=(times, f0, np.where(np.isfinite(f0), 0.9, 0.0)))
    assert sheet.methods["bass"].startswith("clean_melody")
    assert [n.pitch for n in sheet.bass] == [n.pitch for n in truth.bass]
    assert sheet.beats_per_bar == 3


def test_key_of_a_flat_chroma_is_none():
    from covermill.analysis.key import estimate_key

    assert estimate_key(np.ones((12, 8))) is None
    assert estimate_key(np.zeros((12, 0))) is None


@pytest.mark.parametrize("progression, want", [
    ([(9, "min"), (5, "maj"), (0, "maj"), (7, "maj")], "A minor"),  # i VI III VII: the Aeolian ballad
    ([(0, "maj"), (9, "min"), (5, "maj"), (7, "maj")], "C major"),  # the same chords from the tonic of C
])
def test_key_of_a_short_excerpt_tells_the_relative_minor_from_the_major(progression, want):
    # 8 bars at 100 BPM (~20 s, the cover benchmark's excerpt): same pitch classes, same time on each chord
    y, _, lead = synth_song(progression, bpm=100, beats_per_bar=4, bars=8, seed=3)
    assert lead_sheet(y, sr=SR, lead_f0=lead).key.label == want
