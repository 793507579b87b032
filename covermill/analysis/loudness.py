"""Loudness (ITU-R BS.1770-4) and true peak (BS.1770-4 Annex 2), fast enough to run per render.

Integrated loudness follows pyloudnorm's ``Meter`` exactly -- its K-weighting filters
(taken from pyloudnorm, so the filter design has one source), its 400-ms blocks with 75 %
overlap and the same block boundaries, the absolute (-70 LUFS) and relative (-10 LU)
gates -- but filters all channels in one ``sosfilt`` call and takes every block's mean
square from one cumulative sum instead of a Python loop (about 4x faster on a 3-minute
song; equal to pyloudnorm within 1e-6 LU, tested).

True peak is the sample peak of the signal upsampled 4x with the 48-tap interpolation
filter of BS.1770-4 Annex 2. Only the stretches of the signal that could hold the peak
are upsampled: each interpolated sample is a weighted sum of 12 input samples, so it
cannot exceed the largest of them times the phase's sum of absolute taps. Blocks are
upsampled from the loudest down until that bound falls below the peak found so far --
the same value as upsampling everything (tested), usually from a few blocks.
"""

from __future__ import annotations

import functools

import numpy as np
import pyloudnorm
import scipy.signal

#: BS.1770-4 Annex 2, Table 1: the 4x interpolation filter (48 taps, 4 phases of 12).
ANNEX2_TAPS = np.array([
    0.0017089843750, 0.0109863281250, -0.0196533203125, 0.0332031250000, -0.0594482421875, 0.1373291015625,
    0.9721679687500, -0.1022949218750, 0.0476074218750, -0.0266113281250, 0.0148925781250, -0.0083007812500,
    -0.0291748046875, 0.0292968750000, -0.0517578125000, 0.0891113281250, -0.1665039062500, 0.4650878906250,
    0.7797851562500, -0.2003173828125, 0.1015625000000, -0.0582275390625, 0.0330810546875, -0.0189208984375,
    -0.0189208984375, 0.0330810546875, -0.0582275390625, 0.1015625000000, -0.2003173828125, 0.7797851562500,
    0.4650878906250, -0.1665039062500, 0.0891113281250, -0.0517578125000, 0.0292968750000, -0.0291748046875,
    -0.0083007812500, 0.0148925781250, -0.0266113281250, 0.0476074218750, -0.1022949218750, 0.9721679687500,
    0.1373291015625, -0.0594482421875, 0.0332031250000, -0.0196533203125, 0.0109863281250, 0.0017089843750,
]).reshape(4, 12)
_GAINS = (1.0, 1.0, 1.0, 1.41, 1.41)  # BS.1770 channel weights (L, R, C, Ls, Rs)
_BLOCK_S, _STEP = 0.4, 0.25


@functools.lru_cache(maxsize=8)
def _k_weighting(sr: int) -> np.ndarray:
    """Second-order sections of pyloudnorm's K-weighting (high shelf, then high pass) at ``sr``."""
    sos = []
    for stage in pyloudnorm.Meter(sr)._filters.values():
        sos.append(np.concatenate([stage.b * stage.passband_gain, stage.a]))
    return np.array(sos)


def block_powers(y: np.ndarray, *, sr: int) -> np.ndarray:
    """Mean square of the K-weighted signal per channel and 400-ms block, ``(channels, n_blocks)``.

    Block ``j`` spans samples ``int(0.4 (0.25 j) sr)`` to ``int(0.4 (0.25 j + 1) sr)``, as in
    pyloudnorm, and its sum is divided by ``0.4 sr``.
    """
    x = np.asarray(y, dtype=np.float64)
    if x.ndim == 1:
        x = x[None]
    if x.shape[1] < int(_BLOCK_S * sr):  # BS.1770 needs one 400 ms block
        x = np.pad(x, ((0, 0), (0, int(_BLOCK_S * sr) - x.shape[1] + 1)))
    weighted = scipy.signal.sosfilt(_k_weighting(sr), x, axis=-1)
    csum = np.zeros((x.shape[0], x.shape[1] + 1))
    np.cumsum(weighted * weighted, axis=-1, out=csum[:, 1:])
    n_blocks = int(np.round((x.shape[1] / sr - _BLOCK_S) / (_BLOCK_S * _STEP))) + 1
    j = np.arange(n_blocks)
    lo = (_BLOCK_S * (j * _STEP) * sr).astype(np.int64)
    hi = np.minimum((_BLOCK_S * (j * _STEP + 1) * sr).astype(np.int64), x.shape[1])
    return (csum[:, hi] - csum[:, lo]) / (_BLOCK_S * sr)


def integrated_lufs(y: np.ndarray, *, sr: int) -> float:
    """Integrated loudness (LUFS) of ``(channels, n)`` audio (at most 5 channels); ``-inf`` for silence."""
    return lufs_from_blocks(block_powers(y, sr=sr))


def lufs_from_blocks(z: np.ndarray) -> float:
    """Integrated loudness from :func:`block_powers` ``z``: the two BS.1770 gates and the gated mean.

    The signal scaled by ``a`` has block powers ``a**2 * z``: a gain's effect on loudness is
    computed exactly from ``z``, without filtering the audio again.
    """
    g = np.asarray(_GAINS[: z.shape[0]])[:, None]
    with np.errstate(divide="ignore"):
        block_lufs = -0.691 + 10.0 * np.log10((g * z).sum(axis=0))
        gated = block_lufs >= -70.0
        if not gated.any():
            return float("-inf")
        relative = -0.691 + 10.0 * np.log10((g[:, 0] * z[:, gated].mean(axis=1)).sum()) - 10.0
        keep = (block_lufs > relative) & (block_lufs > -70.0)
        if not keep.any():
            return float("-inf")
        return float(-0.691 + 10.0 * np.log10((g[:, 0] * z[:, keep].mean(axis=1)).sum()))


def upsample4(y: np.ndarray) -> np.ndarray:
    """4x upsampling of ``(channels, n)`` with the Annex 2 filter: ``(channels, 4 (n + 11))``, the filter's tail included."""
    h = ANNEX2_TAPS.T.ravel()  # h[4 k + p] = phase p, tap k
    y = np.asarray(y)
    return scipy.signal.upfirdn(h.astype(y.dtype if y.dtype == np.float64 else np.float32), y, up=4, axis=-1)


def true_peak_db(y: np.ndarray, *, sr: int | None = None, block: int = 65536) -> float:
    """True peak (dBTP): the peak of the 4x oversampled signal (BS.1770-4 Annex 2 filter).

    ``sr`` is accepted for symmetry with :func:`integrated_lufs` (the Annex 2 filter is
    defined relative to the sample rate). The signal is upsampled in blocks (bounded
    memory), loudest first; a block is skipped when its neighbourhood's sample peak times
    the filter's largest absolute tap sum cannot beat the peak found so far.
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 1:
        y = y[None]
    if y.size == 0:
        return float("-inf")
    n = y.shape[1]
    taps = ANNEX2_TAPS.shape[1]
    gain = float(np.abs(ANNEX2_TAPS).sum(axis=1).max())
    n_blocks = -(-n // block)
    peaks = np.pad(np.abs(y).max(axis=0), (0, n_blocks * block - n)).reshape(n_blocks, block).max(axis=1)
    # a block's outputs also depend on the `taps - 1` samples before it
    reach = np.maximum(peaks, np.concatenate([[0.0], peaks[:-1]]))
    best = 0.0
    for b in np.argsort(-reach, kind="stable"):
        if reach[b] * gain <= best:
            break
        lo, hi = max(0, b * block - (taps - 1)), min(n, (b + 1) * block)
        up = upsample4(y[:, lo:hi])
        first = 4 * (b * block - lo)  # outputs before the block lack their full history: another block's
        last = up.shape[1] if hi == n else 4 * (hi - lo)  # the last block keeps the filter's ring-out
        best = max(best, float(np.max(np.abs(up[:, first:last]))))
    return 20.0 * np.log10(best) if best > 0 else float("-inf")
