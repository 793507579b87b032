"""Built-in instruments are data: every file validates, sounds in its documented range, plays in tune."""

import shutil

import librosa
import numpy as np
import pytest

from covermill import instruments
from covermill.errors import ParameterError
from covermill.instruments.parametric import BUILTIN_TIMBRES, note_character, render_note
from covermill.instruments.timbre import builtin_dir, load_timbre

NAMES = sorted(BUILTIN_TIMBRES)


def test_at_least_ten_builtins_from_yaml():
    files = sorted(p.stem for p in builtin_dir().glob("*.yaml"))
    assert files == NAMES and len(NAMES) >= 10
    assert {"cello", "vibraphone", "synth_lead"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_character_in_documented_range(name):
    t = BUILTIN_TIMBRES[name]
    assert t.expect_centroid_hz and t.expect_fundamental_share, f"{name}.yaml has no expect: block"
    c = note_character(t)
    lo, hi = t.expect_centroid_hz
    assert lo <= c["centroid_hz"] <= hi
    lo, hi = t.expect_fundamental_share
    assert lo <= c["fundamental_share"] <= hi


@pytest.mark.parametrize("name", NAMES)
def test_rendered_note_has_the_requested_pitch(name):
    t = BUILTIN_TIMBRES[name]
    lo_midi = int(np.ceil(69 + 12 * np.log2(t.range_hz[0] / 440)))
    note = lo_midi + 7  # a fifth above the bottom of the range
    y, f0 = render_note(t, midi_note=note, sr=22050, seconds=1.0)
    est = librosa.yin(y[5000:], fmin=f0 / 1.5, fmax=f0 * 1.5, sr=22050, frame_length=4096)
    assert abs(1200 * np.log2(np.median(est) / f0)) < 30


def _copy(tmp_path, name="cello", new_name=None, edit=None):
    text = (builtin_dir() / f"{name}.yaml").read_text()
    if new_name:
        text = text.replace(f"name: {name}", f"name: {new_name}")
    if edit:
        text = edit(text)
    path = tmp_path / f"{new_name or name}.yaml"
    path.write_text(text)
    return path


def test_unknown_key_names_file_and_line(tmp_path):
    path = _copy(tmp_path, edit=lambda s: s.replace("  brightness_db:", "  brightnes_db:"))
    with pytest.raises(ParameterError, match=r"cello.yaml:10: unknown key 'brightnes_db' in harmonics "
                                             r"\(did you mean 'brightness_db'\?\)"):
        load_timbre(path)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda s: s.replace("range_hz: [65, 700]", "range_hz: [700, 65]"), r":6: range_hz: .*low < high"),
    (lambda s: s.replace("share: 0.04", "share: 3"), r":12: noise.share: .*less than or equal to 1"),
    (lambda s: s.replace("freq_hz: 220", "freq_hz: lots"), r":16: body.0.freq_hz: "),
    (lambda s: s.replace("name: cello", "name: viola"), r"name 'viola' must match the file name 'cello'"),
    (lambda s: s + "  : [\n", r"malformed YAML"),
])
def test_bad_values_are_one_clear_line(tmp_path, edit, message):
    with pytest.raises(ParameterError, match=message) as info:
        load_timbre(_copy(tmp_path, edit=edit))
    assert "\n" not in str(info.value)


def test_user_copy_in_instruments_dir(tmp_path):
    _copy(tmp_path, new_name="dark_cello", edit=lambda s: s.replace("count: 40", "count: 6"))
    shutil.copy(builtin_dir() / "flute.yaml", tmp_path / "flute.yaml")
    assert "dark_cello" in instruments.available(instruments_dir=tmp_path)
    inst = instruments.get("dark_cello", instruments_dir=tmp_path)
    assert inst.timbre.n_harmonics == 6
    with pytest.raises(ParameterError, match="unknown instrument 'dark_cello'"):
        instruments.get("dark_cello")


def test_cli_validate_and_list(tmp_path):
    from click.testing import CliRunner

    from covermill.cli import main

    good = _copy(tmp_path, new_name="my_cello")
    runner = CliRunner()
    result = runner.invoke(main, ["instruments", "validate", str(good)])
    assert result.exit_code == 0 and "ok (my_cello, 65-700 Hz)" in result.output
    listed = runner.invoke(main, ["instruments", "list", "--instruments-dir", str(tmp_path)]).output
    assert "my_cello         user" in listed and "cello            built-in" in listed
    assert "  0  Acoustic Grand Piano" in runner.invoke(main, ["instruments", "list", "--midi"]).output
    bad = _copy(tmp_path, edit=lambda s: s.replace("q: 2.0", "q: 99"))
    result = runner.invoke(main, ["instruments", "validate", str(bad)])
    assert result.exit_code == 1 and "cello.yaml:16: body.0.q:" in result.output


def test_one_bad_file_in_the_folder_breaks_only_itself(tmp_path, caplog):
    """Finding 18 of issue 18: a broken YAML beside good ones is skipped with a warning."""
    _copy(tmp_path, new_name="dark_cello", edit=lambda s: s.replace("count: 40", "count: 6"))
    (tmp_path / "broken.yaml").write_text("name: broken\nrange_hz: [1, \n")
    with caplog.at_level("WARNING"):
        assert instruments.get("dark_cello", instruments_dir=tmp_path).timbre.n_harmonics == 6
        assert instruments.get("flute", instruments_dir=tmp_path).timbre.name == "flute"
        assert "broken" not in instruments.available(instruments_dir=tmp_path)
    assert "skipping instrument broken.yaml" in caplog.text
    with pytest.raises(ParameterError, match=r"broken\.yaml:\d+: malformed YAML"):
        instruments.get("broken", instruments_dir=tmp_path)
