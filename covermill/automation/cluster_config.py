"""``covermill batch --cluster CONFIG.yaml``: the cluster a batch runs on, as a small YAML file.

One file names the kind of cluster and its settings (``docs/cluster.md`` has one per kind)::

    kind: slurm                 # scheduler | slurm | kubernetes
    workers: 8                  # SLURM jobs / Kubernetes worker pods to start
    env:                        # plain settings for every worker (never credentials)
      COVERMILL_FETCH_MODELS: "1"
    options:                    # passed as they are to dask-jobqueue's SLURMCluster / KubeCluster
      queue: cpu
      cores: 2
      memory: 8GB
      walltime: "04:00:00"

``kind: scheduler`` connects to a running scheduler (``address: tcp://host:8786``), like
``--scheduler``. ``slurm`` starts a ``dask_jobqueue.SLURMCluster`` (its scheduler runs in this
process, its workers are SLURM jobs) and ``kubernetes`` a ``dask_kubernetes.operator.KubeCluster``;
both packages are optional (``pip install 'covermill[cluster]'`` for dask-jobqueue; dask-kubernetes
as its own docs say) and imported only here. Each worker runs one render at a time (one thread,
one process per job), and the scheduler allows :data:`~.batch_cluster.WORKER_DEATH_RETRIES`
retries after a worker death and queues renders instead of handing a worker several
(:func:`scheduler_env`).

Credentials are never in this file: an ``env`` name that looks like a secret (``*KEY*``,
``*SECRET*``, ``*TOKEN*``, ``*PASSWORD*``, ``*CREDENTIAL*``, ``*SESSION*``) is refused. Workers get their object
storage credentials from their own environment (SLURM jobs inherit the submitting shell's;
Kubernetes pods get them from a Secret), as ``docs/cluster.md`` shows. The file is read with
:mod:`covermill.yamlsafe` (SafeLoader, size limits); unknown keys are refused with ``file:line``.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import BackendUnavailableError, ParameterError
from ..yamlsafe import line_map, load_yaml_file
from .batch_cluster import WORKER_DEATH_RETRIES

__all__ = ["ClusterConfig", "load_cluster_config", "make_cluster", "scheduler_env", "start_cluster", "worker_command"]

_SECRET = re.compile(r"KEY|SECRET|TOKEN|PASSW|CREDENTIAL|SESSION", re.IGNORECASE)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ClusterConfig(BaseModel):
    """A validated ``--cluster`` file (see module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["scheduler", "slurm", "kubernetes"]
    address: str | None = None
    workers: int = Field(default=1, ge=0, le=10_000)
    env: dict[str, str] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)


def scheduler_env() -> dict[str, str]:
    """Dask settings a batch's scheduler needs: at most :data:`WORKER_DEATH_RETRIES` retries
    after a worker death, and no render queued on a busy worker (a worker that dies then takes
    only the song it was rendering with it)."""
    return {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": str(WORKER_DEATH_RETRIES),
            "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0"}


def worker_command(address: str, *, memory_limit: str | None = None, name: str | None = None) -> list[str]:
    """The command that starts one covermill worker for the scheduler at ``address``: one
    process, one thread (a render uses its cores itself), no dashboard."""
    cmd = ["dask", "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard"]
    if memory_limit:
        cmd += ["--memory-limit", memory_limit]
    if name:
        cmd += ["--name", name]
    return cmd


def load_cluster_config(path: str | os.PathLike) -> ClusterConfig:
    """Read and validate a ``--cluster`` file; every problem is one line ``file:line: ...``."""
    path = Path(path)
    data, node = load_yaml_file(path, ParameterError, "cluster file")
    if not isinstance(data, dict):
        raise ParameterError(f"{path}:1: a cluster file is a mapping with 'kind' (scheduler, slurm, kubernetes); "
                             "see docs/cluster.md")
    lines = line_map(node) if node is not None else {}
    try:
        config = ClusterConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        line = next((lines[loc[:i]] for i in range(len(loc), 0, -1) if loc[:i] in lines), "?")
        where = ".".join(str(p) for p in loc) or "(top)"
        raise ParameterError(f"{path}:{line}: {where}: {err['msg']} (got {err.get('input')!r:.60}); "
                             "see docs/cluster.md") from None
    for name in config.env:
        line = lines.get(("env", name), "?")
        if not _ENV_NAME.match(name):
            raise ParameterError(f"{path}:{line}: env: {name!r} is not an environment variable name")
        if _SECRET.search(name):
            raise ParameterError(f"{path}:{line}: env: {name} looks like a credential; a cluster file never holds "
                                 "credentials: give them to the workers through their environment (docs/cluster.md)")
    if config.kind == "scheduler" and not config.address:
        raise ParameterError(f"{path}:{lines.get(('kind',), '?')}: kind scheduler needs 'address: tcp://HOST:PORT'")
    if config.kind != "scheduler" and config.address:
        raise ParameterError(f"{path}:{lines.get(('address',), '?')}: 'address' is only for kind scheduler")
    return config


def _slurm(config: ClusterConfig):
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        raise BackendUnavailableError("kind slurm needs dask-jobqueue: pip install 'covermill[cluster]'") from None
    opts = dict(config.options)
    prologue = [f"export {k}={_shell_quote(v)}" for k, v in config.env.items()]
    opts["job_script_prologue"] = [*opts.get("job_script_prologue", []), *prologue]
    opts.setdefault("processes", 1)  # one worker process per job ...
    opts.setdefault("cores", 1)  # ... with one thread; --nthreads follows cores / processes
    return SLURMCluster(**opts)


def _kubernetes(config: ClusterConfig):
    try:
        from dask_kubernetes.operator import KubeCluster
    except ImportError:
        raise BackendUnavailableError("kind kubernetes needs dask-kubernetes: pip install dask-kubernetes "
                                      "(and a cluster with its operator installed)") from None
    opts = dict(config.options)
    opts["env"] = {**scheduler_env(), **opts.get("env", {}), **config.env}
    opts.setdefault("n_workers", config.workers)
    # dask-kubernetes splits it on spaces and appends --name and its dashboard options
    opts.setdefault("worker_command", "dask worker --nthreads 1")
    return KubeCluster(**opts)


def _shell_quote(value: str) -> str:
    import shlex

    return shlex.quote(value)


def make_cluster(config: ClusterConfig):
    """The dask-jobqueue / dask-kubernetes cluster object of a ``slurm`` / ``kubernetes`` config,
    its scheduler configured by :func:`scheduler_env`; no worker is started yet (``scale``)."""
    import dask

    if config.kind == "scheduler":
        raise ParameterError("kind scheduler starts nothing: connect to its address")
    with dask.config.set({"distributed.scheduler.allowed-failures": WORKER_DEATH_RETRIES,
                          "distributed.scheduler.worker-saturation": 1.0}):
        try:
            return _slurm(config) if config.kind == "slurm" else _kubernetes(config)
        except (TypeError, ValueError) as exc:  # an option the cluster class does not take, a bad value
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ParameterError(f"cluster options for kind {config.kind}: {first}; see docs/cluster.md") from None


@contextlib.contextmanager
def start_cluster(config: ClusterConfig) -> Iterator[str]:
    """Start the cluster ``config`` describes (``scheduler``: nothing to start); yield the
    scheduler address for :func:`covermill.automation.batch.run_batch` (``scheduler=``), and
    close what was started on leaving."""
    if config.kind == "scheduler":
        yield str(config.address)
        return
    cluster = make_cluster(config)
    try:
        if config.kind == "slurm" and config.workers:
            cluster.scale(jobs=config.workers)
        yield cluster.scheduler_address
    finally:
        cluster.close()
