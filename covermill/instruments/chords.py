"""Lead-sheet chords voiced in an instrument's range, with smooth voice leading.

:func:`voice_chords` turns :class:`~covermill.leadsheet.Chord` s into block-chord
:class:`~covermill.leadsheet.Note` s that a polyphonic mode plays
(:meth:`~covermill.instruments.parametric.ParametricInstrument.play_polyphonic`, or the MIDI
instrument). Each chord's candidate voicings (:func:`candidates`: its tones, one pitch per voice,
inside ``[low, high]``) are chained by dynamic programming so that the total movement of the
voices from chord to chord is smallest (:func:`lead_path`), with a small pull towards the middle
of the range so that the line does not drift to an edge.

The genre-parts work (branch ``parts``) has its own comping voicer (``instruments/voicing.py``:
``candidates(chord, shapes, range_)`` from style degrees, greedy ``lead(previous, options,
centre=)``); the two can be swapped: :func:`candidates` and :func:`lead_path` take and return plain
tuples of MIDI pitches, the same shape as its ``candidates`` / ``lead``.
"""

from __future__ import annotations

import itertools

import numpy as np

from ..errors import ParameterError
from ..leadsheet import Chord, Note

#: Pull towards the middle of the range, per semitone of the voicing's mean away from it, per voice.
CENTRE_WEIGHT = 0.05
#: Widest voicing (semitones between the lowest and highest voice) considered.
MAX_SPAN = 19


def chord_tones(chord: Chord, voices: int) -> list[int]:
    """The pitch classes that ``voices`` voices must play for ``chord``: all its tones, or with
    fewer voices than tones, without the fifth, then without the root (the 3rd and 7th say the
    chord). Extra voices double any of these tones."""
    from ..leadsheet import CHORD_INTERVALS

    iv = list(CHORD_INTERVALS[chord.quality])
    for drop in (7, 0, 6, 8):  # fifth, root, altered fifths
        if len(iv) > voices and drop in iv and len(iv) > 2:
            iv.remove(drop)
    return [(chord.root + i) % 12 for i in iv[:voices]]


def candidates(chord: Chord, range_: tuple[int, int], voices: int) -> list[tuple[int, ...]]:
    """Every voicing of ``chord``: ``voices`` distinct pitches in ``range_`` (MIDI, inclusive), ascending,
    holding every tone of :func:`chord_tones` and nothing else (extra voices double them), spanning
    at most :data:`MAX_SPAN` semitones. Sorted."""
    lo, hi = range_
    need = set(chord_tones(chord, voices))
    pitches = [p for p in range(lo, hi + 1) if p % 12 in need]
    found = []
    for v in itertools.combinations(pitches, voices):
        if v[-1] - v[0] <= MAX_SPAN and {p % 12 for p in v} == need:
            found.append(v)
    return found


def movement(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """Total semitones the voices move from voicing ``a`` to ``b`` (both ascending, voice i to voice i)."""
    return float(sum(abs(x - y) for x, y in zip(a, b, strict=True)))


def lead_path(options: list[list[tuple[int, ...]]], *, centre: float) -> list[tuple[int, ...]]:
    """One voicing per chord from ``options`` (each chord's candidates) whose total
    :func:`movement` plus the pull towards ``centre`` is smallest (Viterbi over the chords)."""
    if not options:
        return []
    if any(not o for o in options):
        raise ParameterError("no voicing of a chord fits the range; widen it")

    arrays = [np.asarray(o, np.float64) for o in options]  # (candidates, voices) each
    pulls = [CENTRE_WEIGHT * np.abs(a.mean(axis=1) - centre) * a.shape[1] for a in arrays]
    cost = pulls[0]
    back: list[np.ndarray] = []
    for prev, cur, pull in zip(arrays[:-1], arrays[1:], pulls[1:], strict=True):
        total = cost[:, None] + np.abs(prev[:, None, :] - cur[None, :, :]).sum(axis=2)  # (prev, cur)
        ptr = np.argmin(total, axis=0)  # the first (lowest) previous voicing wins ties
        cost = total[ptr, np.arange(len(cur))] + pull
        back.append(ptr)
    i = int(np.argmin(cost))
    path = [i]
    for ptr in reversed(back):
        i = int(ptr[i])
        path.append(i)
    path.reverse()
    return [opts[k] for opts, k in zip(options, path, strict=True)]


def voice_chords(chords, *, low: int, high: int, voices: int = 4, velocity: int = 80,
                 merge_repeats: bool = True) -> tuple[Note, ...]:
    """Block-chord notes for ``chords`` (:class:`~covermill.leadsheet.Chord`), ``voices`` notes each,
    every pitch in MIDI ``[low, high]``, with the smallest total voice movement.

    "No chord" (``root=None``) is a rest. With ``merge_repeats`` a chord equal to the one before and
    touching it continues it (one longer note per voice, no re-attack). Returns notes sorted by
    start, then pitch.

    Example: C major then A minor in ``[55, 79]``, 4 voices -> ``(60, 64, 67, 72)`` then
    ``(60, 64, 69, 72)``: one voice moves, by 2 semitones.
    """
    if not (isinstance(voices, int) and 1 <= voices <= 8):
        raise ParameterError(f"voices={voices!r} must be 1..8")
    if not 0 <= low < high <= 127:
        raise ParameterError(f"low={low}, high={high}: need MIDI 0 <= low < high <= 127")
    if high - low < 12:
        raise ParameterError(f"range {low}-{high} is narrower than an octave; widen it to voice chords")
    spans: list[Chord] = []
    for c in sorted(chords, key=lambda c: c.start_s):
        if c.root is None or c.end_s <= c.start_s:
            continue
        if (merge_repeats and spans and spans[-1].label == c.label
                and abs(spans[-1].end_s - c.start_s) < 1e-6):
            spans[-1] = Chord(spans[-1].start_s, c.end_s, c.root, c.quality)
        else:
            spans.append(c)
    if not spans:
        return ()
    options = [candidates(c, (low, high), voices) for c in spans]
    for c, o in zip(spans, options, strict=True):
        if not o:
            raise ParameterError(f"chord {c.label} at {c.start_s:.2f} s has no {voices}-voice voicing in "
                                 f"{low}-{high}; widen the range or use fewer voices")
    path = lead_path(options, centre=(low + high) / 2)
    notes = [Note(c.start_s, c.end_s, p, velocity) for c, v in zip(spans, path, strict=True) for p in v]
    return tuple(sorted(notes, key=lambda n: (n.start_s, n.pitch)))
