"""One conformance suite that every registered backend of a stage must pass (like
scikit-learn's estimator checks): a new separator, instrument kind, stretcher, mixer, effect or
QA check is tested by registering it.

* separators (every name in ``covermill.stems.SEPARATORS`` whose weights are here): the four
  canonical stems, float32 ``(2, n)``, finite, summing back to the mix where the backend says so;
* instruments (every built-in instrument): ``render`` in every mode returns a
  :class:`~covermill.instruments.notes.Voicing` of ``round(n / time_ratio)`` finite float32 samples,
  ``revoice`` is ``render(...).audio``, silence in gives silence out (or NoNotesError);
* instrument kinds (every name in ``covermill.instruments.KINDS``): the kind's example instrument
  passes the instrument contract above; named kinds list what they offer;
* stretchers (``STRETCHERS``): exactly ``round(n / time_ratio)`` finite float32 samples per channel,
  an identity copy at ratio 1 and 0 semitones;
* mixers (``MIXERS``): ``check`` passes a plain recipe, ``mix`` returns the cover (2, n_out) and
  tracks that sum to it;
* effects (``EFFECTS``): ranges name real parameters, the plugin built with its defaults keeps
  the shape and stays finite;
* QA checks (``CHECKS``): a JSON block or ``None``.
"""

import numpy as np
import pytest
from conftest import SR, song

from covermill import instruments, stems
from covermill.automation.mixers import MIXERS
from covermill.automation.qa import CHECKS
from covermill.automation.tempo import STRETCHERS, stretch
from covermill.constants import STEM_NAMES
from covermill.effects import EFFECTS
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


def _instrument_contract(inst, mode, notes, mix):
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
@pytest.mark.parametrize(("mode", "notes"), [("expressive", None), ("notes", NOTES), ("chords", CHORDS)])
def test_instrument_contract(name, mode, notes, mix):
    _instrument_contract(instruments.get(name), mode, notes, mix)


@pytest.fixture(scope="module")
def kinds_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("instrument-kinds")


@pytest.mark.parametrize("kind", instruments.KINDS.available())
@pytest.mark.parametrize(("mode", "notes"), [("expressive", None), ("notes", NOTES), ("chords", CHORDS)])
def test_instrument_kind_contract(kind, mode, notes, mix, kinds_dir):
    k = instruments.KINDS.get(kind)
    assert isinstance(k, instruments.InstrumentKind) and k.name == kind
    value = k.example(kinds_dir)
    if k.field == "instrument":
        assert value in k.names(kinds_dir) and k.offers(value, kinds_dir) and isinstance(k.label(value, kinds_dir), str)
        assert instruments.get(value, instruments_dir=kinds_dir).name == k.build(value, instruments_dir=kinds_dir).name
    else:
        assert k.names(kinds_dir) == {} and not k.offers(str(value), kinds_dir)
    inst = k.build(value, instruments_dir=kinds_dir)
    assert isinstance(inst, instruments.Instrument)
    try:
        inst.check()
    except BackendUnavailableError as exc:
        pytest.skip(f"{kind}: {exc}")
    _instrument_contract(inst, mode, notes, mix)


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


def test_cli_choices_come_from_the_registry(tmp_path):
    from click.testing import CliRunner

    from covermill.cli import main

    out = CliRunner().invoke(main, ["render", "--help"]).output.replace("\n", "").replace(" ", "")
    for registry in (stems.SEPARATORS, STRETCHERS, MIXERS):
        assert "[" + "|".join(registry.available()) + "]" in out, registry.kind
    out = CliRunner().invoke(main, ["instruments", "list", "--help"]).output.replace("\n", "").replace(" ", "")
    assert "[" + "|".join(instruments.KINDS.available()) + "]" in out
    listed = CliRunner().invoke(main, ["recipes", "effects"]).output.splitlines()
    assert [line.split()[0] for line in listed] == EFFECTS.available()
    builtin = CliRunner().invoke(main, ["instruments", "list", "--kind", "parametric",
                                                  "--instruments-dir", str(tmp_path)]).output
    assert {line.split()[0] for line in builtin.splitlines()} == set(BUILTIN)


@pytest.mark.parametrize("chord", [Chord(0, 1, 0, "maj"), Chord(0, 1, 9, "min7")])
def test_chords_mode_plays_the_chord(chord):
    from covermill.instruments.chords import voice_chords

    notes = voice_chords((chord,), low=48, high=76)
    assert {n.pitch % 12 for n in notes} <= chord.pitch_classes


@pytest.mark.parametrize("name", STRETCHERS.available())
@pytest.mark.parametrize(("ratio", "semitones"), [(0.8, 0.0), (1.25, 2.0), (1.0, 0.0)])
def test_stretcher_contract(name, ratio, semitones, mix):
    try:
        out = stretch(mix, sr=SR, time_ratio=ratio, semitones=semitones, engine=name, high_quality=False)
    except BackendUnavailableError as exc:
        pytest.skip(f"{name}: {exc}")
    assert out.dtype == np.float32 and out.shape == (2, int(round(mix.shape[1] / ratio))) and np.all(np.isfinite(out))
    if ratio == 1.0 and semitones == 0.0:
        np.testing.assert_array_equal(out, mix)
        assert out is not mix
    else:
        assert float(np.max(np.abs(out))) > 1e-3


@pytest.mark.parametrize("name", MIXERS.available())
def test_mixer_contract(name, mix, tmp_path_factory):
    import shutil

    from covermill.automation.mixers import Mixer
    from covermill.recipes import Recipe

    mixer = MIXERS.get(name)
    assert isinstance(mixer, Mixer) and mixer.name == name
    recipe = Recipe.model_validate({"name": "plain", "stems": {"drums": {"gain_db": -3.0, "pan": 0.3},
                                                               "bass": {"gain_db": 0.0}, "vocals": {"action": "mute"}}})
    mixer.check(recipe)
    ratio, n = 1.25, mix.shape[1]
    n_out = int(round(n / ratio))
    kept = {"drums": mix * 0.5, "bass": mix * 0.25}
    played = {"other": np.ascontiguousarray(mix[:, :n_out] * 0.3)}
    started = []

    def audacity():
        if not started:
            if shutil.which("audacity") is None:
                pytest.skip(f"{name}: audacity is not installed")
            from covermill.automation.audacity import Audacity

            started.append(Audacity.start(profile=tmp_path_factory.mktemp("audacity-profile"), timeout_s=60,
                                          command_timeout_s=60, headless=True))
        return started[0]

    try:
        stretched = mixer.stretch_kept(kept, recipe=recipe, sr=SR, n_in=n, time_ratio=ratio, semitones=0.0,
                                       stretcher="pedalboard", root=None)
        cover, tracks = mixer.mix(lambda: stretched, played, kept=kept, recipe=recipe, sr=SR, n_out=n_out,
                                  time_ratio=ratio, semitones=0.0, root=None, audacity=audacity)
    finally:
        for app in started:
            app.stop()
    assert cover.dtype == np.float32 and cover.shape == (2, n_out) and np.all(np.isfinite(cover))
    assert float(np.max(np.abs(cover))) > 1e-3
    if tracks:
        assert list(tracks)[: len(kept)] == list(kept)
        np.testing.assert_allclose(sum(tracks.values()), cover, atol=1e-5)


@pytest.mark.parametrize("name", EFFECTS.available())
def test_effect_contract(name, tmp_path):
    import soundfile as sf

    from covermill.effects import Effect, build_plugin

    effect = EFFECTS.factory(name)
    assert isinstance(effect, Effect) and effect.name == name
    params = effect.parameters()
    assert isinstance(params, list) and set(effect.ranges) <= set(params), "ranges name real parameters"
    assert effect.path_param is None or effect.path_param in params
    y = np.random.default_rng(0).standard_normal((2, SR)).astype(np.float32) * 0.1
    kwargs = {}
    if effect.path_param:
        ir = np.zeros(SR // 10, np.float32)
        ir[0] = 1.0
        sf.write(tmp_path / "ir.wav", ir, SR)
        kwargs[effect.path_param] = "ir.wav"
    out = build_plugin(name, kwargs, root=tmp_path)(y, SR)
    assert out.dtype == np.float32 and out.shape[0] == 2 and np.all(np.isfinite(out))
    assert abs(out.shape[1] - y.shape[1]) <= SR // 10  # resamplers and codecs may add a little


@pytest.mark.parametrize("name", CHECKS.available())
def test_qa_check_contract(name, mix):
    import json

    from covermill.automation.qa import QAContext
    from covermill.leadsheet import LeadSheet
    from covermill.recipes import load_recipe

    sheet = LeadSheet(duration_s=mix.shape[1] / SR, bpm=120.0, beats_s=(0.0, 0.5, 1.0), downbeats_s=(0.0,))
    for recipe in (load_recipe("pop_to_jazz"), load_recipe("bossa_nova")):
        block = CHECKS.factory(name)(QAContext(mix, mix, SR, recipe, sheet, sheet, {}))
        assert block is None or isinstance(block, dict)
        json.dumps(block, allow_nan=False)
