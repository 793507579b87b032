"""What the taste model hears in a rendered cover with other levels: re-sum ``OUT/cover_stems`` without re-rendering.

    python bench/diag_taste.py OUT [OUT ...] [--gains STEM:DB,...] [--lufs LUFS] [--qmax] [--features N]

Each OUT is a finished render (``covermill render`` or ``bench/bench_recipes.py --keep``). Its cover stems
(every part of the cover as heard, before the master) are summed with the gain changes (dB; ``-90`` or less
mutes a stem), put through the recipe's master (``OUT/recipe.yaml``; ``--lufs`` overrides its loudness
target) and scored like the render's QA: the shipped taste model's probability of the recipe's class
(``qa.json``'s ``genre.model_class``) and top classes, and with ``--qmax`` the cover verdict against
``OUT/original.flac``. ``--features N`` prints the N GTZAN features furthest (in the table's standard
deviations) from the target class's mean. A gain change that moves the verdict is a candidate for the
recipe; confirm it with a real render (``bench_recipes.py``, ``bench_covers.py``): effects that are not
linear in level (compressors, the master's limiter) make the re-sum an approximation.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from covermill.analysis.genre_features import MODEL_COLUMNS, gtzan_features, model_row
from covermill.analysis.taste import genre_probabilities, middle_excerpt
from covermill.audio import load_audio
from covermill.automation import qa as qa_mod
from covermill.automation.master import master
from covermill.recipes import load_recipe

MUTE_DB = -90.0
GTZAN_TABLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gtzan" / "features_30_sec.csv"


def parse_gains(text: str) -> dict[str, float]:
    """``"vocals:-3,part_drums:4"`` -> ``{"vocals": -3.0, "part_drums": 4.0}``."""
    gains = {}
    for item in filter(None, text.split(",")):
        name, _, db = item.partition(":")
        gains[name.strip()] = float(db)
    return gains


def resum(out: Path, gains: dict[str, float], *, lufs: float | None = None, sr: int = 44100) -> np.ndarray:
    """``out``'s cover stems summed with ``gains`` (dB) and mastered by its recipe's master."""
    recipe = load_recipe(out / "recipe.yaml")
    tracks = {p.stem: load_audio(p) for p in sorted((out / "cover_stems").glob("*.wav"))}
    unknown = set(gains) - set(tracks)
    if unknown:
        sys.exit(f"{out}: no cover stem {', '.join(sorted(unknown))}; it has {', '.join(tracks)}")
    mix = np.zeros((2, max(t.shape[1] for t in tracks.values())), np.float32)
    for name, y in tracks.items():
        db = gains.get(name, 0.0)
        if db > MUTE_DB:
            mix[:, : y.shape[1]] += np.broadcast_to(y, (2, y.shape[1])) * np.float32(10 ** (db / 20))
    spec = recipe.master if lufs is None else recipe.master.model_copy(update={"lufs": lufs})
    return master(mix, sr=sr, spec=spec, root=out).audio


def furthest_features(cover: np.ndarray, target: str, n: int, *, sr: int = 44100) -> str:
    import pandas as pd

    table = pd.read_csv(GTZAN_TABLE)
    cols = list(MODEL_COLUMNS)
    means, stds = table.groupby("label")[cols].mean().loc[target], table[cols].std()
    row = model_row(gtzan_features(middle_excerpt(cover, sr=sr), sr=sr))[0]
    z = sorted(((float((row[j] - means[c]) / stds[c]), c) for j, c in enumerate(cols)), key=lambda t: -abs(t[0]))
    return ", ".join(f"{c} {v:+.1f}" for v, c in z[:n])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outs", nargs="+", type=Path)
    ap.add_argument("--gains", default="", help="STEM:DB,... (cover stem names: vocals, part_drums, ...)")
    ap.add_argument("--lufs", type=float, default=None)
    ap.add_argument("--qmax", action="store_true", help="also the cover verdict against OUT/original.flac")
    ap.add_argument("--features", type=int, default=0)
    args = ap.parse_args(argv)
    gains, sr = parse_gains(args.gains), 44100
    for out in args.outs:
        genre = json.loads((out / "qa.json").read_text())["genre"]
        target = genre["model_class"]
        cover = resum(out, gains, lufs=args.lufs, sr=sr)
        probs = genre_probabilities(cover, sr=sr)
        top = " ".join(f"{k} {v:.2f}" for k, v in list(probs.items())[:3])
        line = (f"{out.name}: P({target}) {genre['target_prob_original']:.3f} -> {probs[target]:.3f} "
                f"(rendered {genre['target_prob_cover']:.3f}); top {top}")
        if args.qmax:
            check, _ = qa_mod.cover_check(qa_mod.original_features(load_audio(out / "original.flac"), sr=sr),
                                          cover, sr=sr)
            line += f"; Qmax {check['qmax']}"
        print(line, flush=True)
        if args.features:
            print("  furthest from", target, ":", furthest_features(cover, target, args.features, sr=sr))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
