"""The key of a song from its beat chroma and its decoded chords.

:func:`estimate_key` scores the 24 major and minor keys and keeps the best:

- **profile** — Pearson correlation of the energy-weighted chroma profile with the
  Albrecht-Shanahan key profiles (Albrecht & Shanahan 2013, "The Use of Large Corpora to
  Train a New Type of Key-Finding Algorithm", *Music Perception* 31(1); the pitch-class
  distributions of 490 pieces). They weight the tonic and fifth far above the other scale
  tones, which settles most dominant confusions (a key against the key a fifth above)
  where the Krumhansl-Kessler probe-tone profiles did not. A key and its relative minor or
  major share a scale, so their profiles differ only in weighting: a key's term is the
  better of the two correlations plus :data:`OWN_PROFILE` of the difference to its own,
  and the chord terms below decide between the two tonics;
- **tonic at phrase starts** — the share of phrase starts (the first bar and every
  ``phrase_bars``-th bar after it) that begin on the key's tonic chord (in major also a
  dominant seventh: the I7 of a blues): songs and their
  sections start on the tonic far more often than on its relative (``Am F C G`` is A minor,
  ``C Am F G`` C major: same chords, same chroma);
- **dominant** — the share of beats on the key's major V (or V7), and of bar changes that
  resolve V -> I: the dominant points at its tonic in major and (harmonic) minor alike;
- **fit** — the share of beats whose chord's triad lies in the key's scale (in minor, the
  natural minor scale and the leading tone); a seventh may lie outside (a blues' I7 and IV7).

The chord terms weigh 0.3 each against the profile's 1.0; without chords (or without bars)
the terms that need them are left out. Key profiles are plain published numbers, so no
library is needed for them (librosa has none; music21 has them but is a large dependency
for 24 numbers; essentia is AGPL-3.0).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..leadsheet import CHORD_INTERVALS, MODE_SCALES, Key
from .chords import compress

__all__ = ["estimate_key", "key_scores", "phrase_columns", "PROFILES", "WEIGHTS"]

#: Albrecht-Shanahan key profiles (C major, C minor): pitch-class distributions of a corpus.
PROFILES: dict[str, np.ndarray] = {
    "major": np.array([0.238, 0.006, 0.111, 0.006, 0.137, 0.094, 0.016, 0.214, 0.009, 0.080, 0.008, 0.081]),
    "minor": np.array([0.220, 0.006, 0.104, 0.123, 0.019, 0.103, 0.012, 0.214, 0.062, 0.022, 0.061, 0.052]),
}
#: Weight of each term of a key's score (see the module docstring).
WEIGHTS: dict[str, float] = {"profile": 1.0, "tonic_start": 0.3, "dominant": 0.3, "cadence": 0.3, "fit": 0.3}

#: Share of a key's profile term that is its own correlation; the rest is the better of its own and
#: its relative's (they share a scale, and the profile tells their tonics apart only weakly).
OWN_PROFILE = 0.25

#: Chords that can be the tonic: in major also the dominant seventh (the I7 of a blues).
_TONIC_QUALITIES = {"major": ("maj", "maj7", "maj6", "7"), "minor": ("min", "min7", "min6")}
_DOMINANT_QUALITIES = ("maj", "7")

ChordLabel = tuple[int, str] | None


def _is_tonic(c: ChordLabel, tonic: int, mode: str) -> bool:
    return c is not None and c[0] == tonic and c[1] in _TONIC_QUALITIES[mode]


def _is_dominant(c: ChordLabel, tonic: int) -> bool:
    return c is not None and c[0] == (tonic + 7) % 12 and c[1] in _DOMINANT_QUALITIES


def _share(flags: Sequence[bool]) -> float:
    return float(np.mean(flags)) if len(flags) else 0.0


def key_scores(chroma: np.ndarray, weights: np.ndarray | None = None, chords: Sequence[ChordLabel] | None = None, *,
               bar_starts: Sequence[int] | None = None, phrase_starts: Sequence[int] | None = None,
               phrase_bars: int = 4) -> dict[tuple[int, str], dict[str, float]]:
    """Every key's terms: ``{(tonic, mode): {"profile": r, "tonic_start": ..., ...}}``.

    Parameters are those of :func:`estimate_key`. Empty dict when the chroma has no pitch
    (all zero, or every pitch class alike).
    """
    x = compress(chroma)
    if x.shape[1] == 0 or not np.any(x):
        return {}
    w = np.ones(x.shape[1]) if weights is None else np.asarray(weights, float)
    profile = (x * w[None]).sum(axis=1)
    if profile.max() <= 0 or float(np.std(profile)) < 1e-9:
        return {}
    labels = list(chords) if chords is not None else []
    voiced = [c for c in labels if c is not None]
    has_bars = bar_starts is not None and len(bar_starts) > 0
    if has_bars:
        bars = [labels[i] for i in bar_starts if 0 <= i < len(labels)]
        firsts = bars[::phrase_bars]
    else:  # no bars (free time): the chord changes stand in for them, the first chord starts the phrase
        bars = [c for i, c in enumerate(labels) if i == 0 or c != labels[i - 1]]
        firsts = [c for c in bars if c is not None][:1]
    if phrase_starts is not None:
        firsts = [labels[i] for i in phrase_starts if 0 <= i < len(labels)]
    firsts = [c for c in firsts if c is not None]
    r = {(tonic, mode): float(np.corrcoef(profile, np.roll(prof, tonic))[0, 1])
         for mode, prof in PROFILES.items() for tonic in range(12)}
    out: dict[tuple[int, str], dict[str, float]] = {}
    for mode in PROFILES:
        for tonic in range(12):
            relative = ((tonic + 9) % 12, "minor") if mode == "major" else ((tonic + 3) % 12, "major")
            # a key and its relative share a scale: the profile mostly tells which scale, the chords which tonic
            own = r[(tonic, mode)]
            terms = {"profile": OWN_PROFILE * own + (1.0 - OWN_PROFILE) * max(own, r[relative])}
            if voiced:
                scale = {(tonic + i) % 12 for i in MODE_SCALES[mode]}
                if mode == "minor":
                    scale.add((tonic + 11) % 12)  # the leading tone of harmonic minor (V, V7)
                terms["tonic_start"] = _share([_is_tonic(c, tonic, mode) for c in firsts])
                terms["dominant"] = _share([_is_dominant(c, tonic) for c in voiced])
                terms["cadence"] = _share([_is_dominant(a, tonic) and _is_tonic(b, tonic, mode)
                                           for a, b in zip(bars[:-1], bars[1:], strict=True)])
                # the triad must fit; a seventh may colour it (the b7 of a blues I7 and IV7)
                terms["fit"] = _share([all((c[0] + i) % 12 in scale for i in CHORD_INTERVALS[c[1]][:3]) for c in voiced])
            out[(tonic, mode)] = terms
    return out


def estimate_key(chroma: np.ndarray, weights: np.ndarray | None = None, chords: Sequence[ChordLabel] | None = None, *,
                 bar_starts: Sequence[int] | None = None, phrase_starts: Sequence[int] | None = None,
                 phrase_bars: int = 4) -> Key | None:
    """The key of beat chroma ``(12, n)``; ``None`` when there is no pitched content.

    Parameters
    ----------
    chroma : np.ndarray [shape=(12, n)]
        One chroma column per beat (or frame), un-normalised.
    weights : np.ndarray [shape=(n,)] or None
        Each column's weight in the profile (its level relative to the loudest, 0..1).
    chords : sequence of ``(root, quality)`` or ``None`` ("N"), one per column, or None
        The decoded chords; without them only the profile decides.
    bar_starts : sequence of int or None
        Columns on which a bar starts (the downbeats), in order. Phrases start on the first
        and every ``phrase_bars``-th bar. Without bars the chord changes stand in for bars
        and only the first chord counts as a phrase start.
    phrase_starts : sequence of int or None
        Columns on which a phrase starts (:func:`phrase_columns`), where the bars alone do not
        tell (a lead-in before the first tracked bar); default every ``phrase_bars``-th bar start.

    Returns
    -------
    Key or None
        ``confidence`` is five times the margin over the runner-up, clipped to 0..1.

    Examples
    --------
    >>> estimate_key(chroma, energy, chords, bar_starts=range(1, n, 4)).label  # doctest: +SKIP
    'A minor'
    """
    terms = key_scores(chroma, weights, chords, bar_starts=bar_starts, phrase_starts=phrase_starts,
                       phrase_bars=phrase_bars)
    if not terms:
        return None
    ranked = sorted(((sum(WEIGHTS[name] * v for name, v in t.items()), k) for k, t in terms.items()), reverse=True)
    (best, (tonic, mode)), (second, _) = ranked[0], ranked[1]
    confidence = float(np.clip((best - second) * 5.0, 0.0, 1.0))
    return Key(tonic, mode, round(confidence, 3))


def phrase_columns(col_starts_s: np.ndarray, downbeats_s: np.ndarray, *, onset_s: float, bar_s: float,
                   phrase_bars: int = 4) -> list[int]:
    """Columns on which a phrase starts: the music's first bar and every ``phrase_bars``-th bar after it.

    The bars are the tracked ``downbeats_s``; whole bars of music between ``onset_s`` (where the
    sound starts) and the first downbeat (a beat tracker often misses the first beats) count
    too, so the phrase grid starts where the song does. ``col_starts_s`` are the columns' start
    times (sorted); a phrase starts in the column holding its first downbeat.
    """
    downs = np.asarray(downbeats_s, float)
    starts = np.asarray(col_starts_s, float)
    if not len(downs) or not len(starts) or not bar_s > 0:
        return []
    before = max(0, int(round((downs[0] - onset_s) / bar_s)))  # bars of music before the first downbeat
    times = [downs[0] - (before - v) * bar_s for v in range(0, before, phrase_bars)]
    times += [float(downs[k]) for k in range(len(downs)) if (k + before) % phrase_bars == 0]
    cols = np.searchsorted(starts, np.asarray(times) + 1e-6, side="right") - 1
    return sorted({int(c) for c in np.clip(cols, 0, len(starts) - 1)})
