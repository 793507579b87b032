"""Audio I/O: the one place that reads and writes audio files.

Contract: every array covermill passes around is ``float32`` with shape
``(channels, samples)`` plus an explicit ``sr``. :func:`load_audio` returns stereo at the
working rate; :func:`save_audio` writes atomically; inputs are opened read-only.

Decoding: libsndfile (through ``soundfile``) reads WAV, FLAC, OGG/Vorbis/Opus, MP3, AIFF.
Other containers (M4A/AAC, WMA, ...) are decoded by ``ffmpeg`` when it is installed.

Channel rule (documented in ``docs/audio.md``): mono is copied to both sides; 3 and more
channels are downmixed with the ITU-R BS.775 coefficients for the usual layouts
(L R C [LFE] Ls Rs ...): centre and surrounds at -3 dB into each side, LFE dropped.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .constants import MIN_DURATION_S, WORK_SR
from .errors import AudioError, ParameterError
from .fsutil import atomic_path

log = logging.getLogger(__name__)

_M3DB = np.float32(1.0 / np.sqrt(2.0))

# Downmix matrices (rows: L, R) per channel count, in the SMPTE/WAVEFORMATEXTENSIBLE order.
_DOWNMIX = {
    3: [[1, 0, _M3DB], [0, 1, _M3DB]],  # L R C
    4: [[1, 0, _M3DB, 0], [0, 1, 0, _M3DB]],  # L R Ls Rs (quad)
    5: [[1, 0, _M3DB, _M3DB, 0], [0, 1, _M3DB, 0, _M3DB]],  # L R C Ls Rs
    6: [[1, 0, _M3DB, 0, _M3DB, 0], [0, 1, _M3DB, 0, 0, _M3DB]],  # L R C LFE Ls Rs (5.1)
    8: [[1, 0, _M3DB, 0, _M3DB, 0, _M3DB, 0], [0, 1, _M3DB, 0, 0, _M3DB, 0, _M3DB]],  # 7.1
}


def to_stereo(y: np.ndarray) -> np.ndarray:
    """Map ``(channels, n)`` audio to ``(2, n)`` by the documented channel rule."""
    channels = y.shape[0]
    if channels == 2:
        return y
    if channels == 1:
        return np.repeat(y, 2, axis=0)
    matrix = _DOWNMIX.get(channels)
    if matrix is None:  # unknown layout: every channel equally into both sides
        mono = y.mean(axis=0, keepdims=True)
        return np.repeat(mono, 2, axis=0)
    return (np.asarray(matrix, dtype=np.float32) @ y).astype(np.float32)


def check_audio(y: np.ndarray, sr: int, *, name: str = "audio") -> np.ndarray:
    """Validate and return ``y`` as C-contiguous float32 ``(channels, n)``.

    Raises :class:`ParameterError` for a wrong type or shape, a non-positive ``sr``,
    or non-finite samples.
    """
    if not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise ParameterError(f"sr={sr!r} must be a positive integer sample rate")
    y = np.asarray(y)
    if y.ndim == 1:
        y = y[np.newaxis, :]
    if y.ndim != 2 or not np.issubdtype(y.dtype, np.floating):
        raise ParameterError(f"{name} must be float (channels, samples); got {y.dtype} {y.shape}")
    if not np.all(np.isfinite(y)):
        raise ParameterError(f"{name} contains NaN or infinite samples")
    return np.ascontiguousarray(y, dtype=np.float32)


def resample(y: np.ndarray, *, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample ``(channels, n)`` audio with soxr (VHQ); returns float32."""
    if sr_in == sr_out:
        return np.ascontiguousarray(y, dtype=np.float32)
    out = soxr.resample(np.ascontiguousarray(y.T), sr_in, sr_out, quality="VHQ")
    return np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(-1, y.shape[0]).T)


def _check_path(path: Path) -> None:
    if not path.exists():
        raise AudioError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file; pass one song (or use `covermill batch`)")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: is empty (0 bytes); re-export or re-download the song")


def _read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return data.T, int(sr)


def _read_ffmpeg(path: Path) -> tuple[np.ndarray, int]:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise AudioError(
            f"{path}: libsndfile cannot decode this format and ffmpeg is not installed; "
            "install ffmpeg (apt-get install ffmpeg) or convert the song to WAV/FLAC"
        )
    with tempfile.TemporaryDirectory(prefix="covermill-decode-") as tmp:
        out = Path(tmp) / "decoded.wav"
        proc = subprocess.run(
            [ffmpeg, "-nostdin", "-v", "error", "-i", str(path), "-vn", "-c:a", "pcm_f32le", str(out)],
            capture_output=True, text=True, timeout=600,
        )
        if proc.returncode != 0 or not out.exists():
            detail = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
            raise AudioError(f"{path}: cannot be decoded as audio ({detail}); check the file is a valid song")
        return _read_soundfile(out)


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Decode a file to float32 ``(channels, n)`` at its own rate, channels untouched."""
    path = Path(path)
    _check_path(path)
    try:
        y, sr = _read_soundfile(path)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        log.debug("soundfile failed on %s (%s); trying ffmpeg", path, exc)
        if shutil.which("ffmpeg") is None:
            raise AudioError(
                f"{path}: cannot be decoded as audio ({exc}); check it is a valid WAV/FLAC/OGG/MP3 "
                "file, or install ffmpeg for other formats"
            ) from None
        y, sr = _read_ffmpeg(path)
    if y.shape[1] == 0:
        raise AudioError(f"{path}: contains no audio samples; re-export the song")
    if not np.all(np.isfinite(y)):
        raise AudioError(f"{path}: contains NaN or infinite samples (corrupt float data); re-export the song")
    return y, sr


def load_audio(
    path: str | os.PathLike,
    *,
    sr: int = WORK_SR,
    stereo: bool = True,
    min_duration_s: float = MIN_DURATION_S,
) -> np.ndarray:
    """Load a song as float32 ``(2, n)`` at ``sr`` (default the working rate).

    Parameters
    ----------
    path : path-like
        Any WAV/FLAC/OGG/MP3/AIFF file (others with ffmpeg installed). Opened read-only.
    sr : int > 0
        Target sample rate; the file is resampled with soxr (very high quality).
    stereo : bool
        Map channels to stereo by the documented rule (otherwise keep the file's channels).
    min_duration_s : float
        Refuse shorter audio with :class:`AudioError`.

    Examples
    --------
    >>> y = load_audio("examples/lets_go_fishin.ogg")  # doctest: +SKIP
    >>> y.shape[0], y.dtype
    (2, dtype('float32'))
    """
    path = Path(path)
    y, file_sr = read_audio(path)
    duration = y.shape[1] / file_sr
    if duration < min_duration_s:
        raise AudioError(
            f"{path}: is {duration:.2f} s long; covermill needs at least {min_duration_s:g} s of audio"
        )
    if stereo:
        y = to_stereo(y)
    y = resample(y, sr_in=file_sr, sr_out=sr)
    return y


CLIP_POLICIES = ("clamp", "rescale", "none")


def save_audio(
    path: str | os.PathLike,
    y: np.ndarray,
    *,
    sr: int,
    subtype: str | None = None,
    clip: str = "clamp",
) -> Path:
    """Write ``(channels, n)`` audio atomically (temp file in the same folder, then rename).

    ``subtype`` defaults to 24-bit PCM for WAV/FLAC. ``clip`` is the policy for samples
    beyond ±1: ``clamp`` (hard clip), ``rescale`` (scale the whole file down) or ``none``
    (write as is, for float subtypes).
    """
    y = check_audio(y, sr)
    if clip not in CLIP_POLICIES:
        raise ParameterError(f"clip={clip!r} must be one of {CLIP_POLICIES}")
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if clip == "clamp":
        y = np.clip(y, -1.0, 1.0)
    elif clip == "rescale" and peak > 1.0:
        y = y / peak
    path = Path(path)
    fmt = {".wav": "WAV", ".flac": "FLAC"}.get(path.suffix.lower())
    if fmt is None:
        raise ParameterError(f"{path}: can only write .wav or .flac")
    subtype = subtype or "PCM_24"
    with atomic_path(path) as tmp:
        sf.write(str(tmp), y.T, sr, format=fmt, subtype=subtype)
    return path
