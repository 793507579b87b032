import dataclasses

import librosa
import numpy as np
import pytest
from conftest import SR, melody

from covermill import instruments
from covermill.errors import ParameterError
from covermill.instruments.features import Controls
from covermill.instruments.parametric import BUILTIN_TIMBRES, ParametricInstrument, octave_shift

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
