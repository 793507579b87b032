"""Meter: is there a steady beat, how many beats to a bar, and where the bars start.

Downbeats are where the harmony changes and the low end (kick, bass) hits: for every
meter ``m`` in :data:`METERS` and phase ``p``, :func:`downbeats` scores the beats
``p, p + m, p + 2m, ...`` by their mean accent minus the mean of the other beats,
each accent (chord-change novelty of the beat chroma, low-band onset strength, bass-note
onsets) normalised to unit spread first. The meter and phase with the highest
contrast win; a 4-beat bar whose half bars also fit is preferred over 2-beat ones.
"""

from __future__ import annotations

import librosa
import numpy as np

#: The meters the estimator chooses between (beats per bar).
METERS = (3, 4)


def beat_is_steady(beats_s: np.ndarray, bpm: float, onset: np.ndarray, fps: float) -> bool:
    """Whether a tracked beat grid is a real pulse, not a grid laid over free time.

    Needs at least 4 beats, steady intervals (coefficient of variation below 0.12), an onset
    envelope whose autocorrelation at the beat period stands out (>= 0.3 of lag 0), and an
    onset peak within 70 ms of at least half of the beats (a tracker forced onto rubato
    music lays most of its beats between the notes).
    """
    if len(beats_s) < 4 or not np.isfinite(bpm) or bpm <= 0:
        return False
    ibi = np.diff(beats_s)
    if float(np.std(ibi) / max(float(np.mean(ibi)), 1e-9)) > 0.12:
        return False
    x = onset - onset.mean()
    denom = float(x @ x)
    if denom <= 0:
        return False
    lag = 60.0 * fps / bpm
    lo = int(np.floor(lag))
    if lo + 1 >= len(x):
        return False
    ac = max(float(x[:-k] @ x[k:]) / denom for k in (lo, lo + 1))
    if ac < 0.3:
        return False
    peaks = librosa.util.peak_pick(onset, pre_max=3, post_max=3, pre_avg=10, post_avg=10,
                                   delta=0.5 * float(onset.std()), wait=2) / fps
    if len(peaks) == 0:
        return False
    gaps = np.abs(peaks[None, :] - np.asarray(beats_s)[:, None]).min(axis=1)
    return float(np.mean(gaps < 0.07)) >= 0.5


def _z(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, float)
    s = float(np.std(x))
    return (x - x.mean()) / s if s > 1e-9 else np.zeros_like(x)


def harmonic_novelty(chroma_unit: np.ndarray, width: int = 2) -> np.ndarray:
    """Per beat: cosine distance between the mean chroma of the ``width`` beats before and from it."""
    n = chroma_unit.shape[1]
    out = np.zeros(n)
    for i in range(1, n):
        a = chroma_unit[:, max(0, i - width):i].mean(axis=1)
        b = chroma_unit[:, i:i + width].mean(axis=1)
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        if na > 1e-9 and nb > 1e-9:
            out[i] = 1.0 - float(a @ b) / (na * nb)
    return out


def downbeats(accents: dict[str, np.ndarray], *, weights: dict[str, float] | None = None,
              meters: tuple[int, ...] = METERS) -> tuple[int, int, dict[int, float]]:
    """``(beats_per_bar, phase, contrast_per_meter)`` from per-beat accents (each ``(n_beats,)``).

    Beat ``phase + k * beats_per_bar`` starts bar ``k`` (earlier beats form a pick-up bar).
    """
    weights = weights or {}
    n = len(next(iter(accents.values()))) if accents else 0
    if n < 2 * min(meters):
        return 4, 0, {}
    total = np.zeros(n)
    for name, a in accents.items():
        total += weights.get(name, 1.0) * _z(a)
    best: dict[int, tuple[float, int]] = {}
    for m in meters:
        if n < 2 * m:
            continue
        scores = []
        for p in range(m):
            on = np.zeros(n, bool)
            on[p::m] = True
            scores.append(float(total[on].mean() - total[~on].mean()))
        p = int(np.argmax(scores))
        best[m] = (scores[p], p)
    # a 3-beat bar must beat a 4-beat one clearly: 4/4 music also has some 3-periodic accents
    m = max(best, key=lambda k: best[k][0] * (1.0 if k == 4 else 0.85))
    return m, best[m][1], {k: round(v[0], 3) for k, v in best.items()}
