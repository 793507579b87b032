import dataclasses

import librosa
import numba
import numpy as np
import pytest
import scipy.signal
from conftest import SR, melody, song

from covermill import instruments
from covermill.errors import ParameterError
from covermill.instruments import _synth_kernels
from covermill.instruments.features import Controls
from covermill.instruments.parametric import (
    BUILTIN_TIMBRES,
    ParametricInstrument,
    _smooth_gate,
    add_noise_and_body,
    octave_shift,
)
from covermill.kernels import jit

NOTES = [62, 64, 66, 67, 69, 67, 66, 64]  # D major run, inside the sax's range


def f0_track(y, sr):
    f0, voiced, _ = librosa.pyin(y, fmin=60, fmax=1500, sr=sr, frame_length=2048, hop_length=512)
    return f0, voiced


@pytest.fixture(scope="module")
def sax_out():
    x = melody(NOTES, bpm=100)
    return x, instruments.get("tenor_sax").revoice(x[None], sr=SR)


def test_revoice_keeps_the_melody(sax_out):
    x, y = sax_out
    assert y.shape == (1, x.shape[0]) and y.dtype == np.float32 and np.all(np.isfinite(y))
    f_in, v_in = f0_track(x, SR)
    f_out, v_out = f0_track(y[0], SR)
    both = v_in & v_out & ~np.isnan(f_in) & ~np.isnan(f_out)
    assert both.mean() > 0.6
    cents = 1200 * np.abs(np.log2(f_out[both] / f_in[both]))
    assert np.median(cents) < 50 and np.mean(cents < 50) > 0.8


def test_revoice_changes_timbre(sax_out):
    x, y = sax_out
    # the input has 6 harmonics with 1/k amplitudes; the sax adds breath noise and more harmonics
    cx = librosa.feature.spectral_centroid(y=x, sr=SR).mean()
    cy = librosa.feature.spectral_centroid(y=y[0], sr=SR).mean()
    assert abs(cy - cx) / cx > 0.1


def test_time_ratio_and_transposition():
    x = melody([69] * 8, bpm=120)
    y = instruments.get("flute").revoice(x[None], sr=SR, time_ratio=0.8, semitones=0.0)
    assert abs(y.shape[1] - round(x.shape[0] / 0.8)) <= 1
    f0, v = f0_track(y[0], SR)
    # 440 Hz is inside the flute's range: no octave shift
    assert abs(1200 * np.log2(np.nanmedian(f0[v]) / 440.0)) < 50


def test_octave_shift_into_range():
    assert octave_shift(np.array([880.0, 880.0]), (41.0, 250.0)) == pytest.approx(1 / 4)
    assert octave_shift(np.array([100.0]), (262.0, 2000.0)) == pytest.approx(4)
    assert octave_shift(np.array([440.0]), (262.0, 2000.0)) == 1.0
    assert octave_shift(np.array([0.0]), (41.0, 250.0)) == 1.0


def test_silence_stays_silent():
    y = instruments.get("tenor_sax").revoice(np.zeros((2, 3 * SR), np.float32), sr=SR)
    assert np.max(np.abs(y)) == 0.0


@pytest.mark.parametrize("name", sorted(BUILTIN_TIMBRES))
def test_every_builtin_is_band_limited(name):
    """No aliasing: with noise and vibrato off, all energy sits on harmonics of f0."""
    sr, f0 = 16000, 880.0
    timbre = dataclasses.replace(BUILTIN_TIMBRES[name], noise_share=0.0, vibrato_cents=0.0, range_hz=(20.0, 5000.0))
    n = sr * 2
    controls = Controls(np.full(126, f0, np.float32), np.ones(126, np.float32), np.full(126, -20.0, np.float32), 62.5)
    y = ParametricInstrument(timbre).synthesize(controls, sr=sr, n_samples=n)
    assert np.all(np.isfinite(y)) and np.max(np.abs(y)) > 0
    seg = y[sr // 2 : sr // 2 + sr] * np.hanning(sr)
    power = np.abs(np.fft.rfft(seg)) ** 2  # 1 Hz bins
    freqs = np.arange(len(power))
    near_harmonic = np.abs(freqs - f0 * np.round(freqs / f0)) < 15
    assert power[~near_harmonic].sum() < 1e-4 * power.sum()


def test_unknown_instrument():
    with pytest.raises(ParameterError, match="unknown instrument 'kazoo'"):
        instruments.get("kazoo")


# ------------------------------------------------ the compiled synthesizer against its numpy original


def numpy_synthesize(timbre, controls, *, sr, n_samples, seed=0):
    """ParametricInstrument.synthesize as it was in numpy, one array operation after another."""
    t = timbre
    frame_pos = np.arange(len(controls)) / controls.frame_rate * sr
    pos = np.arange(n_samples)
    f0 = np.interp(pos, frame_pos, controls.f0_hz).astype(np.float32)
    gate = (np.interp(pos, frame_pos, controls.voiced).astype(np.float32) > 0.5).astype(np.float32)
    if not gate.any():
        return np.zeros(n_samples, np.float32)
    if (f0 > 0).any():
        last = np.maximum.accumulate(np.where(f0 > 0, pos, 0))
        f0 = np.where(f0 > 0, f0, f0[last])
        first = np.argmax(f0 > 0)
        f0[:first] = f0[first]
    loud = np.interp(pos, frame_pos, controls.loudness_db).astype(np.float32)
    env = numpy_smooth_gate(gate, sr=sr, attack_ms=t.attack_ms, release_ms=t.release_ms)
    amp = (10.0 ** (loud / 20.0)).astype(np.float32) * env
    if t.vibrato_cents > 0:
        vib = 2.0 ** (t.vibrato_cents / 1200.0 * np.sin(2 * np.pi * t.vibrato_hz * pos / sr))
        f0 = f0 * vib.astype(np.float32)
    phase = (2 * np.pi * np.cumsum(f0.astype(np.float64)) / sr) % (2 * np.pi)
    lo, hi = np.percentile(loud[gate > 0], [5, 95])
    level = np.clip((loud - lo) / max(hi - lo, 1e-3), 0.0, 1.0)
    slope_db = t.tilt_db_per_harmonic + t.brightness_db * (0.5 - level)
    if t.pitch_tilt_db_per_octave:
        octaves = np.log2(np.maximum(f0, 1.0) / t.range_hz[0]).astype(np.float32)
        slope_db = np.maximum(slope_db + t.pitch_tilt_db_per_octave * octaves, 0.0)
    out = np.zeros(n_samples, np.float32)
    active = np.flatnonzero(amp > 1e-6)
    if active.size:
        out[active] = numpy_harmonics(t, phase[active], f0[active], slope_db[active], sr=sr) * amp[active]
    return add_noise_and_body(out, amp, t, sr=sr, seed=seed)  # unchanged by the compiled synthesizer


def numpy_smooth_gate(gate, *, sr, attack_ms, release_ms):
    a_att = np.exp(-1.0 / max(1.0, attack_ms * 1e-3 * sr))
    a_rel = np.exp(-1.0 / max(1.0, release_ms * 1e-3 * sr))
    rising = scipy.signal.lfilter([1 - a_att], [1, -a_att], gate)
    falling = scipy.signal.lfilter([1 - a_rel], [1, -a_rel], gate)
    return np.where(gate > 0, rising, np.minimum(falling, 1.0)).astype(np.float32)


def numpy_harmonics(t, phase, f0, slope_db, *, sr):
    two_cos = (2.0 * np.cos(phase)).astype(np.float32)
    s_prev = np.zeros_like(two_cos)
    s_k = np.sin(phase).astype(np.float32)
    ratio = (10.0 ** (-slope_db / 20.0)).astype(np.float32)
    amp = np.ones_like(two_cos)
    even = np.float32(10.0 ** (t.even_gain_db / 20.0))
    limit = np.float32(sr / 2) / np.maximum(f0, 1.0)
    out = np.zeros_like(two_cos)
    for k in range(1, t.n_harmonics + 1):
        if k > 1:
            s_prev, s_k = s_k, two_cos * s_k - s_prev
            amp *= ratio
        weight = amp * np.float32((even if k % 2 == 0 else 1.0) / np.sqrt(k))
        out += np.where(k < limit, weight * s_k, 0.0)
    return out


def gliding_controls(seconds, *, frame_rate=62.5, lead_in_s=0.3):
    """Frame-rate controls of a phrase: f0 gliding over 4.5 octaves (55 Hz to 1.25 kHz), loudness
    swelling by 24 dB, unvoiced (f0 0) before ``lead_in_s`` and in a 150 ms gap every second."""
    t = np.arange(int(seconds * frame_rate) + 2) / frame_rate
    f0 = 262.0 * 2.0 ** (2.25 * np.sin(2 * np.pi * t / seconds))
    voiced = ((t >= lead_in_s) & (t % 1.0 < 0.85)).astype(np.float32)
    loud = -30.0 + 12.0 * np.sin(2 * np.pi * 0.7 * t) + np.random.default_rng(3).normal(0, 1.0, t.size)
    return Controls(np.where(voiced > 0, f0, 0).astype(np.float32), voiced, loud.astype(np.float32), frame_rate)


SYNTH_TIMBRES = ["tenor_sax", "upright_bass", "electric_piano", "violin", "synth_lead"]


def test_reference_timbres_cover_vibrato_pitch_tilt_and_no_body():
    chosen = [BUILTIN_TIMBRES[name] for name in SYNTH_TIMBRES]
    assert any(t.vibrato_cents > 0 for t in chosen) and any(t.vibrato_cents == 0 for t in chosen)
    assert any(t.pitch_tilt_db_per_octave for t in chosen) and any(not t.body for t in chosen)
    assert any(t.even_gain_db for t in chosen)


@pytest.mark.parametrize("sr", [16000, 44100])
@pytest.mark.parametrize("name", SYNTH_TIMBRES)
def test_synthesize_matches_numpy_original(name, sr):
    """Gliding pitch whose upper harmonics cross Nyquist, silent gaps, a swelling loudness: the
    compiled synthesizer renders what the numpy one rendered, to float32 rounding."""
    timbre = BUILTIN_TIMBRES[name]
    controls = gliding_controls(3.0)
    n = 3 * sr
    want = numpy_synthesize(timbre, controls, sr=sr, n_samples=n)
    got = ParametricInstrument(timbre).synthesize(controls, sr=sr, n_samples=n)
    assert got.dtype == np.float32 and got.shape == (n,)
    peak = np.max(np.abs(want))
    assert peak > 0 and np.max(np.abs(got.astype(np.float64) - want)) <= 1e-5 * peak
    # the lead-in is silent in both, apart from the breath noise
    if timbre.noise_share == 0:
        assert np.max(np.abs(got[: int(0.25 * sr)])) == 0.0


def test_synthesize_matches_numpy_original_on_extracted_controls():
    """Controls as a render gets them: tracked from a small song (notes, fades, drums)."""
    from covermill.instruments.features import extract_controls

    y = song(bars=2)
    controls = extract_controls(y, sr=SR)
    assert 0.2 < np.mean(controls.voiced > 0.5) < 1.0
    for name in ["tenor_sax", "upright_bass"]:
        timbre = BUILTIN_TIMBRES[name]
        want = numpy_synthesize(timbre, controls, sr=SR, n_samples=y.shape[1])
        got = ParametricInstrument(timbre).synthesize(controls, sr=SR, n_samples=y.shape[1])
        peak = np.max(np.abs(want))
        assert peak > 0 and np.max(np.abs(got.astype(np.float64) - want)) <= 1e-5 * peak, name


def test_harmonics_are_the_sum_of_sines_below_nyquist():
    """The recurrence against sin(k phase) summed harmonic by harmonic in float64, with every
    harmonic at or above Nyquist left out: f0 sweeps 53 Hz to 1.7 kHz at 16 kHz (4 to 150 harmonics below)."""
    sr, n = 16000, 32000
    t = np.arange(n) / sr
    f0 = (300.0 * 2.0 ** (2.5 * np.sin(2 * np.pi * 0.4 * t))).astype(np.float32)
    amp = np.where(t % 0.5 < 0.4, 0.5, 0.0).astype(np.float32)
    loud = (-30.0 + 10.0 * np.sin(2 * np.pi * 1.3 * t)).astype(np.float32)
    lo, hi = -38.0, -22.0
    for name in ["tenor_sax", "violin", "clarinet"]:
        timbre = BUILTIN_TIMBRES[name]
        got = ParametricInstrument(timbre)._harmonics(f0, amp, loud, loud_range=(lo, hi), sr=sr)
        phase = 2 * np.pi * np.cumsum(f0.astype(np.float64)) / sr
        slope = timbre.tilt_db_per_harmonic + timbre.brightness_db * (0.5 - np.clip((loud - lo) / (hi - lo), 0, 1))
        if timbre.pitch_tilt_db_per_octave:
            octaves = np.log2(np.maximum(f0, 1.0) / timbre.range_hz[0])
            slope = np.maximum(slope + timbre.pitch_tilt_db_per_octave * octaves, 0.0)
        ratio = 10.0 ** (-slope / 20.0)
        want = np.zeros(n)
        for k in range(1, timbre.n_harmonics + 1):
            gain = ratio ** (k - 1) / np.sqrt(k) * (10.0 ** (timbre.even_gain_db / 20.0) if k % 2 == 0 else 1.0)
            want += np.where(k * f0.astype(np.float64) < sr / 2, gain * np.sin(k * phase), 0.0)
        want *= amp
        assert np.all(got[amp == 0] == 0)
        assert np.max(np.abs(got - want)) <= 5e-5 * np.max(np.abs(want)), name


def test_sincos_matches_the_c_library():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(0, 2 * np.pi, 1_000_000), np.arange(9) * np.pi / 4,
                        np.nextafter(np.arange(1, 9) * np.pi / 4, 0), rng.uniform(0, 2e5, 100_000)])
    s, c = sincos_array(x)
    assert np.max(np.abs(s - np.sin(x))) <= 2.3e-16 and np.max(np.abs(c - np.cos(x))) <= 2.3e-16
    phase = slice(0, 1_000_000)  # rounded to float32 as the synthesizer does: the same numbers
    assert np.mean(s[phase].astype(np.float32) != np.sin(x[phase]).astype(np.float32)) < 1e-5
    assert np.mean(c[phase].astype(np.float32) != np.cos(x[phase]).astype(np.float32)) < 1e-5


@numba.njit  # not cached: a cache would not notice changes in _synth_kernels
def sincos_array(x):
    s = np.empty_like(x)
    c = np.empty_like(x)
    for i in range(x.size):
        s[i], c[i] = _synth_kernels.sincos(x[i])
    return s, c


@numba.njit  # not cached: a cache would not notice changes in _synth_kernels
def wrap_phase_array(x):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = _synth_kernels.wrap_phase(x[i])
    return out


def test_wrap_phase_is_exactly_the_remainder():
    rng = np.random.default_rng(1)
    two_pi = 2 * np.pi
    q = rng.integers(0, int(_synth_kernels.WRAP_MAX / two_pi), 300_000).astype(np.float64)
    x = np.concatenate([
        rng.uniform(0, _synth_kernels.WRAP_MAX, 300_000), rng.uniform(0, 100.0, 300_000),
        q * two_pi, np.nextafter(q * two_pi, 0), np.nextafter(q * two_pi, np.inf),  # at and around the wraps
        np.arange(100_000) * two_pi, [0.0, 5e-324, two_pi, np.nextafter(two_pi, 0), 4.0, 8.0],
        2 * np.pi * np.cumsum(rng.uniform(30, 2000, 300_000)) / 44100,  # a phase as the synthesizer makes it
    ])
    assert np.array_equal(wrap_phase_array(x), x % two_pi)


def test_smooth_gate_matches_lfilter():
    gate = np.zeros(44100, np.float32)
    gate[1000:9000] = gate[9100:9200] = gate[20000:] = 1
    got = _smooth_gate(gate, sr=44100, attack_ms=30, release_ms=90)
    want = numpy_smooth_gate(gate, sr=44100, attack_ms=30, release_ms=90)
    assert got.dtype == np.float32 and 0 < got[9050] < got[8999]  # releasing in the 1 ms gap
    assert np.max(np.abs(got - want)) <= 1e-7


@pytest.mark.parametrize("f0", [
    [0, 0, 110, 0, 0, 220, 230, 0, 0],  # unvoiced lead-in, gaps, unvoiced tail
    [110, 0, 120],
    [0, 0, 0],  # nothing voiced: unchanged
    [55.0],
])
def test_hold_f0_keeps_the_pitch_through_gaps(f0):
    f0 = np.array(f0, np.float32)
    want = f0.copy()
    if (f0 > 0).any():
        pos = np.arange(f0.size)
        want = np.where(f0 > 0, f0, f0[np.maximum.accumulate(np.where(f0 > 0, pos, 0))])
        want[: np.argmax(f0 > 0)] = f0[np.argmax(f0 > 0)]
    got = _synth_kernels.hold_f0(f0)
    assert got.dtype == np.float32 and np.array_equal(got, want)


def _add_one(x):
    return x + 1


def test_kernels_compile_where_numba_cannot_cache(monkeypatch):
    """With no writable cache folder numba refuses cache=True; the kernels are compiled per process then."""
    monkeypatch.setattr(numba.core.caching.CacheImpl, "_locator_classes", [])
    with pytest.raises(RuntimeError, match="no locator"):
        numba.njit(cache=True)(_add_one)
    assert jit(_add_one)(41) == 42
