"""Cover similarity: key-invariant, tempo-invariant comparison of two recordings.

Each recording becomes a beat-synchronous chroma sequence (the one
:func:`~covermill.analysis.rhythm.beat_chroma` that cover detection reads too: CQT chroma,
median per beat, each beat peak-scaled), so tempo changes drop out; :func:`chroma_similarity`
removes each song's mean chroma and scales every beat to unit norm, so that only the movement
of the harmony is compared (raw chroma vectors are all alike: any two
songs score above 0.7 with them). Two sequences are compared under all 12
transpositions by dynamic time warping (cosine distance, a diagonal band so that the
alignment stays roughly linear); the similarity is ``1 - mean cost along the best path``,
at most 1.

A similarity only means something beside a floor: the same measure between the
original and an unrelated recording (by default Kevin MacLeod's arrangement of the
Sugar Plum Fairy, CC-BY 3.0, shipped in ``covermill/analysis/data/``; its features come from
cover detection's reference cache, :func:`~covermill.analysis.cover.reference_features`).
"""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np

from . import cover as detection
from .rhythm import beat_chroma

REFERENCE_SONG = detection.REFERENCE_SONG


def _centred(chroma: np.ndarray) -> np.ndarray:
    """The song's mean chroma removed (its overall key colour), each beat unit-norm (``fill``:
    a beat equal to the mean becomes a flat unit vector)."""
    chroma = np.asarray(chroma, np.float64)
    chroma = chroma - chroma.mean(axis=1, keepdims=True)
    return librosa.util.normalize(chroma, norm=2, axis=0, fill=True).astype(np.float32)


def chroma_similarity(a: np.ndarray, b: np.ndarray, *, band: float = 0.15) -> float:
    """Best similarity (at most 1) of beat chroma ``a`` and ``b`` (``(12, n_beats)``, from
    :func:`~covermill.analysis.rhythm.beat_chroma`) over the 12 transpositions."""
    if a.shape[1] < 2 or b.shape[1] < 2:
        return 0.0
    a, b = _centred(a), _centred(b)
    best = 0.0
    for shift in range(12):
        rotated = np.roll(b, shift, axis=0)
        cost = np.clip(1.0 - a.T @ rotated, 0.0, 2.0)  # cosine distance (columns are unit norm)
        D, wp = librosa.sequence.dtw(C=cost, global_constraints=True, band_rad=band, backtrack=True)
        if not np.isfinite(D[-1, -1]):
            continue
        path_cost = cost[wp[:, 0], wp[:, 1]].mean()
        best = max(best, 1.0 - float(path_cost))
    return best


def cover_similarity(original: np.ndarray, cover: np.ndarray, *, sr: int,
                     reference: str | Path | None = None) -> dict[str, float]:
    """``{"similarity", "reference", "margin"}`` of ``cover`` to ``original``.

    ``reference`` (default :data:`REFERENCE_SONG`) is an unrelated recording: its
    similarity to the original is the floor, and ``margin = similarity - reference``.
    """
    ca, _ = beat_chroma(original, sr=sr)
    cb, _ = beat_chroma(cover, sr=sr)
    sim = chroma_similarity(ca, cb)
    ref = chroma_similarity(ca, detection.reference_features(str(reference) if reference else None).chroma)
    return {"similarity": round(sim, 4), "reference": round(ref, 4), "margin": round(sim - ref, 4)}
