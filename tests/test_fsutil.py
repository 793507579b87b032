"""Filesystem helpers: atomic writes get the user's umask (finding 20 of issue 18), one cache-folder rule, one audio-file rule."""

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from covermill.audio import save_audio
from covermill.errors import ParameterError
from covermill.fsutil import current_umask, write_text_atomic


@pytest.mark.parametrize("mask,mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_atomic_writes_follow_the_umask(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        assert current_umask() == mask
        wav = save_audio(tmp_path / "cover.wav", np.zeros((2, 100), np.float32), sr=44100)
        text = write_text_atomic(tmp_path / "qa.json", "{}")
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
    finally:
        os.umask(old)
    for path in (wav, text, plain):
        assert stat.S_IMODE(path.stat().st_mode) == mode, path


# -- cache folders and audio files: one rule each ----------------------------------------------------

def test_cache_dir_honours_covermill_cache_dir_then_xdg(monkeypatch, tmp_path):
    import sys

    from covermill import fsutil
    from covermill.analysis.cover import default_cache_dir as cover_dir
    from covermill.stems.cache import default_cache_dir as stems_dir

    monkeypatch.setenv("COVERMILL_CACHE_DIR", str(tmp_path / "root"))
    assert fsutil.cache_dir("stems") == tmp_path / "root" / "stems" == stems_dir()
    assert fsutil.cache_dir("cover") == cover_dir() and fsutil.cache_dir() == tmp_path / "root"
    monkeypatch.setenv("COVERMILL_CACHE_DIR", "~/elsewhere")
    assert fsutil.cache_dir("genre") == Path.home() / "elsewhere" / "genre"
    monkeypatch.delenv("COVERMILL_CACHE_DIR")
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert fsutil.cache_dir("stems") == tmp_path / "xdg" / "covermill" / "stems"
        monkeypatch.delenv("XDG_CACHE_HOME")
        assert fsutil.cache_dir("cover") == Path.home() / ".cache" / "covermill" / "cover"


def test_find_audio_one_rule(tmp_path):
    from covermill.fsutil import find_audio

    for rel in ["b.wav", "a.FLAC", "sub/c.ogg", "sub/deep/d.mp3", "notes.txt", ".hidden.wav", "._b.wav",
                ".git/x.wav", "sub/.cache/y.flac", "out/rendered.wav"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    (tmp_path / "gone.wav").symlink_to(tmp_path / "missing.wav")  # reported by the caller, not dropped
    (tmp_path / "folder.wav").mkdir()  # a folder is not audio
    found = [p.relative_to(tmp_path).as_posix() for p in find_audio(tmp_path, exclude=tmp_path / "out")]
    assert found == ["a.FLAC", "b.wav", "gone.wav", "sub/c.ogg", "sub/deep/d.mp3"]
    assert "out/rendered.wav" in [p.relative_to(tmp_path).as_posix() for p in find_audio(tmp_path)]
    with pytest.raises(ParameterError, match="is not a folder"):
        find_audio(tmp_path / "b.wav")
