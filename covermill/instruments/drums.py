"""Re-voice a drum stem to a General MIDI drum kit: band-split onsets -> kick / snare / hi-hat notes.

The stem is split into three bands (kick below 100 Hz, snare 150 Hz-4 kHz, hi-hat above
6 kHz); librosa's onset detector runs on each band's onset strength, and an onset counts
for a band only where that band carries a fair share of its own loudest hits and, for
kick and snare, more of it than the other one (so a snare's thump does not also trigger
the kick, nor a kick's click the snare). Hits become GM percussion notes
(36 kick, 38 snare, 42 closed hi-hat) with velocity from the band's onset strength, the
feel of :func:`~covermill.instruments.midi.apply_feel` applies, and FluidSynth plays them
with the chosen GM kit (e.g. ``brush`` for jazz). Like every instrument the notes are
time-scaled by the tempo ratio; drums are not transposed.
"""

from __future__ import annotations

import os

import numpy as np
import scipy.signal

from ..audio import check_audio, resample
from ..errors import ParameterError
from ..gm import GM_DRUM_KITS, kit_number  # noqa: F401  (re-exported)
from ..leadsheet import Note
from .fluidsynth import render_mono
from .midi import NoNotesError, apply_feel, beat_times, check_soundfont
from .notes import Voicing, check_mode, from_pretty, match_rms, revoice_keeping_state

#: (name, GM note, band in Hz) for each voice.
VOICES = (("kick", 36, (20.0, 100.0)), ("snare", 38, (150.0, 4000.0)), ("hihat", 42, (6000.0, 10500.0)))
_SR = 22050
_HOP = 256


def drum_hits(y: np.ndarray, *, sr: int, min_share_db: float = -15.0):
    """Kick / snare / hi-hat hits of a drum stem as ``pretty_midi.Note`` (seconds, GM drum note)."""
    import librosa
    import pretty_midi

    mono = np.asarray(y, np.float32)
    mono = mono.mean(axis=0) if mono.ndim == 2 else mono
    if np.max(np.abs(mono)) < 1e-4:
        return []
    x = resample(mono[None], sr_in=sr, sr_out=_SR)[0]
    bands = {}
    for name, pitch, (lo, hi) in VOICES:
        sos = scipy.signal.butter(4, [lo, min(hi, 0.45 * _SR)], btype="bandpass", fs=_SR, output="sos")
        band = scipy.signal.sosfilt(sos, x).astype(np.float32)
        env = librosa.onset.onset_strength(y=band, sr=_SR, hop_length=_HOP, lag=1, max_size=3)
        frames = librosa.onset.onset_detect(onset_envelope=env, sr=_SR, hop_length=_HOP, backtrack=False,
                                            units="frames", delta=0.1, wait=3)
        rms = librosa.feature.rms(y=band, frame_length=1024, hop_length=_HOP)[0]
        peaks = np.array([rms[f : f + 6].max() for f in frames])
        loud = float(np.percentile(peaks, 90)) if len(peaks) else 0.0
        bands[name] = (pitch, env, frames, rms, max(loud, 1e-9))

    def level(name: str, f: int) -> float:  # a band's level at frame f relative to its loud hits
        _, _, _, rms, loud = bands[name]
        return float(rms[f : f + 6].max() / loud) if f < len(rms) else 0.0

    rival = {"kick": "snare", "snare": "kick"}  # the pair that leaks into each other's band
    notes = []
    for name, (pitch, env, frames, rms, _) in bands.items():
        if len(frames) == 0:
            continue
        strength = env[frames] / max(np.percentile(env[frames], 90), 1e-9)
        for f, s in zip(frames, strength, strict=True):
            mine = level(name, f)
            if 20 * np.log10(mine + 1e-12) < min_share_db or rms[f : f + 6].max() < 1e-4:
                continue
            if name in rival and level(rival[name], f) > mine:  # leakage of the other drum's hit
                continue
            t = f * _HOP / _SR
            notes.append(pretty_midi.Note(velocity=int(np.clip(round(40 + 70 * s), 1, 127)), pitch=pitch,
                                          start=t, end=t + 0.1))
    return sorted(notes, key=lambda n: (n.start, n.pitch))


class DrumKitInstrument:
    """Re-voice a drum stem as a GM drum kit (``kit``: name or number). :meth:`render` returns the
    audio, hits and MIDI; after :meth:`revoice`: ``notes_`` (hits, source time) and ``midi_`` (as played)."""

    def __init__(self, kit: str | int = "standard", *, soundfont: str | os.PathLike | None = None,
                 quantize: float = 0.0, swing: float = 0.5, velocity_scale: float = 1.0) -> None:
        self.kit = kit
        self.soundfont = soundfont
        self.quantize = quantize
        self.swing = swing
        self.velocity_scale = velocity_scale
        self.name = f"drums:{kit}"

    def check(self) -> None:
        from .fluidsynth import fluidsynth_program

        kit_number(self.kit)
        check_soundfont(self.soundfont)
        fluidsynth_program()

    def play(self, notes, *, time_ratio: float = 1.0):
        import pretty_midi

        midi = pretty_midi.PrettyMIDI(resolution=960, initial_tempo=120.0)
        inst = pretty_midi.Instrument(program=kit_number(self.kit), is_drum=True, name=f"{self.kit} kit")
        inst.notes = [pretty_midi.Note(velocity=n.velocity, pitch=n.pitch, start=n.start / time_ratio,
                                       end=n.start / time_ratio + 0.1) for n in notes]
        midi.instruments.append(inst)
        return midi

    def render(self, y: np.ndarray, *, sr: int, time_ratio: float = 1.0, semitones: float = 0.0,
               notes: tuple[Note, ...] | None = None, mode: str = "expressive") -> Voicing:
        """Re-voice a drum stem: a :class:`~covermill.instruments.notes.Voicing` (mono audio, the hits as
        played in cover time as GM drum notes, the MIDI). ``notes``, ``mode`` and ``semitones`` are
        ignored (drums play the stem's own hits and keep their pitch). Without hits:
        :class:`~covermill.instruments.midi.NoNotesError` carrying the silent voicing."""
        return self._render(y, sr=sr, time_ratio=time_ratio, mode=mode)[0]

    def _render(self, y, *, sr, time_ratio, mode="expressive"):
        """``(voicing, the hits in the stem's time)``."""
        y = check_audio(y, sr)
        if time_ratio <= 0:
            raise ParameterError(f"time_ratio={time_ratio} must be > 0")
        check_mode(mode)
        self.check()
        n_out = int(round(y.shape[1] / time_ratio))
        source = notes = drum_hits(y, sr=sr)
        beats = beat_times(y, sr=sr) if notes and (self.quantize > 0 or self.swing != 0.5) else None
        notes = apply_feel(notes, beats=beats, quantize=self.quantize, swing=self.swing,
                           velocity_scale=self.velocity_scale)
        midi = self.play(notes, time_ratio=time_ratio)
        played = from_pretty(midi.instruments[0].notes)
        if not notes:
            raise NoNotesError("no drum hits found to re-voice (silent stem?); keep or mute this stem",
                               Voicing(np.zeros((1, n_out), np.float32), played, midi))
        out = render_mono(midi, sr=sr, n_samples=n_out, soundfont=self.soundfont)
        return Voicing(match_rms(out, y)[None, :], played, midi), source

    def revoice(self, y: np.ndarray, *, sr: int, time_ratio: float = 1.0, semitones: float = 0.0) -> np.ndarray:
        """See :class:`~covermill.instruments.base.Instrument` (``semitones`` is ignored: drums keep
        their pitch): :meth:`render`'s audio. Leaves ``notes_`` (hits, source time) and ``midi_`` (as
        played) on the instrument for older callers. Raises
        :class:`~covermill.instruments.midi.NoNotesError` without hits."""
        return revoice_keeping_state(self, lambda: self._render(y, sr=sr, time_ratio=time_ratio))
