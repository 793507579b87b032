"""Per-stem processing and summing: pan (constant power), effect chain, gain.

Pan law: ``theta = (pan + 1) * pi / 4``, left gain ``cos(theta)``, right gain
``sin(theta)``. A mono source is spread with exactly those gains (-3 dB each side at
centre, total power constant); a stereo source is balanced with the same gains times
``sqrt(2)``, so a centred stereo stem passes unchanged and ``pan = -1`` silences the
right channel.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..audio import check_audio
from ..effects import build_chain
from ..recipes import Recipe, Stem
from .tempo import stretch


def pan_gains(pan: float) -> tuple[float, float]:
    """Constant-power (left, right) gains for ``pan`` in [-1, 1]."""
    theta = (float(np.clip(pan, -1.0, 1.0)) + 1.0) * np.pi / 4.0
    left, right = float(np.cos(theta)), float(np.sin(theta))
    # exact zeros at the extremes (cos(pi/2) is 6e-17, not 0)
    return (0.0 if pan >= 1.0 else left), (0.0 if pan <= -1.0 else right)


def pan(y: np.ndarray, pan: float) -> np.ndarray:
    """Place mono ``(1, n)`` or balance stereo ``(2, n)`` audio; returns ``(2, n)``."""
    left, right = pan_gains(pan)
    if y.shape[0] == 1:
        return np.vstack([y[0] * left, y[0] * right]).astype(np.float32)
    scale = np.sqrt(2.0)
    return np.vstack([y[0] * left * scale, y[1] * right * scale]).astype(np.float32)


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def process_stem(y: np.ndarray, *, sr: int, spec: Stem, root: str | Path | None = None) -> np.ndarray:
    """Pan, run the effect chain and apply the gain of one stem; returns float32 ``(2, n)``."""
    y = check_audio(y, sr)
    out = pan(y, spec.pan)
    if spec.effects:
        board = build_chain([(e.plugin, e.params) for e in spec.effects], root=root)
        out = board(out, sr)
    return (out * db_to_gain(spec.gain_db)).astype(np.float32)


def sum_stems(stems: list[np.ndarray], *, length: int) -> np.ndarray:
    """Sum ``(2, n_i)`` arrays into ``(2, length)``, padding or trimming each."""
    bus = np.zeros((2, length), np.float32)
    for y in stems:
        n = min(length, y.shape[1])
        bus[:, :n] += y[:, :n]
    return bus


def audible(recipe: Recipe, names) -> list[str]:
    """Stems that are heard: not muted, and soloed if any stem is soloed."""
    soloed = [n for n in names if recipe.stem(n).solo]
    return [n for n in names if recipe.stem(n).action != "mute" and (not soloed or n in soloed)]


def stretch_kept(
    kept: dict[str, np.ndarray],
    *,
    recipe: Recipe,
    sr: int,
    n_in: int,
    time_ratio: float = 1.0,
    semitones: float = 0.0,
    stretcher: str = "pedalboard",
    root: str | Path | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The kept stems, processed and summed, and their sends, at the cover tempo.

    ``kept`` stems are at the source tempo (``n_in`` samples). Every stem is panned, run
    through its effects and gained; the sum and each bus's send are stacked into one
    multichannel array and time-stretched in a single Rubber Band pass, so everything stays
    sample-aligned and the stretch costs one pass. Returns ``(main (2, n_out), {bus: (2, n_out)})``
    with ``n_out = round(n_in / time_ratio)``; buses nothing was sent to are left out.
    """
    main = np.zeros((2, n_in), np.float32)
    sends = {b: np.zeros((2, n_in), np.float32) for b in recipe.buses}
    _add_processed(kept, main, sends, recipe=recipe, sr=sr, root=root)
    n_out = int(round(n_in / time_ratio))
    if not kept:
        return np.zeros((2, n_out), np.float32), {}
    used = [b for b in recipe.buses if np.any(sends[b])]
    stacked = np.concatenate([main, *[sends[b] for b in used]], axis=0)
    stretched = stretch(stacked, sr=sr, time_ratio=time_ratio, semitones=semitones, engine=stretcher,
                        high_quality=recipe.tempo.quality == "high")
    fit = lambda a: sum_stems([a], length=n_out)  # noqa: E731  (the stretcher may be a sample off)
    return fit(stretched[:2]), {b: fit(stretched[2 + 2 * i : 4 + 2 * i]) for i, b in enumerate(used)}


def _add_processed(group: dict[str, np.ndarray], main: np.ndarray, sends: dict[str, np.ndarray], *, recipe: Recipe,
                   sr: int, root: str | Path | None, each: dict[str, np.ndarray] | None = None) -> None:
    """Process each stem of ``group`` and add it into ``main`` and, by its send levels, into ``sends``.

    The stems' chains run side by side on threads (pedalboard releases the GIL while it
    processes); they are summed in the group's order, so the result does not depend on timing.
    """
    length = main.shape[1]
    names = list(group)
    workers = min(len(names), os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        processed = list(pool.map(lambda n: process_stem(group[n], sr=sr, spec=recipe.stem(n), root=root), names))
    for name, y in zip(names, processed, strict=True):
        spec = recipe.stem(name)
        m = min(length, y.shape[1])
        main[:, :m] += y[:, :m]
        if each is not None:
            each[name] = sum_stems([y], length=length)
        for bus, level_db in spec.sends.items():
            sends[bus][:, :m] += y[:, :m] * db_to_gain(level_db)


def stretch_each(
    kept: dict[str, np.ndarray], *, recipe: Recipe, sr: int, n_in: int, time_ratio: float = 1.0,
    semitones: float = 0.0, stretcher: str = "pedalboard", root: str | Path | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Like :func:`stretch_kept`, but every kept stem stays a track of its own: ``({stem: (2, n_out)},
    {bus: (2, n_out)})``, each stem processed (pan, effects, gain) and stretched as its own
    channels of the same Rubber Band pass (so all stay sample-aligned). Their sum is the kept
    stems' part of the cover, and each is a cover stem (``OUT/cover_stems/<stem>.wav``). With
    one kept stem this is :func:`stretch_kept` exactly."""
    n_out = int(round(n_in / time_ratio))
    if not kept:
        return {}, {}
    main = np.zeros((2, n_in), np.float32)
    sends = {b: np.zeros((2, n_in), np.float32) for b in recipe.buses}
    each: dict[str, np.ndarray] = {}
    _add_processed(kept, main, sends, recipe=recipe, sr=sr, root=root, each=each)
    names = list(each)
    used = [b for b in recipe.buses if np.any(sends[b])]
    stacked = np.concatenate([*[each[n] for n in names], *[sends[b] for b in used]], axis=0)
    stretched = stretch(stacked, sr=sr, time_ratio=time_ratio, semitones=semitones, engine=stretcher,
                        high_quality=recipe.tempo.quality == "high")
    fit = lambda a: sum_stems([a], length=n_out)  # noqa: E731  (the stretcher may be a sample off)
    k = len(names)
    return ({n: fit(stretched[2 * i : 2 * i + 2]) for i, n in enumerate(names)},
            {b: fit(stretched[2 * (k + i) : 2 * (k + i) + 2]) for i, b in enumerate(used)})


def mix_voiced(revoiced: dict[str, np.ndarray], *, recipe: Recipe, sr: int, n_out: int,
               root: str | Path | None = None, each: dict[str, np.ndarray] | None = None
               ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The re-voiced stems and generated parts (already at the cover tempo, ``n_out`` samples)
    through their chains: ``(their sum, their sends per bus)``; ``each`` (a dict, optional) gets
    every one of them as processed. The render runs it while the kept stems are stretched."""
    voiced = np.zeros((2, n_out), np.float32)
    sends = {b: np.zeros((2, n_out), np.float32) for b in recipe.buses}
    _add_processed(revoiced, voiced, sends, recipe=recipe, sr=sr, root=root, each=each)
    return voiced, sends


def add_buses(stretched: tuple[np.ndarray, dict[str, np.ndarray]], voiced: tuple[np.ndarray, dict[str, np.ndarray]],
              *, recipe: Recipe, sr: int, root: str | Path | None = None,
              each: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """The cover before the master: :func:`stretch_kept`'s output plus :func:`mix_voiced`'s,
    and every bus's effect chain run once on its summed sends, added with its gain and pan
    (``each``, optional, gets every bus's output as ``bus_<name>``)."""
    main, kept_sends = stretched
    voiced_sum, sends = voiced
    cover = main + voiced_sum
    sends = {b: wet.copy() for b, wet in sends.items()}
    for b, wet in kept_sends.items():
        sends[b] += wet
    for b, wet in sends.items():
        if not np.any(wet):
            continue
        bus = recipe.buses[b]
        if bus.effects:
            wet = build_chain([(e.plugin, e.params) for e in bus.effects], root=root)(wet, sr)
        out = pan(wet, bus.pan) * db_to_gain(bus.gain_db)
        cover += out
        if each is not None:
            each[f"bus_{b}"] = out.astype(np.float32)
    return cover


def finish_mix(
    stretched: tuple[np.ndarray, dict[str, np.ndarray]],
    revoiced: dict[str, np.ndarray],
    *,
    recipe: Recipe,
    sr: int,
    root: str | Path | None = None,
) -> np.ndarray:
    """Add the re-voiced stems (already at the cover tempo) to :func:`stretch_kept`'s output
    and run every bus's effect chain once (:func:`mix_voiced` then :func:`add_buses`)."""
    voiced = mix_voiced(revoiced, recipe=recipe, sr=sr, n_out=stretched[0].shape[1], root=root)
    return add_buses(stretched, voiced, recipe=recipe, sr=sr, root=root)


def mix_cover(
    kept: dict[str, np.ndarray],
    revoiced: dict[str, np.ndarray],
    *,
    recipe: Recipe,
    sr: int,
    n_in: int,
    time_ratio: float = 1.0,
    semitones: float = 0.0,
    stretcher: str = "pedalboard",
    root: str | Path | None = None,
) -> np.ndarray:
    """Mix the cover: :func:`stretch_kept` on the kept stems, then :func:`finish_mix` with the re-voiced ones.

    ``kept`` stems are at the source tempo (``n_in`` samples); ``revoiced`` stems are
    already at the cover tempo. Returns ``(2, round(n_in / time_ratio))``. The render
    pipeline calls the two halves itself, so that the stretch runs while stems are re-voiced.
    """
    stretched = stretch_kept(kept, recipe=recipe, sr=sr, n_in=n_in, time_ratio=time_ratio, semitones=semitones,
                             stretcher=stretcher, root=root)
    return finish_mix(stretched, revoiced, recipe=recipe, sr=sr, root=root)
