"""Key estimation (:mod:`covermill.analysis.key`) on beat chroma made from chord sequences."""

from __future__ import annotations

import numpy as np
import pytest

from covermill.analysis.key import estimate_key, key_scores, phrase_columns
from covermill.leadsheet import CHORD_INTERVALS, pitch_class


def chord_chroma(bars: list[str], *, beats_per_bar: int = 4, seed: int = 0):
    """Beat chroma ``(12, n)``, per-beat chord labels and the bar-start columns of a song whose
    bars hold ``bars`` (``"Am"``, ``"F"``, ``"E7"``, ``"Bbm7"``...): the chord's tones at 1 (the root
    1.3, as a bass would add) over a little noise."""
    rng = np.random.default_rng(seed)
    cols, labels = [], []
    for name in bars:
        root_name = name[:2] if len(name) > 1 and name[1] in "b#" else name[:1]
        quality = {"": "maj", "m": "min", "7": "7", "m7": "min7", "maj7": "maj7", "sus4": "sus4",
                   "dim": "dim"}[name[len(root_name):]]
        root = pitch_class(root_name)
        for _ in range(beats_per_bar):
            col = rng.uniform(0.0, 0.08, 12)
            for i in CHORD_INTERVALS[quality]:
                col[(root + i) % 12] += 1.0
            col[root] += 0.3
            cols.append(col)
            labels.append((root, quality))
    bar_starts = list(range(0, len(labels), beats_per_bar))
    return np.array(cols).T, labels, bar_starts


def key_of(bars: list[str], **kw) -> str:
    chroma, labels, bar_starts = chord_chroma(bars, **kw)
    return estimate_key(chroma, chords=labels, bar_starts=bar_starts).label


def test_the_relative_minor_is_told_by_the_phrase_starts():
    # the same four chords (same chroma): the phrase starts on A minor, or on C major
    assert key_of(["Am", "F", "C", "G"] * 2) == "A minor"
    assert key_of(["C", "Am", "F", "G"] * 2) == "C major"


def test_a_major_song_that_starts_off_the_tonic_finds_it_at_the_chorus():
    # IV V iii vi twice, then the chorus on I: Eb major, though C minor sounds longer
    assert key_of(["Ab", "Bb", "Gm", "Cm"] * 2 + ["Eb", "Cm"]) == "Eb major"


def test_a_dominant_heavy_major_song_is_not_taken_for_the_key_of_its_dominant():
    # Bb major with F (V) in half the bars and Eb (IV): F major has no Eb
    assert key_of(["Bb", "F", "Gm", "F", "Eb", "F", "Bb", "F"]) == "Bb major"
    assert key_of(["Bb", "F", "Gm", "F", "Eb", "F", "Bb", "F"], beats_per_bar=3) == "Bb major"


def test_a_blues_i7_and_iv7_fit_the_scale_and_i7_can_be_the_tonic():
    blues = ["Bb7", "Eb7", "Bb7", "Bb7", "Eb7", "Eb7", "Bb7", "Bb7", "F7", "Eb7", "Bb7", "F7"]
    chroma, labels, bar_starts = chord_chroma(blues)
    bb = key_scores(chroma, chords=labels, bar_starts=bar_starts)[(10, "major")]
    assert bb["fit"] == 1.0  # the b7 of Bb7 and Eb7 colours a triad of the scale
    assert bb["tonic_start"] == pytest.approx(1 / 3)  # phrases start on Bb7, Eb7, F7


def test_the_demo_blues_is_in_b_flat_from_its_first_20_seconds():
    # Let's Go Fishin' (examples/): a shuffle on Bb7 Eb7 F7, whose Bb7 also reads as the V7 of Eb
    from pathlib import Path

    from covermill.analysis.leadsheet import lead_sheet
    from covermill.audio import load_audio

    y = load_audio(Path(__file__).resolve().parents[2] / "examples" / "lets_go_fishin.ogg")
    assert lead_sheet(y[:, : 20 * 44100], sr=44100).key.label == "Bb major"


def test_harmonic_minor_dominant_points_at_the_minor_tonic():
    # i iv V7 i: the A7 (C#) rules out F major, the relative major
    assert key_of(["Dm", "Gm", "A7", "Dm"] * 2) == "D minor"


def test_without_bars_the_first_chord_starts_the_phrase():
    chroma, labels, _ = chord_chroma(["Am", "F", "C", "G"] * 2)
    assert estimate_key(chroma, chords=labels).label == "A minor"
    chroma, labels, _ = chord_chroma(["C", "Am", "F", "G"] * 2)
    assert estimate_key(chroma, chords=labels).label == "C major"


def test_profile_alone_without_chords():
    chroma, _, _ = chord_chroma(["C", "F", "G7", "C"] * 2)
    key = estimate_key(chroma)
    assert key.label == "C major"
    assert 0.0 <= key.confidence <= 1.0


def test_a_clear_key_is_confident_and_an_ambiguous_one_less_so():
    def confidence(bars):
        chroma, labels, _ = chord_chroma(bars)
        return estimate_key(chroma, chords=labels).confidence

    assert confidence(["C", "F", "G7", "C"] * 2) > confidence(["Am", "F", "C", "G"])


def test_key_scores_name_every_term():
    chroma, labels, bar_starts = chord_chroma(["G", "C", "D7", "G"])
    scores = key_scores(chroma, chords=labels, bar_starts=bar_starts)
    assert len(scores) == 24
    g = scores[(7, "major")]
    assert set(g) == {"profile", "tonic_start", "dominant", "cadence", "fit"}
    assert g["tonic_start"] == 1.0 and g["fit"] == 1.0 and g["cadence"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("chroma", [np.zeros((12, 0)), np.zeros((12, 6)), np.ones((12, 6))])
def test_no_pitch_no_key(chroma):
    assert estimate_key(chroma) is None
    assert estimate_key(chroma, chords=[None] * chroma.shape[1], bar_starts=[0]) is None


def test_phrase_columns_count_the_bars_before_the_first_tracked_downbeat():
    # a head column (0 s) holds the first bar, whose beats the tracker missed; beats every 0.6 s from 0.9 s
    col_starts = np.array([0.0] + [0.9 + 0.6 * i for i in range(40)])
    downbeats = 2.7 + 2.4 * np.arange(9)  # the second bar on
    cols = phrase_columns(col_starts, downbeats, onset_s=0.3, bar_s=2.4)
    assert col_starts[cols].tolist() == pytest.approx([0.0, 9.9, 19.5])
    # the music starts on the first tracked downbeat: phrases on bars 0, 4, 8
    cols = phrase_columns(col_starts, downbeats, onset_s=2.7, bar_s=2.4)
    assert col_starts[cols].tolist() == pytest.approx([2.7, 12.3, 21.9])
    assert phrase_columns(col_starts, np.zeros(0), onset_s=0.0, bar_s=2.4) == []


def test_phrase_starts_override_the_bar_grid():
    # bars of Am F C G with the first bar before the bar grid: the phrases still start on Am
    chroma, labels, bar_starts = chord_chroma(["Am", "F", "C", "G"] * 2)
    key = estimate_key(chroma, chords=labels, bar_starts=bar_starts[1:], phrase_starts=[0, 16])
    assert key.label == "A minor"
    assert estimate_key(chroma, chords=labels, bar_starts=bar_starts[1:]).label != "A minor"  # grid from bar 1: F
