"""The edit-and-listen loop: seconds from saving a recipe to a new excerpt written with its QA line.

    python bench/bench_preview.py [--song examples/lets_go_fishin.ogg] [--excerpt 30:20] [--write docs/BENCHMARKS.md]

Runs ``covermill preview`` in-process on a copy of ``pop_to_jazz`` and saves a sequence of edits:
a mix-only edit (master loudness), another mix-only edit (a part's gain), a tempo change, an
instrument change, a part's style change. Each row is the time from the save to the event that
reports the new render (the loop polls every 0.2 s, counted in), and which results it reused.
The first row is the first render in a fresh process (separation from a warm stem cache).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _markdown import write_section  # noqa: E402

from covermill.automation.options import RenderOptions  # noqa: E402
from covermill.automation.preview import preview  # noqa: E402
from covermill.recipes.loader import builtin_dir  # noqa: E402

EDITS = [
    ("first render (fresh process)", None),
    ("mix: master loudness", ("lufs: -14", "lufs: -12")),
    ("mix: a part's gain", ("gain_db: -10, pan: 0.3", "gain_db: -6, pan: 0.3")),
    ("tempo: bpm_delta -15 -> -10", ("bpm_delta: -15", "bpm_delta: -10")),
    ("instrument: vocals tenor_sax -> flute", ("revoice: {instrument: tenor_sax}", "revoice: {instrument: flute}")),
    ("part: drums style jazz_swing -> bossa_nova", ("style: jazz_swing, kit: brush", "style: bossa_nova")),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--song", default="examples/lets_go_fishin.ogg")
    ap.add_argument("--excerpt", default="30:20")
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    start, seconds = (float(x) for x in args.excerpt.split(":"))
    work = Path(tempfile.mkdtemp(prefix="bench-preview-"))
    recipe = work / "r.yaml"
    shutil.copy(builtin_dir() / "pop_to_jazz.yaml", recipe)
    events, stop = [], threading.Event()
    opts = RenderOptions(cache_dir=work / "cache")
    # warm the stem cache, as a user's second preview session would find it
    preview(args.song, recipe, work / "warm", options=opts, excerpt=(start, seconds), once=True)
    saved: list[float] = [time.perf_counter()]
    worker = threading.Thread(target=preview, args=(args.song, recipe, work / "out"), daemon=True,
                              kwargs=dict(options=opts, excerpt=(start, seconds), stop=stop, on_event=events.append))
    worker.start()
    rows = []
    for i, (what, edit) in enumerate(EDITS):
        if edit is not None:
            time.sleep(0.3)
            text = recipe.read_text()
            assert edit[0] in text, edit
            saved.append(time.perf_counter())
            recipe.write_text(text.replace(edit[0], edit[1]))
        while len(events) <= i:
            time.sleep(0.02)
        ev = events[i]
        took = time.perf_counter() - saved[-1] if edit is not None else ev.seconds
        rows.append((what, took, ev.seconds, ", ".join(f"{k} {v}" for k, v in sorted(ev.reused.items())) or "-"))
        print(f"{what:<45} {took:5.2f} s (render {ev.seconds:.2f} s) reused: {rows[-1][3]}", flush=True)
    stop.set()
    worker.join(10)
    shutil.rmtree(work, ignore_errors=True)
    body = (f"`python bench/bench_preview.py --excerpt {args.excerpt}` ({os.cpu_count()} cores; a {seconds:g}-s "
            f"excerpt of `{Path(args.song).name}`, `pop_to_jazz`, draft quality; the stem cache warm).\n\n"
            "| edit saved | save -> new excerpt + QA line | of which the render | reused |\n|---|---:|---:|---|\n"
            + "\n".join(f"| {w} | {t:.2f} s | {r:.2f} s | {u} |" for w, t, r, u in rows)
            + "\n\nTargets: <= 3 s for mix-only edits, <= 8 s when an instrument, part, tempo or key changes.")
    if args.write:
        write_section(args.write, "preview", body, heading="Preview: the edit-and-listen loop")
    print(body)


if __name__ == "__main__":
    main()
