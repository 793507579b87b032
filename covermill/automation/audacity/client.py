"""A small client for Audacity's mod-script-pipe (scripting macro language over two FIFOs).

Why our own client and not pyaudacity 0.1.3: see ``docs/audacity.md``. In short, every
argument is quoted and escaped here, values that Audacity would read differently from
what we mean are refused, every pipe operation has a timeout, and every reply is checked.

What Audacity 3.2.4 does with a command line (verified against the real program):

- one command per line; a raw newline always starts a new command, so values with
  newlines (or carriage returns) are refused;
- lines are read in 1023-byte chunks: a longer line is cut and its rest runs as a second
  command, so lines over :data:`MAX_LINE_BYTES` are refused;
- inside double quotes ``\\"`` is a quote and ``\\\\`` a backslash; an unescaped quote ends
  the value and what follows is read as more parameters;
- Audacity unescapes with plain string replacement, ``\\n`` first: a value holding a
  backslash followed by ``n`` cannot be sent faithfully (it would become a newline), so
  it is refused;
- the reply is some lines, then ``BatchCommand finished: OK`` (or ``Failed!``), then an
  empty line.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import stat
import time
from collections.abc import Mapping
from pathlib import Path

from ...errors import AudacityError

log = logging.getLogger(__name__)

#: Longest command line (bytes, without the newline) Audacity reads in one piece.
MAX_LINE_BYTES = 1000
OK_END = "BatchCommand finished: OK\n\n"
FAILED_END = "BatchCommand finished: Failed!\n\n"
_FORBIDDEN = {"\n": "a newline", "\r": "a carriage return", "\x00": "a NUL byte"}


def pipe_paths(uid: int | None = None) -> tuple[Path, Path]:
    """The (to Audacity, from Audacity) FIFOs of mod-script-pipe for user ``uid`` on Linux.

    Audacity fixes these names in ``/tmp``; :func:`check_pipe` makes sure a path there is
    really the user's own FIFO before covermill opens it."""
    uid = os.getuid() if uid is None else uid
    return Path(f"/tmp/audacity_script_pipe.to.{uid}"), Path(f"/tmp/audacity_script_pipe.from.{uid}")


def check_pipe(path: Path, uid: int | None = None) -> bool:
    """``False`` if ``path`` does not exist; ``True`` if it is a FIFO owned by ``uid`` (default:
    this user) that nobody else may write; :class:`AudacityError` for anything else (a file,
    a link, another user's FIFO in the shared ``/tmp``: someone could read or forge replies)."""
    uid = os.getuid() if uid is None else uid
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISFIFO(st.st_mode):
        raise AudacityError(f"{path}: is not a FIFO (a file or link put there?); covermill will not use it. "
                            "Remove it and start Audacity again")
    if st.st_uid != uid or st.st_mode & 0o022:
        raise AudacityError(f"{path}: belongs to user {st.st_uid} or is writable by others; covermill will not "
                            "use it. Remove it and start Audacity again")
    return True


def _same_pipe(fd: int, path: Path, uid: int) -> None:
    """What was opened is still the user's FIFO (nothing swapped it in after :func:`check_pipe`)."""
    st = os.fstat(fd)
    if not stat.S_ISFIFO(st.st_mode) or st.st_uid != uid:
        os.close(fd)
        raise AudacityError(f"{path}: changed while it was opened (not this user's FIFO); covermill will not use it")


def quote(value: object) -> str:
    """``value`` as a double-quoted macro argument with ``\\`` and ``"`` escaped.

    Raises :class:`AudacityError` for values Audacity cannot receive intact: newlines,
    carriage returns, NUL bytes, and a backslash followed by ``n``.
    """
    text = str(value)
    for ch, what in _FORBIDDEN.items():
        if ch in text:
            raise AudacityError(f"cannot send {text!r} to Audacity: it contains {what}, which would start "
                                "another command; rename the file or change the value")
    if "\\n" in text:
        raise AudacityError(f"cannot send {text!r} to Audacity: its macro language turns a backslash followed by "
                            "'n' into a newline; rename the file or change the value")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _format_value(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        if isinstance(value, float) and value != value:  # NaN
            raise AudacityError("cannot send NaN to Audacity")
        return repr(value) if isinstance(value, int) else f"{value:.9g}"
    return quote(value)


def build_command(name: str, params: Mapping[str, object] | None = None) -> str:
    """One macro line ``Name: Key="value" ...``; numbers bare, everything else quoted."""
    if not name.replace("_", "").isalnum():
        raise AudacityError(f"invalid Audacity command name {name!r}")
    parts = [f"{name}:"]
    for key, value in (params or {}).items():
        if not key.isalnum():
            raise AudacityError(f"invalid Audacity parameter name {key!r}")
        parts.append(f"{key}={_format_value(value)}")
    line = " ".join(parts)
    size = len(line.encode("utf-8"))
    if size > MAX_LINE_BYTES:
        raise AudacityError(f"the Audacity command {name} is {size} bytes long; Audacity reads at most "
                            f"{MAX_LINE_BYTES} per line (the rest would run as a separate command): use shorter paths")
    return line


def parse_reply(reply: str, *, command: str) -> str:
    """The payload of one reply; raise :class:`AudacityError` with Audacity's message on ``Failed!``."""
    if reply.endswith(OK_END):
        return reply[: -len(OK_END)].strip("\n")
    if reply.endswith(FAILED_END):
        message = " ".join(reply[: -len(FAILED_END)].split()) or "no message"
        raise AudacityError(f"Audacity refused `{command}`: {message}")
    raise AudacityError(f"unexpected reply from Audacity to `{command}`: {reply[-200:]!r}")


class AudacityGone(AudacityError):
    """Audacity closed its pipes mid-session: it exited or crashed (everything it held is lost)."""


class PipeClient:
    """A connection to mod-script-pipe with a timeout on every step.

    Both FIFOs are opened non-blocking: opening the command pipe fails at once while
    nobody reads it (Audacity not running, or its pipe server dead), instead of hanging.
    ``timeout_s`` bounds each command: a modal dialog or a hung Audacity raises
    :class:`AudacityError` instead of blocking forever. ``alive`` (optional, set by whoever
    started Audacity) is asked while a reply is awaited: ``False`` (the process exited, or
    crashed and hangs in its crash reporter) raises :class:`AudacityGone` at once.
    """

    def __init__(self, *, timeout_s: float = 30.0, uid: int | None = None) -> None:
        self.alive = None
        self.timeout_s = timeout_s
        self.uid = os.getuid() if uid is None else uid
        self.to_path, self.from_path = pipe_paths(self.uid)
        self._w: int | None = None
        self._r: int | None = None

    # -- connection ---------------------------------------------------------------------
    def connect(self, *, timeout_s: float = 10.0, alive=None) -> PipeClient:
        """Open both pipes and wait until Audacity answers a real command.

        ``alive`` is an optional callable; when it returns False (the process we started
        died) the wait stops at once with :class:`AudacityError`.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if check_pipe(self.to_path, self.uid):
                    self._w = os.open(self.to_path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
                    break
            except OSError as exc:
                if exc.errno not in (errno.ENXIO, errno.ENOENT):
                    raise AudacityError(f"cannot open {self.to_path}: {exc}") from None
            if alive is not None and not alive():
                raise AudacityError("Audacity exited before its scripting pipe opened (mod-script-pipe not loaded?)")
            if time.monotonic() > deadline:
                raise AudacityError(f"no Audacity is listening on {self.to_path} after {timeout_s:g} s; start "
                                    "Audacity with mod-script-pipe enabled (Preferences > Modules)")
            time.sleep(0.05)
        _same_pipe(self._w, self.to_path, self.uid)
        os.set_blocking(self._w, True)  # writes of one short line never block long; EPIPE if Audacity dies
        if not check_pipe(self.from_path, self.uid):
            self.close()
            raise AudacityError(f"{self.from_path}: missing while Audacity serves {self.to_path}; restart Audacity")
        self._r = os.open(self.from_path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        _same_pipe(self._r, self.from_path, self.uid)
        # Commands sent before Audacity is ready are answered by a bare newline and dropped: ping until a
        # reply that carries our token comes back.
        n = 0
        while True:
            n += 1
            token = f"covermill-ready-{os.getpid()}-{n}"
            self._write(build_command("Message", {"Text": token}))
            try:
                text = self._read_until(lambda buf, token=token: token in buf and buf.endswith(OK_END),
                                        min(2.0, max(0.1, deadline - time.monotonic())), what="ping")
                log.debug("Audacity answered after %d ping(s): %r", n, text[-80:])
                return self
            except AudacityError:
                if alive is not None and not alive():
                    self.close()
                    raise AudacityError("Audacity exited while its scripting pipe was starting") from None
                if time.monotonic() > deadline:
                    self.close()
                    raise AudacityError(f"Audacity does not answer on {self.to_path} after {timeout_s:g} s "
                                        "(a dialog may be open, or the pipe has no server)") from None

    def close(self) -> None:
        for fd in (self._w, self._r):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._w = self._r = None

    def __enter__(self) -> PipeClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- commands -----------------------------------------------------------------------
    def do(self, name: str, /, timeout_s: float | None = None, **params: object) -> str:
        """Run one command; return its payload or raise :class:`AudacityError`."""
        return self.send_line(build_command(name, params), timeout_s=timeout_s)

    def send_line(self, line: str, *, timeout_s: float | None = None) -> str:
        """Send one prepared line (from :func:`build_command`) and parse its reply."""
        if self._w is None:
            raise AudacityError("not connected to Audacity")
        if "\n" in line or "\r" in line or len(line.encode()) > MAX_LINE_BYTES:
            raise AudacityError(f"refusing to send an unchecked line to Audacity: {line[:80]!r}")
        self._drain()
        self._write(line)
        reply = self._read_until(lambda buf: buf.endswith(OK_END) or buf.endswith(FAILED_END),
                                 self.timeout_s if timeout_s is None else timeout_s, what=line.split(":")[0])
        return parse_reply(reply, command=line.split(":")[0])

    def batch(self, lines: list[str], *, timeout_s: float | None = None) -> list[str]:
        """Send many prepared lines at once and parse their replies in order (one round trip)."""
        for line in lines:
            if "\n" in line or "\r" in line or len(line.encode()) > MAX_LINE_BYTES:
                raise AudacityError(f"refusing to send an unchecked line to Audacity: {line[:80]!r}")
        out: list[str] = []
        for start in range(0, len(lines), 32):  # stay well inside the pipe buffer
            chunk = lines[start : start + 32]
            self._drain()
            self._write("\n".join(chunk))
            limit = (self.timeout_s if timeout_s is None else timeout_s) + 0.5 * len(chunk)
            text = self._read_until(lambda buf, k=len(chunk): buf.count("BatchCommand finished: ") >= k
                                    and buf.endswith("\n\n"), limit, what=f"{len(chunk)} commands")
            pieces = text.split("BatchCommand finished: ")
            for i, line in enumerate(chunk):
                head = pieces[i].split("\n\n", 1)[-1] if i else pieces[i]
                status = pieces[i + 1].split("\n", 1)[0]
                out.append(parse_reply(f"{head}BatchCommand finished: {status}\n\n", command=line.split(":")[0]))
        return out

    # -- raw I/O ------------------------------------------------------------------------
    def _write(self, line: str) -> None:
        data = (line + "\n").encode("utf-8")
        try:
            while data:
                n = os.write(self._w, data)
                data = data[n:]
        except BrokenPipeError:
            raise AudacityGone("Audacity closed its scripting pipe (it exited or crashed)") from None

    def _drain(self) -> None:
        """Discard stale output (a late reply to a command that timed out)."""
        while select.select([self._r], [], [], 0)[0]:
            try:
                if not os.read(self._r, 65536):
                    return
            except BlockingIOError:
                return

    def _read_until(self, done, timeout_s: float, *, what: str) -> str:
        buf = b""
        deadline = time.monotonic() + timeout_s
        eof_since: float | None = None
        asked = time.monotonic()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AudacityError(f"Audacity did not answer `{what}` within {timeout_s:g} s (hung, or a dialog "
                                    "is waiting for a person)")
            ready, _, _ = select.select([self._r], [], [], min(left, 0.1))
            if not ready:
                if self.alive is not None and time.monotonic() - asked > 0.5:
                    asked = time.monotonic()
                    if not self.alive():
                        raise AudacityGone(f"Audacity crashed or exited during `{what}`")
                continue
            try:
                chunk = os.read(self._r, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                # No writer: Audacity has not reopened the reply pipe yet, or it is gone. Give it a moment.
                eof_since = eof_since or time.monotonic()
                if time.monotonic() - eof_since > 1.0:
                    raise AudacityGone(f"Audacity closed its reply pipe during `{what}` (it exited or crashed)")
                time.sleep(0.05)
                continue
            eof_since = None
            buf += chunk
            text = buf.decode("utf-8", errors="replace")
            if done(text):
                return text
