"""Control features of a stem: fundamental frequency (f0), voicing and loudness per frame."""

from __future__ import annotations

from dataclasses import dataclass

import librosa
import numpy as np

from ..audio import resample
from ..errors import ParameterError
from ..memo import ContentMemo
from .crepe import FEATURE_SR, crepe_f0, crepe_viterbi  # noqa: F401  (re-exported)
from .pyin import pyin

#: Analysis rate and hop for control features (DDSP uses 16 kHz; 62.5 frames/s here).
FEATURE_HOP = 256


@dataclass(frozen=True)
class Controls:
    """Frame-rate controls: ``f0_hz`` (0 where unvoiced), ``voiced`` in [0, 1], ``loudness_db``."""

    f0_hz: np.ndarray
    voiced: np.ndarray
    loudness_db: np.ndarray
    frame_rate: float

    def __len__(self) -> int:
        return len(self.f0_hz)


def a_weighted_loudness(y: np.ndarray, *, sr: int, hop_length: int, n_fft: int = 1024) -> np.ndarray:
    """A-weighted loudness (dB) per frame of mono ``y``, as in DDSP's ``compute_loudness``."""
    S = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop_length, center=True)) ** 2
    freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    with np.errstate(divide="ignore"):  # A-weighting is -inf dB at 0 Hz
        weights = librosa.db_to_power(librosa.A_weighting(freqs, min_db=-100.0))[:, None]
    power = np.mean(S * weights, axis=0)
    return librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=None).astype(np.float32)


F0_METHODS = ("pyin", "crepe")

#: Frames of padding kept around every non-silent run when f0 is tracked only where the stem
#: sounds (:func:`active_runs`): 80 ms at 100 frames/s, context for onsets and for the trackers.
ACTIVE_PAD_FRAMES = 8


def active_runs(loudness_db: np.ndarray, *, silence_db: float, pad: int = ACTIVE_PAD_FRAMES,
                min_gap: int | None = None) -> list[tuple[int, int]]:
    """Half-open frame ranges ``[start, end)`` where ``loudness_db > silence_db``, widened by ``pad`` frames.

    Runs less than ``min_gap`` frames apart (default ``2 * pad``) merge, so short dips do not cut a phrase.
    """
    loud = np.asarray(loudness_db) > silence_db
    if not loud.any():
        return []
    min_gap = 2 * pad if min_gap is None else min_gap
    edges = np.flatnonzero(np.diff(np.concatenate([[0], loud.astype(np.int8), [0]])))
    runs: list[list[int]] = []
    for s, e in zip(edges[::2], edges[1::2], strict=True):
        s, e = max(0, int(s) - pad), min(len(loud), int(e) + pad)
        if runs and s - runs[-1][1] < min_gap:
            runs[-1][1] = e
        else:
            runs.append([s, e])
    return [(s, e) for s, e in runs]


# --- torchcrepe, fast path -------------------------------------------------------------------


def _pyin(mono: np.ndarray, *, fmin: float, fmax: float, hop_length: int) -> tuple[np.ndarray, np.ndarray]:
    f0, voiced, _ = pyin(mono, fmin=fmin, fmax=fmax, sr=FEATURE_SR, frame_length=2048, hop_length=hop_length,
                         resolution=0.25, n_thresholds=50, center=True)
    return f0, voiced


def _pyin_runs(mono, runs, *, fmin, fmax, hop_length) -> tuple[np.ndarray, np.ndarray]:
    """pyin on each frame run of ``mono`` (with a window's worth of real audio around it), unvoiced elsewhere."""
    n_out = 1 + len(mono) // hop_length
    f0 = np.full(n_out, np.nan, np.float32)
    voiced = np.zeros(n_out, bool)
    ctx = -(-1024 // hop_length)  # frames whose centred window still overlaps the run's audio
    for s, e in runs:
        a, b = max(0, s - ctx), min(n_out, e + ctx)
        seg = mono[a * hop_length : (b - 1) * hop_length + 1]
        fs, vs = _pyin(seg, fmin=fmin, fmax=fmax, hop_length=hop_length)  # frame j centred on (a + j) * hop
        f0[s:e] = fs[s - a : e - a]
        voiced[s:e] = vs[s - a : e - a]
    return f0, voiced


_CONTROLS = ContentMemo(maxsize=8)


def extract_controls(y: np.ndarray, *, sr: int, **params) -> Controls:
    """f0, voicing and A-weighted loudness of ``(channels, n)`` audio (see :func:`compute_controls`
    for the parameters), remembered by the audio's content: the lead sheet and the re-voicing of
    the same stem share one analysis. The caller gets its own copy."""
    key = _CONTROLS.key(np.asarray(y), sr, tuple(sorted(params.items())))
    c = _CONTROLS.get(key, lambda: compute_controls(y, sr=sr, **params))
    return Controls(c.f0_hz.copy(), c.voiced.copy(), c.loudness_db.copy(), c.frame_rate)


def compute_controls(
    y: np.ndarray, *, sr: int, fmin: float = 40.0, fmax: float = 1200.0, silence_db: float = -70.0,
    f0_method: str = "pyin", hop_length: int = FEATURE_HOP, crepe_model: str | None = None,
    device: str | None = None, exact: bool = False, crepe_hop: int | None = None,
) -> Controls:
    """f0, voicing and A-weighted loudness of ``(channels, n)`` audio at ``16000 / hop_length`` frames/s.

    ``f0_method="pyin"`` (default): probabilistic YIN (Mauch & Dixon 2014) at 16 kHz with a
    0.25-semitone grid; :func:`covermill.instruments.pyin.pyin` decodes ``librosa.pyin``'s
    path about 4x faster. ``f0_method="crepe"``: :func:`crepe_f0`
    (torchcrepe, Viterbi, periodicity as voicing). Frames quieter than ``silence_db`` are
    unvoiced either way.

    By default f0 is tracked only on the non-silent runs of the loudness (:func:`active_runs`,
    padded by :data:`ACTIVE_PAD_FRAMES`) and crepe takes its fast path (see :func:`crepe_f0`;
    ``crepe_hop`` is passed on). Silent frames are unvoiced anyway, so this changes the result
    only through the trackers' context at a run's edges (their Viterbi smoothing): on voiced
    frames pyin and crepe agree with the full analysis within 50 cents. ``exact=True``
    analyses every frame (crepe: ``torchcrepe.predict`` as published).
    """
    if f0_method not in F0_METHODS:
        raise ParameterError(f"f0_method={f0_method!r}; choose one of {', '.join(F0_METHODS)}")
    if not isinstance(hop_length, (int, np.integer)) or hop_length <= 0:
        raise ParameterError(f"hop_length={hop_length!r} must be a positive integer")
    if crepe_hop is not None and (exact or f0_method != "crepe"):
        raise ParameterError("crepe_hop applies to the fast crepe path only (f0_method='crepe', exact=False)")
    frame_rate = FEATURE_SR / hop_length
    mono = np.asarray(y, dtype=np.float32)
    if mono.ndim == 2:
        mono = mono.mean(axis=0)
    mono = resample(mono[None], sr_in=sr, sr_out=FEATURE_SR)[0]
    loud = a_weighted_loudness(mono, sr=FEATURE_SR, hop_length=hop_length)
    if np.max(np.abs(mono)) < 1e-6:
        n = len(loud)
        return Controls(np.zeros(n, np.float32), np.zeros(n, np.float32), loud, frame_rate)
    runs = None if exact else active_runs(loud, silence_db=silence_db)
    if f0_method == "crepe":
        f0, voiced_flag = crepe_f0(mono, hop_length=hop_length, fmin=fmin, fmax=fmax, model=crepe_model,
                                   device=device, exact=exact, runs=runs, crepe_hop=crepe_hop)
        voiced_flag = voiced_flag > 0
    elif runs is None:
        f0, voiced_flag = _pyin(mono, fmin=fmin, fmax=fmax, hop_length=hop_length)
    else:
        f0, voiced_flag = _pyin_runs(mono, runs, fmin=fmin, fmax=fmax, hop_length=hop_length)
    n = min(len(f0), len(loud))
    f0, voiced_flag, loud = f0[:n], voiced_flag[:n], loud[:n]
    voiced = (voiced_flag & (loud > silence_db)).astype(np.float32)
    f0 = np.where(voiced > 0, np.nan_to_num(f0, nan=0.0), 0.0).astype(np.float32)
    return Controls(f0, voiced, loud, frame_rate)


def retime(controls: Controls, *, time_ratio: float, n_frames: int | None = None) -> Controls:
    """Play the controls ``time_ratio`` times faster (``> 1`` shortens) by interpolation.

    f0 is interpolated in log-frequency between voiced frames; voicing is taken from the
    nearest frame so notes keep sharp boundaries.
    """
    n_in = len(controls)
    if n_frames is None:
        n_frames = max(1, int(round(n_in / time_ratio)))
    src = np.minimum(np.arange(n_frames) * time_ratio, n_in - 1)
    nearest = np.clip(np.round(src).astype(int), 0, n_in - 1)
    voiced = controls.voiced[nearest]
    idx = np.arange(n_in)
    loud = np.interp(src, idx, controls.loudness_db).astype(np.float32)
    vmask = controls.f0_hz > 0
    if vmask.any():
        logf = np.interp(src, idx[vmask], np.log2(controls.f0_hz[vmask]))
        f0 = np.where(voiced > 0, 2.0 ** logf, 0.0).astype(np.float32)
    else:
        f0 = np.zeros(n_frames, np.float32)
    return Controls(f0, voiced.astype(np.float32), loud, controls.frame_rate)
