"""Cover detection on synthesized songs: covers (transposed, re-timed, re-voiced) vs unrelated songs."""

import numpy as np
import pytest
from conftest import melody, song, write

from covermill.analysis import cover
from covermill.automation.tempo import stretch
from covermill.errors import ParameterError

SR = 22050  # the analysis rate: no resampling, fast tests


def unrelated_song(*, bpm: float = 112.0, bars: int = 16, seed: int = 5) -> np.ndarray:
    """Another piece: a minor progression, eighth-note melody, no drums; shape (2, n)."""
    rng = np.random.default_rng(seed)
    roots = [62, 58, 53, 60, 62, 55, 58, 57]
    lead = melody([roots[i % 8] + 12 + int(rng.choice([0, 3, 7, 10])) for i in range(bars) for _ in range(8)],
                  bpm=2 * bpm, sr=SR, harmonics=4)
    bass = melody([roots[i % 8] - 24 for i in range(bars) for _ in range(2)], bpm=bpm / 2, sr=SR, amp=0.3)
    n = min(len(lead), len(bass))
    return np.repeat((lead[:n] + bass[:n])[None], 2, axis=0)


@pytest.fixture(scope="module")
def feats():
    original = song(bars=16, seed=0, sr=SR)
    return {
        "original": cover.features(original, sr=SR),
        # the same song three semitones up, 15 % slower (Rubber Band)
        "stretched": cover.features(stretch(original[:1], sr=SR, time_ratio=0.85, semitones=3.0), sr=SR),
        # the song performed again: 2 semitones down at 96 BPM
        "performed": cover.features(song(bars=16, seed=0, sr=SR, transpose=-2, bpm=96.0), sr=SR),
        "unrelated": cover.features(unrelated_song(), sr=SR),
    }


@pytest.mark.parametrize("name", ["stretched", "performed"])
def test_transposed_retimed_song_is_a_cover(feats, name):
    result = cover.compare_features(feats["original"], feats[name])
    assert result["is_cover"], result
    assert result["qmax"] >= cover.QMAX_THRESHOLD
    assert result["twodftm_distance"] <= cover.TWODFTM_THRESHOLD


def test_unrelated_song_is_not_a_cover(feats):
    result = cover.compare_features(feats["original"], feats["unrelated"])
    assert not result["is_cover"], result
    assert not result["twodftm_is_cover"], result
    covered = cover.compare_features(feats["original"], feats["stretched"])
    assert covered["qmax"] > result["qmax"] + 0.2
    assert covered["twodftm_distance"] < result["twodftm_distance"]


def test_compare_json_keys_and_ranges(feats):
    result = cover.compare_features(feats["original"], feats["unrelated"])
    assert {"is_cover", "qmax", "twodftm_distance", "threshold"} <= set(result)
    assert 0.0 <= result["qmax"] <= 1.0 and 0.0 <= result["twodftm_distance"] <= 2.0
    assert result["threshold"] == cover.QMAX_THRESHOLD


def test_beat_grid_follows_tempo(feats):
    assert feats["original"].bpm == pytest.approx(120, rel=0.03)
    assert feats["performed"].bpm == pytest.approx(96, rel=0.03)
    # beat-synchronous: the same number of beats whatever the tempo
    assert abs(feats["original"].chroma.shape[1] - feats["performed"].chroma.shape[1]) <= 3


def test_twodftm_is_transposition_and_shift_invariant(rng):
    chroma = rng.random((12, 120)).astype(np.float32)
    v = cover.twodftm(chroma)
    assert v.shape == (12 * cover.PATCH_BEATS,)
    assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(cover.twodftm(np.roll(chroma, 5, axis=0)), v, atol=1e-5)
    assert np.linalg.norm(cover.twodftm(rng.random((12, 120))) - v) > 1e-3


def test_twodftm_of_a_short_song_is_padded(rng):
    v = cover.twodftm(rng.random((12, 30)))
    assert v.shape == (12 * cover.PATCH_BEATS,) and np.isfinite(v).all()
    assert not cover.twodftm(np.zeros((12, 0))).any()


def test_optimal_transposition_index(rng):
    a = rng.random((12, 50)) ** 4
    assert cover.transposition_order(a, np.roll(a, 4, axis=0))[0] == 8  # rolling back by 8 == -4


def test_cross_recurrence_matches_librosa_cross_similarity(rng):
    import librosa

    a, b = rng.random((12, 60)), rng.random((12, 47))
    mine = cover.cross_recurrence(a, b, m=3, kappa=0.1)
    ea, eb = cover._embed(a, 3), cover._embed(b, 3)
    ka, kb = round(0.1 * ea.shape[1]), round(0.1 * eb.shape[1])
    ref = (librosa.segment.cross_similarity(ea, eb, k=kb).T * librosa.segment.cross_similarity(eb, ea, k=ka))
    assert mine.shape == ref.shape and mine.sum() > 0
    np.testing.assert_array_equal(mine > 0, ref > 0)


def test_qmax_identical_vs_random(rng):
    a = rng.random((12, 80)) ** 3
    assert cover.qmax(a, np.roll(a, 2, axis=0)) > 0.9
    assert cover.qmax(a, rng.random((12, 80)) ** 3) < 0.2


def test_silence_is_not_a_cover():
    silent = np.zeros((2, SR * 5), np.float32)
    result = cover.compare(silent, song(bars=4, sr=SR), sr=SR)
    assert result["qmax"] == 0.0 and not result["is_cover"]


def test_compare_rejects_bad_sr():
    with pytest.raises(ParameterError, match="sr="):
        cover.compare(np.zeros((2, 10), np.float32), np.zeros((2, 10), np.float32), sr=0)


def test_feature_cache_by_content(tmp_path, monkeypatch):
    y = song(bars=4, sr=SR)
    a = write(tmp_path / "a.wav", y, sr=SR)
    first = cover.features_from_file(a, cache_dir=tmp_path / "cache")
    entries = list((tmp_path / "cache").glob("*.npz"))
    assert len(entries) == 1 and entries[0].name.startswith(cover.file_digest(a))
    b = tmp_path / "renamed.wav"
    b.write_bytes(a.read_bytes())

    def boom(*args, **kwargs):
        raise AssertionError("features recomputed despite a cache entry")

    monkeypatch.setattr(cover, "features", boom)
    again = cover.features_from_file(b, cache_dir=tmp_path / "cache")  # same content: a cache hit
    np.testing.assert_array_equal(again.chroma, first.chroma)
    np.testing.assert_array_equal(again.twodftm, first.twodftm)


def test_too_few_beats_gives_no_verdict():
    """Hardening #18.23: under MIN_VERDICT_BEATS beats, unrelated excerpts score above the
    threshold (measured), so there is no verdict, only a reason."""
    short = song(bars=4, seed=0, sr=SR)  # 16 beats at 120 BPM
    result = cover.compare(short, unrelated_song()[:, : short.shape[1]], sr=SR)
    assert min(result["beats"]) < cover.MIN_VERDICT_BEATS
    assert result["is_cover"] is None and result["verdict"].startswith(cover.TOO_SHORT)
    long = cover.compare(song(bars=8, seed=0, sr=SR), song(bars=8, seed=0, sr=SR, transpose=2), sr=SR)
    assert min(long["beats"]) >= cover.MIN_VERDICT_BEATS and long["is_cover"] is True and "verdict" not in long


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong shape", "empty"])
def test_damaged_feature_cache_entry_is_recomputed(tmp_path, damage):
    """Finding 7 of issue 18: a truncated cache file must not fail every render until deleted."""
    a = write(tmp_path / "a.wav", song(bars=4, sr=SR), sr=SR)
    first = cover.features_from_file(a, cache_dir=tmp_path / "cache")
    (entry,) = (tmp_path / "cache").glob("*.npz")
    raw = entry.read_bytes()
    if damage == "truncate":
        entry.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        entry.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    elif damage == "empty":
        entry.write_bytes(b"")
    else:
        np.savez(entry.with_suffix(""), chroma=np.zeros((3, 4), np.float32), twodftm=np.zeros(5, np.float32),
                 bpm=np.float64(120))
    again = cover.features_from_file(a, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(again.chroma, first.chroma)
    np.testing.assert_array_equal(again.twodftm, first.twodftm)
    assert entry.read_bytes() == raw  # replaced by a good entry
