"""The instrument protocol every timbre-transfer backend implements."""

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
    """

    name: str

    def revoice(
        self, y: np.ndarray, *, sr: int, time_ratio: float = 1.0, semitones: float = 0.0
    ) -> np.ndarray: ...

    def render(
        self, y: np.ndarray, *, sr: int, time_ratio: float = 1.0, semitones: float = 0.0,
        notes: tuple[Note, ...] | None = None, mode: str = "expressive",
    ) -> Voicing: ...
