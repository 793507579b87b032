"""Score a lead sheet, or any audio, against a ground-truth score (a :class:`LeadSheet`).

- :func:`sheet_scores`: a lead sheet against the score — chords (``mir_eval.chord``
  majmin and sevenths, duration-weighted), downbeat F-measure (``mir_eval.beat.f_measure``,
  70 ms window, no 5-s trim: the songs are short), key (exact, and the MIREX weighted score
  ``mir_eval.key.weighted_score``), section boundaries (``mir_eval.segment.detection``,
  0.5 s, first and last boundary trimmed), melody notes (``mir_eval.transcription``: onset within
  50 ms, pitch within 50 cents, offsets ignored) and the melody's pitch class per frame.
- :func:`pitch_class_scores`: what is heard in audio (notes, e.g. basic-pitch's
  transcription from :func:`transcribe`) against the score, as pitch classes per frame at
  50 frames/s: precision (share of the heard active pitch-class frames the score also has
  then), recall (share of the score's active pitch-class frames that are heard) and
  "melody heard" (share of the lead line's note frames whose pitch class is heard then).
  The score is first moved to the cover: times divided by ``time_ratio``, pitches moved by
  ``semitones``.
"""

from __future__ import annotations

from collections.abc import Iterable

import mir_eval
import numpy as np

from covermill.leadsheet import CHORD_INTERVALS, LeadSheet, Note

FPS = 50


def _chord_arrays(sheet: LeadSheet):
    chords = [c for c in sheet.chords if c.end_s > c.start_s]
    if not chords:
        return np.array([[0.0, max(sheet.duration_s, 1e-3)]]), ["N"]
    return np.array([[c.start_s, c.end_s] for c in chords]), [c.label for c in chords]


def chord_scores(truth: LeadSheet, est: LeadSheet) -> dict[str, float]:
    """``majmin`` and ``sevenths`` accuracy (mir_eval.chord, weighted by duration)."""
    ri, rl = _chord_arrays(truth)
    ei, el = _chord_arrays(est)
    ei, el = mir_eval.util.adjust_intervals(ei, el, ri.min(), ri.max(), mir_eval.chord.NO_CHORD,
                                            mir_eval.chord.NO_CHORD)
    intervals, r, e = mir_eval.util.merge_labeled_intervals(ri, rl, ei, el)
    durations = mir_eval.util.intervals_to_durations(intervals)
    out = {}
    for name in ("majmin", "sevenths"):
        comp = getattr(mir_eval.chord, name)(r, e)
        out[name] = float(mir_eval.chord.weighted_accuracy(comp, durations)) if np.any(comp >= 0) else float("nan")
    return out


def downbeat_f(truth: LeadSheet, est: LeadSheet) -> float:
    ref, got = np.asarray(truth.downbeats_s, float), np.asarray(est.downbeats_s, float)
    if len(ref) == 0:
        return float("nan")
    if len(got) == 0:
        return 0.0
    return float(mir_eval.beat.f_measure(ref, got, f_measure_threshold=0.07))


def key_scores(truth: LeadSheet, est: LeadSheet) -> dict[str, float]:
    if truth.key is None:
        return {"key": float("nan"), "key_weighted": float("nan")}
    if est.key is None:
        return {"key": 0.0, "key_weighted": 0.0}
    exact = float(truth.key.tonic == est.key.tonic and truth.key.mode == est.key.mode)
    return {"key": exact, "key_weighted": float(mir_eval.key.weighted_score(truth.key.label, est.key.label))}


def _note_arrays(notes: Iterable[Note]):
    notes = list(notes)
    intervals = np.array([[n.start_s, n.end_s] for n in notes], float).reshape(-1, 2)
    pitches = np.array([440.0 * 2 ** ((n.pitch - 69) / 12) for n in notes], float)
    return intervals, pitches


def pc_frames(notes: Iterable[Note], n_frames: int, *, fps: int = FPS) -> np.ndarray:
    """``(12, n_frames)`` bool: pitch class ``p`` sounds in frame ``t`` (frame ``t`` covers ``t / fps`` s)."""
    out = np.zeros((12, n_frames), bool)
    for n in notes:
        a, b = int(round(n.start_s * fps)), int(round(n.end_s * fps))
        out[n.pitch % 12, max(0, a):max(0, min(n_frames, max(b, a + 1)))] = True
    return out


def melody_scores(truth: LeadSheet, est: LeadSheet, *, fps: int = FPS) -> dict[str, float]:
    """Note P/R/F (mir_eval.transcription, onsets 50 ms, offsets ignored) and the share of the
    score's melody frames where the sheet's melody has the same pitch class."""
    if not truth.melody:
        return {"melody_p": float("nan"), "melody_r": float("nan"), "melody_f": float("nan"),
                "melody_pc": float("nan")}
    ri, rp = _note_arrays(truth.melody)
    ei, ep = _note_arrays(est.melody)
    if len(ep):
        p, r, f, _ = mir_eval.transcription.precision_recall_f1_overlap(ri, rp, ei, ep, offset_ratio=None)
    else:
        p = r = f = 0.0
    n = int(np.ceil(max(truth.duration_s, est.duration_s) * fps)) + 1
    ref, got = pc_frames(truth.melody, n, fps=fps), pc_frames(est.melody, n, fps=fps)
    on = ref.any(axis=0)
    pc = float((ref & got).any(axis=0)[on].mean()) if on.any() else float("nan")
    return {"melody_p": float(p), "melody_r": float(r), "melody_f": float(f), "melody_pc": pc}


def section_f(truth: LeadSheet, est: LeadSheet, *, window_s: float = 0.5) -> float:
    """Section boundary F-measure (``mir_eval.segment.detection``, +-``window_s``)."""
    if len(truth.sections) < 2 or not est.sections:
        return float("nan")
    ref = np.array([[s.start_s, s.end_s] for s in truth.sections])
    got = np.array([[s.start_s, s.end_s] for s in est.sections])
    got[-1, 1] = ref[-1, 1] = max(ref[-1, 1], got[-1, 1])
    return float(mir_eval.segment.detection(ref, got, window=window_s, trim=True)[2])


def sheet_scores(truth: LeadSheet, est: LeadSheet) -> dict[str, float]:
    """Every lead-sheet score of ``est`` against the score ``truth``."""
    return {**chord_scores(truth, est), "downbeat_f": downbeat_f(truth, est), **key_scores(truth, est),
            **melody_scores(truth, est), "section_f": section_f(truth, est)}


def score_notes(truth: LeadSheet) -> list[Note]:
    """Every note the score sounds: melody, bass and the chords' tones (one note per chord tone)."""
    notes = list(truth.melody) + list(truth.bass)
    for c in truth.chords:
        if c.root is not None:
            notes += [Note(c.start_s, c.end_s, 60 + (c.root + i) % 12) for i in CHORD_INTERVALS[c.quality]]
    return notes


def pitch_class_scores(heard: Iterable[Note], truth: LeadSheet, *, time_ratio: float = 1.0,
                       semitones: float = 0.0, fps: int = FPS) -> dict[str, float]:
    """Pitch-class precision, recall and melody heard of ``heard`` notes against the score."""
    score = truth.retimed(time_ratio, semitones)
    heard = list(heard)
    n = int(np.ceil(max([score.duration_s] + [h.end_s for h in heard]) * fps)) + 1
    got = pc_frames(heard, n, fps=fps)
    ref = pc_frames(score_notes(score), n, fps=fps)
    lead = pc_frames(score.melody, n, fps=fps)
    precision = float((got & ref).sum() / got.sum()) if got.any() else float("nan")
    recall = float((got & ref).sum() / ref.sum()) if ref.any() else float("nan")
    heard_melody = float((got & lead).sum() / lead.sum()) if lead.any() else float("nan")
    return {"pc_precision": precision, "pc_recall": recall, "melody_heard": heard_melody}


def transcribe(audio: np.ndarray, *, sr: int) -> list[Note]:
    """Notes heard in ``audio`` (basic-pitch through covermill's ONNX wrapper)."""
    from covermill.instruments.midi import transcribe as bp_transcribe

    return [Note(float(n.start), float(n.end), int(n.pitch), int(n.velocity)) for n in bp_transcribe(audio, sr=sr)]


def skyline(notes: Iterable[Note], *, lowest: int = 55, min_s: float = 0.05) -> list[Note]:
    """A melody from polyphonic notes (predominant melody by the "skyline" rule): notes from
    ``lowest`` up, a note dropped when a higher one covers more than half of it, overlaps cut so the
    line is monophonic, pieces under ``min_s`` dropped."""
    notes = sorted((n for n in notes if n.pitch >= lowest), key=lambda n: n.start_s)
    kept = []
    for n in notes:
        covered = any(m.pitch > n.pitch and min(m.end_s, n.end_s) - max(m.start_s, n.start_s) > 0.5 * n.duration_s
                      for m in notes if m is not n)
        if not covered:
            kept.append(n)
    line: list[Note] = []
    for n in kept:
        if line and n.start_s < line[-1].end_s:
            line[-1] = Note(line[-1].start_s, n.start_s, line[-1].pitch, line[-1].velocity)
        line.append(n)
    return [n for n in line if n.duration_s >= min_s]


def audio_scores(audio: np.ndarray, *, sr: int, truth: LeadSheet, time_ratio: float = 1.0,
                 semitones: float = 0.0) -> dict[str, float]:
    """:func:`pitch_class_scores` of what basic-pitch hears in ``audio``."""
    return pitch_class_scores(transcribe(audio, sr=sr), truth, time_ratio=time_ratio, semitones=semitones)
