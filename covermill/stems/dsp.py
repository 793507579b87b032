"""The embedded DSP separator: no weights, runs anywhere, stems sum back to the mix.

Method (one STFT per channel; masks computed once on the mid signal and applied to
both channels, so the stereo image is kept):

1. **drums**: harmonic/percussive soft masks from median filtering (Fitzgerald 2010,
   ``librosa.decompose.hpss``) -> the percussive share.
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

import librosa
import numpy as np

from ..audio import check_audio
from ..constants import STEM_NAMES
from ..errors import ParameterError
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
        HPSS separation margin; larger means stricter drums.
    repet_width_s : float
        Minimum time distance (s) between frames REPET-SIM may call similar.
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

    def _params(self, sr: int) -> tuple[int, int]:
        n_fft = int(2 ** np.round(np.log2(0.093 * sr)))  # ~93 ms: 4096 at 44.1 kHz
        return n_fft, n_fft // 4

    def masks(self, X: np.ndarray, *, sr: int, n_fft: int) -> dict[str, np.ndarray]:
        """Soft masks ``{stem: (freq, frames)}`` summing to one, from a multichannel STFT ``X``.

        HPSS and REPET-SIM run on a band grid of the mid power spectrum (linear bins below
        ``linear_below_hz``, mel bands above: about 10x fewer rows than the STFT); their
        masks are interpolated back to linear bins.
        """
        if self.hpss_margin < 1:
            raise ParameterError(f"hpss_margin={self.hpss_margin} must be >= 1")
        P = np.abs(X.mean(axis=0)) ** 2  # mid power, (F, T)
        fb = band_filters(sr=sr, n_fft=n_fft, n_bands=self.n_bands, linear_below_hz=self.linear_below_hz)
        back = fb.T / np.maximum(fb.T.sum(axis=1, keepdims=True), 1e-12)  # (F, bands), rows sum to 1
        uncovered = fb.sum(axis=0) <= 0
        M = fb @ P  # (bands, T)
        mh_b, mp_b = librosa.decompose.hpss(M, kernel_size=self.kernel_size, margin=self.hpss_margin, mask=True, power=1.0)
        m_p = back @ mp_b
        m_p[uncovered] = 0.0
        m_h = 1.0 - m_p  # margins leave a residual: the harmonic side takes it
        v = back @ repet_sim_mask(M * mh_b, width=self._frames(self.repet_width_s, sr, n_fft),
                                  window=self._frames(self.repet_window_s, sr, n_fft), margin=self.vocal_margin)
        if X.shape[0] >= 2:
            L, R = X[0], X[1]
            v = v * (2 * np.abs(L * np.conj(R)) / (np.abs(L) ** 2 + np.abs(R) ** 2 + 1e-12))
        freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft)[:, None]
        w_low = _raised_cosine(freqs, self.bass_hz, 2 * self.bass_hz)
        w_band = (1.0 - w_low) * _raised_cosine(freqs, self.vocal_max_hz, 2 * self.vocal_max_hz)
        drums = m_p
        bass = m_h * w_low
        vocals = m_h * w_band * v
        other = np.clip(1.0 - drums - bass - vocals, 0.0, 1.0)
        return {"vocals": vocals, "drums": drums, "bass": bass, "other": other}

    @staticmethod
    def _frames(seconds: float, sr: int, n_fft: int) -> int:
        return max(1, int(round(seconds * sr / (n_fft // 4))))

    def separate(self, y: np.ndarray, *, sr: int) -> dict[str, np.ndarray]:
        """Separate ``(channels, n)`` audio into :data:`STEM_NAMES`, each ``(channels, n)``."""
        y = check_audio(y, sr)
        n_fft, hop = self._params(sr)
        n = y.shape[1]
        if n < n_fft:
            y = np.pad(y, ((0, 0), (0, n_fft - n)))
        X = librosa.stft(y, n_fft=n_fft, hop_length=hop)
        masks = self.masks(X, sr=sr, n_fft=n_fft)
        stems = {}
        for name in STEM_NAMES[:-1]:
            Y = X * masks[name].astype(np.float32)[None]
            stems[name] = librosa.istft(Y, hop_length=hop, n_fft=n_fft, length=y.shape[1])[:, :n].astype(np.float32)
        # the last stem is the remainder in the time domain: stems sum to the mix exactly
        last = STEM_NAMES[-1]
        stems[last] = (y[:, :n] - sum(stems.values())).astype(np.float32)
        return {name: stems[name] for name in STEM_NAMES}
