"""A melody part: the lead sheet's melody doubled on another instrument (a melodica, a harmonica, a fiddle).

:func:`melody_notes` places the sheet's melody (already at the cover's tempo and key) in a
``melody`` style's range: the whole line moves by the whole octaves that bring its median pitch
nearest the range's middle (so its contour is kept), and a note still outside the range moves by
octaves into it. Timing and velocity are humanised like every part's. The notes are the song's
(the lead sheet's estimate of its tune), not written ones: a recipe uses the part to play the tune
beside a lead that has holes (a kept vocal stem, separated with bleed and dropouts).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ..leadsheet import Note


def centring_shift(pitches: list[int], range_: tuple[int, int]) -> int:
    """The whole octaves (in semitones) that bring the median of ``pitches`` nearest the middle of ``range_``."""
    if not pitches:
        return 0
    ordered = sorted(pitches)
    median = ordered[len(ordered) // 2]
    return 12 * round(((range_[0] + range_[1]) / 2 - median) / 12)


def fold(pitch: int, range_: tuple[int, int]) -> int:
    """``pitch`` moved by octaves into ``range_`` (which spans at least 11 semitones)."""
    lo, hi = range_
    while pitch < lo:
        pitch += 12
    while pitch > hi:
        pitch -= 12
    return pitch


def melody_notes(melody: tuple[Note, ...], range_: tuple[int, int],
                 human: Callable[[float, int], tuple[float, int]]) -> list[tuple[float, float, int, int]]:
    """``(start_s, end_s, pitch, velocity)`` of every melody note in ``range_``, humanised by ``human``
    (``(time, velocity) -> (time, velocity)``); a note keeps its length."""
    shift = centring_shift([n.pitch for n in melody], range_)
    out = []
    for n in melody:
        if not (math.isfinite(n.start_s) and n.end_s > n.start_s):
            continue
        t, v = human(n.start_s, n.velocity)
        out.append((t, t + n.duration_s, fold(n.pitch + shift, range_), v))
    return out
