"""Timbre transfer: re-voice a stem as another instrument.

:func:`get` resolves an instrument name; :func:`available` lists them. The built-in
parametric instruments (:mod:`covermill.instruments.parametric`) need no training and are
data: YAML files in ``covermill/instruments/builtin/`` (:mod:`covermill.instruments.timbre`).
The instruments folder (``--instruments-dir``, ``$COVERMILL_INSTRUMENTS_DIR`` or the user's
data dir) holds a producer's own instruments: ``*.yaml`` copies of parametric ones (they win
over the built-ins) and trained DDSP instruments, one sub-folder each
(:mod:`covermill.instruments.ddsp`). Polyphonic stems are re-voiced through MIDI
(:mod:`covermill.instruments.midi`: transcription with basic-pitch, rendering with
FluidSynth and a General MIDI soundfont).

Every instrument can also ``render`` notes (:mod:`covermill.instruments.notes`): a lead's melody as
one line (``mode="notes"``) or chords (``mode="chords"``, e.g. lead-sheet chords voiced by
:func:`~covermill.instruments.chords.voice_chords`), returning a :class:`Voicing` (audio, notes, MIDI).
"""

from __future__ import annotations

import os

from ..errors import ParameterError
from .base import Instrument
from .chords import voice_chords
from .ddsp.store import instruments_dir, list_trained
from .notes import MODES, NoNotesError, Voicing, stem_notes
from .parametric import BUILTIN_TIMBRES, ParametricInstrument
from .timbre import Timbre, load_folder, load_timbre


def _timbres(folder: str | os.PathLike | None, need: str | None = None) -> dict[str, Timbre]:
    """Built-in timbres, overridden by ``*.yaml`` files in the instruments folder. A file that
    does not load is skipped with a warning, unless it is ``need`` (the instrument asked for)."""
    root = instruments_dir(folder)
    if folder is None and not root.is_dir():
        return BUILTIN_TIMBRES
    return {**BUILTIN_TIMBRES, **load_folder(root, strict=False, need=need)}


def available(instruments_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """``{name: description}`` of every instrument that can be used now: parametric ones
    (built-in or the folder's YAML copies), then trained ones."""
    found = {name: t.description for name, t in sorted(_timbres(instruments_dir).items())}
    for name, desc in list_trained(instruments_dir).items():
        found.setdefault(name, desc)
    return found


def kinds(instruments_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """``{name: "built-in" | "user" | "trained"}`` for :func:`available`'s names."""
    timbres = _timbres(instruments_dir)
    out = {}
    for name in available(instruments_dir):
        if name in timbres:
            out[name] = "built-in" if timbres[name] is BUILTIN_TIMBRES.get(name) else "user"
        else:
            out[name] = "trained"
    return out


def get(name: str, *, instruments_dir: str | os.PathLike | None = None, **params) -> Instrument:
    """The instrument ``name``: a parametric one (a YAML copy in the instruments folder wins
    over the built-in), else a trained DDSP one; an unknown name lists the choices."""
    timbres = _timbres(instruments_dir, need=name)
    if name in timbres:
        return ParametricInstrument(timbres[name], **params)
    if name in list_trained(instruments_dir):
        from .ddsp.instrument import DDSPInstrument
        from .ddsp.store import instruments_dir as resolve

        return DDSPInstrument(resolve(instruments_dir) / name, **params)
    raise ParameterError(f"unknown instrument {name!r}; choose one of {', '.join(available(instruments_dir))}")


def get_midi(program: str | int, **params) -> Instrument:
    """A MIDI re-voicing instrument playing General MIDI ``program`` (name or 0-127); see
    :class:`~covermill.instruments.midi.MidiInstrument` for ``params``."""
    from .midi import MidiInstrument

    return MidiInstrument(program, **params)


def get_drums(kit: str | int = "standard", **params) -> Instrument:
    """Re-voice drum onsets (kick/snare/hi-hat) to General MIDI drum ``kit`` (e.g. ``"brush"``); see
    :class:`~covermill.instruments.drums.DrumKitInstrument` for ``params``."""
    from .drums import DrumKitInstrument

    return DrumKitInstrument(kit, **params)


__all__ = ["MODES", "Instrument", "NoNotesError", "ParametricInstrument", "Timbre", "Voicing", "available", "get",
           "get_drums", "get_midi", "instruments_dir", "kinds", "load_timbre", "stem_notes", "voice_chords"]
