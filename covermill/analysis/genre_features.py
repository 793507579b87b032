"""GTZAN table features: the 58 columns of the Kaggle GTZAN ``features_30_sec.csv``.

The Kaggle table (andradaolteanu, "GTZAN Dataset - Music Genre Classification") was made with
librosa defaults on 22050 Hz mono clips: ``n_fft=2048``, ``hop_length=512``. Every frame-wise
feature is summarised by the mean and the variance over all of its values (all bins and frames);
``harmony``/``perceptr`` are the harmonic and percussive *waveforms* of
:func:`librosa.effects.hpss` (so their means are near 0); ``tempo`` is
:func:`librosa.beat.beat_track`'s global estimate; ``length`` is the number of samples at 22050 Hz.

:func:`gtzan_features` computes the same columns for any covermill audio, so a song can be
placed in the table and given to a classifier trained on it (:mod:`.genre`).
"""

from __future__ import annotations

import librosa
import numpy as np

from ..audio import check_audio, resample
from ..errors import ParameterError
from ..kernels import hpss, librosa_beat

GTZAN_SR = 22050
GTZAN_CLIP_S = 30.0
N_FFT = 2048
HOP = 512
N_MFCC = 20

_FRAME_FEATURES = (
    "chroma_stft",
    "rms",
    "spectral_centroid",
    "spectral_bandwidth",
    "rolloff",
    "zero_crossing_rate",
    "harmony",
    "perceptr",
)

#: The table's feature columns in CSV order (``filename`` and ``label`` excluded).
FEATURE_COLUMNS: list[str] = [
    "length",
    *[f"{name}_{stat}" for name in _FRAME_FEATURES for stat in ("mean", "var")],
    "tempo",
    *[f"mfcc{i}_{stat}" for i in range(1, N_MFCC + 1) for stat in ("mean", "var")],
]

#: The columns the genre classifiers use: the table's features less ``length`` (a property of
#: the GTZAN file, not of the music).
MODEL_COLUMNS: list[str] = [c for c in FEATURE_COLUMNS if c != "length"]


def model_row(features: dict[str, float]) -> np.ndarray:
    """One ``(1, len(MODEL_COLUMNS))`` row from a :func:`gtzan_features` dict."""
    missing = [c for c in MODEL_COLUMNS if c not in features]
    if missing:
        raise ParameterError(f"features lack {missing}; compute them with gtzan_features")
    return np.asarray([[features[c] for c in MODEL_COLUMNS]], dtype=np.float64)


def _mean_var(x: np.ndarray) -> tuple[float, float]:
    x = np.asarray(x, dtype=np.float64)
    return float(np.mean(x)), float(np.var(x))


def gtzan_features(y: np.ndarray, *, sr: int, clip_s: float = GTZAN_CLIP_S) -> dict[str, float]:
    """The Kaggle GTZAN table's features of a recording.

    Parameters
    ----------
    y : np.ndarray [shape=(channels, n) or (n,)], float
        Audio at ``sr``; channels are averaged to mono.
    sr : int > 0
        Sample rate of ``y`` (Hz); the audio is resampled to 22050 Hz with soxr.
    clip_s : float > 0
        Only the first ``clip_s`` seconds are analysed (the table used 30-s clips).

    Returns
    -------
    dict[str, float]
        One finite value per name in :data:`FEATURE_COLUMNS`, in that order.

    Raises
    ------
    ParameterError
        Bad ``sr``/``clip_s``, non-finite samples, or less than one STFT frame of audio.

    Examples
    --------
    >>> t = np.arange(22050 * 3) / 22050
    >>> f = gtzan_features(np.sin(2 * np.pi * 1000 * t).astype(np.float32), sr=22050)
    >>> round(f["spectral_centroid_mean"] / 100)
    10
    """
    y = check_audio(y, sr)
    if not clip_s > 0:
        raise ParameterError(f"clip_s={clip_s!r} must be a positive number of seconds")
    mono = y.mean(axis=0, keepdims=True)
    # Cut a little past the clip before resampling (cheaper), then exactly at the clip.
    mono = mono[:, : int(np.ceil((clip_s + 0.1) * sr))]
    x = resample(mono, sr_in=sr, sr_out=GTZAN_SR)[0][: int(round(clip_s * GTZAN_SR))]
    if len(x) < N_FFT:
        raise ParameterError(
            f"audio is {len(x) / GTZAN_SR:.3f} s long; GTZAN features need at least {N_FFT / GTZAN_SR:.3f} s"
        )
    kw = {"n_fft": N_FFT, "hop_length": HOP}
    D = librosa.stft(x, **kw)
    S = np.abs(D)
    # librosa.effects.hpss(x), with the same STFT and librosa's HPSS on a faster exact median
    harmonic, percussive = (librosa.istft(part, dtype=x.dtype, hop_length=HOP, length=len(x)) for part in hpss(D))
    frame_values = {
        "chroma_stft": librosa.feature.chroma_stft(S=S**2, sr=GTZAN_SR, **kw),
        "rms": librosa.feature.rms(y=x, frame_length=N_FFT, hop_length=HOP),
        "spectral_centroid": librosa.feature.spectral_centroid(S=S, sr=GTZAN_SR, **kw),
        "spectral_bandwidth": librosa.feature.spectral_bandwidth(S=S, sr=GTZAN_SR, **kw),
        "rolloff": librosa.feature.spectral_rolloff(S=S, sr=GTZAN_SR, **kw),
        "zero_crossing_rate": librosa.feature.zero_crossing_rate(x, frame_length=N_FFT, hop_length=HOP),
        "harmony": harmonic,
        "perceptr": percussive,
    }
    out: dict[str, float] = {"length": float(len(x))}
    for name in _FRAME_FEATURES:
        out[f"{name}_mean"], out[f"{name}_var"] = _mean_var(frame_values[name])
    tempo_bpm, _ = librosa_beat().beat_track(y=x, sr=GTZAN_SR, hop_length=HOP)
    out["tempo"] = float(np.atleast_1d(tempo_bpm)[0])
    mfcc = librosa.feature.mfcc(y=x, sr=GTZAN_SR, n_mfcc=N_MFCC, **kw)
    for i in range(N_MFCC):
        out[f"mfcc{i + 1}_mean"], out[f"mfcc{i + 1}_var"] = _mean_var(mfcc[i])
    return {name: out[name] for name in FEATURE_COLUMNS}
