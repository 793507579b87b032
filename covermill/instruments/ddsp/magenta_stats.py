"""The statistics of a Magenta DDSP checkpoint folder (``dataset_statistics.pkl``), read safely.

The file is a pickle: :class:`StatisticsUnpickler` reconstructs numpy arrays, dtypes and scalars
and builtin containers only; ddsp's ``QuantileTransformer`` and numpy's random state inside it
become inert placeholders without running any of their code, and any other global refuses the
file. :func:`stats_from_dataset_statistics` turns ddsp's statistics into covermill's (f0 range,
loudness). Used by :mod:`.magenta`.
"""

from __future__ import annotations

import builtins
import collections
import io
import math
import pickle
from pathlib import Path

import numpy as np

from ...errors import ModelLoadingError


class _Skipped:
    """Stands in for an object of ``dataset_statistics.pkl`` we do not use (ddsp's quantile
    transformer, numpy's random state): built without running any of its code, state dropped."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __setstate__(self, state) -> None:
        pass


def _numpy_globals() -> dict[tuple[str, str], object]:
    reconstruct = np.zeros(1).__reduce__()[0]
    scalar = np.float64(1.0).__reduce__()[0]
    allowed: dict[tuple[str, str], object] = {}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "_reconstruct")] = reconstruct
        allowed[(mod, "scalar")] = scalar
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    for mod in ("numpy.core.numeric", "numpy._core.numeric"):
        allowed[(mod, "_frombuffer")] = np.frombuffer
    return allowed


_SKIPPED = {
    ("ddsp.training.postprocessing", "QuantileTransformer"),
    ("sklearn.preprocessing._data", "QuantileTransformer"),
    ("sklearn.preprocessing.data", "QuantileTransformer"),
}
#: numpy's random state (``QuantileTransformer.random_state``) pickles through these modules' constructors
_SKIPPED_MODULES = ("numpy.random.",)
_BUILTINS = {("builtins", n): getattr(builtins, n) for n in ("set", "frozenset", "complex", "bytearray")}
_BUILTINS[("collections", "OrderedDict")] = collections.OrderedDict


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle asked for a global outside :class:`StatisticsUnpickler`'s allow-list."""


class StatisticsUnpickler(pickle.Unpickler):
    """Unpickler for ``dataset_statistics.pkl`` that never imports or calls arbitrary code.

    Allowed globals: numpy's array/dtype/scalar reconstruction, a few builtin containers, and
    placeholders (:class:`_Skipped`) for ddsp's ``QuantileTransformer`` and numpy's random
    state. Anything else raises :class:`pickle.UnpicklingError` naming the global.
    """

    _allowed = {**_numpy_globals(), **_BUILTINS}

    def find_class(self, module: str, name: str):
        if (module, name) in self._allowed:
            return self._allowed[(module, name)]
        if (module, name) in _SKIPPED or module.startswith(_SKIPPED_MODULES):
            return _Skipped
        raise RefusedGlobal(f"refusing to load {module}.{name}")

    def persistent_load(self, pid):
        raise RefusedGlobal("refusing persistent ids")


def load_statistics(path: Path) -> dict:
    """``dataset_statistics.pkl`` as a dict, through :class:`StatisticsUnpickler`."""
    try:
        data = path.read_bytes()
        stats = StatisticsUnpickler(io.BytesIO(data)).load()
    except RefusedGlobal as exc:
        raise ModelLoadingError(f"{path}: not a DDSP dataset statistics file ({exc}); only numpy arrays, numbers "
                                "and ddsp's quantile transformer are accepted. Delete it to import without "
                                "statistics") from None
    except Exception as exc:  # truncated or garbage pickles raise EOFError, ValueError, KeyError, ...
        raise ModelLoadingError(f"{path}: corrupt statistics pickle ({type(exc).__name__}: {exc}); delete it to "
                                "import without statistics") from None
    if not isinstance(stats, dict):
        raise ModelLoadingError(f"{path}: expected a dict of statistics, found {type(stats).__name__}")
    return stats


def midi_to_hz(m: float) -> float:
    return 440.0 * 2.0 ** ((m - 69.0) / 12.0)


def stats_from_dataset_statistics(ds: dict | None) -> tuple[dict, list[str]]:
    """covermill's instrument statistics (f0 range, loudness) from ddsp's ``compute_dataset_statistics`` dict."""
    warnings: list[str] = []

    def num(*keys: str) -> float | None:
        for k in keys:
            v = (ds or {}).get(k)
            try:
                f = float(np.asarray(v).reshape(()))
            except (TypeError, ValueError):
                continue
            if math.isfinite(f):
                return f
        return None

    lo, hi = num("mean_min_pitch_note", "min_pitch_note"), num("mean_max_pitch_note", "max_pitch_note")
    mean_pitch = num("mean_pitch_note", "mean_pitch")
    ld_mean = num("mean_loudness_note", "mean_loudness")
    ld_std = num("std_loudness_note", "std_loudness")
    ld_max = num("max_loudness_note", "max_loudness")
    if ds is None or None in (lo, hi, mean_pitch, ld_mean, ld_max) or lo > hi:
        if ds is not None:
            warnings.append("dataset statistics lack note pitch/loudness entries; using generic statistics")
        return ({"f0_range_hz": [80.0, 1200.0], "f0_median_hz": 330.0, "loudness_mean_db": -40.0,
                 "loudness_std_db": 10.0, "loudness_max_db": -10.0, "seconds": 0.0}, warnings)
    return ({"f0_range_hz": [midi_to_hz(lo), midi_to_hz(hi)], "f0_median_hz": midi_to_hz(mean_pitch),
             "loudness_mean_db": ld_mean, "loudness_std_db": ld_std if ld_std is not None else 10.0,
             "loudness_max_db": ld_max, "seconds": 0.0}, warnings)
