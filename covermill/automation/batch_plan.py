"""What a batch renders and where: songs of a folder, output folder names, the manifest.

Output folders are ``OUT/<song path>/<recipe name>/``, named so that they are

- **readable**: a song's own name, Unicode letters kept (``夜に駆ける``, ``01 Yesterday``);
- **unique**: a name that had to change (``a/b:c``, ``a?b``) gets ``-`` and 6 hex digits of a
  hash of the song's path in the folder; songs whose names still meet (``track.wav`` and
  ``track.flac``, ``Song`` and ``song`` on a case-blind disk) get their extension and, if
  needed, the hash; recipes with the same ``name:`` get a hash of their path;
- **stable**: a pair already in ``OUT/manifest.jsonl`` keeps the folder it was given, so
  adding songs never renames earlier outputs.

The batch never renders what it wrote itself: with ``OUT`` inside ``FOLDER`` the songs under
``OUT`` are not listed.

``FOLDER`` and ``OUT`` may be URLs (:mod:`covermill.locations`): the songs are then listed
through fsspec, ``Job.song`` and ``Job.out_dir`` are URLs, and the output names are the same as
for a local folder holding the same files. The manifest of a remote ``OUT`` is a local file of
the client, in :func:`state_dir` (a copy is uploaded to ``OUT`` when the batch ends, and read
from there when a rerun on another machine has no local copy).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import CovermillError, OutputError, ParameterError
from ..fsutil import find_audio, write_text_atomic
from ..locations import Location, list_audio, read_text

MANIFEST = "manifest.jsonl"
_UNSAFE = re.compile(r"[^\w .,()'&+!=@~-]+")
_MAX_NAME = 80


@dataclass(frozen=True)
class Job:
    song: str
    recipe: str  # built-in name or path of a recipe file
    out_dir: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.song, self.recipe)


def find_songs(folder: str | os.PathLike, *, exclude: str | os.PathLike | None = None) -> list[Path]:
    """Audio files under ``folder`` by :func:`covermill.fsutil.find_audio`'s rule (recursively,
    sorted; hidden files skipped; broken links listed, so that they are reported as failures;
    nothing under ``exclude``, the batch's own output folder)."""
    root = Path(folder)
    if not root.is_dir():
        raise ParameterError(f"{root}: is not a folder; pass a folder of songs")
    return find_audio(root, exclude=exclude)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:6]


def safe_name(text: str) -> tuple[str, bool]:
    """``(name, unchanged)``: ``text`` as a folder name (Unicode letters kept, path and shell
    characters replaced by ``_``, no leading dot or dash, at most 80 characters)."""
    norm = unicodedata.normalize("NFC", text)
    name = _UNSAFE.sub("_", norm).strip(" .-")[:_MAX_NAME].rstrip(" .-")
    return name or "song", name == text


def _song_dirs(root: Path, songs: list[Path]) -> dict[Path, Path]:
    """Relative output folder per song, unique even on a case-blind filesystem."""
    out: dict[Path, Path] = {}
    groups: dict[tuple[str, str], list[tuple[Path, str, bool]]] = defaultdict(list)
    for song in songs:
        rel = song.relative_to(root)
        parent = Path(*[safe_name(p)[0] for p in rel.parent.parts])
        name, unchanged = safe_name(rel.stem)
        if not unchanged:
            name = f"{name}-{_hash(rel.as_posix())}"
        groups[(parent.as_posix(), name.casefold())].append((song, name, unchanged))
    for (parent, _), members in groups.items():
        for song, name, _unchanged in members:
            if len(members) > 1:
                ext = safe_name(song.suffix.lstrip("."))[0]
                same_ext = sum(m[0].suffix.casefold() == song.suffix.casefold() for m in members)
                name = f"{name}-{ext}" if same_ext == 1 else f"{name}-{ext}-{_hash(song.relative_to(root).as_posix())}"
            out[song] = Path(parent) / name
    return out


def _recipe_dirs(names: dict[str, str]) -> dict[str, str]:
    seen: dict[str, int] = defaultdict(int)
    for name in names.values():
        seen[safe_name(name)[0].casefold()] += 1
    dirs = {}
    for recipe, name in names.items():
        safe, unchanged = safe_name(name)
        dirs[recipe] = safe if unchanged and seen[safe.casefold()] == 1 else f"{safe}-{_hash(recipe)}"
    return dirs


def state_dir(out: str | os.PathLike | Location) -> Path:
    """The local folder of the client holding the manifest, index and lock of a batch: ``OUT``
    itself when local, else ``<covermill cache>/batches/<hash of the OUT URL>``."""
    loc = Location.parse(out)
    if not loc.is_remote:
        return Path(loc.path)
    from ..stems.cache import default_cache_dir

    return default_cache_dir().parent / "batches" / hashlib.sha256(loc.url.encode()).hexdigest()[:16]


def read_manifest(out: str | os.PathLike | Location) -> dict[tuple[str, str], dict[str, Any]]:
    """Records of a previous run keyed by (song, recipe); unreadable lines are ignored. For a
    remote ``OUT``: the client's copy (:func:`state_dir`), else the one uploaded to ``OUT``."""
    loc = Location.parse(out)
    path = state_dir(loc) / MANIFEST
    records: dict[tuple[str, str], dict[str, Any]] = {}
    if path.is_file():
        text = path.read_text(encoding="utf-8", errors="replace")
    elif loc.is_remote:
        try:
            text = read_text(loc.join(MANIFEST)) or ""
        except CovermillError:  # no manifest there either: a first run
            text = ""
    else:
        return records
    for line in text.splitlines():
        try:
            rec = json.loads(line)
            records[(rec["song"], rec["recipe"])] = rec
        except (ValueError, KeyError, TypeError):
            continue
    return records


def plan(folder: str | os.PathLike, recipes: Iterable[str], out: str | os.PathLike) -> list[Job]:
    """One :class:`Job` per song x recipe; output ``OUT/<song path>/<recipe name>/`` (see the
    module docstring for how names are made unique and kept stable)."""
    from ..recipes import load_recipe

    root_loc, out_loc = Location.parse(folder), Location.parse(out)
    names = {r: load_recipe(r).name for r in recipes}  # validate every recipe before any work
    recipe_dirs = _recipe_dirs(names)
    if root_loc.is_remote:  # relative paths under a stand-in root, so that names match a local folder's
        root: Path | PurePosixPath = PurePosixPath("/")
        songs: list = [root / rel for rel in list_audio(root_loc, exclude=out_loc)]
    else:
        root = Path(root_loc.path)
        songs = find_songs(root, exclude=None if out_loc.is_remote else out_loc.path)
    song_dirs = _song_dirs(root, songs)
    previous = read_manifest(out_loc)

    def song_url(song) -> str:
        return root_loc.join(song.relative_to(root).as_posix()).url if root_loc.is_remote else str(song.absolute())

    jobs = [Job(song_url(song), recipe, out_loc.join(song_dirs[song].as_posix(), recipe_dirs[recipe]).url)
            for song in songs for recipe in names]
    taken = {j.out_dir for j in jobs}
    pinned = []
    for job in jobs:  # a pair rendered before keeps its folder, unless another pair now has it
        old = (previous.get(job.key) or {}).get("output")
        if (isinstance(old, str) and old != job.out_dir and old not in taken
                and out_loc.contains(Location.parse(old))):
            taken.add(old)
            job = Job(job.song, job.recipe, old)
        pinned.append(job)
    return pinned


def write_manifest(out: Path, records: dict[tuple[str, str], dict[str, Any]]) -> None:
    lines = [json.dumps(rec, sort_keys=True) for _, rec in sorted(records.items())]
    write_text_atomic(state_dir(out) / MANIFEST, "\n".join(lines) + ("\n" if lines else ""))


# what covermill itself leaves behind when killed: staging folders (mkdtemp) and atomic_path's
# temporary files, ".<target>.<8 random characters><suffix>.part", for the files it writes
_STAGING = re.compile(r"^\..+\.staging-[a-z0-9_]{8}$")
_PART = re.compile(r"^\..+(\.(?:wav|flac|json|jsonl|html|yaml|yml|aup3|mid))\.[a-z0-9_]{8}\1\.part$")


def clean_stale(out: str | os.PathLike, jobs: Iterable[Job] | None = None) -> int:
    """Remove staging folders and ``.part`` files that an interrupted run left under ``out``.

    Only names covermill makes are touched (a user's ``.movie.mkv.part`` is not), and with
    ``jobs`` only in the folders those renders write (``OUT`` itself, each output folder,
    its parent, ``stems/`` and ``midi/``)."""
    out = Path(out)
    if jobs is None:
        folders = [out, *(p for p in out.rglob("*") if p.is_dir() and not p.is_symlink())]
    else:
        folders = [out]
        for job in jobs:
            d = Path(job.out_dir)
            folders += [d.parent, d, d / "stems", d / "midi"]
    removed = 0
    for folder in dict.fromkeys(folders):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if p.is_dir() and not p.is_symlink() and _STAGING.match(p.name):
                shutil.rmtree(p, ignore_errors=True)
                removed += 1
            elif p.is_file() and not p.is_symlink() and _PART.match(p.name):
                p.unlink(missing_ok=True)
                removed += 1
    return removed


@contextlib.contextmanager
def out_lock(out: Path) -> Iterator[None]:
    """Hold ``OUT/.covermill-batch.lock`` (an advisory ``flock``): a second batch on the same
    ``OUT`` is refused at once instead of interleaving its writes with the first."""
    import fcntl

    path = out / ".covermill-batch.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise OutputError(f"{path}: cannot open the batch lock ({exc.strerror}); check OUT is a folder you "
                          "can write") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            raise ParameterError(f"{out}: another covermill batch (pid {holder}) is writing here; "
                                 "wait for it to finish or choose another OUT") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
