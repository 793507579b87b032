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

import numpy as np
import scipy.signal

from ..audio import check_audio
from ..errors import ParameterError
from . import _synth_kernels as _kernels
from .features import Controls, extract_controls, retime
from .timbre import Timbre, load_builtin_timbres

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

    def synthesize(self, controls: Controls, *, sr: int, n_samples: int) -> np.ndarray:
        """Render ``controls`` to mono float32 ``(n_samples,)`` at ``sr``."""
        t = self.timbre
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
        f0 = _kernels.hold_f0(f0)  # through unvoiced gaps, so that the release tail keeps its pitch
        loud = np.interp(pos, frame_pos, controls.loudness_db).astype(np.float32)
        env = _smooth_gate(gate, sr=sr, attack_ms=t.attack_ms, release_ms=t.release_ms)
        amp = (10.0 ** (loud / 20.0)).astype(np.float32) * env
        if t.vibrato_cents > 0:
            f0 = _kernels.vibrato(f0, float(sr), float(t.vibrato_hz), float(t.vibrato_cents))
        # loudness in [0, 1] over this stem drives brightness: louder = flatter slope
        lo, hi = np.percentile(loud[gate > 0], [5, 95])
        out = self._harmonics(f0, amp, loud, loud_range=(lo, hi), sr=sr)
        return add_noise_and_body(out, amp, t, sr=sr, seed=self.seed)

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
        """See :class:`~covermill.instruments.base.Instrument`. Output RMS matches the input stem's."""
        y = check_audio(y, sr)
        if time_ratio <= 0:
            raise ParameterError(f"time_ratio={time_ratio} must be > 0")
        controls = extract_controls(y, sr=sr)
        n_out = int(round(y.shape[1] / time_ratio))
        if time_ratio != 1.0:
            controls = retime(controls, time_ratio=time_ratio,
                              n_frames=int(np.ceil(n_out / sr * controls.frame_rate)) + 1)
        factor = 2.0 ** (semitones / 12.0) * octave_shift(controls.f0_hz * 2.0 ** (semitones / 12.0),
                                                           self.timbre.range_hz)
        controls = Controls(controls.f0_hz * factor, controls.voiced, controls.loudness_db, controls.frame_rate)
        out = self.synthesize(controls, sr=sr, n_samples=n_out)
        rms_in = float(np.sqrt(np.mean(y.astype(np.float64) ** 2)))
        rms_out = float(np.sqrt(np.mean(out.astype(np.float64) ** 2)))
        if rms_out > 1e-9:
            out *= rms_in / rms_out
        return out[None, :]


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
