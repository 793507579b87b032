"""Finding 21 of issue 18: Audacity's pipes in the shared /tmp and covermill's lock (no Audacity needed)."""

import os
import stat

import pytest

from covermill.automation.audacity import launcher
from covermill.automation.audacity.client import PipeClient, check_pipe, pipe_paths
from covermill.errors import AudacityError

FAKE_UID = 54321  # a user nobody is: its pipe paths never collide with a real Audacity's


@pytest.fixture
def fake_pipes():
    paths = pipe_paths(FAKE_UID)
    yield paths
    for p in paths:
        if os.path.lexists(p):
            os.unlink(p)


@pytest.mark.parametrize("kind", ["file", "symlink", "fifo of another user"])
def test_pipes_in_tmp_are_checked_before_use(tmp_path, fake_pipes, kind):
    to_path, _ = fake_pipes
    if kind == "file":
        to_path.write_text("")
        if os.getuid() == 0:
            os.chown(to_path, FAKE_UID, -1)
    elif kind == "symlink":
        os.symlink(tmp_path / "elsewhere", to_path)
    else:
        os.mkfifo(to_path, 0o600)  # owned by the test's user, not by FAKE_UID
    with pytest.raises(AudacityError, match="not a FIFO|belongs to user"):
        check_pipe(to_path, FAKE_UID)
    with pytest.raises(AudacityError, match="not a FIFO|belongs to user"):
        PipeClient(uid=FAKE_UID).connect(timeout_s=1.0)


def test_own_fifo_passes_and_missing_is_false(tmp_path, fake_pipes):
    to_path, _ = fake_pipes
    assert check_pipe(to_path, FAKE_UID) is False
    os.mkfifo(to_path, 0o600)
    if os.getuid() != 0:
        pytest.skip("making a FIFO of another user needs root")
    os.chown(to_path, FAKE_UID, -1)
    assert check_pipe(to_path, FAKE_UID) is True
    os.chmod(to_path, 0o622)
    with pytest.raises(AudacityError, match="writable by others"):
        check_pipe(to_path, FAKE_UID)


def test_lock_lives_in_a_private_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    lock = launcher._lock_path()
    assert lock.parent == tmp_path / "covermill" and not str(lock).startswith("/tmp/covermill-audacity")
    assert stat.S_IMODE(lock.parent.stat().st_mode) == 0o700
    fh = launcher._take_lock(timeout_s=1)
    try:
        assert stat.S_ISREG(lock.lstat().st_mode)
    finally:
        launcher._release_lock(fh)
    os.chmod(lock.parent, 0o777)
    with pytest.raises(AudacityError, match="nobody else can open"):
        launcher._lock_path()
    os.chmod(lock.parent, 0o700)
    lock.unlink()
    os.symlink(tmp_path / "target", lock)
    with pytest.raises(AudacityError, match="cannot open the Audacity lock"):
        launcher._take_lock(timeout_s=1)
    assert not (tmp_path / "target").exists()
