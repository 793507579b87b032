"""Every path a recipe names goes through one check (fsutil.recipe_path): inside the recipe's
folder, or a bare soundfont name found in the documented search folders; external programs get
absolute paths after ``--`` (hardening issue, finding 1)."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from covermill.errors import RecipeError
from covermill.recipes import load_recipe

FLUID_SF2 = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
needs_fluidsynth = pytest.mark.skipif(
    shutil.which("fluidsynth") is None or not FLUID_SF2.is_file(),
    reason="needs Debian fluidsynth + fluid-soundfont-gm (make sysdeps)")


def _recipe(folder: Path, soundfont: str) -> Path:
    path = folder / "r.yaml"
    path.write_text(f'name: x\nstems:\n  other: {{revoice: {{midi_program: 0, soundfont: "{soundfont}"}}}}\n')
    return path


@pytest.mark.parametrize("value, match", [
    ("../fonts/gm.sf2", "escapes its root"),
    ("sub/../../gm.sf2", "escapes its root"),
    ("sub/../gm.sf2", "escapes its root"),
    ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "is absolute"),
    ("~/gm.sf2", "starts with '~'"),
])
def test_recipe_soundfont_outside_its_folder_is_refused(tmp_path, value, match):
    with pytest.raises(RecipeError, match=match) as info:
        load_recipe(_recipe(tmp_path, value))
    assert "\n" not in str(info.value)
    assert str(tmp_path / "r.yaml") in str(info.value)  # names the file


def test_symlink_out_of_the_recipe_folder_is_refused(tmp_path):
    (tmp_path / "outside.sf2").write_bytes(b"RIFF")
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "font.sf2").symlink_to(tmp_path / "outside.sf2")
    with pytest.raises(RecipeError, match="escapes its root"):
        load_recipe(_recipe(recipes, "font.sf2"))


def test_bare_soundfont_name_is_found_in_the_users_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    fonts = tmp_path / "data" / "covermill" / "soundfonts"
    fonts.mkdir(parents=True)
    (fonts / "mine.sf2").write_bytes(b"RIFF0000sfbk")
    recipe_dir = tmp_path / "recipes"
    recipe_dir.mkdir()
    recipe = load_recipe(_recipe(recipe_dir, "mine.sf2"))
    assert recipe.stem("other").revoice.soundfont_path(recipe_dir) == (fonts / "mine.sf2").resolve()
    # a file beside the recipe wins over the search folders
    (recipe_dir / "mine.sf2").write_bytes(b"RIFF0000sfbk")
    assert recipe.stem("other").revoice.soundfont_path(recipe_dir) == (recipe_dir / "mine.sf2").resolve()


def test_impulse_response_and_extends_go_through_the_same_check(tmp_path):
    body = "name: x\nstems:\n  drums:\n    effects:\n      - {plugin: Convolution, impulse_response_filename: ~/ir.wav}\n"
    (tmp_path / "a.yaml").write_text(body)
    with pytest.raises(RecipeError, match="impulse_response_filename path '~/ir.wav'"):
        load_recipe(tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text("name: x\nextends: ~/base.yaml\n")
    with pytest.raises(RecipeError, match="extends path '~/base.yaml'"):
        load_recipe(tmp_path / "b.yaml")


@needs_fluidsynth
def test_soundfont_named_like_an_option_cannot_make_fluidsynth_write_a_file(tmp_path, monkeypatch):
    """The reported exploit: a folder ``-F..`` holding ``X.sf2`` and ``soundfont: "-F../X.sf2"``
    made FluidSynth write its WAV over ``../X.sf2``. Now it is read as the soundfont it is."""
    from covermill.automation.voices import voices as _instruments

    pkg = tmp_path / "pkg"
    (pkg / "-F..").mkdir(parents=True)
    shutil.copy(FLUID_SF2, pkg / "-F.." / "X.sf2")
    victim = tmp_path / "X.sf2"  # what "-F../X.sf2" names when read as an option, from pkg/
    victim.write_bytes(b"the user's file")
    recipe = load_recipe(_recipe(pkg, "-F../X.sf2"))
    monkeypatch.chdir(pkg)
    voice = _instruments(recipe, soundfont=None, instruments_dir=None, root=Path("."))["other"]
    sr = 22050
    t = np.arange(sr * 2) / sr
    stem = (0.3 * np.sin(2 * np.pi * 220 * t) * (t % 0.5 < 0.35)).astype(np.float32)[None].repeat(2, 0)
    out = voice.revoice(stem, sr=sr)
    assert victim.read_bytes() == b"the user's file"
    assert np.max(np.abs(out)) > 1e-3  # rendered with the soundfont inside the recipe's folder
