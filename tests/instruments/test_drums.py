"""Drum re-voicing: band-split onsets become kick / snare / hi-hat notes of a GM drum kit."""

import shutil

import numpy as np
import pytest
import scipy.signal
from conftest import SR

from covermill import instruments
from covermill.errors import ParameterError
from covermill.instruments.drums import drum_hits, kit_number
from covermill.instruments.midi import DEFAULT_SOUNDFONT, NoNotesError

pytest.importorskip("pretty_midi")
needs_fluidsynth = pytest.mark.skipif(
    shutil.which("fluidsynth") is None or not DEFAULT_SOUNDFONT.is_file(),
    reason="needs Debian fluidsynth + fluid-soundfont-gm (make sysdeps)")

BEAT = 0.5  # 120 BPM, 2 bars


def groove(rng):
    """Kick on beats 1 and 3, snare on 2 and 4, closed hat on every 8th; shape (2, n)."""
    n = int(4.2 * SR)
    y = np.zeros(n)
    t = np.arange(int(0.25 * SR)) / SR
    kick = np.sin(2 * np.pi * (55 * t + 40 * (1 - np.exp(-t * 30)) / 30)) * np.exp(-t * 18)
    snare_noise = scipy.signal.sosfilt(scipy.signal.butter(2, [300, 3500], "bandpass", fs=SR, output="sos"),
                                       rng.standard_normal(len(t)))
    snare = (0.5 * snare_noise + 0.4 * np.sin(2 * np.pi * 190 * t)) * np.exp(-t * 25)
    hat_noise = scipy.signal.sosfilt(scipy.signal.butter(4, 7000, "highpass", fs=SR, output="sos"),
                                     rng.standard_normal(len(t)))
    hat = 0.6 * hat_noise * np.exp(-t * 60)
    for i in range(8):
        s = int((0.1 + i * BEAT) * SR)
        y[s : s + len(t)] += 0.8 * (kick if i % 2 == 0 else snare)
        for h in (0, 1):
            s8 = int((0.1 + i * BEAT + h * BEAT / 2) * SR)
            y[s8 : s8 + len(t)] += 0.3 * hat
    return np.vstack([y, y]).astype(np.float32)


def test_band_split_finds_kick_snare_hat(rng):
    hits = drum_hits(groove(rng), sr=SR)
    by = {p: np.array([n.start for n in hits if n.pitch == p]) for p in (36, 38, 42)}
    on_beats = 0.1 + np.arange(8) * BEAT
    for pitch, expected in ((36, on_beats[0::2]), (38, on_beats[1::2]), (42, 0.1 + np.arange(16) * BEAT / 2)):
        found = by[pitch]
        assert len(found) == len(expected), (pitch, found)
        assert np.max(np.abs(found - expected)) < 0.03


@needs_fluidsynth
def test_brush_kit_revoice(rng):
    x = groove(rng)
    inst = instruments.get_drums("brush")
    y = inst.revoice(x, sr=SR, time_ratio=0.8)
    assert y.shape == (1, round(x.shape[1] / 0.8)) and np.all(np.isfinite(y)) and np.max(np.abs(y)) > 0
    kit = inst.midi_.instruments[0]
    assert kit.is_drum and kit.program == 40 and len(kit.notes) == len(inst.notes_) == 24
    assert min(n.start for n in kit.notes) == pytest.approx(min(n.start for n in inst.notes_) / 0.8, abs=1e-6)


def test_kits_and_errors():
    assert kit_number("Brush") == 40 and kit_number("jazz kit") == 32 and kit_number(25) == 25
    with pytest.raises(ParameterError, match="unknown drum kit 'bongos'; choose one of standard"):
        kit_number("bongos")


@needs_fluidsynth
def test_silent_drums_are_one_clear_line():
    with pytest.raises(NoNotesError, match="no drum hits found"):
        instruments.get_drums("jazz").revoice(np.zeros((2, SR), np.float32), sr=SR)
