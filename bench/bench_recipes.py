"""Every built-in recipe on one song: does the cover sound like the target genre, and is it still a cover?

    python bench/bench_recipes.py [--song examples/lets_go_fishin.ogg] [--excerpt START:SECONDS] [--write docs/BENCHMARKS.md]
        [--recipes NAME_OR_FILE,...] [--cache-dir DIR]

For each built-in recipe: the shipped taste model's probability of the recipe's genre class
(``recipes/genres.py`` NEAREST_CLASS maps folk, bossa nova, lo-fi and chiptune to the GTZAN
class that stands for them) in the original and in the cover, the cover's top class, Qmax of the
cover against the original (a cover when >= 0.46) and the render's wall time (warm process,
stem cache warm after the first recipe).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _markdown import write_section  # noqa: E402

from covermill.automation.pipeline import render  # noqa: E402
from covermill.recipes import builtin_names, load_recipe  # noqa: E402

TARGETS = {"pop_to_jazz", "pop_to_piano_trio", "bossa_nova", "reggae", "lofi_hiphop", "orchestral"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--song", default="examples/lets_go_fishin.ogg")
    ap.add_argument("--excerpt", default=None)
    ap.add_argument("--recipes", default=",".join(builtin_names()))
    ap.add_argument("--write", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep every render's OUT folder (default: deleted after its QA)")
    ap.add_argument("--cache-dir", type=Path, default=None,
                    help="stem/analysis cache kept between runs (default: a fresh temporary folder)")
    args = ap.parse_args()
    excerpt = tuple(float(x) for x in args.excerpt.split(":")) if args.excerpt else None
    work = Path(tempfile.mkdtemp(prefix="bench-recipes-"))
    rows = []
    for spec in args.recipes.split(","):
        name = Path(spec).stem if spec.endswith((".yaml", ".yml")) else spec  # a recipe file: its name
        t0 = time.perf_counter()
        qa = render(args.song, load_recipe(spec), work / name, cache_dir=args.cache_dir or work / "cache",
                    excerpt=excerpt).qa
        secs = time.perf_counter() - t0
        if not args.keep:  # a whole-song render is about 1 GB (stems, cover stems, report)
            shutil.rmtree(work / name, ignore_errors=True)
        g, c = qa["genre"], qa["cover"] or {}
        top1 = g["cover_top"] == g["model_class"]
        gain = (g["target_prob_cover"] or 0) - (g["target_prob_original"] or 0)
        ok = ("**yes**" if top1 and gain >= 0.3 else "top-1, +" + f"{gain:.2f}" if top1 else "no") \
            if name in TARGETS else "(no target)"
        rows.append(f"| {name} | {g['model_class']} | {g['target_prob_original']} -> {g['target_prob_cover']} "
                    f"| {g['original_top']} -> {g['cover_top']} | {ok} | {c.get('qmax')} "
                    f"| {'yes' if c.get('is_cover') else 'no'} | {qa['leadsheet']['beats_per_bar']}/4, "
                    f"{qa['leadsheet']['key']} | {secs:.1f} |")
        print(rows[-1], flush=True)
    what = f"{Path(args.song).name}" + (f", excerpt {args.excerpt}" if args.excerpt else ", whole song")
    body = (f"`python bench/bench_recipes.py` ({os.cpu_count()} cores; {what}; warm process).\n\n"
            "| recipe | class | P(class) original -> cover | top class | target met (top-1, +0.3) | Qmax "
            "| still a cover (>= 0.46) | lead sheet | render s |\n|---|---|---|---|---|---:|---|---|---:|\n"
            + "\n".join(rows))
    if args.write:
        write_section(args.write, "recipes", body, heading="Built-in recipes: genre and cover verdict")
    print(body)


if __name__ == "__main__":
    main()
