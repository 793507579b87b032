"""Real storage endpoints on loopback for the tests: S3 (moto's standalone server) and SFTP
(Debian's OpenSSH server, started as this user with keys made here), plus a TCP proxy that cuts
connections (a network error in the middle of an upload).

Fixtures ``s3`` and ``sftp`` (per test) over session-wide servers. Both set the
environment the way a user would (``AWS_*`` variables, fsspec's ``FSSPEC_SFTP`` configuration),
so that ``dask worker`` processes started with ``os.environ`` reach the same endpoints.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"
#: the S3 secret key of the tests: distinctive, so that a test can check it never shows
SECRET = "s3cr3t-n3ver-sh0wn"


def _clear_fs_caches() -> None:
    import fsspec

    for name in ("s3", "sftp"):
        try:
            fsspec.get_filesystem_class(name).clear_instance_cache()
        except ImportError:
            pass


@dataclass
class S3:
    endpoint: str
    requests: list[str] = field(default_factory=list)  # "PUT /bucket/key" in the order moto served them

    def bucket(self) -> str:
        """A new empty bucket's name."""
        import fsspec

        name = f"b-{uuid.uuid4().hex[:12]}"
        fsspec.filesystem("s3").mkdir(name)
        return name


class _RequestLog(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__()
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if '"' in msg:
            line = msg.split('"')[1]  # 'PUT /bucket/key HTTP/1.1'
            self.sink.append(line.rsplit(" ", 1)[0])


@pytest.fixture(scope="session")
def s3_server():
    pytest.importorskip("s3fs", reason="the remote extra: pip install 'covermill[remote]'")
    server_mod = pytest.importorskip("moto.server", reason="tests need moto[server]")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    s3 = S3(endpoint=f"http://{host}:{port}")
    werkzeug = logging.getLogger("werkzeug")
    handler = _RequestLog(s3.requests)
    werkzeug.addHandler(handler)
    werkzeug.propagate = False
    werkzeug.setLevel(logging.INFO)
    try:
        yield s3
    finally:
        werkzeug.removeHandler(handler)
        server.stop()


@pytest.fixture
def s3(s3_server, monkeypatch):
    """moto's S3 on loopback, reached as a user would: credentials and endpoint from the environment."""
    for key, value in {"AWS_ENDPOINT_URL": s3_server.endpoint, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1",
                       "AWS_EC2_METADATA_DISABLED": "true", "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                       "AWS_CONFIG_FILE": os.devnull}.items():
        monkeypatch.setenv(key, value)
    _clear_fs_caches()
    s3_server.requests.clear()
    yield s3_server
    _clear_fs_caches()


@dataclass
class SFTP:
    host: str
    port: int
    readonly_port: int
    user: str
    options: dict
    root: Path  # a folder on "the server" (this machine) for the test's files

    def url(self, path: str | Path, *, readonly: bool = False) -> str:
        port = self.readonly_port if readonly else self.port
        return f"sftp://{self.user}@{self.host}:{port}{Path(path).as_posix()}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def sftp_server(tmp_path_factory):
    pytest.importorskip("paramiko", reason="the remote extra: pip install 'covermill[remote]'")
    if not os.access(SSHD, os.X_OK) or not shutil.which("ssh-keygen"):
        pytest.skip(f"{SSHD} or ssh-keygen is missing: apt-get install openssh-server (Makefile TEST_DEBS)")
    d = tmp_path_factory.mktemp("sshd")
    for key in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)], check=True)
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    (d / "authorized_keys").chmod(0o600)
    if os.geteuid() == 0 and not os.path.isdir("/run/sshd"):
        os.makedirs("/run/sshd", mode=0o755)  # sshd's privilege separation folder (made by its service normally)
    port, readonly_port = _free_port(), _free_port()
    (d / "sshd_config").write_text(
        f"HostKey {d / 'host_key'}\nListenAddress 127.0.0.1\nAuthorizedKeysFile {d / 'authorized_keys'}\n"
        "StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nPidFile none\n"
        "PermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n"
        f"Match LocalPort {readonly_port}\n  ForceCommand internal-sftp -R\n")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config"), "-p", str(port), "-p", str(readonly_port)],
                            stdout=subprocess.DEVNULL, stderr=open(d / "sshd.log", "wb"), start_new_session=True)
    deadline = time.time() + 20
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.skip(f"sshd could not start: {(d / 'sshd.log').read_text()[-300:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.skip("sshd did not listen within 20 s")
    options = {"key_filename": str(d / "client_key"), "look_for_keys": False, "allow_agent": False}
    root = tmp_path_factory.mktemp("sftp_root")
    try:
        yield SFTP("127.0.0.1", port, readonly_port, getpass.getuser(), options, root)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def sftp(sftp_server, monkeypatch):
    """OpenSSH's SFTP on loopback; the key is given as fsspec configuration (here and, through
    ``FSSPEC_SFTP``, to worker processes)."""
    import fsspec.config

    monkeypatch.setitem(fsspec.config.conf, "sftp", dict(sftp_server.options))
    monkeypatch.setenv("FSSPEC_SFTP", json.dumps(sftp_server.options))
    _clear_fs_caches()
    yield sftp_server
    _clear_fs_caches()


class CuttingProxy:
    """A TCP proxy to ``target`` that closes a connection once a client has sent more than
    ``cut_after`` bytes on it: a network failure in the middle of an upload."""

    def __init__(self, target: tuple[str, int], *, cut_after: int) -> None:
        self.target, self.cut_after = target, cut_after
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.cuts = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _pipe(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.target)
        sent = [0]

        def back() -> None:
            try:
                while data := upstream.recv(65536):
                    client.sendall(data)
            except OSError:
                pass

        threading.Thread(target=back, daemon=True).start()
        try:
            while data := client.recv(65536):
                sent[0] += len(data)
                if sent[0] > self.cut_after:
                    self.cuts += 1
                    break
                upstream.sendall(data)
        except OSError:
            pass
        for s in (client, upstream):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self.sock.close()
