"""A content-addressed cache of separated stems.

An entry's key is the SHA-256 of (the audio's samples, shape and rate, the separator's name,
its output-relevant parameters); re-rendering a song with another recipe, or with the same
one, then skips separation. Entries are ``.npz`` files written atomically
(:func:`covermill.fsutil.atomic_path`) holding the stems as float32 plus a SHA-256 of every
stem; an entry that fails to load or to verify (checksums, names, shape, metadata) is logged, deleted and recomputed.

The folder is ``--cache-dir``, else ``$COVERMILL_CACHE_DIR``, else
``platformdirs.user_cache_dir("covermill")/stems``. Stems are stored uncompressed (float32,
about 5.3 MB per stereo stem-minute at 44.1 kHz); delete the folder to reclaim the space.

``--cache-dir`` may also be a URL (``s3://bucket/stems``, ``sftp://host/path``: see
:mod:`covermill.locations`), a cache shared by every worker of a batch, keyed as above: an entry
is downloaded into a local mirror (``<default cache folder>/remote/<hash of the URL>``) on a hit
and verified there as any local entry; a new entry is written locally, then uploaded (a single
atomic PUT on object stores). A remote cache that cannot be read or written is logged and the
render goes on without it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..constants import STEM_NAMES
from ..errors import CovermillError
from ..fsutil import CACHE_DIR_ENV, atomic_path, cache_dir  # noqa: F401  (CACHE_DIR_ENV re-exported)
from ..locations import Location, is_url, put_atomic, storage_errors
from .base import Separator

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


def default_cache_dir() -> Path:
    """The stem cache's default folder: :func:`covermill.fsutil.cache_dir` ``("stems")``."""
    return cache_dir("stems")


def audio_digest(y: np.ndarray, *, sr: int) -> str:
    """SHA-256 of float32 ``(channels, n)`` samples, their shape and rate."""
    y = np.ascontiguousarray(y, dtype=np.float32)
    h = hashlib.sha256(f"{y.shape}|{sr}|".encode())
    h.update(memoryview(y).cast("B"))
    return h.hexdigest()


def separator_params(sep: Separator) -> dict[str, Any]:
    """The parameters that change a separator's output: ``cache_params()`` if it has one,
    else its public constructor attributes (not the learned ``model_``-style ones)."""
    if hasattr(sep, "cache_params"):
        return sep.cache_params()
    return {k: v for k, v in vars(sep).items() if not k.startswith("_") and not k.endswith("_")}


def cache_key(y: np.ndarray, *, sr: int, sep: Separator) -> str:
    """The entry key for separating ``y`` with ``sep``."""
    spec = {"v": FORMAT_VERSION, "audio": audio_digest(y, sr=sr), "separator": sep.name,
            "params": separator_params(sep)}
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(memoryview(np.ascontiguousarray(a)).cast("B")).hexdigest()


class StemCache:
    """Stems on disk under ``root`` (created on first write); see the module docstring."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        #: the shared remote cache (``None``: local only); ``root`` is then its local mirror
        self.remote: Location | None = None
        if root is not None and is_url(root):
            loc = Location.parse(root)
            if loc.is_remote:
                self.remote = loc
                root = default_cache_dir() / "remote" / hashlib.sha256(loc.url.encode()).hexdigest()[:16]
            else:
                root = loc.path
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    def _remote(self, key: str) -> Location:
        return self.remote.join(key[:2], f"{key}.npz")

    def has(self, key: str) -> bool:
        """Whether an entry for ``key`` exists (here, or in the remote cache), unverified."""
        if self.path(key).is_file():
            return True
        if self.remote is None:
            return False
        try:
            with storage_errors(self.remote, "looking up a stem cache entry"):
                return bool(self.remote.fs.exists(self._remote(key).path))
        except CovermillError as exc:
            log.warning("%s", exc)
            return False

    def _download(self, key: str) -> None:
        entry = self._remote(key)
        try:
            with storage_errors(entry, "downloading a stem cache entry"):
                if not entry.fs.exists(entry.path):
                    return
                with atomic_path(self.path(key)) as tmp:
                    entry.fs.get_file(entry.path, str(tmp))
        except CovermillError as exc:
            log.warning("%s; separating instead", exc)

    def _upload(self, key: str) -> None:
        entry = self._remote(key)
        try:
            with storage_errors(entry, "uploading a stem cache entry"):
                put_atomic(entry, local=self.path(key))
        except CovermillError as exc:
            log.warning("%s; the other workers will separate this song again", exc)

    def get(self, key: str, *, shape: tuple[int, ...] | None = None) -> dict[str, np.ndarray] | None:
        """The stems stored under ``key``, or ``None`` (missing, or corrupt: then deleted).

        An entry is used only if its metadata is well-formed, every stem matches its checksum,
        is float32 ``(channels, n)`` (``shape`` when given: the mix's), and the canonical
        :data:`STEM_NAMES` are all there; anything else is treated as corrupt.
        """
        path = self.path(key)
        if self.remote is not None and not path.is_file():
            self._download(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["__meta__"]))
                if not (isinstance(meta, dict) and isinstance(meta.get("stems"), list)
                        and isinstance(meta.get("sha256"), dict)
                        and all(isinstance(n, str) and n != "__meta__" for n in meta["stems"])):
                    raise ValueError("malformed metadata")
                stems = {name: data[name] for name in meta["stems"]}
            missing = [n for n in STEM_NAMES if n not in stems]
            if missing:
                raise ValueError(f"missing stems {missing}")
            for name, arr in stems.items():
                if arr.dtype != np.float32 or arr.ndim != 2 or (shape is not None and arr.shape != tuple(shape)):
                    raise ValueError(f"stem {name!r} is {arr.dtype} {arr.shape}, expected float32 {shape}")
                if _digest(arr) != meta["sha256"].get(name):
                    raise ValueError(f"checksum mismatch in stem {name!r}")
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
            log.warning("stem cache entry %s is corrupt (%s); separating again", path, exc)
            path.unlink(missing_ok=True)
            return None
        return stems

    def put(self, key: str, stems: dict[str, np.ndarray]) -> Path:
        """Store ``stems`` under ``key`` atomically; returns the entry's path."""
        arrays = {name: np.ascontiguousarray(a, dtype=np.float32) for name, a in stems.items()}
        meta = {"v": FORMAT_VERSION, "stems": list(arrays), "sha256": {n: _digest(a) for n, a in arrays.items()}}
        path = self.path(key)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, __meta__=np.array(json.dumps(meta)), **arrays)
        if self.remote is not None:
            self._upload(key)
        return path


def separate_cached(sep: Separator, y: np.ndarray, *, sr: int,
                    cache: StemCache | None) -> tuple[dict[str, np.ndarray], bool]:
    """``sep.separate(y, sr=sr)`` through ``cache`` (``None``: no cache); returns ``(stems, hit)``."""
    if cache is None:
        return sep.separate(y, sr=sr), False
    key = cache_key(y, sr=sr, sep=sep)
    stems = cache.get(key, shape=y.shape)
    if stems is not None:
        log.info("stems from cache %s", cache.path(key))
        return stems, True
    stems = sep.separate(y, sr=sr)
    try:
        cache.put(key, stems)
    except OSError as exc:  # a full or read-only cache must not fail the render
        log.warning("cannot write the stem cache entry %s (%s); continuing without it", cache.path(key), exc)
    return stems, False
