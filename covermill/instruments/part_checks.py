"""Measurable checks of generated parts (used by the tests and the benchmark).

* :func:`out_of_scale_share`: share of a part's note time outside the current chord's scale, where
  the chord's tones, the style's extensions (:func:`~covermill.instruments.parts.style_degrees`),
  chromatic approach notes and anticipations (a note up to an 8th before a chord change that
  belongs to the next chord) count as in (target <= 10 %).
* :func:`swing_ratio`: long:short ratio of the off-beat onsets (ride, hi-hat): 1.0 straight, 2.0 triplet.
* :func:`offbeat_share`: share of onsets on the off-beat 8th (reggae bass and skank).
* :func:`onset_positions`: where in the bar onsets fall (the bossa pattern's positions).

Onsets and beats are seconds; a beat's fraction is measured between the two beats around an onset.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..leadsheet import LeadSheet
from .styles import DRUM_VOICES, Style
from .voicing import allowed_pcs

#: Ride and hi-hat notes (GM): the swing of a groove is heard on them.
TIME_KEEPERS = (DRUM_VOICES["ride"], DRUM_VOICES["ride_bell"], DRUM_VOICES["closed_hat"], DRUM_VOICES["open_hat"])


def _fractions(onsets_s, beats_s) -> np.ndarray:
    beats = np.asarray(sorted(beats_s), float)
    onsets = np.asarray(onsets_s, float)
    if len(beats) < 2 or not len(onsets):
        return np.zeros(0)
    i = np.clip(np.searchsorted(beats, onsets, side="right") - 1, 0, len(beats) - 2)
    frac = (onsets - beats[i]) / (beats[i + 1] - beats[i])
    return frac[(frac >= -0.05) & (frac < 1.0)]


def onsets(part, pitches=None) -> np.ndarray:
    """Sorted onset times (s) of a ``pretty_midi.Instrument``'s notes (only ``pitches`` if given), chords once."""
    starts = sorted({round(n.start, 3) for n in part.notes if pitches is None or n.pitch in pitches})
    return np.array(starts, float)


def swing_ratio(onsets_s, beats_s, *, unit: str = "8th") -> float:
    """Long:short ratio of the swung subdivision: the median position ``p`` of the off-beat onsets
    within their beat (``unit="8th"``) or half-beat (``"16th"``), as ``p / (1 - p)``; ``nan`` without
    off-beat onsets. A style's ``swing`` ``s`` gives ``s / (1 - s)``."""
    frac = _fractions(onsets_s, beats_s)
    if unit == "16th":
        frac = (frac * 2) % 1.0
    off = frac[(frac > 0.3) & (frac < 0.85)]
    if not len(off):
        return float("nan")
    p = float(np.median(off))
    return p / (1 - p)


def offbeat_share(onsets_s, beats_s, *, tolerance: float = 0.12) -> float:
    """Share of onsets within ``tolerance`` beats of the off-beat 8th (half-way between two beats),
    swung up to 0.62 included."""
    frac = _fractions(onsets_s, beats_s)
    if not len(frac):
        return float("nan")
    return float(np.mean((frac > 0.5 - tolerance) & (frac < 0.62 + tolerance)))


def onset_positions(onsets_s, sheet: LeadSheet, *, steps_per_beat: int = 2, bars: int = 1) -> dict[float, int]:
    """``{position in beats: count}`` of onsets rounded to the step, counted within groups of ``bars``
    bars from the sheet's first downbeat (``bars=2`` for a two-bar pattern such as the bossa clave)."""
    beats = np.asarray(sorted(sheet.beats_s), float)
    first = sheet.downbeats_s[0] if sheet.downbeats_s else beats[0]
    i0 = int(np.argmin(np.abs(beats - first)))
    counts: Counter = Counter()
    period_beats = sheet.beats_per_bar * bars
    for t in np.asarray(onsets_s, float):
        j = int(np.clip(np.searchsorted(beats, t, side="right") - 1, 0, len(beats) - 2))
        frac = (t - beats[j]) / (beats[j + 1] - beats[j])
        pos = ((j - i0) + round(frac * steps_per_beat) / steps_per_beat) % period_beats
        counts[round(float(pos), 3)] += 1
    return dict(sorted(counts.items()))


def _approach(notes, k: int, beat_s: float) -> bool:
    """A chromatic approach: at most a beat long, followed at once by a note a semitone away."""
    n = notes[k]
    if n.end - n.start > 1.05 * beat_s:
        return False
    for m in notes[k + 1:]:
        if m.start > n.end + 0.25 * beat_s:
            return False
        if m.start >= n.start + 0.01 and abs(m.pitch - n.pitch) == 1:
            return True
    return False


def out_of_scale_share(part, sheet: LeadSheet, style: Style) -> float:
    """Share of the part's note time (chords excluded where the sheet says "N") whose pitch class is
    outside the current chord's tones + the style's extensions, approach notes counting as in.
    Drum parts have no pitch: 0.0."""
    from .parts import style_degrees

    if getattr(part, "is_drum", False) or not part.notes:
        return 0.0
    degrees = style_degrees(style)
    beat_s = float(np.median(np.diff(sheet.beats_s))) if sheet.has_beat else 0.5
    notes = sorted(part.notes, key=lambda n: (n.start, n.pitch))
    cuts = sorted({c.start_s for c in sheet.chords} | {c.end_s for c in sheet.chords})
    total = outside = 0.0
    starts = sorted(c.start_s for c in sheet.chords)
    for k, n in enumerate(notes):
        is_approach = _approach(notes, k, beat_s)
        nxt = next((c for c in starts if n.start < c <= n.start + 0.55 * beat_s), None)
        if nxt is not None and not is_approach:  # an anticipation: the next chord, pushed by an 8th
            chord = sheet.chord_at(nxt + 1e-6)
            is_approach = chord is not None and chord.root is not None and n.pitch % 12 in allowed_pcs(
                chord, degrees, triad_seventh=style.triad_seventh)
        edges = [n.start] + [c for c in cuts if n.start < c < n.end] + [n.end]
        for a, b in zip(edges, edges[1:], strict=False):
            chord = sheet.chord_at((a + b) / 2)
            if chord is None or chord.root is None or b <= a:
                continue
            total += b - a
            if not is_approach and n.pitch % 12 not in allowed_pcs(chord, degrees, triad_seventh=style.triad_seventh):
                outside += b - a
    return outside / total if total else 0.0
