"""Filesystem helpers: atomic writes, paths that cannot escape their root, covermill's cache
folders (:func:`cache_dir`) and the one rule for finding audio files in a folder (:func:`find_audio`)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path, PurePath

from .constants import AUDIO_EXTENSIONS
from .errors import OutputError, ParameterError

#: Environment variable that moves every covermill cache (``$COVERMILL_CACHE_DIR/<kind>``).
CACHE_DIR_ENV = "COVERMILL_CACHE_DIR"

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

    Recipe paths go through :func:`recipe_path`, which adds the rules for ``~`` and bare file
    names in search folders. Absolute paths, ``..`` and symlinks that leave ``root`` raise :class:`ParameterError`.
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


def soundfont_dirs() -> tuple[Path, ...]:
    """Where a recipe's bare soundfont file name (``soundfont: MuseScore_General.sf3``) is looked
    for after the recipe's own folder: the user's covermill data folder, then the system's."""
    from platformdirs import user_data_dir

    return (Path(user_data_dir("covermill")) / "soundfonts", Path("/usr/share/sounds/sf3"),
            Path("/usr/share/sounds/sf2"), Path("/usr/share/soundfonts"))


def recipe_path(root: str | os.PathLike | None, value: str, *, what: str,
                search: tuple[Path, ...] = ()) -> Path:
    """The absolute path of a file a recipe names (``what``: "soundfont", "impulse response", ...).

    The one check every recipe path goes through: a path inside the recipe's folder ``root``
    or a bare file name found in one of the ``search`` folders.
    Absolute paths, ``~`` and ``..`` are refused with :class:`ParameterError` -- a downloaded
    recipe can only name files beside it (or the user's installed soundfonts), never a file
    elsewhere that an external program would then read or write. Paths given on the command
    line are not recipe paths and may point anywhere.
    """
    text = str(value)
    if root is None:  # never the current folder: a recipe's files live beside the recipe
        found = [folder / text for folder in search if len(Path(text).parts) == 1 and (folder / text).is_file()]
        if found:
            return found[0].resolve()
        raise ParameterError(f"{what} {text!r} needs the recipe's folder; load the recipe from a file"
                             + (f" (or install it in {search[0]})" if search else ""))
    base = Path(root)
    hint = f" (or a bare file name found in {', '.join(map(str, search))})" if search else ""
    if not text or "\x00" in text or "\n" in text:
        raise ParameterError(f"{what} path {text!r} is empty or holds a control character; name a file")
    if text.startswith("~"):
        raise ParameterError(f"{what} path {text!r} starts with '~'; recipe paths are relative to the recipe's "
                             f"folder {base.resolve()}{hint}")
    if Path(text).is_absolute():
        raise ParameterError(f"{what} path {text!r} is absolute; recipe paths must be relative to the recipe's "
                             f"folder {base.resolve()}{hint}")
    if ".." in Path(text).parts:
        raise ParameterError(f"{what} path {text!r} escapes its root folder {base.resolve()} ('..'); keep it "
                             f"inside that folder{hint}")
    try:
        candidate = resolve_within(base, text)
        if not candidate.exists() and search and len(Path(text).parts) == 1:
            for folder in search:
                found = folder / text
                if found.is_file():
                    return found.resolve()
    except OSError as exc:  # a name too long for the filesystem, ...
        raise ParameterError(f"{what} path {text[:80]!r} is not a usable file name ({exc.strerror}); "
                             "name a file beside the recipe") from None
    return candidate


def cache_dir(kind: str | None = None) -> Path:
    """covermill's cache folder for ``kind`` (``"stems"``, ``"cover"``, ``"genre"``; ``None``: the root).

    ``$COVERMILL_CACHE_DIR/<kind>`` when that variable is set (``~`` expanded), else the user's cache
    folder + ``/<kind>``: ``$XDG_CACHE_HOME/covermill`` or ``~/.cache/covermill`` on Linux
    (``platformdirs.user_cache_dir("covermill")``, so other systems get their usual place). Nothing
    is created.

    Example: ``cache_dir("stems")`` -> ``~/.cache/covermill/stems``.
    """
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        root = Path(env).expanduser()
    else:
        import platformdirs

        root = Path(platformdirs.user_cache_dir("covermill"))
    return root / kind if kind else root


def is_audio_entry(rel: PurePath) -> bool:
    """:func:`find_audio`'s rule for one path relative to the folder searched (also applied to
    folders on object storage, :func:`covermill.locations.list_audio`): an audio extension in any
    case, and nothing hidden on the way."""
    return rel.suffix.lower() in AUDIO_EXTENSIONS and not any(part.startswith(".") for part in rel.parts)


def find_audio(folder: str | os.PathLike, *, exclude: str | os.PathLike | None = None) -> list[Path]:
    """The audio files under ``folder``, by one rule every command that takes a folder follows.

    A file is audio when its extension, in any case, is in
    :data:`~covermill.constants.AUDIO_EXTENSIONS`; sub-folders are searched (symbolic links to
    folders are not followed); anything hidden -- a name starting with ``.``, or inside such a
    folder, below ``folder`` -- is skipped (``.DS_Store``, ``._take.wav`` resource forks,
    ``.git``); links to audio files are listed even when broken, so that the caller reports them
    instead of dropping them silently; nothing under ``exclude`` (an output folder inside
    ``folder``). Sorted by path. A ``folder`` that is not a folder raises :class:`ParameterError`.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ParameterError(f"{root}: is not a folder")
    skip = Path(exclude) if exclude is not None and is_inside(Path(exclude), root) else None
    found = []
    for p in root.rglob("*"):
        if not is_audio_entry(p.relative_to(root)) or not (p.is_file() or p.is_symlink()):
            continue
        if skip is not None and is_inside(p.parent, skip):
            continue
        found.append(p)
    return sorted(found)


def is_inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or inside it, links resolved."""
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def file_hash(path: str | os.PathLike, *, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, hex, read in ``chunk``-byte blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
