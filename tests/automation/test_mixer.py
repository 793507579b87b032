import numpy as np
import pytest
from conftest import SR, click_track, sine, song

from covermill.analysis.loudness import integrated_lufs, true_peak_db
from covermill.analysis.rhythm import estimate_tempo
from covermill.automation.master import master
from covermill.automation.mixer import pan, pan_gains, process_stem
from covermill.automation.tempo import stretch, tempo_ratio
from covermill.errors import ParameterError
from covermill.recipes import Master, Stem


def test_gain_minus_6_db_halves_amplitude_and_sine_stays_sine():
    x = sine(1000.0, 1.0)
    y = process_stem(x, sr=SR, spec=Stem(gain_db=-6.0206))
    np.testing.assert_allclose(y, x / 2, atol=1e-6)
    spec = np.abs(np.fft.rfft(y[0]))
    assert np.argmax(spec) == 1000  # 1 Hz bins over one second
    assert spec.sum() - spec[998:1003].sum() < 1e-3 * spec.sum()


def test_pan_hard_left_silences_right():
    y = pan(sine(440.0, 0.5), -1.0)
    assert np.max(np.abs(y[1])) == 0.0 and np.max(np.abs(y[0])) > 0.5
    mono = pan(sine(440.0, 0.5, channels=1), 0.0)
    np.testing.assert_allclose(mono[0], mono[1])
    left, right = pan_gains(0.3)
    assert left**2 + right**2 == pytest.approx(1.0)  # constant power


def test_effect_chain_runs():
    from covermill.recipes.schema import Effect

    spec = Stem(effects=(Effect(plugin="LowpassFilter", cutoff_frequency_hz=500),))
    y = process_stem(sine(5000.0, 1.0), sr=SR, spec=spec)
    assert np.max(np.abs(y[:, SR // 2 :])) < 0.1


@pytest.mark.parametrize("target", [-14.0, -20.0])
def test_master_hits_loudness_and_true_peak(target):
    y = song(bars=4) * 2.5  # hot, clipping-prone input
    out = master(y, sr=SR, spec=Master(lufs=target, true_peak_db=-1.0))
    assert abs(integrated_lufs(out.audio, sr=SR) - target) <= 0.5
    assert true_peak_db(out.audio, sr=SR) <= -1.0 + 1e-6


def test_master_of_silence_stays_silent():
    out = master(np.zeros((2, SR * 3), np.float32), sr=SR, spec=Master())
    assert out.lufs is None and np.max(np.abs(out.audio)) == 0


@pytest.mark.parametrize("source,target", [(120.0, 105.0), (100.0, 128.0)])
def test_stretch_lands_on_target_bpm(source, target):
    clicks = click_track(source, 20.0)
    measured_source = estimate_tempo(clicks, sr=SR)
    assert abs(measured_source - source) / source < 0.01
    ratio = tempo_ratio(measured_source, target_bpm=target)
    out = stretch(clicks, sr=SR, time_ratio=ratio)
    assert out.shape[1] == round(clicks.shape[1] / ratio)
    assert abs(estimate_tempo(out, sr=SR) - target) / target < 0.02


def test_tempo_ratio_rules():
    assert tempo_ratio(120.0, bpm_delta=-15) == pytest.approx(105 / 120)
    assert tempo_ratio(120.0, ratio=0.9) == 0.9
    assert tempo_ratio(float("nan")) == 1.0
    with pytest.raises(ParameterError, match="could not be detected"):
        tempo_ratio(float("nan"), bpm_delta=-15)
