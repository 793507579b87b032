"""Chords from beat-synchronous chroma (the key is :mod:`.key`'s).

- :func:`decode_chords`: one chord per beat by a Viterbi path (an HMM whose states are the
  chord templates of :data:`QUALITIES` on 12 roots plus "N") over cosine similarities of
  the beat's chroma with each template; a change costs ``change_penalty`` except where
  ``change_ok`` says a bar (or half bar) starts.
"""

from __future__ import annotations

import numpy as np

from ..leadsheet import CHORD_INTERVALS

#: Chord qualities the decoder chooses from (mir_eval shorthand), with a log-prior each:
#: sevenths and the rarer triads must explain the chroma clearly better than a plain triad.
QUALITIES: dict[str, float] = {"maj": 0.0, "min": 0.0, "7": -0.01, "min7": -0.03, "dim": -0.12, "sus4": -0.12}


def chord_templates() -> tuple[list[tuple[int, str]], np.ndarray, np.ndarray]:
    """``(labels, templates, log_prior)``: ``labels[i] = (root, quality)``; templates ``(n, 12)``
    unit-norm, the root weighted a little above the other tones."""
    labels, rows, prior = [], [], []
    for quality, lp in QUALITIES.items():
        for root in range(12):
            t = np.zeros(12)
            for k, i in enumerate(CHORD_INTERVALS[quality]):
                t[(root + i) % 12] = 1.2 if k == 0 else (0.8 if k == 3 else 1.0)
            labels.append((root, quality))
            rows.append(t / np.linalg.norm(t))
            prior.append(lp)
    return labels, np.array(rows), np.array(prior)


def compress(chroma: np.ndarray, floor: float = 0.1) -> np.ndarray:
    """Column-unit-norm chroma after each column is scaled to a maximum of 1 and ``floor`` is
    taken off (the spread of partials and the noise between tones); silent columns stay 0."""
    x = np.maximum(chroma, 0.0)
    peak = x.max(axis=0, keepdims=True)
    x = np.where(peak > 1e-9, np.maximum(x / np.maximum(peak, 1e-12) - floor, 0.0), 0.0)
    norm = np.linalg.norm(x, axis=0, keepdims=True)
    return np.where(norm > 1e-9, x / np.maximum(norm, 1e-12), 0.0)


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=0, keepdims=True)
    return np.where(norm > 1e-9, x / np.maximum(norm, 1e-12), 0.0)


def decode_chords(chroma: np.ndarray, energy: np.ndarray, *, change_ok: np.ndarray | None = None,
                  sharpness: float = 14.0, change_penalty: float = 0.3, off_bar_penalty: float = 1.5,
                  n_level: float = 0.04, n_base: float = 0.6, bass: np.ndarray | None = None) -> list[tuple[int, str] | None]:
    """One chord per column of ``chroma`` ``(12, n)``: ``(root, quality)`` or ``None`` ("N").

    ``energy`` ``(n,)`` is each column's level relative to the loudest (0..1); below
    ``n_level``, or where the chroma is flat (no pitch), "N" wins. ``change_ok`` marks
    columns where a chord may change at the plain ``change_penalty``; elsewhere a change
    costs ``off_bar_penalty`` more. ``bass`` ``(12, n)`` (optional, unit columns) adds
    evidence for the root.
    """
    n = chroma.shape[1]
    if n == 0:
        return []
    labels, templates, prior = chord_templates()
    x = compress(chroma)
    sim = templates @ x  # (n_chords, n)
    if bass is not None:
        roots = np.array([r for r, _ in labels])
        sim = sim + 0.25 * bass[roots]
    # "N": silence or a flat chroma (noise, drums) — how far the best template is above a flat column
    flat = np.full(12, 1 / np.sqrt(12))
    flatness = flat @ _unit(np.maximum(chroma, 0.0))  # 1.0 for a flat column
    n_score = np.where(energy < n_level, 2.0, 0.0) + np.where(flatness > 0.985, 1.0, 0.0) + n_base
    log_obs = sharpness * np.vstack([sim + prior[:, None], n_score[None]])  # (n_chords + 1, n)
    n_states = log_obs.shape[0]
    ok = np.ones(n, bool) if change_ok is None else np.asarray(change_ok, bool)
    score = log_obs[:, 0].copy()
    back = np.zeros((n, n_states), np.int32)
    for t in range(1, n):
        pen = change_penalty * sharpness * (1.0 if ok[t] else 1.0 + off_bar_penalty)
        best = int(np.argmax(score))
        stay = score
        move = score[best] - pen
        take_move = move > stay
        back[t] = np.where(take_move, best, np.arange(n_states))
        score = np.where(take_move, move, stay) + log_obs[:, t]
    path = np.zeros(n, np.int32)
    path[-1] = int(np.argmax(score))
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return [None if s == len(labels) else labels[s] for s in path]
