"""Genre classifiers on the GTZAN feature table, their honest evaluation, and safe persistence.

- :func:`load_gtzan_table` reads a Kaggle GTZAN table (30-s or 3-s) into numpy arrays.
- :func:`build_models` makes the compared scikit-learn pipelines (scaling inside the pipeline,
  hyper-parameters of the SVM and the random forest tuned by an inner ``GridSearchCV``).
- :func:`evaluate` runs repeated stratified k-fold (grouped by track when ``groups`` is given)
  and reports macro-F1 with a 95 % confidence interval per model (nested CV: the inner search
  only ever sees the outer training folds).
- :class:`GenreModel` fits one pipeline and saves/loads it with :mod:`skops.io`, never pickle;
  loading refuses any type outside an explicit list of scikit-learn/numpy types.

The classifiers use :data:`MODEL_COLUMNS`: the table's features less ``length`` (a property of
the GTZAN file, not of the music).
"""

from __future__ import annotations

import csv
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier, VotingClassifier
from sklearn.metrics import confusion_matrix, f1_score
from sklearn.model_selection import GridSearchCV, RepeatedStratifiedKFold, StratifiedGroupKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from ..errors import ModelLoadingError, ParameterError
from ..fsutil import atomic_path
from .genre_features import MODEL_COLUMNS

INNER_FOLDS = 3
FORMAT = "covermill-genre/1"

#: Types a saved :class:`GenreModel` may contain beyond skops' defaults; anything else is refused.
TRUSTED_TYPES: tuple[str, ...] = (
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
)


_SKOPS_LOCK = threading.Lock()


def _skops_io():
    """``skops.io`` without torch or dask: skops lists sklearn's estimators at import, and ``pkgutil.walk_packages``
    imports every package on the way, also sklearn's array-API adapters for torch and dask, which import
    them (1.5-2 s). They hold no estimator: hidden, walk_packages skips them; the trusted types stay the same."""
    with _SKOPS_LOCK:
        hide = [] if "skops.io" in sys.modules else [
            m for m in (f"sklearn.externals.array_api_compat.{lib}" for lib in ("torch", "dask", "cupy"))
            if m not in sys.modules]
        for name in hide:
            sys.modules[name] = None  # type: ignore[assignment]  # the import system's "cannot import"
        try:
            import skops.io as sio
        finally:
            for name in hide:
                if name in sys.modules and sys.modules[name] is None:
                    del sys.modules[name]
    return sio


@dataclass(frozen=True)
class GenreTable:
    """A GTZAN feature table as arrays.

    Attributes
    ----------
    X : np.ndarray [shape=(n_rows, len(MODEL_COLUMNS))], float64
    y : np.ndarray [shape=(n_rows,)], str — the genre labels
    groups : np.ndarray [shape=(n_rows,)], str — the track (``blues.00000``) each row comes from
    columns : list of str — the column names of ``X``
    """

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    columns: list[str] = field(default_factory=lambda: list(MODEL_COLUMNS))


def _track_of(filename: str) -> str:
    """``blues.00000.wav`` and ``blues.00000.3.wav`` (3-s segment 3) both -> ``blues.00000``."""
    parts = Path(filename).name.split(".")
    return ".".join(parts[:2])


def load_gtzan_table(path: str | os.PathLike, *, columns: list[str] | None = None) -> GenreTable:
    """Read a Kaggle GTZAN feature CSV (``filename, <features>, label``) into numpy arrays.

    Parameters
    ----------
    path : path-like
        ``features_30_sec.csv`` or a ``features_3_sec`` table (same columns).
    columns : list of str, optional
        Feature columns to keep, in this order; default :data:`MODEL_COLUMNS`.

    Raises
    ------
    ParameterError
        Missing file, missing columns, or a non-numeric value (with its row number).
    """
    path = Path(path)
    columns = list(columns or MODEL_COLUMNS)
    if not path.is_file():
        raise ParameterError(f"{path}: no such GTZAN table; check the path")
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        missing = [c for c in ["filename", *columns, "label"] if c not in header]
        if missing:
            raise ParameterError(f"{path}: lacks columns {missing}; expected the Kaggle GTZAN layout")
        idx = [header.index(c) for c in columns]
        i_file, i_label = header.index("filename"), header.index("label")
        rows, labels, groups = [], [], []
        for line_no, row in enumerate(reader, start=2):
            try:
                rows.append([float(row[i]) for i in idx])
            except (ValueError, IndexError):
                raise ParameterError(f"{path}:{line_no}: non-numeric or missing feature value") from None
            labels.append(row[i_label])
            groups.append(_track_of(row[i_file]))
    X = np.asarray(rows, dtype=np.float64).reshape(-1, len(columns))
    if not np.all(np.isfinite(X)):
        raise ParameterError(f"{path}: contains NaN or infinite feature values")
    return GenreTable(X=X, y=np.asarray(labels), groups=np.asarray(groups), columns=columns)


def _scaled(estimator) -> Pipeline:
    return Pipeline([("scale", StandardScaler()), ("clf", estimator)])


def build_models(*, seed: int = 0, n_jobs: int = 1) -> dict[str, object]:
    """The compared classifiers, unfitted, by name.

    ``svm`` and ``rf`` are ``GridSearchCV`` over small grids (3-fold inner CV, macro-F1), so
    evaluating them with :func:`evaluate` is nested cross-validation. ``svm_unscaled`` is the
    same RBF SVM without standardisation: the features span 10 orders of magnitude
    (``spectral_centroid_var`` ~1e6, ``harmony_mean`` ~1e-5), so the kernel sees only the
    largest few. ``ensemble`` soft-votes a calibrated SVM (fixed C=10, chosen before any
    evaluation), a 100-tree random forest and gradient boosting; it has no inner search.
    """
    svm = GridSearchCV(
        _scaled(SVC(kernel="rbf")),
        {"clf__C": [1.0, 10.0, 100.0], "clf__gamma": ["scale", 0.005]},
        cv=INNER_FOLDS, scoring="f1_macro", n_jobs=n_jobs,
    )
    rf = GridSearchCV(
        RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=n_jobs),
        {"max_features": ["sqrt", 0.33]},
        cv=INNER_FOLDS, scoring="f1_macro",
    )
    hgb = HistGradientBoostingClassifier(
        max_iter=50, learning_rate=0.1, max_leaf_nodes=15, early_stopping=False, random_state=seed
    )
    return {
        "rf": rf,
        "svm": svm,
        "svm_unscaled": SVC(kernel="rbf"),
        "hgb": hgb,
        "knn": _scaled(KNeighborsClassifier(n_neighbors=7, weights="distance")),
        "ensemble": VotingClassifier(
            [("svm", default_estimator()), ("rf", RandomForestClassifier(n_estimators=100, random_state=seed)),
             ("hgb", clone(hgb))],
            voting="soft",
        ),
    }


@dataclass(frozen=True)
class Evaluation:
    """Cross-validated macro-F1 of one model.

    ``ci95`` is the Nadeau-Bengio corrected resampled-t interval (the fold scores share
    training data, so the naive t interval would be too narrow). ``confusion`` sums the outer
    test folds of all repeats (rows: true ``labels``, columns: predicted).
    """

    f1_mean: float
    ci95: tuple[float, float]
    scores: np.ndarray
    confusion: np.ndarray
    labels: np.ndarray


def _corrected_ci(scores: np.ndarray, *, test_over_train: float, level: float = 0.95) -> tuple[float, float]:
    k = len(scores)
    mean = float(np.mean(scores))
    if k < 2:
        return mean, mean
    se = np.sqrt((1.0 / k + test_over_train) * np.var(scores, ddof=1))
    t = stats.t.ppf(0.5 + level / 2, df=k - 1)
    return mean - t * se, mean + t * se


def _with_inner_cv(estimator, splits):
    """Give every ``GridSearchCV`` in ``estimator`` fixed inner splits (so they respect groups)."""
    updates = {f"{k}__cv": splits for k, v in estimator.get_params(deep=True).items() if isinstance(v, GridSearchCV)}
    if isinstance(estimator, GridSearchCV):
        updates["cv"] = splits
    return estimator.set_params(**updates) if updates else estimator


def _outer_splits(X, y, groups, *, folds: int, repeats: int, seed: int):
    if groups is None:
        yield from RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed).split(X, y)
        return
    for r in range(repeats):
        yield from StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed + r).split(X, y, groups)


def evaluate(
    models: dict[str, object],
    X: np.ndarray,
    y: np.ndarray,
    *,
    folds: int = 10,
    repeats: int = 3,
    seed: int = 0,
    groups: np.ndarray | None = None,
    progress=None,
) -> dict[str, Evaluation]:
    """Macro-F1 of each model by repeated stratified k-fold cross-validation.

    Parameters
    ----------
    models : dict[str, estimator]
        Unfitted scikit-learn classifiers (cloned per fold), e.g. :func:`build_models`.
    X : np.ndarray [shape=(n, d)]
    y : np.ndarray [shape=(n,)]
    folds, repeats : int >= 2, >= 1
        ``RepeatedStratifiedKFold(folds, repeats)``; with ``groups``, ``repeats`` shuffled
        ``StratifiedGroupKFold`` runs, and inner searches are grouped too (no track in both
        the training and the test side of any split).
    seed : int
    groups : np.ndarray [shape=(n,)], optional
        Track of each row (3-s segments of one track must not be split).
    progress : callable(dict), optional
        Called after each outer fold with ``model``, ``done``, ``total``.

    Returns
    -------
    dict[str, Evaluation]
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2 or len(X) != len(y):
        raise ParameterError(f"X {X.shape} and y {y.shape} must be (n, d) and (n,)")
    if folds < 2 or repeats < 1:
        raise ParameterError(f"folds={folds} must be >= 2 and repeats={repeats} >= 1")
    labels = np.unique(y)
    splits = list(_outer_splits(X, y, groups, folds=folds, repeats=repeats, seed=seed))
    results: dict[str, Evaluation] = {}
    for name, model in models.items():
        scores, cm = [], np.zeros((len(labels), len(labels)), dtype=np.int64)
        for i, (train, test) in enumerate(splits):
            est = clone(model)
            if groups is not None:
                inner = StratifiedGroupKFold(n_splits=INNER_FOLDS, shuffle=True, random_state=seed + i)
                _with_inner_cv(est, list(inner.split(X[train], y[train], groups[train])))
            est.fit(X[train], y[train])
            pred = est.predict(X[test])
            scores.append(f1_score(y[test], pred, average="macro"))
            cm += confusion_matrix(y[test], pred, labels=labels)
            if progress is not None:
                progress({"model": name, "done": i + 1, "total": len(splits)})
        scores_arr = np.asarray(scores)
        test_over_train = float(np.mean([len(te) / len(tr) for tr, te in splits]))
        results[name] = Evaluation(
            f1_mean=float(scores_arr.mean()),
            ci95=_corrected_ci(scores_arr, test_over_train=test_over_train),
            scores=scores_arr,
            confusion=cm,
            labels=labels,
        )
    return results


def default_estimator(*, seed: int = 0) -> Pipeline:
    """The shipped classifier: standardised features, RBF SVM (C=10), Platt-calibrated probabilities."""
    svc = SVC(kernel="rbf", C=10.0, gamma="scale")
    return _scaled(CalibratedClassifierCV(svc, method="sigmoid", cv=INNER_FOLDS, ensemble=False))


class GenreModel:
    """A genre classifier over :data:`MODEL_COLUMNS` rows, saved and loaded without pickle.

    Parameters
    ----------
    estimator : scikit-learn classifier, optional
        Cloned on :meth:`fit`; default :func:`default_estimator`.

    Examples
    --------
    >>> table = load_gtzan_table("../shared/data/gtzan/features_30_sec.csv")  # doctest: +SKIP
    >>> model = GenreModel().fit(table.X, table.y)  # doctest: +SKIP
    >>> model.save("genre.skops"); GenreModel.load("genre.skops").classes_[:2]  # doctest: +SKIP
    array(['blues', 'classical'], dtype='<U9')
    """

    def __init__(self, estimator=None):
        self.estimator = estimator

    def fit(self, X: np.ndarray, y: np.ndarray) -> GenreModel:
        X = self._check_X(X)
        est = clone(self.estimator if self.estimator is not None else default_estimator())
        self.estimator_ = est.fit(X, np.asarray(y))
        self.columns_ = list(MODEL_COLUMNS) if X.shape[1] == len(MODEL_COLUMNS) else [f"x{i}" for i in range(X.shape[1])]
        return self

    @property
    def classes_(self) -> np.ndarray:
        return self._fitted().classes_

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, len(classes_))``."""
        return self._fitted().predict_proba(self._check_X(X))

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self._fitted().predict(self._check_X(X))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted model atomically in the skops format (no pickle), and beside it its
        compiled form where the estimator has one (:func:`.genre_compiled.write_beside`)."""
        from .genre_compiled import write_beside

        sio = _skops_io()
        payload = {"format": FORMAT, "columns": self.columns_, "estimator": self._fitted()}
        path = Path(path)
        with atomic_path(path) as tmp:
            sio.dump(payload, tmp)
        write_beside(self._fitted(), self.columns_, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, trusted: tuple[str, ...] = TRUSTED_TYPES) -> GenreModel:
        """Load a model saved by :meth:`save`.

        Raises
        ------
        ModelLoadingError
            Missing or unreadable file, not a covermill genre model, or a type outside skops'
            defaults and ``trusted`` (the message lists them; nothing is constructed).
        """
        sio = _skops_io()

        path = Path(path)
        if not path.is_file():
            raise ModelLoadingError(f"{path}: no such model file; check the path or train one with GenreModel.fit")
        try:
            untrusted = sio.get_untrusted_types(file=path)
        except Exception as exc:  # zip/json errors of a truncated or foreign file
            raise ModelLoadingError(f"{path}: not a readable skops file ({exc}); re-save the model") from None
        refused = sorted(set(untrusted) - set(trusted))
        if refused:
            raise ModelLoadingError(
                f"{path}: contains untrusted types {refused}; refusing to load it (only scikit-learn "
                "models saved by GenreModel.save are accepted)"
            )
        try:
            payload = sio.load(path, trusted=list(untrusted))
        except Exception as exc:
            raise ModelLoadingError(f"{path}: cannot be loaded ({exc}); re-save the model") from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ModelLoadingError(f"{path}: is not a covermill genre model (expected format {FORMAT})")
        model = cls(estimator=payload["estimator"])
        model.estimator_ = payload["estimator"]
        model.columns_ = list(payload["columns"])
        return model

    def _fitted(self):
        if not hasattr(self, "estimator_"):
            raise ParameterError("GenreModel is not fitted; call fit(X, y) or GenreModel.load(path) first")
        return self.estimator_

    @staticmethod
    def _check_X(X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or not np.all(np.isfinite(X)):
            raise ParameterError(f"X must be a finite 2-D feature array (rows, columns); got shape {X.shape}")
        return X
