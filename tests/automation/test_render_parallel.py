"""A render gives the same result whether its independent stages run side by side or in turn."""

import json

import numpy as np
import soundfile as sf
from conftest import SR, song

from covermill.automation.pipeline import render
from covermill.recipes import load_recipe


def test_parallel_and_serial_renders_are_identical(tmp_path):
    path = tmp_path / "song.wav"
    sf.write(path, song(bars=8).T, SR)
    recipe = load_recipe("pop_to_jazz")
    results = {}
    for parallel in (True, False):
        out = tmp_path / f"out_{parallel}"
        render(path, recipe, out, cache_dir=tmp_path / f"cache_{parallel}", parallel=parallel)
        qa = json.loads((out / "qa.json").read_text())
        qa.pop("stages")
        results[parallel] = (sf.read(out / "cover.wav", dtype="float32")[0], qa)
    (a, qa_a), (b, qa_b) = results[True], results[False]
    assert a.shape == b.shape and np.array_equal(a, b)
    assert qa_a == qa_b
    assert qa_a["cover"]["qmax"] is not None and qa_a["loudness_lufs"] is not None
