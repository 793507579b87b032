"""Cover similarity: key-invariant, tempo-invariant comparison of two recordings.

Each recording becomes a beat-synchronous chroma sequence (CQT chroma, median per
beat, the song's mean chroma removed, unit norm), so tempo changes drop out and only
the movement of the harmony is compared (raw chroma vectors are all alike: any two
songs score above 0.7 with them). Two sequences are compared under all 12
transpositions by dynamic time warping (cosine distance, a diagonal band so that the
alignment stays roughly linear); the similarity is ``1 - mean cost along the best path``,
at most 1.

A similarity only means something beside a floor: the same measure between the
original and an unrelated recording (by default Kevin MacLeod's arrangement of the
Sugar Plum Fairy, CC-BY 3.0, shipped in ``covermill/analysis/data/``).
"""

from __future__ import annotations

import functools
import hashlib
import logging
from pathlib import Path

import librosa
import numpy as np

from ..audio import load_audio
from ..constants import WORK_SR
from ..errors import OutputError
from ..fsutil import atomic_path
from .rhythm import ANALYSIS_SR, HOP, analysis_mono, cqt_chroma, track_beats


def beat_chroma(y: np.ndarray, *, sr: int) -> np.ndarray:
    """Beat-synchronous chroma ``(12, n_beats)`` of ``(channels, n)`` audio, columns unit-norm."""
    mono22 = analysis_mono(y, sr=sr)
    chroma = librosa.util.normalize(cqt_chroma(mono22, sr=ANALYSIS_SR, hop_length=HOP * 2), norm=np.inf, axis=-2)
    beats = track_beats(mono22, sr=ANALYSIS_SR)
    frames = librosa.time_to_frames(beats.times_s, sr=ANALYSIS_SR, hop_length=HOP * 2)
    frames = frames[(frames > 0) & (frames < chroma.shape[1])]
    if len(frames) >= 4:
        chroma = librosa.util.sync(chroma, frames, aggregate=np.median)
    chroma = chroma - chroma.mean(axis=1, keepdims=True)  # remove the song's overall key colour
    return librosa.util.normalize(chroma, norm=2, axis=0, fill=True).astype(np.float32)


def chroma_similarity(a: np.ndarray, b: np.ndarray, *, band: float = 0.15) -> float:
    """Best similarity (at most 1) of beat-chroma ``a`` and ``b`` over the 12 transpositions."""
    if a.shape[1] < 2 or b.shape[1] < 2:
        return 0.0
    best = 0.0
    for shift in range(12):
        rotated = np.roll(b, shift, axis=0)
        cost = np.clip(1.0 - a.T @ rotated, 0.0, 2.0)  # cosine distance (columns are unit norm)
        D, wp = librosa.sequence.dtw(C=cost, global_constraints=True, band_rad=band, backtrack=True)
        if not np.isfinite(D[-1, -1]):
            continue
        path_cost = cost[wp[:, 0], wp[:, 1]].mean()
        best = max(best, 1.0 - float(path_cost))
    return best


REFERENCE_SONG = Path(__file__).parent / "data" / "sugar_plum_fairy.ogg"


#: Bump when :func:`beat_chroma` changes its result: cached reference chroma is then recomputed.
CHROMA_VERSION = 1
log = logging.getLogger(__name__)


def _chroma_entry(path: str) -> Path:
    """``<covermill cache>/similarity/<key>.npz``: the key covers the file's bytes, the rate, this
    code's version and librosa's (a reference's chroma is the same in every process: 2-5 s saved)."""
    from .cover import default_cache_dir, file_digest

    key = hashlib.sha256(f"{file_digest(path)}|{WORK_SR}|{CHROMA_VERSION}|{librosa.__version__}".encode())
    return default_cache_dir().parent / "similarity" / f"{key.hexdigest()}.npz"


def _read_chroma(entry: Path) -> np.ndarray | None:
    """The cached chroma, or ``None`` when missing or damaged (checksum, shape, values)."""
    try:
        with np.load(entry, allow_pickle=False) as data:
            chroma, digest = np.asarray(data["chroma"]), str(data["sha256"])
    except Exception:  # noqa: BLE001 - missing, truncated, foreign: all mean "compute it"
        return None
    ok = (chroma.dtype == np.float32 and chroma.ndim == 2 and chroma.shape[0] == 12 and np.all(np.isfinite(chroma))
          and hashlib.sha256(np.ascontiguousarray(chroma).tobytes()).hexdigest() == digest)
    return chroma if ok else None


@functools.lru_cache(maxsize=4)
def _reference_chroma(path: str) -> np.ndarray:
    """:func:`beat_chroma` of the reference recording at ``path``, cached on disk by content."""
    entry = _chroma_entry(path)
    chroma = _read_chroma(entry)
    if chroma is not None:
        return chroma
    if entry.exists():
        log.warning("reference chroma cache entry %s is damaged; recomputing it", entry)
    chroma = beat_chroma(load_audio(path), sr=WORK_SR)
    try:
        with atomic_path(entry) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, chroma=chroma, sha256=hashlib.sha256(chroma.tobytes()).hexdigest())
    except (OSError, OutputError) as exc:  # a cache that cannot be written is skipped
        log.debug("cannot cache reference chroma in %s: %s", entry, exc)
    return chroma


def reference_chroma(reference: str | Path | None = None) -> np.ndarray:
    """:func:`beat_chroma` of ``reference`` (default :data:`REFERENCE_SONG`), cached by content."""
    return _reference_chroma(str(reference or REFERENCE_SONG))


def cover_similarity(original: np.ndarray, cover: np.ndarray, *, sr: int,
                     reference: str | Path | None = None) -> dict[str, float]:
    """``{"similarity", "reference", "margin"}`` of ``cover`` to ``original``.

    ``reference`` (default :data:`REFERENCE_SONG`) is an unrelated recording: its
    similarity to the original is the floor, and ``margin = similarity - reference``.
    """
    ca = beat_chroma(original, sr=sr)
    cb = beat_chroma(cover, sr=sr)
    sim = chroma_similarity(ca, cb)
    ref = chroma_similarity(ca, reference_chroma(reference))
    return {"similarity": round(sim, 4), "reference": round(ref, 4), "margin": round(sim - ref, 4)}
