"""Generated genre parts: on the grid, in range, in the chord's scale, grooving as the style says, reproducible."""

import shutil
from dataclasses import replace

import numpy as np
import pytest

from covermill.errors import ParameterError
from covermill.instruments.midi import DEFAULT_SOUNDFONT, program_number
from covermill.instruments.part_checks import (
    TIME_KEEPERS,
    offbeat_share,
    onset_positions,
    onsets,
    out_of_scale_share,
    swing_ratio,
)
from covermill.instruments.parts import generate_part, part_midi, render_part
from covermill.instruments.styles import DRUM_VOICES, get_style, list_styles
from covermill.instruments.voicing import candidates, with_seventh
from covermill.leadsheet import CHORD_INTERVALS, Chord, Key, LeadSheet, Note, Section

PROGRESSION = ["C:maj7", "A:min7", "D:min7", "G:7", "E:min", "F:maj", "D:7", "G:sus4", "C:maj", "B:hdim7",
               "E:7", "A:min"]


def make_sheet(beats_per_bar=4, bpm=100.0, bars=12, *, half_bar_chords=False, offset_s=0.2):
    period = 60.0 / bpm
    beats = tuple(offset_s + period * np.arange(bars * beats_per_bar + 1))
    duration = beats[-1] + 0.01
    step = beats_per_bar // 2 if half_bar_chords else beats_per_bar
    n_chords = len(beats[:-1]) // step
    chords = tuple(Chord.from_label(PROGRESSION[i % len(PROGRESSION)], beats[i * step],
                                    beats[(i + 1) * step] if i < n_chords - 1 else duration) for i in range(n_chords))
    middle = beats[(bars // 2) * beats_per_bar]
    return LeadSheet(duration_s=duration, bpm=bpm, beats_s=beats, downbeats_s=beats[::beats_per_bar][:bars],
                     beats_per_bar=beats_per_bar, key=Key(0), chords=chords,
                     sections=(Section(0.0, middle, "A"), Section(middle, duration, "B")))


CASES = [(s.kind, s.name, m) for s in list_styles() for m in sorted(s.meters) if m in (3, 4)]


@pytest.mark.parametrize("kind,name,meter", CASES, ids=[f"{k}-{n}-{m}" for k, n, m in CASES])
def test_every_style_generates_in_range_and_in_scale(kind, name, meter):
    style = get_style(name, kind=kind)
    sheet = make_sheet(meter, half_bar_chords=meter == 4 and kind != "drums")
    result = generate_part(sheet, style, kind=kind, seed=3)
    notes = result.midi.notes
    assert result.warnings == () and result.kind == kind and result.style == name
    assert len(notes) >= len(sheet.downbeats_s)  # at least a note per bar
    assert all(0 <= n.start < n.end <= sheet.duration_s for n in notes)
    assert result.midi.is_drum == (kind == "drums")
    if kind == "drums":
        assert {n.pitch for n in notes} <= set(DRUM_VOICES.values()) | set(range(41, 54))
    else:
        lo, hi = style.range
        assert all(lo <= n.pitch <= hi for n in notes)
        assert out_of_scale_share(result.midi, sheet, style) <= 0.10


def test_sound_defaults_and_overrides():
    sheet = make_sheet()
    assert generate_part(sheet, "walking", kind="bass").midi.program == 32  # Acoustic Bass
    assert generate_part(sheet, "jazz_shell", kind="comping", program="Electric Piano 1").midi.program == 4
    assert generate_part(sheet, "jazz_swing", kind="drums").midi.program == 32  # GM jazz kit
    assert generate_part(sheet, "orchestral_timpani", kind="drums").midi.program == 48


def test_same_seed_same_part_other_seed_other_timing():
    sheet = make_sheet()

    def notes(seed):
        return [(n.start, n.pitch, n.velocity) for n in generate_part(sheet, "walking", kind="bass", seed=seed).midi.notes]

    assert notes(7) == notes(7)
    assert notes(7) != notes(8)


def test_swing_ratio_matches_the_style():
    sheet = make_sheet()
    for name in ("jazz_swing", "lofi_boom_bap", "reggae_one_drop", "bossa_nova"):
        style = get_style(name, kind="drums")
        part = generate_part(sheet, style, kind="drums", seed=1).midi
        ratio = swing_ratio(onsets(part, TIME_KEEPERS), sheet.beats_s, unit=style.swing_unit)
        assert ratio == pytest.approx(style.swing / (1 - style.swing), rel=0.08), name
    assert swing_ratio([0.0, 0.667, 1.0, 1.667], [0.0, 1.0, 2.0]) == pytest.approx(2.0, rel=0.01)


def test_reggae_skank_and_bass_sit_on_the_off_beat():
    sheet = make_sheet()
    skank = generate_part(sheet, "reggae_skank", kind="comping", seed=2).midi
    last_bar = sheet.downbeats_s[-1]
    body = [t for t in onsets(skank) if t < last_bar]  # the last bar holds the final chord
    assert offbeat_share(body, sheet.beats_s) >= 0.95
    bass = generate_part(sheet, "reggae", kind="bass", seed=2).midi
    assert offbeat_share([t for t in onsets(bass) if t < last_bar], sheet.beats_s) >= 0.6
    walking = generate_part(sheet, "walking", kind="bass", seed=2).midi
    assert offbeat_share(onsets(walking), sheet.beats_s) <= 0.05


def test_bossa_cross_stick_plays_the_two_bar_pattern():
    sheet = make_sheet()
    part = generate_part(sheet, "bossa_nova", kind="drums", seed=0).midi
    fill_from = sheet.downbeats_s[5]  # bar 6 ends with a fill before the B section
    hits = [t for t in onsets(part, [DRUM_VOICES["side_stick"]]) if t < fill_from]
    positions = onset_positions(hits, sheet, bars=2)
    assert set(positions) == {0.0, 1.5, 3.0, 5.0, 6.5}


def test_patterns_count_bars_from_the_first_downbeat_after_a_pickup():
    sheet = make_sheet(offset_s=1.4)  # 2 beats of pickup at 100 bpm before the first downbeat
    pickup = (0.2, 0.8)
    sheet = LeadSheet(duration_s=sheet.duration_s, bpm=sheet.bpm, beats_s=pickup + sheet.beats_s,
                      downbeats_s=sheet.downbeats_s, chords=(Chord(0.0, 1.4, 7, "7"),) + sheet.chords[1:],
                      sections=sheet.sections)
    part = generate_part(sheet, "bossa_nova", kind="drums", seed=0).midi
    fill_from = sheet.downbeats_s[5]
    hits = [t for t in onsets(part, [DRUM_VOICES["side_stick"]]) if sheet.downbeats_s[0] - 0.05 < t < fill_from]
    assert set(onset_positions(hits, sheet, bars=2)) == {0.0, 1.5, 3.0, 5.0, 6.5}
    pickup_hits = [t for t in onsets(part) if t < sheet.downbeats_s[0] - 0.05]
    assert pickup_hits and min(pickup_hits) >= 0.0  # the pickup plays the end of a bar


def test_fills_before_sections_and_at_the_end_and_a_crash_on_the_new_section():
    sheet = make_sheet()
    part = generate_part(sheet, "jazz_swing", kind="drums", seed=0).midi
    middle = sheet.sections[1].start_s
    period = 60 / sheet.bpm
    snare = [n for n in part.notes if n.pitch == DRUM_VOICES["snare"]]
    assert sum(middle - 2 * period - 0.05 < n.start < middle for n in snare) >= 3
    assert sum(sheet.duration_s - 2 * period - 0.1 < n.start for n in snare) >= 3
    crashes = [n.start for n in part.notes if n.pitch == DRUM_VOICES["crash"]]
    assert len(crashes) == 1 and abs(crashes[0] - middle) < 0.05


def test_brushes_option_and_timpani_follow_the_root():
    sheet = make_sheet()
    brushes = generate_part(sheet, "jazz_swing", kind="drums", kit="brush").midi
    assert brushes.program == 40 and not any(n.pitch == DRUM_VOICES["ride"] for n in brushes.notes)
    assert sum(n.pitch == DRUM_VOICES["snare"] for n in brushes.notes) > 3 * len(sheet.downbeats_s)
    assert generate_part(sheet, "jazz_swing", kind="drums", options=("brushes",)).midi.program == 32
    timpani = generate_part(sheet, "orchestral_timpani", kind="drums").midi
    for n in timpani.notes:
        chord = sheet.chord_at(n.start + 0.02)
        if n.velocity > 100 and n.start < sheet.downbeats_s[5]:  # accented hits on beat 1: the root
            assert (n.pitch - 41 + 5) % 12 == chord.root


def test_walking_bass_approaches_the_next_root_chromatically():
    sheet = make_sheet()
    notes = sorted(generate_part(sheet, "walking", kind="bass", seed=4).midi.notes, key=lambda n: n.start)
    downbeat_notes = [n for n in notes if min(abs(n.start - d) for d in sheet.downbeats_s) < 0.05]
    assert all(n.pitch % 12 == sheet.chord_at(n.start + 0.05).root for n in downbeat_notes)
    approaches = sum(abs(a.pitch - b.pitch) == 1 for a, b in zip(notes, notes[1:], strict=False)
                     if any(abs(b.start - d) < 0.05 for d in sheet.downbeats_s))
    assert approaches >= len(sheet.downbeats_s) // 2


@pytest.mark.parametrize("name", [s.name for s in list_styles("comping")])
def test_comping_plays_every_chord_and_bass_lands_on_each_new_root(name):
    sheet = make_sheet(half_bar_chords=True)  # a chord every two beats, as in a ii-V
    part = generate_part(sheet, name, kind="comping", seed=5).midi
    for chord in sheet.chords:
        heard = {n.pitch % 12 for n in part.notes if n.start < chord.end_s and n.end > chord.start_s + 0.1}
        assert chord.root in heard or len(heard & chord.pitch_classes) >= 2, (name, chord.label)
    bass = generate_part(sheet, "root_fifth", kind="bass", seed=5).midi
    for chord in sheet.chords:
        first = min((n for n in bass.notes if n.start > chord.start_s - 0.05), key=lambda n: n.start)
        assert first.pitch % 12 == chord.root


def test_comping_voice_leading_moves_little():
    sheet = make_sheet()
    part = generate_part(sheet, "orchestral_pads", kind="comping").midi
    chords = {}
    for n in part.notes:
        chords.setdefault(round(n.start, 1), []).append(n.pitch)
    voicings = [sorted(v) for _, v in sorted(chords.items())]
    moves = [np.mean([abs(a - b) for a, b in zip(x, y, strict=True)]) for x, y in zip(voicings, voicings[1:], strict=False)
             if len(x) == len(y)]
    assert moves and np.mean(moves) <= 3.0  # semitones per voice per chord change


@pytest.mark.parametrize("name", [s.name for s in list_styles("comping")])
def test_every_chord_on_every_root_has_a_voicing_in_the_range(name):
    style = get_style(name, kind="comping")
    for root in range(12):
        for quality in CHORD_INTERVALS:
            options = candidates(Chord(0.0, 1.0, root, quality), style.voicings, style.range,
                                 triad_seventh=style.triad_seventh, sevenths=style.chord_sevenths)
            assert options, (root, quality)
            assert all(len(set(v)) == len(v) for v in options)


def test_chord_sevenths_play_the_sevenths_of_seventh_chords():
    """Styles with ``chord_sevenths`` play a 7th chord's seventh (the shape's 8 becomes it, else it is
    added on top); triads are voiced as before, and a shape that already has a 7 is left alone."""
    g7, c = Chord(0.0, 1.0, 7, "7"), Chord(0.0, 1.0, 0, "maj")
    assert with_seventh(g7, ("1", "5", "3", "8")) == ("1", "5", "3", "7")
    assert with_seventh(g7, ("1", "3", "5")) == ("1", "3", "5", "7")
    assert with_seventh(g7, ("3", "7", "9")) == ("3", "7", "9")
    assert with_seventh(c, ("1", "3", "5", "8")) == ("1", "3", "5", "8")
    assert with_seventh(Chord(0.0, 1.0, 9, "min7"), ("5", "8", "3")) == ("5", "7", "3")
    sheet = make_sheet()
    for name in ("orchestral_pads", "reggae_organ", "reggae_skank", "chiptune_arp"):
        assert get_style(name, kind="comping").chord_sevenths
        part = generate_part(sheet, name, kind="comping", seed=3).midi
        for chord in sheet.chords:
            heard = {n.pitch % 12 for n in part.notes if chord.start_s - 0.05 <= n.start < chord.end_s - 0.05}
            assert heard <= chord.pitch_classes, (name, chord.label, heard)
            if chord.quality in ("7", "maj7", "min7", "hdim7"):
                assert (chord.root + CHORD_INTERVALS[chord.quality][3]) % 12 in heard, (name, chord.label)
    assert not get_style("folk_strum", kind="comping").chord_sevenths  # the default: triads stay triads


def test_custom_range_respected_and_too_small_refused():
    sheet = make_sheet()
    part = generate_part(sheet, "jazz_shell", kind="comping", range_=(55, 80)).midi
    assert all(55 <= n.pitch <= 80 for n in part.notes)
    with pytest.raises(ParameterError, match=r"range 60-68 \(8 semitones\) cannot hold style 'jazz_shell': its "
                                             r"voicings on every root need 22 semitones"):
        generate_part(sheet, "jazz_shell", kind="comping", range_=(60, 68))
    with pytest.raises(ParameterError, match=r"range 40-45 .* cannot hold style 'walking'"):
        generate_part(sheet, "walking", kind="bass", range_=(40, 45))


@pytest.mark.parametrize("kwargs,match", [
    ({"style": "jazz_swing", "kind": "drums", "kit": "jaz"}, r"unknown drum kit 'jaz'"),
    ({"style": "walking", "kind": "bass", "program": "Acoustic Bas"}, r"did you mean 'Acoustic Bass'"),
    ({"style": "walking", "kind": "bass", "kit": "jazz"}, r"a bass part takes program=, not kit="),
    ({"style": "walking", "kind": "comping"}, r"unknown comping style 'walking'"),
    ({"style": "jazz_swing", "kind": "drums", "options": ("brush",)}, r"has no option 'brush'; its options: brushes"),
    ({"style": "jazz_swing", "kind": "keys"}, r"kind='keys' must be drums, bass, comping or melody"),
])
def test_bad_arguments_are_one_clear_error(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        generate_part(make_sheet(bars=2), **kwargs)


def test_free_time_no_chords_and_other_meters_warn():
    free = LeadSheet(duration_s=6.0, bpm=float("nan"), chords=(Chord(0.0, 6.0, 0, "maj"),))
    result = generate_part(free, "root_fifth", kind="bass")
    assert any("free time" in w and "120 bpm" in w for w in result.warnings)
    assert [n.start for n in result.midi.notes[:2]] == pytest.approx([0.0, 1.0], abs=0.02)  # half notes, 120 bpm
    sheet = make_sheet()
    silent = LeadSheet(duration_s=sheet.duration_s, bpm=sheet.bpm, beats_s=sheet.beats_s,
                       downbeats_s=sheet.downbeats_s, chords=(Chord(0.0, sheet.duration_s, None),))
    for kind, name in (("bass", "walking"), ("comping", "jazz_shell")):
        result = generate_part(silent, name, kind=kind)
        assert result.midi.notes == [] and result.warnings == (f"no chords in the lead sheet: the {kind} part "
                                                               f"({name}) is silent",)
    assert generate_part(silent, "jazz_swing", kind="drums").midi.notes
    five = make_sheet(5, bars=4)
    result = generate_part(five, "reggae_skank", kind="comping")
    assert result.warnings == ("style 'reggae_skank' has no 5-beat variant; its 4/4 pattern is cycled beat by "
                               "beat to 5 beats per bar",)
    assert len(result.midi.notes) > 0
    assert generate_part(make_sheet(), "none", kind="drums").midi.notes == []


@pytest.mark.parametrize("name", [s.name for s in list_styles("melody")])
def test_melody_part_doubles_the_sheets_melody_in_its_range(name):
    """A melody part plays every note of the sheet's melody at its time, in the style's range: the line
    moves by whole octaves (its contour kept) and a note still outside moves by octaves into the range."""
    style = get_style(name, kind="melody")
    sheet = make_sheet()
    tune = [48, 50, 52, 53, 55, 57, 59, 60, 79]  # C3.. and one note two octaves above the rest
    melody = tuple(Note(0.3 + 0.5 * i, 0.7 + 0.5 * i, p) for i, p in enumerate(tune))
    sheet = replace(sheet, melody=melody)
    result = generate_part(sheet, name, kind="melody", seed=1)
    notes = sorted(result.midi.notes, key=lambda n: n.start)
    lo, hi = style.range
    assert result.warnings == () and result.kind == "melody" and not result.midi.is_drum
    assert result.midi.program == program_number(style.sound.program)
    assert [n.pitch % 12 for n in notes] == [p % 12 for p in tune]
    assert all(lo <= n.pitch <= hi for n in notes)
    steps = [b.pitch - a.pitch for a, b in zip(notes[:-2], notes[1:-1], strict=True)]
    assert steps == [b - a for a, b in zip(tune[:-2], tune[1:-1], strict=True)]  # the contour kept
    assert all(abs(n.start - m.start_s) <= 0.02 and n.end - n.start == pytest.approx(m.duration_s, abs=1e-3)
               for n, m in zip(notes, melody, strict=True))
    assert abs(np.median([n.pitch for n in notes]) - (lo + hi) / 2) <= 6


def test_melody_part_without_a_melody_is_silent_with_a_warning():
    result = generate_part(make_sheet(), "reggae_melodica", kind="melody")
    assert result.midi.notes == [] and result.warnings == ("no melody in the lead sheet: the melody part "
                                                           "(reggae_melodica) is silent",)
    with pytest.raises(ParameterError, match=r"unknown melody style 'reggae_skank'"):
        generate_part(make_sheet(), "reggae_skank", kind="melody")


@pytest.mark.skipif(shutil.which("fluidsynth") is None or not DEFAULT_SOUNDFONT.is_file(),
                    reason="needs the fluidsynth program and fluid-soundfont-gm")
def test_parts_render_through_fluidsynth():
    sheet = make_sheet(bars=2, bpm=120)
    parts = [generate_part(sheet, "bossa_nova", kind="drums"), generate_part(sheet, "bossa", kind="bass"),
             generate_part(sheet, "bossa_guitar", kind="comping")]
    assert len(part_midi(*parts, bpm=sheet.bpm).instruments) == 3
    audio = render_part(*parts, sr=22050, duration_s=sheet.duration_s)
    assert audio.shape == (2, round(sheet.duration_s * 22050)) and audio.dtype == np.float32
    assert np.isfinite(audio).all() and 1e-3 < float(np.sqrt(np.mean(audio ** 2))) < 1.0
