"""Genre parts from a lead sheet: a drum groove, a bass line, comping or a melody doubling as MIDI.

:func:`generate_part` reads a :class:`~covermill.leadsheet.LeadSheet` at the cover's tempo and a
style (:mod:`covermill.instruments.styles`) and writes one ``pretty_midi.Instrument`` on the
sheet's bar/beat grid: drums play the style's bar with fills before every section and on the
last bar; bass and comping follow the chords (chord tones, the style's extensions, chromatic
approach notes), stay in the range and move by the smallest step between voicings
(:mod:`covermill.instruments.voicing`); a melody part plays the sheet's melody in its range
(:mod:`covermill.instruments.part_melody`). Timing and velocity are humanised from ``seed``
(same seed, same part). What could not be honoured comes back as warnings, never silently: no
beat (free time): a grid from the sheet's bpm, or 120 bpm; a meter the style has no pattern for:
its 4/4 pattern cycled to the bar's length; no chords: drums play, bass and comping are empty.

:func:`render_part` plays a part with FluidSynth (:func:`~covermill.instruments.midi.render_midi`).
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ParameterError
from ..leadsheet import Chord, LeadSheet
from .drums import kit_number
from .midi import program_number, render_midi
from .part_grid import DEFAULT_BPM, Grid, make_grid, meter_pattern
from .part_melody import melody_notes
from .styles import DRUM_VELOCITY, DRUM_VOICES, KINDS, Event, Style, get_style
from .voicing import allowed_pcs, candidates, degree_pc, lead, min_span, nearest

DRUM_NOTE_S = 0.12

if TYPE_CHECKING:
    import pretty_midi


@dataclass(frozen=True)
class PartResult:
    """A generated part: ``midi`` (``pretty_midi.Instrument``; ``is_drum`` for drums), what could
    not be honoured (``warnings``), and the ``style`` and ``kind`` it came from."""

    midi: pretty_midi.Instrument
    warnings: tuple[str, ...]
    style: str
    kind: str


def _fill_bars(sheet: LeadSheet, grid: Grid) -> tuple[set[int], set[int]]:
    """Bar numbers that end with a fill (before a section, the last bar) and that start with a crash."""
    times = [grid.beats_s[s] for s in grid.bar_starts]
    fills, crashes = set(), set()
    if not times:
        return fills, crashes
    half_bar = grid.period_s * grid.beats_per_bar / 2
    for section in sheet.sections:
        j = int(np.argmin([abs(t - section.start_s) for t in times]))
        if j >= 1 and abs(times[j] - section.start_s) <= half_bar:
            fills.add(j - 1)
            crashes.add(j)
    fills.add(len(times) - 1)
    return fills, crashes


class _Humanizer:
    def __init__(self, style: Style, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.timing_s = style.humanize.timing_ms / 1000
        self.velocity = style.humanize.velocity

    def __call__(self, t: float, velocity: int) -> tuple[float, int]:
        dt = float(np.clip(self.rng.normal(0.0, self.timing_s), -2 * self.timing_s, 2 * self.timing_s)) if self.timing_s else 0.0
        dv = int(self.rng.integers(-self.velocity, self.velocity + 1)) if self.velocity else 0
        return (max(0.0, t + dt) if t >= 0 else t + dt), int(np.clip(velocity + dv, 1, 127))


def _note(start: float, end: float, pitch: int, velocity: int, duration_s: float):
    import pretty_midi

    if start < 0 or start >= duration_s:
        return None
    end = min(max(end, start + 0.03), duration_s)
    return pretty_midi.Note(velocity=int(velocity), pitch=int(pitch), start=float(start), end=float(end))


def _tidy(notes: list) -> list:
    """Sorted notes; a note ends before the next note of its pitch starts (FluidSynth cuts otherwise)."""
    notes = sorted((n for n in notes if n is not None), key=lambda n: (n.start, n.pitch))
    last: dict[int, object] = {}
    for n in notes:
        prev = last.get(n.pitch)
        if prev is not None and prev.end > n.start - 0.005:
            prev.end = max(prev.start + 0.01, n.start - 0.005)
        last[n.pitch] = n
    return notes


# ---------------------------------------------------------------- drums


def _drums(sheet: LeadSheet, style: Style, grid: Grid, swap: dict[str, str], human: _Humanizer) -> tuple[list, list]:
    bar, warning = meter_pattern(style, grid.beats_per_bar)
    warnings = [warning] if warning else []
    n = grid.beats_per_bar
    fill = style.fills.get(n) or style.fills.get(4)
    if fill is not None and n not in style.fills and any(len(fill.steps(v)) > n * fill.steps_per_beat
                                                           for v in fill.voices):
        fill = None
    fills, crashes = _fill_bars(sheet, grid) if fill is not None else (set(), set())
    notes = []

    def hit(bar_i: int, start: int, at: float, voice: str, char: str) -> None:
        voice = swap.get(voice, voice)
        velocity = DRUM_VELOCITY[char] - (12 if voice in swap.values() else 0)
        t, v = human(grid.time(start, at, swing=style.swing, unit=style.swing_unit), velocity)
        pitch = DRUM_VOICES[voice]
        if pitch < 0:  # timpani on the chord's root (or fifth), Orchestra kit notes 41-53 (F..F)
            chord = sheet.chord_at(t + 0.02)
            if chord is None or chord.root is None:
                return
            pitch = 41 + (chord.root + (7 if pitch == -2 else 0) - 5) % 12
        notes.append(_note(t, t + DRUM_NOTE_S, pitch, v, grid.duration_s))

    for i, start in enumerate(grid.bar_starts):
        fill_from = n
        if i in fills and fill is not None:
            beats = max(len(fill.steps(v)) for v in fill.voices) // fill.steps_per_beat
            fill_from = n - beats
            for voice in fill.voices:
                steps = fill.steps(voice)
                offset = n * fill.steps_per_beat - len(steps)
                for k, c in enumerate(steps):
                    if c in DRUM_VELOCITY:
                        hit(i, start, (offset + k) / fill.steps_per_beat, voice, c)
        for voice in bar.voices:
            steps = bar.steps(voice)
            length = n * bar.steps_per_beat
            first = grid.pattern_bar(i, len(steps) // length) * length
            for k, c in enumerate(steps[first:first + length]):
                at = k / bar.steps_per_beat
                if c in DRUM_VELOCITY and at < fill_from:
                    hit(i, start, at, voice, c)
        if i in crashes:
            hit(i, start, 0.0, "crash", "x")
    return notes, warnings


# ---------------------------------------------------------------- bass and comping


@dataclass
class _Slot:
    start_s: float
    end_s: float
    event: Event
    chord: Chord
    bar: int


def _slots(sheet: LeadSheet, style: Style, grid: Grid) -> tuple[list[_Slot], list[str]]:
    bar, warning = meter_pattern(style, grid.beats_per_bar)
    n = grid.beats_per_bar
    slots = []
    last = len(grid.bar_starts) - 1
    for i, start in enumerate(grid.bar_starts):
        events = bar.bars[grid.pattern_bar(i, len(bar.bars))]
        if i == last and style.ending == "hold" and i > 0:
            events = (Event(at=0, length=n, what="1" if style.kind == "bass" else "chord"),)
        for e in events:
            t0 = grid.time(start, e.at, swing=style.swing, unit=style.swing_unit)
            t1 = grid.time(start, min(e.at + e.length, n), swing=style.swing, unit=style.swing_unit)
            probe = grid.time(start, math.floor(e.at) + 1) + 0.01 if e.push else t0 + 0.01
            chord = sheet.chord_at(probe) or sheet.chord_at(t0 + 0.01)
            if e.what == "rest" or chord is None or chord.root is None or t0 >= grid.duration_s or t1 <= 0:
                continue
            while chord.end_s < t1 - 0.1 * grid.period_s:  # held across a chord change: strike the new chord
                if chord.end_s - t0 > 0.1 * grid.period_s:
                    slots.append(_Slot(t0, chord.end_s, e, chord, i))
                t0, chord = chord.end_s, sheet.chord_at(chord.end_s + 1e-6)
                if chord is None or chord.root is None:
                    break
                if style.kind == "bass" and e.what != "approach":
                    e = e.model_copy(update={"what": "1"})
            else:
                slots.append(_Slot(t0, t1, e, chord, i))
    if style.kind == "comping":  # every chord of a beat or more is played at least once
        period = grid.period_s
        for chord in sheet.chords:
            if chord.root is None or chord.end_s - chord.start_s < 0.9 * period or chord.start_s >= grid.duration_s:
                continue
            if not any(s.chord is chord for s in slots):
                bar_i = max(0, int(np.searchsorted(grid.beats_s[list(grid.bar_starts)], chord.start_s, "right")) - 1)
                event = Event(at=0, length=min(2.0, (chord.end_s - chord.start_s) / period), what="chord", velocity=70)
                slots.append(_Slot(chord.start_s, min(chord.end_s, chord.start_s + event.length * period), event,
                                   chord, bar_i))
        slots.sort(key=lambda x: x.start_s)
    return slots, [warning] if warning else []


def style_degrees(style: Style) -> set[str]:
    """The degrees a style plays (its extensions: what counts as "in" besides the chord tones)."""
    found = {d for shape in style.voicings for d in shape}
    for bar in style.meters.values():
        found |= {e.what for events in bar.bars for e in events if e.what[:1].isdigit()}
    return found | ({"9"} if any(e.what == "walk" for b in style.meters.values() for ev in b.bars for e in ev) else set())


def _bass(slots: list[_Slot], style: Style, range_: tuple[int, int], human: _Humanizer) -> list:
    lo, hi = range_
    degrees = style_degrees(style)
    prev = lo + min(7, (hi - lo) // 3)
    base, base_chord, last_chord = prev, None, None
    notes = []

    def home(pc: int, near: int) -> int:  # where a root lands: near the line, but roots stay low
        pitch = nearest(pc, near, range_)
        return pitch - 12 if pitch > (lo + hi) / 2 and pitch - 12 >= lo else pitch

    for k, s in enumerate(slots):
        nxt = next((x for x in slots[k + 1:] if x.chord is not s.chord or x.bar != s.bar), None)
        target_chord = nxt.chord if nxt is not None else s.chord
        what, rs = s.event.what, style.triad_seventh
        if what in ("walk", "arp") and s.chord is not last_chord or (
                what not in ("approach", "8") and s.chord is not last_chord and s.start_s - s.chord.start_s < 0.05):
            what = "1"  # a new chord starts on its root
        if what == "1" and s.chord is base_chord:
            pitch = base
        elif what == "approach":  # a semitone from the root of the very next note
            target = home((slots[k + 1].chord if k + 1 < len(slots) else s.chord).root, prev)
            options = [p for p in (target - 1, target + 1) if lo <= p <= hi and p != prev]
            pitch = min(options, key=lambda p: (abs(p - prev), p)) if options else target
        elif what == "walk":
            target = home(target_chord.root, prev)
            left = 1 + sum(1 for x in slots[k + 1:] if x.bar == s.bar and x.event.what in ("walk", "approach"))
            aim = prev + (target - prev) / (left + 1)
            pcs = allowed_pcs(s.chord, degrees, triad_seventh=rs)
            options = [p for p in range(max(lo, prev - 5), min(hi, prev + 5) + 1) if p % 12 in pcs and p != prev]
            jitter = human.rng.uniform(0, 0.6, len(options)) if options else []
            pitch = options[int(np.argmin([abs(p - aim) + j for p, j in zip(options, jitter, strict=True)]))] \
                if options else nearest(s.chord.root, prev, range_)
        elif what == "arp":
            tones = sorted((degree_pc(s.chord, d, triad_seventh=rs) - s.chord.root) % 12 for d in ("1", "3", "5"))
            base = nearest(s.chord.root, lo + 5, range_)
            ladder = [base + t for t in tones] + [base + 12]
            pitch = next((p for p in ladder if p > prev and p <= hi), base)
        elif what == "8":
            root = base if s.chord is base_chord else nearest(s.chord.root, prev, range_)
            pitch = root + 12 if root + 12 <= hi else root
        elif what == "1":
            pitch = home(s.chord.root, prev)
            base, base_chord = pitch, s.chord
        else:
            pitch = nearest(degree_pc(s.chord, what, triad_seventh=rs), prev, range_)
        t, v = human(s.start_s, s.event.velocity or 96)
        notes.append(_note(t, s.end_s - 0.02, pitch, v, math.inf))
        prev, last_chord = pitch, s.chord
    return notes


def _comping(slots: list[_Slot], style: Style, range_: tuple[int, int], human: _Humanizer) -> list:
    lo, hi = range_
    centre = (lo + hi) / 2
    voicing, chord, arp = None, None, 0
    notes = []
    for s in slots:
        if s.chord is not chord:
            options = candidates(s.chord, style.voicings, range_, triad_seventh=style.triad_seventh,
                                 sevenths=style.chord_sevenths)
            voicing, chord, arp = lead(voicing, options, centre=centre), s.chord, 0
        what = s.event.what
        t, v = human(s.start_s, s.event.velocity or 80)
        if what in ("chord", "up"):
            order = list(voicing) if what == "chord" else list(reversed(voicing))
            play = [(p, t + j * style.strum_ms / 1000, v - (8 if what == "up" else 0)) for j, p in enumerate(order)]
        elif what == "low":
            play = [(voicing[0], t, v)]
        elif what == "high":
            play = [(p, t, v) for p in voicing[1:] or voicing]
        elif what == "arp":
            play, arp = [(voicing[arp % len(voicing)], t, v)], arp + 1
        else:  # a degree: a bass note under the voicing (a guitarist's thumb)
            pc = degree_pc(s.chord, what, triad_seventh=style.triad_seventh)
            below = [p for p in range(lo, voicing[0]) if p % 12 == pc]
            play = [(below[-1] if below else nearest(pc, voicing[0], range_), t, v)]
        notes.extend(_note(t0, s.end_s - 0.01, p, max(1, vel), 1e9) for p, t0, vel in play)
    return notes


# ---------------------------------------------------------------- the entry point


def _resolve(style: str | Style, kind: str, user_dir) -> Style:
    style = get_style(style, kind=kind, user_dir=user_dir) if isinstance(style, str) else style
    if style.kind != kind:
        raise ParameterError(f"style {style.name!r} is a {style.kind} style, not {kind}")
    return style


def check_range(style: Style, range_: tuple[int, int] | None) -> tuple[int, int]:
    """The part's MIDI range (``range_`` or the style's), refused when it cannot hold the style's voicings."""
    lo, hi = range_ if range_ is not None else style.range
    if not (isinstance(lo, numbers.Integral) and isinstance(hi, numbers.Integral) and 0 <= lo < hi <= 127):
        raise ParameterError(f"range_={range_} must be (low, high) MIDI notes with 0 <= low < high <= 127")
    need = (min_span(style.voicings, triad_seventh=style.triad_seventh, sevenths=style.chord_sevenths)
            if style.kind == "comping" else 11)
    if hi - lo < need:
        what = "its voicings on every root need" if style.kind == "comping" else f"a {style.kind} line needs every pitch class:"
        raise ParameterError(f"range {lo}-{hi} ({hi - lo} semitones) cannot hold style {style.name!r}: {what} "
                             f"{need} semitones; widen the range to at least {need}")
    return int(lo), int(hi)


def generate_part(sheet: LeadSheet, style: str | Style, *, kind: str, seed: int = 0, program: int | str | None = None,
                  kit: int | str | None = None, range_: tuple[int, int] | None = None,
                  options: tuple[str, ...] = (), user_dir: str | os.PathLike | None = None) -> PartResult:
    """Generate one part of ``sheet`` (at the cover's tempo) in ``style`` (a name or a :class:`Style`).

    ``kind`` is ``"drums"``, ``"bass"``, ``"comping"`` or ``"melody"`` and must match the style. ``program``
    (GM name or 0-127; bass/comping/melody) and ``kit`` (GM kit name or number; drums) override the style's
    sound; a kit that one of the style's ``options`` names switches that option on (``kit="brush"``
    on ``jazz_swing`` plays brushes), as does naming it in ``options``. ``range_`` (MIDI, inclusive)
    overrides the style's range. The same ``seed`` gives the same part.

    Raises :class:`~covermill.errors.ParameterError` for an unknown style, kind, kit, program,
    option, or a range that cannot hold the style's voicings.
    """
    import pretty_midi

    if kind not in KINDS:
        raise ParameterError(f"kind={kind!r} must be drums, bass, comping or melody")
    if isinstance(style, str) and style == "none":
        return PartResult(pretty_midi.Instrument(program=0, is_drum=kind == "drums", name=f"{kind}:none"), (),
                          "none", kind)
    style = _resolve(style, kind, user_dir)
    for name in options:
        if name not in style.options:
            raise ParameterError(f"style {style.name!r} has no option {name!r}; "
                                 f"its options: {', '.join(style.options) or 'none'}")
    warnings: list[str] = []
    grid, grid_warnings = make_grid(sheet)
    warnings += grid_warnings if kind != "melody" else []  # a melody keeps the sheet's own times
    human = _Humanizer(style, seed)
    if kind == "drums":
        if program is not None:
            raise ParameterError("a drum part takes kit=, not program=")
        number = kit_number(kit if kit is not None else style.sound.kit or "standard")
        chosen = [style.options[o] for o in options] + [o for o in style.options.values()
                                                        if o.kit is not None and kit_number(o.kit) == number]
        swap = {k: v for o in chosen for k, v in o.swap.items()}
        inst = pretty_midi.Instrument(program=number, is_drum=True, name=f"drums:{style.name}")
        notes, more = _drums(sheet, style, grid, swap, human)
        warnings += more
    else:
        if kit is not None:
            raise ParameterError(f"a {kind} part takes program=, not kit=")
        number = program_number(program if program is not None else style.sound.program or 0)
        range_ = check_range(style, range_)
        inst = pretty_midi.Instrument(program=number, name=f"{kind}:{style.name}")
        if kind == "melody":  # the sheet's own tune, doubled (no grid, no chords needed)
            notes = [_note(*x, grid.duration_s) for x in melody_notes(sheet.melody, range_, human)]
            warnings += [] if notes else [f"no melody in the lead sheet: the melody part ({style.name}) is silent"]
        elif not any(c.root is not None for c in sheet.chords):
            warnings.append(f"no chords in the lead sheet: the {kind} part ({style.name}) is silent")
            notes = []
        else:
            slots, more = _slots(sheet, style, grid)
            warnings += more
            notes = (_bass if kind == "bass" else _comping)(slots, style, range_, human)
            notes = [_note(x.start, x.end, x.pitch, x.velocity, grid.duration_s) for x in notes if x is not None]
    inst.notes = _tidy(notes)
    return PartResult(inst, tuple(dict.fromkeys(warnings)), style.name, kind)


def part_midi(*parts: PartResult, bpm: float = DEFAULT_BPM, beats_per_bar: int = 4) -> pretty_midi.PrettyMIDI:
    """The parts in one ``pretty_midi.PrettyMIDI`` with the sheet's tempo and meter (for
    ``OUT/midi/parts/<part>.mid``, one part per file, or for rendering them together)."""
    import copy

    import pretty_midi

    midi = pretty_midi.PrettyMIDI(resolution=960, initial_tempo=float(bpm) if bpm and math.isfinite(bpm) else 120.0)
    midi.time_signature_changes.append(pretty_midi.TimeSignature(int(beats_per_bar), 4, 0.0))
    midi.instruments.extend(copy.deepcopy(p.midi) for p in parts)
    return midi


def render_part(*parts: PartResult, sr: int, soundfont: str | os.PathLike | None = None,
                duration_s: float | None = None) -> np.ndarray:
    """Play parts with FluidSynth: float32 ``(2, n)`` at ``sr``, cut or padded to ``duration_s`` if given."""
    audio = render_midi(part_midi(*parts), sr=sr, soundfont=soundfont)
    if duration_s is not None:
        n = int(round(duration_s * sr))
        out = np.zeros((2, n), np.float32)
        out[:, : min(n, audio.shape[1])] = audio[:, :n]
        audio = out
    return audio
