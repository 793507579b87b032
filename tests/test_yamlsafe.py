"""Findings 5 and 10 of issue 18: a small YAML file cannot cost unbounded time or memory."""


import pytest

from covermill.errors import ParameterError, RecipeError
from covermill.instruments.timbre import load_timbre
from covermill.recipes import load_recipe
from covermill.yamlsafe import MAX_YAML_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES


def laughs(levels: int, width: int = 10) -> str:
    """The 'billion laughs': each level is a list of ``width`` aliases of the one below."""
    lines = ["a0: &a0 [lol]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "\n".join(lines) + f"\nname: x\ndescription: *a{levels}\n"


BOMBS = {
    "aliases": laughs(9),
    "deep list": "name: x\ndescription: " + "[" * 3000 + "]" * 3000 + "\n",
    "deep map": "name: x\ndescription:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(200)),
    "self alias": "name: x\ndescription: &a [*a]\n",
    "huge int": "name: x\nstems:\n  drums: {gain_db: " + "9" * 5000 + "}\n",
}


@pytest.mark.parametrize("kind", sorted(BOMBS))
def test_recipe_yaml_bombs_are_one_line_errors(tmp_path, kind):
    path = tmp_path / "r.yaml"
    path.write_text(BOMBS[kind])
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg
    assert any(word in msg for word in ("nests deeper", "expands to more", "digits")), msg


@pytest.mark.parametrize("kind", sorted(BOMBS))
def test_instrument_yaml_bombs_are_one_line_errors(tmp_path, kind):
    path = tmp_path / "x.yaml"
    path.write_text(BOMBS[kind].replace("description", "range_hz").replace("stems:\n  drums:", "harmonics:"))
    with pytest.raises(ParameterError) as info:
        load_timbre(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_oversized_file_is_refused_before_parsing(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("name: x\ndescription: '" + "a" * MAX_YAML_BYTES + "'\n")
    with pytest.raises(RecipeError, match=r"big\.yaml: is \d+ bytes; a recipe is at most"):
        load_recipe(path)


def test_limits_leave_room_for_real_files(tmp_path):
    """A few aliases are fine: the limits only stop abuse."""
    path = tmp_path / "ok.yaml"
    path.write_text("name: x\nstems:\n  drums: &d {action: keep, gain_db: -3}\n  bass: *d\n  other: *d\n")
    assert load_recipe(path).stem("bass").gain_db == -3
    assert MAX_YAML_NODES >= 10_000 and MAX_YAML_DEPTH >= 20
