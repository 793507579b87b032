"""Start Audacity in a covermill-owned profile (under Xvfb when there is no display), or attach to one.

The profile is a folder used as ``HOME`` (and ``XDG_*``) of the Audacity process, never
the user's own. Its ``audacity.cfg`` is rewritten before every start:

- ``[Module] mod-script-pipe=1`` with ``[ModulePath]`` and ``[ModuleDateTime]`` (the ``.so``
  file's mtime in local time): without the date Audacity resets the module to "new" and
  does not load it;
- ``[Version]`` Major/Minor/Micro of the installed Audacity, or its upgrade code brings
  back the welcome dialog; ``[GUI] ShowSplashScreen=0``;
- ``[Directories] TempDir`` inside the profile, emptied before each start (leftovers of a
  killed Audacity would otherwise offer crash recovery).

On a fresh profile Audacity's first start registers plug-ins in a child process that
also loads the module and leaves pipes nobody serves. The launcher therefore makes a
warm-up start when ``pluginregistry.cfg`` is missing and stops it once the registry is
written.

mod-script-pipe's FIFOs are per user (``/tmp/audacity_script_pipe.{to,from}.<uid>``), so
only one Audacity per user can be scripted at a time: a lock file in a private folder
(:func:`private_dir`, mode 0700) serialises covermill processes, and starting refuses when
another Audacity already answers (attach instead). The FIFOs' names are Audacity's, in the
shared ``/tmp``: covermill opens them only if they are FIFOs of this user that nobody else
may write (:func:`~covermill.automation.audacity.client.check_pipe`).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

import platformdirs

from ...errors import AudacityError
from .client import PipeClient, check_pipe, pipe_paths
from .processes import Xvfb, die_with_parent, terminate

log = logging.getLogger(__name__)

MODULE_PATHS = (
    Path("/usr/lib/audacity/modules/mod-script-pipe.so"),
    Path("/usr/lib/x86_64-linux-gnu/audacity/modules/mod-script-pipe.so"),
    Path("/usr/local/lib/audacity/modules/mod-script-pipe.so"),
)


def default_profile() -> Path:
    """The covermill-owned Audacity profile folder (used as Audacity's ``HOME``)."""
    return Path(platformdirs.user_cache_dir("covermill")) / "audacity-profile"


def find_audacity(binary: str | None = None) -> str:
    """Path of the ``audacity`` program, or :class:`AudacityError` naming what to install."""
    found = shutil.which(binary or os.environ.get("COVERMILL_AUDACITY", "audacity"))
    if not found:
        raise AudacityError("Audacity is not installed; install it (Debian: apt-get install audacity xvfb) "
                            "or set COVERMILL_AUDACITY to the program")
    return found


def find_module() -> Path:
    for path in MODULE_PATHS:
        if path.is_file():
            return path
    raise AudacityError("mod-script-pipe.so was not found (looked in "
                        f"{', '.join(str(p.parent) for p in MODULE_PATHS)}); install Debian's audacity package")


def audacity_version(binary: str) -> tuple[int, int, int]:
    """Version of the installed Audacity (Debian's package database; 3.2.4 when it cannot be read).

    ``audacity --version`` needs a display, so the package version is asked instead.
    """
    out = ""
    if shutil.which("dpkg-query"):
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "audacity"], capture_output=True,
                                 text=True, timeout=10).stdout
    m = re.match(r"(?:\d+:)?(\d+)\.(\d+)\.(\d+)", out)
    return (int(m[1]), int(m[2]), int(m[3])) if m else (3, 2, 4)


def write_profile(profile: Path, *, module: Path, version: tuple[int, int, int]) -> Path:
    """(Re)write ``audacity.cfg`` of ``profile`` and empty its TempDir; returns the config folder."""
    config = profile / ".config" / "audacity"
    config.mkdir(parents=True, exist_ok=True)
    temp = profile / "tmp"
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir(parents=True)
    stamp = datetime.fromtimestamp(module.stat().st_mtime).strftime("%Y-%m-%dT%H:%M:%S")
    major, minor, micro = version
    (config / "audacity.cfg").write_text(
        "[Version]\n"
        f"Major={major}\nMinor={minor}\nMicro={micro}\n"
        "[Module]\nmod-script-pipe=1\n"
        f"[ModulePath]\nmod-script-pipe={module}\n"
        f"[ModuleDateTime]\nmod-script-pipe={stamp}\n"
        "[GUI]\nShowSplashScreen=0\n"
        # a window as large as the private Xvfb screen: sessions are fitted (FitV) to it before saving
        "[Window]\nX=0\nY=0\nWidth=1280\nHeight=1024\nNormal_X=0\nNormal_Y=0\nNormal_Width=1280\n"
        "Normal_Height=1024\nMaximized=0\nIconized=0\n"
        "[Update]\nDefaultUpdatesChecking=0\nUpdateNoticeShown=1\n"
        "[Warnings]\nFirstProjectSave=0\nMixMono=0\nMixStereo=0\nMixUnknownChannels=0\n"
        f"[Directories]\nTempDir={temp}\n"
        # Export2 to .wav writes 32-bit float (SF_FORMAT_WAV | SF_FORMAT_FLOAT), no dither: a mix above 0 dBFS
        # comes back unclipped and unquantised.
        "[FileFormats]\nExportFormat_SF1=65542\n[FileFormats/ExportFormat_SF1_Type]\nWAV_10000=6\n"
        "[Quality]\nDitherAlgorithm=0\nHQDitherAlgorithm=0\n"
        "[SamplingRate]\nDefaultProjectSampleRate=44100\n",
        encoding="utf-8",
    )
    return config


class Audacity:
    """A scriptable Audacity: started here (and stopped by :meth:`stop`) or attached to.

    Use as a context manager::

        with Audacity.start() as app:
            app.client.do("GetInfo", Type="Tracks")
    """

    def __init__(self, client: PipeClient, *, proc: subprocess.Popen | None = None, xvfb: Xvfb | None = None,
                 lock=None, profile: Path | None = None, startup_s: float | None = None) -> None:
        self.client = client
        self.proc = proc
        self.xvfb = xvfb
        self.profile = profile
        self.startup_s = startup_s
        self._lock = lock
        self._start_kwargs: dict | None = None  # how it was started (for restart)
        self._spawned_at = time.time()
        client.alive = self.alive  # a crash ends the wait for a reply at once

    @property
    def owned(self) -> bool:
        return self.proc is not None

    @classmethod
    def attach(cls, *, timeout_s: float = 5.0, command_timeout_s: float = 60.0) -> Audacity:
        """Connect to an Audacity that is already running with mod-script-pipe enabled."""
        client = PipeClient(timeout_s=command_timeout_s).connect(timeout_s=timeout_s)
        return cls(client)

    @classmethod
    def start(cls, *, profile: str | os.PathLike | None = None, timeout_s: float = 30.0,
              command_timeout_s: float = 60.0, binary: str | None = None, project: str | os.PathLike | None = None,
              headless: bool | None = None, keep_running: bool = False) -> Audacity:
        """Start Audacity in ``profile`` and wait (at most ``timeout_s``) until its pipe answers.

        ``headless`` (default: when ``DISPLAY`` is unset) runs it on a private Xvfb.
        ``project`` is a file to open at start. Audacity (and Xvfb) die with this process
        unless ``keep_running`` (for a person's Audacity, which outlives covermill).
        Raises :class:`AudacityError` when another
        Audacity already serves the pipes, or this one does not answer in time.
        """
        t0 = time.perf_counter()
        exe = find_audacity(binary)
        module = find_module()
        profile = Path(profile) if profile else default_profile()
        profile.mkdir(parents=True, exist_ok=True)
        _refuse_if_served()  # fail fast, before waiting for the lock
        lock = _take_lock()
        xvfb = None
        try:
            _refuse_if_served()
            if headless is None:
                headless = not os.environ.get("DISPLAY")
            if headless:
                xvfb = Xvfb()
            version = audacity_version(exe)
            registry = profile / ".config" / "audacity" / "pluginregistry.cfg"
            if not registry.is_file() or registry.stat().st_size == 0:
                _warm_up(exe, profile, module=module, version=version, display=xvfb.display if xvfb else None)
            write_profile(profile, module=module, version=version)
            args = [exe] + ([str(project)] if project else [])
            proc = _spawn(args, profile, display=xvfb.display if xvfb else None, keep=keep_running)
            try:
                client = PipeClient(timeout_s=command_timeout_s).connect(
                    timeout_s=timeout_s, alive=lambda: proc.poll() is None)
            except BaseException:
                terminate(proc)
                raise
        except BaseException:
            if xvfb is not None:
                xvfb.stop()
            _release_lock(lock)
            raise
        startup = time.perf_counter() - t0
        log.info("Audacity started in %.2f s (profile %s)", startup, profile)
        app = cls(client, proc=proc, xvfb=xvfb, lock=lock, profile=profile, startup_s=startup)
        app._start_kwargs = dict(profile=profile, timeout_s=timeout_s, command_timeout_s=command_timeout_s,
                                 binary=binary, headless=headless, keep_running=keep_running)
        return app

    def restart(self) -> Audacity:
        """Stop this Audacity (what is left of it after a crash) and start a fresh one in its place,
        with the same profile and options, on a new :attr:`client` (its project is empty). Only an
        Audacity started here can be restarted; an attached one raises :class:`AudacityError`."""
        if self._start_kwargs is None:
            raise AudacityError("this Audacity was not started by covermill; restart it yourself and attach again")
        kwargs = self._start_kwargs
        self.stop()
        fresh = type(self).start(**kwargs)
        self.client, self.proc, self.xvfb, self._lock = fresh.client, fresh.proc, fresh.xvfb, fresh._lock
        self.profile, self.startup_s, self._start_kwargs = fresh.profile, fresh.startup_s, fresh._start_kwargs
        self._spawned_at = fresh._spawned_at
        self.client.alive = self.alive
        return self

    def alive(self) -> bool:
        """Not known to be gone: an attached Audacity, or ours still running and not crashed."""
        return self.proc is None or (self.proc.poll() is None and not self.crash_report())

    def crash_report(self) -> Path | None:
        """The crash report Audacity (wxWidgets) wrote for our process, if it crashed: a folder
        ``Audacity_dbgrpt-<pid>-<time>`` in the temporary folder, written before the process exits
        or, under Xvfb, hangs in its crash reporter."""
        if self.proc is None:
            return None
        for folder in Path(tempfile.gettempdir()).glob(f"Audacity_dbgrpt-{self.proc.pid}-*"):
            with contextlib.suppress(OSError):
                if folder.stat().st_mtime >= self._spawned_at - 1.0:  # not an older process with the same pid
                    return folder
        return None

    def stop(self) -> None:
        """Close the pipes; stop Audacity and Xvfb if they were started here (attached ones are left running)."""
        self.client.close()
        if self.proc is not None:
            terminate(self.proc)
            self.proc = None
        if self.xvfb is not None:
            self.xvfb.stop()
            self.xvfb = None
        if self._lock is not None:
            _release_lock(self._lock)
            self._lock = None
        if self.profile is not None:
            shutil.rmtree(self.profile / "tmp", ignore_errors=True)

    def __enter__(self) -> Audacity:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _env(profile: Path, display: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env.update(HOME=str(profile), XDG_CONFIG_HOME=str(profile / ".config"),
               XDG_DATA_HOME=str(profile / ".local" / "share"), XDG_CACHE_HOME=str(profile / ".cache"))
    if display:
        env["DISPLAY"] = display
        env.pop("WAYLAND_DISPLAY", None)
    return env


def _spawn(args: list[str], profile: Path, *, display: str | None, keep: bool = False) -> subprocess.Popen:
    log_path = profile / "audacity.log"
    with open(log_path, "ab") as log_file:
        return subprocess.Popen(args, env=_env(profile, display), cwd=profile, stdin=subprocess.DEVNULL,
                                stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=None if keep else die_with_parent)


def _warm_up(exe: str, profile: Path, *, module: Path, version, display: str | None, timeout_s: float = 60.0) -> None:
    """First start of a fresh profile: let Audacity write its plug-in registry, then stop it."""
    write_profile(profile, module=module, version=version)
    registry = profile / ".config" / "audacity" / "pluginregistry.cfg"
    log.info("first start of Audacity profile %s: registering plug-ins", profile)
    proc = _spawn([exe], profile, display=display)
    try:
        deadline = time.monotonic() + timeout_s
        while not (registry.is_file() and registry.stat().st_size > 0):
            if time.monotonic() > deadline:
                raise AudacityError(f"Audacity did not write {registry} within {timeout_s:g} s on its first start")
            time.sleep(0.1)
        time.sleep(1.0)  # let it finish writing
    finally:
        terminate(proc)


def private_dir() -> Path:
    """A folder only this user can enter, for covermill's Audacity lock: ``$XDG_RUNTIME_DIR/covermill``
    (or the user cache folder's ``run/``), created ``0700``; refused if it is a link, another
    user's, or open to others."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) if runtime and Path(runtime).is_absolute() else Path(platformdirs.user_cache_dir("covermill"))
    folder = base / ("covermill" if runtime else "run")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = os.lstat(folder)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise AudacityError(f"{folder}: must be a folder of this user that nobody else can open (mode 0700); "
                            "remove it or fix it with chmod 700")
    return folder


def _lock_path() -> Path:
    return private_dir() / "audacity.lock"


def _take_lock(timeout_s: float = 120.0):
    path = _lock_path()
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise AudacityError(f"{path}: cannot open the Audacity lock ({exc.strerror}); remove it") from None
    fh = os.fdopen(fd, "a")
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid():
        fh.close()
        raise AudacityError(f"{path}: is not this user's lock file; remove it")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fh
        except BlockingIOError:
            if time.monotonic() > deadline:
                fh.close()
                raise AudacityError(f"another covermill process has been using Audacity for {timeout_s:g} s "
                                    f"(lock {path}); try again later") from None
            time.sleep(0.2)


def _release_lock(fh) -> None:
    with contextlib.suppress(OSError):
        fcntl.flock(fh, fcntl.LOCK_UN)
    fh.close()


def _refuse_if_served() -> None:
    """An Audacity already reads the command pipe: a second one could not be scripted."""
    to_path, _ = pipe_paths()
    if not check_pipe(to_path):
        return
    try:
        fd = os.open(to_path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return
    os.close(fd)
    raise AudacityError(f"an Audacity is already running and serving {to_path}; close it, or attach to it "
                        "instead of starting another")
