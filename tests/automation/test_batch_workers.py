"""Issue 20, part 3: separate `dask worker` processes, a worker killed mid-render, a worker of another build.

Every process here is real: a `dask scheduler` and `dask worker` processes started by the test on
TCP loopback, each in its own working folder (not the client's). A worker of "another build" runs
a copy of the covermill package whose generated ``_version.py`` names another version, which is
what an out-of-date worker image looks like.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO, song, write

from covermill.automation.batch import plan, read_manifest, run_batch, run_job
from covermill.automation.batch_build import run_checked
from covermill.automation.cluster_config import scheduler_env, worker_command
from covermill.buildinfo import version
from covermill.errors import ParameterError

FAST = "name: fast\nstems:\n  drums: {gain_db: -6}\n"
DASK = Path(sys.executable).with_name("dask")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A scheduler and its workers as separate processes, started as docs/cluster.md starts them (the
    scheduler with :func:`scheduler_env`, each worker with :func:`worker_command`), each process in its
    own working folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.address = f"tcp://127.0.0.1:{_free_port()}"
        self.procs: dict[str, subprocess.Popen] = {}
        env = {**os.environ, "PYTHONPATH": str(REPO), **scheduler_env()}
        self._start("scheduler", [str(DASK), "scheduler", "--host", "127.0.0.1", "--port",
                                  self.address.rsplit(":", 1)[1], "--no-dashboard"], env)

    def _start(self, name: str, cmd: list[str], env: dict) -> None:
        cwd = self.root / name
        cwd.mkdir(parents=True)
        log = open(cwd / "log.txt", "wb")  # noqa: SIM115 - closed with the process
        self.procs[name] = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=log, start_new_session=True)

    def worker(self, name: str, pythonpath: Path = REPO) -> None:
        env = {**os.environ, "PYTHONPATH": str(pythonpath)}
        cmd = worker_command(self.address, name=name)  # what docs/cluster.md starts on each machine
        self._start(name, [str(DASK), *cmd[1:], "--no-nanny"], env)

    def client(self, n_workers: int):
        from distributed import Client

        client = Client(self.address, timeout="60s")
        client.wait_for_workers(n_workers, timeout=300)  # a loaded machine imports slowly
        return client

    def kill(self, name: str) -> None:
        os.kill(self.procs[name].pid, signal.SIGKILL)

    def close(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:  # a busy worker may take longer to close: not under test
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path / "cluster")
    yield c
    c.close()


@pytest.fixture
def songs(tmp_path):
    folder = tmp_path / "songs"
    folder.mkdir()
    for i in range(4):
        write(folder / f"s{i}.wav", song(bars=4, seed=i))
    recipe = tmp_path / "fast.yaml"
    recipe.write_text(FAST)
    return folder, recipe


def other_build(folder: Path, version_text: str) -> Path:
    """A copy of the covermill package (no .git beside it) whose build says ``version_text``."""
    shutil.copytree(REPO / "covermill", folder / "covermill", ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "covermill" / "_version.py").write_text(f"__version__ = version = {version_text!r}\n")
    return folder


def test_a_worker_of_another_build_is_refused_in_one_line(cluster, songs, tmp_path):
    folder, recipe = songs
    cluster.worker("old", other_build(tmp_path / "old_image", "0.0.1+old"))
    client = cluster.client(1)
    ours = version()
    assert ours != "0.0.1+old"
    with pytest.raises(ParameterError) as info:
        run_batch(folder, [str(recipe)], tmp_path / "out", scheduler=cluster.address, separator="dsp")
    line = str(info.value)
    assert "\n" not in line and "it runs covermill 0.0.1+old, this client runs covermill " + ours in line
    assert not (tmp_path / "out" / "s0").exists()  # refused before any render
    # a worker that joins after the check: the render task itself refuses to run there
    (job,) = [j for j in plan(folder, [str(recipe)], tmp_path / "out") if j.song.endswith("s0.wav")]
    rec = client.submit(run_checked, run_job, ours, job, "dsp", str(tmp_path / "cache"), False, False).result()
    assert rec["status"] == "failed" and "0.0.1+old" in rec["error"] and ours in rec["error"]
    assert not (tmp_path / "out" / "s0").exists()
    # replaced by a worker of this build: the batch runs
    cluster.kill("old")
    cluster.worker("new")
    client.wait_for_workers(1, timeout=300)
    client.close()
    summary = run_batch(folder, [str(recipe)], tmp_path / "out", scheduler=cluster.address, separator="dsp")
    assert (summary.ok, summary.failed) == (4, 0)


def test_a_worker_killed_mid_render_is_replaced_and_the_song_retried(cluster, songs, tmp_path):
    folder, recipe = songs
    cluster.worker("w1")
    cluster.worker("w2")
    client = cluster.client(2)
    out = tmp_path / "out"
    result: dict = {}

    def batch():
        try:
            result["summary"] = run_batch(folder, [str(recipe)], out, scheduler=cluster.address, separator="dsp")
        except BaseException as exc:  # reported below
            result["error"] = exc

    thread = threading.Thread(target=batch)
    thread.start()
    killed_song, seen_staging = None, None
    deadline = time.time() + 300
    while killed_song is None and time.time() < deadline and thread.is_alive():
        workers = client.scheduler_info(n_workers=-1)["workers"]
        for addr, keys in client.processing().items():
            for key in keys:
                name = str(key).split("-", 2)[2]  # render-<i>-<song stem>
                staging = list((out / name).glob(".fast.staging-*"))
                if staging:  # the render has begun writing its staging folder: it is mid-render
                    cluster.kill(workers[addr]["name"])
                    killed_song, seen_staging = f"{name}.wav", staging[0]
                    break
            if killed_song:
                break
        time.sleep(0.05)
    thread.join(timeout=600)
    client.close()
    assert killed_song, "no render was caught in the middle"
    assert "error" not in result, result.get("error")
    summary = result["summary"]
    assert (summary.total, summary.ok, summary.failed) == (4, 4, 0)
    by_name = {Path(k[0]).name: r for k, r in read_manifest(out).items()}
    assert by_name[killed_song]["retries"] == 1
    assert all(r["retries"] == 0 for n, r in by_name.items() if n != killed_song)
    for rec in by_name.values():
        assert (Path(rec["output"]) / "qa.json").is_file() and (Path(rec["output"]) / "cover.wav").is_file()
    # the killed render's half-written staging folder never became an output, and is gone
    assert not seen_staging.exists()
    assert not [p for p in out.rglob("*") if ".staging-" in p.name or p.name.endswith(".part")]
