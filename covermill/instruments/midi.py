"""MIDI re-voicing of polyphonic stems: transcribe to notes, play them back with a GM soundfont.

* **Transcription**: Spotify's basic-pitch (ICASSP 2022 model), whose weights ship in its
  package. Its ONNX export (``basic_pitch/saved_models/icassp_2022/nmp.onnx``) runs on
  ``onnxruntime``, so TensorFlow is never needed; the audio is windowed exactly as
  ``basic_pitch.inference.run_inference`` does, and basic-pitch's own note creation
  (``basic_pitch.note_creation.model_output_to_notes``) turns the posteriorgrams into notes.
* **Feel** (optional, from the recipe): quantize strength towards a 16th-note grid from the
  stem's beats, swing ratio of the 8th notes, velocity scaling, octave shift.
* **Rendering**: the ``fluidsynth`` command line (Debian ``fluidsynth``) with a General MIDI
  soundfont (default ``/usr/share/sounds/sf2/FluidR3_GM.sf2`` from ``fluid-soundfont-gm``),
  rendering faster than realtime to a temporary WAV; its reverb and chorus are off (the
  recipe's effect chain does that).

:class:`MidiInstrument` follows the :class:`~covermill.instruments.base.Instrument`
protocol: note times are scaled by ``1 / time_ratio`` and pitches transposed by
``semitones`` (the fractional part as pitch bend), so no audio is stretched. ``render`` returns a
:class:`~covermill.instruments.notes.Voicing`: the audio, the notes as played and the
``pretty_midi.PrettyMIDI`` for ``OUT/midi/<stem>.mid``; given notes (the lead sheet's melody or
voiced chords) are played instead of the transcription. (``revoice`` still leaves ``notes_`` and
``midi_`` on the instrument for older callers.)
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading
from pathlib import Path

import numpy as np

from ..audio import check_audio, resample
from ..errors import BackendUnavailableError, ParameterError
from ..gm import gm_program_names, program_number  # noqa: F401  (re-exported)
from ..leadsheet import Note
from . import notes as _notes
from .fluidsynth import (  # noqa: F401  (re-exported)
    DEFAULT_SOUNDFONT,
    FLUIDR3,
    SOUNDFONTS,
    check_soundfont,
    default_soundfont,
    fluidsynth_program,
    render_midi,
    render_mono,
)
from .notes import NoNotesError, Voicing, from_pretty, to_pretty

log = logging.getLogger(__name__)

#: basic-pitch's analysis rate, frame rate and window (from ``basic_pitch.constants``).
BP_SR = 22050
BP_HOP = 256
BP_WINDOW = BP_SR * 2 - BP_HOP
BP_OVERLAP_FRAMES = 30


# ---------------------------------------------------------------- General MIDI programs


# ---------------------------------------------------------------- transcription


_IMPORT_LOCK = threading.RLock()  # stems are re-voiced on threads; the import juggles global state


def _import_basic_pitch():
    with _IMPORT_LOCK:
        return _import_basic_pitch_locked()


def _import_basic_pitch_locked():
    try:
        import onnxruntime  # noqa: F401
        import pretty_midi  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailableError(
            f"MIDI re-voicing needs {exc.name}: pip install onnxruntime pretty_midi") from None
    root = logging.getLogger()
    level = root.level
    logging.disable(logging.WARNING)  # basic_pitch/__init__ warns about every runtime it lacks
    # basic_pitch/__init__ imports TensorFlow when it is installed (covermill[magenta] installs it): we
    # run the ONNX model, so hide TensorFlow while basic_pitch probes its runtimes (15 s and ~1 GB saved)
    hide_tf = "tensorflow" not in sys.modules
    if hide_tf:
        sys.modules["tensorflow"] = None  # type: ignore[assignment]  # `import tensorflow` -> ImportError
    try:
        import basic_pitch
        from basic_pitch import note_creation
    except ImportError:
        raise BackendUnavailableError(
            "MIDI re-voicing needs basic-pitch without TensorFlow: pip install --no-deps basic-pitch==0.4.0 "
            "resampy mir_eval (see docs/dependencies.md)") from None
    finally:
        if hide_tf and sys.modules.get("tensorflow", 0) is None:
            del sys.modules["tensorflow"]
        logging.disable(logging.NOTSET)
        root.setLevel(level)
    return basic_pitch, note_creation


def _session():
    with _IMPORT_LOCK:  # one session, even when two stems ask for it at once
        return _new_session()


@functools.lru_cache(maxsize=1)
def _new_session():
    import onnxruntime as ort

    basic_pitch, _ = _import_basic_pitch()
    path = Path(basic_pitch.__file__).parent / "saved_models" / "icassp_2022" / "nmp.onnx"
    if not path.is_file():
        raise BackendUnavailableError(f"{path}: basic-pitch's ONNX model is missing; reinstall basic-pitch==0.4.0")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def posteriorgrams(y: np.ndarray, *, sr: int, batch: int = 8) -> dict[str, np.ndarray]:
    """basic-pitch's ``note``/``onset`` ``(frames, 88)`` and ``contour`` ``(frames, 264)`` of mono ``y``.

    Windows of 2 s overlap by 30 frames; half the overlap is dropped on each side, as in
    ``basic_pitch.inference.run_inference`` (frames at 22050 / 256 = 86.13 per second).
    """
    mono = np.asarray(y, np.float32)
    mono = mono.mean(axis=0) if mono.ndim == 2 else mono
    audio = resample(mono[None], sr_in=sr, sr_out=BP_SR)[0]
    n_original = len(audio)
    overlap = BP_OVERLAP_FRAMES * BP_HOP
    hop = BP_WINDOW - overlap
    audio = np.concatenate([np.zeros(overlap // 2, np.float32), audio])
    starts = list(range(0, len(audio), hop))
    windows = np.zeros((len(starts), BP_WINDOW, 1), np.float32)
    for i, s in enumerate(starts):
        chunk = audio[s : s + BP_WINDOW]
        windows[i, : len(chunk), 0] = chunk
    session = _session()
    outputs = {"note": [], "onset": [], "contour": []}
    names = ["StatefulPartitionedCall:1", "StatefulPartitionedCall:2", "StatefulPartitionedCall:0"]
    for b in range(0, len(windows), batch):
        for key, value in zip(outputs, session.run(names, {"serving_default_input_2:0": windows[b : b + batch]}), strict=True):
            outputs[key].append(value)
    n_frames = int(np.floor(n_original * (BP_SR // BP_HOP) / BP_SR))
    half = BP_OVERLAP_FRAMES // 2
    result = {}
    for key, parts in outputs.items():
        out = np.concatenate(parts)[:, half:-half, :]
        result[key] = out.reshape(-1, out.shape[2])[:n_frames]
    return result


def transcribe(y: np.ndarray, *, sr: int, onset_threshold: float = 0.5, frame_threshold: float = 0.3,
               min_note_ms: float = 127.7, fmin_hz: float | None = None, fmax_hz: float | None = None,
               min_level_db: float = -60.0):
    """Notes of a (polyphonic) stem: a list of ``pretty_midi.Note`` (seconds, MIDI pitch, velocity).

    ``y`` is float32 ``(channels, n)`` or ``(n,)``; thresholds are basic-pitch's defaults.
    Notes where the stem never reaches ``min_level_db`` dBFS (10 ms RMS) are dropped.
    Returns ``[]`` for a stem without notes.
    """
    import pretty_midi

    _, note_creation = _import_basic_pitch()
    if np.max(np.abs(y)) < 1e-6:
        return []
    output = posteriorgrams(y, sr=sr)
    min_len = int(np.round(min_note_ms / 1000 * (BP_SR / BP_HOP)))
    _, events = note_creation.model_output_to_notes(
        output, onset_thresh=onset_threshold, frame_thresh=frame_threshold, min_note_len=min_len,
        min_freq=fmin_hz, max_freq=fmax_hz, include_pitch_bends=False, melodia_trick=True)
    mono = np.asarray(y, np.float32)
    mono = mono.mean(axis=0) if mono.ndim == 2 else mono
    hop = max(1, sr // 100)
    level_db = 20 * np.log10(np.sqrt(np.mean(mono[: len(mono) // hop * hop].reshape(-1, hop) ** 2, axis=1)) + 1e-12)
    notes = []
    for start, end, pitch, amp, _ in events:
        span = level_db[int(start * 100) : max(int(end * 100), int(start * 100) + 1)]
        if span.size and span.max() >= min_level_db:  # the model hears "notes" in faint noise too
            notes.append(pretty_midi.Note(velocity=int(np.clip(round(127 * amp), 1, 127)), pitch=int(pitch),
                                          start=float(start), end=float(end)))
    return sorted(notes, key=lambda n: (n.start, n.pitch))


# ---------------------------------------------------------------- feel


def beat_times(y: np.ndarray, *, sr: int) -> np.ndarray:
    """Beat times (s) of a stem (librosa's beat tracker), extended by one beat on each side."""
    from ..kernels import librosa_beat

    mono = np.asarray(y, np.float32)
    mono = mono.mean(axis=0) if mono.ndim == 2 else mono
    if sr > BP_SR:  # beats need no more than 11 kHz of bandwidth; half the work at 44.1 kHz
        mono, sr = resample(mono[None], sr_in=sr, sr_out=BP_SR)[0], BP_SR
    _, beats = librosa_beat().beat_track(y=mono, sr=sr, hop_length=256, units="time")
    beats = np.asarray(beats, float)
    if len(beats) < 2:
        return beats
    period = float(np.median(np.diff(beats)))
    first = beats[0] - period * np.arange(int(beats[0] / period) + 1, 0, -1)
    last = beats[-1] + period * np.arange(1, int((len(mono) / sr - beats[-1]) / period) + 2)
    return np.concatenate([first, beats, last])


def apply_feel(notes, *, beats: np.ndarray | None = None, quantize: float = 0.0, swing: float = 0.5,
               velocity_scale: float = 1.0):
    """Quantize note starts towards the 16th-note grid between ``beats`` (strength 0-1), swing the
    8th notes (``swing`` = where the off-beat falls in the beat: 0.5 straight, 0.67 triplet
    swing), scale velocities. Durations are kept. Returns new notes."""
    import pretty_midi

    out = []
    use_grid = beats is not None and len(beats) >= 2 and (quantize > 0 or swing != 0.5)
    for n in notes:
        start = n.start
        if use_grid:
            i = int(np.clip(np.searchsorted(beats, start, side="right") - 1, 0, len(beats) - 2))
            b0, b1 = beats[i], beats[i + 1]
            frac = (start - b0) / (b1 - b0)
            frac += quantize * (np.round(frac * 4) / 4 - frac)
            frac = frac * 2 * swing if frac <= 0.5 else swing + (frac - 0.5) * 2 * (1 - swing)
            start = b0 + frac * (b1 - b0)
        velocity = int(np.clip(round(n.velocity * velocity_scale), 1, 127))
        out.append(pretty_midi.Note(velocity=velocity, pitch=n.pitch, start=max(0.0, start),
                                    end=max(0.0, start) + (n.end - n.start)))
    return out


# ---------------------------------------------------------------- the instrument


class MidiInstrument:
    """Re-voice a polyphonic stem through MIDI with a General MIDI program.

    Parameters are stored as given (validated on first use): ``program`` (GM name or
    0-127), ``soundfont`` (``.sf2`` path; ``None`` for FluidR3 GM), ``quantize`` (0-1),
    ``swing`` (0.5-0.75), ``velocity_scale`` (> 0), ``octave_shift`` (whole octaves).
    After :meth:`revoice`: ``notes_`` (transcribed, source time) and ``midi_`` (as played).
    """

    def __init__(self, program: str | int, *, soundfont: str | os.PathLike | None = None, quantize: float = 0.0,
                 swing: float = 0.5, velocity_scale: float = 1.0, octave_shift: int = 0) -> None:
        self.program = program
        self.soundfont = soundfont
        self.quantize = quantize
        self.swing = swing
        self.velocity_scale = velocity_scale
        self.octave_shift = octave_shift
        self.name = f"midi:{program}"

    def check(self) -> None:
        """Fail early (before any audio work) on a bad program, a missing soundfont or no fluidsynth."""
        program_number(self.program)
        check_soundfont(self.soundfont)
        fluidsynth_program()
        _import_basic_pitch()

    def play(self, notes, *, time_ratio: float = 1.0, semitones: float = 0.0):
        """The ``pretty_midi.PrettyMIDI`` that plays ``notes`` ``time_ratio`` times faster, transposed."""
        import pretty_midi

        whole = int(np.floor(semitones + 0.5))
        bend = semitones - whole
        shift = whole + 12 * int(self.octave_shift)
        midi = pretty_midi.PrettyMIDI(resolution=960, initial_tempo=120.0)
        inst = pretty_midi.Instrument(program=program_number(self.program), name=str(self.program))
        for n in notes:
            pitch = n.pitch + shift
            while pitch > 127:
                pitch -= 12
            while pitch < 0:
                pitch += 12
            inst.notes.append(pretty_midi.Note(velocity=n.velocity, pitch=pitch, start=n.start / time_ratio,
                                               end=max(n.end / time_ratio, n.start / time_ratio + 0.01)))
        if abs(bend) > 1e-3:  # default pitch-bend range is +-2 semitones
            inst.pitch_bends.append(pretty_midi.PitchBend(int(round(bend / 2 * 8191)), 0.0))
        midi.instruments.append(inst)
        return midi

    def render(self, y: np.ndarray, *, sr: int, time_ratio: float = 1.0, semitones: float = 0.0,
               notes: tuple[Note, ...] | None = None, mode: str = "expressive") -> Voicing:
        """Re-voice stem ``y``: a :class:`~covermill.instruments.notes.Voicing` (mono ``(1, n_out)`` audio,
        RMS matched to the stem's; the notes as played, at the cover's tempo and pitch; the MIDI).

        ``mode="expressive"`` (or ``notes=None``) transcribes the stem with basic-pitch and plays
        every note, as :meth:`revoice`; ``"notes"`` only those the stem's f0 confirms, as one line
        (:func:`~covermill.instruments.notes.lead_line`). Given ``notes``
        (``"notes"`` or ``"chords"`` mode) are at the cover's tempo and key (the fraction of
        ``semitones`` a MIDI pitch cannot hold is a pitch bend) and are played instead of the
        transcription, with the feel (quantized to the stem's beats, retimed). No notes:
        :class:`NoNotesError` carrying the silent voicing and its empty MIDI.
        """
        return self._render(y, sr=sr, time_ratio=time_ratio, semitones=semitones, notes=notes, mode=mode)[0]

    def _render(self, y, *, sr, time_ratio, semitones, notes, mode):
        """``(voicing, the transcription in the stem's time or None)``."""
        y = check_audio(y, sr)
        if time_ratio <= 0:
            raise ParameterError(f"time_ratio={time_ratio} must be > 0")
        _notes.check_mode(mode)
        self.check()
        n_out = int(round(y.shape[1] / time_ratio))
        source = None
        if notes is None or mode == "expressive":
            notes = source = transcribe(y, sr=sr)
            if mode == "notes":  # the notes the stem's own f0 confirms, not its bleed
                from .features import extract_controls

                controls = extract_controls(y, sr=sr)
                notes = to_pretty(_notes.lead_line(from_pretty(notes), controls.f0_hz, controls.frame_rate))
            beats, play_ratio, play_semitones = beat_times, time_ratio, semitones
        else:
            notes = _notes.check_notes(notes)
            notes = to_pretty(_notes.monophonic(notes) if mode == "notes" else notes)
            beats = lambda y, sr: beat_times(y, sr=sr) / time_ratio  # noqa: E731  (the notes are in cover time)
            play_ratio, play_semitones = 1.0, semitones - round(semitones)
        if self.quantize > 0 or self.swing != 0.5:
            notes = apply_feel(notes, beats=beats(y, sr=sr), quantize=self.quantize, swing=self.swing,
                               velocity_scale=self.velocity_scale)
        elif self.velocity_scale != 1.0:
            notes = apply_feel(notes, velocity_scale=self.velocity_scale)
        midi = self.play(notes, time_ratio=play_ratio, semitones=play_semitones)
        played = from_pretty(midi.instruments[0].notes)
        if not notes:
            raise NoNotesError("no notes found to re-voice as MIDI (silent, noisy or purely percussive stem); "
                               "keep or mute this stem, or re-voice it with an instrument",
                               Voicing(np.zeros((1, n_out), np.float32), played, midi))
        out = render_mono(midi, sr=sr, n_samples=n_out, soundfont=self.soundfont)
        return Voicing(_notes.match_rms(out, y)[None, :], played, midi), source

    def revoice(self, y: np.ndarray, *, sr: int, time_ratio: float = 1.0, semitones: float = 0.0) -> np.ndarray:
        """See :class:`~covermill.instruments.base.Instrument`: :meth:`render`'s audio. Output RMS matches
        the input stem's. Leaves ``notes_`` (transcribed, source time) and ``midi_`` (as played) on the
        instrument for older callers; :meth:`render` returns them instead.

        Raises :class:`NoNotesError` when the stem has no notes (``midi_`` is then empty).
        """
        return _notes.revoice_keeping_state(self, lambda: self._render(y, sr=sr, time_ratio=time_ratio,
                                                                        semitones=semitones, notes=None,
                                                                        mode="expressive"))
