"""Melody and bass as notes, from an f0 track (pYIN of a separated stem) or from the chords.

:func:`clean_melody` is pure and shared with note-true re-voicing: the same cleaning turns a
re-voiced lead's f0 into the notes it plays.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np
import scipy.ndimage

from ..leadsheet import Chord, Key, Note


def _chord_at(chords: Sequence[Chord], starts: list[float], t: float) -> Chord | None:
    i = bisect.bisect_right(starts, t) - 1
    if i >= 0 and chords[i].start_s <= t < chords[i].end_s:
        return chords[i]
    return None


def _snap(midi: float, *, tones: frozenset[int], scale: frozenset[int], ambiguous: float) -> int:
    """Nearest semitone; when ``midi`` lies within ``ambiguous`` semitones of the midpoint between
    two, the one that is a chord tone (else a scale tone) wins."""
    lo = int(np.floor(midi))
    frac = midi - lo
    nearest = lo if frac < 0.5 else lo + 1
    if abs(frac - 0.5) > ambiguous:
        return nearest
    for group in (tones, scale):
        fits = [p for p in (lo, lo + 1) if p % 12 in group]
        if len(fits) == 1:
            return fits[0]
    return nearest


def clean_melody(times: np.ndarray, f0_hz: np.ndarray, voiced_prob: np.ndarray, *, key: Key | None,
                 chords: Sequence[Chord] = (), min_note_s: float = 0.09, voicing_threshold: float = 0.5,
                 smooth_s: float = 0.16, hysteresis: float = 0.65, ambiguous: float = 0.2,
                 velocity: int = 90, onset_grid_s: np.ndarray | None = None,
                 late_s: float = 0.12) -> tuple[Note, ...]:
    """Notes of a monophonic f0 track.

    Parameters
    ----------
    times : np.ndarray [shape=(n,)]
        Frame times in seconds, increasing and evenly spaced.
    f0_hz : np.ndarray [shape=(n,)]
        f0 per frame; ``nan`` or ``<= 0`` where unvoiced.
    voiced_prob : np.ndarray [shape=(n,)]
        Voicing confidence 0..1; frames below ``voicing_threshold`` are dropped (bleed, breath).
    key, chords
        Where a note's median pitch is within ``ambiguous`` semitones of the midpoint between
        two semitones, the chord tone (at the note's middle), else the scale tone, wins.
    onset_grid_s : np.ndarray, optional
        Grid times (e.g. the beat grid's 16ths). f0 trackers hear a note late (a window's
        worth, a slow attack): a note's start moves to the nearest grid time from ``late_s``
        before it to 35 ms after it, and no earlier than the previous note's end unless the two
        are joined (legato: the boundary between them moves, the previous note keeps at least
        :data:`MIN_CUT_S`).
    min_note_s : float
        Shorter pieces join the note before them in the same phrase, or are dropped.
    smooth_s, hysteresis
        Segmentation runs on the f0 averaged over ``smooth_s`` (one vibrato cycle averages
        out); a new note starts when that moves ``hysteresis`` semitones or more from the
        current note. The note's pitch is the median of its frames, so vibrato and slides
        stay expression, not pitch.

    Returns
    -------
    tuple of :class:`~covermill.leadsheet.Note`, in time order, not overlapping.
    """
    times = np.asarray(times, float)
    f0 = np.asarray(f0_hz, float)
    vp = np.asarray(voiced_prob, float)
    n = min(len(times), len(f0), len(vp))
    if n < 2:
        return ()
    times, f0, vp = times[:n], f0[:n], vp[:n]
    hop = float(np.median(np.diff(times)))
    if not np.isfinite(hop) or hop <= 0:
        return ()
    with np.errstate(invalid="ignore", divide="ignore"):
        voiced = np.isfinite(f0) & (f0 > 0) & (vp >= voicing_threshold)
        midi = np.where(voiced, 69.0 + 12.0 * np.log2(np.where(voiced, f0, 440.0) / 440.0), np.nan)
    scale = key.scale if key is not None else frozenset(range(12))
    starts = [c.start_s for c in chords]
    width = max(1, int(round(smooth_s / hop)))
    notes: list[Note] = []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], voiced.astype(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        run = midi[a:b]
        smooth = scipy.ndimage.uniform_filter1d(run, size=min(width, len(run)), mode="nearest")
        pieces: list[tuple[int, int]] = []
        cur, start = float(np.round(smooth[0])), 0
        for i in range(1, len(run)):
            if abs(smooth[i] - cur) >= hysteresis:
                pieces.append((start, i))
                cur, start = float(np.round(smooth[i])), i
        pieces.append((start, len(run)))
        min_frames = max(1, int(round(min_note_s / hop)))
        merged: list[list[int]] = []
        for s, e in pieces:  # short pieces (slides, scoops) join the previous note of the phrase
            if merged and (e - s < min_frames or merged[-1][1] - merged[-1][0] < min_frames // 2):
                merged[-1][1] = e
            else:
                merged.append([s, e])
        kept = [[s, e] for s, e in merged if e - s >= min_frames]
        pitches = []
        for s, e in kept:
            t0, t1 = times[a + s], times[a + e - 1] + hop
            chord = _chord_at(chords, starts, 0.5 * (t0 + t1)) if chords else None
            tones = chord.pitch_classes if chord is not None else frozenset()
            # the steadiest half of the note decides its pitch (the attack and release may slide)
            core = run[s:e]
            k = len(core) // 4
            if len(core) >= 8:
                core = core[k:len(core) - k]
            pitches.append(_snap(float(np.median(core)), tones=tones, scale=scale, ambiguous=ambiguous))
        _move_boundaries(run, kept, pitches, width)
        for (s, e), pitch in zip(kept, pitches, strict=True):
            t0, t1 = times[a + s], times[a + e - 1] + hop
            if notes and notes[-1].pitch == pitch and t0 - notes[-1].end_s < 1.5 * hop:
                notes[-1] = Note(notes[-1].start_s, float(t1), pitch, velocity)
            else:
                notes.append(Note(float(t0), float(t1), int(np.clip(pitch, 0, 127)), velocity))
    if onset_grid_s is not None and len(onset_grid_s) and notes:
        notes = _snap_onsets(notes, np.sort(np.asarray(onset_grid_s, float)), late_s)
    return tuple(notes)


#: A note that starts within this of the previous note's end is joined to it (legato): its grid
#: onset may move the boundary between the two earlier, shortening the previous note.
LEGATO_S = 0.02
#: The shortest a legato note is cut to by the next note's earlier onset.
MIN_CUT_S = 0.06


def _move_boundaries(run: np.ndarray, pieces: list[list[int]], pitches: list[int], width: int) -> None:
    """Move each boundary between two joined notes of different pitch back to where the raw f0 left
    the first note (in place). Segmentation runs on the smoothed f0, which reaches a new note up to
    ``width`` frames late, and the steps it passes on the way join the note before: a leap was
    heard up to 70 ms late. The boundary goes to the frame after the last one (within ``width``
    frames before it, and after the first note's start) still nearer the first note's pitch."""
    for k in range(1, len(pieces)):
        p0, p1 = pitches[k - 1], pitches[k]
        b = pieces[k][0]
        if p0 == p1 or pieces[k - 1][1] != b:
            continue
        lo = max(pieces[k - 1][0] + 1, b - width)
        seg = run[lo:b]
        older = np.flatnonzero(np.abs(seg - p0) <= np.abs(seg - p1))
        new = lo + (int(older[-1]) + 1 if len(older) else 0)
        pieces[k - 1][1] = pieces[k][0] = new


def _snap_onsets(notes: list[Note], grid: np.ndarray, late_s: float, early_s: float = 0.035) -> list[Note]:
    out: list[Note] = []
    for note in notes:
        lo = int(np.searchsorted(grid, note.start_s - late_s, side="left"))
        hi = int(np.searchsorted(grid, note.start_s + early_s, side="right"))
        start = note.start_s
        if hi > lo:
            near = grid[lo:hi]
            start = float(near[np.argmin(np.abs(near - note.start_s))])
        if out and start < out[-1].end_s:
            prev = out[-1]  # a legato boundary heard late moves back to the grid; a gap is kept
            if note.start_s - prev.end_s < LEGATO_S and start - prev.start_s >= MIN_CUT_S:
                out[-1] = Note(prev.start_s, start, prev.pitch, prev.velocity)
            else:
                start = prev.end_s
        if note.end_s - start > 1e-3:
            out.append(Note(start, note.end_s, note.pitch, note.velocity))
    return out


def subdivide(beats_s: np.ndarray, parts: int = 4) -> np.ndarray:
    """The grid of ``parts`` equal steps per beat (16ths for 4), one beat past the last."""
    beats = np.asarray(beats_s, float)
    if len(beats) < 2:
        return beats
    beats = np.concatenate([beats, [2 * beats[-1] - beats[-2]]])
    steps = np.arange(parts) / parts
    return (beats[:-1, None] + np.diff(beats)[:, None] * steps[None]).ravel()


def bass_from_chords(chords: Sequence[Chord], *, downbeats_s: Sequence[float] = (), low_midi: int = 36,
                     velocity: int = 85) -> tuple[Note, ...]:
    """A root-note bass line: each chord's root in the octave from ``low_midi`` (C2), restruck on every
    bar line inside a long chord."""
    notes: list[Note] = []
    bars = sorted(float(d) for d in downbeats_s)
    for c in chords:
        if c.root is None or c.end_s <= c.start_s:
            continue
        cuts = [c.start_s] + [d for d in bars if c.start_s + 0.05 < d < c.end_s - 0.05] + [c.end_s]
        for t0, t1 in zip(cuts, cuts[1:], strict=False):
            notes.append(Note(float(t0), float(t1), low_midi + (c.root - low_midi) % 12, velocity))
    return tuple(notes)


def join_fragments(notes: Sequence[Note], *, grid_s: np.ndarray, tolerance_s: float = 0.025,
                   gap_s: float = 0.25) -> tuple[Note, ...]:
    """Notes with voicing dropouts healed: a note that starts off ``grid_s`` (farther than
    ``tolerance_s`` from every grid time, e.g. the beat grid's eighths) less than ``gap_s``
    after a note of the same pitch continues that note (an f0 tracker that lost a held note
    for a moment and found it again), instead of striking it again."""
    grid = np.sort(np.asarray(grid_s, float))
    out: list[Note] = []
    for n in sorted(notes, key=lambda n: n.start_s):
        if (out and len(grid) and out[-1].pitch == n.pitch and n.start_s - out[-1].end_s < gap_s
                and float(np.min(np.abs(grid - n.start_s))) > tolerance_s):
            out[-1] = Note(out[-1].start_s, max(out[-1].end_s, n.end_s), n.pitch, out[-1].velocity)
        else:
            out.append(n)
    return tuple(out)
