"""Timbre transfer: re-voice a stem as another instrument.

:func:`get` resolves an instrument name; :func:`available` lists them. The built-in
parametric instruments (:mod:`covermill.instruments.parametric`) need no training and are
data: YAML files in ``covermill/instruments/builtin/`` (:mod:`covermill.instruments.timbre`);
a folder of user copies is searched first with ``instruments_dir``. Polyphonic stems are
re-voiced through MIDI (:mod:`covermill.instruments.midi`: transcription with basic-pitch,
rendering with FluidSynth and a General MIDI soundfont).
"""

from __future__ import annotations

import os

from ..errors import ParameterError
from .base import Instrument
from .parametric import BUILTIN_TIMBRES, ParametricInstrument
from .timbre import Timbre, load_folder, load_timbre


def _timbres(instruments_dir: str | os.PathLike | None) -> dict[str, Timbre]:
    if instruments_dir is None:
        return BUILTIN_TIMBRES
    return {**BUILTIN_TIMBRES, **load_folder(instruments_dir)}


def available(*, instruments_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """``{name: description}`` of every instrument that can be used now."""
    return {name: t.description for name, t in sorted(_timbres(instruments_dir).items())}


def get(name: str, *, instruments_dir: str | os.PathLike | None = None, **params) -> Instrument:
    """The instrument ``name`` (a user copy in ``instruments_dir`` wins); an unknown name lists the choices."""
    timbres = _timbres(instruments_dir)
    if name in timbres:
        return ParametricInstrument(timbres[name], **params)
    raise ParameterError(f"unknown instrument {name!r}; choose one of {', '.join(sorted(timbres))}")


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


__all__ = ["Instrument", "ParametricInstrument", "Timbre", "available", "get", "get_drums", "get_midi", "load_timbre"]
