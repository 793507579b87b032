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
from .errors import AudioError, OutputError, ParameterError
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


#: Longest audio decoded at once (seconds; 30 min of stereo float32 at 44.1 kHz is 635 MB).
#: A longer song is refused unless an excerpt of it is asked for: only the excerpt is decoded.
MAX_DURATION_S = 30 * 60.0
#: Most channels a file may have (7.1 is 8; beyond 16 nothing is a song).
MAX_CHANNELS = 16
#: File sample rates accepted (Hz).
MIN_FILE_SR, MAX_FILE_SR = 4000, 384000

_DECODE_ERRORS = (sf.LibsndfileError, RuntimeError, ValueError, TypeError, OverflowError, EOFError)


def _check_path(path: Path) -> None:
    if not path.exists():
        raise AudioError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file; pass one song (or use `covermill batch`)")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: is empty (0 bytes); re-export or re-download the song")


def _check_excerpt(excerpt: tuple[float, float] | None) -> tuple[float, float] | None:
    if excerpt is None:
        return None
    try:
        start_s, seconds = (float(v) for v in excerpt)
    except (TypeError, ValueError):
        raise ParameterError(f"excerpt={excerpt!r} must be (start_s, seconds)") from None
    if not (np.isfinite(start_s) and np.isfinite(seconds)) or start_s < 0 or seconds <= 0:
        raise ParameterError(f"excerpt=({start_s:g}, {seconds:g}) needs a finite start_s >= 0 and seconds > 0")
    return start_s, seconds


def _check_format(path: Path, channels: int, sr: int, seconds: float, excerpt: bool) -> None:
    if not MIN_FILE_SR <= sr <= MAX_FILE_SR:
        raise AudioError(f"{path}: sample rate {sr} Hz is outside {MIN_FILE_SR}-{MAX_FILE_SR} Hz; resample the song")
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(f"{path}: has {channels} channels (at most {MAX_CHANNELS}); downmix the song to stereo")
    if seconds > MAX_DURATION_S:
        what = "the excerpt" if excerpt else "the song"
        raise AudioError(f"{path}: {what} is {seconds / 60:.1f} min long (at most {MAX_DURATION_S / 60:g} min "
                         "decoded at once); cut it or render an excerpt (--excerpt START:SECONDS)")


def _read_soundfile(path: Path, excerpt: tuple[float, float] | None = None) -> tuple[np.ndarray, int]:
    with sf.SoundFile(str(path)) as f:
        sr, channels = int(f.samplerate), int(f.channels)
        _check_format(path, channels, sr, 0.0, False)
        start, frames = 0, int(f.frames)
        if excerpt is not None:
            start = int(round(excerpt[0] * sr))
            if f.frames > 0 and start >= f.frames:
                raise AudioError(f"{path}: the excerpt starts at {excerpt[0]:g} s but the song is "
                                 f"{f.frames / sr:.1f} s long; choose an earlier start")
            frames = min(int(round(excerpt[1] * sr)), max(int(f.frames) - start, 0))
            f.seek(start)
        _check_format(path, channels, sr, frames / sr, excerpt is not None)
        data = f.read(frames=frames, dtype="float32", always_2d=True)
    return np.ascontiguousarray(data.T), sr


def _read_ffmpeg(path: Path, excerpt: tuple[float, float] | None = None) -> tuple[np.ndarray, int]:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise AudioError(
            f"{path}: libsndfile cannot decode this format and ffmpeg is not installed; "
            "install ffmpeg (apt-get install ffmpeg) or convert the song to WAV/FLAC"
        )
    # the input is named `file:` + an absolute path, so no name is read as an option or a
    # protocol (`concat:a.wav|b.wav`, `-i`, `http:...`); decoding stops past the duration cap
    span = ["-ss", f"{excerpt[0]:.6f}", "-t", f"{excerpt[1]:.6f}"] if excerpt else ["-t", f"{MAX_DURATION_S + 1:g}"]
    with tempfile.TemporaryDirectory(prefix="covermill-decode-") as tmp:
        out = (Path(tmp) / "decoded.wav").resolve()
        proc = subprocess.run(
            [ffmpeg, "-nostdin", "-v", "error", *span, "-i", f"file:{path.resolve()}", "-vn", "-c:a", "pcm_f32le",
             "-f", "wav", f"file:{out}"],
            capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0 or not out.exists():
            detail = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
            raise AudioError(f"{path}: cannot be decoded as audio ({detail}); check the file is a valid song")
        try:
            y, sr = _read_soundfile(out)
        except _DECODE_ERRORS as exc:
            raise AudioError(f"{path}: cannot be decoded as audio ({exc}); check the file is a valid song") from None
        _check_format(path, y.shape[0], sr, y.shape[1] / sr, excerpt is not None)
        return y, sr


def read_audio(path: str | os.PathLike, *, excerpt: tuple[float, float] | None = None) -> tuple[np.ndarray, int]:
    """Decode a file to float32 ``(channels, n)`` at its own rate, channels untouched.

    ``excerpt=(start_s, seconds)`` decodes only that part (a 20-minute file is never decoded
    whole for a 30-s excerpt). Refuses with :class:`AudioError` a rate outside
    ``MIN_FILE_SR..MAX_FILE_SR``, more than :data:`MAX_CHANNELS` channels, and more than
    :data:`MAX_DURATION_S` seconds decoded at once.
    """
    path = Path(path)
    _check_path(path)
    excerpt = _check_excerpt(excerpt)
    try:
        y, sr = _read_soundfile(path, excerpt)
    except _DECODE_ERRORS as exc:
        log.debug("soundfile failed on %s (%s); trying ffmpeg", path, exc)
        if shutil.which("ffmpeg") is None:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise AudioError(
                f"{path}: cannot be decoded as audio ({detail}); check it is a valid WAV/FLAC/OGG/MP3 "
                "file, or install ffmpeg for other formats"
            ) from None
        y, sr = _read_ffmpeg(path, excerpt)
    if y.shape[1] == 0:
        if excerpt is not None:
            raise AudioError(f"{path}: the excerpt starts at {excerpt[0]:g} s, past the end of the song; "
                             "choose an earlier start")
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
    excerpt: tuple[float, float] | None = None,
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
        Refuse shorter audio (or a shorter excerpt) with :class:`AudioError`.
    excerpt : (start_s, seconds), optional
        Decode only this part of the file (clipped at the song's end); ``start_s`` past the
        end is an :class:`AudioError`, a non-finite or negative value a :class:`ParameterError`.

    Limits (``docs/security.md``): :data:`MAX_DURATION_S` seconds decoded at once,
    :data:`MAX_CHANNELS` channels, file rates ``MIN_FILE_SR..MAX_FILE_SR``.

    Examples
    --------
    >>> y = load_audio("examples/lets_go_fishin.ogg")  # doctest: +SKIP
    >>> y.shape[0], y.dtype
    (2, dtype('float32'))
    """
    path = Path(path)
    y, file_sr = read_audio(path, excerpt=excerpt)
    duration = y.shape[1] / file_sr
    if duration < min_duration_s:
        what = "the excerpt" if excerpt is not None else "it"
        raise AudioError(
            f"{path}: {what} is {duration:.2f} s long; covermill needs at least {min_duration_s:g} s of audio"
        )
    if stereo:
        y = to_stereo(y)
    y = resample(y, sr_in=file_sr, sr_out=sr)
    return y


CLIP_POLICIES = ("clamp", "rescale", "none")


def disk_full(exc: BaseException, folder: Path) -> bool:
    """Did a write to ``folder`` fail because the disk (or the user's quota) is full?"""
    import errno
    import shutil

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    try:
        return shutil.disk_usage(folder).free < (1 << 20)
    except OSError:
        return False


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
        try:
            sf.write(str(tmp), y.T, sr, format=fmt, subtype=subtype)
        except (OSError, RuntimeError) as exc:  # libsndfile says only "System error." when the disk fills
            if disk_full(exc, tmp.parent):
                raise OutputError(f"{path}: disk full; free some space or write elsewhere") from None
            raise
    return path
