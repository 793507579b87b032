"""A render whose song or ``OUT`` is a URL: fetch to scratch, render there, publish.

:func:`render_at` is :func:`covermill.automation.pipeline.render` for locations
(:mod:`covermill.locations`): a remote song is downloaded into a private scratch folder
(:func:`tempfile.mkdtemp`, removed afterwards, whatever happens), a remote ``OUT`` is rendered
into that scratch folder first (after a small test write: a location that cannot be written
fails before the work) and then uploaded with :func:`covermill.locations.publish`
(every file, then ``qa.json``; the old ``qa.json`` goes first), so a render interrupted during
the upload never passes for a finished one. Local paths go straight to ``render`` as before.
A batch worker runs exactly this, in its own scratch folder: it shares no disk with the client.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..locations import Location, check_writable, fetch_to, publish
from .outputs import OUTPUT_NAMES, check_out_dir


@dataclass
class Published:
    """Where a render's outputs ended up: ``out`` as the user named it (a path or a URL)."""

    out: str
    qa: dict[str, Any]
    warnings: list[str]

    def file(self, rel: str) -> str:
        return Location.parse(self.out).join(rel).url


def check_locations(song: str | os.PathLike, out: str | os.PathLike) -> tuple[Location, Location]:
    """Parse both locations and refuse a local ``OUT`` that cannot be used, before any work."""
    song_loc, out_loc = Location.parse(song), Location.parse(out)
    if not out_loc.is_remote:
        check_out_dir(out_loc.path, inputs=() if song_loc.is_remote else (song_loc.path,))
    return song_loc, out_loc


def render_at(song: str | os.PathLike, recipe, out: str | os.PathLike, **kwargs: Any) -> Published:
    """Render ``song`` (path or URL) with ``recipe`` into ``out`` (path or URL); ``kwargs`` go to
    :func:`covermill.automation.pipeline.render` (``progress``, render options)."""
    from .pipeline import render

    song_loc, out_loc = check_locations(song, out)
    if not song_loc.is_remote and not out_loc.is_remote:
        result = render(song_loc.path, recipe, out_loc.path, **kwargs)
        return Published(str(result.out_dir), result.qa, result.warnings)
    check_writable(out_loc)  # before the work: no credentials, no bucket, read-only OUT
    scratch = Path(tempfile.mkdtemp(prefix="covermill-render-"))
    try:
        (scratch / "in").mkdir()
        local_song = fetch_to(song_loc, scratch / "in")
        local_out = scratch / "out" if out_loc.is_remote else Path(out_loc.path)
        result = render(local_song, recipe, local_out, **kwargs)
        warnings = [w.replace(str(local_song), song_loc.url) for w in result.warnings]
        if out_loc.is_remote:
            _name_the_song(local_out / "qa.json", song_loc.url)
            publish(local_out, out_loc, managed=OUTPUT_NAMES)
        elif song_loc.is_remote:
            _name_the_song(local_out / "qa.json", song_loc.url)
        return Published(out_loc.url, result.qa, warnings)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _name_the_song(qa_path: Path, url: str) -> None:
    """``qa.json`` names the song the user gave, not the scratch copy it was read from."""
    from ..fsutil import write_text_atomic

    qa = json.loads(qa_path.read_text(encoding="utf-8"))
    qa["song"] = url
    write_text_atomic(qa_path, json.dumps(qa, indent=2) + "\n")
