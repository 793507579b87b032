"""`covermill qa cover` and `covermill qa cliques` on synthesized songs written to files."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import melody, song, write

from covermill.cli import main

SR = 22050


def other_song(*, transpose: int = 0, bpm: float = 112.0, bars: int = 10) -> np.ndarray:
    roots = [62, 58, 53, 60, 62, 55, 58, 57]
    lead = melody([roots[i % 8] + 12 + transpose + (0, 3, 7, 10)[(i * 3 + j) % 4] for i in range(bars) for j in range(8)],
                  bpm=2 * bpm, sr=SR, harmonics=4)
    bass = melody([roots[i % 8] - 24 + transpose for i in range(bars) for _ in range(2)], bpm=bpm / 2, sr=SR, amp=0.3)
    n = min(len(lead), len(bass))
    return np.repeat((lead[:n] + bass[:n])[None], 2, axis=0)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COVERMILL_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("songs")
    return {
        "original": write(d / "original.wav", song(bars=12, seed=0, sr=SR), sr=SR),
        "cover": write(d / "cover.wav", song(bars=12, seed=0, sr=SR, transpose=3, bpm=100.0), sr=SR),
        "other": write(d / "other.wav", other_song(), sr=SR),
        "other_cover": write(d / "other_cover.wav", other_song(transpose=-2, bpm=130.0), sr=SR),
    }


def test_qa_cover_json(files, tmp_path):
    result = run("qa", "cover", files["original"], files["cover"], "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"is_cover", "qmax", "twodftm_distance", "threshold"} <= set(data)
    assert data["is_cover"] is True
    assert list((tmp_path / "cache" / "cover").glob("*.npz")), "features were not cached"
    other = json.loads(run("qa", "cover", files["original"], files["other"], "--json").output)
    assert other["is_cover"] is False and other["qmax"] < data["qmax"]


def test_qa_cover_text_and_errors(files, tmp_path):
    result = run("qa", "cover", files["original"], files["cover"], "--no-cache")
    assert result.exit_code == 0 and "is a cover of" in result.output and "qmax" in result.output
    result = run("qa", "cover", files["original"], tmp_path / "missing.wav")
    assert result.exit_code == 1 and "missing.wav: no such file" in result.output


def test_qa_cliques(files, tmp_path):
    root = tmp_path / "cliques"
    for clique, names in {"first": ["original", "cover"], "second": ["other", "other_cover"]}.items():
        (root / clique).mkdir(parents=True)
        for n in names:
            (root / clique / f"{n}.wav").write_bytes(files[n].read_bytes())
    result = run("qa", "cliques", root, "-k", "1", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["n_tracks"], data["n_cliques"]) == (4, 2)
    assert data["accuracy"] == 1.0 and data["map"] == 1.0
    bad = run("qa", "cliques", root / "first")
    assert bad.exit_code == 1 and "at least 2 clique sub-folders" in bad.output
