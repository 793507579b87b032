"""Benchmark: genre classifiers on the GTZAN feature tables; macro-F1 with 95 % CI per model.

    .venv/bin/python bench/bench_genre.py --write docs/BENCHMARKS.md

Needs ``../shared/data/gtzan`` beside the repository (skips with a message otherwise).
Writes the table between the ``<!-- bench:genre -->`` markers of the target file (under a
"## Genre classifiers" heading, added if missing) and a confusion-matrix PNG in ``docs/img/``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # 2 shared cores: OpenMP threads only oversubscribe

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

from _markdown import write_section  # noqa: E402  (bench/ is the script's folder)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from covermill.analysis.genre import build_models, evaluate, load_gtzan_table  # noqa: E402

GTZAN = REPO.parent / "shared" / "data" / "gtzan"
TABLE_30 = GTZAN / "features_30_sec.csv"
TABLE_3 = GTZAN / "features_3_sec.subset_classical_jazz_rock.csv"
PNG = REPO / "docs" / "img" / "genre_confusion.png"
HEADING = "## Genre classifiers"
PAPER = {"rf": "0.77", "svm": "0.32 (SVM, scaling not stated)", "svm_unscaled": "0.32 (same SVM figure)"}
PAPER_ONLY = [("ResNet34", "0.73"), ("ResNet50", "0.79"), ("SqueezeNet", "0.74")]
NAMES = {
    "rf": "random forest (100 trees, max_features tuned)",
    "svm": "SVM RBF, standardised (C, gamma tuned)",
    "svm_unscaled": "SVM RBF, unscaled (defaults)",
    "hgb": "hist. gradient boosting (50 iter.)",
    "knn": "kNN (k=7, distance), standardised",
    "ensemble": "soft vote: SVM + RF + HGB",
}


def _fmt(ev) -> str:
    lo, hi = ev.ci95
    return f"{ev.f1_mean:.3f} [{lo:.3f}, {hi:.3f}]"


def _plot(panels, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 6), gridspec_kw={"width_ratios": [3, 1.4]})
    for ax, (title, ev) in zip(np.atleast_1d(axes), panels, strict=True):
        cm = ev.confusion / ev.confusion.sum(axis=1, keepdims=True)
        ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(ev.labels)), ev.labels, rotation=60, ha="right")
        ax.set_yticks(range(len(ev.labels)), ev.labels)
        for i in range(len(ev.labels)):
            for j in range(len(ev.labels)):
                ax.text(j, i, f"{cm[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if cm[i, j] > 0.5 else "black")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _write(target: Path, block: str) -> None:
    write_section(target, "genre", block, heading=HEADING.removeprefix("## "))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, default=10, help="outer folds, 30-s table")
    ap.add_argument("--repeats", type=int, default=1, help="outer repeats, 30-s table")
    ap.add_argument("--folds-3s", type=int, default=5, help="outer folds (grouped by track), 3-s table")
    ap.add_argument("--write", type=Path, help="markdown file to update")
    args = ap.parse_args(argv)
    if not TABLE_30.exists():
        print(f"skipped: {TABLE_30} not found (needs ../shared/data/gtzan beside the repository)")
        return 0
    warnings.filterwarnings("ignore", category=FutureWarning)
    t0 = time.perf_counter()
    t30 = load_gtzan_table(TABLE_30)
    res30 = evaluate(build_models(), t30.X, t30.y, folds=args.folds, repeats=args.repeats, seed=0)
    s30 = time.perf_counter() - t0
    print(f"30-s table done in {s30:.0f} s", flush=True)
    res3, s3 = {}, 0.0
    if TABLE_3.exists():
        t1 = time.perf_counter()
        t3 = load_gtzan_table(TABLE_3)
        res3 = evaluate(build_models(), t3.X, t3.y, folds=args.folds_3s, repeats=1, seed=0, groups=t3.groups)
        s3 = time.perf_counter() - t1
    rows = []
    for key, label in NAMES.items():
        r3 = _fmt(res3[key]) if key in res3 else "-"
        rows.append(f"| {label} | {_fmt(res30[key])} | {r3} | {PAPER.get(key, '-')} |")
    rows += [f"| {name} (paper only, spectrograms) | - | - | {fig} |" for name, fig in PAPER_ONLY]
    best30 = max(res30, key=lambda k: res30[k].f1_mean)
    panels = [(f"30-s table, {NAMES[best30]}, {args.folds}-fold x {args.repeats}", res30[best30])]
    if res3:
        best3 = max(res3, key=lambda k: res3[k].f1_mean)
        panels.append((f"3-s subset, {best3}, {args.folds_3s}-fold by track", res3[best3]))
    _plot(panels, PNG)
    n3 = f"{len(t3.y)} rows of {len(set(t3.groups))} tracks" if res3 else "absent"
    block = "\n".join([
        "Command: `.venv/bin/python bench/bench_genre.py --write docs/BENCHMARKS.md`",
        "",
        f"Data: Kaggle GTZAN feature tables in `../shared/data/gtzan` (57 features, `length` left out): "
        f"30-s table {len(t30.y)} tracks x 10 genres; 3-s subset (classical/jazz/rock) {n3}. "
        f"{os.cpu_count()} CPU cores (shared, loaded), Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}; {s30:.0f} s + {s3:.0f} s.",
        "",
        f"Protocol: macro-F1, outer stratified {args.folds}-fold x {args.repeats} repeat(s) on the 30-s table; "
        f"outer StratifiedGroupKFold {args.folds_3s}-fold by track on the 3-s subset (segments of one track never "
        "on both sides; inner searches grouped too). SVM and RF hyper-parameters by an inner 3-fold "
        "GridSearchCV inside each outer training fold (nested). 95 % CI: Nadeau-Bengio corrected resampled t. "
        "The 3-s column is a 3-class task: not comparable with the 10-class column.",
        "",
        "| model | 30-s table, 10 genres: macro-F1 [95 % CI] | 3-s subset, 3 genres, by track | paper Table 1 |",
        "|---|---|---|---|",
        *rows,
        "",
        f"Confusion matrices (best model per table, outer test folds summed): `docs/img/{PNG.name}`.",
        "",
        f"![genre confusion](img/{PNG.name})",
        "",
        "Caveats: GTZAN has repeated clips, mislabelled clips and artist overlap (Sturm 2013); the "
        "30-s split is by track, not by artist, so these numbers are optimistic for unseen artists.",
    ])
    print(block)
    if args.write:
        _write(args.write, block)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
