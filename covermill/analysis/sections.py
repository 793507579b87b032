"""Sections by repetition: the song cut into phrases, phrases that repeat labelled alike.

Pop, rock and most dance music is built from 4-bar phrases. The beats are grouped into
phrases of ``phrase_bars`` bars from the first bar (or from another bar when the phrases
cut there repeat each other clearly better: an intro of odd length); each phrase's beat chroma, averaged per bar, is compared with the
phrases before it (Pearson correlation of the ``(12, phrase_bars)`` bar chroma). A phrase
correlating at ``same`` or more with an earlier one takes its label, otherwise it gets the
next letter (A, B, C, ...); neighbouring phrases with one label merge into one section
(verse twice = one "A" section). Without bars (free time) a phrase is 16 chroma columns.
"""

from __future__ import annotations

import string

import numpy as np

from ..leadsheet import Section


def _bar_profile(chroma_unit: np.ndarray, cols: list[np.ndarray]) -> np.ndarray:
    return np.stack([chroma_unit[:, c].mean(axis=1) if len(c) else np.zeros(12) for c in cols], axis=1)


def _phrases(bar_cols: list[np.ndarray], phrase_bars: int, offset: int) -> list[list[np.ndarray]]:
    """Bars grouped into phrases of ``phrase_bars`` from bar ``offset`` (earlier bars: one phrase)."""
    cuts = ([0] if offset else []) + list(range(offset, len(bar_cols), phrase_bars))
    phrases = [bar_cols[a:b] for a, b in zip(cuts, cuts[1:] + [len(bar_cols)], strict=True) if b > a]
    if len(phrases) > 1 and len(phrases[-1]) < phrase_bars // 2:  # a short last phrase joins the one before
        phrases[-2] = phrases[-2] + phrases.pop()
    return phrases


def _vector(chroma_unit: np.ndarray, phrase: list[np.ndarray], phrase_bars: int) -> np.ndarray:
    prof = _bar_profile(chroma_unit, phrase[-phrase_bars:] if len(phrase) < phrase_bars else phrase[:phrase_bars])
    if prof.shape[1] < phrase_bars:
        prof = np.pad(prof, ((0, 0), (phrase_bars - prof.shape[1], 0)), mode="edge")
    v = prof.ravel() - prof.mean()
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _repetition(chroma_unit: np.ndarray, phrases: list[list[np.ndarray]], phrase_bars: int) -> float:
    """Mean over phrases of the best correlation with another phrase: highest when the cuts fall on the
    song's own phrase boundaries."""
    if len(phrases) < 2:
        return -1.0
    vs = np.stack([_vector(chroma_unit, p, phrase_bars) for p in phrases])
    sim = vs @ vs.T
    np.fill_diagonal(sim, -1.0)
    return float(sim.max(axis=1).mean())


def sections(chroma_unit: np.ndarray, starts_s: np.ndarray, *, duration_s: float, beats_per_bar: int = 4,
             phase: int = 0, bars: bool = True, phrase_bars: int = 4, same: float = 0.75) -> tuple[Section, ...]:
    """Sections of a song from unit chroma ``(12, n)`` whose column ``i`` starts at ``starts_s[i]``.

    With ``bars``, columns are beats and beat ``phase + k * beats_per_bar`` starts bar ``k``;
    otherwise the columns are cut into groups of 16.
    """
    n = chroma_unit.shape[1]
    if duration_s <= 0:
        return ()
    per_bar = beats_per_bar if bars else 4
    first = phase if bars else 0
    bar_starts = list(range(first, n, per_bar))
    if not bar_starts or n < 2 * phrase_bars * per_bar:
        return (Section(0.0, float(duration_s), "A"),)
    bar_cols = [np.arange(a, min(a + per_bar, n)) for a in bar_starts]
    if 2 * bar_starts[0] >= per_bar:  # a pick-up of half a bar or more counts as a bar (the tracker missed a beat)
        bar_cols.insert(0, np.arange(0, bar_starts[0]))
    elif bar_starts[0] > 0:  # a shorter one joins the first bar
        bar_cols[0] = np.arange(0, bar_cols[0][-1] + 1)
    # phrases from the first bar, unless the cuts elsewhere make the phrases repeat clearly better
    scored = [(_repetition(chroma_unit, _phrases(bar_cols, phrase_bars, o), phrase_bars) - (0.1 if o else 0.0), o)
              for o in range(phrase_bars)]
    phrases = _phrases(bar_cols, phrase_bars, max(scored)[1])
    labels: list[str] = []
    protos: list[tuple[np.ndarray, str]] = []
    letters = iter(string.ascii_uppercase)
    for phrase in phrases:
        v = _vector(chroma_unit, phrase, phrase_bars)
        label = ""
        for proto, name in protos:
            if float(proto @ v) >= same:
                label = name
                break
        if not label:
            label = next(letters, "Z")
            protos.append((v, label))
        labels.append(label)
    out: list[Section] = []
    for i, (phrase, label) in enumerate(zip(phrases, labels, strict=True)):
        a = 0.0 if i == 0 else float(starts_s[phrase[0][0]])
        b = float(starts_s[phrases[i + 1][0][0]]) if i + 1 < len(phrases) else float(duration_s)
        if out and out[-1].label == label:
            out[-1] = Section(out[-1].start_s, b, label)
        elif b > a:
            out.append(Section(a, b, label))
    return tuple(out)
