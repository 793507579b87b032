"""The embedded DSP separator: no weights, runs anywhere, stems sum back to the mix.

Method (masks computed once, on a band grid of the mid signal, and applied to both channels,
so the stereo image is kept; the STFT, masking and inverse STFT stream over blocks of frames,
so working memory beyond the stems stays a few MB):

1. **drums**: harmonic/percussive soft masks from median filtering (Fitzgerald 2010,
   ``librosa.decompose.hpss``, computed by :func:`covermill.kernels.hpss`) -> the percussive share.
2. **bass**: the harmonic share below a crossover (full below ``bass_hz``, raised-cosine
   fade to zero at ``2 * bass_hz``).
3. **vocals**: in the harmonic share above the crossover and below ``vocal_max_hz``, the
   part that does not repeat: REPET-SIM (Rafii & Pardo 2012) with ``librosa.decompose.nn_filter``
   gives the repeating background; a Wiener-style soft mask keeps the rest. On stereo
   input the mask is weighted by centre-ness (inter-channel coherence, Avendano & Jot 2004),
   since lead vocals sit in the centre.
4. **other**: whatever is left, so the four masks sum to one in every bin and the stems
   sum back to the mix (up to float error of the inverse STFT).
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor

import librosa
import numpy as np
import scipy.fft

from ..audio import check_audio
from ..constants import STEM_NAMES
from ..errors import ParameterError
from ..kernels import hpss
from . import register


def _raised_cosine(freqs: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """1 below ``lo``, 0 above ``hi``, a raised-cosine fade in between."""
    x = np.clip((freqs - lo) / max(hi - lo, 1e-9), 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * x))


def band_filters(*, sr: int, n_fft: int, n_bands: int, linear_below_hz: float) -> np.ndarray:
    """``(rows, n_fft // 2 + 1)`` analysis filters: one row per linear bin below
    ``linear_below_hz`` (mel bands there would be narrower than a bin), mel bands above."""
    n_bins = n_fft // 2 + 1
    k_lin = int(np.searchsorted(librosa.fft_frequencies(sr=sr, n_fft=n_fft), linear_below_hz))
    fmin = min(linear_below_hz, sr / 4)
    mel = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_bands, fmin=fmin, fmax=sr / 2, norm=None)
    mel[:, :k_lin] = 0.0
    return np.vstack([np.eye(k_lin, n_bins, dtype=np.float32), mel[mel.sum(axis=1) > 0]])


def repet_sim_mask(M: np.ndarray, *, width: int, window: int, k: int = 20, margin: float = 2.0) -> np.ndarray:
    """REPET-SIM foreground mask for a non-negative ``(bands, frames)`` spectrogram.

    For every frame, the ``k`` most similar frames (cosine similarity of log-compressed
    spectra) at least ``width`` and at most ``window`` frames away are found; their median
    is the repeating background, and a Wiener-style soft mask returns the foreground share.
    Similarities are computed block by block with BLAS, so cost and memory grow linearly
    with the song (not quadratically, as with a full recurrence matrix).
    """
    n_bands, T = M.shape
    if T < 2 * width + 2 or not np.any(M > 0):
        background = np.minimum(M, np.median(M, axis=1, keepdims=True))
        return librosa.util.softmask(M - background, margin * background, power=2)
    F = np.log1p(M / (np.max(M) * 1e-4)).T.astype(np.float32)  # (T, bands)
    F /= np.maximum(np.linalg.norm(F, axis=1, keepdims=True), 1e-9)
    background = np.empty_like(M)
    block = 1024
    k = max(1, min(k, T - 2 * width - 1))
    for start in range(0, T, block):
        stop = min(T, start + block)
        lo, hi = max(0, start - window), min(T, stop + window)
        sim = F[start:stop] @ F[lo:hi].T  # (rows, cols)
        rows = np.arange(start, stop)[:, None]
        cols = np.arange(lo, hi)[None, :]
        dist = np.abs(rows - cols)
        sim[(dist < width) | (dist > window)] = -np.inf
        kk = min(k, sim.shape[1] - 1)
        idx = np.argpartition(-sim, kk, axis=1)[:, :kk] + lo  # (rows, kk)
        valid = np.take_along_axis(sim, idx - lo, axis=1) > -np.inf
        # an invalid neighbour (too few frames in reach) stands in as the frame itself
        idx = np.where(valid, idx, rows)
        med = np.median(M[:, idx], axis=2)  # (bands, rows)
        background[:, start:stop] = np.minimum(M[:, start:stop], med)
    return librosa.util.softmask(M - background, margin * background, power=2)


@register("dsp")
class DSPSeparator:
    """HPSS + crossover + REPET-SIM separator (see module docstring).

    Parameters
    ----------
    bass_hz : float
        Crossover below which harmonic energy is bass (fade to 0 at twice this).
    vocal_max_hz : float
        Upper edge of the vocal band (fade over one octave above it).
    hpss_margin : float >= 1
        HPSS separation margin; larger means stricter drums (the residual goes to the harmonic side).
    kernel_size : (int, int)
        HPSS median filter lengths (frames, bands). The defaults (margin 3, kernel 9x9, crossover
        250 Hz) were chosen on ``bench/bench_stems.py`` (+1.0 dB mean SDR over margin 1, 17x9, 150 Hz);
        that material is one song, so they are tuned, not validated on held-out music.
    repet_width_s : float
        Minimum time distance (s) between frames REPET-SIM may call similar.
    workers : int
        Threads for the blocks of the second pass; does not change the result.
    """

    name = "dsp"

    def __init__(
        self,
        *,
        bass_hz: float = 150.0,
        vocal_max_hz: float = 6000.0,
        hpss_margin: float = 1.0,
        kernel_size: tuple[int, int] = (17, 9),
        repet_width_s: float = 2.0,
        repet_window_s: float = 60.0,
        vocal_margin: float = 2.0,
        n_bands: int = 128,
        linear_below_hz: float = 500.0,
        workers: int = 2,
    ) -> None:
        self.bass_hz = bass_hz
        self.vocal_max_hz = vocal_max_hz
        self.hpss_margin = hpss_margin
        self.kernel_size = kernel_size
        self.repet_width_s = repet_width_s
        self.repet_window_s = repet_window_s
        self.n_bands = n_bands
        self.linear_below_hz = linear_below_hz
        self.vocal_margin = vocal_margin
        self.workers = workers

    def _params(self, sr: int) -> tuple[int, int]:
        n_fft = int(2 ** np.round(np.log2(0.093 * sr)))  # ~93 ms: 4096 at 44.1 kHz
        return n_fft, n_fft // 4

    @staticmethod
    def _frames(seconds: float, sr: int, n_fft: int) -> int:
        return max(1, int(round(seconds * sr / (n_fft // 4))))

    def band_masks(self, M: np.ndarray, *, sr: int, n_fft: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(harmonic, percussive, vocal)`` soft masks on the band grid, from the mid band power ``M``."""
        if self.hpss_margin < 1:
            raise ParameterError(f"hpss_margin={self.hpss_margin} must be >= 1")
        mh_b, mp_b = hpss(M, kernel_size=self.kernel_size, margin=self.hpss_margin, mask=True, power=1.0)
        v_b = repet_sim_mask(M * mh_b, width=self._frames(self.repet_width_s, sr, n_fft),
                             window=self._frames(self.repet_window_s, sr, n_fft), margin=self.vocal_margin)
        return mh_b.astype(np.float32), mp_b.astype(np.float32), v_b.astype(np.float32)

    def separate(self, y: np.ndarray, *, sr: int) -> dict[str, np.ndarray]:
        """Separate ``(channels, n)`` audio into :data:`STEM_NAMES`, each ``(channels, n)``.

        Two streaming passes over blocks of STFT frames (memory: the stems plus a few MB,
        whatever the song's length): the first collects the mid band power, on which the
        band masks are computed once; the second applies the masks, expanded to linear bins
        and weighted by centre-ness, to each channel's STFT and overlap-adds the inverse.
        """
        y = check_audio(y, sr)
        n_fft, hop = self._params(sr)
        C, n = y.shape
        T = 1 + n // hop  # frames of a centred STFT
        pad = n_fft // 2
        n_padded = n + 2 * pad  # the signal zero-padded by n_fft // 2 each side (padded per block, not copied)
        win = librosa.filters.get_window("hann", n_fft, fftbins=True).astype(np.float32)
        fb = band_filters(sr=sr, n_fft=n_fft, n_bands=self.n_bands, linear_below_hz=self.linear_below_hz)
        back = (fb.T / np.maximum(fb.T.sum(axis=1, keepdims=True), 1e-12)).astype(np.float32)  # (F, bands)
        covered = (fb.sum(axis=0) > 0).astype(np.float32)
        back_t = np.ascontiguousarray(back.T)  # (bands, F)
        fb = fb.astype(np.float32)

        def stft(x: np.ndarray, t0: int, t1: int) -> np.ndarray:  # time-major: (..., frames, bins)
            a, b = t0 * hop - pad, (t1 - 1) * hop + n_fft - pad  # the block's span of x, padded with zeros
            seg = x[..., max(a, 0) : min(b, n)]
            if a < 0 or b > n:
                seg = np.pad(seg, [(0, 0)] * (seg.ndim - 1) + [(max(-a, 0), max(b - n, 0))])
            frames = np.lib.stride_tricks.sliding_window_view(seg, n_fft, axis=-1)[..., ::hop, :] * win
            return scipy.fft.rfft(frames, axis=-1)

        blocks = [(t0, min(T, t0 + _BLOCK)) for t0 in range(0, T, _BLOCK)]
        mid = y.mean(axis=0)
        M = np.empty((fb.shape[0], T), np.float32)
        for t0, t1 in blocks:
            M[:, t0:t1] = fb @ (np.abs(stft(mid, t0, t1)) ** 2).T
        del mid
        mh_b, mp_b, v_b = self.band_masks(M, sr=sr, n_fft=n_fft)

        freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
        w_low = _raised_cosine(freqs, self.bass_hz, 2 * self.bass_hz).astype(np.float32)
        w_band = ((1.0 - w_low) * _raised_cosine(freqs, self.vocal_max_hz, 2 * self.vocal_max_hz)).astype(np.float32)
        names = STEM_NAMES[:-1]  # vocals, drums, bass; other is the remainder
        out = np.zeros((len(names), C, n_padded), np.float32)
        def synthesize(t0: int, t1: int) -> np.ndarray:  # windowed frames of the masked stems, (3, C, Tc, n_fft)
            X = stft(y, t0, t1)  # (C, Tc, F)
            drums = (mp_b[:, t0:t1].T @ back_t) * covered  # (Tc, F)
            harmonic = 1.0 - drums  # margins leave a residual: the harmonic side takes it
            v = v_b[:, t0:t1].T @ back_t
            if C >= 2:
                a, b = np.abs(X[0]), np.abs(X[1])
                v *= 2 * a * b / (a * a + b * b + 1e-12)
            masks = np.stack([harmonic * w_band * v, drums, harmonic * w_low])  # (3, Tc, F), order of `names`
            frames = scipy.fft.irfft(masks[:, None] * X[None], n=n_fft, axis=-1)
            frames *= win
            return frames

        # blocks run in `workers` threads (numpy and scipy.fft release the GIL); at most workers + 1
        # blocks are in flight, and they are overlap-added in order, so the result does not depend on it
        with ThreadPoolExecutor(max(1, self.workers)) as pool:
            pending: deque = deque()
            for t0, t1 in blocks:
                pending.append((t0, pool.submit(synthesize, t0, t1)))
                if len(pending) > self.workers:
                    start, fut = pending.popleft()
                    _overlap_add(out, fut.result(), start * hop, hop)
            for start, fut in pending:
                _overlap_add(out, fut.result(), start * hop, hop)
        wss = np.zeros((1, 1, n_padded), np.float32)
        _overlap_add(wss, np.broadcast_to(win**2, (1, 1, T, n_fft)), 0, hop)
        norm = wss[0, 0, n_fft // 2 : n_fft // 2 + n]
        norm = np.where(norm > 1e-6, norm, 1.0)
        stems = {}
        rest = y.copy()  # the last stem is the remainder in the time domain: stems sum to the mix exactly
        for i, name in enumerate(names):
            stem = out[i, :, n_fft // 2 : n_fft // 2 + n]  # a view: no copy of the song-long buffers
            stem /= norm
            rest -= stem
            stems[name] = stem
        stems[STEM_NAMES[-1]] = rest
        return {name: stems[name] for name in STEM_NAMES}


_BLOCK = 256  # STFT frames per block (about 6 s at 44.1 kHz)


def _overlap_add(out: np.ndarray, frames: np.ndarray, start: int, hop: int) -> None:
    """Add ``frames`` ``(..., Tc, n_fft)`` into ``out`` ``(..., N)``, frame ``t`` at ``start + t * hop``."""
    Tc, n_fft = frames.shape[-2:]
    lead = frames.shape[:-2]
    for k in range(n_fft // hop):  # piece k of every frame, laid end to end (views, no copies)
        dst = out[..., start + k * hop : start + k * hop + Tc * hop].reshape(*lead, Tc, hop)
        dst += frames[..., k * hop : (k + 1) * hop]
