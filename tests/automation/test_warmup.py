"""covermill.automation.warmup: what a process loads once, loaded before the first render."""

import sys
import threading

from covermill.analysis import taste
from covermill.automation import warmup


def test_warm_up_loads_the_one_off_work():
    taste.load_model.cache_clear()
    steps = warmup.warm_up()
    assert list(steps) == ["imports", "taste model", "beat kernels", "reference chroma"]
    assert all(s >= 0 for s in steps.values())
    assert "covermill.automation.pipeline" in sys.modules and "librosa.beat" in sys.modules
    assert taste.load_model.cache_info().currsize == 1


def test_dask_setup_returns_at_once_and_warms_up_on_a_thread():
    taste.load_model.cache_clear()
    warmup.dask_setup(None)
    (thread,) = [t for t in threading.enumerate() if t.name == "covermill-warm-up"]
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert taste.load_model.cache_info().currsize == 1
