"""The processes behind a covermill-started Audacity: a private X server (:class:`Xvfb`), and
stopping a process group for good (:func:`terminate`); children die with covermill."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time

from ...errors import AudacityError


class Xvfb:
    """A private X server on a free display number (``Xvfb -displayfd``)."""

    def __init__(self, *, timeout_s: float = 10.0) -> None:
        xvfb = shutil.which("Xvfb")
        if not xvfb:
            raise AudacityError("there is no DISPLAY and Xvfb is not installed; install it (apt-get install xvfb) "
                                "or run covermill inside a desktop session")
        read_fd, write_fd = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [xvfb, "-displayfd", str(write_fd), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                pass_fds=(write_fd,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent,
            )
        finally:
            os.close(write_fd)
        try:
            data = b""
            deadline = time.monotonic() + timeout_s
            os.set_blocking(read_fd, False)
            while not data.endswith(b"\n"):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise AudacityError(f"Xvfb did not start within {timeout_s:g} s")
                with contextlib.suppress(BlockingIOError):
                    data += os.read(read_fd, 64)
                time.sleep(0.02)
        finally:
            os.close(read_fd)
        self.display = f":{data.decode().strip()}"

    def stop(self) -> None:
        terminate(self.proc)


def terminate(proc: subprocess.Popen, *, grace_s: float = 3.0) -> None:
    """Stop ``proc`` and its process group: SIGTERM, then SIGKILL; always reaped."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # children of the group too
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def die_with_parent() -> None:
    """In the child before exec: get SIGKILL when covermill dies (even by SIGKILL), so nothing is left behind."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
