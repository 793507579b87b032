"""Note-true re-voicing: what an instrument returns (:class:`Voicing`) and the note helpers it uses.

* :class:`Voicing` -- one ``render`` call's result: the audio, the notes as played (cover time and
  pitch) and, for the MIDI and drum instruments, the ``pretty_midi.PrettyMIDI`` that FluidSynth
  played. Nothing is stored on the instrument, so one instrument can render several stems at once.
* :func:`allocate_voices` splits notes into monophonic voices (a chord of 3 notes -> 3 voices);
  :func:`monophonic` keeps one line of overlapping notes (by default the top line); :func:`lead_line`
  keeps the transcribed notes of a lead that its own f0 confirms (so bleed is not played).
* :func:`note_tracks` turns one voice's notes into audio-rate f0 and gate curves; :func:`expression_cents`
  is what a stem adds on top of the notes (vibrato, scoops) within +-50 cents.
* :func:`stem_notes` transcribes a stem with basic-pitch (:func:`covermill.instruments.midi.transcribe`)
  into neutral :class:`~covermill.leadsheet.Note`; :func:`retime_notes` moves notes to the cover's
  tempo and key. :func:`voice_chords` (in :mod:`.chords`) voices lead-sheet chords in a range.

Times are seconds, pitches MIDI numbers (:class:`~covermill.leadsheet.Note`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import ParameterError
from ..leadsheet import Note

#: How a stem is re-voiced: ``expressive`` follows the stem's continuous f0 (one line, today's
#: behaviour), ``notes`` plays a monophonic note list, ``chords`` plays notes polyphonically.
MODES = ("expressive", "notes", "chords")

#: The most a stem's own pitch may bend a note (cents) in ``notes`` mode with expression.
EXPRESSION_LIMIT_CENTS = 50.0


class NoNotesError(ParameterError):
    """There are no notes to play (silent, noisy or purely percussive stem, or an empty note list).

    ``voicing`` is the silent :class:`Voicing` the call would have returned (or ``None``)."""

    def __init__(self, message: str, voicing: Voicing | None = None) -> None:
        super().__init__(message)
        self.voicing = voicing


@dataclass(frozen=True)
class Voicing:
    """What :meth:`render` returns: ``audio`` float32 ``(1 | 2, n_out)`` at the call's ``sr``;
    ``notes`` as played (cover time and pitch; ``None`` where the instrument followed a continuous
    f0); ``midi`` the ``pretty_midi.PrettyMIDI`` played by FluidSynth (MIDI and drum instruments),
    for ``OUT/midi/<stem>.mid``."""

    audio: np.ndarray
    notes: tuple[Note, ...] | None = None
    midi: Any | None = None


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ParameterError(f"mode={mode!r}; choose one of {', '.join(MODES)}")
    return mode


def midi_hz(pitch: float | np.ndarray) -> float | np.ndarray:
    """Frequency (Hz) of MIDI ``pitch`` (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((np.asarray(pitch, np.float64) - 69.0) / 12.0)


def retime_notes(notes, *, time_ratio: float = 1.0, semitones: float = 0.0) -> tuple[Note, ...]:
    """Notes played ``time_ratio`` times faster (times divided by it) and ``round(semitones)`` higher,
    pitches kept in 0..127 by octaves; like :meth:`covermill.leadsheet.LeadSheet.retimed`."""
    if time_ratio <= 0:
        raise ParameterError(f"time_ratio={time_ratio} must be > 0")
    st = int(round(semitones))
    out = []
    for n in notes:
        pitch = n.pitch + st
        while pitch > 127:
            pitch -= 12
        while pitch < 0:
            pitch += 12
        out.append(replace(n, start_s=n.start_s / time_ratio, end_s=n.end_s / time_ratio, pitch=pitch))
    return tuple(out)


def check_notes(notes) -> tuple[Note, ...]:
    """``notes`` as a start-sorted tuple of :class:`Note`, each with ``end_s > start_s >= 0``."""
    out = []
    for n in notes:
        if not isinstance(n, Note):
            raise ParameterError(f"notes must be covermill.leadsheet.Note, got {type(n).__name__}")
        if not (np.isfinite(n.start_s) and np.isfinite(n.end_s) and 0 <= n.start_s < n.end_s):
            raise ParameterError(f"note {n}: needs 0 <= start_s < end_s")
        if not 0 <= n.pitch <= 127:
            raise ParameterError(f"note {n}: pitch must be a MIDI number 0..127")
        out.append(n)
    return tuple(sorted(out, key=lambda n: (n.start_s, n.pitch)))


def allocate_voices(notes, *, max_voices: int | None = None) -> list[list[Note]]:
    """Split ``notes`` into voices, each a start-sorted list of non-overlapping notes.

    Greedy interval partitioning (optimal: as many voices as notes ever sound at once): each note
    goes to the free voice whose last pitch is nearest (so lines stay lines), else opens a voice.
    With ``max_voices`` reached, a note that finds no free voice cuts short the voice that
    started earliest (the oldest note is released: how a polyphonic synthesizer steals voices).
    """
    voices: list[list[Note]] = []
    for n in check_notes(notes):
        free = [v for v in voices if v[-1].end_s <= n.start_s + 1e-9]
        if free:
            min(free, key=lambda v: (abs(v[-1].pitch - n.pitch), v[-1].end_s)).append(n)
        elif max_voices is None or len(voices) < max_voices:
            voices.append([n])
        else:
            v = min(voices, key=lambda v: v[-1].start_s)
            v[-1] = replace(v[-1], end_s=max(n.start_s, v[-1].start_s + 1e-3))
            v.append(n)
    return voices


def monophonic(notes, *, priority=None) -> tuple[Note, ...]:
    """One line from ``notes``: where notes overlap, the one of higher ``priority`` (a function of
    the note; default its pitch: the top line) sounds and the other is cut (or dropped if it is
    covered). Returns non-overlapping notes sorted by start."""
    key = (lambda n: n.pitch) if priority is None else priority
    ranked = sorted(((key(n), n) for n in check_notes(notes)), key=lambda kn: kn[0], reverse=True)
    ranked.sort(key=lambda kn: kn[1].start_s)  # stable: by start, the winner first at equal starts
    out: list[tuple] = []  # (priority, note)
    for k, n in ranked:
        while out and out[-1][1].end_s > n.start_s:
            k_last, last = out[-1]
            if k_last >= k:  # the sounding note wins: n starts when it ends
                if last.end_s >= n.end_s:
                    n = None
                    break
                n = replace(n, start_s=last.end_s)
                break
            if n.start_s - last.start_s < 1e-3:
                out.pop()  # the same onset: the winner replaces it
            else:
                out[-1] = (k_last, replace(last, end_s=n.start_s))
                break
        if n is not None:
            out.append((k, n))
    return tuple(n for _, n in out)


def lead_line(notes, f0_hz: np.ndarray, frame_rate: float, *, min_agreement: float = 0.3) -> tuple[Note, ...]:
    """A lead's line from its transcribed ``notes`` and its f0 track (``f0_hz`` per frame at
    ``frame_rate``, 0 = unvoiced, same time axis): a note is kept where the f0 agrees with its pitch
    class (within 50 cents) on at least ``min_agreement`` of its frames (bleed from other stems
    rarely does), and where kept notes overlap the better-confirmed one (then the louder) sounds."""
    f0 = np.asarray(f0_hz, np.float64)
    agreement = {}
    for n in check_notes(notes):
        a, b = int(np.floor(n.start_s * frame_rate)), int(np.ceil(n.end_s * frame_rate))
        seg = f0[max(0, a) : max(0, min(len(f0), b))]
        seg = seg[seg > 0]
        if seg.size:
            cents = (1200.0 * np.log2(seg / midi_hz(n.pitch)) + 600.0) % 1200.0 - 600.0
            share = float(np.mean(np.abs(cents) <= 50.0)) * seg.size / max(1, b - a)
            if share >= min_agreement:
                agreement[n] = share
    return monophonic(agreement, priority=lambda n: (round(agreement[n], 1), n.velocity, n.pitch))


def note_tracks(notes, *, sr: int, n_samples: int, detune_semitones: float = 0.0,
                retrigger_s: float = 0.02) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Audio-rate curves of one voice (non-overlapping ``notes``): ``f0_hz`` (0 outside notes),
    ``gate`` (1 inside a note) and ``pitch`` (the MIDI number, -1 outside), all float32 ``(n_samples,)``.

    A note that starts where the previous one of the same pitch ends starts ``retrigger_s`` later,
    so the attack of a repeated note is heard; a different pitch is legato.
    """
    f0 = np.zeros(n_samples, np.float32)
    gate = np.zeros(n_samples, np.float32)
    pitch = np.full(n_samples, -1.0, np.float32)
    prev = None
    for n in notes:
        start = n.start_s
        if prev is not None and prev.pitch == n.pitch and start - prev.end_s < retrigger_s:
            start = min(prev.end_s + retrigger_s, 0.5 * (n.start_s + n.end_s))
        a, b = int(round(start * sr)), int(round(n.end_s * sr))
        a, b = max(0, a), min(n_samples, b)
        if b > a:
            f0[a:b] = midi_hz(n.pitch + detune_semitones)
            gate[a:b] = 1.0
            pitch[a:b] = n.pitch
        prev = n
    return f0, gate, pitch


def expression_cents(stem_f0_hz: np.ndarray, note_pitch: np.ndarray, *, limit_cents: float = EXPRESSION_LIMIT_CENTS,
                     ) -> np.ndarray:
    """What the stem's pitch adds on top of the notes, per frame, in cents (float32).

    ``stem_f0_hz`` (0 = unvoiced) and ``note_pitch`` (MIDI, < 0 outside notes) are on the same
    frames. The deviation is taken to the nearest octave of the note; frames where it exceeds
    twice ``limit_cents`` (another note: bleed or a wrong pitch) or that are unvoiced add nothing,
    the rest is clipped to +-``limit_cents``. Each note's median deviation is removed (the note is
    played in tune; its vibrato and scoops stay).
    """
    f0 = np.asarray(stem_f0_hz, np.float64)
    pitch = np.asarray(note_pitch, np.float64)
    out = np.zeros(len(f0), np.float32)
    ok = (f0 > 0) & (pitch >= 0)
    if not ok.any():
        return out
    cents = np.zeros(len(f0))
    cents[ok] = 1200.0 * np.log2(f0[ok] / midi_hz(pitch[ok]))
    cents[ok] = (cents[ok] + 600.0) % 1200.0 - 600.0
    ok &= np.abs(cents) <= 2.0 * limit_cents
    # one note = one run of equal pitch
    edges = np.flatnonzero(np.diff(np.concatenate([[-2.0], pitch, [-2.0]])) != 0)
    for s, e in zip(edges[:-1], edges[1:], strict=True):
        if pitch[s] < 0:
            continue
        m = ok[s:e]
        if m.any():
            dev = cents[s:e] - np.median(cents[s:e][m])
            out[s:e] = np.where(m, np.clip(dev, -limit_cents, limit_cents), 0.0)
    return out


def from_pretty(notes) -> tuple[Note, ...]:
    """``pretty_midi.Note`` (``start``, ``end``, ``pitch``, ``velocity``) -> neutral :class:`Note`."""
    return tuple(Note(float(n.start), float(n.end), int(n.pitch), int(n.velocity)) for n in notes)


def to_pretty(notes) -> list:
    """Neutral :class:`Note` -> ``pretty_midi.Note``."""
    import pretty_midi

    return [pretty_midi.Note(velocity=int(n.velocity), pitch=int(n.pitch), start=float(n.start_s), end=float(n.end_s))
            for n in notes]


def stem_notes(y: np.ndarray, *, sr: int, **transcribe_kw) -> tuple[Note, ...]:
    """The notes of a (polyphonic) stem, transcribed with basic-pitch: neutral :class:`Note` in the
    stem's time, sorted by start. ``transcribe_kw`` go to :func:`covermill.instruments.midi.transcribe`
    (thresholds, ``fmin_hz``/``fmax_hz``, ``min_note_ms``). ``()`` for a stem without notes."""
    from .midi import transcribe

    return from_pretty(transcribe(y, sr=sr, **transcribe_kw))


def match_rms(out: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``out`` scaled (in place) so that its RMS is ``y``'s (unchanged if ``out`` is silent)."""
    rms_in = float(np.sqrt(np.mean(y.astype(np.float64) ** 2)))
    rms_out = float(np.sqrt(np.mean(out.astype(np.float64) ** 2)))
    if rms_out > 1e-9:
        out *= rms_in / rms_out
    return out


def revoice_keeping_state(instrument, render) -> np.ndarray:
    """``render()``'s audio for the MIDI and drum instruments' ``revoice``: ``render`` returns
    ``(Voicing, source notes)``; the notes (``notes_``) and the MIDI as played (``midi_``) are left
    on ``instrument`` for older callers, also when :class:`NoNotesError` is raised."""
    try:
        voicing, instrument.notes_ = render()
    except NoNotesError as exc:
        instrument.notes_ = []
        instrument.midi_ = exc.voicing.midi if exc.voicing is not None else None
        raise
    instrument.midi_ = voicing.midi
    return voicing.audio

