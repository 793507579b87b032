"""Genre probabilities of a recording with the shipped taste model, and genre bar charts.

The default model (``data/genre_model.skops``, rebuilt by ``make models``) is a
standardised RBF SVM with calibrated probabilities trained on the GTZAN 30-s feature
table; it sees one 30-s excerpt from the middle of a song (GTZAN clips are 30-s excerpts).
A model with a current compiled form beside it (:mod:`.genre_compiled`, the shipped one has)
loads from that, without importing scikit-learn or skops.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .genre_compiled import CompiledGenreModel, load_compiled
from .genre_features import GTZAN_CLIP_S, gtzan_features, model_row

if TYPE_CHECKING:
    from .genre import GenreModel

DEFAULT_MODEL = Path(__file__).parent / "data" / "genre_model.skops"


@functools.lru_cache(maxsize=4)
def load_model(path: str | None = None) -> GenreModel | CompiledGenreModel:
    """The taste model at ``path`` (default: the shipped one), loaded once per process: from its
    compiled form when that is current, else through skops (:meth:`.GenreModel.load`)."""
    compiled = load_compiled(path or DEFAULT_MODEL)
    if compiled is not None:
        return compiled
    from .genre import GenreModel  # scikit-learn and skops: seconds of imports

    return GenreModel.load(path or DEFAULT_MODEL)


def middle_excerpt(y: np.ndarray, *, sr: int, seconds: float = GTZAN_CLIP_S) -> np.ndarray:
    """The ``seconds`` in the middle of ``(channels, n)`` audio (all of it when shorter)."""
    n = int(seconds * sr)
    if y.shape[-1] <= n:
        return y
    start = (y.shape[-1] - n) // 2
    return y[..., start : start + n]


def genre_probabilities(y: np.ndarray, *, sr: int, model: GenreModel | CompiledGenreModel | None = None
                        ) -> dict[str, float]:
    """``{genre: probability}`` (summing to 1) of ``(channels, n)`` audio, most likely first."""
    model = model or load_model()
    features = gtzan_features(middle_excerpt(y, sr=sr), sr=sr)
    proba = model.predict_proba(model_row(features))[0]
    order = np.argsort(-proba)
    return {str(model.classes_[i]): round(float(proba[i]), 4) for i in order}


def plot_genre_bars(distributions: dict[str, dict[str, float]], path: str | Path, *, title: str = "") -> Path:
    """Grouped horizontal bars, one group per genre, one bar per named distribution; PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..fsutil import atomic_path

    genres = sorted({g for d in distributions.values() for g in d})
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(genres) + 1.2), dpi=110)
    height = 0.8 / max(1, len(distributions))
    for i, (label, dist) in enumerate(distributions.items()):
        values = [dist.get(g, 0.0) for g in genres]
        ax.barh(np.arange(len(genres)) + i * height, values, height=height, label=label)
    ax.set_yticks(np.arange(len(genres)) + height * (len(distributions) - 1) / 2, genres)
    ax.invert_yaxis()
    ax.set_xlabel("probability")
    ax.set_xlim(0, 1)
    if title:
        ax.set_title(title)
    if len(distributions) > 1:
        ax.legend(loc="lower right")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
