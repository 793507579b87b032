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
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ParameterError
from ..fsutil import find_audio, is_inside

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


def read_manifest(out: str | os.PathLike) -> dict[tuple[str, str], dict[str, Any]]:
    """Records of a previous run keyed by (song, recipe); unreadable lines are ignored."""
    path = Path(out) / MANIFEST
    records: dict[tuple[str, str], dict[str, Any]] = {}
    if not path.is_file():
        return records
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
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

    root, out = Path(folder), Path(out)
    names = {r: load_recipe(r).name for r in recipes}  # validate every recipe before any work
    recipe_dirs = _recipe_dirs(names)
    songs = find_songs(root, exclude=out)
    song_dirs = _song_dirs(root, songs)
    previous = read_manifest(out)
    jobs = [Job(str(song.absolute()), recipe, str(out / song_dirs[song] / recipe_dirs[recipe]))
            for song in songs for recipe in names]
    taken = {j.out_dir for j in jobs}
    pinned = []
    for job in jobs:  # a pair rendered before keeps its folder, unless another pair now has it
        old = (previous.get(job.key) or {}).get("output")
        if isinstance(old, str) and old != job.out_dir and old not in taken and is_inside(Path(old), out):
            taken.add(old)
            job = Job(job.song, job.recipe, old)
        pinned.append(job)
    return pinned
