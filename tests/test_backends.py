"""One conformance suite that every registered backend of a stage must pass (like
scikit-learn's estimator checks): a new separator or instrument is tested by registering it.

* separators (every name in ``covermill.stems.SEPARATORS`` whose weights are here): the four
  canonical stems, float32 ``(2, n)``, finite, summing back to the mix where the backend says so;
* instruments (every built-in instrument): ``render`` in every mode returns a
  :class:`~covermill.instruments.notes.Voicing` of ``round(n / time_ratio)`` finite float32 samples,
  ``revoice`` is ``render(...).audio``, silence in gives silence out (or NoNotesError).
"""

import numpy as np
import pytest
from conftest import SR, song

from covermill import instruments, stems
from covermill.constants import STEM_NAMES
from covermill.errors import BackendUnavailableError, ModelLoadingError
from covermill.instruments.notes import NoNotesError, Voicing
from covermill.leadsheet import Chord, Note


@pytest.fixture(scope="module")
def mix():
    return song(bars=2, sr=SR)[:, : 3 * SR]


@pytest.mark.parametrize("name", stems.SEPARATORS.available())
def test_separator_contract(name, mix):
    try:
        sep = stems.resolve(name)
        parts = sep.separate(mix, sr=SR)
    except (BackendUnavailableError, ModelLoadingError) as exc:
        pytest.skip(f"{name}: {exc}")
    assert set(STEM_NAMES) <= set(parts), f"{name} must return at least {STEM_NAMES}"
    for stem, y in parts.items():
        assert y.dtype == np.float32 and y.shape == mix.shape and np.all(np.isfinite(y)), stem
    assert isinstance(sep.name, str) and sep.name


BUILTIN = sorted(instruments.BUILTIN_TIMBRES)
NOTES = (Note(0.2, 0.9, 60), Note(1.0, 1.8, 64), Note(1.9, 2.6, 67))
CHORDS = (Note(0.2, 1.4, 60), Note(0.2, 1.4, 64), Note(0.2, 1.4, 67), Note(1.5, 2.6, 57), Note(1.5, 2.6, 60))


@pytest.mark.parametrize("name", BUILTIN)
@pytest.mark.parametrize(("mode", "notes"), [("expressive", None), ("notes", NOTES), ("chords", CHORDS)])
def test_instrument_contract(name, mode, notes, mix):
    inst = instruments.get(name)
    ratio = 0.9
    v = inst.render(mix, sr=SR, time_ratio=ratio, semitones=2.0, notes=notes, mode=mode)
    assert isinstance(v, Voicing)
    assert v.audio.dtype == np.float32 and v.audio.ndim == 2 and v.audio.shape[0] in (1, 2)
    assert v.audio.shape[1] == int(round(mix.shape[1] / ratio)) and np.all(np.isfinite(v.audio))
    assert float(np.max(np.abs(v.audio))) > 1e-4, "plays something"
    if mode == "expressive":
        np.testing.assert_array_equal(inst.revoice(mix, sr=SR, time_ratio=ratio, semitones=2.0), v.audio)
    else:
        assert v.notes, "says what it played"


@pytest.mark.parametrize("name", BUILTIN)
def test_instrument_silence_in_silence_out(name):
    silent = np.zeros((2, 2 * SR), np.float32)
    try:
        v = instruments.get(name).render(silent, sr=SR)
    except NoNotesError:
        return
    assert not np.any(v.audio)


def test_registry_names_unknown_backends_with_the_choices():
    from covermill.errors import ParameterError

    with pytest.raises(ParameterError, match=r"unknown separator 'dps' \(did you mean 'dsp'\?\); choose one of"):
        stems.get("dps")


def test_cli_choices_come_from_the_registry():
    from click.testing import CliRunner

    from covermill.cli import main

    out = CliRunner().invoke(main, ["render", "--help"]).output
    assert "[" + "|".join(stems.SEPARATORS.available()) + "]" in out.replace("\n", "").replace(" ", "")


@pytest.mark.parametrize("chord", [Chord(0, 1, 0, "maj"), Chord(0, 1, 9, "min7")])
def test_chords_mode_plays_the_chord(chord):
    from covermill.instruments.chords import voice_chords

    notes = voice_chords((chord,), low=48, high=76)
    assert {n.pitch % 12 for n in notes} <= chord.pitch_classes
