"""Tempo and beats, and the analysis signal that every beat-synchronous feature shares.

A render analyses the original and the cover several times over (the tempo rule, the chroma
similarity, cover detection). Beat tracking and CQT chroma are the slow parts and depend only
on the mono 22.05 kHz analysis signal, so :func:`track_beats` and :func:`cqt_chroma` remember
their last few results keyed by a hash of that signal's samples: the same song is tracked
once per process, whichever module asks. A result being computed is waited for, not computed
again, so :func:`prefetch` can start both on an executor while other work goes on.

:func:`beat_chroma` is the one beat-synchronous chroma that cover detection
(:mod:`.cover`) and the chroma similarity (:mod:`.similarity`) both read.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import librosa
import numpy as np

from ..audio import resample
from ..kernels import librosa_beat
from ..memo import ContentMemo

ANALYSIS_SR = 22050
HOP = 256  # 11.6 ms frames: fine enough for a precise period estimate
CHROMA_HOP = HOP * 2  # 23 ms chroma frames at the analysis rate


@dataclass(frozen=True)
class Beats:
    """Beat times (s) and the tempo (BPM) they imply; ``bpm`` is ``nan`` when no beat was found."""

    times_s: np.ndarray
    bpm: float


_BEATS = ContentMemo()
_CHROMA = ContentMemo()
_MONO = ContentMemo(maxsize=4)


def forget() -> None:
    """Empty the analysis memo (signals, beats, chroma): the next analysis computes afresh, as a
    new process would (benchmarks of cold work)."""
    for memo in (_MONO, _BEATS, _CHROMA):
        memo.clear()


def analysis_mono(y: np.ndarray, *, sr: int) -> np.ndarray:
    """The analysis signal: ``(channels, n)`` or ``(n,)`` audio as float32 mono at :data:`ANALYSIS_SR`.

    Resampled once per signal and process (remembered by content, like the beats and chroma), so
    tempo, cover features, similarity and the lead sheet share one analysis signal; the result
    is read-only."""
    mono = np.asarray(y, dtype=np.float32)
    if mono.ndim == 2:
        mono = mono.mean(axis=0)
    if sr == ANALYSIS_SR:
        return np.ascontiguousarray(mono)

    def compute() -> np.ndarray:
        out = resample(mono[None], sr_in=sr, sr_out=ANALYSIS_SR)[0]
        out.flags.writeable = False
        return out

    return _MONO.get(_MONO.key(mono, sr), compute)


def cqt_chroma(y: np.ndarray, *, sr: int, hop_length: int = 2 * HOP) -> np.ndarray:
    """Un-normalised CQT chroma ``(12, frames)`` of the analysis signal (``librosa.feature.chroma_cqt``, ``norm=None``).

    Remembered per analysis signal (see the module docstring); the caller gets a copy.
    """
    mono = analysis_mono(y, sr=sr)
    key = _CHROMA.key(mono, hop_length)
    chroma = _CHROMA.get(key, lambda: librosa.feature.chroma_cqt(y=mono, sr=ANALYSIS_SR, hop_length=hop_length,
                                                                  norm=None))
    return chroma.copy()


def prefetch(y: np.ndarray, *, sr: int, submit: Callable) -> list[Future]:
    """Start ``y``'s beats and chroma with ``submit`` (an executor's ``submit``) so that later
    beat-synchronous features find them computed, or being computed, in the memo."""
    mono = analysis_mono(y, sr=sr)
    return [submit(track_beats, mono, sr=ANALYSIS_SR), submit(cqt_chroma, mono, sr=ANALYSIS_SR)]


def refine_period(onset: np.ndarray, period_frames: float, *, n_beats: int = 8, search: float = 0.06) -> float:
    """Refine a beat period (frames) to sub-frame precision.

    The onset envelope's autocorrelation is read at ``k * period`` for ``k = 1..n_beats``
    (linear interpolation between lags); the period in ``[1 - search, 1 + search] *
    period_frames`` that maximises the sum wins. Summing eight beats makes one frame of
    lag error an eighth as large: about 0.25 % at 120 BPM instead of 2 %.
    """
    ac = librosa.autocorrelate(onset - onset.mean())
    lags = np.arange(len(ac))
    candidates = np.linspace((1 - search) * period_frames, (1 + search) * period_frames, 481)
    ks = np.arange(1, n_beats + 1)[:, None]
    positions = ks * candidates[None, :]
    usable = positions[-1] < len(ac) - 1
    if not usable.any():
        return float(period_frames)
    candidates, positions = candidates[usable], positions[:, usable]
    score = np.interp(positions, lags, ac).sum(axis=0)
    return float(candidates[int(np.argmax(score))])


def track_beats(y: np.ndarray, *, sr: int, start_bpm: float = 120.0) -> Beats:
    """Beat-track ``(channels, n)`` or ``(n,)`` audio; the tempo is refined to sub-frame precision.

    librosa's dynamic-programming tracker gives the beats and a coarse tempo (its lag grid
    is ~2 % wide at 120 BPM); :func:`refine_period` sharpens the tempo on the onset
    envelope's autocorrelation over eight beats.
    """
    mono = analysis_mono(y, sr=sr)
    return _BEATS.get(_BEATS.key(mono, float(start_bpm)), lambda: _track(mono, start_bpm))


def _track(mono: np.ndarray, start_bpm: float) -> Beats:
    if mono.size == 0 or np.max(np.abs(mono)) < 1e-5:
        return Beats(np.zeros(0), float("nan"))
    onset = librosa.onset.onset_strength(y=mono, sr=ANALYSIS_SR, hop_length=HOP)
    tempo, frames = librosa_beat().beat_track(onset_envelope=onset, sr=ANALYSIS_SR, hop_length=HOP,
                                            start_bpm=start_bpm, trim=True)
    times = librosa.frames_to_time(frames, sr=ANALYSIS_SR, hop_length=HOP)
    times.setflags(write=False)  # remembered and shared: nobody may change it
    coarse = float(np.atleast_1d(tempo)[0])
    if len(times) < 4 or not np.isfinite(coarse) or coarse <= 0:
        return Beats(times, float("nan"))
    fps = ANALYSIS_SR / HOP
    period = refine_period(onset, 60.0 * fps / coarse)
    return Beats(times, float(60.0 * fps / period))


def estimate_tempo(y: np.ndarray, *, sr: int) -> float:
    """Tempo of ``y`` in BPM (``nan`` for silence or too few beats)."""
    return track_beats(y, sr=sr).bpm


def beat_chroma(y: np.ndarray, *, sr: int) -> tuple[np.ndarray, float]:
    """Beat-synchronous CQT chroma of ``(channels, n)`` or ``(n,)`` audio, on the song's one beat grid.

    Returns ``(chroma, bpm)``: chroma ``(12, n_beats)`` float32 with the median of each beat's
    un-normalised CQT chroma frames (:func:`cqt_chroma`, beats from :func:`track_beats`), every
    column then scaled to a maximum of 1 (a beat below 1e-3 of the loudest stays 0); ``bpm``
    the grid's tempo. Without a usable beat grid (fewer than 4 beats) the frames are pooled every
    0.5 s instead (``bpm`` is then ``nan``). Silence or less than 4 frames: ``(12, 0)``.
    """
    mono = analysis_mono(y, sr=sr)
    if mono.size < CHROMA_HOP * 4 or float(np.max(np.abs(mono))) < 1e-5:
        return np.zeros((12, 0), np.float32), float("nan")
    chroma = cqt_chroma(mono, sr=ANALYSIS_SR, hop_length=CHROMA_HOP)
    beats = track_beats(mono, sr=ANALYSIS_SR)
    frames = librosa.time_to_frames(beats.times_s, sr=ANALYSIS_SR, hop_length=CHROMA_HOP)
    frames = frames[(frames > 0) & (frames < chroma.shape[1])]
    if len(frames) < 4:
        step = max(1, int(round(0.5 * ANALYSIS_SR / CHROMA_HOP)))
        frames = np.arange(step, chroma.shape[1], step)
    chroma = librosa.util.sync(chroma, frames, aggregate=np.median)
    peak = chroma.max(axis=0, keepdims=True)
    chroma = np.where(peak > 1e-3 * max(float(peak.max()), 1e-12), chroma / np.maximum(peak, 1e-12), 0.0)
    return chroma.astype(np.float32), beats.bpm
