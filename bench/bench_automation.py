"""Benchmark the automation layer: mixer + master, Rubber Band engines, batch scaling.

    .venv/bin/python bench/bench_automation.py --write docs/BENCHMARKS.md

1. mixer + master x realtime on a 3-minute stereo song (the demo song looped), 4 stems with
   the pop_to_jazz chains, no stretch (target >= 50x);
2. time-stretch of the same song by 0.87: pedalboard R3, pedalboard R2, pyrubberband (R3
   CLI): x realtime and how far the outputs differ;
3. batch of 8 songs (20-s excerpts) with pop_to_jazz: 1 worker vs 2 workers on a
   LocalCluster, and 2 workers started as separate `dask scheduler` / `dask worker`
   processes on loopback (target >= 1.6x with 2 workers on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _markdown import write_section  # noqa: E402  (bench/ is the script's folder)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from covermill import stems  # noqa: E402
from covermill.audio import load_audio, save_audio  # noqa: E402
from covermill.automation.batch import run_batch  # noqa: E402
from covermill.automation.master import master  # noqa: E402
from covermill.automation.mixer import mix_cover  # noqa: E402
from covermill.automation.tempo import stretch  # noqa: E402
from covermill.recipes import load_recipe  # noqa: E402

SR = 44100


def timed(fn, *a, **kw):
    t0 = time.perf_counter()
    out = fn(*a, **kw)
    return out, time.perf_counter() - t0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", type=Path)
    ap.add_argument("--songs", type=int, default=8)
    ap.add_argument("--seconds", type=int, default=20, help="length of each batch song (an excerpt of the demo)")
    ap.add_argument("--only-batch", action="store_true", help="run the batch part only (keeps the rest of the section)")
    args = ap.parse_args(argv)
    lines = []
    demo = load_audio(REPO / "examples" / "lets_go_fishin.ogg")
    if args.only_batch:  # keep the mixer and Rubber Band text already in the file
        old = args.write.read_text() if args.write and args.write.exists() else ""
        start = old.find("<!-- bench:automation -->")
        end = old.find("### Batch\n", start)
        if start < 0 or end < 0:
            ap.error("--only-batch needs --write FILE holding an earlier automation section")
        kept = [ln for ln in old[start + len("<!-- bench:automation -->"): end].splitlines()
                if not ln.startswith("Command:")]
        while kept and not kept[0].strip():
            kept.pop(0)
        lines += kept
    else:
        song = np.concatenate([demo, demo], axis=1)[:, : 180 * SR]
        dur = song.shape[1] / SR
        parts = stems.get("dsp").separate(song, sr=SR)
        recipe = load_recipe("pop_to_jazz")
        keep_all = recipe.model_copy(update={"stems": {k: v.model_copy(update={"action": "keep", "revoice": None})
                                                       for k, v in recipe.stems.items()}})
        mixed, t_mix = timed(mix_cover, parts, {}, recipe=keep_all, sr=SR, n_in=song.shape[1])
        _, t_master = timed(master, mixed, sr=SR, spec=recipe.master)
        lines += ["### Mixer and master", "",
                  f"3-minute stereo song ({dur:.0f} s, 44.1 kHz), 4 stems, pop_to_jazz's effect chains, no stretch.", "",
                  "| step | seconds | x realtime |", "|---|---:|---:|",
                  f"| mix (4 stems: pan, effects, gain, sum) | {t_mix:.2f} | {dur / t_mix:.0f}x |",
                  f"| master (effects, LUFS, limiter, true peak) | {t_master:.2f} | {dur / t_master:.0f}x |",
                  f"| mix + master | {t_mix + t_master:.2f} | **{dur / (t_mix + t_master):.0f}x** (target 50x) |", ""]

        ratio = 0.87
        r3, t_r3 = timed(stretch, song, sr=SR, time_ratio=ratio, high_quality=True)
        r2, t_r2 = timed(stretch, song, sr=SR, time_ratio=ratio, high_quality=False)
        rows = [("pedalboard, R3 (default)", t_r3, r3), ("pedalboard, R2", t_r2, r2)]
        if shutil.which("rubberband"):
            prb, t_prb = timed(stretch, song, sr=SR, time_ratio=ratio, high_quality=True, engine="pyrubberband")
            rows.append(("pyrubberband (rubberband CLI, R3)", t_prb, prb))

        def env_db(y):
            frames = y[:, : y.shape[1] // 4410 * 4410].reshape(2, -1, 4410)
            return 10 * np.log10(np.mean(frames**2, axis=2) + 1e-10)

        lines += ["### Rubber Band engines", "",
                  f"The same song stretched by {ratio} (slower). Difference = RMS level difference per channel and the "
                  "mean absolute difference of 100-ms level envelopes, against pedalboard R3.", "",
                  "| engine | seconds | x realtime | level diff L / R (dB) | envelope diff (dB) |", "|---|---:|---:|---:|---:|"]
        ref_env = env_db(r3)
        for name, t, y in rows:
            lv = [20 * np.log10(np.sqrt(np.mean(y[c] ** 2)) / np.sqrt(np.mean(r3[c] ** 2))) for c in range(2)]
            ed = float(np.mean(np.abs(env_db(y) - ref_env)))
            lines.append(f"| {name} | {t:.1f} | {dur / t:.1f}x | {lv[0]:+.2f} / {lv[1]:+.2f} | {ed:.2f} |")
        lines.append("")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "songs"
        folder.mkdir()
        for i in range(args.songs):
            start = (i * 13 * SR) % (demo.shape[1] - args.seconds * SR)
            save_audio(folder / f"song{i}.wav", demo[:, start : start + args.seconds * SR], sr=SR)
        results = {}
        for label, kw in (("LocalCluster, 1 worker", {"workers": 1, "render_threads": False}),
                          ("LocalCluster, 2 workers", {"workers": 2}),
                          ("LocalCluster, 1 worker, renders on threads (default for 1 worker)", {"workers": 1})):
            s = run_batch(folder, ["pop_to_jazz"], Path(tmp) / label.replace(" ", "_"),
                          cache_dir=Path(tmp) / f"cache-{label}", **kw)  # every run separates: the same work
            results[label] = s.seconds
        port = free_port()
        dask = Path(sys.executable).with_name("dask")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        procs = [subprocess.Popen([str(dask), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)]
        procs += [subprocess.Popen([str(dask), "worker", f"tcp://127.0.0.1:{port}", "--nthreads", "1", "--no-dashboard"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
                  for _ in range(2)]
        try:
            time.sleep(3)
            s = run_batch(folder, ["pop_to_jazz"], Path(tmp) / "sched", scheduler=f"tcp://127.0.0.1:{port}",
                          cache_dir=Path(tmp) / "cache-sched")
            results["dask scheduler + 2 dask worker processes"] = s.seconds
        finally:
            for p in procs:
                os.killpg(p.pid, signal.SIGTERM)
            for p in procs:
                p.wait(timeout=30)
    base = results["LocalCluster, 1 worker"]
    lines += ["### Batch", "", f"{args.songs} songs ({args.seconds}-s excerpts of the demo song), recipe pop_to_jazz, "
              f"{os.cpu_count()} cores; every run starts with an empty stem cache; speed-up against 1 worker rendering songs in turn, in the same run. "
              "Each render inside a worker runs its stages in turn when the workers fill the cores (2 workers); "
              "a lone worker lets its renders run stages side by side on threads (last row).", "",
              "| cluster | seconds | speed-up |", "|---|---:|---:|"]
    lines += [f"| {k} | {v:.1f} | {base / v:.2f}x |" for k, v in results.items()]
    text = "\n".join(lines)
    print(text)
    if args.write:
        cmd = ("`.venv/bin/python bench/bench_automation.py --write docs/BENCHMARKS.md` (batch part alone: "
               f"`--only-batch`{f', songs of {args.seconds} s: `--seconds {args.seconds}`' if args.seconds != 20 else ''})")
        write_section(args.write, "automation", f"Command: {cmd}\n\n{text}", heading="Automation")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
