"""`covermill batch` separating first: Demucs stems of all songs into the stem cache, pooled across songs."""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SR, song, write

from covermill.audio import load_audio
from covermill.automation.batch import find_songs, read_manifest, run_batch, separate_first
from covermill.constants import WORK_SR
from covermill.stems import demucs as backend
from covermill.stems import resolve
from covermill.stems.cache import StemCache, cache_key

pytest.importorskip("demucs")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

FAST = "name: fast\nstems:\n  drums: {gain_db: -6}\n"


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """Three good songs (one 2.5 s, shorter than two segments), a corrupt file; the tiny HTDemucs as `htdemucs`."""
    from stems.conftest import save_repo

    save_repo(tmp_path / "models", name="htdemucs")
    monkeypatch.setenv("COVERMILL_MODEL_DIR", str(tmp_path / "models"))
    songs = tmp_path / "songs"
    songs.mkdir()
    write(songs / "a.wav", song(bars=3, seed=1)[:, : 5 * SR])
    write(songs / "b.flac", song(bars=2, seed=2)[:, : int(2.5 * SR)])
    write(songs / "c.wav", song(bars=3, seed=3)[:, : 4 * SR])
    (songs / "corrupt.wav").write_bytes(b"\x00garbage" * 500)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny model runs fastest on one thread
    yield songs
    torch.set_num_threads(threads)


def entry(cache, path):
    sep = resolve("demucs")
    mix = load_audio(path, sr=WORK_SR)
    return cache.get(cache_key(mix, sr=WORK_SR, sep=sep)), sep, mix


def test_separate_first_fills_the_cache_with_pooled_segments(folder, tmp_path, monkeypatch):
    monkeypatch.setattr(backend, "CPU_BATCH", 4)  # pool on the CPU too (the default pools on CUDA only)
    cache = StemCache(tmp_path / "cache")
    songs = find_songs(folder)
    assert separate_first(songs, separator="demucs", cache_dir=cache.root) == {"separated": 0, "cached": 0, "skipped": 4}
    assert not cache.root.exists()  # on a CPU it is the renders' job unless forced
    counts = separate_first(songs, separator="demucs", cache_dir=cache.root, force=True)
    assert counts == {"separated": 3, "cached": 0, "skipped": 1}  # the corrupt file is left to its render
    for path in songs[:3]:
        stems, sep, mix = entry(cache, path)
        assert stems is not None
        want = sep.separate(mix, sr=WORK_SR)  # one song at a time
        for name in want:
            np.testing.assert_allclose(stems[name], want[name], atol=1e-5)
    assert separate_first(songs, separator="demucs", cache_dir=cache.root, force=True)["cached"] == 3
    assert separate_first(songs, separator="dsp", cache_dir=cache.root, force=True)["separated"] == 0


def test_a_bad_model_does_not_stop_separate_first(folder, tmp_path):
    model = next((tmp_path / "models").glob("*.th"))
    model.write_bytes(model.read_bytes()[:1000])  # truncated
    counts = separate_first(find_songs(folder), separator="demucs", cache_dir=tmp_path / "cache", force=True)
    assert counts == {"separated": 0, "cached": 0, "skipped": 4}


def test_batch_renders_find_the_stems_separated_first(folder, tmp_path):
    for name in ("b.flac", "c.wav"):  # renders are slow: one good song and the corrupt file
        (folder / name).unlink()
    recipe = tmp_path / "fast.yaml"
    recipe.write_text(FAST)
    out = tmp_path / "out"
    summary = run_batch(folder, [str(recipe)], out, workers=1, separator="demucs", cache_dir=tmp_path / "cache",
                        separate_first_pass=True)
    assert (summary.total, summary.ok, summary.failed) == (2, 1, 1)
    records = {Path(k[0]).name: r for k, r in read_manifest(out).items()}
    assert records["corrupt.wav"]["status"] == "failed" and "cannot be decoded" in records["corrupt.wav"]["error"]
    qa = json.loads((Path(records["a.wav"]["output"]) / "qa.json").read_text())
    assert qa["separator"] == "demucs" and qa["stem_cache"] == "hit"
