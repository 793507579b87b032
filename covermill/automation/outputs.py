"""A render's outputs: checked before the work, staged beside ``OUT``, moved into place at the end.

:func:`check_out_dir` refuses an ``OUT`` that cannot be used (an existing file, a name with a
newline, a folder where the render would overwrite its own input) before any work is done.
:class:`Staging` is a folder beside ``OUT`` (same filesystem, so every ``os.replace`` is atomic)
where every output is written; :meth:`Staging.commit` moves each file into ``OUT`` and then
removes the files an earlier render listed in its ``qa.json`` that this render did not make
(``session.aup3``, ``midi/...``, stems of another separator): ``OUT`` holds one render, never a
mix of two. ``qa.json`` is moved last: a render is finished when its ``qa.json`` is in place.
A failure leaves ``OUT`` as it was. "Disk full" is one line.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import OutputError, ParameterError

#: Files and folders a render writes into ``OUT`` (folders end with ``/``).
OUTPUT_NAMES = ("cover.wav", "original.flac", "recipe.yaml", "qa.json", "report.html", "leadsheet.json", "session.aup3",
                "cover.dawproject", "stems/", "midi/", "cover_stems/")


def check_out_dir(out_dir: str | os.PathLike, *, inputs: tuple[str | os.PathLike, ...] = ()) -> Path:
    """Refuse an output folder that cannot be used, before any work is done.

    ``inputs`` are files the render reads (the song): a render never overwrites them."""
    out = Path(out_dir)
    if any(c in str(out) for c in "\n\r\x00"):
        raise ParameterError(f"{str(out)!r}: the output folder's name holds a line break or NUL; choose another -o OUT")
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is a file; choose a folder for the cover (-o OUT)")
    out_resolved = out.resolve()
    for src in inputs:
        src_resolved = Path(src).resolve()
        try:
            rel = src_resolved.relative_to(out_resolved)
        except ValueError:
            continue
        first = rel.parts[0] if rel.parts else ""
        if any(first == name.rstrip("/") for name in OUTPUT_NAMES):
            raise OutputError(f"{out}: the render writes {rel} there, which is the input {src}; the input is only "
                              "ever read: choose another -o OUT")
    return out


def _disk_full(exc: BaseException, folder: Path) -> bool:
    from ..audio import disk_full

    if isinstance(exc, OutputError) and "disk full" in str(exc):
        return True
    return isinstance(exc, (OSError, RuntimeError)) and disk_full(exc, folder)


class Staging:
    """A staging folder beside ``out``; use as a context manager (removed on leaving)."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.staging-", dir=self.out.parent))

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        full = exc is not None and _disk_full(exc, self.path)  # before the staged files are removed
        shutil.rmtree(self.path, ignore_errors=True)
        if full:
            raise OutputError(f"{self.out}: disk full while writing the render; free some space or choose another "
                              "-o OUT (nothing in OUT was changed)") from None
        return False

    def __truediv__(self, rel: str) -> Path:
        return self.path / rel

    def files(self) -> list[str]:
        """Relative paths (POSIX) of every file staged so far."""
        return sorted(p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file())

    def commit(self, *, last: str = "qa.json") -> list[str]:
        """Move every staged file into ``out`` (``last`` at the very end) and remove what an
        earlier render left that this one did not write. Returns the files moved."""
        files = self.files()
        ordered = [f for f in files if f != last] + ([last] if last in files else [])
        stale = _previous_outputs(self.out) - set(files)
        self.out.mkdir(parents=True, exist_ok=True)
        umask = os.umask(0)
        os.umask(umask)
        for rel in ordered:
            target = self.out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):
                os.chmod(self.path / rel, 0o666 & ~umask)
            if target.is_dir():
                raise OutputError(f"{target}: is a folder where the render writes a file; move it away")
            if rel == last:  # the files the previous render listed and this one did not make go first
                _remove(self.out, stale)
            os.replace(self.path / rel, target)
        if last not in files:
            _remove(self.out, stale)
        return ordered


def _previous_outputs(out: Path) -> set[str]:
    """Files an earlier render listed in ``out/qa.json`` (only those: nothing else is ever removed)."""
    try:
        listed = json.loads((out / "qa.json").read_text(encoding="utf-8")).get("outputs", {})
    except (OSError, ValueError, AttributeError):
        return set()
    found: set[str] = set()

    def walk(value) -> None:
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(listed)
    out_resolved = out.resolve()
    safe = set()
    for rel in found:
        p = (out / rel).resolve()
        if p != out_resolved and out_resolved in p.parents and any(
                rel == n or rel.startswith(n) for n in OUTPUT_NAMES):
            safe.add(Path(rel).as_posix())
    return safe


def _remove(out: Path, rels: set[str]) -> None:
    for rel in sorted(rels):
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            (out / rel).unlink()
    for folder in ("midi", "stems", "cover_stems"):
        with contextlib.suppress(OSError):
            (out / folder).rmdir()  # only when empty
