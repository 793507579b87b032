"""Cover-song detection: is a candidate recording a cover of an original?

Two measures on beat-synchronous chroma (tempo changes drop out with the beat grid):

- :func:`qmax` — Serra, Serra & Andrzejak (2009): delay-embedded chroma, the second song
  transposed by the optimal transposition index (OTI), a binary cross-recurrence plot of
  mutual nearest neighbours (:func:`librosa.segment.cross_similarity`), and the longest
  gapped diagonal path through it (:func:`librosa.sequence.rqa`, knight moves, so local
  tempo deviations up to 2:1 are followed). The score is divided by the shorter song's
  beat count: 0 (nothing shared) .. 1 (the whole song recurs). When the beat tracker
  chose another metrical level in one song (half, 3:2, double time), that song is also
  compared resampled to the other's beat rate. **The QA verdict.**
- :func:`twodftm` — Bertin-Mahieux & Ellis (2012), the paper's feature: chroma raised to a
  power (1.96), cut into 75-beat patches, the magnitude of each patch's 2D Fourier
  transform (invariant to transposition and to the patch's position), median over
  patches, unit-normalised; songs are compared by euclidean distance (0 .. 2).

:func:`compare` returns both and the verdict ``qmax >= threshold`` with
:data:`QMAX_THRESHOLD` calibrated by ``bench/bench_cover.py`` (``docs/BENCHMARKS.md``).
:func:`features_from_file` caches the features of a file by content hash.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import scipy.ndimage

from .. import fsutil
from ..audio import _check_path, load_audio
from ..errors import ParameterError
from .rhythm import ANALYSIS_SR, beat_chroma

log = logging.getLogger(__name__)

#: Bump when the features change: cached files of another version are recomputed.
FEATURE_VERSION = 1
#: Beats per 2DFTM patch (Bertin-Mahieux & Ellis 2012).
PATCH_BEATS = 75
#: Power-law exponent applied to chroma before the 2D FFT (Bertin-Mahieux & Ellis 2012).
POWER = 1.96
#: Calibrated Qmax decision threshold (``bench/bench_cover.py``; see ``docs/BENCHMARKS.md``).
QMAX_THRESHOLD = 0.46
#: Fewest beats (in the shorter recording) for a verdict. Measured on excerpts of 8-45 s of the
#: demo song and four unrelated recordings (bench/bench_cover.py --short): unrelated pairs scored
#: Qmax up to 0.75 with 11-21 beats (above QMAX_THRESHOLD), never above 0.34 with 24 or more.
MIN_VERDICT_BEATS = 24
TOO_SHORT = "too short to judge"
#: Calibrated 2DFTM distance threshold (cover when the distance is below it).
TWODFTM_THRESHOLD = 0.52


@dataclass(frozen=True)
class CoverFeatures:
    """Features of one recording.

    Attributes
    ----------
    chroma : np.ndarray [shape=(12, n_beats)], float32
        Beat-synchronous chroma, each column scaled to a maximum of 1.
    twodftm : np.ndarray [shape=(12 * PATCH_BEATS,)], float32
        The 2DFTM vector, unit L2 norm.
    bpm : float
        Tempo of the beat grid (``nan`` when no beats were found: then fixed 0.5 s frames).
    """

    chroma: np.ndarray
    twodftm: np.ndarray
    bpm: float


def twodftm(chroma: np.ndarray, *, patch_beats: int = PATCH_BEATS, power: float = POWER) -> np.ndarray:
    """2DFTM vector (Bertin-Mahieux & Ellis 2012) of beat chroma ``(12, n_beats)``.

    Each ``(12, patch_beats)`` patch (hop one beat; a shorter song is zero-padded to one
    patch) is raised to ``power``, 2D-Fourier transformed and reduced to its magnitude,
    which does not change when the patch is rolled along the pitch axis (transposition)
    or along time. The median over patches, unit-normalised, is the song's vector.

    Returns
    -------
    np.ndarray [shape=(12 * patch_beats,)], float32, unit L2 norm (zeros for no beats)
    """
    chroma = np.asarray(chroma, dtype=np.float64)
    n = chroma.shape[1]
    if n == 0:
        return np.zeros(12 * patch_beats, np.float32)
    if n < patch_beats:
        chroma = np.pad(chroma, ((0, 0), (0, patch_beats - n)))
        n = patch_beats
    compressed = chroma**power
    windows = np.lib.stride_tricks.sliding_window_view(compressed, patch_beats, axis=1)  # (12, n_p, patch)
    patches = np.transpose(windows, (1, 0, 2))
    if len(patches) > 400:  # the median of a few hundred patches is as good as of all
        patches = patches[np.linspace(0, len(patches) - 1, 400).round().astype(int)]
    magnitude = np.abs(np.fft.fft2(patches, axes=(1, 2)))
    vec = np.median(magnitude, axis=0).ravel()
    norm = np.linalg.norm(vec)
    return (vec / norm if norm > 0 else vec).astype(np.float32)


def features(y: np.ndarray, *, sr: int) -> CoverFeatures:
    """:class:`CoverFeatures` of ``(channels, n)`` audio at ``sr``."""
    chroma, bpm = beat_chroma(y, sr=sr)
    return CoverFeatures(chroma=chroma, twodftm=twodftm(chroma), bpm=bpm)


def default_cache_dir() -> Path:
    """The cover-feature cache's folder: :func:`covermill.fsutil.cache_dir` ``("cover")``."""
    return fsutil.cache_dir("cover")


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (the cache key: renaming or touching a file keeps it)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _file_features(path: str | os.PathLike) -> CoverFeatures:
    # decoded straight to the analysis rate, channels kept (features() averages them)
    return features(load_audio(path, sr=ANALYSIS_SR, stereo=False), sr=ANALYSIS_SR)


def _read_entry(entry: Path) -> CoverFeatures | None:
    """A cached entry, or ``None`` if it is truncated, foreign or of the wrong shape (then it is
    recomputed, like the stem cache does): a damaged file must never fail a render."""
    try:
        with np.load(entry, allow_pickle=False) as data:
            chroma = np.asarray(data["chroma"], dtype=np.float32)
            vector = np.asarray(data["twodftm"], dtype=np.float32)
            bpm = float(data["bpm"])
    except Exception:  # noqa: BLE001 - BadZipFile, EOFError, OSError, ValueError, KeyError, ...: all mean "damaged"
        return None
    if (chroma.ndim != 2 or chroma.shape[0] != 12 or vector.shape != (12 * PATCH_BEATS,)
            or not np.all(np.isfinite(chroma)) or not np.all(np.isfinite(vector))):
        return None
    return CoverFeatures(chroma, vector, bpm)


def features_from_file(path: str | os.PathLike, *, cache_dir: str | os.PathLike | None | bool = None) -> CoverFeatures:
    """Features of an audio file, cached as ``<cache_dir>/<sha256>.v<version>.npz``.

    ``cache_dir=None`` uses :func:`default_cache_dir`; ``False`` disables the cache. A
    cache that cannot be written is ignored (the features are still returned).
    """
    _check_path(Path(path))  # a missing, empty or folder path: one AudioError line
    if cache_dir is False:
        return _file_features(path)
    folder = default_cache_dir() if cache_dir in (None, True) else Path(cache_dir)
    entry = folder / f"{file_digest(path)}.v{FEATURE_VERSION}.npz"
    if entry.exists():
        cached = _read_entry(entry)
        if cached is not None:
            return cached
        log.warning("cover-feature cache entry %s is damaged; recomputing it", entry)
    feats = _file_features(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_name(f".{entry.name}.{os.getpid()}.tmp.npz")
        np.savez(tmp, chroma=feats.chroma, twodftm=feats.twodftm, bpm=np.float64(feats.bpm))
        os.replace(tmp, entry)
    except OSError:
        pass
    return feats


#: An unrelated recording (Kevin MacLeod's Sugar Plum Fairy, CC-BY 3.0): the floor of every score.
REFERENCE_SONG = Path(__file__).parent / "data" / "sugar_plum_fairy.ogg"


@functools.lru_cache(maxsize=2)
def reference_features(path: str | None = None) -> CoverFeatures:
    """Features of the unrelated reference recording (default :data:`REFERENCE_SONG`), memoised."""
    return features_from_file(path or REFERENCE_SONG)


def transposition_order(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Shifts (semitones, 0..11) that roll ``b``'s chroma onto ``a``'s key, best first (OTI first)."""
    ga, gb = a.sum(axis=1), b.sum(axis=1)
    ga = ga / max(float(ga.max()), 1e-12)
    gb = gb / max(float(gb.max()), 1e-12)
    scores = np.array([float(ga @ np.roll(gb, k)) for k in range(12)])
    return np.argsort(-scores, kind="stable")


def _embed(chroma: np.ndarray, m: int) -> np.ndarray:
    x = librosa.feature.stack_memory(chroma, n_steps=m, delay=1, mode="edge")[:, m - 1 :] if m > 1 else chroma
    norm = np.linalg.norm(x, axis=0, keepdims=True)
    return x / np.maximum(norm, 1e-9)


def cross_recurrence(a: np.ndarray, b: np.ndarray, *, m: int = 9, kappa: float = 0.1) -> np.ndarray:
    """Binary cross-recurrence plot ``(n_a', n_b')`` of two chroma sequences (Serra et al. 2009).

    Columns are delay-embedded over ``m`` beats and unit-normalised; ``R[i, j] = 1`` when
    ``b[j]`` is among the ``kappa`` fraction of nearest neighbours (euclidean) of ``a[i]``
    and ``a[i]`` among those of ``b[j]``. This is the product of
    ``librosa.segment.cross_similarity(..., mode="connectivity")`` in both directions
    (a test checks it), computed with a dense ``argpartition``: librosa's sparse
    bookkeeping takes about a second per 500-beat pair, this a few milliseconds.
    """
    ea, eb = _embed(a, m), _embed(b, m)
    ka = max(1, int(round(kappa * ea.shape[1])))
    kb = max(1, int(round(kappa * eb.shape[1])))
    dist = np.sqrt(np.maximum(2.0 - 2.0 * (ea.T @ eb), 0.0))  # (n_a, n_b), unit vectors
    near_b = np.zeros(dist.shape, bool)  # b[j] among the kb nearest of a[i]
    np.put_along_axis(near_b, np.argpartition(dist, kb - 1, axis=1)[:, :kb], True, axis=1) if kb < dist.shape[1] \
        else near_b.fill(True)
    near_a = np.zeros(dist.shape, bool)  # a[i] among the ka nearest of b[j]
    np.put_along_axis(near_a, np.argpartition(dist, ka - 1, axis=0)[:ka], True, axis=0) if ka < dist.shape[0] \
        else near_a.fill(True)
    return (near_a & near_b).astype(np.float32)


#: Ratios between metrical levels a beat tracker may pick (half, two thirds, ... double time).
METRICAL_RATIOS = (1 / 2, 2 / 3, 3 / 4, 1.0, 4 / 3, 3 / 2, 2.0)


def rescale_beats(chroma: np.ndarray, ratio: float) -> np.ndarray:
    """Chroma ``(12, n)`` resampled along time to ``round(n * ratio)`` columns (box-averaged when shrinking)."""
    n = chroma.shape[1]
    n_new = max(1, int(round(n * ratio)))
    if n_new == n:
        return chroma
    x = chroma
    if ratio < 1:
        x = scipy.ndimage.uniform_filter1d(chroma, size=max(1, int(round(1 / ratio))), axis=1, mode="nearest")
    pos = np.clip((np.arange(n_new) + 0.5) / ratio - 0.5, 0, n - 1)
    out = np.stack([np.interp(pos, np.arange(n), row) for row in x])
    return (out / np.maximum(out.max(axis=0, keepdims=True), 1e-12)).astype(np.float32)


def qmax(a: np.ndarray, b: np.ndarray, *, m: int = 9, kappa: float = 0.05, gap_onset: float = 5.0,
         gap_extend: float = 0.5, transpositions: int = 2, metrical: bool = True) -> float:
    """Normalised Qmax of beat chroma ``a (12, n_a)`` and ``b (12, n_b)``.

    ``b`` is tried at its ``transpositions`` best OTI shifts; for each, the highest
    :func:`librosa.sequence.rqa` score on :func:`cross_recurrence` (gap penalties of
    Serra et al.: onset 5, extension 0.5) is divided by the shorter length. Range 0..1.

    With ``metrical``, when the beat counts differ by more than 20 % (the beat tracker
    chose another metrical level in one song: half, double, 3:2 time, ...), ``b`` is also
    tried resampled by the metrical ratio nearest to ``n_a / n_b``: the delay embedding
    only matches when both sequences advance at the same musical rate.
    """
    scales = [1.0]
    if metrical and a.shape[1] and b.shape[1]:
        want = a.shape[1] / b.shape[1]
        nearest = min(METRICAL_RATIOS, key=lambda r: abs(np.log(r / want)))
        if abs(np.log(want)) > np.log(1.2) and nearest != 1.0:
            scales.append(nearest)
    best = 0.0
    for scale in scales:
        bs = rescale_beats(b, scale) if scale != 1.0 else b
        n = min(a.shape[1], bs.shape[1]) - m + 1
        if n < 4:
            continue
        for shift in transposition_order(a, bs)[:transpositions]:
            rec = cross_recurrence(a, np.roll(bs, int(shift), axis=0), m=m, kappa=kappa)
            score = librosa.sequence.rqa(rec, gap_onset=gap_onset, gap_extend=gap_extend, knight_moves=True,
                                         backtrack=False)
            best = max(best, float(score.max()) / n)
    return min(best, 1.0)


def twodftm_distance(a: CoverFeatures, b: CoverFeatures) -> float:
    """Euclidean distance of two 2DFTM vectors (0 identical .. 2)."""
    return float(np.linalg.norm(a.twodftm - b.twodftm))


def compare_features(a: CoverFeatures, b: CoverFeatures, *, threshold: float = QMAX_THRESHOLD) -> dict:
    """Scores and verdict for cached features; see :func:`compare`."""
    q = qmax(a.chroma, b.chroma)
    d = twodftm_distance(a, b)
    beats = [int(a.chroma.shape[1]), int(b.chroma.shape[1])]
    judged = min(beats) >= MIN_VERDICT_BEATS
    return {
        "is_cover": bool(q >= threshold) if judged else None,
        **({} if judged else {"verdict": f"{TOO_SHORT} ({min(beats)} beats; a verdict needs {MIN_VERDICT_BEATS})"}),
        "qmax": round(q, 4),
        "twodftm_distance": round(d, 4),
        "twodftm_is_cover": bool(d <= TWODFTM_THRESHOLD),
        "threshold": threshold,
        "twodftm_threshold": TWODFTM_THRESHOLD,
        "beats": beats,
    }


def compare(original: np.ndarray, candidate: np.ndarray, *, sr: int, threshold: float = QMAX_THRESHOLD) -> dict:
    """Is ``candidate`` a cover of ``original``?

    Parameters
    ----------
    original, candidate : np.ndarray [shape=(channels, n) or (n,)], float
        The two recordings, at the same rate ``sr``; lengths and tempi may differ.
    sr : int > 0
    threshold : float
        Qmax decision threshold (default the calibrated :data:`QMAX_THRESHOLD`).

    Returns
    -------
    dict
        ``is_cover`` (``qmax >= threshold``; ``None`` with a ``verdict`` saying "too short to
        judge" when the shorter recording has fewer than :data:`MIN_VERDICT_BEATS` beats), ``qmax`` (0..1), ``twodftm_distance``
        (0..2), ``twodftm_is_cover``, ``threshold``, ``twodftm_threshold``, ``beats``.

    Examples
    --------
    >>> compare(song, song_a_tone_up_and_slower, sr=44100)["is_cover"]  # doctest: +SKIP
    True
    """
    if not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise ParameterError(f"sr={sr!r} must be a positive integer sample rate")
    return compare_features(features(original, sr=sr), features(candidate, sr=sr), threshold=threshold)
