"""`covermill models` and fetching on first use, against an HTTP server on loopback that serves a
tiny HTDemucs in demucs's published layout (files.txt, <name>.yaml, <root>/<sig>-<sha>.th)."""

import functools
import http.server
import shutil
import socket
import threading

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import SR, song

from covermill.cli import main
from covermill.errors import ModelLoadingError
from covermill.stems import models
from covermill.stems.demucs import DemucsSeparator

from .conftest import save_repo

pytest.importorskip("demucs")
pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.usefixtures("one_thread")]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The tiny model as the tests save it: ``abcd1234-<sha>.th`` + ``tiny.yaml``."""
    folder = tmp_path_factory.mktemp("built")
    return save_repo(folder), folder / "tiny.yaml"


def make_mirror(folder, built, *, corrupt=False):
    checkpoint, bag = built
    (folder / "tiny_models").mkdir(parents=True)
    data = bytearray(checkpoint.read_bytes())
    if corrupt:
        data[len(data) // 2] ^= 0xFF  # one flipped byte, same name, same size
    (folder / "tiny_models" / checkpoint.name).write_bytes(bytes(data))
    (folder / "files.txt").write_text(f"# tiny models\nroot: tiny_models/\n{checkpoint.name}\n")
    shutil.copy(bag, folder / "tiny.yaml")
    return folder


@pytest.fixture
def serve():
    servers = []

    def start(folder) -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_fetch_checks_the_checksum_places_atomically_and_loads(built, serve, tmp_path):
    url = serve(make_mirror(tmp_path / "mirror", built))
    dest = tmp_path / "models"
    events = []
    (path,) = models.fetch("tiny", dest=dest, base_url=url, progress=events.append)
    assert path == dest / built[0].name and path.read_bytes() == built[0].read_bytes()
    assert (dest / "tiny.yaml").read_text() == built[1].read_text()
    assert events[-1]["done"] == events[-1]["total"] == path.stat().st_size
    assert sorted(p.name for p in dest.iterdir()) == sorted([path.name, "tiny.yaml"])  # no temporary left
    assert [ok for _, ok, _ in models.verify("tiny", dest)] == [True]
    model = DemucsSeparator(model="tiny", model_dir=dest).load()
    assert list(model.sources) == ["drums", "bass", "other", "vocals"]


def test_a_corrupt_download_is_refused_and_nothing_is_placed(built, serve, tmp_path):
    url = serve(make_mirror(tmp_path / "mirror", built, corrupt=True))
    dest = tmp_path / "models"
    with pytest.raises(ModelLoadingError, match=r"SHA-256 starts with [0-9a-f]{8}, its name says") as info:
        models.fetch("tiny", dest=dest, base_url=url)
    assert "\n" not in str(info.value)
    assert list(dest.iterdir()) == []  # neither the checkpoint, nor the bag, nor a .part file


def test_offline_is_one_line(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ModelLoadingError, match=r"^cannot reach http://127\.0\.0\.1:\d+ .*offline\?") as info:
        models.fetch("tiny", dest=tmp_path / "models", base_url=f"http://user:s3cret@127.0.0.1:{port}/")
    assert "\n" not in str(info.value) and "s3cret" not in str(info.value)  # never the URL's credentials


def test_first_use_fetches_only_when_allowed(built, serve, tmp_path, monkeypatch):
    url = serve(make_mirror(tmp_path / "mirror", built))
    dest = tmp_path / "models"
    dest.mkdir()
    monkeypatch.setenv(models.URL_ENV, url)
    monkeypatch.delenv(models.FETCH_ENV, raising=False)
    with pytest.raises(ModelLoadingError, match="--fetch-models"):
        DemucsSeparator(model="tiny", model_dir=dest).load()
    assert list(dest.iterdir()) == []
    monkeypatch.setenv(models.FETCH_ENV, "1")
    parts = DemucsSeparator(model="tiny", model_dir=dest).separate(song(bars=1)[:, : SR], sr=SR)
    assert set(parts) >= {"drums", "bass", "other", "vocals"} and all(np.isfinite(p).all() for p in parts.values())
    assert (dest / built[0].name).is_file()


def test_cli_fetch_verify_list(built, serve, tmp_path):
    url = serve(make_mirror(tmp_path / "mirror", built))
    dest = tmp_path / "models"
    runner = CliRunner()
    res = runner.invoke(main, ["models", "fetch", "tiny", "--from", url, "--model-dir", str(dest), "-q"])
    assert res.exit_code == 0, res.output
    assert f"tiny: 1 checkpoint(s) in {dest}" in res.output
    res = runner.invoke(main, ["models", "list", "--model-dir", str(dest)])
    assert res.exit_code == 0 and any(line.startswith("tiny ") and str(dest) in line for line in res.output.splitlines())
    res = runner.invoke(main, ["models", "verify", "tiny", "--model-dir", str(dest)])
    assert res.exit_code == 0 and "ok:" in res.output and "checksum ok" in res.output
    checkpoint = dest / built[0].name
    data = bytearray(checkpoint.read_bytes())
    data[100] ^= 0xFF
    checkpoint.write_bytes(bytes(data))
    res = runner.invoke(main, ["models", "verify", "tiny", "--model-dir", str(dest)])
    assert res.exit_code == 1 and "BAD:" in res.output and "corrupt" in res.output
    res = runner.invoke(main, ["models", "verify", "nothing", "--model-dir", str(dest)])
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1 and "covermill models fetch" in res.output
