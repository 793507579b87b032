"""The stem cache: keys, atomic entries, corrupt entries recomputed, and the render skipping separation."""

import numpy as np
import pytest
from conftest import SR, song, write

from covermill import stems
from covermill.stems import cache as stem_cache
from covermill.stems.dsp import DSPSeparator


class CountingDSP(DSPSeparator):
    calls = 0

    def separate(self, y, *, sr):
        type(self).calls += 1
        return super().separate(y, sr=sr)


@pytest.fixture
def mix():
    return song(bars=2)


def test_key_depends_on_audio_separator_and_params(mix):
    key = stem_cache.cache_key(mix, sr=SR, sep=stems.get("dsp"))
    assert key == stem_cache.cache_key(mix.copy(), sr=SR, sep=stems.get("dsp"))
    assert key != stem_cache.cache_key(mix * 0.5, sr=SR, sep=stems.get("dsp"))
    assert key != stem_cache.cache_key(mix, sr=22050, sep=stems.get("dsp"))
    assert key != stem_cache.cache_key(mix, sr=SR, sep=stems.get("dsp", bass_hz=100.0))
    assert key != stem_cache.cache_key(mix, sr=SR, sep=stems.get("demucs", model_dir="/nonexistent"))


def test_second_call_is_a_hit_with_equal_stems(mix, tmp_path):
    cache = stem_cache.StemCache(tmp_path)
    CountingDSP.calls = 0
    first, hit1 = stem_cache.separate_cached(CountingDSP(), mix, sr=SR, cache=cache)
    second, hit2 = stem_cache.separate_cached(CountingDSP(), mix, sr=SR, cache=cache)
    assert (hit1, hit2, CountingDSP.calls) == (False, True, 1)
    assert list(second) == list(first)
    for name in first:
        np.testing.assert_array_equal(second[name], first[name])
    assert not list(tmp_path.rglob("*.part"))  # nothing half-written left behind


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_corrupt_entry_is_detected_and_recomputed(mix, tmp_path, damage, caplog):
    cache = stem_cache.StemCache(tmp_path)
    CountingDSP.calls = 0
    first, _ = stem_cache.separate_cached(CountingDSP(), mix, sr=SR, cache=cache)
    (entry,) = tmp_path.rglob("*.npz")
    data = bytearray(entry.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":  # one sample changed inside a stored array: only the checksum sees it
        pos = len(data) // 2
        data[pos] ^= 0xFF
    else:
        data = bytearray(b"not a zip file")
    entry.write_bytes(bytes(data))
    again, hit = stem_cache.separate_cached(CountingDSP(), mix, sr=SR, cache=cache)
    assert not hit and CountingDSP.calls == 2 and "corrupt" in caplog.text
    np.testing.assert_array_equal(again["vocals"], first["vocals"])
    assert stem_cache.StemCache(tmp_path).get(stem_cache.cache_key(mix, sr=SR, sep=CountingDSP())) is not None


def test_default_folder_honours_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(stem_cache.CACHE_DIR_ENV, str(tmp_path))
    assert stem_cache.StemCache().root == tmp_path / "stems"
    monkeypatch.delenv(stem_cache.CACHE_DIR_ENV)
    assert stem_cache.default_cache_dir().parts[-2:] == ("covermill", "stems")


@pytest.mark.slow
def test_second_render_skips_separation(tmp_path, monkeypatch):
    from covermill.automation.pipeline import render
    from covermill.recipes import load_recipe

    (tmp_path / "plain.yaml").write_text("name: plain\n")
    recipe = load_recipe(str(tmp_path / "plain.yaml"))
    path = write(tmp_path / "song.wav", song(bars=2), subtype="FLOAT")
    calls = []
    original = DSPSeparator.separate
    monkeypatch.setattr(DSPSeparator, "separate", lambda self, y, *, sr: calls.append(1) or original(self, y, sr=sr))
    cache_dir = tmp_path / "cache"
    a = render(path, recipe, tmp_path / "a", separator="auto", cache_dir=cache_dir)
    b = render(path, recipe, tmp_path / "b", separator="auto", cache_dir=cache_dir)
    assert len(calls) == 1
    assert (a.qa["stem_cache"], b.qa["stem_cache"], b.qa["separator"]) == ("miss", "hit", "dsp")
    assert a.qa["stages"]["separate"] > b.qa["stages"]["separate"]
    c = render(path, recipe, tmp_path / "c", separator="dsp")
    assert c.qa["stem_cache"] == "off" and len(calls) == 2


def test_stems_command_writes_files_and_uses_the_cache(tmp_path):
    import soundfile as sf
    from click.testing import CliRunner

    from covermill.cli import main

    path = write(tmp_path / "song.wav", song(bars=2), subtype="FLOAT")
    args = ["stems", str(path), "-o", str(tmp_path / "out"), "--separator", "auto", "--cache-dir", str(tmp_path / "c")]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "separator: dsp" in first.output and "from cache" not in first.output
    second = CliRunner().invoke(main, [*args, "--format", "flac"])
    assert second.exit_code == 0 and "(from cache)" in second.output
    total = sum(sf.read(str(tmp_path / "out" / f"{n}.wav"), always_2d=True)[0] for n in stems.STEM_NAMES)
    np.testing.assert_allclose(total.T, song(bars=2), atol=1e-5)
    assert sorted(p.name for p in (tmp_path / "out").glob("*.flac")) == sorted(f"{n}.flac" for n in stems.STEM_NAMES)


def test_stems_command_errors_are_one_line(tmp_path):
    from click.testing import CliRunner

    from covermill.cli import main

    path = write(tmp_path / "song.wav", song(bars=2), subtype="FLOAT")
    res = CliRunner().invoke(main, ["stems", str(path), "-o", str(tmp_path / "o"), "--separator", "demucs",
                                    "--model-dir", str(tmp_path), "--no-cache"])
    assert res.exit_code == 1
    assert "no weights for demucs model 'htdemucs'" in res.output and len(res.output.strip().splitlines()) == 1


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_stems_written_block_by_block_equal_save_audio(tmp_path, monkeypatch, fmt):
    import soundfile as sf

    from covermill.audio import save_audio
    from covermill.stems import export

    monkeypatch.setattr(export, "WRITE_BLOCK", 1000)
    y = 1.3 * song(bars=1)[:, :4321]  # peaks beyond 1: flac clips
    export.write_stem(tmp_path / f"a.{fmt}", y, sr=SR, fmt=fmt)
    save_audio(tmp_path / f"b.{fmt}", y, sr=SR, subtype="FLOAT" if fmt == "wav" else "PCM_24",
               clip="none" if fmt == "wav" else "clamp")
    a, b = sf.read(tmp_path / f"a.{fmt}", dtype="float32"), sf.read(tmp_path / f"b.{fmt}", dtype="float32")
    assert a[1] == b[1] and np.array_equal(a[0], b[0])


@pytest.mark.parametrize("forgery", ["short vocals", "missing stem", "meta list", "meta names not str"])
def test_entries_are_checked_on_shape_names_and_metadata(mix, tmp_path, forgery, caplog):
    """Finding 8 of issue 18: a well-checksummed but wrong entry, or odd metadata, is recomputed."""
    import json

    cache = stem_cache.StemCache(tmp_path)
    key = stem_cache.cache_key(mix, sr=SR, sep=CountingDSP())
    good = CountingDSP().separate(mix, sr=SR)
    arrays = {n: np.ascontiguousarray(a, dtype=np.float32) for n, a in good.items()}
    if forgery == "short vocals":
        arrays["vocals"] = np.zeros((2, 10), np.float32)
    elif forgery == "missing stem":
        del arrays["bass"]
    meta = {"v": 1, "stems": list(arrays), "sha256": {n: stem_cache._digest(a) for n, a in arrays.items()}}
    if forgery == "meta list":
        meta = []
    elif forgery == "meta names not str":
        meta["stems"] = [1, 2]
    path = cache.path(key)
    path.parent.mkdir(parents=True)
    with open(path, "wb") as f:
        np.savez(f, __meta__=np.array(json.dumps(meta)), **arrays)
    CountingDSP.calls = 0
    stems_out, hit = stem_cache.separate_cached(CountingDSP(), mix, sr=SR, cache=cache)
    assert not hit and CountingDSP.calls == 1 and "corrupt" in caplog.text
    assert stems_out["vocals"].shape == mix.shape
