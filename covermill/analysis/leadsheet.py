"""The lead sheet of a song: beats, bars, key, a chord per beat, melody, bass, sections.

:func:`lead_sheet` reads the analysis signal's beat grid and CQT chroma from the memo of
:mod:`covermill.analysis.rhythm` (the same grid that tempo, similarity and cover detection
use: nothing is beat-tracked twice), and one small STFT for the onset accents of the meter.
The melody and bass come from f0 tracks the caller computed on the separated stems (pYIN);
without them the melody is empty and the bass follows the chord roots.

Methods (written into :attr:`LeadSheet.methods`): beats — librosa's dynamic-programming
tracker with the refined period (:func:`~covermill.analysis.rhythm.track_beats`); meter and
downbeats — accent contrast per beat phase (:mod:`.meter`); chords — Viterbi over chord
templates on beat chroma, changes cheaper on bar lines (:mod:`.chords`); key —
Albrecht-Shanahan profiles and the decoded chords on the bars (:mod:`.key`); melody/bass — :func:`clean_melody`;
sections — 4-bar phrases labelled by repetition (:mod:`.sections`).
"""

from __future__ import annotations

import numpy as np

from ..leadsheet import Chord, LeadSheet
from .bleed import fill_gaps, reject_bleed
from .chords import QUALITIES, compress, decode_chords
from .key import estimate_key, phrase_columns
from .melody import bass_from_chords, clean_melody, join_fragments, subdivide
from .meter import beat_is_steady, downbeats, harmonic_novelty
from .rhythm import ANALYSIS_SR, HOP, analysis_mono, cqt_chroma, track_beats
from .sections import sections

__all__ = ["lead_sheet", "clean_melody"]

CHROMA_HOP = 2 * HOP  # the hop cover detection uses: one chroma in the memo for both
#: Without a steady beat, chords are decoded on frames of this length.
FREE_TIME_FRAME_S = 0.5

F0 = tuple  # (times_s, f0_hz with nan where unvoiced, voiced_prob)


def _onsets(mono: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(flux, low_flux, rms)`` per :data:`HOP` frame: log-spectral flux, the same below 150 Hz, RMS."""
    n_fft = 1024
    pad = np.pad(mono, n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(pad, n_fft)[::HOP]
    spec = np.abs(np.fft.rfft(frames * np.hanning(n_fft).astype(np.float32), axis=1)).T  # (bins, t)
    logs = np.log1p(100.0 * spec)
    diff = np.maximum(np.diff(logs, axis=1, prepend=logs[:, :1]), 0.0)
    low = int(150 * n_fft / ANALYSIS_SR) + 1
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    return diff.mean(axis=0), diff[1:low].mean(axis=0), rms


def _per_beat(x: np.ndarray, edges: np.ndarray, how=np.mean) -> np.ndarray:
    """Aggregate frame values ``x`` ``(..., t)`` over ``[edges[i], edges[i+1])``."""
    out = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        b = max(b, a + 1)
        seg = x[..., a:b]
        out.append(how(seg, axis=-1) if seg.shape[-1] else np.zeros(x.shape[:-1]))
    return np.stack(out, axis=-1) if out else np.zeros(x.shape[:-1] + (0,))


def _note_onsets(f0: F0, starts_s: np.ndarray) -> np.ndarray:
    """Per beat: 1 where a note of the f0 track starts within 70 ms of it (a voicing onset or a
    jump of a semitone or more), else 0."""
    times, hz, vp = (np.asarray(a, float) for a in f0)
    onset = np.zeros(len(starts_s))
    if len(starts_s) == 0 or len(times) == 0:
        return onset
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = np.isfinite(hz) & (hz > 0) & (vp >= 0.5)
        midi = np.where(ok, 69 + 12 * np.log2(np.where(ok, hz, 440.0) / 440.0), np.nan)
    prev = np.concatenate([[np.nan], midi[:-1]])
    note_starts = times[ok & (~np.isfinite(prev) | (np.abs(midi - prev) >= 0.8))]
    if len(note_starts):
        gaps = np.abs(starts_s[:, None] - note_starts[None, :]).min(axis=1)
        onset[gaps < 0.07] = 1.0
    return onset


def _spans(labels: list, starts_s: np.ndarray, duration_s: float) -> tuple[Chord, ...]:
    """Per-column chords merged into spans tiling ``[0, duration_s)``."""
    out: list[Chord] = []
    ends = np.concatenate([starts_s[1:], [duration_s]])
    for i, lab in enumerate(labels):
        a = 0.0 if i == 0 else float(starts_s[i])
        b = float(ends[i])
        root, quality = (None, "maj") if lab is None else lab
        if out and out[-1].root == root and out[-1].quality == quality:
            out[-1] = Chord(out[-1].start_s, b, root, quality)
        elif b > a:
            out.append(Chord(a, b, root, quality))
    return tuple(out)


def lead_sheet(mix: np.ndarray, *, sr: int, lead_f0: F0 | None = None, bass_f0: F0 | None = None,
               lead_stem: np.ndarray | None = None) -> LeadSheet:
    """The lead sheet of ``mix``.

    Parameters
    ----------
    mix : np.ndarray [shape=(channels, n) or (n,)], float32
        The song (the original mix).
    sr : int > 0
    lead_f0, bass_f0 : (times_s, f0_hz, voiced_prob) or None
        f0 tracks of the separated lead (vocals) and bass stems, ``f0_hz`` ``nan`` where
        unvoiced (pYIN). Without ``lead_f0`` the melody is empty ("no melody" warning);
        without ``bass_f0`` the bass line is the chord roots.
    lead_stem : np.ndarray [shape=(channels, n) or (n,)], optional
        The separated lead itself (at ``sr``, aligned with ``mix``), whose f0 ``lead_f0`` is.
        With it, melody notes that are bleed (their pitch barely in the stem compared with the
        mix) take the mix's predominant pitch instead (:func:`~covermill.analysis.bleed.reject_bleed`),
        and eighths the stem's f0 left empty take it where the stem holds some of it
        (:func:`~covermill.analysis.bleed.fill_gaps`; with a steady beat only).

    Returns
    -------
    LeadSheet
        Never raises on valid audio: silence, noise, a drum loop or a 2-s song give an
        empty or "N" sheet with ``warnings``.
    """
    mono = analysis_mono(mix, sr=sr)
    duration = float(mono.size / ANALYSIS_SR)
    methods = {"beats": "librosa beat_track + period refined on onset autocorrelation (analysis.rhythm)",
               "meter": "accent contrast per beat phase: chord-change novelty, low-band onsets, bass onsets",
               "key": "Albrecht-Shanahan profiles on beat chroma + chord evidence (tonic at phrase starts, V and V-I, "
                      "chords in the scale)",
               "chords": f"Viterbi over {len(QUALITIES)}x12 chord templates + N on beat CQT chroma",
               "melody": "clean_melody on the lead stem's f0" if lead_f0 is not None else "none (no lead f0)",
               "bass": "clean_melody on the bass stem's f0" if bass_f0 is not None else "chord roots",
               "sections": "4-bar phrases compared by bar chroma; repeats labelled alike, neighbours merged"}
    if mono.size < CHROMA_HOP * 8 or float(np.max(np.abs(mono), initial=0.0)) < 1e-5:
        return LeadSheet(duration_s=duration, bpm=float("nan"),
                         chords=(Chord(0.0, duration, None),) if duration > 0 else (),
                         warnings=("silence: no beat", "no chord", "no melody"), methods=methods)
    warnings: list[str] = []
    chroma = cqt_chroma(mono, sr=ANALYSIS_SR, hop_length=CHROMA_HOP)
    beats = track_beats(mono, sr=ANALYSIS_SR)
    flux, low_flux, rms = _onsets(mono)
    fps = ANALYSIS_SR / HOP
    steady = beat_is_steady(np.asarray(beats.times_s), beats.bpm, flux, fps)
    if steady:
        starts = np.asarray(beats.times_s, float)
    else:
        warnings.append("free time: no stable beat")
        starts = np.arange(0.0, duration, FREE_TIME_FRAME_S)
        methods["chords"] += f" (free time: {FREE_TIME_FRAME_S} s frames)"
    # chord columns: the beats, plus the lead-in before the first beat and the tail after the last
    cstarts, off = starts, 0
    if steady:
        period = float(np.median(np.diff(starts)))
        head = [0.0] if starts[0] > 0.15 else []
        tail = [starts[-1] + period] if duration - (starts[-1] + period) > 0.15 else []
        cstarts, off = np.concatenate([head, starts, tail]), len(head)
    n_chroma = chroma.shape[1]
    edges = np.clip(np.round(cstarts * ANALYSIS_SR / CHROMA_HOP).astype(int), 0, n_chroma)
    col_chroma = _per_beat(chroma, np.concatenate([edges, [n_chroma]]))
    redges = np.clip(np.round(cstarts * fps).astype(int), 0, len(rms))
    col_rms = _per_beat(rms, np.concatenate([redges, [len(rms)]]))
    energy = col_rms / max(float(col_rms.max(initial=0.0)), 1e-12)
    beat_cols = slice(off, off + len(starts))
    beat_chroma = col_chroma[:, beat_cols]
    first = decode_chords(col_chroma, energy)

    bpb, phase, downs = 4, 0, np.zeros(0)
    bar_cols = phrase_cols = None
    labels = first
    if steady:
        # the bass line's onsets mark bars; its pitch classes would mislead the chords (fifths, walking lines)
        bass_onsets = _note_onsets(bass_f0, starts) if bass_f0 is not None else None
        unit = compress(beat_chroma)
        beat_labels = first[beat_cols]
        change = np.array([0.0] + [float(x != y) for x, y in zip(beat_labels[:-1], beat_labels[1:], strict=True)])
        win = max(1, int(round(0.03 * fps)))
        low = np.array([low_flux[max(0, r - win):r + win + 1].max(initial=0.0) for r in redges[beat_cols]])
        accents = {"novelty": harmonic_novelty(unit), "change": change, "low": low}
        if bass_onsets is not None:
            accents["bass"] = bass_onsets
        bpb, phase, _ = downbeats(accents, weights={"novelty": 1.0, "change": 1.0, "low": 0.7, "bass": 0.7})
        downs = starts[phase::bpb]
        bar_cols = list(range(off + phase, off + len(starts), bpb))
        loud = np.flatnonzero(rms > 0.05 * float(rms.max(initial=0.0)))
        phrase_cols = phrase_columns(cstarts, downs, onset_s=float(loud[0]) / fps if len(loud) else 0.0,
                                     bar_s=bpb * period)
        change_ok = np.ones(len(cstarts), bool)
        ok = np.zeros(len(starts), bool)
        ok[phase::bpb] = True
        if bpb == 4:
            ok[(phase + 2) % 4::4] = True
        change_ok[beat_cols] = ok
        labels = decode_chords(col_chroma, energy, change_ok=change_ok)
    chords = _spans(labels, cstarts, duration)
    if all(c.root is None for c in chords):
        warnings.append("no chord")
    key = None
    if not all(x is None for x in labels):
        key = estimate_key(col_chroma, weights=energy, chords=labels, bar_starts=bar_cols, phrase_starts=phrase_cols)

    grid = subdivide(starts, 4) if steady else None
    melody = ()
    if lead_f0 is not None:
        melody = clean_melody(*lead_f0, key=key, chords=chords, onset_grid_s=grid)
        if lead_stem is not None:
            stem = analysis_mono(lead_stem, sr=sr)
            melody = reject_bleed(melody, stem=stem, mix=mono, sr=ANALYSIS_SR)
            methods["melody"] += "; bleed notes (stem's share of the mix < half the median note's) -> the mix's predominant pitch"
            if steady:
                eighths = subdivide(starts, 2)
                melody = fill_gaps(join_fragments(melody, grid_s=eighths), stem=stem, mix=mono, sr=ANALYSIS_SR,
                                   grid_s=eighths)
                methods["melody"] += ("; a note off the eighths right after one of its pitch continues it; eighths "
                                      "left empty -> the mix's predominant pitch where the stem holds it")
    if not melody:
        warnings.append("no melody" if lead_f0 is not None else "no melody: no lead f0 given")
    bass = ()
    if bass_f0 is not None:
        bass = clean_melody(*bass_f0, key=key, chords=chords, min_note_s=0.08, onset_grid_s=grid)
    if not bass:
        bass = bass_from_chords(chords, downbeats_s=downs)
        methods["bass"] = "chord roots"
    secs = sections(compress(beat_chroma), starts, duration_s=duration, beats_per_bar=bpb, phase=phase, bars=steady)
    return LeadSheet(
        duration_s=duration, bpm=float(beats.bpm) if steady else float("nan"),
        beats_s=tuple(float(t) for t in starts) if steady else (),
        downbeats_s=tuple(float(t) for t in downs), beats_per_bar=int(bpb), key=key, chords=chords,
        melody=melody, bass=bass, sections=secs, warnings=tuple(warnings), methods=methods)
