"""Typical tempo ranges per genre, for ``tempo: {genre_range: true}``.

The ranges are the ones commonly given in music-production references (genre tempo
charts of DAW and sample-library vendors, and producers' rules of thumb); they describe
where most tracks of a genre sit, not limits. They are approximate on purpose: see
``docs/genres.md`` for the table, its sources, and why the tempo column of the GTZAN
feature table is not used instead (its librosa estimates put classical at 123 BPM and
jazz above pop).
"""

from __future__ import annotations

import math

#: A recipe's target genre -> the shipped taste model's class that stands for it (the GTZAN
#: classes have no folk, bossa nova, lo-fi or chiptune).
NEAREST_CLASS: dict[str, str] = {"folk": "country", "bossa nova": "jazz", "lofi": "hiphop", "chiptune": "disco"}

#: genre -> (low, high) typical tempo in BPM
GENRE_TEMPO_BPM: dict[str, tuple[float, float]] = {
    "blues": (60.0, 120.0),
    "bossa nova": (110.0, 140.0),
    "chiptune": (120.0, 160.0),
    "classical": (60.0, 140.0),
    "country": (90.0, 130.0),
    "disco": (110.0, 130.0),
    "drum and bass": (160.0, 180.0),
    "folk": (80.0, 120.0),
    "hiphop": (85.0, 100.0),
    "house": (118.0, 130.0),
    "jazz": (90.0, 140.0),
    "lofi": (70.0, 90.0),
    "metal": (100.0, 160.0),
    "pop": (100.0, 130.0),
    "reggae": (60.0, 90.0),
    "rock": (110.0, 140.0),
    "techno": (120.0, 140.0),
}


def into_range(source_bpm: float, genre: str) -> float:
    """Target tempo for ``source_bpm`` in ``genre``: unchanged if already in range, else
    the nearest edge of the range (also trying half and double time, which keep the feel)."""
    lo, hi = GENRE_TEMPO_BPM[genre]
    if not math.isfinite(source_bpm):
        return source_bpm
    candidates = []
    for feel in (0.5, 1.0, 2.0):
        bpm = source_bpm * feel
        if lo <= bpm <= hi:
            return bpm
        candidates.append(min(max(bpm, lo), hi) / feel)
    return min(candidates, key=lambda c: abs(math.log(c / source_bpm)))
