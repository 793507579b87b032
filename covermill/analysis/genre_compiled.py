"""A fitted taste model as plain arrays: the render's genre check without importing scikit-learn.

The shipped taste model is a scikit-learn pipeline (``StandardScaler`` then a sigmoid-calibrated
RBF ``SVC``, ``CalibratedClassifierCV(ensemble=False)``) saved with skops. Loading it costs a
fresh process about 4.9 CPU-seconds, almost all imports: skops lists scikit-learn's estimators when
it is imported, which imports every scikit-learn module. Predicting one row takes a millisecond.
So :meth:`~.genre.GenreModel.save` also writes the fitted arrays of that one pipeline shape to a
``.npz`` beside the ``.skops`` file (no pickle: ``np.load(allow_pickle=False)``), stamped with the
SHA-256 of the ``.skops`` file it came from; :func:`load_compiled` reads it back only while that
stamp matches. :class:`CompiledGenreModel` computes what scikit-learn computes, in the same order:

1. standardise: ``(X - mean_) / scale_``;
2. the SVC's one-vs-one decision values, libsvm's sum ``intercept_[p] + sum(dual_coef * K(sv, x))``
   over the two classes' support vectors, with ``K = exp(-gamma * |x - sv|^2)``;
3. scikit-learn's one-vs-rest shape of them (votes plus bounded confidences);
4. one sigmoid per class, ``1 / (1 + exp(a * f + b))``, normalised to sum to 1.

Tests compare it with the scikit-learn model it came from (``tests/analysis/test_genre_compiled.py``).
Any other model (a random forest, a binary problem, another kernel) is not compiled: it loads
through skops as before.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ModelLoadingError, ParameterError
from ..fsutil import atomic_path, file_hash

__all__ = ["CompiledGenreModel", "NotCompilable", "compile_model", "compiled_path", "load_compiled", "save_compiled",
           "write_beside"]

FORMAT = "covermill-genre-compiled/1"


class NotCompilable(ParameterError):
    """The estimator is not the one pipeline shape :class:`CompiledGenreModel` computes."""


def compiled_path(skops_path: str | os.PathLike) -> Path:
    """Where the compiled form of ``skops_path`` lives: the same name with ``.npz``."""
    return Path(skops_path).with_suffix(".npz")


class CompiledGenreModel:
    """``predict_proba`` of a standardised, sigmoid-calibrated RBF SVC from its fitted arrays."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.classes_ = np.asarray(arrays["classes"]).astype(str)
        self.columns_ = [str(c) for c in arrays["columns"]]
        self._mean = np.asarray(arrays["mean"], np.float64)
        self._scale = np.asarray(arrays["scale"], np.float64)
        self._sv = np.asarray(arrays["support_vectors"], np.float64)
        self._n_support = np.asarray(arrays["n_support"], np.int64)
        self._dual = np.asarray(arrays["dual_coef"], np.float64)
        self._intercept = np.asarray(arrays["intercept"], np.float64)
        self._gamma = float(arrays["gamma"])
        self._a = np.asarray(arrays["sigmoid_a"], np.float64)
        self._b = np.asarray(arrays["sigmoid_b"], np.float64)
        k = len(self.classes_)
        shapes_ok = (k >= 3 and self._n_support.shape == (k,) and self._sv.shape[0] == self._n_support.sum()
                     and self._dual.shape == (k - 1, self._sv.shape[0]) and self._intercept.shape == (k * (k - 1) // 2,)
                     and self._a.shape == self._b.shape == (k,) and self._mean.shape == self._scale.shape
                     == (self._sv.shape[1],) == (len(self.columns_),))
        if not shapes_ok:
            raise ModelLoadingError("compiled genre model: inconsistent array shapes; re-save the model")

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """One-vs-rest decision values ``(n, n_classes)``, as ``SVC(decision_function_shape="ovr")``."""
        Z = (np.asarray(X, np.float64) - self._mean) / self._scale
        d2 = (Z * Z).sum(1)[:, None] + (self._sv * self._sv).sum(1)[None, :] - 2.0 * Z @ self._sv.T
        K = np.exp(-self._gamma * np.maximum(d2, 0.0))
        k = len(self.classes_)
        starts = np.concatenate([[0], np.cumsum(self._n_support)])
        ovo = np.empty((Z.shape[0], k * (k - 1) // 2))
        p = 0
        for i in range(k):
            si = slice(starts[i], starts[i + 1])
            for j in range(i + 1, k):
                sj = slice(starts[j], starts[j + 1])
                ovo[:, p] = (K[:, si] @ self._dual[j - 1, si] + K[:, sj] @ self._dual[i, sj]) + self._intercept[p]
                p += 1
        votes = np.zeros((Z.shape[0], k))
        confidence = np.zeros((Z.shape[0], k))
        p = 0
        for i in range(k):
            for j in range(i + 1, k):
                confidence[:, i] += ovo[:, p]
                confidence[:, j] -= ovo[:, p]
                votes[ovo[:, p] >= 0, i] += 1  # libsvm: a positive value votes for the first class
                votes[ovo[:, p] < 0, j] += 1
                p += 1
        return votes + confidence / (3 * (np.abs(confidence) + 1))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, n_classes)``, rows summing to 1."""
        f = self.decision_function(X)
        proba = 1.0 / (1.0 + np.exp(self._a * f + self._b))
        total = proba.sum(1, keepdims=True)
        uniform = total[:, 0] == 0
        proba = np.where(uniform[:, None], 1.0 / len(self.classes_), proba / np.where(total == 0, 1.0, total))
        proba[(proba > 1.0) & (proba <= 1.0 + 1e-5)] = 1.0
        return proba

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def compile_model(estimator, columns: list[str]) -> dict[str, np.ndarray]:
    """The arrays of a fitted ``Pipeline([StandardScaler, CalibratedClassifierCV(SVC(kernel="rbf"),
    ensemble=False, method="sigmoid")])`` with 3 or more classes.

    Raises
    ------
    NotCompilable
        Any other estimator (it is then only saved and loaded through skops).
    """
    steps = getattr(estimator, "steps", None)
    names = [type(s).__name__ for _, s in steps] if steps else []
    if names != ["StandardScaler", "CalibratedClassifierCV"]:
        raise NotCompilable(f"only StandardScaler + CalibratedClassifierCV pipelines compile (got {names})")
    scaler, calibrated = steps[0][1], steps[1][1]
    if calibrated.method != "sigmoid" or len(calibrated.calibrated_classifiers_) != 1:
        raise NotCompilable("only one sigmoid calibration (ensemble=False) compiles")
    inner = calibrated.calibrated_classifiers_[0]
    svc = inner.estimator
    if (type(svc).__name__ != "SVC" or svc.kernel != "rbf" or svc.decision_function_shape != "ovr" or svc.break_ties
            or len(svc.classes_) < 3 or scaler.mean_ is None or scaler.scale_ is None):
        raise NotCompilable("only a multiclass RBF SVC with one-vs-rest decisions compiles")
    if not all(type(c).__name__ == "_SigmoidCalibration" for c in inner.calibrators):
        raise NotCompilable("only sigmoid calibrators compile")
    return {
        "format": np.asarray(FORMAT), "classes": np.asarray(svc.classes_).astype(str),
        "columns": np.asarray(columns, dtype=str), "mean": scaler.mean_, "scale": scaler.scale_,
        "support_vectors": svc.support_vectors_, "n_support": svc.n_support_, "dual_coef": svc.dual_coef_,
        "intercept": svc.intercept_, "gamma": np.asarray(svc._gamma),
        "sigmoid_a": np.asarray([c.a_ for c in inner.calibrators], np.float64),
        "sigmoid_b": np.asarray([c.b_ for c in inner.calibrators], np.float64),
    }


def save_compiled(arrays: dict[str, np.ndarray], skops_path: str | os.PathLike) -> Path:
    """Write ``arrays`` beside ``skops_path`` (already written), stamped with its SHA-256."""
    skops_path = Path(skops_path)
    path = compiled_path(skops_path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, source_sha256=np.asarray(file_hash(skops_path)), **arrays)
    return path


def write_beside(estimator, columns: list[str], skops_path: str | os.PathLike) -> Path | None:
    """After ``skops_path`` is written: its compiled form beside it, or none (and an earlier one
    removed) when ``estimator`` does not compile."""
    try:
        arrays = compile_model(estimator, columns)
    except NotCompilable:
        compiled_path(skops_path).unlink(missing_ok=True)
        return None
    return save_compiled(arrays, skops_path)


def load_compiled(skops_path: str | os.PathLike) -> CompiledGenreModel | None:
    """The compiled form of the model saved at ``skops_path``, or ``None`` when there is none or it
    was written for another version of that file (the caller then loads the skops file)."""
    skops_path = Path(skops_path)
    path = compiled_path(skops_path)
    if not path.is_file() or not skops_path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise ModelLoadingError(f"{path}: not a readable compiled genre model ({exc}); delete it or re-save "
                                "the model") from None
    if str(arrays.get("format", "")) != FORMAT or str(arrays.get("source_sha256", "")) != file_hash(skops_path):
        return None
    return CompiledGenreModel(arrays)
