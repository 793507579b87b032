"""Audacity projects (``.aup3``) for review: named tracks with gains and pans, and beat labels.

Audacity's own pan law is linear balance (pan ``q`` in -1..1: the far side keeps gain 1,
the near side ``1 - |q|``), covermill's is constant power (:mod:`..mixer`). A track's gain
and pan are set so that Audacity plays exactly what covermill's mixer computes:
:func:`audacity_gain_pan`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import sqlite3
import struct
import tempfile
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ...errors import AudacityError
from ..mixer import pan_gains
from .client import build_command
from .launcher import Audacity

log = logging.getLogger(__name__)

#: Audacity's track gain slider range (dB).
GAIN_RANGE_DB = (-36.0, 36.0)


@dataclass(frozen=True)
class SessionTrack:
    """One audio track of a session: a file to import, its name, gain/pan (covermill's law) and mute."""

    name: str
    path: Path
    gain_db: float = 0.0
    pan: float = 0.0
    channels: int = 2
    mute: bool = False


def audacity_gain_pan(gain_db: float, pan: float, *, channels: int = 2) -> tuple[float, float]:
    """Audacity track ``(Gain dB, Pan percent)`` that reproduce covermill's ``gain_db`` and ``pan``.

    covermill gives ``(left, right) = pan_gains(pan)`` (times ``sqrt(2)`` for stereo);
    Audacity gives ``gain * (1 - max(q, 0), 1 + min(q, 0))``: the louder side sets the
    gain, the ratio of the two sides sets ``q``.
    """
    left, right = pan_gains(pan)
    scale = math.sqrt(2.0) if channels == 2 else 1.0
    left, right = left * scale, right * scale
    loud = max(left, right)
    q = (1.0 - left / loud) if right >= left else -(1.0 - right / loud)
    gain = gain_db + 20.0 * math.log10(loud)
    lo, hi = GAIN_RANGE_DB
    if not lo <= gain <= hi:
        raise AudacityError(f"track gain {gain:.1f} dB is outside Audacity's range {lo:g}..{hi:g} dB")
    return round(gain, 4), round(100.0 * q, 4)


def build_session(app: Audacity, tracks: Sequence[SessionTrack], target: str | os.PathLike, *,
                  labels: Sequence[tuple[float, str]] = (), label_track: str = "beats") -> Path:
    """Build a project of ``tracks`` (+ a label track) in ``app`` and save it as ``target`` (atomically).

    The project is saved into a private staging folder, closed (so Audacity writes
    everything into the one file) and moved onto ``target``. Paths are checked before
    ``Import2``: a missing file would open a modal dialog that stops the pipe.
    """
    target = Path(target).absolute()  # Audacity resolves relative paths against its own working folder
    c = app.client
    if c.do("GetInfo", Type="Tracks", Format="Brief").strip():
        raise AudacityError("the Audacity project is not empty; covermill builds sessions in an empty project")
    for track in tracks:
        if not Path(track.path).is_file():
            raise AudacityError(f"{track.path}: no such file to import into the session")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    saved = False
    try:
        for index, track in enumerate(tracks):
            c.do("Import2", Filename=str(Path(track.path).resolve()))
            gain, pan = audacity_gain_pan(track.gain_db, track.pan, channels=track.channels)
            c.do("Select", Track=index, TrackCount=1, Mode="Set")  # SetTrack acts on the selection
            c.do("SetTrack", Name=track.name, Gain=gain, Pan=pan, Mute=track.mute)
        if labels:
            c.do("NewLabelTrack")
            c.do("Select", Track=len(tracks), TrackCount=1, Mode="Set")
            c.do("SetTrack", Name=label_track)
            end = max(t for t, _ in labels) + 10.0
            c.do("Select", Start=end, End=end)  # new labels go after every placed one: index = count
            lines: list[str] = []
            for i, (t, text) in enumerate(sorted(labels)):
                lines.append(build_command("AddLabel"))
                lines.append(build_command("SetLabel", {"Label": i, "Text": text, "Start": float(t), "End": float(t)}))
            c.batch(lines)
        tmp = staging / "session.aup3"
        c.do("SaveProject2", Filename=str(tmp))
        saved = True
        c.do("Close")  # saved, so no "Save changes?" dialog; Audacity checkpoints the file and opens a fresh project
        os.replace(tmp, target)
    finally:
        if not saved:
            with contextlib.suppress(AudacityError):
                _discard(app)
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _discard(app: Audacity) -> None:
    """Empty the project after a failure so the next session starts clean."""
    c = app.client
    c.do("SelectAll", timeout_s=5)
    c.do("RemoveTracks", timeout_s=5)


def aup3_tracks(path: str | os.PathLike) -> list[str]:
    """Names of the tracks in an ``.aup3`` file, read with :mod:`sqlite3` (no Audacity needed).

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
        return _names_from_doc(row[0], row[1])
    except (struct.error, UnicodeDecodeError, AudacityError) as exc:
        raise AudacityError(f"{path}: is not a readable Audacity project ({exc})") from None


def _check_size(size: int, at: int, total: int) -> None:
    """A record's length must be >= 0 and inside the document: the walk always moves forward
    and ends (a crafted negative length made it loop forever)."""
    if size < 0 or at + size > total:
        raise AudacityError(f"record at byte {at} has length {size}, outside the {total}-byte document")


def _names_from_doc(dict_blob: bytes, doc: bytes) -> list[str]:
    """Track names from Audacity's binary project document (``ProjectSerializer`` format).

    ``dict``: ``0x00 <char size>`` then entries ``0x0F <id u16> <bytes u16> <chars>``. In
    ``doc`` a start tag is ``0x01 <id u16>``, a string attribute ``0x03 <id u16> <bytes i32>
    <chars>``; the first ``name`` attribute after a ``wavetrack``/``labeltrack`` start tag is
    the track's name.
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
    name_id, linked_id = ids.get("name"), ids.get("linked")
    track_ids = {ids[t] for t in ("wavetrack", "labeltrack") if t in ids}
    if name_id is None or not track_ids:
        return []
    tracks: list[dict] = []  # one per channel: {"name": ..., "linked": ...}
    current: dict | None = None
    # Record sizes after the type byte (ProjectSerializer.cpp FieldTypes): fixed ones here, strings below.
    fixed = {1: 2, 2: 2, 4: 6, 5: 3, 6: 6, 7: 10, 8: 6, 9: 10, 10: 14, 13: 0, 14: 0, 0: 1}
    i = 0
    while i < len(doc):
        kind = doc[i]
        if kind == 0x01:
            (ident,) = struct.unpack_from("<H", doc, i + 1)
            current = {} if ident in track_ids else None
            if current is not None:
                tracks.append(current)
        elif kind == 0x03:
            ident, size = struct.unpack_from("<Hi", doc, i + 1)
            _check_size(size, i, len(doc))
            if current is not None and ident == name_id and "name" not in current:
                current["name"] = doc[i + 7 : i + 7 + size].decode(encoding)
            i += 7 + size
            continue
        elif kind == 0x04:
            ident, value = struct.unpack_from("<Hi", doc, i + 1)
            if current is not None and ident == linked_id:
                current["linked"] = value
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
    names: list[str] = []
    partner = False
    for t in tracks:  # a stereo track is two channel elements, the first one linked to the second
        if not partner:
            names.append(t.get("name", ""))
        partner = not partner and bool(t.get("linked", 0))
    return names


def render_session(target: str | os.PathLike, *, sr: int, original, stems: dict, processed: dict, cover,
                   beats_s: Sequence[float] = (), app: Audacity | None = None) -> Path:
    """Save a review session of one render as ``target`` (``session.aup3``).

    Tracks, top to bottom: ``original`` (muted), ``stem <name>`` for every separated stem
    (muted, source tempo), ``<name>`` for every audible stem as it enters the cover bus
    (effects applied, cover tempo) with the recipe's gain and pan as Audacity track gain
    and pan, ``cover (mastered)`` (muted), and a ``beats`` label track of the cover
    (``bar.beat``, counted in 4/4). Playing or exporting the session gives the cover's mix
    before mastering. ``processed`` maps a stem name to ``(audio, Stem)``. ``app`` is a
    running :class:`Audacity`; without it one is started and stopped here.
    """
    from ...audio import save_audio

    with tempfile.TemporaryDirectory(prefix="covermill-session-") as tmp:
        folder = Path(tmp)
        tracks: list[SessionTrack] = []

        def add(name: str, audio, **kw) -> None:
            path = folder / f"track{len(tracks):02d}.wav"  # safe names: nothing to escape
            save_audio(path, audio, sr=sr, subtype="FLOAT", clip="none")
            tracks.append(SessionTrack(name=name, path=path, channels=audio.shape[0], **kw))

        add("original", original, mute=True)
        for name, audio in stems.items():
            add(f"stem {name}", audio, mute=True)
        for name, (audio, spec) in processed.items():
            add(name, audio, gain_db=spec.gain_db, pan=spec.pan)
        add("cover (mastered)", cover, mute=True)
        labels = [(float(t), f"{k // 4 + 1}.{k % 4 + 1}") for k, t in enumerate(beats_s)]
        if app is not None:
            return build_session(app, tracks, target, labels=labels)
        with Audacity.start() as started:
            return build_session(started, tracks, target, labels=labels)


def open_session(path: str | os.PathLike, *, app: Audacity | None = None, timeout_s: float = 60.0) -> tuple[Audacity, list[str]]:
    """Open an ``.aup3`` in a real Audacity for a person; returns the Audacity and the project's track names.

    The file is checked first (an unreadable project would open a modal error dialog).
    ``app`` is an Audacity to open it in; otherwise the one already serving the pipe is
    used, or a new one is started on the person's display (covermill's own profile)
    with the project; it is left running for the person (call ``stop()`` to end it).
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise AudacityError(f"{path}: no such file; pass the session.aup3 of a render made with --session")
    if path.suffix.lower() != ".aup3":
        raise AudacityError(f"{path}: is not an Audacity project (.aup3)")
    try:
        expected = aup3_tracks(path)
    except sqlite3.DatabaseError as exc:
        if "locked" in str(exc):
            raise AudacityError(f"{path}: is already open in an Audacity (the project is locked); "
                                "switch to that window or close it there") from None
        raise AudacityError(f"{path}: is not a readable Audacity project ({exc})") from None
    if app is None:
        try:
            app = Audacity.attach(timeout_s=1.0)
        except AudacityError:
            if not os.environ.get("DISPLAY"):
                raise AudacityError("there is no DISPLAY to show Audacity on; run this in a desktop session") from None
            app = Audacity.start(project=path, headless=False, timeout_s=timeout_s, keep_running=True)
            return app, expected
    app.client.do("OpenProject2", Filename=str(path), AddToHistory=False, timeout_s=timeout_s)
    return app, expected
