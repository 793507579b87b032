"""The Dask cluster a batch runs on, and what it may do.

A local cluster (the default) is a :class:`distributed.LocalCluster` whose scheduler, workers
and client talk over TLS with a key and certificate made for this run
(:meth:`distributed.security.Security.temporary`) and verified on both sides: another user
of the machine can open the port but cannot run anything on it. ``--scheduler ADDRESS``
connects to a cluster someone else started: every worker of that cluster runs the renders
with the covermill installed there and can read the songs and write ``OUT``, so use only a
cluster you trust as you trust your own account (``docs/security.md``).

A task whose worker dies (out of memory, killed) is run again on any worker, at most
:data:`WORKER_DEATH_RETRIES` times; the scheduler then gives up on it with
:class:`distributed.KilledWorker`, which the batch records as a failure of that song. A
scheduler you start yourself reads this limit from its own configuration: start it with
``DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=2`` (``docs/cluster.md``). Which workers may
render, and how often a task was run again: :mod:`covermill.automation.batch_build`.
"""

from __future__ import annotations

import logging

from ..errors import BackendUnavailableError, ParameterError

#: The module each local worker preloads: it warms the worker up while the client submits work.
WARM_UP = "covermill.automation.warmup"

#: The module the forkserver of local workers imports first (see :func:`_fork_warm_workers`).
FORK_WARM_UP = "covermill.automation.forkserver_warm"

#: Times a task is run again after its worker died (so a song may kill 3 workers at most).
WORKER_DEATH_RETRIES = 2


def _fork_warm_workers() -> dict:
    """Dask settings that start local workers from a forkserver preloaded with
    :mod:`.forkserver_warm` (on Linux; elsewhere none: macOS frameworks are not safe to fork once
    loaded): the warm-up is paid once, and a worker's first render starts at once instead of after
    importing the render. (distributed's forkserver set-up imports its optional packages here.)"""
    import multiprocessing
    import sys

    if not sys.platform.startswith("linux") or "forkserver" not in multiprocessing.get_all_start_methods():
        return {}
    import dask
    from distributed.utils import get_mp_context

    settings = {"distributed.worker.multiprocessing-method": "forkserver"}
    with dask.config.set(settings):
        ctx = get_mp_context()  # distributed's own forkserver set-up, once per process
    ctx.set_forkserver_preload(["distributed", FORK_WARM_UP])  # (no effect on a forkserver already running)
    return settings


def make_client(*, workers: int, memory_limit: str | None, scheduler: str | None):
    """``(client, cluster)``: a client of ``scheduler`` (cluster ``None``), or of a new private
    local cluster of ``workers`` single-threaded processes that warm up as they start
    (:mod:`covermill.automation.warmup`; a remote cluster's workers can preload it too:
    ``dask worker --preload covermill.automation.warmup``)."""
    try:
        import dask
        from distributed import Client, LocalCluster
        from distributed.security import Security
    except ImportError:  # pragma: no cover - distributed is a dependency
        raise BackendUnavailableError("batch rendering needs dask's distributed: pip install 'dask[distributed]'") from None
    logging.getLogger("distributed").setLevel(logging.ERROR)  # its INFO chatter is not for our users
    if scheduler:
        try:
            return Client(scheduler, timeout="10s"), None
        except (OSError, TypeError, ValueError) as exc:
            raise ParameterError(f"cannot reach the Dask scheduler at {scheduler} ({exc}); start it with "
                                 "`dask scheduler` (and pass its TLS settings through Dask's configuration)") from None
    try:
        security = Security.temporary()
    except ImportError:
        raise BackendUnavailableError("a private local cluster needs TLS certificates: pip install cryptography") from None
    # a worker holds one task per thread, no queue: a worker that dies takes down only the song
    # it was rendering, so only that song's retry count goes up
    with dask.config.set({"distributed.scheduler.allowed-failures": WORKER_DEATH_RETRIES,
                          "distributed.scheduler.worker-saturation": 1.0, **_fork_warm_workers()}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               memory_limit=memory_limit or "auto", dashboard_address=None,
                               silence_logs=logging.ERROR, security=security, protocol="tls://",
                               host="127.0.0.1", preload=[WARM_UP])
    return Client(cluster, security=security), cluster


def death_reason(exc: BaseException) -> str | None:
    """The record's error for a task the cluster gave up on, or ``None`` for other errors."""
    if type(exc).__name__ == "KilledWorker":
        return (f"the worker rendering it died {WORKER_DEATH_RETRIES + 1} times (out of memory? raise "
                "--memory-limit or use fewer --workers)")
    return None

