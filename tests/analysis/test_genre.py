"""GTZAN features, genre classifiers and their skops persistence."""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import SHARED, sine
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import SVC

from covermill.analysis.genre import (
    MODEL_COLUMNS,
    GenreModel,
    evaluate,
    load_gtzan_table,
)
from covermill.analysis.genre_features import FEATURE_COLUMNS, GTZAN_SR, gtzan_features
from covermill.audio import load_audio
from covermill.errors import ModelLoadingError, ParameterError

GTZAN_30 = SHARED / "data" / "gtzan" / "features_30_sec.csv"
REAL_SONG = SHARED / "data" / "librosa_data" / "cc_by_or_pd" / "Karissa_Hobbs_-_Lets_Go_Fishin.hq.ogg"
needs_shared = pytest.mark.skipif(not GTZAN_30.exists(), reason=f"shared data absent: {GTZAN_30}")


@pytest.fixture(scope="module")
def sine_features():
    return gtzan_features(sine(1000.0, 4.0, sr=44100), sr=44100)


def test_feature_names_are_the_table_columns(sine_features):
    assert list(sine_features) == FEATURE_COLUMNS
    assert len(FEATURE_COLUMNS) == 58 and FEATURE_COLUMNS[0] == "length" and FEATURE_COLUMNS[-1] == "mfcc20_var"
    assert MODEL_COLUMNS == FEATURE_COLUMNS[1:]


def test_sine_features_are_plausible(sine_features):
    f = sine_features
    assert all(np.isfinite(v) for v in f.values())
    assert f["length"] == 4 * GTZAN_SR
    assert f["spectral_centroid_mean"] == pytest.approx(1000.0, rel=0.03)
    assert f["zero_crossing_rate_mean"] == pytest.approx(2 * 1000 / GTZAN_SR, rel=0.03)
    assert f["rms_mean"] == pytest.approx(0.5 / np.sqrt(2), rel=0.05)
    assert f["harmony_var"] > 100 * f["perceptr_var"]  # a steady tone is harmonic


def test_noise_is_brighter_than_sine(rng, sine_features):
    noise = (0.1 * rng.standard_normal((1, 3 * 22050))).astype(np.float32)
    f = gtzan_features(noise, sr=22050)
    assert all(np.isfinite(v) for v in f.values())
    assert f["spectral_centroid_mean"] > 4000 and f["zero_crossing_rate_mean"] > 0.3
    assert f["spectral_centroid_mean"] > sine_features["spectral_centroid_mean"]


def test_only_the_first_30_s_are_used():
    f = gtzan_features(sine(440.0, 31.0, sr=22050, channels=1), sr=22050)
    assert f["length"] == 30 * GTZAN_SR


def test_too_short_audio_is_refused():
    with pytest.raises(ParameterError, match="at least"):
        gtzan_features(np.zeros((1, 100), np.float32), sr=22050)


@pytest.mark.shared
@needs_shared
def test_real_recording_lies_within_the_table():
    table = load_gtzan_table(GTZAN_30, columns=FEATURE_COLUMNS)
    f = gtzan_features(load_audio(REAL_SONG), sr=44100)
    values = np.array([f[c] for c in FEATURE_COLUMNS])
    lo, hi = table.X.min(axis=0), table.X.max(axis=0)
    margin = 0.5 * (hi - lo)
    inside = (values >= lo - margin) & (values <= hi + margin)
    outside = [c for c, ok in zip(FEATURE_COLUMNS, inside, strict=True) if not ok]
    assert inside.mean() >= 0.9, outside


@pytest.mark.shared
@needs_shared
def test_table_loads_with_track_groups():
    table = load_gtzan_table(GTZAN_30)
    assert table.X.shape == (1000, len(MODEL_COLUMNS))
    assert len(set(table.y)) == 10 and table.groups[0] == "blues.00000"


def _blobs(rng, n_per_class=30, d=len(MODEL_COLUMNS)):
    centers = rng.normal(0, 5, (3, d)) * np.logspace(-3, 6, d)  # table-like scales
    X = np.concatenate([c + rng.normal(0, 1, (n_per_class, d)) * np.logspace(-3, 6, d) for c in centers])
    y = np.repeat(np.array(["classical", "jazz", "rock"]), n_per_class)
    return X, y


def test_classifier_learns_separable_data(rng):
    X, y = _blobs(rng)
    model = GenreModel().fit(X[::2], y[::2])
    assert list(model.classes_) == ["classical", "jazz", "rock"]
    assert np.mean(model.predict(X[1::2]) == y[1::2]) == 1.0
    proba = model.predict_proba(X[1::2])
    assert proba.shape == (45, 3) and np.allclose(proba.sum(axis=1), 1.0)


def test_evaluate_reports_ci(rng):
    X, y = _blobs(rng, n_per_class=20)
    pipe = Pipeline([("s", StandardScaler()), ("c", SVC())])
    groups = np.repeat(np.arange(30), 2)
    for g in (None, groups):
        ev = evaluate({"svm": pipe}, X, y, folds=3, repeats=1, groups=g)["svm"]
        assert ev.f1_mean == pytest.approx(1.0) and ev.ci95[0] <= ev.f1_mean <= ev.ci95[1]
        assert ev.confusion.sum() == len(y)


def test_skops_round_trip(rng, tmp_path):
    X, y = _blobs(rng)
    model = GenreModel().fit(X, y)
    path = model.save(tmp_path / "genre.skops")
    loaded = GenreModel.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert list(loaded.classes_) == list(model.classes_)


def test_untrusted_type_is_refused(rng, tmp_path):
    import skops.io as sio

    X, y = _blobs(rng, n_per_class=5)
    evil = Pipeline([("f", FunctionTransformer(os.system)), ("c", SVC())])
    path = tmp_path / "evil.skops"
    sio.dump({"format": "covermill-genre/1", "columns": MODEL_COLUMNS, "estimator": evil}, path)
    with pytest.raises(ModelLoadingError, match="untrusted types"):
        GenreModel.load(path)


def test_bad_model_files_are_refused(tmp_path):
    with pytest.raises(ModelLoadingError, match="no such model"):
        GenreModel.load(tmp_path / "missing.skops")
    junk = tmp_path / "junk.skops"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ModelLoadingError, match="not a readable skops file"):
        GenreModel.load(junk)
    with pytest.raises(ParameterError, match="not fitted"):
        GenreModel().predict(np.zeros((1, 3)))


def test_model_load_imports_no_torch_and_trusts_the_same_types():
    """skops is imported without torch or dask (see ``genre._skops_io``); its trusted types are the same."""
    import subprocess
    import sys

    names = "import skops.io._trusted_types as t; print(sorted(t.SKLEARN_ESTIMATOR_TYPE_NAMES))"
    ours = ("import sys; from covermill.analysis.taste import load_model; load_model(); "
            f"assert not {{'torch', 'dask.array'}} & set(sys.modules), 'imported'; {names}")
    got = subprocess.run([sys.executable, "-c", ours], capture_output=True, text=True, check=True).stdout
    plain = subprocess.run([sys.executable, "-c", names], capture_output=True, text=True, check=True).stdout
    assert got == plain and "sklearn.svm._classes.SVC" in got
