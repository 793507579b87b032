"""Finding 20 of issue 18: files written atomically get the user's umask, not mkstemp's 0600."""

import os
import stat

import numpy as np
import pytest

from covermill.audio import save_audio
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
