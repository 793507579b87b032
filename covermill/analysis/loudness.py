"""Loudness (ITU-R BS.1770-4 via pyloudnorm) and true peak (4x oversampled, BS.1770 Annex 2)."""

from __future__ import annotations

import numpy as np
import pyloudnorm
import soxr


def integrated_lufs(y: np.ndarray, *, sr: int) -> float:
    """Integrated loudness (LUFS) of ``(channels, n)`` audio; ``-inf`` for silence."""
    meter = pyloudnorm.Meter(sr)
    y = np.asarray(y, dtype=np.float64)
    if y.shape[1] < int(0.4 * sr):  # BS.1770 needs one 400 ms block
        y = np.pad(y, ((0, 0), (0, int(0.4 * sr) - y.shape[1] + 1)))
    with np.errstate(divide="ignore"):
        return float(meter.integrated_loudness(y.T))


def true_peak_db(y: np.ndarray, *, sr: int, oversample: int = 4) -> float:
    """True peak (dBTP): the sample peak after ``oversample``-times upsampling."""
    y = np.asarray(y, dtype=np.float32)
    if y.size == 0:
        return float("-inf")
    up = soxr.resample(np.ascontiguousarray(y.T), sr, sr * oversample, quality="HQ")
    peak = float(np.max(np.abs(up))) if up.size else 0.0
    return 20.0 * np.log10(peak) if peak > 0 else float("-inf")
