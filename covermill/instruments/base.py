"""The instrument protocol every timbre-transfer backend implements, and the instrument-kind
protocol that makes them (registered in :data:`covermill.instruments.KINDS`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from ..leadsheet import Note
    from .notes import Voicing


@runtime_checkable
class Instrument(Protocol):
    """Re-voice a (mostly monophonic) stem as this instrument.

    ``revoice(y, sr=sr, time_ratio=r, semitones=s)`` takes float32 ``(channels, n)``
    audio and returns mono float32 ``(1, m)`` at ``sr`` with ``m = round(n / r)``: the
    melody (f0) and dynamics (loudness) of ``y``, played ``r`` times faster
    (``r = cover_bpm / source_bpm``) and ``s`` semitones higher. Because the controls are
    time-scaled before synthesis, no audio is time-stretched.

    ``render(y, sr=sr, time_ratio=r, semitones=s, notes=None, mode="expressive")`` does the same and
    returns a :class:`~covermill.instruments.notes.Voicing`: the audio, the notes as played (cover
    time and pitch) and the MIDI where FluidSynth played it, so nothing is kept on the instrument.
    ``mode`` (:data:`~covermill.instruments.notes.MODES`): ``"expressive"`` follows the stem;
    ``"notes"`` plays ``notes`` (a lead's cleaned melody, at the cover's tempo and key) as one line;
    ``"chords"`` plays them polyphonically; ``notes=None`` transcribes the stem. ``revoice`` is
    ``render(...).audio`` in ``expressive`` mode. Where there is nothing to play,
    :class:`~covermill.instruments.notes.NoNotesError` carries the silent voicing.

    ``check()`` fails early (before any audio work; a :class:`~covermill.errors.CovermillError`
    naming the fix) on what it will need and cannot find: a soundfont, FluidSynth, its weights.
    ``__init__`` only stores its parameters; anything heavy loads on first use.
    """

    name: str

    def check(self) -> None: ...

    def revoice(
        self, y: np.ndarray, *, sr: int, time_ratio: float = 1.0, semitones: float = 0.0
    ) -> np.ndarray: ...

    def render(
        self, y: np.ndarray, *, sr: int, time_ratio: float = 1.0, semitones: float = 0.0,
        notes: tuple[Note, ...] | None = None, mode: str = "expressive",
    ) -> Voicing: ...


@runtime_checkable
class InstrumentKind(Protocol):
    """A kind of instrument (a synthesis method), registered in :data:`covermill.instruments.KINDS`.

    ``name``: the kind (``parametric``, ``ddsp``, ``midi``, ``drums``). ``field``: the recipe's
    ``revoice`` field that selects it: ``"instrument"`` for a kind whose instruments have names
    (then ``names()``, ``offers()`` and ``label()`` say which; among such kinds the lowest
    ``priority`` wins a name two offer), or a field of its own (``"midi_program"``) whose value it
    takes. ``build(value, *, instruments_dir=None, **params)`` returns an :class:`Instrument` (it
    stores parameters only: nothing heavy is imported or loaded until it plays); ``value`` is the
    name or the field's value, ``instruments_dir`` the user's instruments folder (``None``: the
    default). ``example(folder)`` is a value that builds a working instrument of this kind, for the
    conformance suite (``tests/test_backends.py``); it may write one into the scratch instruments
    folder ``folder`` (a tiny untrained model, say). Registering a kind imports no backend.
    """

    name: str
    field: str
    priority: int

    def names(self, instruments_dir=None) -> dict[str, str]: ...

    def offers(self, name: str, instruments_dir=None) -> bool: ...

    def label(self, name: str, instruments_dir=None) -> str: ...

    def build(self, value, *, instruments_dir=None, **params) -> Instrument: ...

    def example(self, folder) -> object: ...
