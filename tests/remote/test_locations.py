"""Locations as URLs (issue 20): parsing, redaction, and publishing to real S3 and SFTP endpoints on loopback."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from covermill.cli import main
from covermill.errors import ParameterError, StorageError
from covermill.locations import Location, fetch_to, is_done, list_audio, publish, read_text, redact, write_text

from .conftest import CuttingProxy


def test_paths_and_urls_parse_to_locations(tmp_path):
    local = Location.parse(tmp_path / "x")
    assert not local.is_remote and local.path == str(tmp_path / "x") and local.url == str(tmp_path / "x")
    assert Location.parse(f"file://{tmp_path}/x") == local
    s3loc = Location.parse("s3://bucket/covers/")
    assert (s3loc.protocol, s3loc.path, s3loc.url) == ("s3", "bucket/covers", "s3://bucket/covers")
    assert s3loc.join("a b", "fast/").url == "s3://bucket/covers/a b/fast"
    ssh = Location.parse("sftp://me@host:2222/srv/songs")
    assert (ssh.prefix, ssh.path, ssh.name) == ("sftp://me@host:2222", "/srv/songs", "songs")
    assert Location.parse("s3://b/what?.wav#1").path == "b/what?.wav#1"  # file names may hold '?' and '#'
    assert ssh.contains(ssh.join("x/y.wav")) and not ssh.contains(Location.parse("sftp://me@other:2222/srv/songs"))


@pytest.mark.parametrize("bad, match", [("nosuch://b/x", "unknown storage protocol"), ("s3:///x", "name a bucket"),
                                        ("sftp:///x", "name a host"), ("sftp://h?x/y", "host part"),
                                        ("file://otherhost/x", "sftp://")])
def test_bad_urls_are_one_line(bad, match):
    with pytest.raises(ParameterError, match=match):
        Location.parse(bad)


def test_a_password_in_a_url_is_refused_and_never_repeated(tmp_path):
    with pytest.raises(ParameterError) as err:
        Location.parse("sftp://me:hunter2@host/srv/songs")
    assert "hunter2" not in str(err.value) and "me:***@host" in str(err.value) and "SSH key" in str(err.value)
    assert redact("failed: sftp://me:hunter2@h:22/x and s3://k:s3cr3t@b/y") == \
        "failed: sftp://me:***@h:22/x and s3://k:***@b/y"
    for args in (["render", "sftp://me:hunter2@host/a.wav", "-o", str(tmp_path / "o")],
                 ["batch", str(tmp_path), "-r", "pop_to_jazz", "-o", "s3://me:hunter2@bucket/out"],
                 ["stems", str(tmp_path / "a.wav"), "-o", str(tmp_path), "--cache-dir", "sftp://u:hunter2@h/c"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code != 0 and "hunter2" not in result.output and "Traceback" not in result.output
        assert "password in a URL" in result.output


def _render_like(folder: Path, *, midi: bool) -> Path:
    (folder / "stems").mkdir(parents=True)
    (folder / "cover.wav").write_bytes(b"RIFF" + bytes(2000))
    (folder / "stems" / "bass.wav").write_bytes(b"RIFF" + bytes(100))
    (folder / "stems" / "odd ?#.wav").write_bytes(b"RIFF")  # '?' and '#' are file name characters
    if midi:
        (folder / "midi").mkdir()
        (folder / "midi" / "bass.mid").write_bytes(b"MThd")
    (folder / "qa.json").write_text(json.dumps({"ok": midi}))
    return folder


@pytest.fixture(params=["s3", "sftp"])
def store(request, tmp_path):
    """A writable remote folder on a real S3 or SFTP endpoint on loopback."""
    if request.param == "s3":
        server = request.getfixturevalue("s3")
        return Location.parse(f"s3://{server.bucket()}/covers")
    server = request.getfixturevalue("sftp")
    return Location.parse(server.url(server.root / tmp_path.name / "covers"))


def test_publish_uploads_qa_json_last_and_leaves_one_render(store, tmp_path):
    out = store.join("song", "fast")
    assert not is_done(out)
    order = publish(_render_like(tmp_path / "r1", midi=True), out, managed=("cover.wav", "stems/", "midi/", "qa.json"))
    assert order[-1] == "qa.json" and is_done(out)
    assert list_audio(store) == ["song/fast/cover.wav", "song/fast/stems/bass.wav", "song/fast/stems/odd ?#.wav"]
    assert fetch_to(out.join("stems", "odd ?#.wav"), tmp_path).read_bytes() == b"RIFF"
    publish(_render_like(tmp_path / "r2", midi=False), out, managed=("cover.wav", "stems/", "midi/", "qa.json"))
    assert json.loads(read_text(out.join("qa.json"))) == {"ok": False}
    assert not out.fs.exists(out.join("midi", "bass.mid").path)  # the earlier render's file that this one lacks
    got = fetch_to(out.join("cover.wav"), tmp_path)
    assert got.read_bytes() == (tmp_path / "r2" / "cover.wav").read_bytes()
    write_text(store.join("manifest.jsonl"), "{}\n")
    assert read_text(store.join("manifest.jsonl")) == "{}\n" and read_text(store.join("none.txt")) is None


def test_qa_json_is_the_last_put_s3_sees(s3, tmp_path):
    out = Location.parse(f"s3://{s3.bucket()}/o")
    publish(_render_like(tmp_path / "r", midi=True), out)
    puts = [r for r in s3.requests if r.startswith("PUT ") and "/o/" in r]
    assert len(puts) == 5 and puts[-1].endswith("/o/qa.json")


def test_storage_failures_are_one_line_each(s3, sftp, monkeypatch, tmp_path):
    with pytest.raises(StorageError, match="the bucket 'no-such-bucket' does not exist"):
        publish(_render_like(tmp_path / "a", midi=False), Location.parse("s3://no-such-bucket/x"))
    with pytest.raises(StorageError, match="listing the songs: the bucket 'no-such-bucket' does not exist"):
        list_audio(Location.parse("s3://no-such-bucket/songs"))
    with pytest.raises(StorageError, match="is not a folder"):
        list_audio(Location.parse(f"s3://{s3.bucket()}/empty"))
    with pytest.raises(StorageError, match="no such file or folder"):
        fetch_to(Location.parse(f"s3://{s3.bucket()}/gone.wav"), tmp_path)
    readonly = Location.parse(sftp.url(sftp.root / "ro", readonly=True))
    with pytest.raises(StorageError, match="permission denied"):
        publish(_render_like(tmp_path / "b", midi=False), readonly)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    import fsspec

    fsspec.get_filesystem_class("s3").clear_instance_cache()
    with pytest.raises(StorageError, match="no credentials for s3://; set AWS_ACCESS_KEY_ID"):
        list_audio(Location.parse("s3://any-bucket/songs"))


def test_a_connection_cut_mid_upload_never_passes_for_done(s3, monkeypatch, tmp_path):
    import fsspec.config

    bucket = s3.bucket()
    host, port = s3.endpoint.removeprefix("http://").split(":")
    proxy = CuttingProxy((host, int(port)), cut_after=1500)  # the 2 kB cover.wav never gets through
    monkeypatch.setitem(fsspec.config.conf, "s3", {"client_kwargs": {"endpoint_url": f"http://127.0.0.1:{proxy.port}"},
                                                   "config_kwargs": {"retries": {"max_attempts": 1}}})
    try:
        out = Location.parse(f"s3://{bucket}/song/fast")
        with pytest.raises(StorageError, match="uploading the render failed .*check the network"):
            publish(_render_like(tmp_path / "r", midi=False), out)
    finally:
        proxy.close()
    assert proxy.cuts >= 1
    monkeypatch.delitem(fsspec.config.conf, "s3")
    assert not is_done(Location.parse(f"s3://{bucket}/song/fast"))


def test_a_stem_cache_on_s3_is_shared_by_processes_with_their_own_mirrors(s3, monkeypatch, tmp_path):
    import numpy as np

    from covermill.stems.cache import StemCache

    url = f"s3://{s3.bucket()}/stems"
    stems = {name: np.full((2, 100), i, np.float32) for i, name in enumerate(("vocals", "drums", "bass", "other"))}
    monkeypatch.setenv("COVERMILL_CACHE_DIR", str(tmp_path / "worker1"))
    first = StemCache(url)
    first.put("ab" * 32, stems)
    assert first.root.is_relative_to(tmp_path / "worker1")
    monkeypatch.setenv("COVERMILL_CACHE_DIR", str(tmp_path / "worker2"))  # another worker: an empty mirror
    second = StemCache(url)
    assert not second.path("ab" * 32).is_file() and second.has("ab" * 32)
    got = second.get("ab" * 32, shape=(2, 100))
    assert got is not None and all(np.array_equal(got[n], stems[n]) for n in stems)
    # a damaged entry in the store is not used, and is replaced by the next put
    remote = f"{url.removeprefix('s3://')}/cd/{'cd' * 32}.npz"
    s3_fs = first.remote.fs
    s3_fs.pipe_file(remote, b"PK\x03\x04 not a zip")
    assert second.get("cd" * 32) is None
    second.put("cd" * 32, stems)
    assert StemCache(url).get("cd" * 32) is not None and len(s3_fs.cat_file(remote)) > 100
