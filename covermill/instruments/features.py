"""Control features of a stem: fundamental frequency (f0), voicing and loudness per frame."""

from __future__ import annotations

from dataclasses import dataclass

import librosa
import numpy as np

from ..audio import resample
from ..errors import BackendUnavailableError, ParameterError

#: Analysis rate and hop for control features (DDSP uses 16 kHz; 62.5 frames/s here).
FEATURE_SR = 16000
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


def crepe_f0(
    mono: np.ndarray, *, hop_length: int, fmin: float = 40.0, fmax: float = 1200.0, model: str | None = None,
    device: str | None = None, periodicity_threshold: float = 0.25,
) -> tuple[np.ndarray, np.ndarray]:
    """f0 (Hz) and voicing (0/1) per frame of mono 16 kHz audio with torchcrepe (Kim et al. 2018).

    The network weights ship inside the ``torchcrepe`` package (``tiny`` and ``full``);
    ``model=None`` picks ``full`` when CUDA is available and ``tiny`` otherwise. Viterbi
    decoding smooths the pitch path; periodicity (median-filtered over 3 frames) above
    ``periodicity_threshold`` marks a frame voiced. Frames are centred like librosa's.
    """
    try:
        import torch
        import torchcrepe
    except ImportError as exc:  # pragma: no cover - both are dependencies
        raise BackendUnavailableError(f"f0_method='crepe' needs torchcrepe ({exc}); pip install torchcrepe") from None
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if model is None:
        model = "full" if device.startswith("cuda") else "tiny"
    audio = torch.from_numpy(np.ascontiguousarray(mono, dtype=np.float32))[None]
    with torch.inference_mode():
        f0, periodicity = torchcrepe.predict(
            audio, FEATURE_SR, hop_length=hop_length, fmin=fmin, fmax=fmax, model=model,
            decoder=torchcrepe.decode.viterbi, return_periodicity=True, batch_size=512, device=device, pad=True,
        )
        periodicity = torchcrepe.filter.median(periodicity, 3)
    f0 = f0[0].cpu().numpy().astype(np.float32)
    voiced = (periodicity[0].cpu().numpy() > periodicity_threshold).astype(np.float32)
    return f0, voiced


def extract_controls(
    y: np.ndarray, *, sr: int, fmin: float = 40.0, fmax: float = 1200.0, silence_db: float = -70.0,
    f0_method: str = "pyin", hop_length: int = FEATURE_HOP, crepe_model: str | None = None,
    device: str | None = None,
) -> Controls:
    """f0, voicing and A-weighted loudness of ``(channels, n)`` audio at ``16000 / hop_length`` frames/s.

    ``f0_method="pyin"`` (default): probabilistic YIN (Mauch & Dixon 2014, ``librosa.pyin``)
    at 16 kHz with a 0.25-semitone grid. ``f0_method="crepe"``: :func:`crepe_f0`
    (torchcrepe, Viterbi, periodicity as voicing). Frames quieter than ``silence_db`` are
    unvoiced either way.
    """
    if f0_method not in F0_METHODS:
        raise ParameterError(f"f0_method={f0_method!r}; choose one of {', '.join(F0_METHODS)}")
    if not isinstance(hop_length, (int, np.integer)) or hop_length <= 0:
        raise ParameterError(f"hop_length={hop_length!r} must be a positive integer")
    frame_rate = FEATURE_SR / hop_length
    mono = np.asarray(y, dtype=np.float32)
    if mono.ndim == 2:
        mono = mono.mean(axis=0)
    mono = resample(mono[None], sr_in=sr, sr_out=FEATURE_SR)[0]
    loud = a_weighted_loudness(mono, sr=FEATURE_SR, hop_length=hop_length)
    if np.max(np.abs(mono)) < 1e-6:
        n = len(loud)
        return Controls(np.zeros(n, np.float32), np.zeros(n, np.float32), loud, frame_rate)
    if f0_method == "crepe":
        f0, voiced_flag = crepe_f0(mono, hop_length=hop_length, fmin=fmin, fmax=fmax, model=crepe_model,
                                   device=device)
        voiced_flag = voiced_flag > 0
    else:
        f0, voiced_flag, _ = librosa.pyin(
            mono, fmin=fmin, fmax=fmax, sr=FEATURE_SR, frame_length=2048, hop_length=hop_length,
            resolution=0.25, n_thresholds=50, center=True,
        )
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
