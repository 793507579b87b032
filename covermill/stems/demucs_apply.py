"""Demucs inference with the segments of a song run in batches, plus a safe checkpoint loader.

:func:`apply_batched` reproduces ``demucs.apply.apply_model`` (demucs 4.1.0) step by step —
the same overlapping segments (``split``, the model's or the given ``segment``, ``overlap``),
the same context padding of each segment (demucs's ``TensorChunk.padded`` to the model's
``valid_length``), the same triangular transition weights, the same overlap-add in the same
order, the same shift trick and the same per-stem weighting of a ``BagOfModels`` — except
that up to ``batch_size`` segments go through the model in one call instead of one after
another. Segments are independent in every demucs model (all normalisations are per example),
so with ``shifts=0`` the output equals ``apply_model``'s up to floating-point rounding of
batched kernels (tested: < 1e-5 on the tiny HTDemucs, in units of the normalised mix). With
``shifts > 0`` the offsets are drawn from :mod:`random` like ``apply_model``'s, but HTDemucs's
transformer also draws from it once per model call, so under the same seed fewer (batched)
calls give other offsets than ``apply_model``; given the same offsets, the output is the same. Only ``batch_size`` segments are on the device at a
time and the song-long output stays on ``mix``'s device, so memory still does not grow with
the song beyond the output itself; a model call that runs out of GPU memory is retried with
half the segments (in order, so the output is unchanged).

:func:`load_checkpoint` unpickles a demucs checkpoint with ``torch.load(weights_only=True)``,
allowing only demucs's model classes and :class:`fractions.Fraction` besides torch's own tensor
types; :class:`SafeLocalRepo` plugs it into demucs's local repo (file lookup, checksum, bags).
"""

from __future__ import annotations

import fractions
import logging
import pickle
import random
from pathlib import Path

from ..errors import ModelLoadingError

log = logging.getLogger(__name__)
PACKAGE_KEYS = ("klass", "args", "kwargs", "state")


def _valid_length(model, length: int, segment: float | None) -> int:
    """The input length demucs's ``apply_model`` (split=False) pads a segment of ``length`` to."""
    from demucs.htdemucs import HTDemucs

    if isinstance(model, HTDemucs) and segment is not None:
        return int(segment * model.samplerate)
    if hasattr(model, "valid_length"):
        return model.valid_length(length)
    return length


def _split(model, mix, *, batch_size: int, overlap: float, segment: float | None, device, transition_power: float):
    """``apply_model``'s ``split`` branch, ``batch_size`` segments per model call."""
    import torch
    from demucs.apply import TensorChunk
    from demucs.utils import center_trim

    batch, channels, length = mix.shape
    out = torch.zeros(batch, len(model.sources), channels, length, device=mix.device)
    sum_weight = torch.zeros(length, device=mix.device)
    seg = model.segment if segment is None else segment
    segment_length = int(model.samplerate * seg)
    stride = int((1 - overlap) * segment_length)
    weight = torch.cat([torch.arange(1, segment_length // 2 + 1, device=device),
                        torch.arange(segment_length - segment_length // 2, 0, -1, device=device)])
    weight = (weight / weight.max()) ** transition_power
    chunks = [(offset, TensorChunk(mix, offset, segment_length)) for offset in range(0, length, stride)]

    def flush(group):
        x = torch.cat([chunk.padded(_valid_length(model, chunk.length, segment)) for _, chunk in group]).to(device)
        try:
            with torch.no_grad():
                y = model(x)
        except torch.cuda.OutOfMemoryError:
            if len(group) == 1:
                raise
            del x
            torch.cuda.empty_cache()
            half = len(group) // 2
            log.warning("out of GPU memory with %d segments per call; retrying with %d", len(group), half)
            flush(group[:half])  # halves in order: the overlap-add order is unchanged
            flush(group[half:])
            return
        for i, (offset, chunk) in enumerate(group):  # accumulate in offset order, as apply_model does
            chunk_out = center_trim(y[i * batch:(i + 1) * batch], chunk.length)
            n = chunk_out.shape[-1]
            out[..., offset:offset + segment_length] += (weight[:n] * chunk_out).to(mix.device)
            sum_weight[offset:offset + segment_length] += weight[:n].to(mix.device)

    group: list = []
    for offset, chunk in chunks:
        if group and (len(group) == batch_size or _valid_length(model, chunk.length, segment)
                      != _valid_length(model, group[0][1].length, segment)):
            flush(group)
            group = []
        group.append((offset, chunk))
    flush(group)
    out /= sum_weight
    return out


def _single(model, mix, *, shifts: int, **kw):
    """``apply_model`` for one (non-bag) model: the shift trick around :func:`_split`."""
    from demucs.apply import TensorChunk, tensor_chunk

    model.to(kw["device"])
    model.eval()
    if not shifts:
        return _split(model, mix, **kw)
    length = mix.shape[-1]
    max_shift = int(0.5 * model.samplerate)
    padded_mix = tensor_chunk(mix).padded(length + 2 * max_shift)
    out = 0.0
    for _ in range(shifts):
        offset = random.randint(0, max_shift)
        shifted = TensorChunk(padded_mix, offset, length + max_shift - offset)
        out += _split(model, shifted, **kw)[..., max_shift - offset:]
    out /= shifts
    return out


def apply_batched(model, mix, *, batch_size: int = 16, shifts: int = 0, split: bool = True, overlap: float = 0.25,
                  segment: float | None = None, device=None, transition_power: float = 1.0):
    """``demucs.apply.apply_model(model, mix, ...)`` with ``batch_size`` segments per model call.

    Parameters
    ----------
    model : demucs model or ``BagOfModels``
    mix : torch.Tensor [shape=(batch, channels, n)]
        The normalised mix at ``model.samplerate``.
    batch_size : int >= 1
        Segments per model call; ``1``, or ``split=False``, calls ``apply_model`` itself.
    shifts, split, overlap, segment, device, transition_power
        As ``apply_model``'s.

    Returns
    -------
    torch.Tensor [shape=(batch, sources, channels, n)] on ``mix``'s device.
    """
    import torch
    from demucs.apply import BagOfModels, apply_model

    device = mix.device if device is None else torch.device(device)
    if batch_size <= 1 or not split:
        return apply_model(model, mix, shifts=shifts, split=split, overlap=overlap, segment=segment, device=device,
                           transition_power=transition_power, progress=False)
    kw = {"batch_size": batch_size, "overlap": overlap, "segment": segment, "device": device,
          "transition_power": transition_power}
    if not isinstance(model, BagOfModels):
        return _single(model, mix, shifts=shifts, **kw)
    estimates = 0.0
    totals = [0.0] * len(model.sources)
    for sub_model, model_weights in zip(model.models, model.weights, strict=True):
        original_device = next(iter(sub_model.parameters())).device
        out = _single(sub_model, mix, shifts=shifts, **kw)
        sub_model.to(original_device)
        for k, inst_weight in enumerate(model_weights):
            out[:, k, :, :] *= inst_weight
            totals[k] += inst_weight
        estimates += out
    for k in range(estimates.shape[1]):
        estimates[:, k, :, :] /= totals[k]
    return estimates


def _model_classes() -> tuple:
    from demucs.demucs import Demucs
    from demucs.hdemucs import HDemucs
    from demucs.htdemucs import HTDemucs

    return Demucs, HDemucs, HTDemucs


def allowed_globals() -> list:
    """What a demucs checkpoint may reference besides torch's tensor types."""
    return [*_model_classes(), fractions.Fraction]


def load_checkpoint(path: str | Path) -> dict:
    """Unpickle the demucs model package at ``path`` without running code from it.

    ``torch.load(path, weights_only=True)`` with only :func:`allowed_globals` added to torch's
    own allow-list. A checkpoint referencing anything else (a function, another class) is
    refused with a one-line :class:`~covermill.errors.ModelLoadingError` naming it, before any
    of it is called; so is a file that is not a ``{klass, args, kwargs, state}`` package of a
    demucs model, or a diffq-quantized one.
    """
    import torch

    allowed = allowed_globals()
    try:
        with torch.serialization.safe_globals(allowed):
            package = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        names = {f"{g.__module__}.{g.__qualname__}" for g in allowed}
        try:
            foreign = [g for g in torch.serialization.get_unsafe_globals_in_checkpoint(path) if g not in names]
        except Exception:  # an unreadable file: report the unpickler's own first line
            foreign = []
        if not foreign:
            raise
        raise ModelLoadingError(f"{path}: refusing to load this checkpoint: it references {', '.join(sorted(foreign))}, "
                                "which is not a demucs model class (checkpoints are loaded with "
                                "torch.load(weights_only=True); a foreign global could run code)") from None
    if not (isinstance(package, dict) and all(k in package for k in PACKAGE_KEYS)
            and package["klass"] in _model_classes()):
        raise ModelLoadingError(f"{path}: not a demucs model package (expected a dict with {', '.join(PACKAGE_KEYS)} "
                                "and klass one of Demucs, HDemucs, HTDemucs)")
    if isinstance(package["state"], dict) and package["state"].get("__quantized"):
        raise ModelLoadingError(f"{path}: a diffq-quantized demucs checkpoint; covermill loads only plain ones")
    return package


def safe_local_repo(folder: Path):
    """demucs's ``LocalRepo`` over ``folder`` (file lookup, checksum check) loading with :func:`load_checkpoint`."""
    from demucs import repo
    from demucs.states import load_model

    class SafeLocalRepo(repo.LocalRepo):
        def get_model(self, sig: str):
            try:
                file = self._models[sig]
            except KeyError:
                raise repo.ModelLoadingError(f"Could not find pre-trained model with signature {sig}.") from None
            if sig in self._checksums:
                repo.check_checksum(file, self._checksums[sig])
            return load_model(load_checkpoint(file))

    return SafeLocalRepo(folder)
