"""Demucs 4 (Hybrid Transformer Demucs) from local checkpoints, through demucs's own API.

Weights are fetched only when the user allows it (``covermill models fetch``, or
``--fetch-models`` / ``$COVERMILL_FETCH_MODELS=1`` on first use: :mod:`covermill.stems.models`);
they are looked up, in this order, in

1. ``model_dir`` (``--model-dir``), then ``$COVERMILL_MODEL_DIR``: a demucs *local repo*,
   i.e. a flat folder of ``<sig>-<sha256 prefix>.th`` checkpoints plus ``<name>.yaml`` bags
   (the layout ``demucs.pretrained.get_model(name, repo=folder)`` reads);
2. torch hub's cache, ``torch.hub.get_dir()/checkpoints``, where ``demucs`` itself puts the
   checkpoints it downloads (``<sig>-<sha256 prefix>.th``, no bag files: the bag definitions
   shipped inside the demucs package are used).

A folder without the bag file but with every checkpoint of a known model is accepted too.
Missing weights raise :class:`~covermill.errors.ModelLoadingError` naming the files expected
and the folders searched. Checkpoints are found and checksummed by demucs's own repo classes but
unpickled with ``torch.load(weights_only=True)``, allowing only demucs's model classes
(:func:`covermill.stems.demucs_apply.load_checkpoint`): a checkpoint referencing any other global
is refused in one line instead of being run.

Audio I/O stays ours: the mix is resampled to the model's rate with :func:`covermill.audio.resample`,
normalised as demucs's own CLI does, and separated in overlapping segments exactly as
``demucs.apply.apply_model`` does, ``batch_size`` segments per model call
(:func:`covermill.stems.demucs_apply.apply_batched`; memory does not grow with the song).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ..audio import check_audio, resample, to_stereo
from ..constants import STEM_NAMES
from ..errors import BackendUnavailableError, ModelLoadingError, ParameterError
from . import register
from .demucs_apply import apply_batched, iter_apply_batched_many, safe_local_repo

log = logging.getLogger(__name__)

MODEL_DIR_ENV = "COVERMILL_MODEL_DIR"
#: Checkpoint files of the pretrained models covermill knows (from demucs 4.1.0's ``remote/``).
KNOWN_MODELS: dict[str, tuple[str, ...]] = {
    "htdemucs": ("955717e8-8726e21a.th",),
    "htdemucs_ft": ("f7e0c4bc-ba3fe64a.th", "d12395a8-e57c48e6.th", "92cfc3b6-ef3bcb9c.th", "04573f0d-f3cf25b2.th"),
    "htdemucs_6s": ("5c90dfd2-34c22ccb.th",),
    "mdx_extra": ("e51eebcc-c1b80bdd.th", "a1d90b5c-ae9d2452.th", "5d2d6c55-db83574e.th", "cfa93e08-61801ae1.th"),
}
RESIDUAL_POLICIES = ("other", "none")
#: Default segments per model call (``batch_size=None``) on CUDA and on CPU.
CUDA_BATCH = 16
CPU_BATCH = 1


def hub_checkpoint_dir() -> Path:
    """torch hub's checkpoint folder, computed as torch does, without importing torch."""
    if "torch" in sys.modules:
        import torch

        return Path(torch.hub.get_dir()) / "checkpoints"
    home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(os.path.expanduser(home)) / "hub" / "checkpoints"


def search_dirs(model_dir: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched for weights, in order: ``model_dir``, ``$COVERMILL_MODEL_DIR``, torch hub's cache."""
    dirs = [Path(d).expanduser() for d in (model_dir, os.environ.get(MODEL_DIR_ENV)) if d]
    return [*dirs, hub_checkpoint_dir()]


def _signatures(folder: Path) -> dict[str, Path]:
    """``{sig: checkpoint}`` of the ``.th`` files in ``folder`` (``sig-sha.th`` or ``sig.th``)."""
    if not folder.is_dir():
        return {}
    return {f.stem.rsplit("-", 1)[0]: f for f in folder.iterdir() if f.suffix == ".th"}


def _bag_signatures(bag: Path) -> list[str]:
    import yaml

    try:
        data = yaml.safe_load(bag.read_text(encoding="utf-8"))
        return [str(s) for s in data["models"]]
    except (OSError, yaml.YAMLError, TypeError, KeyError) as exc:
        raise ModelLoadingError(f"{bag}: not a demucs bag file ({type(exc).__name__}: {exc}); "
                                "expected YAML with a 'models' list of signatures") from None


def locate(name: str, model_dir: str | os.PathLike | None = None) -> tuple[Path, bool, list[Path]] | None:
    """Find the weights of model ``name``.

    Returns ``(folder, has_bag_file, checkpoint files)`` for the first folder of
    :func:`search_dirs` that holds all of them, or ``None``.
    """
    for folder in search_dirs(model_dir):
        sigs = _signatures(folder)
        bag = folder / f"{name}.yaml"
        if bag.is_file():
            needed = _bag_signatures(bag)
            if all(s in sigs for s in needed):
                return folder, True, [sigs[s] for s in needed]
        elif name in sigs:  # a single signature
            return folder, False, [sigs[name]]
        elif name in KNOWN_MODELS:
            needed = [f.split("-")[0] for f in KNOWN_MODELS[name]]
            if all(s in sigs for s in needed):
                return folder, False, [sigs[s] for s in needed]
    return None


def missing_message(name: str, model_dir: str | os.PathLike | None = None) -> str:
    files = ", ".join(KNOWN_MODELS.get(name, (f"{name}.yaml + its <sig>-<sha>.th files",)))
    where = ", ".join(str(d) for d in search_dirs(model_dir))
    return (f"no weights for demucs model {name!r}: expected {files} in one of {where} "
            f"(use --model-dir or ${MODEL_DIR_ENV}, or --separator dsp)")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


@register("demucs")
class DemucsSeparator:
    """Demucs 4 separator (see module docstring).

    Parameters
    ----------
    model : str
        ``htdemucs``, ``htdemucs_ft`` (4 fine-tuned models), ``htdemucs_6s`` (adds ``guitar``
        and ``piano``), ``mdx_extra``, or any bag/signature in ``model_dir``.
    model_dir : path, optional
        A demucs local repo folder searched first (see :func:`search_dirs`).
    device : str
        ``cpu``, ``cuda`` or ``auto`` (CUDA when present).
    shifts : int >= 0
        Random time shifts averaged (the "shift trick"; 0 = none, deterministic).
    overlap : float in [0, 1)
        Overlap between segments.
    segment : float, optional
        Segment length (s) instead of the model's.
    split : bool
        Separate in segments (memory bounded by the segment, not the song).
    residual : ``"other"`` or ``"none"``
        ``other`` adds ``mix - sum(stems)`` to ``other``, so stems sum back to the mix exactly.
    batch_size : int >= 1, optional
        Segments per model call (:func:`~covermill.stems.demucs_apply.apply_batched`; same output as
        ``apply_model`` within float rounding, so not part of the cache key). ``None``:
        :data:`CUDA_BATCH` on CUDA, :data:`CPU_BATCH` on CPU; ``1`` calls ``apply_model`` itself.
    """

    name = "demucs"

    def __init__(self, *, model: str = "htdemucs", model_dir: str | os.PathLike | None = None,
                 device: str = "auto", shifts: int = 0, overlap: float = 0.25, segment: float | None = None,
                 split: bool = True, residual: str = "other", batch_size: int | None = None) -> None:
        self.model = model
        self.model_dir = model_dir
        self.device = device
        self.shifts = shifts
        self.overlap = overlap
        self.segment = segment
        self.split = split
        self.residual = residual
        self.batch_size = batch_size

    def _weights(self) -> tuple[Path, bool, list[Path]]:
        """:func:`locate` the weights; missing ones are fetched first when the user allows it
        (:func:`covermill.stems.models.fetch_allowed`), else :class:`ModelLoadingError`."""
        found = locate(self.model, self.model_dir)
        if found is None:
            from .models import FETCH_ENV, default_dest, fetch, fetch_allowed

            if not fetch_allowed():
                raise ModelLoadingError(missing_message(self.model, self.model_dir) +
                                        f"; or let covermill fetch it: --fetch-models / {FETCH_ENV}=1")
            log.warning("fetching demucs model %s into %s", self.model, default_dest(self.model_dir))
            fetch(self.model, dest=default_dest(self.model_dir))
            found = locate(self.model, self.model_dir)
            if found is None:  # fetched into a folder locate() does not search: cannot happen with default_dest
                raise ModelLoadingError(missing_message(self.model, self.model_dir))
        return found

    def cache_params(self) -> dict:
        """Parameters that change the output (for the stem cache), incl. the checkpoints used
        (fetched first when missing and allowed, so the key names the weights that will run)."""
        from .models import fetch_allowed

        found = locate(self.model, self.model_dir)
        if found is None and fetch_allowed():
            found = self._weights()
        files = [f"{p.name}:{p.stat().st_size}" for p in found[2]] if found else []
        return {"model": self.model, "shifts": self.shifts, "overlap": self.overlap, "segment": self.segment,
                "split": self.split, "residual": self.residual, "weights": files}

    def _check(self) -> None:
        if self.device not in ("auto", "cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise ParameterError(f"device={self.device!r} must be auto, cpu or cuda")
        if not (isinstance(self.shifts, int) and self.shifts >= 0):
            raise ParameterError(f"shifts={self.shifts!r} must be an integer >= 0")
        if not 0 <= self.overlap < 1:
            raise ParameterError(f"overlap={self.overlap!r} must be in [0, 1)")
        if self.segment is not None and self.segment <= 0:
            raise ParameterError(f"segment={self.segment!r} must be > 0 seconds")
        if self.residual not in RESIDUAL_POLICIES:
            raise ParameterError(f"residual={self.residual!r} must be one of {RESIDUAL_POLICIES}")
        if self.batch_size is not None and not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise ParameterError(f"batch_size={self.batch_size!r} must be an integer >= 1")

    def load(self):
        """Load the weights into ``model_`` (once) and return it."""
        if getattr(self, "model_", None) is not None:
            return self.model_
        self._check()
        if self.model_dir is not None and not Path(self.model_dir).is_dir():
            raise ModelLoadingError(f"--model-dir {self.model_dir}: no such folder")
        folder, has_bag, files = self._weights()
        try:
            import torch  # noqa: F401
            from demucs import pretrained, repo
        except ImportError as exc:
            raise BackendUnavailableError(
                f"the demucs separator needs demucs ({exc}); install it with: pip install 'covermill[demucs]'"
            ) from None
        log.info("loading demucs model %s from %s", self.model, folder)
        try:  # as pretrained.get_model(name, repo=folder), but unpickling with weights_only=True
            local = safe_local_repo(folder)
            # torch hub's cache holds checkpoints only: bag definitions from the demucs package
            bags = folder if has_bag or self.model not in KNOWN_MODELS else pretrained.REMOTE_ROOT
            model = repo.AnyModelRepo(local, repo.BagOnlyRepo(bags, local)).get_model(self.model)
            model.eval()
        except ModelLoadingError:
            raise
        except Exception as exc:  # torch/pickle/demucs raise many types for a bad file
            names = ", ".join(str(f) for f in files)
            raise ModelLoadingError(f"cannot load demucs model {self.model!r} from {names}: {_one_line(exc)}; "
                                    "the checkpoint is truncated, corrupt or not a demucs model") from None
        sources = list(getattr(model, "sources", []))
        if not set(STEM_NAMES) <= set(sources):
            raise ModelLoadingError(f"demucs model {self.model!r} in {folder} separates {sources}; covermill needs "
                                    f"at least {list(STEM_NAMES)} (wrong model?)")
        trained = [float(m.segment) for m in getattr(model, "models", [model]) if hasattr(m, "segment")]
        if self.segment is not None and trained and self.segment > min(trained):
            raise ParameterError(f"segment={self.segment:g} s is longer than model {self.model!r} was trained on "
                                 f"({min(trained):g} s); use at most that")
        self.model_ = model
        return model

    def _device(self) -> str:
        import torch

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if str(self.device).startswith("cuda") and not torch.cuda.is_available():
            raise ParameterError(f"device={self.device!r} but no CUDA device is available; use --device cpu")
        return self.device

    def _batch(self, device) -> int:
        return self.batch_size or (CUDA_BATCH if str(device).startswith("cuda") else CPU_BATCH)

    def runs_on(self) -> str:
        """The torch device separation runs on (``auto`` resolved); part of the pooled-separation
        capability (:class:`covermill.stems.base.PooledSeparator`)."""
        return self._device()

    def segments_per_call(self) -> int:
        """How many segments one model call takes on :meth:`runs_on`'s device."""
        return self._batch(self._device())

    def release(self) -> None:
        """Drop the loaded model and give its GPU memory back (the next use loads it again)."""
        self.model_ = None
        if str(self.device).startswith("cuda") or self.device == "auto":
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    def _prepare(self, model, y: np.ndarray, sr: int):
        """``(context, normalised mix tensor (1, C, n) at the model's rate or None for silence)``."""
        import torch

        y = check_audio(y, sr)
        channels, n = y.shape
        if channels > 2:
            raise ParameterError(f"audio has {channels} channels; downmix to stereo first (covermill.audio.to_stereo)")
        x = to_stereo(y) if model.audio_channels == 2 else y.mean(axis=0, keepdims=True)
        x = resample(x, sr_in=sr, sr_out=model.samplerate)
        ref = x.mean(axis=0)
        mean, std = float(ref.mean()), float(ref.std())
        context = (y, sr, x.shape, mean, std)
        if std < 1e-8:  # silence: nothing to separate (and nothing to normalise by)
            return context, None
        x = x - mean  # a new array: x may be the caller's y
        x /= std
        return context, torch.from_numpy(x)[None]

    def _finish(self, model, context, est) -> dict[str, np.ndarray]:
        """The stems of one song from the model's output ``est`` (sources, C, n) (``None``: silence)."""
        y, sr, shape, mean, std = context
        channels, n = y.shape
        sources = list(model.sources)
        if est is None:
            out = np.zeros((len(sources), *shape), np.float32)
        else:
            out = est.cpu().numpy()
            out *= std
            out += mean / len(sources)
        del est
        stems: dict[str, np.ndarray] = {}
        for i, name in enumerate(sources):
            s = resample(out[i], sr_in=model.samplerate, sr_out=sr)
            s = s[:, :n] if s.shape[1] >= n else np.pad(s, ((0, 0), (0, n - s.shape[1])))
            if s.shape[0] != channels:  # mono in: mono stems
                s = s.mean(axis=0, keepdims=True) if channels == 1 else np.repeat(s, channels, axis=0)
            stems[name] = np.ascontiguousarray(s, dtype=np.float32)
        del out
        if self.residual == "other":
            rest = y.copy()
            for stem in stems.values():
                rest -= stem
            stems["other"] += rest
        order = [*STEM_NAMES, *[s for s in sources if s not in STEM_NAMES]]
        return {name: stems[name] for name in order}

    def separate(self, y: np.ndarray, *, sr: int) -> dict[str, np.ndarray]:
        """Separate ``(channels, n)`` audio; returns the model's stems (at least :data:`STEM_NAMES`),
        each float32 ``(channels, n)`` at ``sr``."""
        import torch

        model = self.load()
        context, mix = self._prepare(model, y, sr)
        est = None
        if mix is not None:
            device = self._device()
            with torch.inference_mode():
                est = apply_batched(model, mix, batch_size=self._batch(device), shifts=self.shifts, split=self.split,
                                    overlap=self.overlap, segment=self.segment, device=device)[0]
            del mix
        return self._finish(model, context, est)

    def iter_separate_many(self, items: Iterable[tuple[np.ndarray, int]]) -> Iterator[dict[str, np.ndarray]]:
        """:meth:`separate` of every ``(y, sr)`` of ``items``, the segments of all songs pooled into
        model calls of ``batch_size`` segments
        (:func:`~covermill.stems.demucs_apply.iter_apply_batched_many`); yields each song's stems, in
        order, as soon as they are done. Each song's stems equal :meth:`separate`'s within float
        rounding; ``items`` is consumed lazily, so a generator of songs is separated with only
        the songs of the current model calls in memory. A bad item (6 channels, NaN, ...)
        raises when it is reached, after the stems of the items before it were yielded.
        """
        from collections import deque

        model = self.load()
        device = self._device()
        pending: deque = deque()  # (context, has a mix), in input order

        def mixes():
            for y, sr in items:
                context, mix = self._prepare(model, y, sr)
                pending.append((context, mix is not None))
                if mix is not None:
                    yield mix

        outputs = iter_apply_batched_many(model, mixes(), batch_size=self._batch(device), shifts=self.shifts,
                                          split=self.split, overlap=self.overlap, segment=self.segment,
                                          device=device)
        for est in outputs:
            while not pending[0][1]:  # silent songs before this one
                yield self._finish(model, pending.popleft()[0], None)
            yield self._finish(model, pending.popleft()[0], est[0])
            del est
        while pending:
            yield self._finish(model, pending.popleft()[0], None)

    def separate_many(self, items: Iterable[tuple[np.ndarray, int]]) -> list[dict[str, np.ndarray]]:
        """:meth:`iter_separate_many` as a list (every song's stems held at once)."""
        return list(self.iter_separate_many(items))
