"""Benchmark: demucs's ``apply_model`` (segments one after another) vs covermill's batched segments,
of one song and of several songs pooled into the same model calls.

    .venv/bin/python bench/bench_demucs_batch.py --write docs/BENCHMARKS.md
    .venv/bin/python bench/bench_demucs_batch.py --device cuda --seconds 180 --songs 8 --batch-size 32

Model: a full-size ``demucs.htdemucs.HTDemucs`` (default arguments, sources drums/bass/other/vocals)
with random weights (seed 0): speed and agreement only, no quality (``--model tiny``: the tests' tiny
HTDemucs, to check the script quickly on a CPU). Input: ``--songs`` songs of seeded stereo noise at
44.1 kHz, the first ``--seconds`` long and each next one 10 % shorter (so their last segments differ),
normalised as covermill does (mean 0, std 1); ``shifts=0``, ``overlap=0.25``, the model's own segment
(10 s with default args). Paths: ``apply_model`` per song; ``apply_batched`` per song (``--batch-size``
segments of one song per call); ``apply_batched_many`` (the segments of all songs pooled, ``--batch-size``
per call). Reported per path: x realtime (all songs' audio over wall clock; and audio seconds per CPU
second), peak memory (GPU: ``max_memory_allocated``; CPU: ``VmHWM``, reset before each run), and the
maximum absolute difference from ``apply_model``'s output over all songs.
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

from covermill.stems.demucs_apply import apply_batched, apply_batched_many  # noqa: E402

SR = 44100


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
    ap.add_argument("--seconds", type=float, default=30.0, help="length of the first song")
    ap.add_argument("--songs", type=int, default=1, help="songs (each next one 10 %% shorter)")
    ap.add_argument("--batch-size", type=int, default=6)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model", choices=["full", "tiny"], default="full")
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
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device here")
    torch.manual_seed(0)
    size = {} if args.model == "full" else {"channels": 8, "depth": 4, "t_layers": 1, "t_heads": 1,
                                            "bottom_channels": 0, "dconv_comp": 4, "segment": 2}
    model = HTDemucs(sources=["drums", "bass", "other", "vocals"], **size).eval().to(args.device)
    rng = np.random.default_rng(0)
    lengths = [int(args.seconds * SR * 0.9**i) for i in range(args.songs)]
    mixes = [torch.from_numpy(rng.standard_normal((1, 2, n)).astype(np.float32)) for n in lengths]
    audio_s = sum(lengths) / SR
    kw = {"shifts": 0, "split": True, "overlap": 0.25, "device": args.device}
    with torch.inference_mode():  # warm-up: one segment each way
        apply_model(model, mixes[0][..., : 2 * SR], progress=False, **kw)
        apply_batched(model, mixes[0][..., : 2 * SR], batch_size=2, **kw)
    paths = {
        "`apply_model` per song (one segment per call)":
            lambda: [apply_model(model, m, progress=False, **kw) for m in mixes],
        f"`apply_batched` per song, {args.batch_size} segments per call":
            lambda: [apply_batched(model, m, batch_size=args.batch_size, **kw) for m in mixes],
    }
    if args.songs > 1:
        paths[f"`apply_batched_many`, all songs' segments pooled, {args.batch_size} per call"] = \
            lambda: apply_batched_many(model, mixes, batch_size=args.batch_size, **kw)
    results, ref = {}, None
    for label, fn in paths.items():
        outs, t = timed(fn, audio_s, args.device)
        if ref is None:
            ref = [o.cpu() for o in outs]
        t["diff"] = max(float((o.cpu() - r).abs().max()) for o, r in zip(outs, ref, strict=True))
        results[label] = t
        del outs
        print(f"{label}: {t['xrt']:.2f}x realtime, max abs diff {t['diff']:.2e}", flush=True)
    stride = int(0.75 * int(SR * float(model.segment)))
    segments = sum(len(range(0, n, stride)) for n in lengths)
    mem = "peak GPU memory" if args.device.startswith("cuda") else "peak RSS"
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    name = "Full-size HTDemucs (default args" if args.model == "full" else "The tests' tiny HTDemucs (2 s segments"
    lines = [
        f"Command: `.venv/bin/python bench/bench_demucs_batch.py --seconds {args.seconds:g} --songs {args.songs} "
        f"--batch-size {args.batch_size} --device {args.device}{' --model tiny' if args.model == 'tiny' else ''}"
        f"{' --write docs/BENCHMARKS.md' if args.write else ''}`",
        "",
        f"{name}, random weights, fp32), {args.songs} song(s) of stereo 44.1 kHz noise "
        f"({', '.join(f'{n / SR:.1f}' for n in lengths)} s; {audio_s:.0f} s in all), {segments} segments of "
        f"{float(model.segment):g} s (overlap 0.25, shifts 0); {device}; torch {torch.__version__}, "
        f"demucs {demucs.__version__}, CPython {platform.python_version()}, {time.strftime('%Y-%m-%d')}.",
        "",
        f"| path | x realtime (wall) | audio s per CPU s | {mem} | max abs diff vs `apply_model` |",
        "|---|---:|---:|---:|---:|",
        *[f"| {label} | {t['xrt']:.2f}x | {t['per_cpu']:.2f} | {t['peak']:.0f} MiB | {t['diff']:.2e} |"
          for label, t in results.items()],
        "",
        "Differences are in units of the normalised mix (std 1).",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        from _markdown import write_section

        write_section(args.write, "demucs_batch", text, heading="Demucs: batched segments")


if __name__ == "__main__":
    main()
