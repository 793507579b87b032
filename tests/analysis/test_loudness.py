"""Fast BS.1770 loudness and true peak against their reference computations."""

import numpy as np
import pyloudnorm
import pytest
from conftest import SR

from covermill.analysis.loudness import integrated_lufs, true_peak_db, upsample4


def _music_like(seconds: float, channels: int, seed: int) -> np.ndarray:
    """Noise bursts at varied levels with near-silent gaps, so both gates do something."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    env = np.repeat(10 ** (rng.uniform(-60, 0, int(seconds * 4)) / 20), n // int(seconds * 4) + 1)[:n]
    return (rng.standard_normal((channels, n)) * env * 0.3).astype(np.float32)


@pytest.mark.parametrize("channels,seconds,seed", [(1, 7.3, 0), (2, 20.0, 1), (2, 0.9, 2), (5, 4.1, 3)])
def test_integrated_lufs_equals_pyloudnorm(channels, seconds, seed):
    y = _music_like(seconds, channels, seed)
    expected = pyloudnorm.Meter(SR).integrated_loudness(y.T.astype(np.float64))
    assert integrated_lufs(y, sr=SR) == pytest.approx(expected, abs=1e-6)


def test_integrated_lufs_other_rate_and_silence():
    y = _music_like(5.0, 2, 4)[:, ::2]  # 22.05 kHz
    assert integrated_lufs(y, sr=SR // 2) == pytest.approx(
        pyloudnorm.Meter(SR // 2).integrated_loudness(y.T.astype(np.float64)), abs=1e-6)
    assert integrated_lufs(np.zeros((2, SR)), sr=SR) == float("-inf")


def _brute_true_peak(y: np.ndarray) -> float:
    return 20 * np.log10(np.max(np.abs(upsample4(np.asarray(y, np.float64)))))


@pytest.mark.parametrize("seed", range(4))
def test_true_peak_equals_upsampling_everything(seed):
    y = _music_like(6.0, 2, seed)
    rng = np.random.default_rng(seed)
    at = rng.integers(0, y.shape[1] - 3)
    y[:, at : at + 3] = [0.7, -0.9, 0.8]  # an alternating run: its inter-sample peaks exceed its samples
    assert true_peak_db(y, sr=SR, block=1024) == pytest.approx(_brute_true_peak(y), abs=1e-5)


def test_true_peak_finds_inter_sample_peaks():
    # a sine at fs/4 sampled 45 degrees off its crests: samples at 0.707, the waveform reaches 1
    n = np.arange(SR)
    y = np.sin(np.pi / 2 * n + np.pi / 4)[None].astype(np.float32)
    sample_peak_db = 20 * np.log10(np.max(np.abs(y)))
    assert sample_peak_db == pytest.approx(-3.01, abs=0.01)
    assert true_peak_db(y, sr=SR) == pytest.approx(0.0, abs=0.3)


def test_true_peak_at_the_very_end_and_of_silence():
    y = np.zeros((2, 5000), np.float32)
    y[:, -2:] = [0.9, -0.9]
    assert true_peak_db(y, sr=SR) == pytest.approx(_brute_true_peak(y), abs=1e-5)
    assert true_peak_db(np.zeros((2, 100)), sr=SR) == float("-inf")
    assert true_peak_db(np.zeros((2, 0)), sr=SR) == float("-inf")
