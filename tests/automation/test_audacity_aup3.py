"""Finding 14 of issue 18: a crafted project or an odd file name is one error line (no Audacity needed)."""

import sqlite3
import struct

import pytest

from covermill.automation.audacity.session import aup3_tracks
from covermill.errors import AudacityError


def _dict(*names: str) -> bytes:
    out = b"\x00\x01"
    for ident, name in enumerate(names, 1):
        out += b"\x0f" + struct.pack("<HH", ident, len(name)) + name.encode()
    return out


def _project(path, doc: bytes) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE project (id INTEGER PRIMARY KEY, dict BLOB, doc BLOB)")
        db.execute("INSERT INTO project VALUES (1, ?, ?)", (_dict("wavetrack", "name"), doc))


def _name(text: str) -> bytes:
    return b"\x03" + struct.pack("<Hi", 2, len(text)) + text.encode()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("doc", [
    b"\x01\x01\x00" + b"\x03" + struct.pack("<Hi", 2, -7),  # a string of length -7: the walk stood still
    b"\x01\x01\x00" + b"\x0b" + struct.pack("<i", -5),
    b"\x01\x01\x00" + b"\x03" + struct.pack("<Hi", 2, 10**9),  # past the end
    b"\x01\x01",  # truncated
    b"\x01\x01\x00" + b"\x03" + struct.pack("<Hi", 2, 2) + b"\xff\xfe",  # not UTF-8
])
def test_crafted_project_is_an_error_not_a_hang(tmp_path, doc):
    path = tmp_path / "session.aup3"
    _project(path, doc)
    with pytest.raises(AudacityError, match=r"session\.aup3: is not a readable Audacity project") as info:
        aup3_tracks(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["what?.aup3", "100%25 done.aup3", "take #2.aup3", "a?mode=rwc.aup3"])
def test_odd_file_names_never_reach_sqlites_uri_parser(tmp_path, name):
    path = tmp_path / name
    _project(path, b"\x01\x01\x00" + _name("vocals") + b"\x02\x01\x00")
    assert aup3_tracks(path) == ["vocals"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # nothing else created
