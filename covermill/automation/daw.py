"""The cover as a DAW project: ``OUT/cover.dawproject`` from the cover stems, the MIDI parts and
the cover's lead sheet (tempo, meter, bars, sections), via :mod:`.dawproject`."""

from __future__ import annotations

import math
from pathlib import Path

from ..leadsheet import LeadSheet
from ..recipes.schema import PART_PREFIX
from .dawproject import DawTrack, markers_from_leadsheet, write_dawproject


def _role(track: str) -> str:
    name = track[len(PART_PREFIX):] if track.startswith(PART_PREFIX) else track
    return {"vocals": "vocals", "drums": "drums", "bass": "bass", "comping": "piano", "other": "other"}.get(
        name, "bus" if track.startswith("bus_") else "other")


def write_project(path: Path, *, staging, sheet: LeadSheet, tracks: list[str], part_midi: dict, notes: dict, sr: int,
                  title: str, warnings: list[str]) -> Path:
    """One audio track per cover stem (as heard in the mix: faders at 0 dB, centred, so the
    project plays the cover's mix before the master), the generated parts and the MIDI-played
    stems as muted note tracks (to re-voice in the DAW), the lead sheet's melody, chords and bass
    as muted note tracks, the tempo, the meter, a marker per section and per bar."""
    daw_tracks = [DawTrack(name, audio=staging / "cover_stems" / f"{name}.wav", role=_role(name)) for name in tracks]
    for track, pm in part_midi.items():
        for inst in pm.instruments:
            daw_tracks.append(DawTrack(f"{track} (MIDI)", notes=inst, role=_role(track), mute=True,
                                       midi_program=None if inst.is_drum else inst.program))
    for stem, pm in notes.items():
        for inst in pm.instruments:
            daw_tracks.append(DawTrack(f"{stem} (MIDI)", notes=inst, role=_role(stem), mute=True,
                                       midi_program=None if inst.is_drum else inst.program))
    from ..leadsheet import to_midi

    for inst in to_midi(sheet).instruments:
        if inst.notes:
            daw_tracks.append(DawTrack(f"lead sheet {inst.name}", notes=inst, role="other", mute=True,
                                       midi_program=inst.program))
    markers, bars = markers_from_leadsheet(sheet)
    bpm = sheet.bpm if math.isfinite(sheet.bpm) and sheet.bpm > 0 else 120.0
    return write_dawproject(path, tracks=daw_tracks, bpm=bpm, beats_per_bar=sheet.beats_per_bar, bars_s=bars,
                            markers=markers, metadata={"Title": title, "Comment": "rendered by covermill"}, sr=sr,
                            warnings=warnings)
