"""Where songs, covers and the stem cache live: a local path or an fsspec URL.

A :class:`Location` is parsed once from what the user typed: a plain path (as always), a
``file://`` URL (the same local path), or a remote URL that fsspec knows (``s3://bucket/prefix``,
``sftp://user@host:port/path``, ``gs://...``). Remote locations are reached through fsspec only,
the same code path whatever the store; the backends are the ``remote`` extra
(``pip install 'covermill[remote]'``: s3fs, paramiko).

Credentials never come from a URL or a recipe: they come from the environment of the process
that touches the store (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_PROFILE``,
``AWS_ENDPOINT_URL`` for a non-AWS endpoint; SSH keys from ``ssh-agent`` or ``~/.ssh``; any
fsspec option through fsspec's own configuration, e.g. ``FSSPEC_SFTP_KEY_FILENAME``). A URL with
a password (``sftp://user:secret@host``) is refused with a message that does not repeat it, and
:func:`redact` scrubs ``user:password@`` from any text that goes to a log, the manifest or an error.

:func:`publish` uploads a finished output folder: every file first, ``qa.json`` last (and removed
first when the folder is rendered again), so an output counts as done only when its ``qa.json``
is in place; :func:`is_done` is that check. :func:`fetch_to` downloads a song into a scratch
folder. Failures become one :class:`~covermill.errors.StorageError` line (no credentials, no such
bucket, permission denied, a network error) naming the location, never its credentials.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from .errors import BackendUnavailableError, CovermillError, ParameterError, StorageError
from .fsutil import is_audio_entry

__all__ = ["Location", "check_writable", "fetch_to", "is_done", "is_url", "list_audio", "publish", "put_atomic", "read_text", "redact",
           "storage_errors", "write_text"]

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")
_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^/@\s:]*):[^/@\s]*@")
#: stores whose single-object writes are atomic (an object appears whole or not at all)
_OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "memory"})
#: the pip extra per protocol, for the "not installed" line
_PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "sftp": "paramiko", "ssh": "paramiko", "gs": "gcsfs", "gcs": "gcsfs"}


def is_url(value: str | os.PathLike) -> bool:
    """Whether ``value`` is written as a URL (``scheme://...``), not a plain path."""
    return isinstance(value, str) and bool(_URL.match(value))


def redact(text: str) -> str:
    """``text`` with every ``scheme://user:password@`` written as ``scheme://user:***@``."""
    return _CREDENTIALS.sub(r"\1\2:***@", str(text))


@dataclass(frozen=True)
class Location:
    """A file or folder: local (``protocol == ""``, ``path`` an OS path) or remote (``path`` the
    fsspec path inside its store, ``prefix`` what goes before it in the URL)."""

    protocol: str
    prefix: str  # "s3://", "sftp://user@host:22"; "" when local
    path: str

    @classmethod
    def parse(cls, value: str | os.PathLike | Location) -> Location:
        """A :class:`Location` from a path or URL (``file://`` URLs become local paths)."""
        if isinstance(value, Location):
            return value
        if not is_url(value):
            return cls("", "", os.fspath(value))
        text = str(value)
        if any(c in text for c in "\n\r\x00"):
            raise ParameterError(f"{redact(text)!r}: a URL with a line break or NUL; check the location")
        # scheme://netloc/path, split by hand: "?" and "#" are ordinary characters of a file name here
        scheme, rest = text.split("://", 1)
        netloc, slash, path = rest.partition("/")
        path = slash + path
        parts = urlsplit(f"{scheme}://{netloc}")
        protocol = scheme.lower()
        if parts.password is not None:
            raise ParameterError(f"{redact(text)}: a password in a URL would show in logs, `ps` and shell history; "
                                 "remove it and use an SSH key (ssh-agent, ~/.ssh) or fsspec's configuration "
                                 f"(FSSPEC_{protocol.upper()}_PASSWORD) instead")
        if parts.query or parts.fragment:
            raise ParameterError(f"{redact(text)}: '?' or '#' in the host part; check the location")
        if protocol == "file":
            if parts.netloc not in ("", "localhost"):
                raise ParameterError(f"{text}: a file:// URL names a local path (file:///path); use sftp:// for "
                                     "another machine")
            return cls("", "", path or "/")
        _known(protocol, text)
        path = path.rstrip("/")
        if protocol in _OBJECT_STORES:  # the bucket is the first part of the path
            bucket_path = (parts.netloc + path).strip("/")
            if not parts.netloc:
                raise ParameterError(f"{text}: name a bucket ({protocol}://BUCKET/PREFIX)")
            return cls(protocol, f"{protocol}://", bucket_path)
        if not parts.hostname:
            raise ParameterError(f"{text}: name a host ({protocol}://user@host:port/path)")
        return cls(protocol, f"{protocol}://{parts.netloc}", path or "/")

    @property
    def is_remote(self) -> bool:
        return bool(self.protocol)

    @property
    def url(self) -> str:
        """The location as the user would write it (never with a password: those are refused)."""
        return self.prefix + self.path if self.is_remote else self.path

    def __str__(self) -> str:
        return self.url

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name if self.is_remote else Path(self.path).name

    def join(self, *parts: str) -> Location:
        """This location with ``parts`` (relative POSIX paths) appended."""
        if not self.is_remote:
            return Location("", "", str(Path(self.path, *parts)))
        rel = "/".join(p.strip("/") for p in parts if p and p.strip("/"))
        return Location(self.protocol, self.prefix, f"{self.path.rstrip('/')}/{rel}" if rel else self.path)

    def contains(self, other: Location) -> bool:
        """Whether ``other`` is this location or inside it (same store)."""
        if self.is_remote != other.is_remote or self.prefix != other.prefix:
            return False
        if not self.is_remote:
            try:
                Path(other.path).resolve().relative_to(Path(self.path).resolve())
                return True
            except ValueError:
                return False
        base = self.path.rstrip("/")
        return other.path == base or other.path.startswith(base + "/")

    @property
    def fs(self):
        """The fsspec filesystem of this location (instances are cached by fsspec)."""
        if not self.is_remote:
            from fsspec.implementations.local import LocalFileSystem

            return LocalFileSystem()
        import fsspec

        # the store's options come from the URL's host part only (fsspec would cut a path at '?')
        root = self.prefix + (self.path.split("/", 1)[0] if self.protocol in _OBJECT_STORES else "/")
        try:
            fs, _ = fsspec.core.url_to_fs(root)
        except ImportError as exc:
            raise _not_installed(self.protocol, exc) from None
        except Exception as exc:
            raise storage_error(exc, self, "connecting") from None
        return fs


def _known(protocol: str, text: str) -> None:
    from fsspec.registry import known_implementations, registry

    if protocol not in registry and protocol not in known_implementations:
        raise ParameterError(f"{redact(text)}: unknown storage protocol {protocol!r}; use a local path, file://, "
                             "s3://, sftp:// or another protocol fsspec knows")


def _not_installed(protocol: str, exc: BaseException) -> BackendUnavailableError:
    package = _PACKAGES.get(protocol, f"the fsspec backend for {protocol}://")
    return BackendUnavailableError(f"{protocol}:// locations need {package}: pip install 'covermill[remote]' "
                                   f"({type(exc).__name__}: {redact(str(exc))})")


def storage_error(exc: BaseException, loc: Location, doing: str) -> CovermillError:
    """One line for ``exc`` raised while ``doing`` something at ``loc`` (credentials never shown)."""
    if isinstance(exc, CovermillError):
        return exc
    name = type(exc).__name__
    text = redact(str(exc))
    where = f"{loc}: {doing}"
    if name in ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"):
        return StorageError(f"{where}: no credentials for {loc.protocol}://; set AWS_ACCESS_KEY_ID and "
                            "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in the environment of the client and of "
                            "every worker")
    if name in ("AuthenticationException", "BadAuthenticationType", "PasswordRequiredException") or (
            name == "SSHException" and "authentication" in text.lower()):
        return StorageError(f"{where}: the server refused the login ({text}); give this machine an SSH key "
                            "(ssh-agent, ~/.ssh/id_*, or FSSPEC_SFTP_KEY_FILENAME)")
    if isinstance(exc, ImportError):
        return _not_installed(loc.protocol, exc)
    if isinstance(exc, FileNotFoundError):
        if "bucket does not exist" in text.lower():
            bucket = loc.path.split("/", 1)[0]
            return StorageError(f"{where}: the bucket {bucket!r} does not exist; create it or fix the URL")
        return StorageError(f"{where}: no such file or folder")
    if isinstance(exc, PermissionError):
        return StorageError(f"{where}: permission denied ({text or 'read-only'}); choose a location these "
                            "credentials may write, or grant them access")
    return StorageError(f"{where} failed ({name}: {text}); check the network and the endpoint, then run again "
                        "(--retry-failed)")


@contextlib.contextmanager
def storage_errors(loc: Location, doing: str) -> Iterator[None]:
    """Turn whatever the store raises inside the block into one :class:`StorageError` line."""
    try:
        yield
    except CovermillError:
        raise
    except Exception as exc:
        raise storage_error(exc, loc, doing) from None


def list_audio(folder: Location, *, exclude: Location | None = None) -> list[str]:
    """Relative POSIX paths of the audio files under a remote ``folder`` (sorted, hidden ones
    skipped, nothing under ``exclude``)."""
    with storage_errors(folder, "listing the songs"):
        fs = folder.fs
        if not fs.isdir(folder.path):
            bucket = folder.path.split("/", 1)[0]
            if folder.protocol in _OBJECT_STORES and not fs.exists(bucket):
                raise StorageError(f"{folder}: listing the songs: the bucket {bucket!r} does not exist; create it "
                                   "or fix the URL")
            raise StorageError(f"{folder}: is not a folder (or holds no files); pass a folder of songs")
        found = fs.find(folder.path)
    base = folder.path.rstrip("/")
    songs = []
    for path in found:
        rel = str(path)[len(base):].lstrip("/")
        if not is_audio_entry(PurePosixPath(rel)):
            continue
        if exclude is not None and exclude.contains(folder.join(rel)):
            continue
        songs.append(rel)
    return sorted(songs)


def fetch_to(song: Location, local_dir: str | os.PathLike) -> Path:
    """Download ``song`` into ``local_dir`` (keeping its file name); a local song is returned as is."""
    if not song.is_remote:
        return Path(song.path)
    target = Path(local_dir) / song.name
    with storage_errors(song, "downloading the song"):
        song.fs.get_file(song.path, str(target))
    return target


def read_text(loc: Location) -> str | None:
    """The text of ``loc``, or ``None`` when there is no such file."""
    if not loc.is_remote:
        p = Path(loc.path)
        return p.read_text(encoding="utf-8", errors="replace") if p.is_file() else None
    with storage_errors(loc, "reading"):
        try:
            return loc.fs.cat_file(loc.path).decode("utf-8", "replace")
        except FileNotFoundError as exc:
            if "bucket" in str(exc).lower():
                raise
            return None


def write_text(loc: Location, text: str) -> None:
    """Write ``text`` to ``loc`` so that readers see the old file or the new one, never half."""
    if not loc.is_remote:
        from .fsutil import write_text_atomic

        write_text_atomic(loc.path, text)
        return
    with storage_errors(loc, "writing"):
        put_atomic(loc, data=text.encode("utf-8"))


def put_atomic(loc: Location, *, data: bytes | None = None, local: str | os.PathLike | None = None) -> None:
    """Upload ``data`` (or the file ``local``) to the remote ``loc`` so that it appears whole: one PUT
    on object stores, else a hidden ``.part`` file renamed into place."""
    fs = loc.fs
    if loc.protocol in _OBJECT_STORES:  # one PUT: the object appears whole or not at all
        if data is not None:
            fs.pipe_file(loc.path, data)
        else:
            fs.put_file(str(local), loc.path)
        return
    parent = str(PurePosixPath(loc.path).parent)
    tmp = f"{parent}/.{PurePosixPath(loc.path).name}.{uuid.uuid4().hex[:8]}.part"
    fs.makedirs(parent, exist_ok=True)
    if data is not None:
        fs.pipe_file(tmp, data)
    else:
        fs.put_file(str(local), tmp)
    try:
        if fs.exists(loc.path):
            fs.rm_file(loc.path)
        fs.mv(tmp, loc.path)
    except BaseException:
        with contextlib.suppress(Exception):
            fs.rm_file(tmp)
        raise


def check_writable(out: Location) -> None:
    """Write and remove a small hidden file in ``out``: no credentials, no bucket, a read-only
    location fail here, before a render spends its time, in one :class:`StorageError` line."""
    if not out.is_remote:
        return
    probe = out.join(f".covermill-probe-{uuid.uuid4().hex[:8]}")
    with storage_errors(out, "checking that it can be written"):
        put_atomic(probe, data=b"")
        out.fs.rm_file(probe.path)


def is_done(out: Location, *, last: str = "qa.json") -> bool:
    """Whether the output folder ``out`` holds a finished render (its ``last`` file is in place)."""
    marker = out.join(last)
    if not out.is_remote:
        return Path(marker.path).is_file()
    with storage_errors(out, "checking for a finished render"):
        return bool(out.fs.exists(marker.path))


def publish(local_dir: str | os.PathLike, out: Location, *, last: str = "qa.json",
            managed: Iterable[str] = ()) -> list[str]:
    """Upload every file under ``local_dir`` into ``out``, ``last`` at the very end.

    ``out``'s old ``last`` is removed first, so an interrupted upload never passes for a finished
    render; files under ``out`` whose first path part is one of ``managed`` (the names a render
    writes) and that this upload does not replace are removed before ``last`` goes up: ``out`` then
    holds one render, never a mix of two. Returns the relative paths uploaded, in order."""
    root = Path(local_dir)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    ordered = [f for f in files if f != last] + ([last] if last in files else [])
    managed = {m.rstrip("/") for m in managed}
    with storage_errors(out, "uploading the render"):
        fs = out.fs
        marker = out.join(last) if last else None
        if marker is not None and fs.exists(marker.path):
            fs.rm_file(marker.path)
        old = [str(p) for p in fs.find(out.path)] if managed else []
        base = out.path.rstrip("/")
        for rel in ordered:
            target = out.join(rel)
            if last and rel == last:
                for path in old:
                    rel_old = path[len(base):].lstrip("/")
                    if rel_old.split("/", 1)[0] in managed and rel_old not in files:
                        fs.rm_file(path)
                put_atomic(target, local=root / rel)
            elif out.protocol in _OBJECT_STORES:
                fs.put_file(str(root / rel), target.path)
            else:
                fs.makedirs(str(PurePosixPath(target.path).parent), exist_ok=True)
                fs.put_file(str(root / rel), target.path)
    return ordered
