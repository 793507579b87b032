"""The demucs backend on tiny HTDemucs models the tests build (no downloads)."""

import shutil
import sys

import numpy as np
import pytest
from conftest import SR, song

from covermill import stems
from covermill.constants import STEM_NAMES
from covermill.errors import ModelLoadingError, ParameterError
from covermill.stems import demucs as backend

from .conftest import SOURCES, save_repo

pytest.importorskip("demucs")
pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demucs_repo")
    save_repo(folder)
    save_repo(folder, name="tiny6", sources=[*SOURCES, "guitar", "piano"], sig="6666aaaa", seed=1)
    return folder


@pytest.fixture(scope="module")
def mix():
    return song(bars=2)[:, : 3 * SR]  # 3 s


def test_checkpoint_layout_is_what_demucs_reads(repo):
    from demucs.pretrained import get_model

    model = get_model("tiny", repo=repo)
    assert list(model.sources) == SOURCES
    assert [p.name.split("-")[0] for p in sorted(repo.glob("*.th"))] == ["6666aaaa", "abcd1234"]


def test_separates_into_the_stems_that_sum_to_the_mix(repo, mix):
    sep = stems.get("demucs", model="tiny", model_dir=repo, device="cpu")
    out = sep.separate(mix, sr=SR)
    assert list(out) == list(STEM_NAMES)
    for s in out.values():
        assert s.shape == mix.shape and s.dtype == np.float32 and np.all(np.isfinite(s))
    np.testing.assert_allclose(sum(out.values()), mix, atol=1e-5)
    # the raw model output (no residual policy) has the same stems and shapes
    raw = stems.get("demucs", model="tiny", model_dir=repo, residual="none").separate(mix, sr=SR)
    assert {k: v.shape for k, v in raw.items()} == {k: v.shape for k, v in out.items()}
    np.testing.assert_allclose(raw["vocals"], out["vocals"], atol=1e-6)  # only `other` takes the residual


@pytest.mark.parametrize("sr, channels", [(22050, 1), (8000, 2)])
def test_other_rates_and_mono(repo, mix, sr, channels):
    from covermill.audio import resample

    y = resample(mix, sr_in=SR, sr_out=sr)[:channels]
    out = stems.get("demucs", model="tiny", model_dir=repo).separate(y, sr=sr)
    assert all(s.shape == y.shape for s in out.values())
    np.testing.assert_allclose(sum(out.values()), y, atol=1e-5)


def test_silence_gives_silent_stems(repo):
    y = np.zeros((2, SR), np.float32)
    out = stems.get("demucs", model="tiny", model_dir=repo).separate(y, sr=SR)
    assert all(np.all(s == 0) for s in out.values())


def test_shorter_than_one_segment(repo, rng):
    y = (0.1 * rng.standard_normal((2, SR // 2))).astype(np.float32)  # 0.5 s; the model's segment is 2 s
    out = stems.get("demucs", model="tiny", model_dir=repo, shifts=1).separate(y, sr=SR)
    assert all(s.shape == y.shape and np.all(np.isfinite(s)) for s in out.values())
    np.testing.assert_allclose(sum(out.values()), y, atol=1e-5)


def test_six_stem_model_adds_guitar_and_piano(repo, mix):
    out = stems.get("demucs", model="tiny6", model_dir=repo).separate(mix[:, : SR * 2], sr=SR)
    assert list(out) == [*STEM_NAMES, "guitar", "piano"]


def test_env_var_and_hub_cache_are_searched(repo, tmp_path, monkeypatch):
    monkeypatch.setenv(backend.MODEL_DIR_ENV, str(repo))
    assert backend.locate("tiny")[0] == repo
    monkeypatch.delenv(backend.MODEL_DIR_ENV)
    # torch hub's cache: checkpoints only, bag definitions from the demucs package
    hub = tmp_path / "torch"
    monkeypatch.setenv("TORCH_HOME", str(hub))
    if "torch" in sys.modules:
        import torch

        monkeypatch.setattr(torch.hub, "_hub_dir", None)
    ckpt = hub / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    assert backend.hub_checkpoint_dir() == ckpt
    assert backend.locate("htdemucs") is None
    shutil.copy(next(repo.glob("abcd1234-*.th")), ckpt / backend.KNOWN_MODELS["htdemucs"][0])
    folder, has_bag, files = backend.locate("htdemucs")
    assert folder == ckpt and not has_bag and files[0].name == "955717e8-8726e21a.th"
    # the file name's checksum is demucs's: a copy under another name fails it, in one line
    with pytest.raises(ModelLoadingError, match="checksum") as err:
        stems.get("demucs", model="htdemucs").load()
    assert "\n" not in str(err.value)


def test_auto_picks_demucs_when_weights_are_found(repo, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert stems.resolve("auto", model="tiny", model_dir=repo).name == "demucs"
    assert stems.resolve("auto", model="htdemucs").name == "dsp"
    with pytest.raises(ModelLoadingError, match="no such folder"):  # an explicit folder must exist
        stems.resolve("auto", model_dir=tmp_path / "typo")


def test_missing_weights_name_the_files_and_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    with pytest.raises(ModelLoadingError, match=r"955717e8-8726e21a\.th.*" + str(tmp_path)) as err:
        stems.get("demucs", model="htdemucs", model_dir=tmp_path).separate(np.zeros((2, SR), np.float32), sr=SR)
    assert "\n" not in str(err.value)
    with pytest.raises(ModelLoadingError, match="no such folder"):
        stems.get("demucs", model_dir=tmp_path / "nope").load()


def test_truncated_checkpoint_is_one_clear_line(repo, tmp_path):
    folder = tmp_path / "repo"
    shutil.copytree(repo, folder)
    ckpt = next(folder.glob("abcd1234-*.th"))
    ckpt.write_bytes(ckpt.read_bytes()[:2000])
    with pytest.raises(ModelLoadingError, match="checksum"):  # demucs's sha256 check catches it first
        stems.get("demucs", model="tiny", model_dir=folder).load()
    plain = folder / "abcd1234.th"  # no checksum in the name: torch.load itself fails
    ckpt.rename(plain)
    with pytest.raises(ModelLoadingError, match="truncated, corrupt") as err:
        stems.get("demucs", model="tiny", model_dir=folder).load()
    assert "\n" not in str(err.value)


def test_checkpoint_of_the_wrong_model_is_refused(tmp_path):
    save_repo(tmp_path, name="karaoke", sources=["vocals", "accompaniment"])
    with pytest.raises(ModelLoadingError, match="wrong model"):
        stems.get("demucs", model="karaoke", model_dir=tmp_path).load()


def test_bad_parameters_are_refused_before_loading(repo):
    with pytest.raises(ParameterError, match="overlap"):
        stems.get("demucs", model="tiny", model_dir=repo, overlap=1.5).load()
    with pytest.raises(ParameterError, match="longer than model 'tiny' was trained on"):
        stems.get("demucs", model="tiny", model_dir=repo, segment=5.0).load()
    with pytest.raises(ParameterError, match="6 channels"):
        stems.get("demucs", model="tiny", model_dir=repo).separate(np.zeros((6, SR), np.float32), sr=SR)


def test_dsp_and_auto_without_weights_never_import_torch(tmp_path):
    import subprocess

    code = ("import sys, numpy as np; from covermill import stems; "
            "s = stems.resolve('auto'); s.separate(np.zeros((2, 44100), np.float32), sr=44100); "
            "print(s.name, 'torch' in sys.modules)")
    env = {"TORCH_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(backend.Path(stems.__file__).parents[2])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split() == ["dsp", "False"]


def test_pooled_separation_is_a_public_capability_and_release_drops_the_model(repo, mix):
    """``batch --separate-first`` reaches Demucs only through PooledSeparator's methods."""
    from covermill.stems.base import PooledSeparator

    sep = stems.get("demucs", model="tiny", model_dir=repo, device="cpu", batch_size=3)
    assert isinstance(sep, PooledSeparator)
    assert not isinstance(stems.get("dsp"), PooledSeparator)
    assert sep.runs_on() == "cpu" and sep.segments_per_call() == 3
    sep.load()
    (pooled,) = sep.iter_separate_many([(mix, SR)])
    np.testing.assert_allclose(pooled["vocals"], sep.separate(mix, sr=SR)["vocals"], atol=1e-5)
    sep.release()
    assert sep.model_ is None
    np.testing.assert_allclose(sep.separate(mix, sr=SR)["vocals"], pooled["vocals"], atol=1e-5)  # loads again
