"""Voices: the recipe's re-voiced stems turned into instruments, and each stem re-voiced.

:func:`voices` builds one instrument per ``revoice`` stem and checks it before any audio work
(a missing soundfont or an unknown instrument fails at once); :func:`revoice_all` plays every
re-voiced stem at the cover's tempo and key, one thread per stem when the render runs side by
side, and returns the audio, the notes of MIDI-played stems and the warnings.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import instruments
from ..instruments.midi import NoNotesError
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
        if rv.instrument is not None:
            out[name] = instruments.get(rv.instrument, instruments_dir=instruments_dir)
            continue
        font = Path(soundfont).absolute() if soundfont is not None else rv.soundfont_path(root)
        feel = {k: v for k, v in (("quantize", rv.quantize), ("swing", rv.swing), ("velocity_scale", rv.velocity_scale),
                                  ("octave_shift", rv.octave_shift)) if v is not None}
        if rv.drum_kit is not None:
            out[name] = instruments.get_drums(rv.drum_kit, soundfont=font, **feel)
        else:
            out[name] = instruments.get_midi(rv.midi_program, soundfont=font, **feel)
        out[name].check()
    return out


def revoice_all(voiced: dict[str, instruments.Instrument], parts: dict[str, np.ndarray], names: list[str], *, sr: int,
                time_ratio: float, semitones: float, n_out: int, side_by_side: bool
                ) -> tuple[dict[str, np.ndarray], dict[str, Any], list[str]]:
    """Re-voice the stems ``names``: ``(audio per stem, notes per MIDI-played stem, warnings)``.

    A stem with no notes to play is silence and a warning. Side by side, each stem gets a
    thread (up to the core count) at a lower priority than the Rubber Band stretch."""
    distinct = len({id(voiced[name]) for name in names}) == len(names)  # instruments keep per-call state
    workers = min(len(names), os.cpu_count() or 1) if side_by_side and distinct else 1

    def one(name: str):
        try:
            return voiced[name].revoice(parts[name], sr=sr, time_ratio=time_ratio, semitones=semitones), None
        except NoNotesError as exc:
            return np.zeros((1, n_out), np.float32), f"stem {name!r}: {exc}"

    audio: dict[str, np.ndarray] = {}
    notes: dict[str, Any] = {}
    warnings: list[str] = []
    with pool(workers, name="covermill-revoice", initializer=lower_priority) as voicing:
        for name, job in [(name, voicing.submit(one, name)) for name in names]:
            audio[name], warning = job.result()
            if warning:
                warnings.append(warning)
            if getattr(voiced[name], "midi_", None) is not None:
                notes[name] = voiced[name].midi_
    return audio, notes, warnings
