"""Rebuild the models that ship inside the package (``make models``); seeded, reproducible.

- ``covermill/analysis/data/genre_model.skops``: the default taste model, a standardised
  RBF SVM with calibrated probabilities trained on all 1000 rows of the GTZAN 30-s
  feature table (``../shared/data/gtzan/features_30_sec.csv``), and beside it
  ``genre_model.npz``, its compiled form (:mod:`covermill.analysis.genre_compiled`: what a
  render loads, without importing scikit-learn).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from covermill.analysis.genre import GenreModel, load_gtzan_table  # noqa: E402
from covermill.analysis.taste import DEFAULT_MODEL  # noqa: E402

TABLE = REPO.parent / "shared" / "data" / "gtzan" / "features_30_sec.csv"


def main() -> int:
    if not TABLE.is_file():
        print(f"skipped: {TABLE} is absent (it lives in ../shared beside the repository)")
        return 0
    table = load_gtzan_table(TABLE)
    model = GenreModel().fit(table.X, table.y)
    model.save(DEFAULT_MODEL)
    print(f"wrote {DEFAULT_MODEL.relative_to(REPO)} ({DEFAULT_MODEL.stat().st_size} bytes), "
          f"classes {', '.join(model.classes_)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
