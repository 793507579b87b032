"""Sections by repetition: boundaries where the beat chroma's self-similarity changes, labels by
which segments repeat each other.

Boundaries: :func:`librosa.segment.agglomerative` on delay-embedded beat chroma (4 beats), its
number of segments about one per 16 beats (clamped 1..10), moved to the nearest bar line.
Labels: every segment's chroma is resampled to 16 columns; a segment takes the label of the
first earlier segment whose resampled chroma correlates at ``same`` or more, else the next
letter (A, B, C, ...).
"""

from __future__ import annotations

import string

import librosa
import numpy as np

from ..leadsheet import Section


def _resampled(x: np.ndarray, n: int = 16) -> np.ndarray:
    pos = np.linspace(0, x.shape[1] - 1, n)
    return np.stack([np.interp(pos, np.arange(x.shape[1]), row) for row in x])


def sections(chroma_unit: np.ndarray, beat_starts_s: np.ndarray, *, duration_s: float,
             bar_starts_s: np.ndarray | None = None, beats_per_segment: int = 16,
             same: float = 0.8) -> tuple[Section, ...]:
    """Sections of a song from unit beat chroma ``(12, n)`` whose column ``i`` starts at ``beat_starts_s[i]``."""
    n = chroma_unit.shape[1]
    if n < 2 * beats_per_segment or duration_s <= 0:
        return (Section(0.0, float(duration_s), "A"),) if duration_s > 0 else ()
    k = int(np.clip(round(n / beats_per_segment), 1, 10))
    feat = librosa.feature.stack_memory(chroma_unit, n_steps=4, delay=1, mode="edge")
    bounds = sorted(set(int(b) for b in librosa.segment.agglomerative(feat, k)) | {0})
    times = [float(beat_starts_s[b]) for b in bounds]
    if bar_starts_s is not None and len(bar_starts_s):
        bars = np.asarray(bar_starts_s, float)
        times = [float(bars[np.argmin(np.abs(bars - t))]) if i else 0.0 for i, t in enumerate(times)]
    times = sorted(set([0.0] + times))
    ends = times[1:] + [float(duration_s)]
    spans = [(a, b) for a, b in zip(times, ends, strict=True) if b - a > 1e-3]
    protos: list[tuple[np.ndarray, str]] = []
    out = []
    letters = iter(string.ascii_uppercase)
    label = "A"
    for a, b in spans:
        cols = (beat_starts_s >= a - 1e-6) & (beat_starts_s < b - 1e-6)
        if cols.sum() >= 2:
            r = _resampled(chroma_unit[:, cols]).ravel()
            r = r - r.mean()
            label = ""
            for proto, name in protos:
                den = float(np.linalg.norm(proto) * np.linalg.norm(r))
                if den > 0 and float(proto @ r) / den >= same:
                    label = name
                    break
            if not label:
                label = next(letters, "Z")
                protos.append((r, label))
        out.append(Section(float(a), float(b), label or "A"))
    return tuple(out)
