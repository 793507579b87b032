"""Finding 19 of issue 18: a recipe's files resolve beside the recipe, never in the current folder."""

import numpy as np
import pytest
import soundfile as sf

from covermill.automation.mixer import process_stem
from covermill.effects import build_plugin
from covermill.errors import ParameterError
from covermill.recipes import load_recipe, recipe_root

IR_RECIPE = "name: x\nstems:\n  drums:\n    effects:\n      - {plugin: Convolution, impulse_response_filename: ir.wav}\n"


@pytest.mark.parametrize("name", ["My.YAML", "my.yml", "plain.yaml"])
def test_recipe_root_is_the_recipes_folder_whatever_the_suffix(tmp_path, monkeypatch, name):
    folder = tmp_path / "recipes"
    folder.mkdir()
    sf.write(folder / "ir.wav", np.r_[1.0, np.zeros(63)].astype(np.float32), 44100)
    (folder / name).write_text(IR_RECIPE)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    recipe = load_recipe(folder / name)
    root = recipe_root(folder / name)
    assert root == folder.resolve()
    y = np.random.default_rng(0).standard_normal((2, 4410)).astype(np.float32) * 0.1
    out = process_stem(y, sr=44100, spec=recipe.stem("drums"), root=root)
    assert out.shape == y.shape and np.all(np.isfinite(out))


def test_a_file_parameter_without_a_recipe_folder_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sf.write(tmp_path / "ir.wav", np.ones(8, np.float32), 44100)
    with pytest.raises(ParameterError, match="needs the recipe's folder"):
        build_plugin("Convolution", {"impulse_response_filename": "ir.wav"}, root=None)
