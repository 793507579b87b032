"""The stage runner: runs a render's stages in order, and side jobs in turn or side by side.

A :class:`Runner` times each stage (``seconds``, written to ``qa.json``), reports progress
through an optional callback (``{"stage", "done", "total", "state"}``) and owns the side
jobs' futures: domain functions stay synchronous, take arrays and return arrays; only the
render (:mod:`.pipeline`) submits jobs and waits for them.

``parallel=True`` runs side jobs on a small thread pool (numpy, Rubber Band, pedalboard and
the ONNX/torch runtimes release the GIL); ``parallel=False`` runs each job in the caller's
thread when its result is first asked for, so its time counts in the stage that waits for
it, as a render in turn would. Both give the same results (tested).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

ProgressCallback = Callable[[dict[str, Any]], None]


class _Deferred(Future):
    """A job of :class:`Inline`: it runs, in the caller's thread, when its result is first asked for."""

    def __init__(self, fn, args, kwargs) -> None:
        super().__init__()
        self._call = (fn, args, kwargs)

    def result(self, timeout=None):
        if self._call is not None:
            fn, args, kwargs = self._call
            self._call = None
            try:
                self.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # delivered below, as a pool would
                self.set_exception(exc)
        return super().result(timeout)


class Inline(Executor):
    """An executor whose jobs run in the caller's thread when their result is needed."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        return _Deferred(fn, args, kwargs)


def lower_priority() -> None:
    """Run the calling thread at a lower priority (Linux: per-thread nice), so that beside it a
    single-threaded long job (the Rubber Band stretch) keeps a whole core."""
    if sys.platform.startswith("linux"):
        tid = threading.get_native_id()
        try:
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + 5))
        except OSError:
            pass


def pool(workers: int, *, name: str, initializer: Callable[[], None] | None = None) -> Executor:
    """A thread pool of ``workers`` threads, or :class:`Inline` for one worker."""
    if workers > 1:
        return ThreadPoolExecutor(workers, thread_name_prefix=name, initializer=initializer)
    return Inline()


class Runner:
    """Stages in order (:meth:`stage`), side jobs beside them (:meth:`submit`).

    Use as a context manager: on leaving, pending side jobs are waited for (or cancelled
    when the render failed)."""

    def __init__(self, stages: tuple[str, ...], *, progress: ProgressCallback | None = None, parallel: bool = True,
                 workers: int = 3) -> None:
        self.progress = progress
        self.total = len(stages)
        self.parallel = parallel
        self.seconds: dict[str, float] = {}
        self._done = 0
        self._pool: Executor = (ThreadPoolExecutor(max_workers=workers, thread_name_prefix="covermill-render")
                                if parallel else Inline())

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._pool.shutdown(wait=True, cancel_futures=exc_type is not None)
        return False

    def submit(self, fn: Callable, /, *args, **kwargs) -> Future:
        """Run ``fn(*args, **kwargs)`` beside the stages; its future's ``result()`` waits for it."""
        return self._pool.submit(fn, *args, **kwargs)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as stage ``name`` and report its start and end."""
        t0 = time.perf_counter()
        if self.progress:
            self.progress({"stage": name, "done": self._done, "total": self.total, "state": "start"})
        ok = False
        try:
            yield
            ok = True
        finally:
            self.seconds[name] = round(time.perf_counter() - t0, 3)
            self._done += 1
            if ok and self.progress:
                self.progress({"stage": name, "done": self._done, "total": self.total, "state": "end"})
