"""Batched segments equal demucs's apply_model; checkpoints load with weights_only=True."""

import os
import random

import numpy as np
import pytest
from conftest import SR, song

from covermill import stems
from covermill.errors import ModelLoadingError, ParameterError
from covermill.stems import demucs_apply
from covermill.stems.cache import cache_key

from .conftest import SOURCES, save_repo, tiny_htdemucs

pytest.importorskip("demucs")
pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.usefixtures("one_thread")]

#: batched vs apply_model, in units of the normalised mix (std 1): float rounding of batched kernels only
ATOL = 1e-5


@pytest.fixture(scope="module")
def mix():
    """6.2 s of normalised stereo at 44.1 kHz: 5 segments of the tiny model's 2 s, the last 2 partial."""
    import torch

    y = song(bars=4)[:, : int(6.2 * SR)]
    y = (y - y.mean()) / y.std()
    return torch.from_numpy(np.ascontiguousarray(y, np.float32))[None]


@pytest.fixture(scope="module")
def model():
    return tiny_htdemucs().eval()


def reference(model, mix, **kw):
    from demucs.apply import apply_model

    return apply_model(model, mix, progress=False, device="cpu", **{"shifts": 0, **kw})


@pytest.mark.parametrize("kw", [{"batch_size": 2}, {"batch_size": 16, "overlap": 0.5},
                                {"batch_size": 3, "segment": 1.5}])
def test_batched_equals_apply_model(model, mix, kw):
    batched = demucs_apply.apply_batched(model, mix, device="cpu", **kw)
    ref = reference(model, mix, **{k: v for k, v in kw.items() if k != "batch_size"})
    assert batched.shape == ref.shape == (1, 4, 2, mix.shape[-1])
    np.testing.assert_allclose(batched.numpy(), ref.numpy(), atol=ATOL, rtol=0)


def test_batched_shifts_and_bags_equal_apply_model(mix, monkeypatch):
    from demucs.apply import BagOfModels

    bag = BagOfModels([tiny_htdemucs(seed=0), tiny_htdemucs(seed=1)], weights=[[1, 0.5, 1, 2], [1, 1, 0.25, 1]])
    bag.eval()
    x = mix[..., : 4 * SR]
    # HTDemucs's transformer draws from `random` once per forward call, so fewer (batched) calls
    # shift the stream the shift trick draws its offsets from: give both the same offsets
    offsets = [10611, 2373, 0, 22050]
    monkeypatch.setattr(random, "randint", lambda a, b, it=iter(offsets * 2): next(it))
    batched = demucs_apply.apply_batched(bag, x, batch_size=4, shifts=2, device="cpu")
    ref = reference(bag, x, shifts=2)
    np.testing.assert_allclose(batched.numpy(), ref.numpy(), atol=ATOL, rtol=0)


def test_out_of_gpu_memory_halves_the_batch(model, mix, monkeypatch):
    import torch

    sizes = []
    forward = model.forward

    def small_gpu(x):
        sizes.append(x.shape[0])
        if x.shape[0] > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return forward(x)

    monkeypatch.setattr(model, "forward", small_gpu)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    x = mix[..., : 4 * SR]  # 3 segments: 3 -> 1 + 2
    batched = demucs_apply.apply_batched(model, x, batch_size=4, device="cpu")
    assert sizes == [3, 1, 2]
    monkeypatch.setattr(model, "forward", forward)
    np.testing.assert_allclose(batched.numpy(), reference(model, x).numpy(), atol=ATOL, rtol=0)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demucs_batch_repo")
    save_repo(folder)
    return folder


def test_separator_batch_size_same_stems_same_cache_key(repo):
    y = song(bars=3)[:, : 5 * SR]
    one = stems.get("demucs", model="tiny", model_dir=repo, device="cpu", batch_size=1)
    four = stems.get("demucs", model="tiny", model_dir=repo, device="cpu", batch_size=4)
    a, b = one.separate(y, sr=SR), four.separate(y, sr=SR)
    for name in a:
        np.testing.assert_allclose(b[name], a[name], atol=ATOL)
    np.testing.assert_allclose(sum(b.values()), y, atol=1e-5)  # stems still sum to the mix
    assert cache_key(y, sr=SR, sep=one) == cache_key(y, sr=SR, sep=four)
    with pytest.raises(ParameterError, match="batch_size=0"):
        stems.get("demucs", model="tiny", model_dir=repo, batch_size=0).load()


def test_checkpoint_loads_with_weights_only(repo):
    import torch

    package = demucs_apply.load_checkpoint(next(repo.glob("abcd1234-*.th")))
    assert package["klass"].__name__ == "HTDemucs" and package["kwargs"]["sources"] == SOURCES
    model = stems.get("demucs", model="tiny", model_dir=repo).load().models[0]  # a bag of one
    want = tiny_htdemucs().state_dict()
    assert all(torch.equal(v, want[k]) for k, v in model.state_dict().items())


def test_fraction_segment_is_allowed(tmp_path):
    """Pretrained HTDemucs checkpoints may carry their segment as a fractions.Fraction."""
    from fractions import Fraction

    from demucs.states import get_state, save_with_checksum

    model = tiny_htdemucs()
    args, kwargs = model._init_args_kwargs
    save_with_checksum({"klass": type(model), "args": args, "kwargs": {**kwargs, "segment": Fraction(3, 2)},
                        "state": get_state(model, None)}, tmp_path / "frac0000.th")
    package = demucs_apply.load_checkpoint(next(tmp_path.glob("frac0000-*.th")))
    assert package["kwargs"]["segment"] == Fraction(3, 2)


class _Foreign:
    """Pickles as a call of os.system (pickling only records the reference; nothing runs)."""

    def __reduce__(self):
        return os.system, ("true",)


@pytest.mark.parametrize("payload", [_Foreign(), os.system], ids=["reduce", "reference"])
def test_checkpoint_with_a_foreign_global_is_refused(tmp_path, monkeypatch, payload):
    import posix

    from demucs.states import get_state, save_with_checksum

    model = tiny_htdemucs()
    args, kwargs = model._init_args_kwargs
    package = {"klass": type(model), "args": args, "kwargs": {**kwargs, "hook": payload},
               "state": get_state(model, None)}
    save_with_checksum(package, tmp_path / "bad00000.th")
    (tmp_path / "bad.yaml").write_text("models: ['bad00000']\n")
    calls = []  # belt and braces: were os.system ever resolved and called, it would only be recorded
    for module in (os, posix):
        monkeypatch.setattr(module, "system", lambda *a: calls.append(a))
    with pytest.raises(ModelLoadingError, match=r"refusing .*(posix|os)\.system") as err:
        stems.get("demucs", model="bad", model_dir=tmp_path).load()
    assert "\n" not in str(err.value) and calls == []


def test_non_package_checkpoint_is_refused(tmp_path):
    import torch

    torch.save({"weights": torch.zeros(3)}, tmp_path / "plain0000.th")
    (tmp_path / "plain.yaml").write_text("models: ['plain0000']\n")
    with pytest.raises(ModelLoadingError, match="not a demucs model package"):
        stems.get("demucs", model="plain", model_dir=tmp_path).load()


def _songs(mix):
    """Normalised mixes of different lengths: 3 and 5 segments, one shorter than a segment (1.3 s), 4.05 s."""
    return [mix[..., : 3 * SR], mix, mix[..., SR: int(2.3 * SR)].contiguous(), mix[..., : int(4.05 * SR)]]


def test_many_songs_pool_their_segments_and_equal_apply_model(model, mix, monkeypatch):
    songs = _songs(mix)
    calls = []
    forward = model.forward
    monkeypatch.setattr(model, "forward", lambda x: calls.append(x.shape[0]) or forward(x))
    outs = demucs_apply.apply_batched_many(model, songs, batch_size=4, device="cpu")
    # 2 + 5 + 1 + 3 = 11 segments in 3 calls of up to 4 (one song at a time: 1 + 2 + 1 + 1 = 5 calls)
    assert calls == [4, 4, 3]
    monkeypatch.setattr(model, "forward", forward)
    assert len(outs) == len(songs)
    for x, out in zip(songs, outs, strict=True):
        ref = reference(model, x)
        assert out.shape == ref.shape == (1, 4, 2, x.shape[-1])
        np.testing.assert_allclose(out.numpy(), ref.numpy(), atol=ATOL, rtol=0)


def test_many_songs_stream_from_a_generator(model, mix):
    songs = _songs(mix)
    taken = []

    def feed():
        for i, x in enumerate(songs):
            taken.append(i)
            yield x

    outputs = demucs_apply.iter_apply_batched_many(model, feed(), batch_size=2, device="cpu")
    first = next(outputs)
    assert taken == [0]  # the first song's 2 segments fill a call: out before the next song is read
    np.testing.assert_allclose(first.numpy(), reference(model, songs[0]).numpy(), atol=ATOL, rtol=0)
    assert len(list(outputs)) == len(songs) - 1 and taken == [0, 1, 2, 3]


def test_many_songs_with_shifts_and_a_bag_equal_apply_model_per_song(mix, monkeypatch):
    from demucs.apply import BagOfModels

    bag = BagOfModels([tiny_htdemucs(seed=0), tiny_htdemucs(seed=1)], weights=[[1, 0.5, 1, 2], [1, 1, 0.25, 1]])
    bag.eval()
    songs = [mix[..., : 3 * SR], mix[..., : int(1.2 * SR)], mix[..., SR: int(3.6 * SR)]]
    offsets = [10611, 2373, 0, 22050, 17, 4000, 22049, 999, 12345, 54, 321, 7]  # 3 songs x 2 models x 2 shifts
    monkeypatch.setattr(random, "randint", lambda a, b, it=iter(offsets * 2): next(it))
    outs = demucs_apply.apply_batched_many(bag, songs, batch_size=3, shifts=2, device="cpu")
    for x, out in zip(songs, outs, strict=True):  # apply_model draws per song in the same order
        np.testing.assert_allclose(out.numpy(), reference(bag, x, shifts=2).numpy(), atol=ATOL, rtol=0)


def test_separate_many_equals_separate(repo, rng):
    sep = stems.get("demucs", model="tiny", model_dir=repo, device="cpu", batch_size=4)
    items = [(song(bars=3)[:, : 5 * SR], SR), (np.zeros((2, 3 * SR), np.float32), SR),  # silence
             (song(bars=2, seed=3)[:1, : int(1.5 * SR)], SR),  # mono, shorter than a segment
             (0.1 * rng.standard_normal((2, 4 * 8000)).astype(np.float32), 8000)]
    originals = [y.copy() for y, _ in items]
    many = sep.separate_many(items)
    assert len(many) == len(items)
    assert all(np.array_equal(y, o) for (y, _), o in zip(items, originals, strict=True))  # inputs untouched
    for (y, sr), got in zip(items, many, strict=True):
        want = sep.separate(y, sr=sr)
        assert list(got) == list(want)
        for name in want:
            assert got[name].shape == y.shape and got[name].dtype == np.float32
            np.testing.assert_allclose(got[name], want[name], atol=ATOL)
        np.testing.assert_allclose(sum(got.values()), y, atol=1e-5)  # stems sum to the mix
    with pytest.raises(ParameterError, match="6 channels"):
        sep.separate_many([items[0], (np.zeros((6, SR), np.float32), SR)])
