"""The cover as a DAWproject (``OUT/cover.dawproject``): the open exchange format that Bitwig Studio,
PreSonus Studio One, Steinberg Cubase/Nuendo and others import (see ``docs/daw.md``).

A ``.dawproject`` is a ZIP holding ``project.xml`` (tracks, mixer, arrangement; schema
``Project.xsd``), ``metadata.xml`` (title, artist, ...; ``MetaData.xsd``) and here the audio
files under ``audio/``, so the file stands alone. :func:`write_dawproject` takes plain data
(:class:`DawTrack` per part, tempo, meter, bars, markers) and writes one track per part: an audio
clip for a WAV, a note clip for MIDI notes, with the part's volume and pan, all routed to a
master channel; the project tempo and time signature; markers for sections and bars.

Times: the arrangement is in beats at the project tempo (``beats = seconds * bpm / 60``).
Audio clips carry two warp points (beat 0 = 0 s, beat ``n`` = the file's length in seconds),
so a DAW plays the file as is at that tempo. With ``align_bars`` (default) every clip starts at
the same offset that puts the song's first downbeat on a bar line of the DAW's grid (a pickup
before it lands in the bar before). A song without bars gets a bar grid from the tempo starting
at its first sample, and a warning.
"""

from __future__ import annotations

import logging
import math
import os
import re
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ParameterError
from ..fsutil import atomic_path
from ..leadsheet import LeadSheet, Note

log = logging.getLogger(__name__)

#: DAWproject format version written in ``<Project version=...>``.
FORMAT_VERSION = "1.0"
#: ``metadata`` keys accepted, in the schema's order (MetaData.xsd).
METADATA_FIELDS = ("Title", "Artist", "Album", "OriginalArtist", "Composer", "Songwriter", "Producer",
                   "Arranger", "Year", "Genre", "Copyright", "Website", "Comment")
#: Track colours by role (a part's stem name or kind); others cycle through ``_PALETTE``.
ROLE_COLORS = {"drums": "#d94f3d", "bass": "#3d7fd9", "vocals": "#e0a526", "other": "#5bb360",
               "piano": "#9b59b6", "guitar": "#c0703a", "bus": "#7f8c8d", "original": "#555555",
               "cover": "#222222", "midi": "#2bb5b5"}
_PALETTE = ("#d94f3d", "#3d7fd9", "#e0a526", "#5bb360", "#9b59b6", "#c0703a", "#2bb5b5", "#b5487a")
#: Track volume range (linear gain) written as the parameter's min/max: +6 dB headroom like Bitwig.
_VOLUME_MAX = 2.0


@dataclass(frozen=True)
class DawTrack:
    """One part of the project: ``audio`` (a WAV on disk, placed at the song's start) or ``notes``
    (MIDI notes in seconds, or a ``pretty_midi.Instrument``), never both.

    ``volume_db`` is the track fader, ``pan`` -1 (left) .. 1 (right); ``role`` picks the colour
    (:data:`ROLE_COLORS`) unless ``color`` (``"#rrggbb"``) is given; ``mute`` for reference tracks
    (the original). ``midi_program`` is kept in the track comment (DAWproject has no GM program).
    """

    name: str
    audio: str | os.PathLike | None = None
    notes: Any = None
    volume_db: float = 0.0
    pan: float = 0.0
    role: str = ""
    color: str | None = None
    mute: bool = False
    midi_program: int | None = None


def _notes_of(track: DawTrack) -> list[Note]:
    notes = track.notes
    if hasattr(notes, "notes"):  # pretty_midi.Instrument
        notes = [Note(float(n.start), float(n.end), int(n.pitch), int(n.velocity)) for n in notes.notes]
    return sorted(notes or (), key=lambda n: (n.start_s, n.pitch))


def _check(tracks: Sequence[DawTrack], bpm: float, beats_per_bar: int, sr: int) -> None:
    if not (math.isfinite(bpm) and 20.0 <= bpm <= 999.0):
        raise ParameterError(f"bpm={bpm} must be a tempo between 20 and 999")
    if not 1 <= int(beats_per_bar) <= 32:
        raise ParameterError(f"beats_per_bar={beats_per_bar} must be 1..32")
    if sr <= 0:
        raise ParameterError(f"sr={sr} must be a positive sample rate")
    if not tracks:
        raise ParameterError("a DAW project needs at least one track")
    for t in tracks:
        if (t.audio is None) == (t.notes is None):
            raise ParameterError(f"track {t.name!r}: give either an audio file or MIDI notes")
        if t.audio is not None and not Path(t.audio).is_file():
            raise ParameterError(f"track {t.name!r}: {t.audio}: no such audio file")
        if not -1.0 <= t.pan <= 1.0:
            raise ParameterError(f"track {t.name!r}: pan={t.pan} must be in -1..1")
        if t.color is not None and not re.fullmatch(r"#[0-9a-fA-F]{6}", t.color):
            raise ParameterError(f"track {t.name!r}: color={t.color!r} must be '#rrggbb'")
        if 10 ** (t.volume_db / 20) > _VOLUME_MAX:
            raise ParameterError(f"track {t.name!r}: volume_db={t.volume_db} is over +6 dB")


def _fmt(x: float) -> str:
    return f"{x:.6f}".rstrip("0").rstrip(".") if math.isfinite(x) else "0"


def _file_names(tracks: Sequence[DawTrack]) -> list[str | None]:
    """``audio/<safe track name>.wav`` per audio track, unique."""
    used: set[str] = set()
    out: list[str | None] = []
    for t in tracks:
        if t.audio is None:
            out.append(None)
            continue
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", t.name).strip("._") or "track"
        name, k = stem, 1
        while name.lower() in used:
            k += 1
            name = f"{stem}_{k}"
        used.add(name.lower())
        out.append(f"audio/{name}{Path(t.audio).suffix.lower() or '.wav'}")
    return out


def bar_grid(*, bars_s: Sequence[float], bpm: float, beats_per_bar: int, duration_s: float,
             warnings: list[str] | None = None) -> list[float]:
    """The song's bar starts in seconds: ``bars_s`` as given, or, when empty, one bar every
    ``beats_per_bar`` beats at ``bpm`` from 0 s to ``duration_s`` (and a warning saying so)."""
    bars = sorted(float(b) for b in bars_s if 0.0 <= float(b) <= duration_s)
    if bars:
        return bars
    msg = (f"no bars were detected: the DAW project gets a {beats_per_bar}/4 bar grid from the tempo "
           f"({bpm:.1f} BPM) starting at the first sample")
    log.warning(msg)
    if warnings is not None:
        warnings.append(msg)
    step = beats_per_bar * 60.0 / bpm
    return [k * step for k in range(int(duration_s / step) + 1)]


def markers_from_leadsheet(sheet: LeadSheet) -> tuple[list[tuple[float, str]], list[float]]:
    """``(markers, bars_s)`` for :func:`write_dawproject` from a lead sheet: a marker per
    section (its label, numbered when repeated: ``A``, ``B``, ``A 2``) and the sheet's downbeats."""
    seen: dict[str, int] = {}
    markers: list[tuple[float, str]] = []
    for s in sheet.sections:
        seen[s.label] = seen.get(s.label, 0) + 1
        markers.append((s.start_s, s.label if seen[s.label] == 1 else f"{s.label} {seen[s.label]}"))
    return markers, list(sheet.downbeats_s)


class _Ids:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"id{self.n}"


def _real(parent: ET.Element, tag: str, ids: _Ids, *, value: float, unit: str, lo: float, hi: float,
          name: str) -> ET.Element:
    return ET.SubElement(parent, tag, id=ids(), name=name, unit=unit, value=_fmt(value), min=_fmt(lo), max=_fmt(hi))


def _audio_info(path: Path) -> tuple[int, int, float]:
    import soundfile as sf

    info = sf.info(str(path))
    return int(info.channels), int(info.samplerate), info.frames / info.samplerate


def project_xml(tracks: Sequence[DawTrack], *, bpm: float, beats_per_bar: int, bars_s: Sequence[float],
                markers: Iterable[tuple[float, str]], files: Sequence[str | None], sr: int,
                align_bars: bool = True, bar_markers: bool = True,
                warnings: list[str] | None = None) -> tuple[ET.Element, float]:
    """``(<Project> element, offset in beats of the song's start)``; see :func:`write_dawproject`."""
    from .. import __version__

    ids = _Ids()
    beat_s = 60.0 / bpm
    infos = [None if t.audio is None else _audio_info(Path(t.audio)) for t in tracks]
    for t, info in zip(tracks, infos, strict=True):
        if info is not None and info[1] != sr:
            raise ParameterError(f"track {t.name!r}: {t.audio} is at {info[1]} Hz, the project at {sr} Hz")
    all_notes = [_notes_of(t) if t.notes is not None else [] for t in tracks]
    duration_s = max([i[2] for i in infos if i] + [n[-1].end_s for n in all_notes if n] + [beat_s])
    bars = bar_grid(bars_s=bars_s, bpm=bpm, beats_per_bar=beats_per_bar, duration_s=duration_s, warnings=warnings)
    first = bars[0] / beat_s
    offset = (math.ceil(first / beats_per_bar - 1e-9) * beats_per_bar - first) if align_bars else 0.0

    root = ET.Element("Project", version=FORMAT_VERSION)
    ET.SubElement(root, "Application", name="covermill", version=__version__)
    transport = ET.SubElement(root, "Transport")
    _real(transport, "Tempo", ids, value=bpm, unit="bpm", lo=20, hi=999, name="Tempo")
    ET.SubElement(transport, "TimeSignature", id=ids(), numerator=str(int(beats_per_bar)), denominator="4")
    structure = ET.SubElement(root, "Structure")
    master_id, track_ids = ids(), []
    for i, t in enumerate(tracks):
        tid = ids()
        track_ids.append(tid)
        color = t.color or ROLE_COLORS.get(t.role) or _PALETTE[i % len(_PALETTE)]
        attrs = {"id": tid, "name": t.name, "color": color, "loaded": "true",
                 "contentType": "audio" if t.audio is not None else "notes"}
        if t.midi_program is not None:
            attrs["comment"] = f"General MIDI program {t.midi_program}"
        track = ET.SubElement(structure, "Track", attrs)
        channels = infos[i][0] if infos[i] else 2
        ch = ET.SubElement(track, "Channel", id=ids(), role="regular", audioChannels=str(channels),
                           destination=master_id, solo="false")
        ET.SubElement(ch, "Mute", id=ids(), name="Mute", value="true" if t.mute else "false")
        _real(ch, "Pan", ids, value=(t.pan + 1.0) / 2.0, unit="normalized", lo=0, hi=1, name="Pan")
        _real(ch, "Volume", ids, value=10 ** (t.volume_db / 20), unit="linear", lo=0, hi=_VOLUME_MAX, name="Volume")
    master = ET.SubElement(structure, "Track", id=ids(), name="Master", contentType="audio notes", loaded="true")
    mch = ET.SubElement(master, "Channel", id=master_id, role="master", audioChannels="2", solo="false")
    ET.SubElement(mch, "Mute", id=ids(), name="Mute", value="false")
    _real(mch, "Pan", ids, value=0.5, unit="normalized", lo=0, hi=1, name="Pan")
    _real(mch, "Volume", ids, value=1.0, unit="linear", lo=0, hi=_VOLUME_MAX, name="Volume")

    arrangement = ET.SubElement(root, "Arrangement", id=ids())
    lanes = ET.SubElement(arrangement, "Lanes", id=ids(), timeUnit="beats")
    for i, t in enumerate(tracks):
        track_lanes = ET.SubElement(lanes, "Lanes", id=ids(), track=track_ids[i])
        clips = ET.SubElement(track_lanes, "Clips", id=ids())
        if infos[i] is not None:
            channels, rate, seconds = infos[i]
            beats = seconds / beat_s
            clip = ET.SubElement(clips, "Clip", time=_fmt(offset), duration=_fmt(beats), playStart="0",
                                 contentTimeUnit="beats", name=t.name, fadeTimeUnit="beats",
                                 fadeInTime="0", fadeOutTime="0")
            warps = ET.SubElement(clip, "Warps", id=ids(), timeUnit="beats", contentTimeUnit="seconds")
            audio = ET.SubElement(warps, "Audio", id=ids(), channels=str(channels), sampleRate=str(rate),
                                  duration=_fmt(seconds), algorithm="stretch")
            ET.SubElement(audio, "File", path=files[i], external="false")
            ET.SubElement(warps, "Warp", time="0", contentTime="0")
            ET.SubElement(warps, "Warp", time=_fmt(beats), contentTime=_fmt(seconds))
        else:
            notes = all_notes[i]
            beats = duration_s / beat_s
            clip = ET.SubElement(clips, "Clip", time=_fmt(offset), duration=_fmt(beats), playStart="0",
                                 contentTimeUnit="beats", name=t.name)
            el = ET.SubElement(clip, "Notes", id=ids())
            for n in notes:
                ET.SubElement(el, "Note", time=_fmt(n.start_s / beat_s), duration=_fmt(max(n.duration_s, 1e-3) / beat_s),
                              channel="0", key=str(int(n.pitch)), vel=_fmt(min(max(n.velocity, 0), 127) / 127.0),
                              rel=_fmt(min(max(n.velocity, 0), 127) / 127.0))
    all_markers = sorted((float(t), str(text)) for t, text in markers)
    if bar_markers:
        all_markers += [(b, f"bar {k + 1}") for k, b in enumerate(bars)]
    all_markers.sort(key=lambda m: m[0])
    if all_markers:
        mk = ET.SubElement(arrangement, "Markers", id=ids(), timeUnit="beats")
        for t_s, text in all_markers:
            ET.SubElement(mk, "Marker", time=_fmt(offset + t_s / beat_s), name=text,
                          color="#7f8c8d" if text.startswith("bar ") else "#e0a526")
    return root, offset


def metadata_xml(metadata: dict[str, str]) -> ET.Element:
    """``<MetaData>`` with the given fields (keys of :data:`METADATA_FIELDS`, any case) in the schema's order."""
    by_lower = {k.lower(): k for k in METADATA_FIELDS}
    given: dict[str, str] = {}
    for k, v in metadata.items():
        if k.lower() not in by_lower:
            raise ParameterError(f"metadata key {k!r} is not one of {', '.join(METADATA_FIELDS)}")
        given[by_lower[k.lower()]] = str(v)
    root = ET.Element("MetaData")
    for k in METADATA_FIELDS:
        if k in given:
            ET.SubElement(root, k).text = given[k]
    return root


def _xml_bytes(root: ET.Element) -> bytes:
    ET.indent(root, space="  ")
    return b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' + ET.tostring(root, encoding="utf-8")


def write_dawproject(path: str | os.PathLike, *, tracks: Sequence[DawTrack], bpm: float, beats_per_bar: int = 4,
                     bars_s: Sequence[float] = (), markers: Iterable[tuple[float, str]] = (),
                     metadata: dict[str, str] | None = None, sr: int, align_bars: bool = True,
                     bar_markers: bool = True, warnings: list[str] | None = None) -> Path:
    """Write a ``.dawproject`` of ``tracks`` at ``path`` (atomically) and return the path.

    Parameters
    ----------
    tracks : one :class:`DawTrack` per part, top to bottom; audio files must be at ``sr``.
    bpm : the project tempo; clip and note times are beats at this tempo.
    beats_per_bar : the time signature ``beats_per_bar/4``.
    bars_s : the song's downbeats in seconds (e.g. ``LeadSheet.downbeats_s``); empty -> a bar grid
        from the tempo and a warning (logged and appended to ``warnings``).
    markers : ``(time_s, name)`` cue markers (sections); with ``bar_markers`` a ``bar N`` marker per bar too.
    metadata : ``{"Title": ..., "Artist": ..., "Comment": ...}`` (keys: :data:`METADATA_FIELDS`).
    align_bars : start every clip at the offset that puts the song's first downbeat on a DAW bar line.

    Example
    -------
    >>> write_dawproject("out/cover.dawproject", sr=44100, bpm=120.0, tracks=[
    ...     DawTrack("bass", audio="out/cover_stems/bass.wav", volume_db=-3.0, pan=-0.2, role="bass")])
    """
    _check(tracks, bpm, beats_per_bar, sr)
    files = _file_names(tracks)
    project, _ = project_xml(tracks, bpm=bpm, beats_per_bar=beats_per_bar, bars_s=bars_s, markers=markers,
                             files=files, sr=sr, align_bars=align_bars, bar_markers=bar_markers, warnings=warnings)
    meta = metadata_xml(dict(metadata or {}))
    target = Path(path)
    with atomic_path(target) as tmp:
        with zipfile.ZipFile(tmp, "w") as z:
            z.writestr(zipfile.ZipInfo("project.xml", (2020, 1, 1, 0, 0, 0)), _xml_bytes(project),
                       compress_type=zipfile.ZIP_DEFLATED)
            z.writestr(zipfile.ZipInfo("metadata.xml", (2020, 1, 1, 0, 0, 0)), _xml_bytes(meta),
                       compress_type=zipfile.ZIP_DEFLATED)
            for t, name in zip(tracks, files, strict=True):
                if name is not None:  # WAV barely compresses: stored, so writing costs one copy
                    z.write(t.audio, name, compress_type=zipfile.ZIP_STORED)
    return target
