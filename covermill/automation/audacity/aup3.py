"""Reading an Audacity ``.aup3`` project without Audacity: its tracks, their heights, collapse
state and clips, from the project's SQLite database and Audacity's binary XML.

Hardened for files from elsewhere: the name is percent-encoded before it reaches SQLite's URI
parser, and every record length is checked so a crafted file cannot make the walk loop.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import struct
import urllib.parse
from pathlib import Path

from ...errors import AudacityError


def aup3_tracks(path: str | os.PathLike) -> list[str]:
    """Names of the tracks in an ``.aup3`` file, read with :mod:`sqlite3` (no Audacity needed)."""
    return [t["name"] for t in aup3_info(path)]


def aup3_info(path: str | os.PathLike) -> list[dict]:
    """The tracks of an ``.aup3`` file without Audacity: per track ``name``, ``kind`` (``wave`` or
    ``label``), ``channels``, ``height`` (pixels when expanded, all channels), ``minimized``
    (collapsed) and ``clips`` (clip names).

    The project document is Audacity's binary XML: element and attribute names are in
    the ``dict`` blob, values inline; names are stored as length-prefixed UTF-8 (3.2).
    """
    # the name is percent-encoded: `?`, `#` and `%` in it are never read as URI syntax
    uri = "file:" + urllib.parse.quote(str(Path(path).resolve()), safe="/") + "?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        row = db.execute("SELECT dict, doc FROM project WHERE id = 1").fetchone()
    if row is None:
        raise AudacityError(f"{path}: holds no saved project")
    if not isinstance(row[0], bytes) or not isinstance(row[1], bytes):
        raise AudacityError(f"{path}: is not a readable Audacity project (the project rows are not blobs)")
    try:
        return _tracks_from_doc(row[0], row[1])
    except (struct.error, UnicodeDecodeError, AudacityError) as exc:
        raise AudacityError(f"{path}: is not a readable Audacity project ({exc})") from None


def _check_size(size: int, at: int, total: int) -> None:
    """A record's length must be >= 0 and inside the document: the walk always moves forward
    and ends (a crafted negative length made it loop forever)."""
    if size < 0 or at + size > total:
        raise AudacityError(f"record at byte {at} has length {size}, outside the {total}-byte document")


def _tracks_from_doc(dict_blob: bytes, doc: bytes) -> list[dict]:
    """Tracks from Audacity's binary project document (``ProjectSerializer`` format).

    ``dict``: ``0x00 <char size>`` then entries ``0x0F <id u16> <bytes u16> <chars>``. In
    ``doc`` a start tag is ``0x01 <id u16>``, a string attribute ``0x03 <id u16> <bytes i32>
    <chars>``, an int attribute ``0x04 <id u16> <i32>``; the attributes of a ``wavetrack``,
    ``labeltrack`` or ``waveclip`` follow its start tag.
    """
    if len(dict_blob) < 2 or dict_blob[0] != 0:
        raise AudacityError("unknown .aup3 project dictionary format")
    width = dict_blob[1]
    encoding = {1: "utf-8", 2: "utf-16-le", 4: "utf-32-le"}.get(width)
    if encoding is None:
        raise AudacityError(f"unknown character size {width} in the .aup3 project")
    ids: dict[str, int] = {}
    i = 2
    while i + 5 <= len(dict_blob) and dict_blob[i] == 0x0F:
        ident, size = struct.unpack_from("<HH", dict_blob, i + 1)
        ids[dict_blob[i + 5 : i + 5 + size].decode(encoding)] = ident
        i += 5 + size
    names = {v: k for k, v in ids.items()}
    kinds = {ids[t]: t[:-5] for t in ("wavetrack", "labeltrack") if t in ids}
    clip_id = ids.get("waveclip")
    channels: list[dict] = []  # one per channel element: {"name", "kind", "linked", "height", "clips"}
    element: dict | None = None  # the element whose attributes are being read
    # Record sizes after the type byte (ProjectSerializer.cpp FieldTypes): fixed ones here, strings below.
    fixed = {1: 2, 2: 2, 4: 6, 5: 3, 6: 6, 7: 10, 8: 6, 9: 10, 10: 14, 13: 0, 14: 0, 0: 1}
    i = 0
    while i < len(doc):
        kind = doc[i]
        if kind == 0x01:
            (ident,) = struct.unpack_from("<H", doc, i + 1)
            element = None
            if ident in kinds:
                element = {"kind": kinds[ident], "clips": []}
                channels.append(element)
            elif ident == clip_id and channels:
                element = {}
                channels[-1]["clips"].append(element)
        elif kind == 0x03:
            ident, size = struct.unpack_from("<Hi", doc, i + 1)
            _check_size(size, i, len(doc))
            if element is not None and names.get(ident) == "name" and "name" not in element:
                element["name"] = doc[i + 7 : i + 7 + size].decode(encoding)
            i += 7 + size
            continue
        elif kind == 0x04:
            ident, value = struct.unpack_from("<Hi", doc, i + 1)
            if element is not None and names.get(ident) in ("linked", "height"):
                element[names[ident]] = value
        elif kind == 0x05:
            ident, value = struct.unpack_from("<HB", doc, i + 1)
            if element is not None and names.get(ident) == "minimized":
                element["minimized"] = bool(value)
        elif kind in (0x0B, 0x0C):
            (size,) = struct.unpack_from("<i", doc, i + 1)
            _check_size(size, i, len(doc))
            i += 5 + size
            continue
        elif kind == 0x0F:
            _, size = struct.unpack_from("<HH", doc, i + 1)
            i += 5 + size
            continue
        elif kind not in fixed:
            raise AudacityError(f"unknown record type {kind} at byte {i} of the .aup3 project document")
        i += 1 + fixed[kind]
    tracks: list[dict] = []
    partner = False
    for ch in channels:  # a stereo track is two channel elements, the first one linked to the second
        if partner:
            tracks[-1]["channels"] += 1
            tracks[-1]["height"] += ch.get("height", 0)
        else:
            tracks.append({"name": ch.get("name", ""), "kind": ch["kind"], "channels": 1,
                           "height": ch.get("height", 0), "minimized": ch.get("minimized", False),
                           "clips": [c.get("name", "") for c in ch["clips"]]})
        partner = not partner and bool(ch.get("linked", 0))
    return tracks
