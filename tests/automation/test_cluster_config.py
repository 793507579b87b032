"""`covermill batch --cluster CONFIG.yaml` (docs/cluster.md): parsing, refusals, and the SLURM job's
worker command run here for real against the SLURMCluster's scheduler (no SLURM needed)."""

import os
import re
import shlex
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, song, write

from covermill.automation.cluster_config import load_cluster_config, make_cluster, scheduler_env, worker_command
from covermill.errors import BackendUnavailableError, ParameterError

SLURM = """\
kind: slurm
workers: 0
env:
  COVERMILL_FETCH_MODELS: "1"
  COVERMILL_MODELS_URL: https://models.example.org/demucs/
options:
  queue: cpu
  memory: 4GB
  walltime: "01:00:00"
"""


def test_a_slurm_file_is_read_and_validated(tmp_path):
    path = tmp_path / "slurm.yaml"
    path.write_text(SLURM)
    config = load_cluster_config(path)
    assert config.kind == "slurm" and config.workers == 0
    assert config.env["COVERMILL_FETCH_MODELS"] == "1" and config.options["memory"] == "4GB"


@pytest.mark.parametrize("text, message", [
    ("kind: slurm\nworkerz: 3\n", r":2: workerz: Extra inputs are not permitted"),
    ("kind: pbs\n", r":1: kind: Input should be 'scheduler', 'slurm' or 'kubernetes'"),
    ("kind: slurm\nworkers: -1\n", r":2: workers: Input should be greater than or equal to 0"),
    ("kind: scheduler\n", r":1: kind scheduler needs 'address"),
    ("kind: slurm\nenv:\n  AWS_SECRET_ACCESS_KEY: hunter2-secret\n", r":3: env: AWS_SECRET_ACCESS_KEY looks like a credential"),
    ("kind: slurm\nenv:\n  'A B': x\n", r":3: env: 'A B' is not an environment variable name"),
    ("!!python/object/apply:os.system ['true']\n", r":1: YAML tags are not allowed"),
    ("- kind: slurm\n", r":1: a cluster file is a mapping"),
])
def test_bad_files_are_one_line_with_file_and_line(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ParameterError, match=message) as info:
        load_cluster_config(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    assert "hunter2" not in str(info.value)  # a credential's value is never echoed


def test_kubernetes_without_its_package_names_what_to_install(tmp_path):
    pytest.importorskip("pydantic")
    try:
        import dask_kubernetes  # noqa: F401
        pytest.skip("dask-kubernetes is installed here")
    except ImportError:
        pass
    path = tmp_path / "k8s.yaml"
    path.write_text("kind: kubernetes\nworkers: 2\noptions:\n  name: covermill\n  image: ghcr.io/x/covermill:1\n")
    with pytest.raises(BackendUnavailableError, match="pip install dask-kubernetes"):
        make_cluster(load_cluster_config(path))


def test_worker_command_is_one_process_one_thread():
    cmd = worker_command("tcp://10.0.0.1:8786", memory_limit="8GB", name="w1")
    assert cmd[:3] == ["dask", "worker", "tcp://10.0.0.1:8786"]
    text = " ".join(cmd)
    assert "--nworkers 1" in text and "--nthreads 1" in text and "--memory-limit 8GB" in text
    assert scheduler_env()["DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES"] == "2"


def test_slurm_job_script_starts_a_worker_that_renders(tmp_path):
    """The job script dask-jobqueue would submit: its worker line, run here, joins and renders."""
    pytest.importorskip("dask_jobqueue")
    from covermill.automation.batch import run_batch

    path = tmp_path / "slurm.yaml"
    path.write_text(SLURM.replace("options:\n", "options:\n  interface: lo\n"))
    cluster = make_cluster(load_cluster_config(path))
    proc = None
    try:
        script = cluster.job_script()
        assert "#SBATCH -p cpu" in script and "#SBATCH -t 01:00:00" in script
        assert "export COVERMILL_FETCH_MODELS=1" in script
        assert "export COVERMILL_MODELS_URL=https://models.example.org/demucs/" in script
        worker_line = script.strip().splitlines()[-1]
        assert cluster.scheduler_address in worker_line and "--nthreads 1" in worker_line
        assert cluster.scheduler.allowed_failures == 2
        songs = tmp_path / "songs"
        songs.mkdir()
        for i in range(2):
            write(songs / f"s{i}.wav", song(bars=3, seed=i))
        recipe = tmp_path / "fast.yaml"
        recipe.write_text("name: fast\nstems:\n  drums: {gain_db: -6}\n")
        cwd = tmp_path / "job"
        cwd.mkdir()
        proc = subprocess.Popen(shlex.split(worker_line), cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO)},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        summary = run_batch(songs, [str(recipe)], tmp_path / "out", scheduler=cluster.scheduler_address,
                            separator="dsp")
        assert (summary.ok, summary.failed) == (2, 0)
        assert all(Path(r["output"], "qa.json").is_file() for r in summary.records)
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
        cluster.close()


def _doc_examples() -> dict[str, str]:
    text = (REPO / "docs" / "cluster.md").read_text()
    return {m.group(1) or "inline": m.group(2) for m in re.finditer(r"```yaml\n(?:# (\S+)\n)?(.*?)```", text, re.S)}


def test_the_examples_in_docs_cluster_md_are_valid(tmp_path):
    examples = _doc_examples()
    assert {"slurm.yaml", "k8s.yaml", "inline"} <= set(examples)
    kinds = {}
    for name, text in examples.items():
        path = tmp_path / name
        path.write_text(text)
        kinds[name] = load_cluster_config(path).kind
    assert kinds["slurm.yaml"] == "slurm" and kinds["k8s.yaml"] == "kubernetes"


def test_the_slurm_example_books_cpus_but_runs_one_render_per_job(tmp_path):
    pytest.importorskip("dask_jobqueue")
    text = _doc_examples()["slurm.yaml"].replace("interface: ib0", "interface: lo").replace("workers: 16", "workers: 0")
    path = tmp_path / "slurm.yaml"
    path.write_text(text)
    cluster = make_cluster(load_cluster_config(path))
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH --cpus-per-task=4" in script and "#SBATCH -A my-lab" in script
    assert "export COVERMILL_MODEL_DIR=/shared/models/demucs" in script
    worker = script.strip().splitlines()[-1]
    assert worker.startswith("/shared/venvs/covermill/bin/python -m distributed.cli.dask_worker")
    assert "--nthreads 1" in worker and "--nworkers" not in worker
