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
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ...errors import AudacityError
from ..mixer import pan_gains
from .aup3 import aup3_info, aup3_tracks  # noqa: F401  (re-exported: the .aup3 reader)
from .client import AudacityGone
from .labels import (
    Label,
    aud_do,
    beat_labels,
    check_label_tracks,
    file_name_for,
    label_file_text,
    lof_text,
    read_labels_code,
    reorder_forms,
    settings_forms,
    tool_command,
    tool_script,
    write_text,
)
from .launcher import Audacity

log = logging.getLogger(__name__)

#: Height of a session's label tracks (Audacity 3.2's smallest track height).
LABEL_HEIGHT_PX = 44
#: Audacity's track gain slider range (dB).
GAIN_RANGE_DB = (-36.0, 36.0)


@dataclass(frozen=True)
class SessionTrack:
    """One audio track of a session: a file to import, its name, gain/pan (covermill's law), mute, and
    whether it opens collapsed (reference tracks: the window then fits the audible ones)."""

    name: str
    path: Path
    gain_db: float = 0.0
    pan: float = 0.0
    channels: int = 2
    mute: bool = False
    collapsed: bool = False


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
                  labels: Sequence[tuple[float, str]] = (), label_track: str = "beats",
                  label_tracks: Mapping[str, Sequence[Label]] | None = None) -> Path:
    """Build a project of ``tracks`` (+ label tracks) in ``app`` and save it as ``target`` (atomically).

    ``labels`` (``(time_s, text)`` points) make a label track named ``label_track``;
    ``label_tracks`` maps more label track names to ``(start_s, end_s, text)`` labels (bars,
    sections, chords), placed below it in the given order; a name without labels gets no track. The number of pipe commands does not
    depend on the number of labels or tracks, except 2 per label track (see :mod:`.labels`):
    one ``Import2`` of a List-of-Files imports the ``collapsed`` tracks, ``CollapseAllTracks``
    collapses them, a second ``Import2`` imports the others, one Nyquist call per label track
    creates all its labels, one Nyquist ``tool`` call names every track, sets gain, pan and mute
    and moves the tracks into the given order, then ``FitV``/``FitInWindow`` fit the tracks into
    the window and the project is saved. (Non-ASCII track names cost 2 commands each.)

    The project is saved into a private staging folder, closed (so Audacity writes everything
    into the one file) and moved onto ``target``. Paths are checked before the import: a missing
    file would open a modal dialog that stops the pipe.

    Audacity 3.2.4 under Xvfb now and then crashes in ``Close`` (its crash report ends as ``Close``
    opens the fresh project; then it exits -- the next command finds the pipe closed -- or hangs in
    its crash reporter, which :meth:`.launcher.Audacity.alive` notices at once). A build that loses
    an Audacity started by covermill is built again, from the start, in a restarted Audacity
    (:meth:`.launcher.Audacity.restart`: same profile, empty project), with a warning, up to
    :data:`SESSION_RESTARTS` times; the loss of an attached Audacity is the error.
    """
    for attempt in range(SESSION_RESTARTS + 1):
        try:
            return _build(app, tracks, target, labels=labels, label_track=label_track, label_tracks=label_tracks)
        except AudacityGone as exc:
            if not app.owned or attempt == SESSION_RESTARTS:
                raise
            report = app.crash_report()
            log.warning("%s%s; restarting Audacity and building %s again", exc,
                        f" (crash report {report})" if report else "", Path(target).name)
            app.restart()
    raise AssertionError("unreachable")


#: How many times a session build restarts an Audacity that crashed under it (see :func:`build_session`).
SESSION_RESTARTS = 2


def _build(app: Audacity, tracks: Sequence[SessionTrack], target: str | os.PathLike, *,
           labels: Sequence[tuple[float, str]], label_track: str,
           label_tracks: Mapping[str, Sequence[Label]] | None) -> Path:
    """One attempt of :func:`build_session`."""
    target = Path(target).absolute()  # Audacity resolves relative paths against its own working folder
    c = app.client
    groups: dict[str, list[Label]] = {}
    if labels:
        groups[label_track] = [(float(t), float(t), str(text)) for t, text in labels]
    groups.update(check_label_tracks(label_tracks or {}))
    groups = {name: group for name, group in groups.items() if group}  # Nyquist makes no track of no labels
    if not tracks:
        raise AudacityError("a session needs at least one audio track")
    if c.do("GetInfo", Type="Tracks", Format="Brief").strip():
        raise AudacityError("the Audacity project is not empty; covermill builds sessions in an empty project")
    for track in tracks:
        if not Path(track.path).is_file():
            raise AudacityError(f"{track.path}: no such file to import into the session")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    saved = False
    try:
        with tempfile.TemporaryDirectory(prefix="covermill-session-scripts-") as tmp:
            scripts = Path(tmp)
            # Audacity has no per-track collapse command: import the collapsed ones, collapse all, import the rest
            first = [i for i, t in enumerate(tracks) if t.collapsed]
            rest = [i for i, t in enumerate(tracks) if not t.collapsed]
            if first:
                _import_all(c, [tracks[i] for i in first], scripts / "collapsed.lof", before=0)
                c.do("CollapseAllTracks")
            if rest:
                _import_all(c, [tracks[i] for i in rest], scripts / "tracks.lof", before=len(first))
            end_s = max([t1 for group in groups.values() for _, t1, _ in group] + [_duration_s(t.path) for t in tracks])
            for k, group in enumerate(groups.values()):  # each call appends one label track at the bottom
                c.do("Select", Track=0, TrackCount=1, Start=0.0, End=end_s + 1.0, Mode="Set")
                data = write_text(scripts / f"labels{k}.lsp", label_file_text(group))
                c.do("NyquistPrompt", Command=read_labels_code(data))
            current = first + rest + [f"label {name}" for name in groups]
            wanted = list(range(len(tracks))) + [f"label {name}" for name in groups]
            # label tracks at Audacity's smallest height (FitV sizes audio tracks only): one row of labels each
            settings = [_track_settings(tracks[i]) if isinstance(i, int) else {"Name": i[6:], "Height": LABEL_HEIGHT_PX}
                        for i in current]
            # aud-do decodes its command in the C locale: a non-ASCII name would fail there, so those
            # names go through the pipe (UTF-8), two commands each, once the tracks are in place
            piped = {wanted.index(current[i]): p.pop("Name") for i, p in enumerate(settings)
                     if not str(p["Name"]).isascii()}
            forms = settings_forms(settings) + reorder_forms(current, wanted) + [aud_do("SelectNone")]
            c.send_line(tool_command(write_text(scripts / "settings.lsp", tool_script(forms))))
            for i, name in piped.items():
                c.do("Select", Track=i, TrackCount=1, Mode="Set")
                c.do("SetTrack", Name=name)
            _verify(c, tracks, list(groups))
        c.do("FitV")  # track heights that fit the window: every track visible when the session opens
        c.do("FitInWindow")  # the whole song in the width
        tmp_target = staging / "session.aup3"
        c.do("SaveProject2", Filename=str(tmp_target))
        saved = True
        c.do("Close")  # saved, so no "Save changes?" dialog; Audacity checkpoints the file and opens a fresh project
        os.replace(tmp_target, target)
    finally:
        if not saved:
            with contextlib.suppress(AudacityError):
                _discard(app)
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _duration_s(path: str | os.PathLike) -> float:
    import soundfile as sf

    info = sf.info(str(path))
    return info.frames / info.samplerate


def _track_settings(track: SessionTrack) -> dict[str, object]:
    gain, pan = audacity_gain_pan(track.gain_db, track.pan, channels=track.channels)
    return {"Name": track.name, "Gain": gain, "Pan": pan, "Mute": track.mute}


def _import_all(c, tracks: Sequence[SessionTrack], lof: Path, *, before: int) -> None:
    """Every track in one ``Import2`` of a List-of-Files. Audacity 3.2.4 imports every listed file
    and then answers ``Failed`` (the .lof itself adds no track), so the result is checked by
    counting the tracks instead."""
    write_text(lof, lof_text([Path(t.path).resolve() for t in tracks]))
    try:
        c.do("Import2", Filename=str(lof))
    except AudacityError as exc:
        if "no message" not in str(exc):
            raise
    got = [line for line in c.do("GetInfo", Type="Tracks", Format="Brief").splitlines() if line.strip()]
    if len(got) != before + len(tracks):
        raise AudacityError(f"Audacity imported {len(got) - before} of {len(tracks)} audio files for the session")


def _verify(c, tracks: Sequence[SessionTrack], label_names: Sequence[str]) -> None:
    """Names, mutes and track kinds as intended (the Nyquist tool call cannot report a failure)."""
    import json
    import re

    text = c.do("GetInfo", Type="Tracks", Format="JSON") or "[]"
    info = json.loads(re.sub(r'\\(?!")', r"\\\\", text))  # Audacity escapes quotes, not backslashes
    want = [(t.name, "wave", int(t.mute)) for t in tracks] + [(n, "label", None) for n in label_names]
    got = [(t.get("name"), t.get("kind"), t.get("mute") if t.get("kind") == "wave" else None) for t in info]
    if got != want:
        raise AudacityError(f"the Audacity session came out as {got}, expected {want}")


def close_project(app: Audacity) -> None:
    """Close the open project (Audacity then opens a fresh, empty one). Audacity 3.2.4 under Xvfb
    sometimes crashes in ``Close`` (see :func:`build_session`); one started by covermill is then
    restarted, which leaves the same state: no project open but an empty one."""
    try:
        app.client.do("Close")
    except AudacityGone as exc:
        if not app.owned:
            raise
        log.warning("%s; restarting Audacity", exc)
        app.restart()


def _discard(app: Audacity) -> None:
    """Empty the project after a failure so the next session starts clean."""
    c = app.client
    c.do("SelectAll", timeout_s=5)
    c.do("RemoveTracks", timeout_s=5)


def render_session(target: str | os.PathLike, *, sr: int, original, stems: dict, processed: dict, cover,
                   beats_s: Sequence[float] = (), downbeats_s: Sequence[float] = (), beats_per_bar: int = 4,
                   label_tracks: Mapping[str, Sequence[Label]] | None = None,
                   app: Audacity | None = None) -> Path:
    """Save a review session of one render as ``target`` (``session.aup3``).

    Tracks, top to bottom: ``original`` (muted), ``stem <name>`` for every separated stem
    (muted, source tempo), ``<name>`` for every audible stem as it enters the cover bus
    (effects applied, cover tempo) with the recipe's gain and pan as Audacity track gain
    and pan, ``cover (mastered)`` (muted), a ``beats`` label track of the cover (``bar.beat``:
    counted from ``downbeats_s`` when given, else in ``beats_per_bar`` from the first beat), then
    one label track per entry of ``label_tracks`` (name -> ``(start_s, end_s, text)`` labels, e.g.
    :func:`.labels.leadsheet_label_tracks` of the cover's lead sheet: bars, sections, chords).
    Each clip carries its track's name; the muted reference tracks open collapsed and the rest
    is fitted to the window (Audacity's own window in covermill's profile: 1280x1024). Playing or exporting the session gives the cover's mix
    before mastering. ``processed`` maps a stem name to ``(audio, Stem)``. ``app`` is a
    running :class:`Audacity`; without it one is started and stopped here.
    """
    from concurrent.futures import ThreadPoolExecutor

    from ...audio import save_audio

    with tempfile.TemporaryDirectory(prefix="covermill-session-") as tmp:
        folder = Path(tmp)
        tracks: list[SessionTrack] = []
        audios = []

        def add(name: str, audio, **kw) -> None:
            path = folder / f"{len(tracks):02d}" / file_name_for(name)  # the clip is named after its file
            path.parent.mkdir()
            audios.append((path, audio))
            tracks.append(SessionTrack(name=name, path=path, channels=audio.shape[0], **kw))

        add("original", original, mute=True, collapsed=True)
        for name, audio in stems.items():
            add(f"stem {name}", audio, mute=True, collapsed=True)
        for name, (audio, spec) in processed.items():
            add(name, audio, gain_db=spec.gain_db, pan=spec.pan)
        add("cover (mastered)", cover, mute=True, collapsed=True)
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:  # libsndfile releases the GIL
            list(pool.map(lambda pa: save_audio(pa[0], pa[1], sr=sr, subtype="FLOAT", clip="none"), audios))
        groups: dict[str, list[Label]] = {}
        if len(beats_s):
            groups["beats"] = beat_labels(beats_s, downbeats_s=downbeats_s, beats_per_bar=beats_per_bar)
        groups.update(check_label_tracks(label_tracks or {}))
        if app is not None:
            return build_session(app, tracks, target, label_tracks=groups)
        with Audacity.start() as started:
            return build_session(started, tracks, target, label_tracks=groups)


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
