"""Chord degrees, voicings in a range, and voice leading for the generated parts.

A style names its voicings as degrees bottom-up (``["1", "3", "7"]`` a shell, ``["3", "5", "7",
"9"]`` a rootless A voicing); :func:`degree_pc` resolves a degree against a chord's quality
(the 3rd of ``sus4`` is its 4th, the 7th of a triad is the style's ``triad_seventh`` or the
root, a tension the chord cannot take falls back to a chord tone), :func:`candidates` lays a
shape out in a MIDI range in every octave, and :func:`lead` picks the candidate that moves least
from the previous voicing.
"""

from __future__ import annotations

from ..errors import ParameterError
from ..leadsheet import CHORD_INTERVALS, Chord

#: Tensions (semitones above the root) each chord quality takes without clashing; a degree
#: the chord cannot take falls back to a chord tone.
TENSIONS: dict[str, dict[str, int]] = {
    "maj": {"9": 2, "13": 9}, "maj7": {"9": 2, "13": 9}, "maj6": {"9": 2}, "7": {"9": 2, "13": 9},
    "min": {"9": 2, "11": 5}, "min7": {"9": 2, "11": 5, "13": 9}, "min6": {"9": 2, "11": 5},
    "hdim7": {"11": 5}, "dim": {}, "dim7": {}, "aug": {"9": 2}, "sus2": {"13": 9}, "sus4": {"9": 2, "13": 9},
}
_TRIAD_SEVENTH = {"6": 9, "7": 10, "maj7": 11}
_FALLBACK = {"9": "1", "11": "5", "13": "5", "7": "1"}


def chord_tone(chord: Chord, degree: str, *, triad_seventh: str = "none") -> int | None:
    """Semitones above the root of ``degree`` (``"1" "3" "5" "7" "8" "9" "11" "13"``) in ``chord``,
    or ``None`` where the chord has no such tone (the caller falls back)."""
    iv = CHORD_INTERVALS[chord.quality]
    if degree in ("1", "8"):
        return 0
    if degree == "3":
        thirds = [i for i in iv if i in (3, 4)]
        return thirds[0] if thirds else (5 if 5 in iv else 2)  # sus4 -> 4th, sus2 -> 2nd
    if degree == "5":
        fifths = [i for i in iv if i in (6, 7, 8)]
        return fifths[0] if fifths else 7
    if degree == "7":
        sevenths = [i for i in iv if i in (9, 10, 11) and not (i == 9 and chord.quality in ("maj6", "min6"))]
        if sevenths:
            return sevenths[-1]
        if chord.quality in ("maj6", "min6"):
            return 9
        if chord.quality in ("maj", "min") and triad_seventh != "none":
            seventh = _TRIAD_SEVENTH[triad_seventh]
            return 9 if chord.quality == "min" and seventh == 11 else seventh
        return None
    return TENSIONS.get(chord.quality, {}).get(degree)


def degree_pc(chord: Chord, degree: str, *, triad_seventh: str = "none") -> int:
    """Pitch class of ``degree`` in ``chord`` (with the fallbacks of :data:`_FALLBACK`)."""
    while True:
        iv = chord_tone(chord, degree, triad_seventh=triad_seventh)
        if iv is not None:
            return (chord.root + iv) % 12
        degree = _FALLBACK[degree]


def with_seventh(chord: Chord, shape) -> tuple[str, ...]:
    """``shape`` playing ``chord``'s seventh (its sixth for a 6 chord) where the chord has one and the
    shape does not: its last octave doubling (``"8"``) becomes ``"7"``, else a ``"7"`` is added on top
    (a triad shape becomes the full 4-note chord). A triad chord, or a shape that already holds a 7,
    is returned as is."""
    shape = tuple(shape)
    if "7" in shape or chord.root is None or chord_tone(chord, "7") is None:
        return shape
    if "8" in shape:
        i = len(shape) - 1 - shape[::-1].index("8")
        return (*shape[:i], "7", *shape[i + 1:])
    return (*shape, "7")


def shape_pcs(chord: Chord, shape, *, triad_seventh: str = "none", sevenths: bool = False) -> list[int]:
    """Pitch classes of a voicing shape, bottom-up; a degree the chord cannot take and whose fallback
    is already in the shape is left out (a rootless 3-5-7-9 on a diminished triad is 3-5-1, not 3-5-1-1).
    With ``sevenths`` the shape plays the chord's seventh where it has one (:func:`with_seventh`)."""
    if sevenths:
        shape = with_seventh(chord, shape)
    out: list[int] = []
    for d in shape:
        pc = degree_pc(chord, d, triad_seventh=triad_seventh)
        if chord_tone(chord, d, triad_seventh=triad_seventh) is None and pc in out:
            continue
        out.append(pc)
    return out


def allowed_pcs(chord: Chord, degrees: set[str], *, triad_seventh: str = "none") -> frozenset[int]:
    """Chord tones plus the style's extensions (``degrees`` it uses) that the chord takes."""
    return chord.pitch_classes | {degree_pc(chord, d, triad_seventh=triad_seventh) for d in degrees}


def _place(pcs: list[int], bottom: int) -> list[int]:
    """``pcs`` bottom-up, each the next pitch of its class above the one below, from ``bottom``."""
    out = [bottom]
    for pc in pcs[1:]:
        nxt = out[-1] + 1 + (pc - out[-1] - 1) % 12
        out.append(nxt)
    return out


def candidates(chord: Chord, shapes, range_: tuple[int, int], *, triad_seventh: str = "none",
               sevenths: bool = False) -> list[tuple[int, ...]]:
    """Every placement of every shape of ``chord`` that fits in ``range_`` (MIDI, inclusive), duplicates
    dropped; ``sevenths`` as in :func:`shape_pcs`."""
    lo, hi = range_
    found = set()
    for shape in shapes:
        pcs = shape_pcs(chord, shape, triad_seventh=triad_seventh, sevenths=sevenths)
        for bottom in range(lo, min(hi, lo + 12) + 1):
            if bottom % 12 != pcs[0]:
                continue
            for octave in range(0, 11):
                voicing = _place(pcs, bottom + 12 * octave)
                if voicing[-1] > hi:
                    break
                found.add(tuple(voicing))
    return sorted(found)


def min_span(shapes, *, triad_seventh: str = "none", sevenths: bool = False) -> int:
    """Semitones a range needs so that every chord (any root, any quality) has a placement of at least
    one shape: the widest of the chords' narrowest shapes, plus 11 for the root's position."""
    widest = 0
    for quality in CHORD_INTERVALS:
        probe = Chord(0.0, 1.0, 0, quality)
        placed = [_place(pcs, pcs[0]) for pcs in (shape_pcs(probe, s, triad_seventh=triad_seventh, sevenths=sevenths)
                                                  for s in shapes)]
        spans = [p[-1] - p[0] for p in placed]
        widest = max(widest, min(spans))
    return widest + 11


def _cost(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    if len(a) == len(b):
        return float(sum(abs(x - y) for x, y in zip(a, b, strict=True)))
    return abs(sum(a) / len(a) - sum(b) / len(b)) * max(len(a), len(b)) + 2.0 * abs(len(a) - len(b))


def lead(previous: tuple[int, ...] | None, options: list[tuple[int, ...]], *, centre: float) -> tuple[int, ...]:
    """The option that moves least from ``previous`` (smooth voice leading); the first voicing sits
    nearest ``centre``. Ties go to the option nearer ``centre`` (so the line does not drift)."""
    if not options:
        raise ParameterError("no voicing of this chord fits the range")
    if previous is None:
        return min(options, key=lambda v: (abs(sum(v) / len(v) - centre), v))
    return min(options, key=lambda v: (_cost(previous, v) + 0.05 * abs(sum(v) / len(v) - centre), v))


def nearest(pc: int, previous: int, range_: tuple[int, int]) -> int:
    """The pitch of class ``pc`` in ``range_`` nearest ``previous``."""
    lo, hi = range_
    options = [p for p in range(lo, hi + 1) if p % 12 == pc % 12]
    if not options:
        raise ParameterError(f"range {lo}-{hi} holds no pitch of class {pc}")
    return min(options, key=lambda p: (abs(p - previous), p))
