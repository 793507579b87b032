"""``covermill stems``: separate one song file into stem files (the runner behind the CLI command)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from ..audio import load_audio
from ..constants import WORK_SR
from ..errors import OutputError
from ..fsutil import atomic_path
from ..locations import Location, fetch_to, publish
from . import resolve
from .cache import StemCache, separate_cached

log = logging.getLogger(__name__)
#: samples per write: a song-long stem is written without a song-long transposed or clipped copy
WRITE_BLOCK = 1 << 20


def write_stem(path: Path, audio: np.ndarray, *, sr: int, fmt: str) -> Path:
    """Write ``(channels, n)`` float32 ``audio`` atomically, block by block: ``wav`` as 32-bit float
    (as is), ``flac`` as 24-bit PCM clipped to ±1; the same file :func:`covermill.audio.save_audio`
    writes, without its song-long copies (``channels x n`` transposed, clipped)."""
    subtype = "FLOAT" if fmt == "wav" else "PCM_24"
    with atomic_path(path) as tmp:
        with sf.SoundFile(str(tmp), "w", samplerate=sr, channels=audio.shape[0], format=fmt.upper(),
                          subtype=subtype) as f:
            for i in range(0, audio.shape[1], WRITE_BLOCK):
                block = audio[:, i:i + WRITE_BLOCK].T
                f.write(np.clip(block, -1.0, 1.0) if fmt == "flac" else block)
    return path


def separate_file(
    song: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    separator: str = "auto",
    separator_params: dict[str, Any] | None = None,
    fmt: str = "wav",
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    sr: int = WORK_SR,
) -> dict[str, Any]:
    """Separate ``song`` and write ``out_dir/<stem>.<fmt>``.

    Audio is loaded as stereo at ``sr`` (44.1 kHz). ``wav`` stems are 32-bit float, so they
    sum back to the mix exactly; ``flac`` stems are 24-bit (clipped to ±1). With ``use_cache``
    the stems go through the stem cache (``cache_dir`` or the default folder).

    ``song`` and ``out_dir`` may be URLs (:mod:`covermill.locations`): the song is then
    downloaded into a scratch folder, and the stems are written there and uploaded.

    Returns ``{"separator": name used, "cache_hit": bool, "stems": {name: path or URL}}``.
    """
    song_loc, out_loc = Location.parse(song), Location.parse(out_dir)
    if song_loc.is_remote or out_loc.is_remote:
        import shutil
        import tempfile

        scratch = Path(tempfile.mkdtemp(prefix="covermill-stems-"))
        try:
            (scratch / "in").mkdir()
            local_out = scratch / "out" if out_loc.is_remote else Path(out_loc.path)
            result = separate_file(fetch_to(song_loc, scratch / "in"), local_out, separator=separator,
                                   separator_params=separator_params, fmt=fmt, cache_dir=cache_dir,
                                   use_cache=use_cache, sr=sr)
            if out_loc.is_remote:
                publish(local_out, out_loc, last="")
                result["stems"] = {n: out_loc.join(Path(p).name).url for n, p in result["stems"].items()}
            return result
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is a file; choose a folder for the stems (-o DIR)")
    if fmt not in ("wav", "flac"):
        raise OutputError(f"format {fmt!r}: choose wav or flac")
    mix = load_audio(song, sr=sr)
    sep = resolve(separator, **(separator_params or {}))
    cache = StemCache(cache_dir) if use_cache else None
    parts, hit = separate_cached(sep, mix, sr=sr, cache=cache)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in list(parts):
        paths[name] = write_stem(out / f"{name}.{fmt}", parts[name], sr=sr, fmt=fmt)
    log.info("separated %s with %s into %s", song, sep.name, out)
    return {"separator": sep.name, "cache_hit": hit, "stems": paths}
