"""Per-stem processing and summing: pan (constant power), effect chain, gain.

Pan law: ``theta = (pan + 1) * pi / 4``, left gain ``cos(theta)``, right gain
``sin(theta)``. A mono source is spread with exactly those gains (-3 dB each side at
centre, total power constant); a stereo source is balanced with the same gains times
``sqrt(2)``, so a centred stereo stem passes unchanged and ``pan = -1`` silences the
right channel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..audio import check_audio
from ..recipes import Stem
from .effects import build_chain


def pan_gains(pan: float) -> tuple[float, float]:
    """Constant-power (left, right) gains for ``pan`` in [-1, 1]."""
    theta = (float(np.clip(pan, -1.0, 1.0)) + 1.0) * np.pi / 4.0
    left, right = float(np.cos(theta)), float(np.sin(theta))
    # exact zeros at the extremes (cos(pi/2) is 6e-17, not 0)
    return (0.0 if pan >= 1.0 else left), (0.0 if pan <= -1.0 else right)


def pan(y: np.ndarray, pan: float) -> np.ndarray:
    """Place mono ``(1, n)`` or balance stereo ``(2, n)`` audio; returns ``(2, n)``."""
    left, right = pan_gains(pan)
    if y.shape[0] == 1:
        return np.vstack([y[0] * left, y[0] * right]).astype(np.float32)
    scale = np.sqrt(2.0)
    return np.vstack([y[0] * left * scale, y[1] * right * scale]).astype(np.float32)


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def process_stem(y: np.ndarray, *, sr: int, spec: Stem, root: str | Path | None = None) -> np.ndarray:
    """Pan, run the effect chain and apply the gain of one stem; returns float32 ``(2, n)``."""
    y = check_audio(y, sr)
    out = pan(y, spec.pan)
    if spec.effects:
        board = build_chain([(e.plugin, e.params) for e in spec.effects], root=root)
        out = board(out, sr)
    return (out * db_to_gain(spec.gain_db)).astype(np.float32)


def sum_stems(stems: list[np.ndarray], *, length: int) -> np.ndarray:
    """Sum ``(2, n_i)`` arrays into ``(2, length)``, padding or trimming each."""
    bus = np.zeros((2, length), np.float32)
    for y in stems:
        n = min(length, y.shape[1])
        bus[:, :n] += y[:, :n]
    return bus
