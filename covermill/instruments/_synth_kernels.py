"""Compiled (numba) per-sample loops of the parametric synthesizer (:mod:`.parametric`).

Each kernel computes what the numpy expressions it replaced computed, in the same precision
(float32 where those were float32) and the same order of operations, in one pass instead of
one pass per operation, except where functions of the C library cost more than all the rest
or keep loops from vectorizing: ``sin``/``cos`` are :func:`sincos` (fdlibm's argument
reduction and polynomials, within 1.2e-16 in float64), ``x % (2 pi)`` is :func:`wrap_phase`
(exact, like ``fmod``), and ``10 ** x`` / ``2 ** x`` are ``exp(x ln 10)`` / ``exp(x ln 2)``
(the C library's ``exp``, within an ulp or two of ``pow`` in float64). Every such result is
rounded to float32, as before, so the audio is the same to float32 rounding: bit for bit on the
songs and instruments measured.
``tests/instruments/test_parametric.py`` checks the kernels against the numpy versions.
"""

from __future__ import annotations

import numpy as np

from ..kernels import jit

# fdlibm (k_sin.c, k_cos.c, e_rem_pio2.c)
_INV_PIO2 = 6.36619772367581382433e-01
_PIO2_1 = 1.57079632673412561417e00  # first 33 bits of pi/2
_PIO2_1T = 6.07710050650619224932e-11  # pi/2 - _PIO2_1
_S1, _S2, _S3 = -1.66666666666666324348e-01, 8.33333333332248946124e-03, -1.98412698298579493134e-04
_S4, _S5, _S6 = 2.75573137070700676789e-06, -2.50507602534068634195e-08, 1.58969099521155010221e-10
_C1, _C2, _C3 = 4.16666666666666019037e-02, -1.38888888888741095749e-03, 2.48015872894767294178e-05
_C4, _C5, _C6 = -2.75573143513906633035e-07, 2.08757232129817482790e-09, -1.13596475577881948265e-11


@jit
def sincos(x):
    """``(sin(x), cos(x))`` in float64 within 1.2e-16 (a few ulp away from their zeros) for
    ``0 <= x < 2**19 * pi / 2``; branch-free, so that loops calling it vectorize.

    Reduces ``x`` by the nearest multiple ``n`` of pi/2 (two-part pi/2, keeping the reduced
    argument's rounding error as a tail), then evaluates fdlibm's kernels on [-pi/4, pi/4].
    """
    n = np.floor(x * _INV_PIO2 + 0.5)
    q = np.int64(n) & 3
    r = x - n * _PIO2_1  # exact
    w = n * _PIO2_1T
    y = r - w  # reduced argument ...
    tail = (r - y) - w  # ... and its rounding error
    z = y * y
    v = z * y
    p = _S2 + z * (_S3 + z * (_S4 + z * (_S5 + z * _S6)))
    sin_y = y - ((z * (0.5 * tail - v * p) - tail) - v * _S1)
    zz = z * z
    p = z * (_C1 + z * (_C2 + z * _C3)) + zz * zz * (_C4 + z * (_C5 + z * _C6))
    hz = 0.5 * z
    u = 1.0 - hz
    cos_y = u + (((1.0 - u) - hz) + (z * p - y * tail))
    odd = (q & 1) == 1
    s = cos_y if odd else sin_y
    c = sin_y if odd else cos_y
    s = -s if (q & 2) != 0 else s
    c = -c if ((q + 1) & 2) != 0 else c
    return s, c


# 2 pi (the float64) in three parts of 20, 20 and 12 bits: q * part is exact for integers q < 2**30
_TWO_PI = 2 * np.pi
_TWO_PI_1 = float.fromhex("0x1.921fap+2")
_TWO_PI_2 = float.fromhex("0x1.54442p-18")
_TWO_PI_3 = float.fromhex("0x1.a3p-39")
#: :func:`wrap_phase` is exact below this.
WRAP_MAX = 2.0**30
_LN2 = np.log(2.0)
_NEG_LN10_20 = -np.log(10.0) / 20.0


@jit
def wrap_phase(x):
    """``x % (2 * np.pi)``, exactly (like ``fmod``), for ``0 <= x < WRAP_MAX``; branch-free.

    ``q`` is ``floor(x / 2 pi)`` or one more (never less: the quotient is rounded up by more
    than its error), so ``x - q 2 pi`` lies in (-2 pi, 2 pi); it is a multiple of ``ulp(2 pi)``
    and is computed exactly by subtracting the exact products of ``q`` and the three parts.
    """
    q = np.floor(x * (1.0 / _TWO_PI) * (1.0 + 2.0**-50))
    r = ((x - q * _TWO_PI_1) - q * _TWO_PI_2) - q * _TWO_PI_3
    return r + _TWO_PI if r < 0 else r


@jit
def smooth_gate(gate, a_att, a_rel):
    """float32 ``where(gate > 0, rising, minimum(falling, 1))`` of the float64 one-pole lowpasses
    ``lfilter([1 - a], [1, -a], gate)`` with ``a = a_att`` (rising) and ``a = a_rel`` (falling)."""
    out = np.empty(gate.size, np.float32)
    rising = 0.0
    falling = 0.0
    for i in range(gate.size):
        x = np.float64(gate[i])
        rising = (1.0 - a_att) * x + a_att * rising
        falling = (1.0 - a_rel) * x + a_rel * falling
        out[i] = rising if gate[i] > 0 else min(falling, 1.0)
    return out


@jit
def hold_f0(f0):
    """``f0`` with every unvoiced sample (``<= 0``) given the last voiced one's value and those
    before the first voiced sample the first's; unchanged where nothing is voiced."""
    out = f0.copy()
    if f0.size == 0:
        return out
    held = f0[0]
    first = -1
    for i in range(f0.size):
        if f0[i] > 0:
            held = f0[i]
            if first < 0:
                first = i
        else:
            out[i] = held
    if first < 0:
        return f0.copy()
    for i in range(first):
        out[i] = f0[first]
    return out


@jit
def vibrato(f0, sr, rate_hz, depth_cents):
    """float32 ``f0 * float32(2 ** (depth_cents / 1200 * sin(2 pi rate_hz n / sr)))`` at samples ``n``."""
    out = np.empty(f0.size, np.float32)
    w = 2 * np.pi * rate_hz
    depth = depth_cents / 1200.0
    for i in range(f0.size):
        s, _ = sincos(w * np.float64(i) / sr)
        out[i] = f0[i] * np.float32(np.exp(depth * s * _LN2))  # 2 ** (depth * s)
    return out


#: Samples per block of the oscillator bank: its state stays in L1 and each harmonic's update vectorizes.
BLOCK = 256


@jit
def oscillator_bank(f0, amp, loud, weights, sr, loud_lo, loud_span, tilt_db, brightness_db, pitch_tilt_db, pitch_ref_hz):
    """Band-limited harmonics of ``f0`` times ``amp`` (float32), zero where ``amp <= 1e-6``.

    What the numpy original computed, for the samples where ``amp > 1e-6``::

        phase = (2 * pi * cumsum(float64(f0)) / sr) % (2 * pi)       # over all samples
        level = clip((loud - loud_lo) / loud_span, 0, 1)             # float64
        slope_db = tilt_db + brightness_db * (0.5 - level)
        if pitch_tilt_db:
            octaves = log2(maximum(f0, 1) / float32(pitch_ref_hz))    # float32
            slope_db = maximum(slope_db + float32(pitch_tilt_db) * octaves, 0)
        ratio = float32(10 ** (-slope_db / 20))
        limit = float32(sr / 2) / maximum(f0, 1)
        two_cos, s_k = float32(2 * cos(phase)), float32(sin(phase))   # sin(k phase), k = 1
        s_prev, gain, out = 0, 1, 0                                   # float32
        for k in 1 .. len(weights):
            if k > 1: s_prev, s_k = s_k, two_cos * s_k - s_prev; gain *= ratio
            out += where(k < limit, gain * weights[k - 1] * s_k, 0)
        out * amp
    """
    n = f0.size
    out = np.zeros(n, np.float32)
    two_pi = 2 * np.pi
    half_sr = np.float32(sr / 2)
    one = np.float32(1.0)
    ref = np.float32(pitch_ref_hz)
    per_octave = np.float32(pitch_tilt_db)
    x = np.empty(BLOCK, np.float64)
    two_cos = np.empty(BLOCK, np.float32)
    s_prev = np.empty(BLOCK, np.float32)
    s_k = np.empty(BLOCK, np.float32)
    ratio = np.empty(BLOCK, np.float32)
    gain = np.empty(BLOCK, np.float32)
    limit = np.empty(BLOCK, np.float32)
    acc = np.empty(BLOCK, np.float32)
    cycles = 0.0
    for start in range(0, n, BLOCK):
        m = min(BLOCK, n - start)
        top = np.float32(0.0)  # the block's highest limit
        for j in range(m):  # sequential: the running phase, and the C library's exp
            i = start + j
            cycles += np.float64(f0[i])
            if amp[i] > np.float32(1e-6):
                x[j] = two_pi * cycles / sr
                if not 0 <= x[j] < WRAP_MAX:  # (not before a day at 2 kHz)
                    x[j] = x[j] % two_pi
                level = min(max((np.float64(loud[i]) - loud_lo) / loud_span, 0.0), 1.0)
                slope = tilt_db + brightness_db * (0.5 - level)
                if pitch_tilt_db != 0:
                    octaves = np.log2(max(f0[i], one) / ref)
                    slope = max(slope + per_octave * octaves, 0.0)
                ratio[j] = np.float32(np.exp(slope * _NEG_LN10_20))  # 10 ** (-slope / 20)
                limit[j] = half_sr / max(f0[i], one)
                top = max(top, limit[j])
            else:  # silent: every harmonic is dropped (and the state stays 0)
                x[j] = 0.0
                ratio[j] = 0
                limit[j] = 0
        for j in range(m):  # vectorizes
            s, c = sincos(wrap_phase(x[j]))
            two_cos[j] = np.float32(2.0 * c)
            s_k[j] = np.float32(s)
            s_prev[j] = 0
            gain[j] = 1
            acc[j] = 0
        for k in range(1, weights.size + 1):
            if k >= top:  # no sample of the block has harmonic k (or above) below Nyquist
                break
            w = weights[k - 1]
            if k == 1:
                for j in range(m):
                    acc[j] += gain[j] * w * s_k[j] if k < limit[j] else np.float32(0.0)
                continue
            for j in range(m):  # one harmonic over the block: vectorizes
                s_next = two_cos[j] * s_k[j] - s_prev[j]
                s_prev[j] = s_k[j]
                s_k[j] = s_next
                gain[j] *= ratio[j]
                acc[j] += gain[j] * w * s_k[j] if k < limit[j] else np.float32(0.0)
        for j in range(m):
            if amp[start + j] > np.float32(1e-6):
                out[start + j] = acc[j] * amp[start + j]
    return out
