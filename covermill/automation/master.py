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

    Gain moves loudness and true peak by exactly its dB value, so each is measured once per
    pass and the gain is worked out, not searched: when the gained signal's true peak stays
    under the ceiling there is nothing to limit (one loudness and one true-peak measurement
    in all). Otherwise the limiter holds sample peaks a little under the ceiling, which lowers
    loudness, so gain and limiter alternate (at most four passes) until loudness is within
    0.1 LU of the target; a final plain gain guarantees the ceiling, measured on 4x
    oversampled audio. The reported loudness is measured on the returned audio.
    """
    out = np.asarray(y, dtype=np.float32)
    if spec.effects:
        out = build_chain([(e.plugin, e.params) for e in spec.effects], root=root)(out, sr)
    lufs = integrated_lufs(out, sr=sr)
    if not np.isfinite(lufs):
        return MasterResult(out, None, None)
    margin = 0.3  # sample-peak limiting target below the true-peak ceiling
    for _ in range(4):
        gain_db = spec.lufs - lufs
        out = (out * 10.0 ** (gain_db / 20.0)).astype(np.float32)
        tp = true_peak_db(out, sr=sr)
        if tp <= spec.true_peak_db:
            break
        out = _limit(out, sr=sr, ceiling_db=spec.true_peak_db - margin)
        lufs = integrated_lufs(out, sr=sr)
        if abs(lufs - spec.lufs) < 0.1:
            tp = true_peak_db(out, sr=sr)
            break
    else:  # four passes, the last one limited: measure what the limiter left
        tp = true_peak_db(out, sr=sr)
    if tp > spec.true_peak_db:
        trim_db = spec.true_peak_db - tp - 0.05
        out = (out * 10.0 ** (trim_db / 20.0)).astype(np.float32)
        tp += trim_db
    return MasterResult(out, round(integrated_lufs(out, sr=sr), 2), round(tp, 2))
