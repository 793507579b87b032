"""What a batch does differently when ``OUT`` is a URL (:mod:`covermill.locations`).

A render counts as done when its ``qa.json`` is in place (:func:`is_finished`, the rerun's check:
one ``exists`` per output on a remote store). The manifest and ``index.html`` are written by the
client only, into its local :func:`~covermill.automation.batch_plan.state_dir`, and uploaded to
``OUT`` when the batch ends (:func:`upload_summary`); a failed upload is logged, the local copy
stays.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from ..errors import CovermillError
from ..locations import Location, is_done, put_atomic, read_text, storage_errors
from .batch_plan import state_dir

log = logging.getLogger(__name__)


def is_finished(out_dir: str) -> bool:
    """Whether a render's output folder (path or URL) holds its ``qa.json``; a store that cannot
    be reached counts as not finished (the render task then reports why)."""
    try:
        return is_done(Location.parse(out_dir))
    except CovermillError as exc:
        log.warning("%s", exc)
        return False


def upload_summary(out: str | os.PathLike, names: tuple[str, ...]) -> None:
    """Copy the client's ``names`` (manifest, index) to a remote ``OUT``; nothing for a local one."""
    loc = Location.parse(out)
    if not loc.is_remote:
        return
    for name in names:
        local = state_dir(loc) / name
        if not local.is_file():
            continue
        try:
            with storage_errors(loc.join(name), "uploading the batch summary"):
                put_atomic(loc.join(name), local=local)
        except CovermillError as exc:
            log.warning("%s; the client's copy is %s", exc, local)


def summary_of(out: str | os.PathLike, rec: dict[str, Any]) -> tuple[str, dict[str, Any], bool]:
    """``(output folder relative to OUT, its qa.json, whether it has a report)`` for the index."""
    out_loc, folder = Location.parse(out), Location.parse(rec["output"])
    if not out_loc.is_remote:
        path = Path(folder.path)
        rel = os.path.relpath(path, out_loc.path)
        qa_path = path / "qa.json"
        qa = json.loads(qa_path.read_text()) if rec["status"] == "ok" and qa_path.is_file() else {}
        return rel, qa, (path / "report.html").is_file()
    rel = folder.path[len(out_loc.path.rstrip("/")):].lstrip("/") if out_loc.contains(folder) else folder.url
    qa: dict[str, Any] = {}
    if rec["status"] == "ok":
        try:
            qa = json.loads(read_text(folder.join("qa.json")) or "{}")
        except (CovermillError, ValueError) as exc:
            log.warning("index: %s", exc)
    return rel, qa, bool(qa)
