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
    rising = scipy.signal.lfilter([1 - a_att], [1, -a_att], gate)
    falling = scipy.signal.lfilter([1 - a_rel], [1, -a_rel], gate)
    return np.where(gate > 0, rising, np.minimum(falling, 1.0)).astype(np.float32)


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
        pos = np.arange(n_samples)
        f0 = np.interp(pos, frame_pos, controls.f0_hz).astype(np.float32)
        gate = np.interp(pos, frame_pos, controls.voiced).astype(np.float32)
        gate = (gate > 0.5).astype(np.float32)
        if not gate.any():
            return np.zeros(n_samples, np.float32)
        # hold f0 through unvoiced gaps so the release tail keeps its pitch
        if (f0 > 0).any():
            last = np.maximum.accumulate(np.where(f0 > 0, pos, 0))
            f0 = np.where(f0 > 0, f0, f0[last])
            first = np.argmax(f0 > 0)
            f0[:first] = f0[first]
        loud = np.interp(pos, frame_pos, controls.loudness_db).astype(np.float32)
        env = _smooth_gate(gate, sr=sr, attack_ms=t.attack_ms, release_ms=t.release_ms)
        amp = (10.0 ** (loud / 20.0)).astype(np.float32) * env
        if t.vibrato_cents > 0:
            vib = 2.0 ** (t.vibrato_cents / 1200.0 * np.sin(2 * np.pi * t.vibrato_hz * pos / sr))
            f0 = f0 * vib.astype(np.float32)
        phase = (2 * np.pi * np.cumsum(f0.astype(np.float64)) / sr) % (2 * np.pi)
        # loudness in [0, 1] over this stem drives brightness: louder = flatter slope
        lo, hi = np.percentile(loud[gate > 0], [5, 95])
        level = np.clip((loud - lo) / max(hi - lo, 1e-3), 0.0, 1.0)
        slope_db = t.tilt_db_per_harmonic + t.brightness_db * (0.5 - level)  # per harmonic
        if t.pitch_tilt_db_per_octave:
            octaves = np.log2(np.maximum(f0, 1.0) / t.range_hz[0]).astype(np.float32)
            slope_db = np.maximum(slope_db + t.pitch_tilt_db_per_octave * octaves, 0.0)
        out = np.zeros(n_samples, np.float32)
        active = np.flatnonzero(amp > 1e-6)  # synthesize only where the instrument sounds
        if active.size:
            out[active] = self._harmonics(phase[active], f0[active], slope_db[active], sr=sr) * amp[active]
        if t.noise_share > 0:
            rng = np.random.default_rng(self.seed)
            lo_hz, hi_hz = t.noise_band_hz
            sos = scipy.signal.butter(2, [lo_hz, min(hi_hz, 0.45 * sr)], btype="bandpass", fs=sr, output="sos")
            noise = scipy.signal.sosfilt(sos, rng.standard_normal(n_samples))
            noise /= max(np.std(noise), 1e-9)
            out += t.noise_share * amp * noise
        if t.body:
            out = scipy.signal.sosfilt(body_filter(t.body, sr=sr), out)
        return out.astype(np.float32)

    def _harmonics(self, phase: np.ndarray, f0: np.ndarray, slope_db: np.ndarray, *, sr: int) -> np.ndarray:
        """Sum of band-limited harmonics, by the Chebyshev recurrence (no per-harmonic ``sin``).

        ``sin(k p) = 2 cos(p) sin((k-1) p) - sin((k-2) p)``; harmonic ``k`` has amplitude
        ``r**(k-1) / sqrt(k)`` (``r`` from the spectral slope), the even/odd balance, and is
        dropped wherever ``k * f0`` reaches Nyquist.
        """
        t = self.timbre
        two_cos = (2.0 * np.cos(phase)).astype(np.float32)
        s_prev = np.zeros_like(two_cos)
        s_k = np.sin(phase).astype(np.float32)
        ratio = (10.0 ** (-slope_db / 20.0)).astype(np.float32)
        amp = np.ones_like(two_cos)
        even = np.float32(10.0 ** (t.even_gain_db / 20.0))
        limit = np.float32(sr / 2) / np.maximum(f0, 1.0)  # highest harmonic below Nyquist
        out = np.zeros_like(two_cos)
        for k in range(1, t.n_harmonics + 1):
            if k > 1:
                s_prev, s_k = s_k, two_cos * s_k - s_prev
                amp *= ratio
            weight = amp * np.float32((even if k % 2 == 0 else 1.0) / np.sqrt(k))
            out += np.where(k < limit, weight * s_k, 0.0)
        return out

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
