"""Results remembered by the content of an array: the same audio is analysed once per process.

Shared lower layer: the analysis memo (beats, chroma) and the stem-controls memo (pitch and
loudness of a stem, computed once for the lead sheet and the re-voicing of that stem) use it.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np


class ContentMemo:
    """A small thread-safe LRU of results keyed by an array's content (blake2b of its bytes).

    A key being computed holds a future: a second caller waits for the first one's result.
    """

    def __init__(self, maxsize: int = 6) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[tuple, Future] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(a: np.ndarray, *extra) -> tuple:
        a = np.ascontiguousarray(a)
        return (hashlib.blake2b(a.view(np.uint8), digest_size=16).hexdigest(), a.shape, str(a.dtype), *extra)

    def get(self, key: tuple, compute: Callable[[], object]):
        with self._lock:
            future = self._items.get(key)
            owner = future is None
            if owner:
                future = self._items[key] = Future()
                while len(self._items) > self.maxsize:
                    self._items.popitem(last=False)
            else:
                self._items.move_to_end(key)
        if owner:
            try:
                future.set_result(compute())
            except BaseException as exc:
                with self._lock:
                    if self._items.get(key) is future:
                        del self._items[key]  # a failure is not remembered
                future.set_exception(exc)
        return future.result()

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
