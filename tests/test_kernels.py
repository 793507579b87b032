"""covermill.kernels: the running median and HPSS equal scipy's and librosa's results exactly."""

import os
import subprocess
import sys
import textwrap

import librosa
import numpy as np
import pytest
import scipy.ndimage
from conftest import song

from covermill.kernels import hpss, median_filter_axis


@pytest.mark.parametrize("size", [1, 3, 31])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_running_median_equals_scipy(size, axis, rng):
    x = rng.random((70, 90)).astype(np.float32)
    x[:, ::5] = 0.5  # ties
    x[::7] = 0.0  # whole rows of one value
    x[3, 10:40] = np.arange(30)[::-1]  # monotone runs
    shape = [1, 1]
    shape[axis] = size
    want = scipy.ndimage.median_filter(x, size=shape, mode="reflect")
    got = median_filter_axis(x, size, axis=axis)
    assert got.dtype == x.dtype and got.shape == x.shape
    np.testing.assert_array_equal(got, want)


def test_window_longer_than_the_row_and_other_shapes(rng):
    x = rng.standard_normal((3, 4, 5))
    for axis in range(3):
        shape = [1, 1, 1]
        shape[axis] = 9
        np.testing.assert_array_equal(median_filter_axis(x, 9, axis=axis),
                                      scipy.ndimage.median_filter(x, size=shape, mode="reflect"))


def test_even_size_and_nan_fall_back_to_scipy(rng):
    x = rng.random((20, 30))
    np.testing.assert_array_equal(median_filter_axis(x, 4), scipy.ndimage.median_filter(x, size=(1, 4), mode="reflect"))
    x[2, 3] = np.nan
    np.testing.assert_array_equal(median_filter_axis(x, 5), scipy.ndimage.median_filter(x, size=(1, 5), mode="reflect"))
    with pytest.raises(ValueError, match="size"):
        median_filter_axis(x, 0)


@pytest.mark.parametrize("kw", [{}, {"kernel_size": (17, 31), "margin": (1.0, 3.0)}, {"mask": True, "power": 1.0}])
def test_hpss_equals_librosa(kw):
    x = song(bars=2)[0]
    D = librosa.stft(x)
    for ours, theirs in zip(hpss(D, **kw), librosa.decompose.hpss(D, **kw), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    harm, perc = hpss(np.abs(D), **kw)  # magnitudes in, magnitudes (or masks) out
    assert not np.iscomplexobj(harm) and np.all(perc >= 0)


_BEATS = """
import logging, sys
import numpy as np
logging.basicConfig(level=logging.WARNING)
from covermill.kernels import librosa_beat
onset = np.zeros(2000, np.float32)
onset[::43] = 1.0  # a pulse every 43 frames
_, frames = librosa_beat().beat_track(onset_envelope=onset, sr=22050, hop_length=512)
print(" ".join(map(str, frames)))
"""


def _beats_in_fresh_process(cache_root):
    import os
    import subprocess
    import sys

    env = {**os.environ, "COVERMILL_CACHE_DIR": str(cache_root)}
    done = subprocess.run([sys.executable, "-c", _BEATS], env=env, capture_output=True, text=True, check=True)
    return [int(f) for f in done.stdout.split()], done.stderr


def test_librosa_beat_kernel_cached_on_disk_and_damaged_cache_recompiled(tmp_path):
    """The kernel librosa compiles on every import is compiled once into covermill's cache folder;
    later processes load it and find the same beats; a damaged entry is compiled again."""
    onset = np.zeros(2000, np.float32)
    onset[::43] = 1.0
    _, want = librosa.beat.beat_track(onset_envelope=onset, sr=22050, hop_length=512)
    first, _ = _beats_in_fresh_process(tmp_path)
    entries = sorted((tmp_path / "numba" / "librosa").rglob("*beat_local_score*"))
    assert entries and any(p.suffix == ".nbi" for p in entries)
    again, err = _beats_in_fresh_process(tmp_path)
    assert first == again == want.tolist() and len(want) > 10
    assert "damaged" not in err
    for p in entries:
        p.write_bytes(b"not a numba cache entry")
    healed, err = _beats_in_fresh_process(tmp_path)
    assert healed == want.tolist()
    assert "damaged" in err
    assert all(p.stat().st_size > 100 for p in entries if p.exists())


def test_librosa_beat_is_never_handed_out_half_imported(tmp_path):
    """Threads asking for librosa.beat while the first one imports it (compiling into a fresh
    cache) wait for the whole module: sys.modules holds it half-initialised meanwhile."""
    code = textwrap.dedent('''
        import threading, numpy as np
        from covermill.kernels import librosa_beat
        barrier, errors = threading.Barrier(4), []
        onset = np.abs(np.random.default_rng(0).standard_normal(2000)).astype(np.float32)
        def use():
            barrier.wait()
            try:
                librosa_beat().beat_track(onset_envelope=onset, sr=22050, hop_length=512)
            except Exception as exc:
                errors.append(repr(exc))
        threads = [threading.Thread(target=use) for _ in range(4)]
        [t.start() for t in threads]; [t.join() for t in threads]
        print(errors)
    ''')
    env = {**os.environ, "COVERMILL_CACHE_DIR": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
