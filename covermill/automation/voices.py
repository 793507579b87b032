"""Voices: the recipe's re-voiced stems turned into instruments, and each stem re-voiced.

:func:`voices` builds one instrument per ``revoice`` stem and checks it before any audio work
(a missing soundfont or an unknown instrument fails at once); :func:`revoice_all` plays every
re-voiced stem at the cover's tempo and key, one thread per stem when the render runs side by
side, and returns the audio, the notes of MIDI-played stems and the warnings.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import instruments
from ..instruments.chords import voice_chords
from ..instruments.notes import NoNotesError, Voicing
from ..leadsheet import LeadSheet, Note
from ..recipes import Recipe
from .runner import lower_priority, pool


def voices(recipe: Recipe, *, soundfont=None, instruments_dir=None, root=None) -> dict[str, instruments.Instrument]:
    """One instrument per re-voiced stem, checked before any audio work (a missing soundfont fails now).

    ``soundfont`` (a command-line path) wins over a stem's ``revoice.soundfont``, which is
    resolved in the recipe's folder ``root`` (see :func:`covermill.fsutil.recipe_path`)."""
    out: dict[str, instruments.Instrument] = {}
    for name, spec in recipe.stems.items():
        if spec.action != "revoice":
            continue
        rv = spec.revoice
        params = {}
        if rv.instrument is None:  # a kind with a field of its own (MIDI, drums): its soundfont and feel
            font = Path(soundfont).absolute() if soundfont is not None else rv.soundfont_path(root)
            params = {"soundfont": font, **{k: v for k, v in (
                ("quantize", rv.quantize), ("swing", rv.swing), ("velocity_scale", rv.velocity_scale),
                ("octave_shift", rv.octave_shift)) if v is not None}}
        out[name] = instruments.from_revoice(rv, instruments_dir=instruments_dir, **params)
        out[name].check()
    return out


#: MIDI range a chords-mode stem is voiced in when its instrument has no range of its own.
CHORD_RANGE = (48, 76)


def _midi(hz: float) -> int:
    return int(round(69 + 12 * np.log2(hz / 440.0)))


def sheet_notes(name: str, mode: str, sheet: LeadSheet, voice) -> tuple[Note, ...]:
    """What a stem in ``mode`` plays from the cover's lead sheet: ``notes`` -> the melody (the
    bass line for the ``bass`` stem); ``chords`` -> the chords voiced in the instrument's range
    with the smallest voice movement."""
    if mode == "notes":
        return tuple(sheet.bass if name == "bass" else sheet.melody)
    low, high = CHORD_RANGE
    timbre = getattr(voice, "timbre", None)
    if timbre is not None:
        low, high = max(_midi(timbre.range_hz[0]), 21), min(_midi(timbre.range_hz[1]), 108)
        if high - low < 12:
            low, high = CHORD_RANGE
    return voice_chords(sheet.chords, low=low, high=high, voices=4)


def revoice_all(voiced: dict[str, instruments.Instrument], parts: dict[str, np.ndarray], names: list[str], *, sr: int,
                time_ratio: float, semitones: float, n_out: int, side_by_side: bool,
                modes: dict[str, str | None] | None = None, sheet: Callable[[], LeadSheet] | None = None,
                reuse=None, specs: dict[str, str] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, tuple[Note, ...]], list[str]]:
    """Re-voice the stems ``names``: ``(audio per stem, MIDI per MIDI-played stem, notes per
    note-played stem, warnings)``.

    ``modes`` gives each stem's ``revoice.mode``: ``notes`` and ``chords`` stems play the cover's
    lead sheet (``sheet()``, waited for only by them), the others follow their stem (expressive)
    or, through MIDI, its transcription. A stem with no notes to play is silence and a warning.
    Side by side, each stem gets a thread (up to the core count) at a lower priority than the
    Rubber Band stretch. With ``reuse`` (:class:`~.reuse.Reuse`), a stem re-voiced before with
    the same audio, settings (``specs``: its ``revoice`` as text), tempo, key and notes is reused."""
    modes = modes or {}
    distinct = len({id(voiced[name]) for name in names}) == len(names)  # instruments keep per-call state
    workers = min(len(names), os.cpu_count() or 1) if side_by_side and distinct else 1

    def one(name: str):
        if reuse is None:
            return fresh(name)
        mode = modes.get(name)
        notes = sheet_notes(name, mode, sheet(), voiced[name]) if mode in ("notes", "chords") and sheet else None
        key = (reuse.audio_key(parts[name]), (specs or {}).get(name, ""), float(time_ratio), float(semitones), sr,
               mode, hash(notes))
        return reuse.get("revoice", key, lambda: fresh(name))

    def fresh(name: str):
        mode = modes.get(name)
        notes = sheet_notes(name, mode, sheet(), voiced[name]) if mode in ("notes", "chords") and sheet else None
        try:
            v = voiced[name].render(parts[name], sr=sr, time_ratio=time_ratio, semitones=semitones, notes=notes,
                                    mode=mode or "expressive")
            return v, None
        except NoNotesError as exc:  # silence (and the empty MIDI, as a file to fill in a DAW)
            silent = exc.voicing if exc.voicing is not None else Voicing(np.zeros((1, n_out), np.float32))
            return silent, f"stem {name!r}: {exc}"

    audio: dict[str, np.ndarray] = {}
    midi: dict[str, Any] = {}
    played: dict[str, tuple[Note, ...]] = {}
    warnings: list[str] = []
    with pool(workers, name="covermill-revoice", initializer=lower_priority) as voicing:
        for name, job in [(name, voicing.submit(one, name)) for name in names]:
            v, warning = job.result()
            audio[name] = v.audio
            if warning:
                warnings.append(warning)
            if v.midi is not None:
                midi[name] = v.midi
            if v.notes:
                played[name] = tuple(v.notes)
    return audio, midi, played, warnings
