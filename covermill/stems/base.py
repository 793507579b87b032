"""The separator protocol every backend implements."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol, runtime_checkable

import numpy as np

from ..constants import STEM_NAMES

__all__ = ["PooledSeparator", "Separator", "STEM_NAMES"]


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


@runtime_checkable
class PooledSeparator(Separator, Protocol):
    """The optional capability of a separator that pools many songs' segments into shared model
    calls (Demucs): ``covermill batch --separate-first`` uses it, through these methods only.

    ``load()`` loads the weights (raising the one-line error when they are missing);
    ``runs_on()`` is the device (``"cpu"``, ``"cuda"``, ...); ``segments_per_call()`` the batch of
    segments one call takes; ``iter_separate_many(items)`` yields each ``(y, sr)``'s stems in order;
    ``release()`` drops the model and its device memory.
    """

    def load(self) -> object: ...

    def runs_on(self) -> str: ...

    def segments_per_call(self) -> int: ...

    def iter_separate_many(self, items: Iterable[tuple[np.ndarray, int]]) -> Iterator[dict[str, np.ndarray]]: ...

    def release(self) -> None: ...
