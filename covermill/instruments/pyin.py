"""Probabilistic YIN (Mauch & Dixon 2014) as ``librosa.pyin`` computes it, about 4x faster.

librosa's pyin spends its time in two places that do not need to be slow:

- the per-frame Python loop that turns YIN troughs into pitch-candidate probabilities (one
  ``scipy.stats.boltzmann.pmf`` call per frame): here one vectorised pass over all troughs of
  all frames, with the same arithmetic;
- a dense Viterbi over ``2 * n_pitch_bins`` states (472 for 40-1200 Hz at a quarter
  semitone): every state pair is tried although the transition matrix is the Kronecker
  product of a 2x2 voicing switch and a band of ``transition_width`` pitch bins. Here only
  the non-zero transitions are searched (:func:`banded_viterbi`), with the zero ones taken
  care of exactly, so the decoded path is librosa's (tested against ``librosa.pyin``).

The YIN difference function and the parabolic refinement are librosa's own; the difference
function (FFT autocorrelation) is now about half of the time.
"""

from __future__ import annotations

import functools

import librosa
import numpy as np
import scipy.stats
from librosa.core.pitch import _cumulative_mean_normalized_difference, _parabolic_interpolation

from ..kernels import jit

__all__ = ["pyin", "banded_viterbi"]


def pyin(y: np.ndarray, *, fmin: float, fmax: float, sr: float, frame_length: int = 2048,
         hop_length: int | None = None, n_thresholds: int = 100, beta_parameters=(2, 18),
         boltzmann_parameter: float = 2, resolution: float = 0.1, max_transition_rate: float = 35.92,
         switch_prob: float = 0.01, no_trough_prob: float = 0.01, center: bool = True,
         pad_mode: str = "constant") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``librosa.pyin`` of mono ``y``: ``(f0, voiced_flag, voiced_prob)``, f0 NaN where unvoiced.

    Same arguments and results as librosa (``fill_na=np.nan``, 1-D input only).
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"pyin takes mono audio, got shape {y.shape}")
    if hop_length is None:
        hop_length = frame_length // 4
    if center:
        y = np.pad(y, (frame_length // 2, frame_length // 2), mode=pad_mode)
    y_frames = librosa.util.frame(y, frame_length=frame_length, hop_length=hop_length)
    min_period = int(np.floor(sr / fmax))
    max_period = min(int(np.ceil(sr / fmin)), frame_length - 1)
    yin_frames = _cumulative_mean_normalized_difference(y_frames, min_period, max_period)
    shifts = _parabolic_interpolation(yin_frames)

    thresholds = np.linspace(0, 1, n_thresholds + 1)
    beta_probs = np.diff(scipy.stats.beta.cdf(thresholds, beta_parameters[0], beta_parameters[1]))
    n_bins_per_semitone = int(np.ceil(1.0 / resolution))
    n_pitch_bins = int(np.floor(12 * n_bins_per_semitone * np.log2(fmax / fmin))) + 1
    obs, voiced_prob = _observations(
        yin_frames, shifts, sr=sr, thresholds=thresholds, boltzmann_parameter=boltzmann_parameter,
        beta_probs=beta_probs, no_trough_prob=no_trough_prob, min_period=min_period, fmin=fmin,
        n_pitch_bins=n_pitch_bins, n_bins_per_semitone=n_bins_per_semitone)

    max_semitones_per_frame = round(max_transition_rate * 12 * hop_length / sr)
    transition_width = max_semitones_per_frame * n_bins_per_semitone + 1
    states = _decode(obs, *_pyin_band(n_pitch_bins, transition_width, float(switch_prob)), np.finfo(obs.dtype).tiny)

    freqs = fmin * 2 ** (np.arange(n_pitch_bins) / (12 * n_bins_per_semitone))
    f0 = freqs[states % n_pitch_bins]
    voiced_flag = states < n_pitch_bins
    f0[~voiced_flag] = np.nan
    return f0, voiced_flag, voiced_prob


def _observations(yin_frames, shifts, *, sr, thresholds, boltzmann_parameter, beta_probs, no_trough_prob,
                  min_period, fmin, n_pitch_bins, n_bins_per_semitone, chunk=1024):
    """librosa's ``__pyin_helper`` for all frames at once: observation probabilities ``(2 * bins, t)``.

    Troughs are scored ``chunk`` frames at a time to bound memory.
    """
    n_frames = yin_frames.shape[1]
    prefix = np.array([np.sum(beta_probs[:n]) for n in range(len(beta_probs) + 1)])
    parts = [_trough_probs(yin_frames[:, a : a + chunk], thresholds=thresholds, beta_probs=beta_probs,
                           boltzmann_parameter=boltzmann_parameter, no_trough_prob=no_trough_prob,
                           prefix=prefix, offset=a)
             for a in range(0, n_frames, chunk)]
    period = np.concatenate([q[0] for q in parts])
    frames = np.concatenate([q[1] for q in parts])
    p = np.concatenate([q[2] for q in parts]).astype(yin_frames.dtype)  # librosa keeps them in yin's dtype
    keep = p != 0
    period, frames, p = period[keep], frames[keep], p[keep]
    order = np.lexsort((frames, period))  # np.nonzero(yin_probs) order: by period, then frame
    period, frames, p = period[order], frames[order], p[order]
    f0_candidates = sr / (min_period + period + shifts[period, frames])
    bin_index = 12 * n_bins_per_semitone * np.log2(f0_candidates / fmin)
    bin_index = np.clip(np.round(bin_index), 0, n_pitch_bins).astype(int)
    obs = np.zeros((2 * n_pitch_bins, n_frames))
    obs[bin_index, frames] = p
    voiced_prob = np.clip(np.sum(obs[:n_pitch_bins, :], axis=0, keepdims=True), 0, 1)
    obs[n_pitch_bins:, :] = (1 - voiced_prob) / n_pitch_bins
    return obs, voiced_prob[0]


def _trough_probs(yin_frames, *, thresholds, beta_probs, boltzmann_parameter, no_trough_prob, prefix, offset):
    """Every trough of every frame with its probability: ``(period, frame + offset, prob)``."""
    n_frames = yin_frames.shape[1]
    is_trough = librosa.util.localmin(yin_frames, axis=0)
    is_trough[0] = yin_frames[0] < yin_frames[1]
    frame_index, trough_index = np.nonzero(is_trough.T)  # by frame, then by period, as librosa's loop
    heights = yin_frames[trough_index, frame_index]
    below = np.less.outer(heights, thresholds[1:])  # (troughs, thresholds)
    # a trough's position among its frame's troughs below each threshold, and their number
    starts = np.searchsorted(frame_index, np.arange(n_frames))[frame_index]
    ends = np.searchsorted(frame_index, np.arange(n_frames), side="right")[frame_index]
    cum = np.zeros((len(heights) + 1, below.shape[1]), np.int64)
    np.cumsum(below, axis=0, out=cum[1:])
    positions = cum[1:] - cum[starts] - 1
    n_troughs = cum[ends] - cum[starts]
    prior = np.zeros(below.shape)
    prior[below] = _boltzmann_pmf(positions[below], boltzmann_parameter, n_troughs[below])
    probs = prior.dot(beta_probs)
    # each frame's deepest trough (the first, on a tie) also takes the thresholds it is not below
    order = np.lexsort((heights, frame_index))  # stable: equal heights keep period order
    head = np.ones(len(order), bool)
    head[1:] = frame_index[order][1:] != frame_index[order][:-1]
    global_min = order[head]
    probs[global_min] += no_trough_prob * prefix[np.count_nonzero(~below[global_min], axis=1)]
    return trough_index, frame_index + offset, probs


def _boltzmann_pmf(k, lambda_, n):
    """``scipy.stats.boltzmann.pmf`` for valid arguments, with scipy's arithmetic (element by element)."""
    lam = np.full(k.shape, lambda_)
    fact = (1 - np.exp(-lam)) / (1 - np.exp(-lam * n))
    return np.clip(fact * np.exp(-lam * k), 0, 1)


def banded_viterbi(prob: np.ndarray, transition: np.ndarray) -> np.ndarray:
    """``librosa.sequence.viterbi(prob, transition)`` (uniform start) searching only non-zero transitions.

    ``prob`` is ``(states, t)``. Each state's predecessors with a non-zero transition must be
    contiguous within the blocks of a block-banded matrix (true of pyin's Kronecker product);
    zero transitions weigh ``log(tiny)`` as in librosa, and the best of them is the state that
    was best overall, so it is found in constant time. Returns the ``uint16`` state path.
    """
    epsilon = np.finfo(prob.dtype).tiny
    return _decode(prob, *_band(transition, epsilon), epsilon)


def _band(transition: np.ndarray, epsilon: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``log(transition + epsilon)`` and, per target state ``j``, the ranges ``[lo, hi)`` of
    predecessors ``i`` with ``transition[i, j] > 0``."""
    n_states = transition.shape[0]
    nz = transition > 0
    edges = np.diff(np.concatenate([np.zeros((1, n_states), bool), nz, np.zeros((1, n_states), bool)]).astype(np.int8),
                    axis=0)
    ranges = [np.flatnonzero(edges[:, j]).reshape(-1, 2) for j in range(n_states)]
    n_ranges = max(len(r) for r in ranges)
    lo = np.zeros((n_states, n_ranges), np.int64)
    hi = np.zeros((n_states, n_ranges), np.int64)
    for j, r in enumerate(ranges):
        lo[j, : len(r)], hi[j, : len(r)] = r[:, 0], r[:, 1]
    return np.log(transition + epsilon), lo, hi


@functools.lru_cache(maxsize=8)
def _pyin_band(n_pitch_bins: int, transition_width: int, switch_prob: float):
    """:func:`_band` of pyin's transition matrix, built once per setting (a song's runs share it)."""
    local = librosa.sequence.transition_local(n_pitch_bins, transition_width, window="triangle", wrap=False)
    transition = np.kron(librosa.sequence.transition_loop(2, 1 - switch_prob), local)
    arrays = _band(transition, np.finfo(np.float64).tiny)
    for a in arrays:
        a.flags.writeable = False
    return arrays


def _decode(prob: np.ndarray, log_trans: np.ndarray, lo: np.ndarray, hi: np.ndarray, epsilon: float) -> np.ndarray:
    n_states = prob.shape[0]
    log_prob = np.log(prob + epsilon).T.copy()
    log_p_init = np.log(np.full(n_states, 1.0 / n_states) + epsilon)
    return _banded_viterbi(log_prob, log_trans, log_p_init, lo, hi, float(np.log(epsilon)))


@jit  # without the GIL: other stems' work goes on beside it
def _banded_viterbi(log_prob, log_trans, log_p_init, lo, hi, log_zero):  # pragma: no cover (numba)
    n_steps, n_states = log_prob.shape
    value = log_prob[0] + log_p_init
    ptr = np.zeros((n_steps, n_states), np.uint16)
    new = np.empty(n_states)
    for t in range(1, n_steps):
        g = np.argmax(value)  # the best predecessor through a zero transition, if it is one
        for j in range(n_states):
            best = -np.inf
            arg = -1
            inside = False
            for r in range(lo.shape[1]):
                for i in range(lo[j, r], hi[j, r]):
                    cand = value[i] + log_trans[i, j]
                    if cand > best:
                        best = cand
                        arg = i
                if lo[j, r] <= g < hi[j, r]:
                    inside = True
            if not inside:
                cand = value[g] + log_zero
                if cand > best or (cand == best and g < arg):
                    best = cand
                    arg = g
            ptr[t, j] = arg
            new[j] = log_prob[t, j] + best
        value[:] = new
    state = np.empty(n_steps, np.uint16)
    state[-1] = np.argmax(value)
    for t in range(n_steps - 2, -1, -1):
        state[t] = ptr[t + 1, state[t + 1]]
    return state
