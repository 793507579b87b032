"""The mixers a render can use (``--mixer``): the :class:`Mixer` protocol and :data:`MIXERS`.

A mixer turns the kept stems (at the source tempo) and the played tracks (re-voiced stems and
generated parts, already at the cover tempo) into the cover before the master. Registering one
imports nothing heavy: each method imports its backend when called.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..registry import Registry


@runtime_checkable
class Mixer(Protocol):
    """The whole contract of a mixer.

    * ``name``: its registry name; ``uses_audacity``: the render starts (or is handed) an Audacity
      for it and checks that one is installed before any work.
    * ``check(recipe)``: raise :class:`~covermill.errors.ParameterError` (one line: what it cannot
      express and what it can) for a recipe it cannot mix, before any audio work.
    * ``stretch_kept(kept, *, recipe, sr, n_in, time_ratio, semitones, stretcher, root)``: the work
      that needs only the kept stems (``{stem: float32 (channels, n_in)}`` at the source tempo). The
      render runs it beside re-voicing and hands its result to :meth:`mix`; it may return ``None``.
    * ``mix(stretched, played, *, kept, recipe, sr, n_out, time_ratio, semitones, root, audacity)``:
      ``stretched()`` returns :meth:`stretch_kept`'s result (it waits for it: call it as late as
      possible), ``played`` maps re-voiced stems and part tracks to float32 ``(channels, n_out)`` at
      the cover tempo, ``audacity()`` returns the running Audacity (started on first call). Returns
      ``(cover, tracks)``: the cover before the master, float32 ``(2, n_out)``, and every track of
      it as heard (``{name: (2, n_out)}``, kept stems first; ``{}`` when the mixer cannot tell them
      apart), whose sum is the cover.
    """

    name: str
    uses_audacity: bool

    def check(self, recipe) -> None: ...

    def stretch_kept(self, kept: dict[str, np.ndarray], *, recipe, sr: int, n_in: int, time_ratio: float,
                     semitones: float, stretcher: str, root: str | Path | None) -> Any: ...

    def mix(self, stretched: Callable[[], Any], played: dict[str, np.ndarray], *, kept: dict[str, np.ndarray],
            recipe, sr: int, n_out: int, time_ratio: float, semitones: float, root: str | Path | None,
            audacity: Callable[[], Any]) -> tuple[np.ndarray, dict[str, np.ndarray]]: ...


#: The mixers, by name (see :class:`Mixer`).
MIXERS = Registry("mixer")


@MIXERS.register("pedalboard")
class PedalboardMixer:
    """pedalboard effect chains, gain and pan per track, one Rubber Band pass over the kept stems and
    their sends (:func:`~covermill.automation.mixer.stretch_each`), buses once at the cover tempo."""

    name = "pedalboard"
    uses_audacity = False

    def check(self, recipe) -> None:
        """Every recipe field is mixed here."""

    def stretch_kept(self, kept, *, recipe, sr, n_in, time_ratio, semitones, stretcher, root):
        from .mixer import stretch_each

        return stretch_each(kept, recipe=recipe, sr=sr, n_in=n_in, time_ratio=time_ratio, semitones=semitones,
                            stretcher=stretcher, root=root)

    def mix(self, stretched, played, *, kept, recipe, sr, n_out, time_ratio, semitones, root, audacity):
        from .mixer import add_buses, mix_voiced, sum_stems

        tracks: dict[str, np.ndarray] = {}
        voiced_part = mix_voiced(played, recipe=recipe, sr=sr, n_out=n_out, root=root, each=tracks)  # while the
        kept_each, kept_sends = stretched()                                                         # kept stretch
        tracks = {**kept_each, **tracks}
        main = sum_stems(list(kept_each.values()), length=n_out) if len(kept_each) != 1 else \
            next(iter(kept_each.values()))
        cover = add_buses((main, kept_sends), voiced_part, recipe=recipe, sr=sr, root=root, each=tracks)
        return cover, tracks


@MIXERS.register("audacity")
class AudacityMixer:
    """Gain, pan, tempo and key inside Audacity (:mod:`~covermill.automation.audacity.mixer`); no
    effects, sends or buses (refused by :meth:`check`)."""

    name = "audacity"
    uses_audacity = True

    def check(self, recipe) -> None:
        from .audacity.mixer import check_recipe

        check_recipe(recipe)

    def stretch_kept(self, kept, **_) -> None:
        """Nothing: Audacity changes the kept stems' tempo and key itself, in :meth:`mix`."""
        return None

    def mix(self, stretched, played, *, kept, recipe, sr, n_out, time_ratio, semitones, root, audacity):
        from .audacity.mixer import mix

        cover = mix(audacity(), sr=sr, kept={k: (a, recipe.stem(k)) for k, a in kept.items()},
                    voiced={k: (a, recipe.stem(k)) for k, a in played.items()},
                    time_ratio=time_ratio, semitones=semitones, n_out=n_out)
        return cover, {}


__all__ = ["MIXERS", "AudacityMixer", "Mixer", "PedalboardMixer"]
