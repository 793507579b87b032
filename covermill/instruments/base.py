"""The instrument protocol every timbre-transfer backend implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Instrument(Protocol):
    """Re-voice a (mostly monophonic) stem as this instrument.

    ``revoice(y, sr=sr, time_ratio=r, semitones=s)`` takes float32 ``(channels, n)``
    audio and returns mono float32 ``(1, m)`` at ``sr`` with ``m = round(n / r)``: the
    melody (f0) and dynamics (loudness) of ``y``, played ``r`` times faster
    (``r = cover_bpm / source_bpm``) and ``s`` semitones higher. Because the controls are
    time-scaled before synthesis, no audio is time-stretched.
    """

    name: str

    def revoice(
        self, y: np.ndarray, *, sr: int, time_ratio: float = 1.0, semitones: float = 0.0
    ) -> np.ndarray: ...
