"""Which workers may render a batch, and how often a render was run again.

Every render must run the client's covermill build (:func:`covermill.buildinfo.version`, which
names the git commit): a worker image that is out of date renders differently, or fails in ways
that are hard to trace. :func:`admit_workers` asks every worker of the cluster for its build
before any task is sent and refuses the batch, in one line naming the worker and both builds,
when one differs. A worker that joins later (an adaptive SLURM or Kubernetes cluster) is checked
by the task itself (:func:`run_checked`): a render sent to a worker of another build is not
run, and its song is recorded as failed with the same line (``--retry-failed`` renders it again).

No Dask restriction (``resources=``, ``workers=``) does this job: restricted tasks are not
queued on the scheduler, so every worker would hold several renders, and a worker that dies
would count as a death of each of them (see :mod:`.batch_cluster`).

:class:`RenderStarts` counts how many times each render started, so the manifest's ``retries``
says which songs were run again because their worker died mid-render.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..errors import ParameterError

__all__ = ["RenderStarts", "admit_workers", "refusal", "run_checked", "worker_build"]

log = logging.getLogger(__name__)


def worker_build() -> str:
    """This process's covermill build (run on each worker by :func:`admit_workers`)."""
    from ..buildinfo import version

    return version()


def refusal(worker: str, theirs: object, ours: str) -> str:
    """The one line naming a refused worker, its build and the client's."""
    return (f"worker {worker} refused: it runs covermill {theirs}, this client runs covermill {ours}; "
            "install the same covermill build on the workers (docs/cluster.md)")


def admit_workers(client, build: str | None = None) -> str:
    """Check that every worker of ``client``'s cluster runs covermill ``build`` (default: this
    process's); return ``build``. Raises :class:`~covermill.errors.ParameterError` naming the
    first worker that runs another build (or none that can be imported); a cluster with no
    worker yet passes (its workers are checked by :func:`run_checked`)."""
    build = build or worker_build()
    found = client.run(worker_build, on_error="return")
    refused = []
    for addr, theirs in sorted(found.items()):
        if isinstance(theirs, BaseException):  # no covermill there, or one without build identity
            first = str(theirs).splitlines()[0] if str(theirs) else ""
            theirs = f"(unknown: {type(theirs).__name__}: {first})"
        if theirs != build:
            refused.append(refusal(addr, theirs, build))
    if refused:
        more = f" (and {len(refused) - 1} more worker(s))" if len(refused) > 1 else ""
        raise ParameterError(refused[0] + more)
    return build


def run_checked(task: Callable[..., dict[str, Any]], build: str | None, job, *args: Any) -> dict[str, Any]:
    """Run ``task(job, *args)`` if this worker runs covermill ``build`` (``None``: any); else a
    failed record whose error is the one-line refusal."""
    mine = worker_build() if build is not None else None
    try:
        from distributed import get_worker

        worker = get_worker()
    except ValueError:  # not on a worker
        worker = None
    if mine == build:
        if worker is not None:
            worker.log_event(RenderStarts.TOPIC, {"key": str(worker.get_current_task())})
        return task(job, *args)
    where = worker.address if worker is not None else "(this process)"
    log.error(refusal(where, mine, build))
    return {"song": job.song, "recipe": job.recipe, "output": job.out_dir, "status": "failed",
            "error": refusal(where, mine, build), "seconds": 0.0}


class RenderStarts:
    """Counts, on the client, how many times each render task started on a worker.

    :func:`run_checked` logs an event on topic :attr:`TOPIC` when the render starts; the client
    subscribes to it. A render that started more than once was run again because its worker died
    under it (a task that was only assigned to the dead worker, not started, is not counted)."""

    TOPIC = "covermill-render-start"

    def __init__(self, client) -> None:
        from collections import Counter

        self.counts: Counter[str] = Counter()
        client.subscribe_topic(self.TOPIC, self._on_event)

    def _on_event(self, event) -> None:
        _timestamp, msg = event
        self.counts[str(msg.get("key"))] += 1

    def retries(self, key) -> int:
        """Times the render ``key`` was started again (0 when it ran once or is unknown)."""
        return max(self.counts.get(str(key), 1) - 1, 0)
