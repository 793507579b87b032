"""Bleed in a separated lead: notes whose pitch is barely in the stem take the mix's melody."""

from __future__ import annotations

import numpy as np
import pytest

from covermill.analysis.bleed import fill_gaps, harmonic_energy, note_spectra, reject_bleed
from covermill.analysis.leadsheet import lead_sheet
from covermill.analysis.melody import join_fragments
from covermill.leadsheet import Note

SR = 22050
BEAT_S = 0.5
#: (melody pitch, chord) per beat: the melody above a C-major / A-minor pad voiced from C3.
PLAN = [(76, (48, 52, 55)), (74, (48, 52, 55)), (72, (48, 52, 55)), (79, (48, 52, 55)),
        (77, (45, 48, 52)), (76, (45, 48, 52)), (72, (45, 48, 52)), (69, (45, 48, 52))]
#: Beats where the separator lost the melody: the stem holds only the chords' bleed there.
LOST = (1, 3, 5)


def _tone(midi: float, n: int, *, amp: float = 0.1, harmonics: int = 5) -> np.ndarray:
    t = np.arange(n) / SR
    f = 440.0 * 2 ** ((midi - 69) / 12)
    out = sum(np.sin(2 * np.pi * k * f * t) / k for k in range(1, harmonics + 1) if k * f < SR / 2)
    env = np.minimum(1.0, t / 0.01) * np.minimum(1.0, (n / SR - t) / 0.02)
    return (amp * out * env).astype(np.float32)


def _song(bleed_db: float = -12.0):
    """``(mix, stem, melody, stem_notes)``: the stem is the melody plus the chords ``bleed_db``
    down, except on :data:`LOST` beats, where it is the bleed alone; ``stem_notes`` is what an f0
    tracker of the stem hears: the melody, and on lost beats the top chord tone."""
    n = int(BEAT_S * SR)
    mix = np.zeros(n * len(PLAN), np.float32)
    stem = np.zeros_like(mix)
    gain = 10 ** (bleed_db / 20)
    melody, heard = [], []
    for i, (pitch, chord) in enumerate(PLAN):
        a = i * n
        lead = _tone(pitch, n)
        pad = sum(_tone(p, n, amp=0.12) for p in chord)
        mix[a:a + n] += lead + pad
        stem[a:a + n] += gain * pad + (0.0 if i in LOST else lead)
        t0, t1 = i * BEAT_S, (i + 1) * BEAT_S - 0.02
        melody.append(Note(t0, t1, pitch))
        heard.append(Note(t0, t1, chord[-1] if i in LOST else pitch))
    return mix, stem, melody, heard


def test_harmonic_energy_peaks_at_the_tone_not_its_octaves():
    spec = note_spectra(_tone(64, SR), sr=SR, spans_s=[(0.0, 1.0)])
    midi = np.arange(40, 90)
    sal = harmonic_energy(spec[0], sr=SR, midi=midi)
    assert midi[np.argmax(sal)] == 64
    assert sal[midi == 52][0] < 0.8 * sal.max()  # the octave below is not a rival


def test_bleed_notes_at_minus_12_db_take_the_mixs_melody():
    mix, stem, melody, heard = _song(-12.0)
    out = reject_bleed(heard, stem=stem, mix=mix, sr=SR)
    assert [n.pitch for n in out] == [n.pitch for n in melody]
    assert [(n.start_s, n.end_s) for n in out] == [(n.start_s, n.end_s) for n in heard]
    assert all(heard[i].pitch in PLAN[i][1] and out[i].pitch not in PLAN[i][1] for i in LOST)


def test_bleed_notes_are_dropped_without_a_fallback():
    mix, stem, melody, heard = _song(-12.0)
    out = reject_bleed(heard, stem=stem, mix=mix, sr=SR, fallback_ratio=None)
    kept = [i for i in range(len(PLAN)) if i not in LOST]
    assert list(out) == [heard[i] for i in kept]


def test_notes_that_are_in_the_stem_stay_even_when_they_are_chord_tones():
    mix, _, _, _ = _song()
    n = int(BEAT_S * SR)
    stem = np.concatenate([_tone(PLAN[i][1][-1], n) for i in range(len(PLAN))])  # the stem sings the chord tone
    mix = mix + stem
    heard = [Note(i * BEAT_S, (i + 1) * BEAT_S - 0.02, PLAN[i][1][-1]) for i in range(len(PLAN))]
    assert list(reject_bleed(heard, stem=stem, mix=mix, sr=SR)) == heard


def test_reject_bleed_of_no_notes_and_of_silence():
    mix, stem, _, heard = _song()
    assert reject_bleed([], stem=stem, mix=mix, sr=SR) == ()
    silent = np.zeros_like(mix)
    assert reject_bleed(heard, stem=silent, mix=silent, sr=SR) == ()


def test_lead_sheet_with_the_lead_stem_plays_no_bleed_notes():
    mix, stem, melody, heard = _song(-12.0)
    # the stem's f0 as pYIN would give it: the heard notes, voiced, 100 frames/s
    times = np.arange(0, len(mix) / SR, 0.01)
    f0 = np.full(len(times), np.nan)
    for note in heard:
        f0[(times >= note.start_s) & (times < note.end_s)] = 440.0 * 2 ** ((note.pitch - 69) / 12)
    vp = np.where(np.isfinite(f0), 0.9, 0.0)
    plain = lead_sheet(mix, sr=SR, lead_f0=(times, f0, vp))
    checked = lead_sheet(mix, sr=SR, lead_f0=(times, f0, vp), lead_stem=stem)

    def pitch_at(sheet, t):
        return next((n.pitch for n in sheet.melody if n.start_s <= t < n.end_s), None)

    lost_t = [(i + 0.5) * BEAT_S for i in LOST]
    assert [pitch_at(plain, t) for t in lost_t] == [heard[i].pitch for i in LOST]  # bleed without the stem
    assert [pitch_at(checked, t) for t in lost_t] == [melody[i].pitch for i in LOST]
    kept_t = [(i + 0.5) * BEAT_S for i in range(len(PLAN)) if i not in LOST]
    assert [pitch_at(checked, t) for t in kept_t] == [pitch_at(plain, t) for t in kept_t]
    assert "bleed" in checked.methods["melody"]


def test_fill_gaps_adds_the_melody_where_the_stem_holds_a_little_of_it():
    mix, _, melody, _ = _song()
    n = int(BEAT_S * SR)
    # the stem: the melody 20 dB down (too faint for pYIN to voice) over the chords' bleed 12 dB down
    stem = 0.1 * np.concatenate([_tone(p, n) for p, _ in PLAN])
    stem += 0.25 * np.concatenate([sum(_tone(p, n, amp=0.12) for p in chord) for _, chord in PLAN])
    heard = [m for i, m in enumerate(melody) if i % 2 == 0]  # the f0 tracker voiced every other beat
    grid = np.arange(len(PLAN) + 1) * BEAT_S
    out = fill_gaps(heard, stem=stem, mix=mix, sr=SR, grid_s=grid)
    assert [n.pitch for n in out] == [m.pitch for m in melody]
    assert all(n in out for n in heard)


def test_fill_gaps_leaves_an_instrumental_passage_empty():
    """Where the melody rests, the stem holds only the accompaniment's faint bleed (-40 dB: a
    separator keeps sustained chords out of the vocals): no chord tone becomes melody."""
    n = int(BEAT_S * SR)
    lead = np.concatenate([_tone(p, n) for p, _ in PLAN])
    pad = np.concatenate([sum(_tone(p, n, amp=0.12) for p in chord) for _, chord in PLAN])
    lead[4 * n:] = 0.0  # the melody rests from beat 4 on
    mix, stem = lead + pad, lead + 0.01 * pad
    melody = [Note(i * BEAT_S, (i + 1) * BEAT_S - 0.02, PLAN[i][0]) for i in range(4)]
    out = fill_gaps(melody[:2], stem=stem, mix=mix, sr=SR, grid_s=np.arange(len(PLAN) + 1) * BEAT_S)
    assert [n.pitch for n in out] == [m.pitch for m in melody]
    assert max(n.end_s for n in out) <= 4 * BEAT_S + 1e-6


def test_fill_gaps_joins_cells_of_one_pitch_and_keeps_notes():
    n = int(BEAT_S * SR)
    held = _tone(70, 4 * n)  # one long note over four beats, in the stem and the mix, over a pad
    pad = sum(_tone(p, 4 * n, amp=0.12) for p in (48, 52, 55))
    mix, stem = held + pad, held + 0.01 * pad
    first = Note(0.0, 0.5 * BEAT_S, 70)  # the f0 tracker voiced the first eighth only
    out = fill_gaps([first], stem=stem, mix=mix, sr=SR, grid_s=np.arange(9) * BEAT_S / 2)
    assert len(out) == 1 and out[0].pitch == 70
    assert out[0].start_s == 0.0 and out[0].end_s == pytest.approx(4 * BEAT_S)
    assert fill_gaps([first], stem=stem, mix=mix, sr=SR, grid_s=np.zeros(0)) == (first,)


def test_join_fragments_heals_dropouts_off_the_grid_and_keeps_struck_repeats():
    grid = np.arange(0, 4.01, 0.25)  # eighths at 120 BPM
    notes = [Note(0.0, 0.40, 67), Note(0.55, 1.0, 67),  # dropout: the second piece starts off the grid
             Note(1.0, 1.22, 69), Note(1.25, 1.5, 69),  # a repeated note struck on the grid
             Note(1.5, 1.6, 71), Note(2.3, 2.5, 71)]  # off the grid but 0.7 s later: a new note
    out = join_fragments(notes, grid_s=grid)
    assert out == (Note(0.0, 1.0, 67), Note(1.0, 1.22, 69), Note(1.25, 1.5, 69), Note(1.5, 1.6, 71),
                   Note(2.3, 2.5, 71))
    assert join_fragments(notes, grid_s=np.zeros(0)) == tuple(notes)
