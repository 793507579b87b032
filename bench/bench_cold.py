"""What a user waits for: a whole ``covermill render`` process against the same render warm in one process.

    python bench/bench_cold.py [--recipe pop_to_jazz] [--repeat 2] [--write docs/BENCHMARKS.md]

Cold: ``covermill render examples/lets_go_fishin.ogg -r RECIPE --no-cache -q`` as a fresh process
(wall seconds and the CPU seconds of the process and its children), and the process's start:
``python -c "import covermill.automation.pipeline"`` (imports before any work). Warm: the same
render in this process after one render has warmed it (imports, numba JIT, the reference song's
features, models), with an empty stem cache each time, as the cold process has.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _markdown import write_section  # noqa: E402

SONG = "examples/lets_go_fishin.ogg"


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="pop_to_jazz")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-cold-"))
    exe = [sys.executable, "-m", "covermill.cli"]
    starts, colds = [], []
    for i in range(args.repeat):
        t0, c0 = time.perf_counter(), _child_cpu()
        subprocess.run([sys.executable, "-c", "import covermill.automation.pipeline"], check=True)
        starts.append(time.perf_counter() - t0)
        t0, c0 = time.perf_counter(), _child_cpu()
        subprocess.run([*exe, "render", SONG, "-r", args.recipe, "-o", str(work / f"cold{i}"), "--no-cache", "-q"],
                       check=True, stdout=subprocess.DEVNULL)
        colds.append((time.perf_counter() - t0, _child_cpu() - c0))
        print(f"cold {i}: {colds[-1][0]:.1f} s wall, {colds[-1][1]:.1f} CPU-s; imports {starts[-1]:.1f} s", flush=True)
    from covermill.automation.pipeline import render
    from covermill.recipes import load_recipe

    warms = []
    for i in range(args.repeat + 1):
        t0 = time.perf_counter()
        render(SONG, load_recipe(args.recipe), work / f"warm{i}")
        if i:  # the first one warms the process
            warms.append(time.perf_counter() - t0)
            print(f"warm {i}: {warms[-1]:.1f} s", flush=True)
    cold, warm = min(c[0] for c in colds), min(warms)
    body = (f"`python bench/bench_cold.py --recipe {args.recipe} --repeat {args.repeat}` ({os.cpu_count()} cores; "
            f"the 133-s demo song, no stem cache; fastest of {args.repeat}).\n\n"
            "| what | seconds |\n|---|---:|\n"
            f"| `covermill render ... --no-cache` as a whole process (wall) | {cold:.1f} |\n"
            f"| the same, CPU seconds | {min(c[1] for c in colds):.1f} |\n"
            f"| of which the process start: importing the render | {min(starts):.1f} |\n"
            f"| the same render warm in one process | {warm:.1f} |\n"
            f"| cold / warm | {cold / warm:.2f} |\n\n"
            "Target (#19): a worker's first work within 2 s of its start and a whole process within 1.2x of warm.")
    if args.write:
        write_section(args.write, "cold", body, heading="Whole process against warm in-process render")
    print(body)


if __name__ == "__main__":
    main()
