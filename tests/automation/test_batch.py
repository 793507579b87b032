"""Batch rendering on real Dask clusters: local, and scheduler/worker processes on loopback."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf
from conftest import song, write

from covermill.automation.batch import clean_stale, find_songs, read_manifest, run_batch

FAST = "name: fast\nstems:\n  drums: {gain_db: -6}\n"  # no re-voicing, no stretch: quick renders


@pytest.fixture
def folder(tmp_path):
    songs = tmp_path / "songs"
    (songs / "album").mkdir(parents=True)
    write(songs / "a.wav", song(bars=3, seed=1))
    write(songs / "album" / "b b.flac", song(bars=3, seed=2))
    (songs / "corrupt.wav").write_bytes(b"\x00garbage" * 500)
    (songs / "dead.mp3").symlink_to(tmp_path / "missing.mp3")
    (songs / "notes.txt").write_text("not a song")
    recipe = tmp_path / "fast.yaml"
    recipe.write_text(FAST)
    return songs, recipe


def test_find_songs_lists_audio_and_broken_links(folder):
    songs, _ = folder
    names = [p.name for p in find_songs(songs)]
    assert names == ["a.wav", "b b.flac", "corrupt.wav", "dead.mp3"]


def test_batch_goes_on_past_bad_songs_and_resumes(folder, tmp_path):
    songs, recipe = folder
    out = tmp_path / "out"
    events = []
    summary = run_batch(songs, [str(recipe)], out, workers=2, progress=events.append)
    assert (summary.total, summary.ok, summary.failed) == (4, 2, 2)
    records = read_manifest(out)
    by_name = {Path(k[0]).name: r for k, r in records.items()}
    assert by_name["corrupt.wav"]["status"] == "failed" and "cannot be decoded" in by_name["corrupt.wav"]["error"]
    assert by_name["dead.mp3"]["status"] == "failed" and "no such file" in by_name["dead.mp3"]["error"]
    ok_out = Path(by_name["a.wav"]["output"])
    assert ok_out == out / "a" / "fast" and (ok_out / "cover.wav").is_file()
    assert (out / "album" / "b b" / "fast" / "qa.json").is_file()
    assert events[-1]["done"] == 4 and events[-1]["failed"] == 2
    # rerun: nothing is redone, failures are skipped unless asked
    mtime = (ok_out / "cover.wav").stat().st_mtime_ns
    again = run_batch(songs, [str(recipe)], out, workers=1)
    assert again.skipped == 4 and (ok_out / "cover.wav").stat().st_mtime_ns == mtime
    retry = run_batch(songs, [str(recipe)], out, workers=1, retry_failed=True)
    assert retry.skipped == 2 and retry.failed == 2


def test_clean_stale_removes_half_written_files(tmp_path):
    (tmp_path / "x" / ".cover.staging-ab_c1234" / "stems").mkdir(parents=True)
    (tmp_path / "x" / ".cover.wav.abc_1234.wav.part").write_bytes(b"half")
    (tmp_path / "x" / "cover.wav").write_bytes(b"done")
    assert clean_stale(tmp_path) == 2
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["cover.wav"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_batch_on_a_separate_scheduler_and_worker(folder, tmp_path):
    """The cluster path: `dask scheduler` + `dask worker` as their own processes on loopback."""
    songs, recipe = folder
    port = _free_port()
    dask = Path(sys.executable).with_name("dask")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    procs = [subprocess.Popen([str(dask), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)]
    try:
        procs.append(subprocess.Popen([str(dask), "worker", f"tcp://127.0.0.1:{port}", "--nthreads", "1",
                                       "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      env=env, start_new_session=True))
        summary = run_batch(songs, [str(recipe)], tmp_path / "out", scheduler=f"tcp://127.0.0.1:{port}")
        assert (summary.ok, summary.failed) == (2, 2)
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            p.wait(timeout=30)


def test_batch_killed_midway_then_rerun_finishes(tmp_path):
    songs = tmp_path / "songs"
    songs.mkdir()
    for i in range(4):
        write(songs / f"s{i}.wav", song(bars=3, seed=i))
    recipe = tmp_path / "fast.yaml"
    recipe.write_text(FAST)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "covermill.cli", "batch", str(songs), "-r", str(recipe), "-o", str(out), "-j", "1", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 480  # a loaded machine starts the cluster slowly
    while time.time() < deadline and len(read_manifest(out)) < 1:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole batch, workers included
    proc.wait()
    first = read_manifest(out)
    assert 1 <= len(first) < 4, "the kill should land midway"
    done_song = next(iter(first.values()))
    mtime = (Path(done_song["output"]) / "cover.wav").stat().st_mtime_ns
    # every file present after the kill is complete
    for rec in first.values():
        json.loads((Path(rec["output"]) / "qa.json").read_text())
        sf.info(str(Path(rec["output"]) / "cover.wav"))
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    final = read_manifest(out)
    assert len(final) == 4 and all(r["status"] == "ok" for r in final.values())
    assert (Path(done_song["output"]) / "cover.wav").stat().st_mtime_ns == mtime  # not redone
    leftovers = [p for p in out.rglob("*") if ".staging-" in p.name or p.name.endswith(".part")]
    assert not leftovers


def test_recipes_of_one_song_share_its_stems_and_index_links_reports(tmp_path):
    songs = tmp_path / "songs"
    songs.mkdir()
    write(songs / "one.wav", song(bars=3, seed=5))
    r1, r2 = tmp_path / "fast.yaml", tmp_path / "quiet.yaml"
    r1.write_text(FAST)
    r2.write_text("name: quiet\nstems:\n  vocals: {gain_db: -12}\n")
    cache = tmp_path / "cache"
    summary = run_batch(songs, [str(r1), str(r2)], tmp_path / "out", workers=1, separator="dsp", cache_dir=cache)
    assert summary.ok == 2
    assert len([p for p in cache.rglob("*.npz")]) == 1  # separated once, used by both recipes
    index = (tmp_path / "out" / "index.html").read_text()
    assert index.count("report.html") == 2 and "one.wav" in index
