"""covermill.automation.warmup: what a process loads once, loaded before the first render."""

import sys
import threading

from covermill import buildinfo
from covermill.analysis import taste
from covermill.automation import warmup


def test_warm_up_loads_the_one_off_work():
    taste.load_model.cache_clear()
    buildinfo.version.cache_clear()
    steps = warmup.warm_up()
    assert list(steps) == ["imports", "taste model", "beat kernels", "reference chroma", "plotting", "version"]
    assert all(s >= 0 for s in steps.values())
    assert "covermill.automation.pipeline" in sys.modules and "librosa.beat" in sys.modules
    assert "librosa.display" in sys.modules and buildinfo.version.cache_info().currsize == 1
    assert taste.load_model.cache_info().currsize == 1


def test_dask_setup_returns_at_once_and_warms_up_on_a_thread():
    taste.load_model.cache_clear()
    warmup.dask_setup(None)
    (thread,) = [t for t in threading.enumerate() if t.name == "covermill-warm-up"]
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert taste.load_model.cache_info().currsize == 1


def loaded_when_the_task_starts(job, *args):
    """A batch task: what the worker had loaded before this, its first task, began."""
    return {"song": job.song, "recipe": job.recipe, "output": job.out_dir, "status": "ok", "error": None,
            "seconds": 0.0, "loaded": sorted(m for m in ("covermill.automation.pipeline", "librosa.beat")
                                            if m in sys.modules)}


def test_batch_workers_start_warm(tmp_path):
    """Local workers fork from a forkserver that warmed up (or warm up on a thread from their start):
    their first task finds the render imported."""
    import multiprocessing

    from conftest import song, write

    from covermill.automation.batch import run_batch

    songs = tmp_path / "songs"
    songs.mkdir()
    write(songs / "a.wav", song(bars=2, seed=1))
    recipe = tmp_path / "fast.yaml"
    recipe.write_text("name: fast\nstems:\n  drums: {gain_db: -6}\n")
    summary = run_batch(songs, [str(recipe)], tmp_path / "out", workers=1, separator="dsp",
                        task=loaded_when_the_task_starts, separate_first_pass=False)
    (record,) = summary.records
    if sys.platform.startswith("linux") and "forkserver" in multiprocessing.get_all_start_methods():
        assert record["loaded"] == ["covermill.automation.pipeline", "librosa.beat"]


def covermill_settings(job, *args):
    """A batch task: the worker's COVERMILL_* variables as the render would see them."""
    import os

    return {"song": job.song, "recipe": job.recipe, "output": job.out_dir, "status": "ok", "error": None,
            "seconds": 0.0, "settings": {k: v for k, v in os.environ.items() if k.startswith("COVERMILL_PROBE")}}


def test_workers_forked_for_a_later_batch_see_the_clients_settings_of_now(tmp_path, monkeypatch):
    """The forkserver outlives a batch; a later batch's workers still render with the client's
    COVERMILL_* variables as they are now (a model folder set after the first batch, say)."""
    from conftest import song, write

    from covermill.automation.batch import run_batch

    songs = tmp_path / "songs"
    songs.mkdir()
    write(songs / "a.wav", song(bars=2, seed=1))
    recipe = tmp_path / "fast.yaml"
    recipe.write_text("name: fast\nstems:\n  drums: {gain_db: -6}\n")
    monkeypatch.setenv("COVERMILL_PROBE_OLD", "1")
    first = run_batch(songs, [str(recipe)], tmp_path / "one", workers=1, separator="dsp", task=covermill_settings,
                      separate_first_pass=False)
    assert first.records[0]["settings"] == {"COVERMILL_PROBE_OLD": "1"}
    monkeypatch.delenv("COVERMILL_PROBE_OLD")
    monkeypatch.setenv("COVERMILL_PROBE_NEW", "2")
    second = run_batch(songs, [str(recipe)], tmp_path / "two", workers=1, separator="dsp", task=covermill_settings,
                       separate_first_pass=False)
    assert second.records[0]["settings"] == {"COVERMILL_PROBE_NEW": "2"}
