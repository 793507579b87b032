"""covermill's pyin against librosa.pyin: the same decoded path, found with far less work."""

import librosa
import numpy as np
import pytest
import scipy.stats
from conftest import DEMO_SONG, melody

from covermill.audio import load_audio, resample
from covermill.instruments import pyin as fast

OURS = dict(fmin=40.0, fmax=1200.0, sr=16000, frame_length=2048, hop_length=256, resolution=0.25, n_thresholds=50)


def assert_same(y, **kw):
    f_ref, v_ref, p_ref = librosa.pyin(y, **kw)
    f, v, p = fast.pyin(y, **kw)
    assert v.dtype == bool and f.shape == f_ref.shape
    np.testing.assert_array_equal(v, v_ref)
    np.testing.assert_array_equal(f, f_ref)  # NaN where unvoiced on both sides
    np.testing.assert_allclose(p, p_ref, rtol=0, atol=1e-12)
    return v


@pytest.fixture(scope="module")
def demo_16k():
    if not DEMO_SONG.exists():
        pytest.skip(f"{DEMO_SONG} is missing: the demo song ships with the repository")
    y = load_audio(DEMO_SONG)[:, 30 * 44100 : 55 * 44100]
    return resample(y.mean(axis=0, keepdims=True).astype(np.float32), sr_in=44100, sr_out=16000)[0]


def test_real_song_same_path_as_librosa(demo_16k):
    voiced = assert_same(demo_16k, **OURS)
    assert 0.05 < voiced.mean() < 0.95  # a real mix: both voiced and unvoiced frames decoded


def test_melody_with_rests_float32_and_float64():
    sr = 16000
    rest = np.zeros(sr // 2, np.float32)
    x = np.concatenate([rest, melody([55, 62, 67, 74, 79], bpm=140, sr=sr), rest, melody([48, 43, 50], bpm=90, sr=sr)])
    x = x + 1e-4 * np.random.default_rng(1).standard_normal(len(x)).astype(np.float32)
    v = assert_same(x, **OURS)
    assert v.sum() > 0.5 * len(v) and not v[:5].any()
    assert_same(x.astype(np.float64), **OURS)


def test_librosa_defaults_and_other_settings(demo_16k):
    y = demo_16k[: 8 * 16000]
    assert_same(y, fmin=65.0, fmax=2093.0, sr=16000)  # librosa's default grid, thresholds and hop
    assert_same(y, fmin=80.0, fmax=800.0, sr=16000, frame_length=1024, hop_length=160, resolution=0.5,
                switch_prob=0.05, center=False)


def test_noise_and_silence():
    rng = np.random.default_rng(2)
    assert_same(rng.standard_normal(3 * 16000).astype(np.float32) * 0.1, **OURS)
    f, v, p = fast.pyin(np.zeros(16000, np.float32), **OURS)
    assert not v.any() and np.isnan(f).all()


def test_chunked_trough_scoring_is_seamless(demo_16k):
    y = demo_16k[: 6 * 16000]
    frames = librosa.util.frame(np.pad(y, 1024), frame_length=2048, hop_length=256)
    yin = librosa.core.pitch._cumulative_mean_normalized_difference(frames, 13, 400)
    shifts = librosa.core.pitch._parabolic_interpolation(yin)
    kw = dict(sr=16000, thresholds=np.linspace(0, 1, 51), boltzmann_parameter=2,
              beta_probs=np.diff(scipy.stats.beta.cdf(np.linspace(0, 1, 51), 2, 18)),
              no_trough_prob=0.01, min_period=13, fmin=40.0, n_pitch_bins=236, n_bins_per_semitone=4)
    whole, p_whole = fast._observations(yin, shifts, **kw, chunk=10_000)
    pieces, p_pieces = fast._observations(yin, shifts, **kw, chunk=7)
    np.testing.assert_array_equal(whole > 0, pieces > 0)  # the same candidates in the same bins
    np.testing.assert_allclose(pieces, whole, rtol=1e-14, atol=0)  # BLAS and SIMD rounding only
    np.testing.assert_allclose(p_pieces, p_whole, rtol=1e-14, atol=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_banded_viterbi_matches_dense(seed):
    """Sparse observations force paths through zero-probability transitions (weight log(tiny))."""
    rng = np.random.default_rng(seed)
    bins, t = 40, 300
    local = librosa.sequence.transition_local(bins, 9, window="triangle", wrap=False)
    trans = np.kron(librosa.sequence.transition_loop(2, 0.97), local)
    prob = rng.random((2 * bins, t)) * (rng.random((2 * bins, t)) < 0.05)  # mostly zeros
    prob[:, rng.integers(0, t, 20)] = 0.0  # some frames with no evidence at all
    ref = librosa.sequence.viterbi(prob, trans, p_init=np.full(2 * bins, 0.5 / bins))
    ours = fast.banded_viterbi(prob, trans)
    np.testing.assert_array_equal(ours, ref)
    jumps = np.abs(np.diff(ours.astype(int) % bins))
    assert jumps.max() > 4  # the case above really did use a transition outside the band
