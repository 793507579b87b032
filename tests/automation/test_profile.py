"""Taste profiles with the shipped model: real features of synthesized and shipped audio."""

import json

import numpy as np
import pytest
from conftest import DEMO_SONG, SR, song, write

from covermill.analysis.taste import DEFAULT_MODEL, genre_probabilities, load_model, middle_excerpt
from covermill.audio import load_audio
from covermill.automation.profile import profile_folder, suggest_recipes


def test_shipped_model_loads_and_knows_gtzan_genres():
    assert DEFAULT_MODEL.is_file(), "run `make models`"
    model = load_model()
    assert list(model.classes_) == ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop",
                                    "reggae", "rock"]


def test_demo_song_is_pop():
    probs = genre_probabilities(load_audio(DEMO_SONG), sr=SR)
    assert abs(sum(probs.values()) - 1.0) < 1e-3
    assert next(iter(probs)) == "pop"


def test_middle_excerpt():
    y = np.arange(100, dtype=np.float32)[None]
    assert middle_excerpt(y, sr=1, seconds=10).tolist() == [list(range(45, 55))]


def test_suggestions_follow_the_top_genres():
    names = [s["recipe"] for s in suggest_recipes({"jazz": 0.5, "classical": 0.3, "pop": 0.1, "rock": 0.1})]
    assert names[:2] == ["bossa_nova", "pop_to_jazz"] or names[0] in ("bossa_nova", "pop_to_jazz")
    assert "orchestral" in names and "reggae" not in names


def test_profile_folder_with_a_bad_file_and_cache(tmp_path):
    folder = tmp_path / "music"
    folder.mkdir()
    write(folder / "a.wav", song(bars=6, seed=1))
    write(folder / "b.flac", song(bars=6, seed=2, transpose=5))
    (folder / "broken.wav").write_bytes(b"RIFF....not audio")
    cache = tmp_path / "cache"
    out = tmp_path / "profile"
    result = profile_folder(folder, out, cache_dir=cache)
    data = json.loads((out / "profile.json").read_text())
    assert len(data["songs"]) == 2 and list(data["skipped"]) == [str(folder / "broken.wav")]
    assert abs(sum(data["distribution"].values()) - 1.0) < 1e-2
    assert sum(data["top_genre_counts"].values()) == 2
    assert (out / "genres.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    entries = sorted(cache.glob("*.json"))
    assert len(entries) == 2
    # a corrupt cache entry is recomputed, the others are reused as they are
    entries[0].write_text("{not json")
    again = profile_folder(folder, out, cache_dir=cache)
    assert again.distribution == pytest.approx(result.distribution)
    json.loads(entries[0].read_text())
