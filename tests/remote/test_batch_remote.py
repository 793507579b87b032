"""Batch, render and stems with songs, covers and the stem cache on S3 (moto) and SFTP (OpenSSH) on
loopback; the batch's workers are separate `dask worker` processes whose working folder is not the
client's and which share no folder with it (issue 20)."""

import json
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import fsspec
import pytest
from click.testing import CliRunner
from conftest import song, write

from covermill.automation.batch import Job, plan, run_batch, run_job
from covermill.cli import main

from .conftest import SECRET, CuttingProxy

FAST = "name: fast\nstems:\n  drums: {gain_db: -6}\n"  # no re-voicing, no stretch: quick renders
REPO = Path(__file__).resolve().parents[2]


def vanish_then_render(job, *args):
    """The batch task of these tests: a song named `vanish` is deleted after planning, before its render."""
    if "vanish" in job.song:
        fs, path = fsspec.core.url_to_fs(job.song)
        fs.rm_file(path)
    return run_job(job, *args)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def workers(s3_server, sftp_server, tmp_path_factory):
    """`dask scheduler` + 2 `dask worker` processes on loopback, each in its own working folder and stem
    cache, with the storage settings a cluster's workers would get: from their environment."""
    port = _free_port()
    dask = Path(sys.executable).with_name("dask")
    base = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}", "AWS_ENDPOINT_URL": s3_server.endpoint,
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true", "FSSPEC_SFTP": json.dumps(sftp_server.options)}
    procs = [subprocess.Popen([str(dask), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=base, start_new_session=True)]
    homes = []
    try:
        for i in range(2):
            home = tmp_path_factory.mktemp(f"worker{i}")
            homes.append(home)
            procs.append(subprocess.Popen(
                [str(dask), "worker", f"tcp://127.0.0.1:{port}", "--nthreads", "1", "--no-dashboard"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=home, start_new_session=True,
                env={**base, "COVERMILL_CACHE_DIR": str(home / "cache"), "TMPDIR": str(home)}))
        from distributed import Client

        with Client(f"tcp://127.0.0.1:{port}", timeout="60s") as client:
            client.wait_for_workers(2, timeout=300)
        yield f"tcp://127.0.0.1:{port}", homes
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            p.wait(timeout=30)


def _songs(tmp_path: Path, names) -> Path:
    local = tmp_path / "local_songs"
    for i, name in enumerate(names):
        (local / name).parent.mkdir(parents=True, exist_ok=True)
        write(local / name, song(bars=3, seed=i))
    return local


def _upload(local: Path, fs, root: str) -> None:
    for p in sorted(local.rglob("*")):
        if p.is_file():
            fs.makedirs(f"{root}/{p.parent.relative_to(local).as_posix()}".rstrip("/."), exist_ok=True)
            fs.put_file(str(p), f"{root}/{p.relative_to(local).as_posix()}")


def test_batch_on_s3_with_separate_workers_then_a_rerun_skips_done_songs(s3, workers, tmp_path):
    scheduler, homes = workers
    bucket, fs = s3.bucket(), fsspec.filesystem("s3")
    _upload(_songs(tmp_path, ["a.flac", "album/b b.flac", "vanish.flac"]), fs, f"{bucket}/songs")
    recipe = _recipe(tmp_path)
    songs, out, cache = f"s3://{bucket}/songs", f"s3://{bucket}/covers", f"s3://{bucket}/stems"
    summary = run_batch(songs, [str(recipe)], out, scheduler=scheduler, separator="dsp", cache_dir=cache,
                        task=vanish_then_render)
    by_name = {r["song"].rsplit("/", 1)[1]: r for r in summary.records}
    assert (summary.ok, summary.failed) == (2, 1), summary.records
    assert by_name["vanish.flac"]["error"] == (f"s3://{bucket}/songs/vanish.flac: downloading the song: "
                                               "no such file or folder")
    assert by_name["a.flac"]["output"] == f"s3://{bucket}/covers/a/fast"
    for folder in ("covers/a/fast", "covers/album/b b/fast"):
        assert {"cover.wav", "qa.json", "report.html", "recipe.yaml"} <= {p.rsplit("/", 1)[1] for p in fs.ls(f"{bucket}/{folder}")}
    qa = json.loads(fs.cat_file(f"{bucket}/covers/a/fast/qa.json"))
    assert qa["song"] == f"s3://{bucket}/songs/a.flac"
    assert len([p for p in fs.find(f"{bucket}/stems") if p.endswith(".npz")]) == 2  # the shared stem cache
    assert fs.exists(f"{bucket}/covers/manifest.jsonl") and fs.exists(f"{bucket}/covers/index.html")
    assert Path(summary.manifest).is_file() and not Path(summary.manifest).is_relative_to(tmp_path)
    assert SECRET not in Path(summary.manifest).read_text() + fs.cat_file(f"{bucket}/covers/index.html").decode()
    for home in homes:  # the workers' scratch folders are gone: nothing of a song stays on a worker
        assert not list(home.glob("covermill-render-*"))
    # rerun (the vanished song is no longer listed): done songs are skipped; one whose qa.json is gone is redone
    again = run_batch(songs, [str(recipe)], out, scheduler=scheduler, separator="dsp", cache_dir=cache)
    assert (again.total, again.skipped, again.ok) == (2, 2, 2)
    fs.rm_file(f"{bucket}/covers/a/fast/qa.json")
    third = run_batch(songs, [str(recipe)], out, scheduler=scheduler, separator="dsp", cache_dir=cache)
    assert (third.skipped, third.ok) == (1, 2) and fs.exists(f"{bucket}/covers/a/fast/qa.json")


def test_batch_over_sftp_with_separate_workers(sftp, workers, tmp_path):
    scheduler, _ = workers
    root = sftp.root / tmp_path.name
    _upload(_songs(tmp_path, ["one.wav"]), fsspec.filesystem("sftp", host=sftp.host, port=sftp.port, username=sftp.user,
                                                            **sftp.options), str(root / "songs"))
    summary = run_batch(sftp.url(root / "songs"), [str(_recipe(tmp_path))],
                        sftp.url(root / "covers"), scheduler=scheduler, separator="dsp")
    assert summary.ok == 1, summary.records
    assert (root / "covers" / "one" / "fast" / "qa.json").is_file()  # the SFTP server's folder is this machine's
    assert (root / "covers" / "manifest.jsonl").is_file()
    assert not list((root / "covers" / "one" / "fast").glob(".*.part"))


def _recipe(tmp_path: Path) -> Path:
    recipe = tmp_path / "fast.yaml"
    recipe.write_text(FAST)
    return recipe


def test_bad_storage_is_one_line_per_song_in_the_record(s3, sftp, monkeypatch, tmp_path, caplog, capfd):
    import fsspec.config

    caplog.set_level(logging.INFO)
    bucket, fs = s3.bucket(), fsspec.filesystem("s3")
    _upload(_songs(tmp_path, ["a.flac"]), fs, f"{bucket}/songs")
    recipe = str(_recipe(tmp_path))
    (job,) = plan(f"s3://{bucket}/songs", [recipe], f"s3://{bucket}/covers")

    def record(out: str) -> dict:
        rec = run_job(Job(job.song, recipe, out), "dsp", None)
        assert rec["status"] == "failed" and "\n" not in rec["error"] and SECRET not in json.dumps(rec)
        return rec

    assert "the bucket 'no-such-bucket' does not exist" in record("s3://no-such-bucket/covers/a/fast")["error"]
    assert "permission denied" in record(sftp.url(sftp.root / "ro", readonly=True))["error"]
    host, port = s3.endpoint.removeprefix("http://").split(":")
    proxy = CuttingProxy((host, int(port)), cut_after=400_000)  # the song (~200 kB) gets through, cover.wav does not
    monkeypatch.setitem(fsspec.config.conf, "s3", {"client_kwargs": {"endpoint_url": f"http://127.0.0.1:{proxy.port}"},
                                                   "config_kwargs": {"retries": {"max_attempts": 1}}})
    try:
        assert "check the network" in record(job.out_dir)["error"]
    finally:
        proxy.close()
        monkeypatch.delitem(fsspec.config.conf, "s3")
    assert not fs.exists(f"{job.out_dir.removeprefix('s3://')}/qa.json")  # never taken as done
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    fsspec.get_filesystem_class("s3").clear_instance_cache()
    assert "no credentials for s3://" in record(job.out_dir)["error"]
    out, err = capfd.readouterr()
    assert SECRET not in out + err + caplog.text  # nor in any log line of these failures


def test_render_and_stems_commands_take_urls(s3, tmp_path):
    bucket, fs = s3.bucket(), fsspec.filesystem("s3")
    _upload(_songs(tmp_path, ["a.flac"]), fs, f"{bucket}/songs")
    result = CliRunner().invoke(main, ["render", f"s3://{bucket}/songs/a.flac", "-r", str(_recipe(tmp_path)),
                                       "-o", f"s3://{bucket}/covers/a", "--separator", "dsp", "-q",
                                       "--cache-dir", f"s3://{bucket}/stems"])
    assert result.exit_code == 0, result.output
    assert f"cover:   s3://{bucket}/covers/a/cover.wav" in result.output and fs.exists(f"{bucket}/covers/a/qa.json")
    result = CliRunner().invoke(main, ["stems", f"s3://{bucket}/songs/a.flac", "-o", f"s3://{bucket}/stems_out",
                                       "--separator", "dsp", "--cache-dir", f"s3://{bucket}/stems"])
    assert result.exit_code == 0, result.output
    assert "(from cache)" in result.output  # the render above put the stems into the shared cache
    assert sorted(p.rsplit("/", 1)[1] for p in fs.ls(f"{bucket}/stems_out")) == \
        ["bass.wav", "drums.wav", "other.wav", "vocals.wav"]
    local = tmp_path / "local_out"  # a remote song into a local OUT: qa.json names the URL, not a scratch copy
    result = CliRunner().invoke(main, ["render", f"s3://{bucket}/songs/a.flac", "-r", str(_recipe(tmp_path)),
                                       "-o", str(local), "--separator", "dsp", "-q", "--no-cache"])
    assert result.exit_code == 0, result.output
    assert json.loads((local / "qa.json").read_text())["song"] == f"s3://{bucket}/songs/a.flac"
