import numpy as np
import pytest
from conftest import SR, click_track, sine, song

from covermill import stems
from covermill.constants import STEM_NAMES
from covermill.errors import ParameterError


@pytest.fixture(scope="module")
def separated():
    y = song(bars=4)
    return y, stems.get("dsp").separate(y, sr=SR)


def test_stems_sum_back_to_the_mix(separated):
    y, out = separated
    assert list(out) == list(STEM_NAMES)
    for s in out.values():
        assert s.shape == y.shape and s.dtype == np.float32 and np.all(np.isfinite(s))
    np.testing.assert_allclose(sum(out.values()), y, atol=1e-5)


def energy(x):
    return float(np.mean(np.asarray(x, np.float64) ** 2))


def test_clicks_go_to_drums_and_low_sine_to_bass():
    clicks = click_track(120, 6.0)
    low = sine(70.0, 6.0, amp=0.3)
    out = stems.get("dsp").separate(clicks + low, sr=SR)
    # most click energy lands in drums, most of the 70 Hz tone in bass
    out_clicks = stems.get("dsp").separate(clicks, sr=SR)
    assert energy(out_clicks["drums"]) > 0.6 * energy(clicks)
    out_low = stems.get("dsp").separate(low, sr=SR)
    assert energy(out_low["bass"]) > 0.8 * energy(low)
    assert energy(out["bass"]) > 3 * energy(out["vocals"])


@pytest.mark.parametrize("sr", [8000, 22050, 44100])
@pytest.mark.parametrize("channels", [1, 2])
def test_any_rate_and_channel_count(sr, channels):
    y = song(bars=2, sr=sr)[:channels]
    out = stems.get("dsp").separate(y, sr=sr)
    np.testing.assert_allclose(sum(out.values()), y, atol=1e-5)


def test_silence_gives_silent_stems():
    out = stems.get("dsp").separate(np.zeros((2, 3 * SR), np.float32), sr=SR)
    assert all(np.max(np.abs(s)) == 0 for s in out.values())


def test_registry():
    assert stems.available() == ["auto", "demucs", "dsp"]
    with pytest.raises(ParameterError, match="unknown separator 'nope'; choose one of auto, demucs, dsp"):
        stems.get("nope")


def test_blocks_and_threads_do_not_change_the_result():
    y = song(bars=8)  # 16 s: several blocks of STFT frames
    one = stems.get("dsp", workers=1).separate(y, sr=SR)
    two = stems.get("dsp", workers=2).separate(y, sr=SR)
    for name in STEM_NAMES:
        np.testing.assert_array_equal(one[name], two[name])
