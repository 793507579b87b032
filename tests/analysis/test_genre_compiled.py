"""The taste model's compiled form computes what scikit-learn computes, and is used only while current."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from covermill.analysis import genre_compiled as gc
from covermill.analysis.genre import GenreModel
from covermill.analysis.genre_features import MODEL_COLUMNS
from covermill.analysis.taste import DEFAULT_MODEL, load_model
from covermill.errors import ModelLoadingError


def _overlapping(rng, classes=("blues", "classical", "jazz", "rock"), n=40):
    """Classes that overlap (decision values of every size, not only confident ones), table-like scales."""
    d = len(MODEL_COLUMNS)
    scales = np.logspace(-3, 6, d)
    centers = rng.normal(0, 1.5, (len(classes), d))
    X = np.concatenate([(c + rng.normal(0, 1, (n, d))) * scales for c in centers])
    return X, np.repeat(np.array(classes), n)


def test_compiled_probabilities_equal_scikit_learn(rng, tmp_path):
    X, y = _overlapping(rng)
    model = GenreModel().fit(X[::2], y[::2])
    path = model.save(tmp_path / "taste.skops")
    compiled = gc.load_compiled(path)
    assert isinstance(compiled, gc.CompiledGenreModel)
    probe = np.concatenate([X[1::2], X[1::2] * 3.0, rng.normal(0, 1e4, (10, X.shape[1]))])  # inside and far out
    expected = model.predict_proba(probe)
    assert 0.05 < expected.max(1).min() and expected.max(1).min() < 0.9  # some rows are unsure: a real test
    np.testing.assert_allclose(compiled.predict_proba(probe), expected, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(compiled.predict(probe), model.predict(probe))
    assert list(compiled.classes_) == list(model.classes_) and compiled.columns_ == model.columns_


def test_the_shipped_model_has_a_current_compiled_form(rng):
    compiled = gc.load_compiled(DEFAULT_MODEL)
    assert compiled is not None, "re-run `make models`: genre_model.npz is missing or older than genre_model.skops"
    skops_model = GenreModel.load(DEFAULT_MODEL)
    scaler = skops_model.estimator_.steps[0][1]
    X = scaler.mean_ + scaler.scale_ * rng.normal(0, 1.5, (200, len(scaler.mean_)))
    np.testing.assert_allclose(compiled.predict_proba(X), skops_model.predict_proba(X), rtol=0, atol=1e-12)


def test_a_stale_compiled_form_is_ignored(rng, tmp_path):
    X, y = _overlapping(rng)
    path = GenreModel().fit(X, y).save(tmp_path / "taste.skops")
    old = tmp_path / "old.npz"
    shutil.copy(gc.compiled_path(path), old)
    newer = GenreModel().fit(X[::2], y[::2])
    newer.save(path)
    shutil.copy(old, gc.compiled_path(path))  # the first model's arrays beside the second model's file
    assert gc.load_compiled(path) is None
    loaded = load_model.__wrapped__(str(path))  # the skops file, not the stale arrays
    assert isinstance(loaded, GenreModel)
    np.testing.assert_array_equal(loaded.predict_proba(X), newer.predict_proba(X))


def test_other_estimators_are_not_compiled(rng, tmp_path):
    X, y = _overlapping(rng)
    path = GenreModel().fit(X, y).save(tmp_path / "taste.skops")
    assert gc.compiled_path(path).is_file()
    GenreModel(estimator=RandomForestClassifier(n_estimators=5, random_state=0)).fit(X, y).save(path)
    assert not gc.compiled_path(path).exists()  # the earlier model's arrays are gone with it
    assert isinstance(load_model.__wrapped__(str(path)), GenreModel)
    with pytest.raises(gc.NotCompilable, match="StandardScaler"):
        gc.compile_model(RandomForestClassifier(), list(MODEL_COLUMNS))


def test_a_corrupt_compiled_form_is_one_clear_error(rng, tmp_path):
    X, y = _overlapping(rng)
    path = GenreModel().fit(X, y).save(tmp_path / "taste.skops")
    gc.compiled_path(path).write_bytes(b"not a zip")
    with pytest.raises(ModelLoadingError, match=r"taste\.npz: not a readable compiled genre model.*delete it"):
        gc.load_compiled(path)


def test_the_render_loads_the_taste_model_without_scikit_learn():
    code = ("import sys; from covermill.analysis.taste import genre_probabilities, load_model; m = load_model(); "
            "import numpy as np; t = np.linspace(0, 3, 3 * 22050); "
            "p = genre_probabilities(np.sin(2 * np.pi * 220 * t)[None].astype('float32'), sr=22050, model=m); "
            "print(type(m).__name__, round(sum(p.values()), 3), 'sklearn' in sys.modules, 'skops' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["CompiledGenreModel", "1.0", "False", "False"]
