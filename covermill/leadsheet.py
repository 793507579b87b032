"""The lead sheet: a song's meter, key, chords, melody, bass line and sections as plain data.

This module sits below the stage packages: :mod:`covermill.analysis` fills a
:class:`LeadSheet` from audio, :mod:`covermill.instruments` and :mod:`covermill.automation`
read it (note-true re-voicing, genre parts, MIDI, the DAW project). It imports no stage
package, so none of them imports another through it.

Times are seconds from the start of the audio the sheet describes; pitches are MIDI note
numbers; pitch classes are 0 (C) .. 11 (B). Chord labels follow ``mir_eval.chord``
(``"C:maj"``, ``"A:min7"``, ``"N"`` for no chord), so a sheet is scored with mir_eval as is.

``OUT/leadsheet.json`` is :meth:`LeadSheet.to_dict` (schema in ``docs/leadsheet.md``);
``OUT/midi/leadsheet.mid`` is :func:`to_midi`.
"""

from __future__ import annotations

import bisect
import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

#: Schema version of ``leadsheet.json``; bumped when a field changes meaning.
SCHEMA_VERSION = 1

PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_PARSE_NAMES = {"C": 0, "B#": 0, "C#": 1, "Db": 1, "D": 2, "D#": 3, "Eb": 3, "E": 4, "Fb": 4, "F": 5, "E#": 5,
                "F#": 6, "Gb": 6, "G": 7, "G#": 8, "Ab": 8, "A": 9, "A#": 10, "Bb": 10, "B": 11, "Cb": 11}

#: Chord qualities (mir_eval shorthand) -> intervals above the root, in semitones.
CHORD_INTERVALS: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7), "min": (0, 3, 7), "7": (0, 4, 7, 10), "maj7": (0, 4, 7, 11), "min7": (0, 3, 7, 10),
    "dim": (0, 3, 6), "dim7": (0, 3, 6, 9), "hdim7": (0, 3, 6, 10), "aug": (0, 4, 8),
    "sus2": (0, 2, 7), "sus4": (0, 5, 7), "maj6": (0, 4, 7, 9), "min6": (0, 3, 7, 9),
}

#: Scales (semitones above the tonic) of the two modes a key can have.
MODE_SCALES: dict[str, tuple[int, ...]] = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}


def pitch_class(name: str) -> int:
    """``"Eb"`` -> 3. Raises ``ValueError`` naming the valid spellings."""
    try:
        return _PARSE_NAMES[name]
    except KeyError:
        raise ValueError(f"unknown pitch name {name!r}; use C, C#, Db, ... B") from None


@dataclass(frozen=True)
class Note:
    """One note: ``pitch`` (MIDI number) from ``start_s`` to ``end_s`` at ``velocity`` (1-127)."""

    start_s: float
    end_s: float
    pitch: int
    velocity: int = 90

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class Chord:
    """A chord from ``start_s`` to ``end_s``: ``root`` pitch class and ``quality`` (a key of
    :data:`CHORD_INTERVALS`), or ``root=None`` for no chord (``"N"``)."""

    start_s: float
    end_s: float
    root: int | None
    quality: str = "maj"

    def __post_init__(self) -> None:
        if self.root is not None and self.quality not in CHORD_INTERVALS:
            raise ValueError(f"chord quality {self.quality!r} is not one of {', '.join(CHORD_INTERVALS)}")

    @property
    def label(self) -> str:
        """mir_eval label: ``"C:maj"``, ``"Bb:min7"``, ``"N"``."""
        return "N" if self.root is None else f"{PITCH_NAMES[self.root]}:{self.quality}"

    @property
    def pitch_classes(self) -> frozenset[int]:
        if self.root is None:
            return frozenset()
        return frozenset((self.root + i) % 12 for i in CHORD_INTERVALS[self.quality])

    @classmethod
    def from_label(cls, label: str, start_s: float, end_s: float) -> Chord:
        """Parse ``"C:maj"``, ``"A:min7"``, ``"N"`` (also bare ``"C"`` = major)."""
        if label in ("N", "X", ""):
            return cls(start_s, end_s, None)
        root, _, quality = label.partition(":")
        return cls(start_s, end_s, pitch_class(root), quality or "maj")


@dataclass(frozen=True)
class Key:
    """The song's key: ``tonic`` pitch class, ``mode`` ``"major"`` or ``"minor"``, and how sure
    the estimate is (``confidence`` 0..1; ``None`` for a key that was given, not estimated)."""

    tonic: int
    mode: str = "major"
    confidence: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODE_SCALES:
            raise ValueError(f"key mode {self.mode!r} is not one of {', '.join(MODE_SCALES)}")

    @property
    def label(self) -> str:
        """``"Eb major"``, ``"A minor"`` (mir_eval.key format)."""
        return f"{PITCH_NAMES[self.tonic]} {self.mode}"

    @property
    def scale(self) -> frozenset[int]:
        return frozenset((self.tonic + i) % 12 for i in MODE_SCALES[self.mode])


@dataclass(frozen=True)
class Section:
    """A section (verse, chorus, ...) from ``start_s`` to ``end_s``; equal ``label`` = repeated material."""

    start_s: float
    end_s: float
    label: str


@dataclass(frozen=True)
class LeadSheet:
    """Everything a part generator, a re-voicer or a DAW project needs to know about a song.

    ``beats_s`` is the beat grid; ``downbeats_s`` the first beat of every bar (a subset of
    ``beats_s``); ``beats_per_bar`` the meter as tracked (4 for 4/4, 3 for 3/4; a 6/8 song
    tracked in dotted quarters is 2). ``chords`` tile the song (``"N"`` where nothing is
    harmonic); ``melody`` and ``bass`` are monophonic note lists. ``warnings`` say what could not
    be found ("no melody", "free time: no stable beat").
    """

    duration_s: float
    bpm: float
    beats_s: tuple[float, ...] = ()
    downbeats_s: tuple[float, ...] = ()
    beats_per_bar: int = 4
    key: Key | None = None
    chords: tuple[Chord, ...] = ()
    melody: tuple[Note, ...] = ()
    bass: tuple[Note, ...] = ()
    sections: tuple[Section, ...] = ()
    warnings: tuple[str, ...] = ()
    methods: dict[str, str] = field(default_factory=dict)

    # --- queries -------------------------------------------------------------------------
    def chord_at(self, t: float) -> Chord | None:
        """The chord sounding at ``t`` seconds (``None`` outside every chord)."""
        starts = [c.start_s for c in self.chords]
        i = bisect.bisect_right(starts, t) - 1
        if i >= 0 and self.chords[i].start_s <= t < self.chords[i].end_s:
            return self.chords[i]
        return None

    def bars(self) -> list[tuple[float, float]]:
        """``(start_s, end_s)`` of every bar; the last ends at ``duration_s``."""
        d = list(self.downbeats_s)
        if not d:
            return []
        return [(a, b) for a, b in zip(d, d[1:] + [self.duration_s], strict=True) if b > a]

    @property
    def has_beat(self) -> bool:
        return len(self.beats_s) >= 2 and math.isfinite(self.bpm)

    # --- transforms ----------------------------------------------------------------------
    def retimed(self, time_ratio: float = 1.0, semitones: float = 0.0) -> LeadSheet:
        """The sheet of the cover: times divided by ``time_ratio`` (cover tempo / source tempo),
        pitches moved by ``round(semitones)``."""
        if time_ratio <= 0 or not math.isfinite(time_ratio):
            raise ValueError(f"time_ratio={time_ratio} must be a positive number")
        k = 1.0 / time_ratio
        st = int(round(semitones))

        def t(x: float) -> float:
            return x * k

        def n(note: Note) -> Note:
            return replace(note, start_s=t(note.start_s), end_s=t(note.end_s), pitch=min(127, max(0, note.pitch + st)))

        return replace(
            self,
            duration_s=t(self.duration_s),
            bpm=self.bpm * time_ratio,
            beats_s=tuple(t(b) for b in self.beats_s),
            downbeats_s=tuple(t(b) for b in self.downbeats_s),
            key=None if self.key is None else replace(self.key, tonic=(self.key.tonic + st) % 12),
            chords=tuple(replace(c, start_s=t(c.start_s), end_s=t(c.end_s),
                                 root=None if c.root is None else (c.root + st) % 12) for c in self.chords),
            melody=tuple(n(x) for x in self.melody),
            bass=tuple(n(x) for x in self.bass),
            sections=tuple(replace(s, start_s=t(s.start_s), end_s=t(s.end_s)) for s in self.sections),
        )

    # --- (de)serialisation ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (``leadsheet.json``); chords carry their mir_eval ``label`` too."""
        data = asdict(self)
        data["schema_version"] = SCHEMA_VERSION
        data["key"] = None if self.key is None else {**asdict(self.key), "label": self.key.label}
        data["chords"] = [{**asdict(c), "label": c.label} for c in self.chords]
        for name in ("beats_s", "downbeats_s"):
            data[name] = [round(float(x), 4) for x in data[name]]
        data["warnings"] = list(self.warnings)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LeadSheet:
        key = data.get("key")
        return cls(
            duration_s=float(data["duration_s"]),
            bpm=float(data["bpm"]) if data.get("bpm") is not None else float("nan"),
            beats_s=tuple(float(x) for x in data.get("beats_s", ())),
            downbeats_s=tuple(float(x) for x in data.get("downbeats_s", ())),
            beats_per_bar=int(data.get("beats_per_bar", 4)),
            key=None if key is None else Key(int(key["tonic"]), key.get("mode", "major"), key.get("confidence")),
            chords=tuple(Chord(float(c["start_s"]), float(c["end_s"]), c["root"], c.get("quality", "maj"))
                         for c in data.get("chords", ())),
            melody=tuple(Note(**n) for n in data.get("melody", ())),
            bass=tuple(Note(**n) for n in data.get("bass", ())),
            sections=tuple(Section(**s) for s in data.get("sections", ())),
            warnings=tuple(data.get("warnings", ())),
            methods=dict(data.get("methods", {})),
        )

    def to_json(self) -> str:
        data = self.to_dict()
        if not math.isfinite(data["bpm"]):
            data["bpm"] = None
        return json.dumps(data, indent=1, allow_nan=False) + "\n"


def to_midi(sheet: LeadSheet, *, chord_octave: int = 4, chord_velocity: int = 70):
    """The sheet as a ``pretty_midi.PrettyMIDI``: tracks ``melody``, ``chords`` (block chords,
    root-position, around C``chord_octave``) and ``bass``, with the sheet's tempo, meter and
    key signature. Opens in any DAW; ``OUT/midi/leadsheet.mid``."""
    import pretty_midi

    bpm = sheet.bpm if math.isfinite(sheet.bpm) and sheet.bpm > 0 else 120.0
    pm = pretty_midi.PrettyMIDI(initial_tempo=float(bpm))
    first_bar = sheet.downbeats_s[0] if sheet.downbeats_s else 0.0
    pm.time_signature_changes.append(pretty_midi.TimeSignature(int(sheet.beats_per_bar), 4, float(first_bar)))
    if sheet.key is not None:
        number = sheet.key.tonic + (12 if sheet.key.mode == "minor" else 0)
        pm.key_signature_changes.append(pretty_midi.KeySignature(number, 0.0))
    melody = pretty_midi.Instrument(program=0, name="melody")
    for n in sheet.melody:
        melody.notes.append(pretty_midi.Note(int(n.velocity), int(n.pitch), float(n.start_s), float(n.end_s)))
    chords = pretty_midi.Instrument(program=4, name="chords")
    base = 12 * (chord_octave + 1)
    for c in sheet.chords:
        if c.root is None or c.end_s <= c.start_s:
            continue
        for i in CHORD_INTERVALS[c.quality]:
            chords.notes.append(pretty_midi.Note(chord_velocity, base + c.root + i, float(c.start_s), float(c.end_s)))
    bass = pretty_midi.Instrument(program=33, name="bass")
    for n in sheet.bass:
        bass.notes.append(pretty_midi.Note(int(n.velocity), int(n.pitch), float(n.start_s), float(n.end_s)))
    pm.instruments.extend([melody, chords, bass])
    for s in sheet.sections:
        pm.lyrics.append(pretty_midi.Lyric(s.label, float(s.start_s)))
    return pm
