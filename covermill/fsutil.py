"""Filesystem helpers: atomic writes and paths that cannot escape their root."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from .errors import OutputError, ParameterError

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask: from ``/proc/self/status`` where there is one (no race with other
    threads), else read by setting and restoring it."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it onto ``target``.

    The temporary file lives in the same folder, so the final ``os.replace`` is atomic:
    readers see the old file or the new one, never half of one. It is created private and
    given the usual ``0666 & ~umask`` mode before it is filled (so the result is like a plain
    ``open(target, "w")``, not ``mkstemp``'s 0600). On error the temporary
    file is removed and ``target`` is untouched.
    """
    target = Path(target)
    if target.is_dir():
        raise OutputError(f"{target}: is a folder; expected a file path to write")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=(suffix if suffix is not None else target.suffix) + ".part",
        dir=target.parent,
    )
    try:  # mkstemp makes 0600; a finished file gets the mode open() would give it (the umask applies)
        os.fchmod(fd, 0o666 & ~current_umask())
    finally:
        os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_text_atomic(target: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``target`` atomically and return the path."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def resolve_within(root: str | os.PathLike, relative: str | os.PathLike) -> Path:
    """Resolve ``relative`` against ``root`` and refuse anything that lands outside ``root``.

    Used for every path a recipe names (``extends``, impulse responses, instruments):
    absolute paths, ``..`` and symlinks that leave ``root`` raise :class:`ParameterError`.
    """
    root_resolved = Path(root).resolve()
    rel = Path(relative)
    if rel.is_absolute():
        raise ParameterError(
            f"path {str(relative)!r} is absolute; recipe paths must be relative to {root_resolved}"
        )
    candidate = (root_resolved / rel).resolve()
    if candidate != root_resolved and root_resolved not in candidate.parents:
        raise ParameterError(
            f"path {str(relative)!r} escapes its root folder {root_resolved}; keep it inside that folder"
        )
    return candidate
