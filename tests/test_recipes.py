from pathlib import Path

import pytest

from covermill.errors import RecipeError
from covermill.recipes import builtin_names, load_recipe, recipe_to_yaml


def write(tmp_path: Path, text: str, name: str = "r.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_builtin_pop_to_jazz_follows_the_paper():
    r = load_recipe("pop_to_jazz")
    assert "pop_to_jazz" in builtin_names()
    assert r.tempo.bpm_delta == -15
    assert r.stem("drums").action == "keep" and r.stem("drums").gain_db <= -6
    assert r.stem("bass").revoice.instrument == "upright_bass"
    assert r.stem("vocals").revoice.instrument == "tenor_sax"
    # the resolved YAML loads back to the same recipe
    assert load_recipe(write(Path(__import__("tempfile").mkdtemp()), recipe_to_yaml(r))) == r


def test_builtin_bossa_nova_puts_the_melody_in_front():
    r = load_recipe("bossa_nova")
    # the flute over a quiet band (the taste model's verdict, docs/BENCHMARKS.md "Genre verdict tuning (#16)")
    assert r.stem("vocals").revoice.instrument == "flute" and r.stem("vocals").gain_db >= 3
    assert all(r.stem("vocals").gain_db > other for other in
               (r.stem("other").gain_db, r.parts["drums"].gain_db, r.parts["comping"].gain_db))


def test_builtin_reggae_balance_keeps_the_skank_up_and_the_bass_from_masking():
    r = load_recipe("reggae")
    # docs/BENCHMARKS.md "Genre verdict tuning (#16)": bass +4 dB masked the harmony and melody
    assert r.parts["comping"].style == "reggae_skank" and r.parts["comping"].gain_db >= r.parts["drums"].gain_db
    assert r.stem("bass").gain_db <= 0 < r.stem("bass").effects[0].params["gain_db"]  # heavy by its low shelf


def test_unknown_key_names_file_line_and_suggestion(tmp_path):
    p = write(tmp_path, "name: x\nstems:\n  drums:\n    action: keep\n    gian_db: 3\n", "pop_to_jazz.yaml")
    with pytest.raises(RecipeError) as info:
        load_recipe(p)
    msg = str(info.value)
    assert f"{p}:5:" in msg and "'gian_db'" in msg and "stems.drums" in msg and "did you mean 'gain_db'" in msg


def test_unknown_top_level_key(tmp_path):
    with pytest.raises(RecipeError, match=r":2: unknown key 'tempos'.*did you mean 'tempo'"):
        load_recipe(write(tmp_path, "name: x\ntempos: {bpm_delta: 3}\n"))


@pytest.mark.parametrize(
    "body,match",
    [
        ("name: x\nstems:\n  drums: {gain_db: 500}\n", r":3: stems\.drums\.gain_db: .*less than or equal to 24.*500"),
        ("name: x\nstems:\n  bass: {pan: 3}\n", r"stems\.bass\.pan: .*1"),
        ("name: x\ntempo: {bpm_delta: -10, ratio: 0.9}\n", "only one of"),
        ("name: x\nstems:\n  vocals: {action: revoice}\n", "needs `revoice"),
        ("name: x\nstems:\n  drums:\n    effects:\n      - {plugin: Reverbb}\n", r":5: .*unknown effect 'Reverbb'.*did you mean 'Reverb'"),
        ("name: x\nstems:\n  drums:\n    effects:\n      - {plugin: Reverb, rom_size: 0.2}\n", r"unknown parameter 'rom_size'.*room_size"),
        ("name: x\nstems:\n  drums:\n    effects:\n      - {plugin: Reverb, room_size: 7}\n", r"room_size=7 must be within \[0, 1\]"),
        ("name: x\nstems:\n  drums:\n    effects:\n      - {plugin: VST3Plugin}\n", r"unknown effect 'VST3Plugin'"),
        ("name: x\nmaster: {lufs: 3}\n", r"master\.lufs"),
        ("- just\n- a list\n", "must be a mapping"),
        ("", "is empty"),
    ],
)
def test_invalid_values_refused(tmp_path, body, match):
    with pytest.raises(RecipeError, match=match) as info:
        load_recipe(write(tmp_path, body))
    assert "\n" not in str(info.value)


def test_malformed_yaml(tmp_path):
    with pytest.raises(RecipeError, match=r"r\.yaml:\d+: malformed YAML"):
        load_recipe(write(tmp_path, "name: x\nstems: [unclosed\n"))


def test_yaml_tags_are_refused_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    body = f"name: x\ndescription: !!python/object/apply:os.system ['touch {marker}']\n"
    with pytest.raises(RecipeError, match="tags are not allowed"):
        load_recipe(write(tmp_path, body))
    assert not marker.exists()


def test_unknown_recipe_name_suggests():
    with pytest.raises(RecipeError, match="did you mean 'pop_to_jazz'"):
        load_recipe("pop_to_jaz")


def test_extends_builtin_and_file_merge(tmp_path):
    write(tmp_path, "name: base\nextends: pop_to_jazz\nstems:\n  drums: {gain_db: -3}\n", "base.yaml")
    child = write(tmp_path, "name: child\nextends: base.yaml\ntempo: {target_bpm: 90}\n", "child.yaml")
    r = load_recipe(child)
    assert r.name == "child"
    assert r.stem("drums").gain_db == -3  # from base
    assert r.stem("drums").effects  # deep-merged from pop_to_jazz
    assert r.tempo.target_bpm == 90


def test_extends_cannot_escape_root(tmp_path):
    (tmp_path / "outside.yaml").write_text("name: o\n")
    sub = tmp_path / "recipes"
    sub.mkdir()
    with pytest.raises(RecipeError, match="escapes its root"):
        load_recipe(write(sub, "name: x\nextends: ../outside.yaml\n"))
    with pytest.raises(RecipeError, match="absolute"):
        load_recipe(write(sub, f"name: x\nextends: {tmp_path / 'outside.yaml'}\n", "abs.yaml"))


def test_extends_cycle(tmp_path):
    write(tmp_path, "name: a\nextends: b.yaml\n", "a.yaml")
    write(tmp_path, "name: b\nextends: a.yaml\n", "b.yaml")
    with pytest.raises(RecipeError, match="loops"):
        load_recipe(tmp_path / "a.yaml")


def test_convolution_path_confined(tmp_path):
    body = "name: x\nstems:\n  drums:\n    effects:\n      - {plugin: Convolution, impulse_response_filename: ../../etc/passwd}\n"
    with pytest.raises(RecipeError, match="escapes its root"):
        load_recipe(write(tmp_path, body))


def test_every_builtin_is_valid_and_carries_the_schema_comment():
    from covermill.recipes.loader import builtin_dir

    names = builtin_names()
    assert len(names) >= 7
    for name in names:
        r = load_recipe(name)
        assert r.description and r.target_genre
        first = (builtin_dir() / f"{name}.yaml").read_text().splitlines()[0]
        assert first == "# yaml-language-server: $schema=../recipe.schema.json"


def test_shipped_json_schema_is_current():
    import json

    from covermill.recipes import Recipe
    from covermill.recipes.loader import builtin_dir

    shipped = json.loads((builtin_dir().parent / "recipe.schema.json").read_text())
    assert shipped == Recipe.model_json_schema(), "regenerate with `covermill recipes schema > covermill/recipes/recipe.schema.json`"


def test_new_recipe_extends_its_base_and_validates(tmp_path):
    from covermill.recipes import new_recipe_text

    p = tmp_path / "mine.yaml"
    p.write_text(new_recipe_text("mine", base="reggae"))
    r = load_recipe(p)
    assert r.name == "mine" and r.extends == "reggae"
    assert r.tempo.target_bpm == 76  # inherited
    # uncommenting a listed line changes the recipe
    text = p.read_text().replace("#   target_bpm: 76.0", "  target_bpm: 70.0").replace("# tempo:", "tempo:")
    p.write_text(text)
    assert load_recipe(p).tempo.target_bpm == 70.0


def test_extending_recipe_switches_a_stems_kind_of_voice(tmp_path):
    """Issue 15.3: `midi_program` over the parent's `instrument` replaces it (no `instrument: null`)."""
    r = load_recipe(write(tmp_path, 'name: x\nextends: pop_to_jazz\nstems:\n  vocals: {revoice: {midi_program: "Tenor Sax"}}\n'))
    assert r.stem("vocals").revoice.midi_program == "Tenor Sax" and r.stem("vocals").revoice.instrument is None
    assert r.stem("vocals").gain_db == load_recipe("pop_to_jazz").stem("vocals").gain_db  # the rest still merges
    (tmp_path / "midi.yaml").write_text('name: m\nstems:\n  other: {revoice: {midi_program: 0, quantize: 0.5}}\n')
    back = load_recipe(write(tmp_path, "name: y\nextends: midi.yaml\nstems:\n  other: {revoice: {instrument: flute}}\n",
                             "y.yaml"))
    assert back.stem("other").revoice.instrument == "flute" and back.stem("other").revoice.quantize is None


def test_parts_are_validated_with_file_line_and_suggestions(tmp_path):
    ok = load_recipe(write(tmp_path, "name: x\nparts:\n  drums: {style: reggae_one_drop, kit: standard}\n"
                                     "  comping: {style: reggae_skank, program: 'Electric Guitar (clean)'}\n"))
    assert ok.part_kind("drums") == "drums" and ok.stem("part_comping").program == "Electric Guitar (clean)"
    with pytest.raises(RecipeError, match=r"r2.yaml:4: unknown key 'gian_db' in parts.drums \(did you mean 'gain_db'\?\)"):
        load_recipe(write(tmp_path, "name: x\nparts:\n  drums: {style: jazz_swing,\n    gian_db: 3}\n", "r2.yaml"))
    with pytest.raises(RecipeError, match="unknown drum kit 'jaz'"):
        load_recipe(write(tmp_path, "name: x\nparts:\n  drums: {style: jazz_swing, kit: jaz}\n", "r3.yaml"))
    doubled = load_recipe(write(tmp_path, "name: x\nparts:\n  melody: {style: reggae_melodica, gain_db: -10}\n"
                                          "  fiddle: {style: folk_fiddle, kind: melody, program: Violin}\n", "r4.yaml"))
    assert doubled.part_kind("melody") == doubled.part_kind("fiddle") == "melody"
    with pytest.raises(RecipeError, match=r"part 'tune': give `kind: drums \| bass \| comping \| melody`"):
        load_recipe(write(tmp_path, "name: x\nparts:\n  tune: {style: folk_fiddle}\n", "r5.yaml"))


@pytest.mark.parametrize(
    "effect,match",
    [
        ("{plugin: Resample, target_sample_rate: 1.0e+8}", r"target_sample_rate=100000000\.0 must be within \[1000, 96000\]"),
        ("{plugin: Gain, gain_db: .inf}", r"gain_db=inf must be a finite number"),
        ("{plugin: Reverb, room_size: .nan}", r"room_size=nan must be a finite number"),
        ("{plugin: Delay, delay_seconds: 3600}", r"delay_seconds=3600 must be within"),
        ("{plugin: PitchShift, semitones: 10000000000000000000000}", r"semitones=.* must be within"),
        ("{plugin: LowpassFilter, cutoff_frequency_hz: '1e9'}", r"must be a number"),
    ],
)
def test_effect_parameters_are_finite_and_in_range(tmp_path, effect, match):
    """Finding 11 of issue 18: absurd effect parameters fail when the recipe loads."""
    body = f"name: x\nstems:\n  drums:\n    effects:\n      - {effect}\n"
    with pytest.raises(RecipeError, match=match) as info:
        load_recipe(write(tmp_path, body))
    assert "\n" not in str(info.value) and ":5:" in str(info.value)


@pytest.mark.parametrize("value", ["{name: {a: 1}}", "'a\\0b'", "'" + "x" * 300 + ".yaml'", "[1, 2]"])
def test_extends_and_file_parameters_that_are_not_file_names(tmp_path, value):
    """Found by tests/test_fuzz.py: `extends` or an impulse response that is not a usable name is one line."""
    for body in (f"name: x\nextends: {value}\n",
                 f"name: x\nstems:\n  drums:\n    effects:\n      - {{plugin: Convolution, impulse_response_filename: {value}}}\n"):
        with pytest.raises(RecipeError) as info:
            load_recipe(write(tmp_path, body))
        assert "\n" not in str(info.value)


def test_did_you_mean_knows_every_nested_model_from_the_schema():
    """`loader._fields_for` walks the schema's annotations: a new model or field needs no table."""
    from covermill.recipes.loader import _fields_for
    from covermill.recipes.schema import Bus, Key, Master, Part, Recipe, Revoice, Stem, Tempo

    for loc, model in [((), Recipe), (("tempo",), Tempo), (("key",), Key), (("master",), Master),
                       (("stems", "vocals"), Stem), (("stems", "bass", "revoice"), Revoice), (("buses", "verb"), Bus),
                       (("parts", "drums"), Part)]:
        assert _fields_for(loc) == list(model.model_fields), loc
    assert _fields_for(("bogus",)) == [] and _fields_for(("tempo", "ratio")) == []
