"""Built-in parametric instruments: a harmonic-plus-noise synthesizer that needs no training.

Each instrument is a :class:`~covermill.instruments.timbre.Timbre`, authored as a YAML
file (:mod:`covermill.instruments.timbre`): the spectral tilt of its harmonics (and how it
brightens with loudness and darkens with pitch), the balance of odd and even harmonics, a
share of filtered breath noise, attack/release times, vibrato, body resonances (peak
filters), and a playing range into which the melody is moved by whole octaves. Controls
(f0, voicing, loudness) come from the stem (:func:`~covermill.instruments.features.extract_controls`), are time-scaled and
transposed at frame rate, upsampled to audio rate by linear interpolation (no zipper
noise), and drive an additive oscillator bank with every harmonic above Nyquist removed.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import scipy.signal

from ..audio import check_audio, resample
from ..errors import ParameterError
from ..leadsheet import Note
from . import _synth_kernels as _kernels
from .features import FEATURE_HOP, FEATURE_SR, Controls, a_weighted_loudness, extract_controls, retime
from .notes import (
    NoNotesError,
    Voicing,
    allocate_voices,
    check_mode,
    check_notes,
    expression_cents,
    lead_line,
    match_rms,
    midi_hz,
    monophonic,
    note_tracks,
    retime_notes,
    stem_notes,
)
from .timbre import Timbre, load_builtin_timbres

#: Notes and chords modes: a note's level is its :data:`HOLD_PERCENTILE` th percentile of the stem's
#: loudness over the note (sampled every :data:`HOLD_STRIDE` samples); inside the note the stem's
#: loudness may dip under it by at most :data:`NOTE_DIP_DB` (a melody's swells and fades, not the
#: separated stem's holes) or, in chords, :data:`CHORD_DIP_DB` (a held chord keeps its level).
HOLD_PERCENTILE = 90.0
HOLD_STRIDE = 64
NOTE_DIP_DB = 6.0
CHORD_DIP_DB = 0.0

#: The built-in instruments, loaded from ``covermill/instruments/builtin/*.yaml``.
BUILTIN_TIMBRES: dict[str, Timbre] = load_builtin_timbres()


def octave_shift(f0_hz: np.ndarray, range_hz: tuple[float, float]) -> float:
    """Factor (a power of two) moving the median voiced f0 into ``range_hz``; 1 if already inside.

    A melody outside the range moves by the fewest octaves that bring its median in
    (or as close as possible when the range is narrower than an octave).
    """
    voiced = f0_hz[f0_hz > 0]
    if voiced.size == 0:
        return 1.0
    lo, hi = range_hz
    med = float(np.median(voiced))
    if lo <= med <= hi:
        return 1.0
    octaves = np.ceil(np.log2(lo / med)) if med < lo else -np.ceil(np.log2(med / hi))
    return float(2.0**octaves)


def body_filter(body: tuple[tuple[float, float, float], ...], *, sr: int) -> np.ndarray:
    """Second-order sections of the body resonances: RBJ peaking biquads ``(freq_hz, gain_db, q)``.

    Resonances at or above 0.45 ``sr`` are skipped.
    """
    sections = []
    for freq_hz, gain_db, q in body:
        if freq_hz >= 0.45 * sr:
            continue
        a = 10.0 ** (gain_db / 40.0)
        w0 = 2 * np.pi * freq_hz / sr
        alpha = np.sin(w0) / (2 * q)
        b = np.array([1 + alpha * a, -2 * np.cos(w0), 1 - alpha * a])
        den = np.array([1 + alpha / a, -2 * np.cos(w0), 1 - alpha / a])
        sections.append(np.concatenate([b / den[0], den / den[0]]))
    return np.array(sections) if sections else np.array([[1.0, 0, 0, 1.0, 0, 0]])


def _smooth_gate(gate: np.ndarray, *, sr: int, attack_ms: float, release_ms: float) -> np.ndarray:
    """Asymmetric one-pole smoothing (attack up, release down) of a 0/1 gate at audio rate."""
    # Separate attack and release by filtering up- and down-going parts with their own poles.
    a_att = np.exp(-1.0 / max(1.0, attack_ms * 1e-3 * sr))
    a_rel = np.exp(-1.0 / max(1.0, release_ms * 1e-3 * sr))
    return _kernels.smooth_gate(np.ascontiguousarray(gate, np.float32), float(a_att), float(a_rel))


def add_noise_and_body(harmonic: np.ndarray, amp: np.ndarray, timbre: Timbre, *, sr: int, seed: int) -> np.ndarray:
    """The harmonic part plus the timbre's band-passed noise (scaled by ``amp``; added in place to
    ``harmonic``), through its body filter."""
    out = harmonic
    if timbre.noise_share > 0:
        rng = np.random.default_rng(seed)
        lo_hz, hi_hz = timbre.noise_band_hz
        sos = scipy.signal.butter(2, [lo_hz, min(hi_hz, 0.45 * sr)], btype="bandpass", fs=sr, output="sos")
        noise = scipy.signal.sosfilt(sos, rng.standard_normal(len(out)))
        noise /= max(np.std(noise), 1e-9)
        out += timbre.noise_share * amp * noise
    if timbre.body:
        out = scipy.signal.sosfilt(body_filter(timbre.body, sr=sr), out)
    return out.astype(np.float32)


class ParametricInstrument:
    """Harmonic-plus-noise synthesis of a :class:`Timbre` driven by a stem's controls."""

    def __init__(self, timbre: Timbre, *, seed: int = 0) -> None:
        self.timbre = timbre
        self.name = timbre.name
        self.seed = seed

    def check(self) -> None:
        """Nothing to check: the timbre was validated when it loaded, and the synthesizer needs no files."""

    def synthesize(self, controls: Controls, *, sr: int, n_samples: int) -> np.ndarray:
        """Render ``controls`` to mono float32 ``(n_samples,)`` at ``sr``."""
        if sr <= 0:
            raise ParameterError(f"sr={sr} must be positive")
        n_frames = len(controls)
        frame_pos = np.arange(n_frames) / controls.frame_rate * sr
        pos = np.arange(n_samples, dtype=np.float64)
        f0 = np.interp(pos, frame_pos, controls.f0_hz).astype(np.float32)
        gate = np.interp(pos, frame_pos, controls.voiced).astype(np.float32)
        gate = (gate > 0.5).astype(np.float32)
        if not gate.any():
            return np.zeros(n_samples, np.float32)
        loud = np.interp(pos, frame_pos, controls.loudness_db).astype(np.float32)
        return self.voice(f0, gate, loud, sr=sr)

    def voice(self, f0: np.ndarray, gate: np.ndarray, loud: np.ndarray, *, sr: int,
              loud_range: tuple[float, float] | None = None, seed: int | None = None) -> np.ndarray:
        """One voice from audio-rate float32 curves: ``f0`` (Hz, <= 0 unvoiced), ``gate`` (0/1) and
        ``loud`` (dB); mono float32 ``(n,)``. The gate is smoothed by the timbre's attack and release
        (f0 is held through gaps so that a release keeps its pitch). Brightness follows ``loud`` within
        ``loud_range`` (default: its 5th..95th percentile where the gate is open)."""
        t = self.timbre
        n_samples = len(f0)
        if not gate.any():
            return np.zeros(n_samples, np.float32)
        f0 = _kernels.hold_f0(f0)  # through unvoiced gaps, so that the release tail keeps its pitch
        env = _smooth_gate(gate, sr=sr, attack_ms=t.attack_ms, release_ms=t.release_ms)
        amp = (10.0 ** (loud / 20.0)).astype(np.float32) * env
        if t.vibrato_cents > 0:
            f0 = _kernels.vibrato(f0, float(sr), float(t.vibrato_hz), float(t.vibrato_cents))
        # loudness in [0, 1] over this stem drives brightness: louder = flatter slope
        lo, hi = np.percentile(loud[gate > 0], [5, 95]) if loud_range is None else loud_range
        out = self._harmonics(f0, amp, loud, loud_range=(lo, hi), sr=sr)
        return add_noise_and_body(out, amp, t, sr=sr, seed=self.seed if seed is None else seed)

    def _harmonics(self, f0: np.ndarray, amp: np.ndarray, loud: np.ndarray, *, loud_range: tuple[float, float],
                   sr: int) -> np.ndarray:
        """Band-limited harmonics of ``f0`` times ``amp``, by the Chebyshev recurrence (no per-harmonic ``sin``).

        The phase is the running sum of ``f0``. ``sin(k p) = 2 cos(p) sin((k-1) p) - sin((k-2) p)``;
        harmonic ``k`` has amplitude ``r**(k-1) / sqrt(k)`` (``r`` from the spectral slope), the
        even/odd balance, and is dropped wherever ``k * f0`` reaches Nyquist. The slope (dB per
        harmonic) flattens by ``brightness_db`` from the quietest to the loudest ``loud`` (clipped
        to ``loud_range``) and steepens by ``pitch_tilt_db_per_octave`` per octave of ``f0`` above
        ``range_hz[0]`` (flattens below it, down to 0).
        Samples where ``amp <= 1e-6`` stay silent. One compiled pass (numba) over blocks of samples,
        in float32 like the numpy version it replaced (``oscillator_bank`` in ``_synth_kernels``).
        """
        t = self.timbre
        even = np.float32(10.0 ** (t.even_gain_db / 20.0))
        weights = np.array([np.float32((even if k % 2 == 0 else 1.0) / np.sqrt(k))
                            for k in range(1, t.n_harmonics + 1)], np.float32)
        lo, hi = loud_range
        return _kernels.oscillator_bank(
            np.ascontiguousarray(f0, np.float32), np.ascontiguousarray(amp, np.float32),
            np.ascontiguousarray(loud, np.float32), weights, float(sr), float(lo), float(max(hi - lo, 1e-3)),
            float(t.tilt_db_per_harmonic), float(t.brightness_db), float(t.pitch_tilt_db_per_octave),
            float(t.range_hz[0]))

    def revoice(self, y: np.ndarray, *, sr: int, time_ratio: float = 1.0, semitones: float = 0.0) -> np.ndarray:
        """See :class:`~covermill.instruments.base.Instrument`. Output RMS matches the input stem's.
        The audio of :meth:`render` in ``expressive`` mode."""
        return self.render(y, sr=sr, time_ratio=time_ratio, semitones=semitones).audio

    def render(self, y: np.ndarray, *, sr: int, time_ratio: float = 1.0, semitones: float = 0.0,
               notes: tuple[Note, ...] | None = None, mode: str = "expressive", expression: bool = True) -> Voicing:
        """Re-voice stem ``y``: a :class:`~covermill.instruments.notes.Voicing` (audio ``(1, n_out)``,
        ``n_out = round(n / time_ratio)``, RMS matched to the stem's; the notes as played).

        ``mode="expressive"``: the stem's continuous f0 and loudness (as :meth:`revoice`); ``notes``
        are ignored and the voicing's notes are ``None``. ``"notes"``: the monophonic line of
        ``notes`` (:meth:`play_notes`) with the stem's loudness and, with ``expression``, its pitch
        expression on top. ``"chords"``: ``notes`` played polyphonically (:meth:`play_polyphonic`)
        with the stem's loudness. ``notes`` are at the cover's tempo and key (see
        :func:`~covermill.instruments.notes.retime_notes`); the fraction of ``semitones`` that a MIDI
        pitch cannot hold detunes them. ``notes=None`` transcribes the stem
        (:func:`~covermill.instruments.notes.stem_notes`; in ``notes`` mode only the notes its f0
        confirms, :func:`~covermill.instruments.notes.lead_line`). Notes move
        by whole octaves into the timbre's range (all together). No notes: :class:`NoNotesError`
        carrying the silent voicing.
        """
        y = check_audio(y, sr)
        if time_ratio <= 0:
            raise ParameterError(f"time_ratio={time_ratio} must be > 0")
        if check_mode(mode) == "expressive":
            return Voicing(self._expressive(y, sr=sr, time_ratio=time_ratio, semitones=semitones))
        n_out = int(round(y.shape[1] / time_ratio))
        controls = stem_controls(y, sr=sr, time_ratio=time_ratio, semitones=semitones, n_out=n_out,
                                 f0=mode == "notes" and (expression or notes is None))
        detune = semitones - round(semitones)
        if notes is None:
            notes = retime_notes(stem_notes(y, sr=sr), time_ratio=time_ratio, semitones=semitones)
            if mode == "notes":  # the notes the stem's own f0 confirms, not its bleed
                notes = lead_line(notes, controls.f0_hz / 2.0 ** (detune / 12.0), controls.frame_rate)
        notes = check_notes(notes)
        if mode == "notes":
            notes = monophonic(notes)
        notes = self.in_range(notes)
        if not notes:
            raise NoNotesError("no notes to play (silent, noisy or purely percussive stem, or an empty note list); "
                               "keep or mute this stem, or re-voice it expressively",
                               Voicing(np.zeros((1, n_out), np.float32), (), None))
        if mode == "notes":
            out = self.play_notes(notes, sr=sr, n_samples=n_out, loudness=controls,
                                  expression=controls if expression else None, detune_semitones=detune)
        else:
            out = self.play_polyphonic(notes, sr=sr, n_samples=n_out, loudness=controls, detune_semitones=detune)
        return Voicing(match_rms(out, y), notes, None)

    def _expressive(self, y: np.ndarray, *, sr: int, time_ratio: float, semitones: float) -> np.ndarray:
        controls = extract_controls(y, sr=sr)
        n_out = int(round(y.shape[1] / time_ratio))
        if time_ratio != 1.0:
            controls = retime(controls, time_ratio=time_ratio,
                              n_frames=int(np.ceil(n_out / sr * controls.frame_rate)) + 1)
        factor = 2.0 ** (semitones / 12.0) * octave_shift(controls.f0_hz * 2.0 ** (semitones / 12.0),
                                                           self.timbre.range_hz)
        controls = Controls(controls.f0_hz * factor, controls.voiced, controls.loudness_db, controls.frame_rate)
        out = self.synthesize(controls, sr=sr, n_samples=n_out)
        return match_rms(out, y)[None, :]

    def in_range(self, notes: tuple[Note, ...]) -> tuple[Note, ...]:
        """``notes`` moved together by the whole octaves that bring their median pitch into the timbre's range."""
        if not notes:
            return tuple(notes)
        factor = octave_shift(np.array([midi_hz(n.pitch) for n in notes]), self.timbre.range_hz)
        shift = 12 * int(round(np.log2(factor)))
        return tuple(replace(n, pitch=int(np.clip(n.pitch + shift, 0, 127))) for n in notes) if shift else notes

    def play_notes(self, notes, *, sr: int, n_samples: int, loudness: Controls | None = None,
                   expression: Controls | None = None, detune_semitones: float = 0.0) -> np.ndarray:
        """Play a monophonic line: float32 ``(1, n_samples)``.

        ``notes`` (:class:`~covermill.leadsheet.Note`, output time; overlaps are cut to their top
        line) set the pitch; the timbre's attack and release shape each note. ``loudness``: frame
        controls at output time (e.g. the stem's, retimed) whose ``loudness_db`` sets the level inside
        the notes (floored 30 dB under its loud notes, so that a note the stem hardly plays is still
        heard); ``None``: the notes' velocities. ``expression``: controls whose ``f0_hz`` bends the
        notes by the stem's own vibrato and scoops (:func:`~covermill.instruments.notes.expression_cents`,
        within +-50 cents).
        """
        if sr <= 0:
            raise ParameterError(f"sr={sr} must be positive")
        notes = monophonic(notes)
        f0, gate, pitch = note_tracks(notes, sr=sr, n_samples=n_samples, detune_semitones=detune_semitones)
        if expression is not None and len(expression):
            frame_pos = np.arange(len(expression)) / expression.frame_rate * sr
            at = np.clip(np.round(frame_pos).astype(np.int64), 0, max(n_samples - 1, 0))
            cents = expression_cents(expression.f0_hz, pitch[at] if n_samples else np.zeros(0))
            pos = np.arange(n_samples, dtype=np.float64)
            f0 = (f0 * 2.0 ** (np.interp(pos, frame_pos, cents) / 1200.0)).astype(np.float32)
        loud = self._note_loudness([notes], [gate], loudness, sr=sr, dip_db=NOTE_DIP_DB)[0]
        return self.voice(f0, gate, loud, sr=sr)[None, :]

    def play_polyphonic(self, notes, *, sr: int, n_samples: int, loudness: Controls | None = None,
                        max_voices: int = 8, detune_semitones: float = 0.0) -> np.ndarray:
        """Play ``notes`` as chords: float32 ``(1, n_samples)``, the sum of monophonic voices
        (:func:`~covermill.instruments.notes.allocate_voices`, at most ``max_voices``), divided by the
        square root of the mean number of notes sounding (so a 4-note chord is about as loud as one
        note). ``loudness`` as in :meth:`play_notes`, shared by every voice; brightness follows it the
        same way in every voice."""
        if sr <= 0:
            raise ParameterError(f"sr={sr} must be positive")
        voices = allocate_voices(notes, max_voices=max_voices)
        tracks = [note_tracks(v, sr=sr, n_samples=n_samples, detune_semitones=detune_semitones) for v in voices]
        louds = self._note_loudness(voices, [g for _, g, _ in tracks], loudness, sr=sr, dip_db=CHORD_DIP_DB)
        count = np.zeros(n_samples, np.float32)
        for _, g, _ in tracks:
            count += g
        out = np.zeros(n_samples, np.float32)
        if not count.any():
            return out[None, :]
        on = np.concatenate([lo[g > 0] for lo, (_, g, _) in zip(louds, tracks, strict=True)])
        loud_range = tuple(np.percentile(on, [5, 95]))
        for i, ((f0, gate, _), loud) in enumerate(zip(tracks, louds, strict=True)):
            out += self.voice(f0, gate, loud, sr=sr, loud_range=loud_range, seed=self.seed + i)
        out /= np.float32(np.sqrt(max(1.0, float(count[count > 0].mean()))))
        return out[None, :]

    @staticmethod
    def _note_loudness(voices, gates, loudness: Controls | None, *, sr: int,
                       dip_db: float | None = None) -> list[np.ndarray]:
        """Audio-rate loudness (dB) of each voice, each note's level held from its start to the next
        one's (through its release): without controls -20 dB + 40 log10(velocity / 127); with them,
        the controls' loudness (floored 30 dB under its 95th percentile inside the notes) plus
        40 log10(velocity / v90), v90 the notes' 90th-percentile velocity (at most +3 dB), so a
        faint transcribed note stays faint. With ``dip_db`` the controls' loudness is kept, from each
        note's start to the next one's, within ``dip_db`` under the note's level (its
        :data:`HOLD_PERCENTILE` th percentile over the note; louder moments are held at it): 0 holds a
        chord's level instead of following the stem's dips and decay inside it (the timbre's own
        attack and release still shape it)."""
        n = len(gates[0]) if gates else 0
        velocities = [note.velocity for notes in voices for note in notes]
        if loudness is None:
            base, ref = np.zeros(n, np.float32), 127.0
        else:
            frame_pos = np.arange(len(loudness)) / loudness.frame_rate * sr
            base = np.interp(np.arange(n, dtype=np.float64), frame_pos, loudness.loudness_db).astype(np.float32)
            inside = np.zeros(n, bool)
            for g in gates:
                inside |= g > 0
            if inside.any():
                base = np.maximum(base, np.float32(np.percentile(base[inside], 95) - 30.0))
            ref = float(np.percentile(velocities, 90)) if velocities else 127.0
        out = []
        for notes in voices:
            offset = np.zeros(n, np.float32)
            level = base.copy() if dip_db is not None and loudness is not None else base
            for i, note in enumerate(notes):
                a = 0 if i == 0 else max(0, int(round(note.start_s * sr)))
                offset[a:] = min(3.0, 40.0 * np.log10(max(1, note.velocity) / ref))
                if level is not base:
                    s0, s1 = max(0, int(round(note.start_s * sr))), min(n, int(round(note.end_s * sr)))
                    if s1 > s0:
                        held = np.float32(np.percentile(base[s0:s1:HOLD_STRIDE], HOLD_PERCENTILE))
                        level[a:] = np.clip(base[a:], held - np.float32(dip_db), held)
            out.append(level + offset - (20.0 if loudness is None else 0.0))
        return out


def stem_controls(y: np.ndarray, *, sr: int, time_ratio: float, semitones: float, n_out: int,
                  f0: bool = True) -> Controls:
    """The stem's controls at the cover's tempo (``n_out`` samples) and key: f0 and loudness
    (:func:`~covermill.instruments.features.extract_controls`), or with ``f0=False`` loudness only
    (no pitch tracking: for chords, whose f0 means nothing)."""
    if f0:
        controls = extract_controls(y, sr=sr)
    else:
        mono = resample(y.mean(axis=0)[None], sr_in=sr, sr_out=FEATURE_SR)[0]
        loud = a_weighted_loudness(mono, sr=FEATURE_SR, hop_length=FEATURE_HOP)
        zeros = np.zeros(len(loud), np.float32)
        controls = Controls(zeros, zeros, loud, FEATURE_SR / FEATURE_HOP)
    controls = retime(controls, time_ratio=time_ratio, n_frames=int(np.ceil(n_out / sr * controls.frame_rate)) + 1)
    return Controls((controls.f0_hz * 2.0 ** (semitones / 12.0)).astype(np.float32), controls.voiced,
                    controls.loudness_db, controls.frame_rate)


def render_note(timbre: Timbre, *, midi_note: float | None = None, seconds: float = 1.5, sr: int = 22050,
                loudness_db: float = -20.0) -> tuple[np.ndarray, float]:
    """One steady note of ``timbre``: mono float32 ``(n,)`` and its f0 in Hz.

    The default pitch is the MIDI note nearest the geometric middle of ``range_hz``.
    """
    if midi_note is None:
        mid_hz = float(np.sqrt(timbre.range_hz[0] * timbre.range_hz[1]))
        midi_note = round(69 + 12 * np.log2(mid_hz / 440.0))
    f0 = 440.0 * 2.0 ** ((midi_note - 69) / 12)
    frames = int(seconds * 62.5) + 2
    controls = Controls(np.full(frames, f0, np.float32), np.ones(frames, np.float32),
                        np.full(frames, loudness_db, np.float32), 62.5)
    return ParametricInstrument(timbre).synthesize(controls, sr=sr, n_samples=int(seconds * sr)), f0


def note_character(timbre: Timbre, *, sr: int = 22050) -> dict[str, float]:
    """Listening-free description of a rendered note: ``centroid_hz`` (spectral centroid of the
    steady part) and ``fundamental_share`` (the fundamental's share of the power on harmonics).
    """
    y, f0 = render_note(timbre, sr=sr)
    seg = y[len(y) // 3:]
    seg = seg * np.hanning(len(seg))
    power = np.abs(np.fft.rfft(seg)) ** 2
    freqs = np.fft.rfftfreq(len(seg), 1.0 / sr)
    centroid = float(np.sum(freqs * power) / max(np.sum(power), 1e-20))
    k = np.round(freqs / f0)
    on_harmonic = (k >= 1) & (np.abs(freqs - k * f0) < 0.03 * f0)
    fundamental = on_harmonic & (k == 1)
    share = float(power[fundamental].sum() / max(power[on_harmonic].sum(), 1e-20))
    return {"centroid_hz": centroid, "fundamental_share": share, "f0_hz": f0}
