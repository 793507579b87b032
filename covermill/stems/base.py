"""The separator protocol every backend implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from ..constants import STEM_NAMES

__all__ = ["Separator", "STEM_NAMES"]


@runtime_checkable
class Separator(Protocol):
    """Split a stereo mix into named stems.

    ``separate(y, sr=sr)`` takes float32 ``(channels, n)`` audio and returns a dict
    ``{stem_name: float32 (channels, n)}`` holding at least :data:`STEM_NAMES`; a backend
    may add more (e.g. ``guitar``, ``piano``). Constructors only store parameters;
    anything heavy (weights) loads on first use.
    """

    name: str

    def separate(self, y: np.ndarray, *, sr: int) -> dict[str, np.ndarray]: ...
