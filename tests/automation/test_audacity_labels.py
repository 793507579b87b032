"""Label data and Nyquist scripts for review sessions (no Audacity needed)."""

from __future__ import annotations

import pytest

from covermill.automation.audacity.labels import (
    beat_labels,
    check_label_tracks,
    file_name_for,
    label_file_text,
    leadsheet_label_tracks,
    lisp_string,
    reorder_forms,
    settings_script,
    tool_command,
)
from covermill.errors import AudacityError
from covermill.leadsheet import Chord, LeadSheet, Section


def test_lisp_strings_and_label_lists():
    assert lisp_string('a "b" \\c') == '"a \\"b\\" \\\\c"'
    text = label_file_text([(2.0, 3.5, "B"), (-0.1, 0.0, 'say "hi"')])
    assert text == '((0.000000 0.000000 "say \\"hi\\"")\n(2.000000 3.500000 "B"))\n'
    with pytest.raises(AudacityError, match="not a number"):
        label_file_text([(float("nan"), 1.0, "x")])


def test_tool_command_is_one_line_with_the_header_newline_escaped(tmp_path):
    line = tool_command(tmp_path / "s.lsp")
    assert "\n" not in line and line.startswith('NyquistPrompt: Command=";type tool\\n(load \\"')
    assert line.endswith('s.lsp\\") \\"\\""')
    bad = tmp_path / 'a"b'
    with pytest.raises(AudacityError, match="TMPDIR"):
        tool_command(bad / "s.lsp")


def test_settings_script_selects_then_sets_each_track():
    script = settings_script([{"Name": 'x "y"', "Mute": True}, {}, {"Name": "z"}])
    lines = script.splitlines()
    assert lines[0] == '(aud-do "Select: Track=0 TrackCount=1 Mode=\\"Set\\"")'
    assert lines[1] == '(aud-do "SetTrack: Name=\\"x \\\\\\"y\\\\\\"\\" Mute=1")'
    assert lines[2].startswith('(aud-do "Select: Track=2 ')  # an empty setting sends nothing
    assert lines[-1] == '""'  # a tool's non-empty string result would open a message box


def test_beat_labels_count_from_downbeats_or_in_the_meter():
    assert [x[2] for x in beat_labels([0.0, 0.5, 1.0, 1.5, 2.0], beats_per_bar=3)] == ["1.1", "1.2", "1.3", "2.1", "2.2"]
    got = beat_labels([0.0, 0.5, 1.0, 1.5, 2.0], downbeats_s=[0.5, 1.5])
    assert [x[2] for x in got] == ["0", "1.1", "1.2", "2.1", "2.2"]


def test_leadsheet_label_tracks_and_validation():
    sheet = LeadSheet(duration_s=8.0, bpm=120.0, downbeats_s=(0.0, 2.0, 4.0, 6.0),
                      chords=(Chord(0, 4, 0, "maj"), Chord(4, 6, None), Chord(6, 8, 9, "min7")),
                      sections=(Section(0, 4, "verse"), Section(4, 8, "chorus")))
    tracks = leadsheet_label_tracks(sheet)
    assert list(tracks) == ["bars", "sections", "chords"]
    assert tracks["bars"][-1] == (6.0, 8.0, "bar 4")
    assert tracks["chords"] == [(0, 4, "C:maj"), (6, 8, "A:min7")]  # no-chord spans left out
    assert leadsheet_label_tracks(LeadSheet(duration_s=1.0, bpm=float("nan"))) == {}
    with pytest.raises(AudacityError, match="ends"):
        check_label_tracks({"x": [(2.0, 1.0, "back")]})
    with pytest.raises(AudacityError, match="needs a name"):
        check_label_tracks({" ": []})


def test_file_names_keep_the_track_name():
    assert file_name_for("cover (mastered)") == "cover (mastered).wav"
    assert file_name_for('a/b"c') == "a_b_c.wav"
    assert file_name_for(".hidden") == "_hidden.wav"


def test_reorder_moves_each_track_from_the_first_misplaced_one_to_the_bottom():
    assert reorder_forms([0, 1, 2], [0, 1, 2]) == []
    forms = reorder_forms([2, 0, 1, "l"], [0, 1, 2, "l"])
    moved = [f for f in forms if f.startswith('(aud-do "Select')]
    # order [2,0,1,l]: 0 at 1 -> [2,1,l,0]; 1 at 1 -> [2,l,0,1]; 2 at 0 -> [l,0,1,2]; l at 0 -> [0,1,2,l]
    assert [int(f.split("Track=")[1].split()[0]) for f in moved] == [1, 1, 0, 0]
    assert forms[1:3] == ['(aud-do "SetTrack: Focused=1")', '(aud-do "TrackMoveBottom:")']
