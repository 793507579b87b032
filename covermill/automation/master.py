"""Master bus: effect chain, loudness normalisation to a LUFS target, true-peak ceiling."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pedalboard

from ..analysis.loudness import block_powers, lufs_from_blocks, true_peak_db
from ..effects import build_chain
from ..recipes import Master


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


def _measure(y: np.ndarray, *, sr: int) -> tuple[np.ndarray, float]:
    """Loudness block powers and true peak of ``y``, side by side (both filters release the GIL)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        blocks = pool.submit(block_powers, y, sr=sr)
        peak = pool.submit(true_peak_db, y, sr=sr)
        return blocks.result(), peak.result()


def master(y: np.ndarray, *, sr: int, spec: Master, root: str | Path | None = None) -> MasterResult:
    """Apply ``spec``: effects, then gain to ``spec.lufs``, limiting to ``spec.true_peak_db``.

    A gain moves the true peak by exactly its dB value and scales every loudness block's
    power by its square, so after one measurement of the signal (block powers and true peak)
    the gain is worked out, not searched, and the loudness after it is computed from the
    blocks. When the gained signal's true peak stays under the ceiling that is all (the
    common case: one measurement). Otherwise the limiter holds sample peaks a little under
    the ceiling, which lowers loudness, so gain and limiter alternate (at most four passes,
    each measuring the limited signal once) until loudness is within 0.1 LU of the target; a
    final plain gain guarantees the ceiling, measured on 4x oversampled audio.
    """
    out = np.asarray(y, dtype=np.float32)
    if spec.effects:
        out = build_chain([(e.plugin, e.params) for e in spec.effects], root=root)(out, sr)
    blocks, tp = _measure(out, sr=sr)
    lufs = lufs_from_blocks(blocks)
    if not np.isfinite(lufs):
        return MasterResult(out, None, None)
    margin = 0.3  # sample-peak limiting target below the true-peak ceiling
    for _ in range(4):
        gain_db = spec.lufs - lufs
        out, blocks, tp = _gain(out, blocks, tp, gain_db)
        lufs = lufs_from_blocks(blocks)
        if tp <= spec.true_peak_db:
            break
        out = _limit(out, sr=sr, ceiling_db=spec.true_peak_db - margin)
        blocks, tp = _measure(out, sr=sr)
        lufs = lufs_from_blocks(blocks)
        if abs(lufs - spec.lufs) < 0.1:
            break
    if tp > spec.true_peak_db:
        out, blocks, tp = _gain(out, blocks, tp, spec.true_peak_db - tp - 0.05)
        lufs = lufs_from_blocks(blocks)
    return MasterResult(out, round(lufs, 2), round(tp, 2))


def _gain(out: np.ndarray, blocks: np.ndarray, tp: float, gain_db: float) -> tuple[np.ndarray, np.ndarray, float]:
    a = 10.0 ** (gain_db / 20.0)
    return (out * a).astype(np.float32), blocks * (a * a), tp + gain_db
