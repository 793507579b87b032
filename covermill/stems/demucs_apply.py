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

:func:`iter_apply_batched_many` (and :func:`apply_batched_many`) does the same for several songs
at once: the segments of all of them share the model calls (a song's partial last batch is
filled with the next song's segments), and each song's output is reassembled on its own, equal
to ``apply_model``'s for that song. :func:`apply_batched` is its one-song case.

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


class _Job:
    """One ``_split`` pass of ``apply_model``: one (sub-)model over one (possibly shifted) mix."""

    __slots__ = ("song", "index", "rows", "out", "sum_weight", "left", "trim")

    def __init__(self, song, index, target, n_sources, trim):
        import torch

        self.song, self.index, self.trim = song, index, trim
        self.rows, channels, length = target.shape
        device = target.device
        self.out = torch.zeros(self.rows, n_sources, channels, length, device=device)
        self.sum_weight = torch.zeros(length, device=device)
        self.left = 0  # segments not yet through the model


class _Song:
    """The jobs of one mix (sub-models x shifts, in ``apply_model``'s order) and their results."""

    __slots__ = ("n_jobs", "results", "folded", "estimate")

    def __init__(self, n_jobs):
        self.n_jobs = n_jobs
        self.results: dict[int, object] = {}
        self.folded = 0
        self.estimate = None


class _Pool:
    """Segments of any number of mixes through the models, ``batch_size`` per model call.

    Each job's segments are queued in offset order on the queue of their (model, padded
    length); a full queue goes through the model at once, and every segment's output is
    overlap-added into its own job's buffers, as ``apply_model``'s ``split`` branch does.
    """

    def __init__(self, models, *, batch_size, overlap, segment, device, transition_power):
        import torch

        self.models, self.batch_size, self.segment, self.device = models, batch_size, segment, device
        self.queues: dict[tuple[int, int], list] = {}
        self.done: list[_Job] = []
        self.geometry = []
        for m in models:
            seg = m.segment if segment is None else segment
            segment_length = int(m.samplerate * seg)
            stride = int((1 - overlap) * segment_length)
            weight = torch.cat([torch.arange(1, segment_length // 2 + 1, device=device),
                                torch.arange(segment_length - segment_length // 2, 0, -1, device=device)])
            weight = (weight / weight.max()) ** transition_power
            self.geometry.append((segment_length, stride, weight))

    def add(self, job: _Job, m: int, target) -> None:
        """Queue the segments of ``target`` (a tensor or ``TensorChunk``) for model ``m``; full queues run."""
        from demucs.apply import TensorChunk

        segment_length, stride, _ = self.geometry[m]
        job.left += 1  # held until every segment is queued: a queue that runs meanwhile cannot finish the job
        for offset in range(0, target.shape[-1], stride):
            chunk = TensorChunk(target, offset, segment_length)
            key = (m, _valid_length(self.models[m], chunk.length, self.segment))
            queue = self.queues.setdefault(key, [])
            queue.append((job, offset, chunk))
            job.left += 1
            if len(queue) == self.batch_size:
                del self.queues[key]
                self._run(key, queue)
        job.left -= 1
        if job.left == 0:
            self.done.append(job)

    def flush(self) -> None:
        """Run every partly filled queue (in the order they were opened)."""
        while self.queues:
            key = next(iter(self.queues))
            self._run(key, self.queues.pop(key))

    def _run(self, key, group) -> None:
        import torch
        from demucs.utils import center_trim

        m, valid = key
        model = self.models[m]
        x = torch.cat([chunk.padded(valid) for _, _, chunk in group]).to(self.device)
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
            self._run(key, group[:half])  # halves in order: the overlap-add order is unchanged
            self._run(key, group[half:])
            return
        segment_length, _, weight = self.geometry[m]
        row = 0
        with torch.no_grad():
            for job, offset, chunk in group:  # accumulate in offset order, as apply_model does
                chunk_out = center_trim(y[row:row + job.rows], chunk.length)
                row += job.rows
                n = chunk_out.shape[-1]
                job.out[..., offset:offset + segment_length] += (weight[:n] * chunk_out).to(job.out.device)
                job.sum_weight[offset:offset + segment_length] += weight[:n].to(job.out.device)
                job.left -= 1
                if job.left == 0:
                    self.done.append(job)


def iter_apply_batched_many(model, mixes, *, batch_size: int = 16, shifts: int = 0, split: bool = True,
                            overlap: float = 0.25, segment: float | None = None, device=None,
                            transition_power: float = 1.0):
    """``apply_model(model, mix, ...)`` for every mix of the iterable ``mixes``, the segments of all
    of them pooled into model calls of ``batch_size`` segments; yields each output, in order, as
    soon as its last segment is through.

    Each output is what :func:`apply_batched` (and ``apply_model``) gives for that mix alone:
    the same segments, context padding, transition weights, shift offsets (drawn from
    :mod:`random` per mix in ``apply_model``'s order: sub-model, then shift), the same
    overlap-add, shift average and bag weighting per mix. Mixes may differ in length (one
    shorter than a segment is one padded segment) and in batch size, not in channels.

    Memory: ``mixes`` is consumed lazily and outputs are yielded as they complete, so only the
    mixes whose segments share the current model calls are held (besides what the caller keeps):
    a generator of songs streams. Each mix's output (and, with shifts or a bag, one buffer per
    pass in flight) stays on that mix's device; only ``batch_size`` segments go to ``device``.
    ``batch_size <= 1`` or ``split=False`` calls ``apply_model`` per mix.
    """
    import torch
    from demucs.apply import BagOfModels, TensorChunk, apply_model, tensor_chunk

    if batch_size <= 1 or not split:
        for mix in mixes:
            dev = mix.device if device is None else torch.device(device)
            yield apply_model(model, mix, shifts=shifts, split=split, overlap=overlap, segment=segment, device=dev,
                              transition_power=transition_power, progress=False)
        return
    bag = isinstance(model, BagOfModels)
    models = list(model.models) if bag else [model]
    mixes = iter(mixes)
    first = next(mixes, None)
    if first is None:
        return
    device = first.device if device is None else torch.device(device)
    original = [next(iter(m.parameters())).device for m in models]
    for m in models:
        m.to(device)
        m.eval()
    pool = _Pool(models, batch_size=batch_size, overlap=overlap, segment=segment, device=device,
                 transition_power=transition_power)
    songs: list[_Song] = []  # not yet yielded, in input order

    def fold(song: _Song) -> None:
        """Combine the finished passes of ``song`` in apply_model's order (shifts, then the bag)."""
        per_model = max(shifts, 1)
        while song.folded < song.n_jobs and all(song.folded + s in song.results for s in range(per_model)):
            first_job = song.folded
            if shifts:
                out = 0.0
                for s in range(shifts):
                    out += song.results.pop(first_job + s)
                out /= shifts
            else:
                out = song.results.pop(first_job)
            if bag:
                m = first_job // per_model
                for k, inst_weight in enumerate(model.weights[m]):
                    out[:, k, :, :] *= inst_weight
                song.estimate = out if song.estimate is None else song.estimate + out
            else:
                song.estimate = out
            song.folded += per_model

    def finished():
        for job in pool.done:
            out = job.out
            out /= job.sum_weight
            if job.trim is not None:
                out = out[..., job.trim:]
            job.song.results[job.index] = out
            job.out = job.sum_weight = None
            fold(job.song)
        pool.done.clear()
        while songs and songs[0].folded == songs[0].n_jobs:
            song = songs.pop(0)
            estimate = song.estimate
            if bag:
                totals = [sum(w[k] for w in model.weights) for k in range(len(model.sources))]
                for k in range(estimate.shape[1]):
                    estimate[:, k, :, :] /= totals[k]
            yield estimate

    try:
        mix = first
        while mix is not None:
            song = _Song(len(models) * max(shifts, 1))
            songs.append(song)
            length = mix.shape[-1]
            index = 0
            for m, sub_model in enumerate(models):
                if not shifts:
                    job = _Job(song, index, mix, len(sub_model.sources), None)
                    pool.add(job, m, mix)
                    index += 1
                    yield from finished()
                    continue
                max_shift = int(0.5 * sub_model.samplerate)
                padded_mix = tensor_chunk(mix).padded(length + 2 * max_shift)
                for _ in range(shifts):
                    offset = random.randint(0, max_shift)
                    shifted = TensorChunk(padded_mix, offset, length + max_shift - offset)
                    job = _Job(song, index, shifted, len(sub_model.sources), max_shift - offset)
                    pool.add(job, m, shifted)
                    index += 1
                    yield from finished()
            mix = next(mixes, None)
        pool.flush()
        yield from finished()
    finally:
        if bag:  # apply_model puts a bag's models back where they were
            for m, dev in zip(models, original, strict=True):
                m.to(dev)


def apply_batched_many(model, mixes, **kw) -> list:
    """:func:`iter_apply_batched_many` as a list: one output per mix, in order."""
    return list(iter_apply_batched_many(model, mixes, **kw))


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
    outputs = iter_apply_batched_many(model, [mix], batch_size=batch_size, shifts=shifts, split=split,
                                      overlap=overlap, segment=segment, device=device,
                                      transition_power=transition_power)
    try:
        return next(outputs)
    finally:
        outputs.close()


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
