"""The melody of a separated lead checked against the mix: bleed out, gaps filled.

A separator without weights (the DSP one) leaves part of the accompaniment in the vocals stem
and part of the melody outside it. Where the melody is missing from the stem, pYIN of the stem
locks on what is left there (chord tones of the keys, often an octave below the tune) or hears
nothing. A bleed note's pitch is barely in the stem compared with the mix (the accompaniment is
mostly elsewhere), while a melody note is mostly in it. Both functions work on one averaged
spectrum per note or grid cell, so their cost grows with the number of notes, not with the
song's length:

* :func:`reject_bleed` measures, per note, the stem's share of the mix's energy at the note's
  harmonics and replaces a note far below the song's median share by the predominant pitch of
  the mix over the same span (harmonic summation, the highest strong pitch in the melody
  range), or drops it;
* :func:`fill_gaps` gives the grid cells (eighths) the notes leave empty that predominant pitch
  where the stem holds some of it.

The predominant pitch follows the "highest strong line" rule: it assumes the melody lies above
the accompaniment, and is used only where the stem's own f0 failed. Numbers: docs/leadsheet.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..leadsheet import Note

#: FFT size of the per-note spectra (at 22050 Hz: 2.7 Hz bins, a quarter of a semitone at G3).
N_FFT = 8192
#: Frames of a note's spectrum: shorter windows, zero-padded to :data:`N_FFT`, averaged.
FRAME = 2048


def note_spectra(y: np.ndarray, *, sr: int, spans_s: Sequence[tuple[float, float]]) -> np.ndarray:
    """Mean magnitude spectrum ``(len(spans_s), N_FFT // 2 + 1)`` of mono ``y`` over each span."""
    y = np.asarray(y, np.float32)
    out = np.zeros((len(spans_s), N_FFT // 2 + 1), np.float32)
    win = np.hanning(FRAME).astype(np.float32)
    for i, (t0, t1) in enumerate(spans_s):
        a = max(0, int(t0 * sr))
        b = min(len(y), max(int(t1 * sr), a + 1))
        seg = y[a:b]
        if len(seg) < FRAME:
            seg = np.pad(seg, (0, FRAME - len(seg)))
        frames = np.lib.stride_tricks.sliding_window_view(seg, FRAME)[::FRAME // 2]
        out[i] = np.abs(np.fft.rfft(frames * win, n=N_FFT, axis=1)).mean(axis=0)
    return out


def harmonic_energy(spec: np.ndarray, *, sr: int, midi: np.ndarray, n_harmonics: int = 5, decay: float = 0.8,
                    width_semitones: float = 1 / 3) -> np.ndarray:
    """Harmonic summation of a ``(..., bins)`` magnitude spectrum at every pitch of ``midi``:
    sum over harmonics h of ``decay ** (h - 1)`` times the strongest bin within
    ``width_semitones / 2`` of h times the pitch's frequency. Shape ``(..., len(midi))``."""
    spec = np.asarray(spec)
    n_bins = spec.shape[-1]
    bin_hz = sr / (2.0 * (n_bins - 1))
    f0 = 440.0 * 2.0 ** ((np.asarray(midi, float) - 69.0) / 12.0)
    out = np.zeros(spec.shape[:-1] + (len(f0),), np.float64)
    half = 2.0 ** (width_semitones / 24.0)
    for h in range(1, n_harmonics + 1):
        lo = np.floor(h * f0 / half / bin_hz).astype(int)
        hi = np.ceil(h * f0 * half / bin_hz).astype(int) + 1
        for j, (a, b) in enumerate(zip(lo, hi, strict=True)):
            if a < n_bins:
                out[..., j] += decay ** (h - 1) * spec[..., a:min(b, n_bins)].max(axis=-1)
    return out


def reject_bleed(notes: Sequence[Note], *, stem: np.ndarray, mix: np.ndarray, sr: int, rel_share: float = 0.5,
                 fallback_ratio: float | None = 0.5, lowest: int = 55, highest: int = 84) -> tuple[Note, ...]:
    """Melody ``notes`` (from the f0 of a separated lead ``stem``) with bleed replaced or dropped.

    Parameters
    ----------
    notes
        The notes, in the time of ``stem`` and ``mix``.
    stem, mix : np.ndarray [shape=(n,)], float32
        Mono separated lead and mono mix at ``sr``, aligned.
    rel_share : float
        A note whose pitch (harmonics 1-4) holds less of the mix's energy in the stem than
        ``rel_share`` times the median note's share is bleed: the melody at that time is not in
        the stem. (Relative, so a cleaner separation, whose notes hold more, judges stricter.)
    fallback_ratio : float or None
        A bleed note is replaced by the highest pitch from ``lowest`` to ``highest`` whose
        harmonic sum in the mix over the note is at least this share of the strongest one (the
        predominant melody of the mix, "skyline" rule); ``None`` drops it instead.

    Returns
    -------
    tuple of :class:`~covermill.leadsheet.Note`, the same spans, in time order.
    """
    notes = list(notes)
    if not notes:
        return ()
    spans = [(n.start_s, n.end_s) for n in notes]
    s_spec = note_spectra(stem, sr=sr, spans_s=spans)
    m_spec = note_spectra(mix, sr=sr, spans_s=spans)
    pitches = np.array([n.pitch for n in notes], float)
    s_own = np.array([harmonic_energy(s_spec[i], sr=sr, midi=pitches[i:i + 1], n_harmonics=4)[0]
                      for i in range(len(notes))])
    m_own = np.array([harmonic_energy(m_spec[i], sr=sr, midi=pitches[i:i + 1], n_harmonics=4)[0]
                      for i in range(len(notes))])
    share = s_own / np.maximum(m_own, 1e-12)
    min_share = max(rel_share * float(np.median(share)), 0.02)  # under 2 %: not in the stem, whatever the rest
    cands = np.arange(lowest, highest + 1)
    out: list[Note] = []
    for i, n in enumerate(notes):
        if share[i] >= min_share:
            out.append(n)
            continue
        if fallback_ratio is None:
            continue
        sal = harmonic_energy(m_spec[i], sr=sr, midi=cands)
        if not np.any(sal > 0):
            continue
        strong = np.flatnonzero(sal >= fallback_ratio * sal.max())
        out.append(Note(n.start_s, n.end_s, int(cands[strong[-1]]), n.velocity))
    return tuple(out)


def _free_part(a: float, b: float, notes: Sequence[Note]) -> tuple[float, float]:
    """The longest stretch of ``[a, b)`` no note covers."""
    cuts = sorted((max(a, n.start_s), min(b, n.end_s)) for n in notes if n.start_s < b and n.end_s > a)
    best, at = (a, a), a
    for s, e in cuts:
        if s - at > best[1] - best[0]:
            best = (at, s)
        at = max(at, e)
    return (at, b) if b - at > best[1] - best[0] else best


def fill_gaps(notes: Sequence[Note], *, stem: np.ndarray, mix: np.ndarray, sr: int, grid_s: np.ndarray,
              min_share: float = 0.1, ratio: float = 0.5, max_cover: float = 0.3, lowest: int = 55,
              highest: int = 84, velocity: int = 80) -> tuple[Note, ...]:
    """Melody ``notes`` with the gaps the stem's f0 left filled where the mix's melody is in the stem.

    Where the separator kept too little of the melody for the f0 tracker to voice it, the stem
    still holds some of it. Every cell of ``grid_s`` (e.g. the beat grid's eighths) that
    ``notes`` cover less than ``max_cover`` of gets the mix's predominant pitch there (the
    highest pitch from ``lowest`` to ``highest`` whose harmonic sum is at least ``ratio`` of the
    strongest), when the stem holds at least ``min_share`` of the mix's energy at that pitch
    (accompaniment is mostly outside the stem, the melody mostly in it); cells of one pitch in
    a row, and a filled cell touching a note of its pitch, become one note.

    Returns
    -------
    tuple of :class:`~covermill.leadsheet.Note`, in time order, not overlapping.
    """
    notes = sorted(notes, key=lambda n: n.start_s)
    grid = np.sort(np.asarray(grid_s, float))
    cells = []
    for a, b in zip(grid[:-1], grid[1:], strict=True):
        covered = sum(max(0.0, min(n.end_s, b) - max(n.start_s, a)) for n in notes)
        if b - a > 1e-3 and covered < max_cover * (b - a):
            cells.append(_free_part(a, b, notes))
    cells = [c for c in cells if c[1] - c[0] > 0.03]
    if not cells:
        return tuple(notes)
    cands = np.arange(lowest, highest + 1)
    s_sal = harmonic_energy(note_spectra(stem, sr=sr, spans_s=cells), sr=sr, midi=cands)
    m_sal = harmonic_energy(note_spectra(mix, sr=sr, spans_s=cells), sr=sr, midi=cands)
    added = []
    for (a, b), hs, hm in zip(cells, s_sal, m_sal, strict=True):
        if hm.max() <= 0:
            continue
        j = int(np.flatnonzero(hm >= ratio * hm.max())[-1])
        if hs[j] >= min_share * hm[j]:
            added.append(Note(float(a), float(b), int(cands[j]), velocity))
    out: list[Note] = []
    for n in sorted(notes + added, key=lambda n: n.start_s):
        if out and out[-1].pitch == n.pitch and n.start_s - out[-1].end_s <= 0.02 and (n in added or out[-1] in added):
            out[-1] = Note(out[-1].start_s, max(out[-1].end_s, n.end_s), n.pitch, out[-1].velocity)
        else:
            out.append(n)
    return tuple(out)
