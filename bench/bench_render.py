"""Benchmark: render the demo song with the default recipe; seconds and x realtime per stage.

    make bench            # or: .venv/bin/python bench/bench_render.py --write docs/BENCHMARKS.md

After a short warm-up render (imports, numba compilation), the song is rendered in this one
process with its stages in turn (``parallel=False``, the baseline), with independent stages
side by side on threads (``parallel=True``, the default), and side by side in draft quality
(``render --draft``: Rubber Band R2); ``--repeat`` rounds, interleaved, the fastest of each
reported. The analysis memo is emptied before each render, so none reuses another's beats. Writes the table between
the ``<!-- bench:render -->`` markers of the target file.
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
    ap.add_argument("--repeat", type=int, default=2, help="renders per configuration; the fastest is reported")
    ap.add_argument("--write", type=Path, help="markdown file to update")
    args = ap.parse_args(argv)

    from covermill.analysis import rhythm
    from covermill.instruments import features

    recipe = load_recipe(args.recipe)
    draft = recipe.model_copy(update={"tempo": recipe.tempo.model_copy(update={"quality": "draft"})})
    configs = {"in turn": (recipe, False), "side by side": (recipe, True), "draft, side by side": (draft, True)}
    runs: dict[str, tuple] = {}
    loads = []
    with tempfile.TemporaryDirectory() as tmp:
        render(args.song, recipe, Path(tmp) / "warm", excerpt=(0.0, 10.0))
        for _ in range(args.repeat):
            for label, (rec, parallel) in configs.items():  # interleaved, so drifting machine speed hits all alike
                rhythm.forget()  # each timed render analyses the song afresh, as in a new process
                features._CONTROLS.clear()  # and tracks the stems' pitch afresh
                loads.append(os.getloadavg()[0])
                t0 = time.perf_counter()
                result = render(args.song, rec, Path(tmp) / "out", parallel=parallel)
                seconds = time.perf_counter() - t0
                if label not in runs or seconds < runs[label][1]:
                    runs[label] = (result.qa, seconds)
    qa, total = runs["side by side"]
    serial_qa, serial_total = runs["in turn"]
    draft_qa, draft_total = runs["draft, side by side"]
    dur = qa["source_duration_s"]
    stages = qa["stages"]
    slowest = max(stages, key=stages.get)
    xrt = lambda sec: f"{dur / sec if sec > 0 else float('inf'):.1f}x"  # noqa: E731
    rows = [f"| {name} | {serial_qa['stages'][name]:.2f} | {sec:.2f} | {draft_qa['stages'][name]:.2f} |"
            for name, sec in stages.items()]
    table = "\n".join([
        f"Song: `{args.song.relative_to(REPO) if args.song.is_relative_to(REPO) else args.song}` "
        f"({dur:.1f} s), recipe `{args.recipe}`, separator `{qa['separator']}`; "
        f"{os.cpu_count()} CPU cores, Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}; "
        f"fastest of {args.repeat} renders per column, interleaved; 1-min load average before the renders "
        f"{min(loads):.1f}-{max(loads):.1f}.",
        "",
        "| stage | in turn (s) | side by side (s) | draft (R2), side by side (s) |",
        "|---|---:|---:|---:|",
        *rows,
        f"| **total** | **{serial_total:.2f}** ({xrt(serial_total)}) | **{total:.2f}** ({xrt(total)}) "
        f"| **{draft_total:.2f}** ({xrt(draft_total)}) |",
        "",
        f"Side by side against in turn: **{serial_total / total:.2f}x** faster (same output, tested). With stages "
        "side by side a stage's seconds are the main thread's wait: the original's tempo, QA features and genre "
        "probabilities are computed during `separate` (`analyse` and `qa` wait less), the kept stems' Rubber Band "
        "stretch during `revoice` (`mix` waits for what is left of it), the re-voiced stems on threads, the "
        "report during `write`. `draft` is `render --draft` (Rubber Band R2 for the kept stems).",
        f"Slowest stage side by side: **{slowest}** ({stages[slowest]:.1f} s, {100 * stages[slowest] / total:.0f} % "
        "of the render).",
        f"QA of this render: tempo {qa['tempo']['source_bpm']} -> {qa['tempo']['cover_bpm']} BPM "
        f"(target {qa['tempo']['target_bpm']}), {qa['loudness_lufs']} LUFS, true peak {qa['true_peak_db']} dBTP, "
        f"cover similarity {qa['cover_similarity']} vs unrelated song {qa['cover_similarity_floor']}, "
        f"Qmax {qa['cover']['qmax']} (unrelated {qa['cover']['reference']['qmax']}); draft: similarity "
        f"{draft_qa['cover_similarity']}, Qmax {draft_qa['cover']['qmax']}, {draft_qa['loudness_lufs']} LUFS.",
    ])
    print(table)
    if args.write:
        write_section(args.write, "render", f"Command: `make bench`\n\n{table}", heading="Whole render (foundation)")
        print(f"\nwritten to {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
