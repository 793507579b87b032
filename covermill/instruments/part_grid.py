"""The bar/beat grid of a generated part, and a style's pattern for the sheet's meter.

:func:`make_grid` reads the lead sheet's beats and downbeats (extended a bar beyond both ends);
a sheet without a beat (free time) gets a steady grid from its bpm, or 120 bpm, and a warning.
:func:`meter_pattern` picks the style's pattern for the meter, or cycles its 4/4 pattern beat by
beat to the bar's length (the documented fallback) with a warning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..leadsheet import LeadSheet
from .styles import DrumBar, Style

DEFAULT_BPM = 120.0


@dataclass(frozen=True)
class Grid:
    """Beat times (extended a bar beyond both ends), the index of every bar's first beat, the meter."""

    beats_s: np.ndarray
    bar_starts: tuple[int, ...]
    beats_per_bar: int
    duration_s: float
    first_bar: int = 0  # the bar of the first downbeat (bars before it are a pickup)

    def pattern_bar(self, bar: int, n_bars: int) -> int:
        """Which bar of an ``n_bars``-bar pattern bar number ``bar`` plays (counted from the first downbeat)."""
        return (bar - self.first_bar) % n_bars

    def time(self, bar: int, at_beats: float, *, swing: float = 0.5, unit: str = "8th") -> float:
        """Seconds of ``at_beats`` into the bar whose first beat is ``beats_s[bar]``, swung."""
        k = int(math.floor(at_beats))
        f = at_beats - k
        if swing != 0.5 and f > 1e-9:
            if unit == "8th":
                f = _swing(f, swing)
            else:
                half = math.floor(f * 2) / 2
                f = half + _swing((f - half) * 2, swing) / 2
        i = min(bar + k, len(self.beats_s) - 2)
        return float(self.beats_s[i] + f * (self.beats_s[i + 1] - self.beats_s[i]))

    @property
    def period_s(self) -> float:
        return float(np.median(np.diff(self.beats_s)))


def _swing(f: float, swing: float) -> float:
    return f * 2 * swing if f <= 0.5 else swing + (f - 0.5) * 2 * (1 - swing)


def make_grid(sheet: LeadSheet) -> tuple[Grid, list[str]]:
    """The sheet's bar/beat grid; without a beat, one from its bpm (or 120) with a warning."""
    warnings = []
    n = max(1, int(sheet.beats_per_bar))
    if sheet.has_beat:
        beats = np.array(sorted(sheet.beats_s), float)
        downbeats = np.array(sorted(sheet.downbeats_s), float)
    else:
        bpm = sheet.bpm if math.isfinite(sheet.bpm) and sheet.bpm > 0 else DEFAULT_BPM
        warnings.append(f"no stable beat (free time): the part follows a steady {bpm:.0f} bpm grid")
        beats = np.arange(0.0, max(sheet.duration_s, 60 / bpm), 60 / bpm)
        if len(beats) < 2:
            beats = np.array([0.0, 60 / bpm])
        downbeats = beats[::n]
    period = float(np.median(np.diff(beats)))
    before = beats[0] - period * np.arange(n + 1, 0, -1)
    after = beats[-1] + period * np.arange(1, int(max(0.0, sheet.duration_s - beats[-1]) / period) + n + 3)
    full = np.concatenate([before, beats, after])
    if len(downbeats):
        anchor = int(np.argmin(np.abs(full - downbeats[0])))
        marks = sorted({int(np.argmin(np.abs(full - d))) for d in downbeats})
    else:
        anchor, marks = n + 1, []
    starts: list[int] = []
    i = anchor
    while i - n >= 0:  # pickup bars before the first downbeat
        i -= n
    while i < len(full) - n - 1:
        starts.append(i)
        later = [m for m in marks if m > i]
        i = later[0] if later and later[0] - i <= n + 1 and later[0] - i >= max(1, n - 1) else i + n
    # a bar counts when one of its beats is in the song and it starts half a beat before the end
    starts = [s for s in starts if full[min(s + n - 1, len(full) - 1)] >= 0 and full[s] < sheet.duration_s - period / 2]
    first = next((k for k, b in enumerate(starts) if b >= anchor), 0)
    return Grid(full, tuple(starts), n, float(sheet.duration_s), first), warnings


def meter_pattern(style: Style, n: int) -> tuple[DrumBar, str | None]:
    if n in style.meters:
        return style.meters[n], None
    four = style.meters[4]
    warning = (f"style {style.name!r} has no {n}-beat variant; its 4/4 pattern is cycled beat by beat "
               f"to {n} beats per bar")
    if four.voices:
        spb = four.steps_per_beat
        voices = {v: "".join(four.steps(v)[(j % 4) * spb:(j % 4 + 1) * spb] for j in range(n)) for v in four.voices}
        # (a pattern of several bars falls back to its first bar)
        return DrumBar(steps_per_beat=spb, voices=voices), warning
    bars = []
    for events in four.bars:
        out = [e.model_copy(update={"at": e.at + 4 * r, "length": min(e.length, n - e.at - 4 * r)})
               for r in range(math.ceil(n / 4)) for e in events if e.at + 4 * r < n]
        bars.append(tuple(out))
    return DrumBar(bars=tuple(bars)), warning
