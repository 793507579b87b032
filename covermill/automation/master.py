"""Master bus: effect chain, loudness normalisation to a LUFS target, true-peak ceiling."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pedalboard

from ..analysis.loudness import integrated_lufs, true_peak_db
from ..recipes import Master
from .effects import build_chain


@dataclass(frozen=True)
class MasterResult:
    audio: np.ndarray
    lufs: float | None  # None for silence
    true_peak_db: float | None


def _limit(y: np.ndarray, *, sr: int, ceiling_db: float) -> np.ndarray:
    """Peak-limit so that samples stay below ``ceiling_db`` (JUCE limiter via pedalboard)."""
    g = 10.0 ** (ceiling_db / 20.0)
    limiter = pedalboard.Limiter(threshold_db=0.0, release_ms=80.0)
    return (limiter(y / g, sr) * g).astype(np.float32)


def master(y: np.ndarray, *, sr: int, spec: Master, root: str | Path | None = None) -> MasterResult:
    """Apply ``spec``: effects, then gain to ``spec.lufs``, limiting to ``spec.true_peak_db``.

    Loudness and limiting interact (limiting lowers loudness), so gain and limiter are
    iterated; a final plain gain guarantees the ceiling, measured on 4x oversampled audio.
    """
    out = np.asarray(y, dtype=np.float32)
    if spec.effects:
        out = build_chain([(e.plugin, e.params) for e in spec.effects], root=root)(out, sr)
    lufs = integrated_lufs(out, sr=sr)
    if not np.isfinite(lufs):
        return MasterResult(out, None, None)
    margin = 0.3  # sample-peak limiting target below the true-peak ceiling
    for _ in range(4):
        lufs = integrated_lufs(out, sr=sr)
        out = (out * 10.0 ** ((spec.lufs - lufs) / 20.0)).astype(np.float32)
        if true_peak_db(out, sr=sr) <= spec.true_peak_db:
            break
        out = _limit(out, sr=sr, ceiling_db=spec.true_peak_db - margin)
        if abs(integrated_lufs(out, sr=sr) - spec.lufs) < 0.1:
            break
    tp = true_peak_db(out, sr=sr)
    if tp > spec.true_peak_db:
        out = (out * 10.0 ** ((spec.true_peak_db - tp - 0.05) / 20.0)).astype(np.float32)
        tp = true_peak_db(out, sr=sr)
    return MasterResult(out, round(integrated_lufs(out, sr=sr), 2), round(tp, 2))
