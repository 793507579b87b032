"""Tempo and key changes with Rubber Band: :func:`stretch`, and the stretchers it can use.

A stretcher is registered in :data:`STRETCHERS` (``--stretcher`` takes its choices from there)
as a function ``fn(y, *, sr, time_ratio, semitones, high_quality, preserve_formants) -> ndarray``:
``y`` float32 ``(channels, n)``; it returns float32 ``(channels, m)`` played ``time_ratio`` times
faster and ``semitones`` higher, ``m`` within a few samples of ``round(n / time_ratio)``
(:func:`stretch` trims or pads to exactly that); ``high_quality`` asks for the best engine
(Rubber Band R3), ``preserve_formants`` keeps formants through a pitch shift. It raises
:class:`~covermill.errors.BackendUnavailableError` naming what to install when it cannot run.
Registering imports nothing: a stretcher imports its binding when first called.
"""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError
from ..registry import Registry

#: The stretchers, by name (see the module docstring for the contract).
STRETCHERS = Registry("stretcher")


def tempo_ratio(source_bpm: float, *, target_bpm: float | None = None, bpm_delta: float | None = None,
                ratio: float | None = None, genre: str | None = None) -> float:
    """``cover_bpm / source_bpm`` for a recipe's tempo rule (1.0 when nothing is asked).

    ``genre`` moves the tempo into that genre's typical range
    (:func:`covermill.recipes.genres.into_range`). Raises :class:`ParameterError` when a
    BPM rule needs a source tempo that is unknown.
    """
    if ratio is not None:
        return float(ratio)
    if target_bpm is None and bpm_delta is None and genre is None:
        return 1.0
    if genre is not None:
        from ..recipes.genres import into_range

        if not np.isfinite(source_bpm) or source_bpm <= 0:
            raise ParameterError("the source tempo could not be detected; use `tempo: {ratio: ...}` instead")
        return float(into_range(source_bpm, genre) / source_bpm)
    if not np.isfinite(source_bpm) or source_bpm <= 0:
        raise ParameterError("the source tempo could not be detected; use `tempo: {ratio: ...}` instead of a BPM rule")
    target = target_bpm if target_bpm is not None else source_bpm + bpm_delta
    if target <= 0:
        raise ParameterError(f"the target tempo {target:.1f} BPM is not positive (source {source_bpm:.1f} BPM)")
    return float(target / source_bpm)


def stretch(y: np.ndarray, *, sr: int, time_ratio: float = 1.0, semitones: float = 0.0,
            high_quality: bool = True, preserve_formants: bool = True, engine: str = "pedalboard") -> np.ndarray:
    """Play ``(channels, n)`` audio ``time_ratio`` times faster and ``semitones`` higher.

    Output length is exactly ``round(n / time_ratio)`` samples, so stems stretched
    separately stay sample-aligned. ``high_quality`` selects Rubber Band's R3 engine.
    ``engine``: ``pedalboard`` (Rubber Band linked in-process) or ``pyrubberband`` (the
    ``rubberband`` command line, Debian's ``rubberband-cli``), the alternate.
    ``preserve_formants`` applies to pitch shifts only: without one Rubber Band's output is
    the same with or without it, and about 6 % faster without, so it is switched off then.
    """
    if time_ratio <= 0:
        raise ParameterError(f"time_ratio={time_ratio} must be > 0")
    backend = STRETCHERS.factory(engine)  # an unknown name lists the choices
    n_out = int(round(y.shape[1] / time_ratio))
    preserve_formants = bool(preserve_formants and semitones)
    if time_ratio == 1.0 and semitones == 0.0:
        return y.astype(np.float32, copy=True)
    out = backend(y, sr=sr, time_ratio=time_ratio, semitones=semitones, high_quality=high_quality,
                  preserve_formants=preserve_formants)
    if out.shape[1] >= n_out:
        return np.ascontiguousarray(out[:, :n_out])
    return np.pad(out, ((0, 0), (0, n_out - out.shape[1])))


@STRETCHERS.register("pedalboard")
def _pedalboard(y, *, sr, time_ratio, semitones, high_quality, preserve_formants) -> np.ndarray:
    """Rubber Band linked in-process (pedalboard's binding; releases the GIL)."""
    import pedalboard

    return pedalboard.time_stretch(
        np.ascontiguousarray(y, dtype=np.float32), float(sr), stretch_factor=float(time_ratio),
        pitch_shift_in_semitones=float(semitones), high_quality=high_quality, preserve_formants=preserve_formants,
    )


@STRETCHERS.register("pyrubberband")
def _pyrubberband(y, *, sr, time_ratio, semitones, high_quality, preserve_formants) -> np.ndarray:
    """The ``rubberband`` command line (Debian's ``rubberband-cli``) through pyrubberband."""
    import shutil

    from ..errors import BackendUnavailableError

    if shutil.which("rubberband") is None:
        raise BackendUnavailableError("the pyrubberband stretcher needs the rubberband command: apt-get install rubberband-cli")
    try:
        import pyrubberband
    except ImportError:
        raise BackendUnavailableError("the pyrubberband stretcher needs: pip install pyrubberband") from None
    args = {"--pitch": str(float(semitones))}
    if high_quality:
        args["--fine"] = ""  # R3 engine
    if preserve_formants and semitones:
        args["--formant"] = ""
    out = pyrubberband.time_stretch(np.ascontiguousarray(y.T), sr, float(time_ratio), rbargs=args)
    return np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(-1, y.shape[0]).T)
