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

Every kind of instrument (a synthesis method) is registered in :data:`KINDS`
(:class:`~covermill.instruments.base.InstrumentKind`; the built-ins in :mod:`.backends`): named kinds
(``parametric``, then ``ddsp``) answer ``revoice: {instrument: NAME}``, the others a recipe field of
their own (``midi``: ``midi_program``, ``drums``: ``drum_kit``).
"""

from __future__ import annotations

import os

from ..errors import ParameterError
from ..registry import Registry
from .base import Instrument, InstrumentKind
from .chords import voice_chords
from .ddsp.store import instruments_dir
from .notes import MODES, NoNotesError, Voicing, stem_notes
from .parametric import BUILTIN_TIMBRES, ParametricInstrument
from .timbre import Timbre, load_timbre


def _load_builtin() -> None:
    from . import backends  # noqa: F401  (registers parametric, ddsp, midi, drums; none imports torch or basic-pitch)


#: The kinds of instrument, by name (see :class:`~covermill.instruments.base.InstrumentKind`).
KINDS = Registry("instrument kind", loader=_load_builtin)


def _named_kinds() -> list[InstrumentKind]:
    """The kinds that answer ``revoice: {instrument: NAME}``, the first to offer a name wins it."""
    found = [KINDS.get(k) for k in KINDS.available()]
    return sorted((k for k in found if k.field == "instrument"), key=lambda k: (k.priority, k.name))


def available(instruments_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """``{name: description}`` of every instrument that can be used now, by kind: parametric ones
    (built-in or the folder's YAML copies), then trained ones."""
    found: dict[str, str] = {}
    for kind in _named_kinds():
        for name, desc in kind.names(instruments_dir).items():
            found.setdefault(name, desc)
    return found


def kinds(instruments_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """``{name: "built-in" | "user" | "trained"}`` for :func:`available`'s names."""
    named = _named_kinds()
    offered = [(kind, kind.names(instruments_dir)) for kind in named]
    out = {}
    for name in available(instruments_dir):
        kind = next(k for k, names in offered if name in names)
        out[name] = kind.label(name, instruments_dir)
    return out


def get(name: str, *, instruments_dir: str | os.PathLike | None = None, **params) -> Instrument:
    """The instrument ``name`` from the first kind that offers it (a parametric one -- a YAML copy
    in the instruments folder wins over the built-in -- else a trained DDSP one); an unknown name
    lists the choices."""
    for kind in _named_kinds():
        if kind.offers(name, instruments_dir):
            return kind.build(name, instruments_dir=instruments_dir, **params)
    raise ParameterError(f"unknown instrument {name!r}; choose one of {', '.join(available(instruments_dir))}")


def from_revoice(revoice, *, instruments_dir: str | os.PathLike | None = None, **params) -> Instrument:
    """The instrument a recipe's ``revoice`` block asks for: :func:`get` for ``instrument: NAME``,
    else the kind whose own field (``midi_program``, ``drum_kit``, ...) is set, built from that
    field's value with ``params`` (``soundfont``, the feel)."""
    if getattr(revoice, "instrument", None) is not None:
        return get(revoice.instrument, instruments_dir=instruments_dir)
    for kind in (KINDS.get(k) for k in KINDS.available()):
        if kind.field != "instrument" and getattr(revoice, kind.field, None) is not None:
            return kind.build(getattr(revoice, kind.field), instruments_dir=instruments_dir, **params)
    fields = sorted({KINDS.get(k).field for k in KINDS.available()})
    raise ParameterError(f"revoice needs one of {', '.join(fields)}")


def get_midi(program: str | int, **params) -> Instrument:
    """A MIDI re-voicing instrument playing General MIDI ``program`` (name or 0-127); see
    :class:`~covermill.instruments.midi.MidiInstrument` for ``params``."""
    return KINDS.get("midi").build(program, **params)


def get_drums(kit: str | int = "standard", **params) -> Instrument:
    """Re-voice drum onsets (kick/snare/hi-hat) to General MIDI drum ``kit`` (e.g. ``"brush"``); see
    :class:`~covermill.instruments.drums.DrumKitInstrument` for ``params``."""
    return KINDS.get("drums").build(kit, **params)


__all__ = ["BUILTIN_TIMBRES", "KINDS", "MODES", "Instrument", "InstrumentKind", "NoNotesError", "ParametricInstrument",
           "Timbre", "Voicing", "available", "from_revoice", "get", "get_drums", "get_midi", "instruments_dir", "kinds",
           "load_timbre", "stem_notes", "voice_chords"]
