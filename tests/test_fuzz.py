"""Fuzz tests of the two loaders a downloaded file reaches first (issue 18).

Every outcome is a valid recipe / audio array or a :class:`CovermillError` with one line,
never another exception. Bounded: ``max_examples`` and a per-example ``deadline``; no
example database is written.
"""

import io
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from covermill.audio import load_audio
from covermill.errors import CovermillError
from covermill.recipes import Recipe, load_recipe

FUZZ = settings(max_examples=60, deadline=3000, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# ---------------------------------------------------------------- recipes

_KEYS = ["name", "description", "extends", "stems", "vocals", "drums", "bass", "other", "action", "revoice",
         "instrument", "gain_db", "pan", "effects", "plugin", "room_size", "Reverb", "Convolution",
         "impulse_response_filename", "tempo", "bpm_delta", "ratio", "target_bpm", "key", "semitones", "master",
         "lufs", "true_peak_db", "buses", "sends", "keep", "mute", "flute", "pop_to_jazz", "../x", "/etc/passwd"]
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                     st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(_KEYS), st.text(max_size=12))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.sampled_from(_KEYS), inner, max_size=5)),
                       max_leaves=25)
_structured = st.dictionaries(st.sampled_from(_KEYS), _values, max_size=6).map(
    lambda d: yaml.safe_dump(d, allow_unicode=True))
_TOKENS = list("abc :-[]{}&*!|>'\"#%@`,?\n\t 0123456789.") + ["!!python/object ", "*a", "&a ", "<<: ", "\ufeff",
                                                                "name: x\n", "stems:\n  ", "- "]
_raw = st.lists(st.sampled_from(_TOKENS), max_size=80).map("".join)


def _check_recipe(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            recipe = load_recipe(path)
        except CovermillError as exc:
            assert "\n" not in str(exc) and str(exc)
            return
        assert isinstance(recipe, Recipe)


@FUZZ
@given(_structured)
def test_recipe_loader_structured(text):
    _check_recipe(text)


@FUZZ
@given(_raw)
def test_recipe_loader_raw_text(text):
    _check_recipe(text)


# ---------------------------------------------------------------- audio


def _wav_bytes(fmt: str) -> bytes:
    t = np.arange(int(2.2 * 8000)) / 8000
    y = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, np.stack([y, y], axis=1), 8000, format=fmt)
    return buf.getvalue()


_SEEDS = [_wav_bytes("WAV"), _wav_bytes("FLAC")]


@st.composite
def _mutated(draw):
    data = bytearray(draw(st.sampled_from(_SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, min(len(data) - 1, 200)))  # headers: where a decoder is most easily misled
        data[pos] = draw(st.integers(0, 255))
    cut = draw(st.one_of(st.none(), st.integers(1, len(data))))
    return bytes(data[:cut] if cut else data)


def _check_audio(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"fuzz{suffix}"
        path.write_bytes(data)
        try:
            y = load_audio(path)
        except CovermillError as exc:
            assert "\n" not in str(exc) and str(exc)
            return
        assert y.dtype == np.float32 and y.ndim == 2 and y.shape[0] == 2 and np.all(np.isfinite(y))


@settings(FUZZ, max_examples=40)
@given(_mutated(), st.sampled_from([".wav", ".flac"]))
def test_audio_loader_mutated_files(data, suffix):
    _check_audio(data, suffix)


@settings(FUZZ, max_examples=20)
@given(st.binary(min_size=1, max_size=600), st.sampled_from([".wav", ".mp3", ".m4a"]))
def test_audio_loader_random_bytes(data, suffix):
    _check_audio(data, suffix)
