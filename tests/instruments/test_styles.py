"""Genre styles are data: every built-in validates, typos name file:line with a did-you-mean, user files win."""

import pytest

from covermill.errors import ParameterError
from covermill.instruments.styles import builtin_dir, get_style, list_styles, validate_style_file

REQUIRED = {
    "drums": {"jazz_swing", "bossa_nova", "reggae_one_drop", "lofi_boom_bap", "folk_train", "chiptune_noise",
              "orchestral_timpani"},
    "bass": {"walking", "root_fifth", "reggae", "lofi", "chiptune_arp"},
    "comping": {"jazz_shell", "bossa_guitar", "reggae_skank", "lofi_rhodes", "folk_strum", "chiptune_arp",
                "orchestral_pads"},
}
WALTZES = [("drums", "jazz_swing"), ("bass", "walking"), ("comping", "jazz_shell"), ("drums", "folk_train"),
           ("bass", "root_fifth"), ("comping", "folk_strum")]


def test_every_required_style_ships_and_validates():
    files = sorted(builtin_dir().glob("*/*.yaml"))
    assert len(files) == len(list_styles()) >= 21
    for path in files:
        style = validate_style_file(path, source="built-in")
        assert style.kind == path.parent.name and style.description
        assert 4 in style.meters if style.kind != "melody" else not style.meters and style.range
    for kind, names in REQUIRED.items():
        assert names <= {s.name for s in list_styles(kind)}, kind


@pytest.mark.parametrize("kind,name", WALTZES)
def test_jazz_and_folk_have_a_waltz(kind, name):
    assert 3 in get_style(name, kind=kind).meters


def _copy(tmp_path, rel="bass/walking.yaml", edit=None, name=None):
    text = (builtin_dir() / rel).read_text()
    if edit:
        text = edit(text)
    path = tmp_path / (name or rel.split("/")[-1])
    path.write_text(text)
    return path


def _line(path, needle):
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


@pytest.mark.parametrize("old,new,match", [
    ("humanize:", "humanise:", r"unknown key 'humanise' in the top level \(did you mean 'humanize'\?\)"),
    ("{timing_ms: 4", "{timeing_ms: 4", r"unknown key 'timeing_ms' in humanize \(did you mean 'timing_ms'\?\)"),
    ("[3, 1, approach]", "[3, 1, aproach]", r"unknown bass event 'aproach' \(did you mean 'approach'\?\)"),
    ("[28, 55]", "[55, 28]", r"range must be \[low, high\]"),
    ("  4:\n    bars", "  4/4:\n    bars", r"meters: '4/4' is not a number of beats per bar \(write 4 for 4/4"),
])
def test_typo_names_file_line_and_fix(tmp_path, old, new, match):
    path = _copy(tmp_path, edit=lambda s: s.replace(old, new, 1))
    line = _line(path, new.split(":")[0] if ":" in new else new)
    with pytest.raises(ParameterError, match=rf"walking.yaml:{line}: .*{match}") as err:
        validate_style_file(path)
    assert "\n" not in str(err.value)


def test_drum_voice_and_step_typos(tmp_path):
    path = _copy(tmp_path, "drums/jazz_swing.yaml", edit=lambda s: s.replace("      pedal_hat: \"..x.|..x.\"",
                                                                             "      pedal_hats: \"..x.|..x.\""))
    with pytest.raises(ParameterError, match=rf"jazz_swing.yaml:{_line(path, 'pedal_hats')}: .*unknown drum voice "
                                             r"'pedal_hats' \(did you mean 'pedal_hat'\?\)"):
        validate_style_file(path)
    path = _copy(tmp_path, "drums/jazz_swing.yaml", edit=lambda s: s.replace('"x.Xx|x.Xx"', '"x.Xx|x.X"'))
    with pytest.raises(ParameterError, match=r"ride: 7 steps, a bar of 4 beats at 2 steps per beat needs 8"):
        validate_style_file(path)
    path = _copy(tmp_path, "drums/jazz_swing.yaml", edit=lambda s: s.replace("steps_per_beat: 2\n    voices",
                                                                             "step_per_beat: 2\n    voices", 1))
    with pytest.raises(ParameterError, match=r"unknown key 'step_per_beat' in meters.4 \(did you mean 'steps_per_beat'"):
        validate_style_file(path)


@pytest.mark.parametrize("rel,old,new,match", [
    ("drums/jazz_swing.yaml", "{kit: jazz}", "{kit: jaz}", r"unknown drum kit 'jaz'"),
    ("bass/walking.yaml", '"Acoustic Bass"', '"Acoustic Bas"', r"unknown General MIDI program 'Acoustic Bas' "
                                                              r"\(did you mean 'Acoustic Bass'"),
    ("bass/walking.yaml", "{program:", "{kit:", r"a bass style takes program:, not kit:"),
    ("bass/walking.yaml", "  4:\n", "  5:\n", r"meters needs a 4 \(4/4\) pattern"),
])
def test_bad_sound_or_meter_is_one_line(tmp_path, rel, old, new, match):
    path = _copy(tmp_path, rel, edit=lambda s: s.replace(old, new, 1))
    with pytest.raises(ParameterError, match=match) as err:
        validate_style_file(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_malformed_yaml_and_wrong_name(tmp_path):
    path = _copy(tmp_path, edit=lambda s: s.replace("range: [28, 55]", "range: [28, 55"))
    with pytest.raises(ParameterError, match=r"walking.yaml:\d+: malformed YAML"):
        validate_style_file(path)
    path = _copy(tmp_path, name="walk2.yaml")
    with pytest.raises(ParameterError, match=r"name 'walking' must match the file name 'walk2'"):
        validate_style_file(path)


def test_user_folder_overrides_builtin(tmp_path):
    _copy(tmp_path, edit=lambda s: s.replace('description: "walking bass', 'description: "my walking bass'))
    mine = get_style("walking", kind="bass", user_dir=tmp_path)
    assert mine.description.startswith("my walking bass") and mine.source == str(tmp_path)
    assert get_style("walking", kind="bass").source == "built-in"
    assert [s.name for s in list_styles("bass", user_dir=tmp_path)].count("walking") == 1
    with pytest.raises(ParameterError, match="no such styles folder"):
        list_styles(user_dir=tmp_path / "missing")


def test_melody_styles_take_no_patterns(tmp_path):
    path = _copy(tmp_path, "melody/reggae_melodica.yaml")
    assert validate_style_file(path).kind == "melody"
    bad = _copy(tmp_path, "melody/reggae_melodica.yaml", edit=lambda t: t + "meters: {4: {bars: [[[0, 1, chord]]]}}\n")
    with pytest.raises(ParameterError, match=r"reggae_melodica.yaml.*a melody style plays the lead sheet's melody: it "
                                             r"takes no meters, fills or voicings"):
        validate_style_file(bad)
    no_range = _copy(tmp_path, "melody/reggae_melodica.yaml", edit=lambda t: t.replace("range: [55, 84]\n", ""))
    with pytest.raises(ParameterError, match=r"a melody style needs range: \[low, high\]"):
        validate_style_file(no_range)


def test_names_shared_by_two_kinds_and_unknown_names():
    with pytest.raises(ParameterError, match=r"'chiptune_arp' is a bass and a comping style; say which: "
                                             r"bass/chiptune_arp, comping/chiptune_arp"):
        get_style("chiptune_arp")
    assert get_style("chiptune_arp", kind="comping").kind == "comping"
    assert get_style("bass/chiptune_arp").kind == "bass"
    with pytest.raises(ParameterError, match=r"unknown drums style 'jazz_swng'; did you mean 'jazz_swing'\?"):
        get_style("jazz_swng", kind="drums")
    with pytest.raises(ParameterError, match="unknown part kind 'keys'"):
        list_styles("keys")


def test_part_modules_stay_in_their_layer():
    import ast
    from pathlib import Path

    import covermill.instruments as pkg

    root = Path(pkg.__file__).parent
    for name in ("styles.py", "parts.py", "part_grid.py", "part_checks.py", "part_melody.py", "voicing.py"):
        tree = ast.parse((root / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = ("." * node.level) + (node.module or "")
                assert not any(target.startswith(p) for p in ("..analysis", "..automation", "..recipes", "..stems",
                                                              "covermill.analysis", "covermill.automation",
                                                              "covermill.recipes", "covermill.stems")), (name, target)
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith(("covermill.analysis", "covermill.automation", "covermill.recipes",
                                                  "covermill.stems")) for a in node.names), name
