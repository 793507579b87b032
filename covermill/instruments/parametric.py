"""Built-in parametric instruments: a harmonic-plus-noise synthesizer that needs no training.

Each instrument is a :class:`Timbre`: the spectral tilt of its harmonics (and how it
brightens with loudness), the balance of odd and even harmonics, a share of filtered
breath noise, attack/release times, vibrato, and a playing range into which the melody
is moved by whole octaves. Controls (f0, voicing, loudness) come from the stem
(:func:`~covermill.instruments.features.extract_controls`), are time-scaled and
transposed at frame rate, upsampled to audio rate by linear interpolation (no zipper
noise), and drive an additive oscillator bank with every harmonic above Nyquist removed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.signal

from ..audio import check_audio
from ..errors import ParameterError
from .features import Controls, extract_controls, retime


@dataclass(frozen=True)
class Timbre:
    """Parameters of a parametric instrument (units in the names)."""

    name: str
    description: str
    range_hz: tuple[float, float]
    n_harmonics: int = 40
    tilt_db_per_harmonic: float = 1.5  # spectral slope at medium loudness
    brightness_db: float = 0.8  # how much the slope flattens from quiet to loud
    even_gain_db: float = 0.0  # even harmonics relative to odd (clarinet: strongly negative)
    noise_share: float = 0.02  # breath/bow noise amplitude relative to the harmonics
    noise_band_hz: tuple[float, float] = (1000.0, 6000.0)
    attack_ms: float = 20.0
    release_ms: float = 80.0
    vibrato_hz: float = 0.0
    vibrato_cents: float = 0.0


BUILTIN_TIMBRES: dict[str, Timbre] = {
    t.name: t
    for t in (
        Timbre("tenor_sax", "breathy, reedy tenor saxophone", (110.0, 660.0), tilt_db_per_harmonic=1.2,
               brightness_db=0.7, even_gain_db=-2.0, noise_share=0.06, attack_ms=30, release_ms=90,
               vibrato_hz=5.0, vibrato_cents=12),
        Timbre("trumpet", "bright brass trumpet", (165.0, 990.0), tilt_db_per_harmonic=0.9, brightness_db=0.9,
               noise_share=0.03, attack_ms=25, release_ms=70, vibrato_hz=5.5, vibrato_cents=8),
        Timbre("flute", "airy flute", (262.0, 2000.0), n_harmonics=12, tilt_db_per_harmonic=5.0,
               brightness_db=1.0, noise_share=0.12, noise_band_hz=(2000.0, 9000.0), attack_ms=40,
               release_ms=100, vibrato_hz=5.0, vibrato_cents=15),
        Timbre("clarinet", "hollow clarinet (odd harmonics)", (147.0, 1400.0), tilt_db_per_harmonic=1.6,
               even_gain_db=-18.0, noise_share=0.03, attack_ms=30, release_ms=80),
        Timbre("upright_bass", "round plucked upright bass", (41.0, 250.0), n_harmonics=24,
               tilt_db_per_harmonic=3.0, brightness_db=0.5, noise_share=0.01, noise_band_hz=(200.0, 2000.0),
               attack_ms=8, release_ms=150),
        Timbre("electric_piano", "soft, bell-like electric piano", (130.0, 1050.0), n_harmonics=16,
               tilt_db_per_harmonic=4.0, brightness_db=1.2, even_gain_db=-4.0, noise_share=0.005,
               attack_ms=5, release_ms=250),
        Timbre("organ", "drawbar organ", (65.0, 1050.0), n_harmonics=16, tilt_db_per_harmonic=2.0,
               brightness_db=0.0, noise_share=0.0, attack_ms=10, release_ms=40),
        Timbre("violin", "bowed violin", (196.0, 1760.0), tilt_db_per_harmonic=0.8, brightness_db=0.6,
               noise_share=0.04, noise_band_hz=(2000.0, 8000.0), attack_ms=60, release_ms=120,
               vibrato_hz=6.0, vibrato_cents=20),
    )
}


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
