"""Results one render can hand to the next in the same process (``covermill preview``): a
re-render after an edit recomputes only what the edit changed.

A :class:`Reuse` remembers re-voiced stems (by the stem's audio, its ``revoice`` settings, the
tempo ratio, key and the notes it plays), generated parts (by the part's style settings and the
cover's lead sheet) and the stretched kept stems (by their audio, their mix settings, the tempo
ratio, key and quality). Mix settings that are applied after those (gain, pan and effects of
re-voiced stems and parts, buses, master) cost only the mix. Separation is reused through the
stem cache, the analysis of the original through the analysis memo (:mod:`covermill.memo`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from ..memo import ContentMemo

_MIX_FIELDS = {"gain_db", "pan", "effects", "sends", "solo"}


def settings_key(model: Any, *, drop: set[str] = frozenset()) -> str:
    """A pydantic model's settings as a stable string (``drop``: fields that do not matter here)."""
    data = model.model_dump(mode="json") if model is not None else None
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k not in drop}
    return json.dumps(data, sort_keys=True, default=str)


class Reuse:
    """Remembered results by key; ``get(kind, key_parts, compute)``. Up to ``maxsize`` entries."""

    def __init__(self, maxsize: int = 64) -> None:
        self._memo = ContentMemo(maxsize=maxsize)
        self.hits: dict[str, int] = {}
        self.misses: dict[str, int] = {}

    @staticmethod
    def audio_key(y: np.ndarray) -> tuple:
        return ContentMemo.key(np.asarray(y))

    def get(self, kind: str, key: tuple, compute: Callable[[], Any]) -> Any:
        computed = []

        def run():
            computed.append(True)
            return compute()

        value = self._memo.get((kind, *key), run)
        counter = self.misses if computed else self.hits
        counter[kind] = counter.get(kind, 0) + 1
        return value

    def reset_counts(self) -> None:
        self.hits.clear()
        self.misses.clear()


MIX_FIELDS = frozenset(_MIX_FIELDS)
