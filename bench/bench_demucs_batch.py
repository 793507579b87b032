"""Benchmark: demucs's ``apply_model`` (segments one after another) vs covermill's batched segments.

    .venv/bin/python bench/bench_demucs_batch.py --write docs/BENCHMARKS.md
    .venv/bin/python bench/bench_demucs_batch.py --device cuda --seconds 180 --batch-size 16

Model: a full-size ``demucs.htdemucs.HTDemucs`` (default arguments, sources drums/bass/other/vocals)
with random weights (seed 0): speed and agreement only, no quality. Input: ``--seconds`` of seeded
stereo noise at 44.1 kHz, normalised as covermill does (mean 0, std 1); ``shifts=0``, ``overlap=0.25``,
the model's own segment (10 s with default args). Reported per path: x realtime (wall clock; and audio seconds per
CPU second), peak resident memory of the run (``VmHWM``, reset before each run; CPU only), and the
maximum absolute difference between the two outputs.
"""

from __future__ import annotations

import argparse
import platform
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from covermill.stems.demucs_apply import apply_batched  # noqa: E402

SR = 44100
START, END = "<!-- bench:demucs_batch -->", "<!-- /bench:demucs_batch -->"


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_mib() -> float:
    try:
        m = re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text())
        return int(m.group(1)) / 1024 if m else float("nan")
    except OSError:
        return float("nan")


def timed(fn, seconds: float, device: str) -> tuple[object, dict]:
    import torch

    _reset_peak()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    wall, cpu = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        out = fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else _peak_mib()
    return out, {"wall": wall, "xrt": seconds / wall, "per_cpu": seconds / cpu, "peak": peak}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--batch-size", type=int, default=6)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--write", type=Path, help="replace the bench:demucs_batch block of this Markdown file")
    args = ap.parse_args(argv)

    import demucs
    import numpy as np
    import torch
    from demucs.apply import apply_model
    from demucs.htdemucs import HTDemucs

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = HTDemucs(sources=["drums", "bass", "other", "vocals"]).eval().to(args.device)
    rng = np.random.default_rng(0)
    mix = torch.from_numpy(rng.standard_normal((1, 2, int(args.seconds * SR))).astype(np.float32))
    kw = {"shifts": 0, "split": True, "overlap": 0.25, "device": args.device}
    with torch.inference_mode():  # warm-up: one segment each way
        apply_model(model, mix[..., : 2 * SR], progress=False, **kw)
        apply_batched(model, mix[..., : 2 * SR], batch_size=2, **kw)
    ref, t_ref = timed(lambda: apply_model(model, mix, progress=False, **kw), args.seconds, args.device)
    got, t_bat = timed(lambda: apply_batched(model, mix, batch_size=args.batch_size, **kw), args.seconds, args.device)
    diff = float((got - ref).abs().max())
    segments = len(range(0, mix.shape[-1], int(0.75 * int(SR * float(model.segment)))))
    mem = "peak GPU memory" if args.device.startswith("cuda") else "peak RSS"
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    lines = [
        f"Command: `.venv/bin/python bench/bench_demucs_batch.py --seconds {args.seconds:g} "
        f"--batch-size {args.batch_size} --device {args.device}{' --write docs/BENCHMARKS.md' if args.write else ''}`",
        "",
        f"Full-size HTDemucs (default args, random weights, fp32), {args.seconds:g} s of stereo 44.1 kHz noise, "
        f"{segments} segments of {float(model.segment):g} s (overlap 0.25, shifts 0); {device}; "
        f"torch {torch.__version__}, demucs {demucs.__version__}, CPython {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}.",
        "",
        f"| path | x realtime (wall) | audio s per CPU s | {mem} |",
        "|---|---:|---:|---:|",
        f"| `apply_model` (one segment per call) | {t_ref['xrt']:.2f}x | {t_ref['per_cpu']:.2f} | {t_ref['peak']:.0f} MiB |",
        f"| batched, {args.batch_size} segments per call | {t_bat['xrt']:.2f}x | {t_bat['per_cpu']:.2f} | "
        f"{t_bat['peak']:.0f} MiB |",
        "",
        f"Max abs difference between the two outputs: {diff:.2e} (normalised mix, std 1).",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        doc = args.write.read_text(encoding="utf-8")
        if START not in doc or END not in doc:
            sys.exit(f"{args.write}: no {START} ... {END} block to replace")
        head, rest = doc.split(START, 1)
        args.write.write_text(f"{head}{START}\n{text}\n{END}{rest.split(END, 1)[1]}", encoding="utf-8")


if __name__ == "__main__":
    main()
