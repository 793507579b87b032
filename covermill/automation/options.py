"""How a render runs (not what it renders: that is the recipe): :class:`RenderOptions`."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..constants import WORK_SR
from ..errors import ParameterError
from .mixers import MIXERS
from .tempo import STRETCHERS


@dataclass(frozen=True)
class RenderOptions:
    """Everything about a render that is not in the recipe.

    ``separator`` is a name from :func:`covermill.stems.available`, built with
    ``separator_params``; ``cache_dir`` caches its stems (``None``: no cache); ``recipe_root``
    is the folder the recipe's paths are resolved in; ``excerpt=(start_s, seconds)`` renders
    only that part of the song; ``stretcher`` the Rubber Band binding; ``soundfont`` replaces
    the recipe's and the default soundfont (a command-line path: it may point anywhere);
    ``instruments_dir`` the instruments folder; ``session`` also saves ``session.aup3``;
    ``mixer`` a name from :data:`~.mixers.MIXERS` (``pedalboard``, ``audacity``); ``parallel`` runs independent stages side by side;
    ``light`` skips the report page and the DAW project (``covermill preview``); ``reuse`` is a
    :class:`~covermill.automation.reuse.Reuse` that hands results to the next render in this
    process.
    """

    separator: str = "dsp"
    separator_params: dict[str, Any] = field(default_factory=dict)
    cache_dir: str | os.PathLike | None = None
    recipe_root: str | os.PathLike | None = None
    sr: int = WORK_SR
    excerpt: tuple[float, float] | None = None
    stretcher: str = "pedalboard"
    soundfont: str | os.PathLike | None = None
    instruments_dir: str | os.PathLike | None = None
    session: bool = False
    mixer: str = "pedalboard"
    parallel: bool = True
    light: bool = False
    reuse: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.mixer not in MIXERS:
            raise ParameterError(f"mixer={self.mixer!r} is not one of {', '.join(MIXERS.available())}")
        if self.stretcher not in STRETCHERS:
            raise ParameterError(f"stretcher={self.stretcher!r} is not one of {', '.join(STRETCHERS.available())}")
        if self.excerpt is not None:
            start, seconds = self.excerpt
            if not (math.isfinite(start) and math.isfinite(seconds)) or start < 0 or seconds <= 0:
                raise ParameterError(f"excerpt=({start:g}, {seconds:g}): give a start >= 0 and a length > 0 "
                                     "seconds, both finite (--excerpt START:SECONDS)")
        object.__setattr__(self, "separator_params", dict(self.separator_params or {}))
        if self.soundfont is not None:
            object.__setattr__(self, "soundfont", Path(self.soundfont).absolute())

    @classmethod
    def of(cls, options: RenderOptions | None = None, **kwargs: Any) -> RenderOptions:
        """``options`` with ``kwargs`` replaced (unknown names raise ``TypeError`` as a call would)."""
        known = {f.name for f in fields(cls)}
        unknown = set(kwargs) - known
        if unknown:
            raise TypeError(f"unknown render option(s): {', '.join(sorted(unknown))}")
        base = {f.name: getattr(options, f.name) for f in fields(cls)} if options is not None else {}
        if kwargs.get("separator_params") is None:
            kwargs.pop("separator_params", None)
        return cls(**{**base, **kwargs})
