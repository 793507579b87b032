import numpy as np
import pytest
from conftest import SR, click_track, song

from covermill.analysis.loudness import integrated_lufs, true_peak_db
from covermill.analysis.rhythm import estimate_tempo
from covermill.analysis.similarity import beat_chroma, chroma_similarity
from covermill.automation.tempo import stretch


@pytest.mark.parametrize("bpm", [84.0, 100.0, 123.0, 140.0])
def test_tempo_of_click_track(bpm):
    assert abs(estimate_tempo(click_track(bpm, 20.0), sr=SR) - bpm) / bpm < 0.01


def test_tempo_of_silence_is_nan():
    assert np.isnan(estimate_tempo(np.zeros((2, SR * 3), np.float32), sr=SR))


def test_loudness_of_full_scale_sine():
    t = np.arange(SR * 3) / SR
    x = np.sin(2 * np.pi * 997 * t).astype(np.float32)
    # BS.1770: a 0 dBFS 997 Hz sine in both channels reads about +0.1 LUFS... per channel -3.01
    assert integrated_lufs(np.vstack([x, x]), sr=SR) == pytest.approx(0.0, abs=0.3)
    assert true_peak_db(np.vstack([x, x]) * 0.5, sr=SR) == pytest.approx(-6.02, abs=0.1)


def test_cover_is_more_similar_than_unrelated_song():
    original = song(bars=12, seed=0)
    cover = stretch(song(bars=12, seed=0, transpose=3), sr=SR, time_ratio=0.85)
    unrelated = song(bars=12, seed=7, transpose=0)[:, ::-1].copy()  # other melody, reversed harmony
    ca, _ = beat_chroma(original, sr=SR)
    s_cover = chroma_similarity(ca, beat_chroma(cover, sr=SR)[0])
    s_other = chroma_similarity(ca, beat_chroma(unrelated, sr=SR)[0])
    assert s_cover > s_other + 0.1


def test_beats_and_chroma_are_computed_once_per_signal(monkeypatch):
    from covermill.analysis import rhythm

    y = click_track(120.0, 8.0)
    rhythm.forget()
    calls = []
    track = rhythm._track
    monkeypatch.setattr(rhythm, "_track", lambda mono, bpm: calls.append(1) or track(mono, bpm))
    first = rhythm.track_beats(y, sr=SR)
    mono22 = rhythm.analysis_mono(y, sr=SR)
    again = rhythm.track_beats(mono22, sr=rhythm.ANALYSIS_SR)  # same signal, handed over already resampled
    assert again is first and len(calls) == 1
    assert not first.times_s.flags.writeable
    assert rhythm.track_beats(y * 0.5, sr=SR) is not first and len(calls) == 2  # other content, other entry
    c1 = rhythm.cqt_chroma(y, sr=SR)
    c1[:] = -1.0  # callers get copies: the remembered chroma is unchanged
    assert np.all(rhythm.cqt_chroma(mono22, sr=rhythm.ANALYSIS_SR) >= 0)


def test_memo_waits_for_a_result_being_computed_and_forgets_failures():
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from covermill.memo import ContentMemo as _ContentMemo

    memo = _ContentMemo(maxsize=2)
    started, release, calls = threading.Event(), threading.Event(), []

    def slow():
        calls.append(1)
        started.set()
        release.wait(5)
        return "value"

    key = memo.key(np.zeros(4))
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(memo.get, key, slow)
        started.wait(5)
        second = pool.submit(memo.get, key, slow)  # arrives while the first is computing
        release.set()
        assert first.result(5) == second.result(5) == "value"
    assert len(calls) == 1

    def boom():
        raise RuntimeError("bad signal")

    bad = memo.key(np.ones(4))
    with pytest.raises(RuntimeError, match="bad signal"):
        memo.get(bad, boom)
    assert memo.get(bad, lambda: "retried") == "retried"  # the failure was not kept


def test_prefetch_fills_the_memo_for_later_callers(monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from covermill.analysis import rhythm

    y = click_track(100.0, 6.0)
    rhythm.forget()
    with ThreadPoolExecutor(2) as pool:
        beats, chroma = (f.result() for f in rhythm.prefetch(y, sr=SR, submit=pool.submit))
    monkeypatch.setattr(rhythm, "_track", lambda *a: pytest.fail("beats tracked twice"))
    assert rhythm.track_beats(y, sr=SR) is beats
    np.testing.assert_array_equal(rhythm.cqt_chroma(y, sr=SR), chroma)
