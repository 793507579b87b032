"""What a user waits for: a whole ``covermill render`` process against the same render warm in one process.

    python bench/bench_cold.py [--recipe pop_to_jazz] [--repeat 2] [--write docs/BENCHMARKS.md]

Cold: ``covermill render examples/lets_go_fishin.ogg -r RECIPE --no-cache -q`` as a fresh process
(wall seconds and the CPU seconds of the process and its children), and the process's start:
``python -c "import covermill.automation.pipeline"`` (imports before any work). Warm: the same
render in this process after one render has warmed it (imports, numba JIT, models, the reference
song's chroma), with an empty stem cache each time, as the cold process has, and the song's own
analysis forgotten before each render (the in-process memos of beats, chroma and stem pitch would
otherwise hand it the previous render's results, which no fresh process has). Cold and warm
renders alternate, so a change in the shared machine's load hits both alike.

Worker: a one-song batch on a private local Dask cluster of one worker; its task reports how long
after the worker process started it arrived, and when the worker could start a render (the render
imported) and start it warm (also the taste model, the beat kernels and the reference chroma
loaded), as :mod:`covermill.automation.warmup` does on a thread from the worker's start.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _markdown import write_section  # noqa: E402

SONG = "examples/lets_go_fishin.ogg"


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _forget_song() -> None:
    """Empty the per-song memos (beats, chroma, stem controls): a fresh process has none."""
    from covermill.analysis import rhythm
    from covermill.instruments import features

    rhythm.forget()
    features._CONTROLS.clear()


def first_work(job, *args):
    """A batch task that times the worker it runs on (seconds since the worker process started)."""
    import psutil

    start = psutil.Process().create_time()
    arrived = time.time() - start
    from covermill.automation.pipeline import render  # noqa: F401  (what run_job imports first; waits for a warm-up's import)

    imported = time.time() - start
    try:
        from covermill.automation import warmup
    except ImportError:  # code from before the warm-up: the task pays for what follows
        warmup = None
    for t in threading.enumerate() if warmup is not None else ():
        if t.name == "covermill-warm-up":
            t.join()
    from covermill.analysis import cover
    from covermill.analysis.taste import load_model

    cover.reference_features()

    load_model()
    try:
        from covermill.kernels import librosa_beat
    except ImportError:  # code from before the cached beat kernels
        import librosa.beat as librosa_beat_module

        librosa_beat = lambda: librosa_beat_module  # noqa: E731
    librosa_beat()
    warm = time.time() - start
    return {"song": job.song, "recipe": job.recipe, "output": job.out_dir, "status": "ok", "error": None,
            "seconds": 0.0, "arrived_s": arrived, "imported_s": imported, "warm_s": warm,
            "preloaded": bool(warmup is not None and warmup.LAST)}


def worker_start(work: Path, recipe: str) -> dict:
    from covermill.automation.batch import run_batch

    songs = work / "songs"
    songs.mkdir(exist_ok=True)
    shutil.copy(SONG, songs)
    summary = run_batch(songs, [recipe], work / "batch", workers=1, separator="dsp", task=first_work)
    (rec,) = summary.records
    return rec


def _cold(exe: list[str], recipe: str, out: Path) -> tuple[float, float, float]:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import covermill.automation.pipeline"], check=True)
    start = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), _child_cpu()
    subprocess.run([*exe, "render", SONG, "-r", recipe, "-o", str(out), "--no-cache", "-q"],
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0, _child_cpu() - c0, start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="pop_to_jazz")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-cold-"))
    try:
        body = _bench(args, work)
    finally:  # the renders' outputs: about 0.8 GB each
        shutil.rmtree(work, ignore_errors=True)
    if args.write:
        write_section(args.write, "cold", body, heading="Whole process against warm in-process render")
    print(body)


def _bench(args, work: Path) -> str:
    exe = [sys.executable, "-m", "covermill.cli"]
    rec = worker_start(work, args.recipe)
    print(f"worker: task arrived {rec['arrived_s']:.1f} s after its start, render imported at "
          f"{rec['imported_s']:.1f} s, warm at {rec['warm_s']:.1f} s (preloaded: {rec['preloaded']})", flush=True)
    from covermill.automation.pipeline import render
    from covermill.recipes import load_recipe

    t0 = time.process_time()
    render(SONG, load_recipe(args.recipe), work / "warm0")  # warms this process
    print(f"first in-process render: {time.process_time() - t0:.1f} CPU-s", flush=True)
    colds, warms, loads = [], [], []
    for i in range(args.repeat):
        loads.append(os.getloadavg()[0])
        colds.append(_cold(exe, args.recipe, work / f"cold{i}"))
        print(f"cold {i}: {colds[-1][0]:.1f} s wall, {colds[-1][1]:.1f} CPU-s; imports {colds[-1][2]:.1f} s", flush=True)
        _forget_song()
        t0, c0 = time.perf_counter(), time.process_time()
        render(SONG, load_recipe(args.recipe), work / f"warm{i + 1}")
        warms.append((time.perf_counter() - t0, time.process_time() - c0))
        print(f"warm {i}: {warms[-1][0]:.1f} s wall, {warms[-1][1]:.1f} CPU-s", flush=True)
    cold, warm = min(c[0] for c in colds), min(w[0] for w in warms)
    ratios = [c[0] / w[0] for c, w in zip(colds, warms, strict=True)]
    cpu_ratios = [c[1] / w[1] for c, w in zip(colds, warms, strict=True)]
    body = (f"`python bench/bench_cold.py --recipe {args.recipe} --repeat {args.repeat}` ({os.cpu_count()} cores, "
            f"shared: 1-min load average {min(loads):.1f}-{max(loads):.1f}; the 133-s demo song, no stem cache; "
            f"cold and warm alternate; fastest of {args.repeat}).\n\n"
            "| what | seconds |\n|---|---:|\n"
            f"| `covermill render ... --no-cache` as a whole process (wall) | {cold:.1f} |\n"
            f"| the same, CPU seconds | {min(c[1] for c in colds):.1f} |\n"
            f"| of which the process start: importing the render | {min(c[2] for c in colds):.1f} |\n"
            f"| the same render warm in one process, the song's analysis forgotten (wall) | {warm:.1f} |\n"
            f"| the same, CPU seconds | {min(w[1] for w in warms):.1f} |\n"
            f"| cold / warm, wall: the fastest of each | **{cold / warm:.2f}** |\n"
            f"| cold / warm, wall (each cold against the warm render after it; median) | {min(ratios):.2f}-{max(ratios):.2f} "
            f"({statistics.median(ratios):.2f}) |\n"
            f"| cold / warm, CPU seconds (the same pairs; steadier on a shared machine) | "
            f"{min(cpu_ratios):.2f}-{max(cpu_ratios):.2f} |\n"
            f"| batch worker: its first task arrived, after the worker process started | {rec['arrived_s']:.1f} |\n"
            f"| batch worker: could start a render (imported), after its start | {rec['imported_s']:.1f} |\n"
            f"| batch worker: could start it warm (taste model, beat kernels, reference chroma loaded) | "
            f"{rec['warm_s']:.1f} |\n\n"
            "Target (#19): a worker's first work within 2 s of its start and a whole process within 1.2x of warm.")
    return body


if __name__ == "__main__":
    main()
