"""``auto``: Demucs when its weights (and demucs) are found, the DSP separator otherwise."""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

import numpy as np

from ..errors import ModelLoadingError
from . import register
from .base import Separator
from .demucs import DemucsSeparator, locate, missing_message
from .dsp import DSPSeparator

log = logging.getLogger(__name__)


@register("auto")
class AutoSeparator:
    """Pick a backend on first use: ``demucs`` if ``model``'s weights are found, else ``dsp``.

    Parameters are those of :class:`~covermill.stems.demucs.DemucsSeparator`; the choice is
    logged, kept in ``chosen_`` and returned by :meth:`choose`. Finding no weights imports
    no torch.
    """

    name = "auto"

    def __init__(self, *, model: str = "htdemucs", model_dir: str | os.PathLike | None = None, **demucs_params) -> None:
        self.model = model
        self.model_dir = model_dir
        self.demucs_params = demucs_params

    def choose(self) -> Separator:
        """The separator ``auto`` stands for (built once, then reused)."""
        if getattr(self, "chosen_", None) is None:
            if self.model_dir is not None and not Path(self.model_dir).is_dir():
                raise ModelLoadingError(f"--model-dir {self.model_dir}: no such folder")
            if importlib.util.find_spec("demucs") is None:
                reason = "demucs is not installed (pip install 'covermill[demucs]')"
            elif locate(self.model, self.model_dir) is None:
                reason = missing_message(self.model, self.model_dir)
                reason = self._fetch() or reason
            else:
                reason = ""
            if reason:
                log.info("separator auto -> dsp: %s", reason)
                self.chosen_ = DSPSeparator()
            else:
                log.info("separator auto -> demucs (model %s)", self.model)
                self.chosen_ = DemucsSeparator(model=self.model, model_dir=self.model_dir, **self.demucs_params)
        return self.chosen_

    def _fetch(self) -> str:
        """With fetching allowed (:func:`covermill.stems.models.fetch_allowed`), fetch the model's
        weights: ``""`` when they are here now, else why not (auto then uses dsp)."""
        from ..errors import CovermillError
        from .models import default_dest, fetch, fetch_allowed

        if not fetch_allowed():
            return ""
        try:
            fetch(self.model, dest=default_dest(self.model_dir))
        except CovermillError as exc:
            log.warning("separator auto -> dsp: fetching demucs model %s failed: %s", self.model, exc)
            return str(exc)
        return "" if locate(self.model, self.model_dir) is not None else missing_message(self.model, self.model_dir)

    def separate(self, y: np.ndarray, *, sr: int) -> dict[str, np.ndarray]:
        return self.choose().separate(y, sr=sr)
