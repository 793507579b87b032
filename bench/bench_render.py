"""Benchmark: render the demo song with the default recipe; seconds and x realtime per stage.

    make bench            # or: .venv/bin/python bench/bench_render.py --write docs/BENCHMARKS.md

Writes the table between the ``<!-- bench:render -->`` markers of the target file.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from _markdown import write_section  # noqa: E402  (bench/ is the script's folder)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from covermill.automation.pipeline import render  # noqa: E402
from covermill.recipes import load_recipe  # noqa: E402

DEMO = REPO / "examples" / "lets_go_fishin.ogg"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--song", type=Path, default=DEMO)
    ap.add_argument("--recipe", default="pop_to_jazz")
    ap.add_argument("--write", type=Path, help="markdown file to update")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = render(args.song, load_recipe(args.recipe), Path(tmp) / "out")
        total = time.perf_counter() - t0
    qa = result.qa
    dur = qa["source_duration_s"]
    stages = qa["stages"]
    slowest = max(stages, key=stages.get)
    rows = [f"| {name} | {sec:.2f} | {dur / sec if sec > 0 else float('inf'):.1f}x |" for name, sec in stages.items()]
    table = "\n".join([
        f"Song: `{args.song.relative_to(REPO) if args.song.is_relative_to(REPO) else args.song}` "
        f"({dur:.1f} s), recipe `{args.recipe}`, separator `{qa['separator']}`; "
        f"{os.cpu_count()} CPU cores, Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}.",
        "",
        "| stage | seconds | x realtime |",
        "|---|---:|---:|",
        *rows,
        f"| **total** | **{total:.2f}** | **{dur / total:.1f}x** |",
        "",
        f"Slowest stage: **{slowest}** ({stages[slowest]:.1f} s, {100 * stages[slowest] / total:.0f} % of the render).",
        f"QA of this render: tempo {qa['tempo']['source_bpm']} -> {qa['tempo']['cover_bpm']} BPM "
        f"(target {qa['tempo']['target_bpm']}), {qa['loudness_lufs']} LUFS, true peak {qa['true_peak_db']} dBTP, "
        f"cover similarity {qa['cover_similarity']} vs unrelated song {qa['cover_similarity_floor']}.",
    ])
    print(table)
    if args.write:
        write_section(args.write, "render", f"Command: `make bench`\n\n{table}", heading="Whole render (foundation)")
        print(f"\nwritten to {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
