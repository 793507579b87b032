"""Import a Magenta DDSP autoencoder checkpoint (``ddsp`` 3.x, ``solo_instrument.gin``) as a covermill instrument.

A Magenta checkpoint folder (the layout of the pretrained ``solo_*_ckpt`` folders) holds

- ``ckpt-N.index`` + ``ckpt-N.data-*``: a ``tf.train.Checkpoint(model=..., optimizer=...)``;
  the decoder's variables are object-graph keys under ``model/decoder/`` (``input_stacks/<i>``,
  ``rnn``, ``out_stack``, ``dense_out``: the attribute names of ``ddsp.training.decoders.RnnFcDecoder``)
  and the trainable reverb's impulse response is under ``model/processor_group/reverb/``;
- ``operative_config-N.gin``: the gin bindings it was trained with (sizes, input order, output
  splits, sample rate, frame rate, synthesizer options);
- ``dataset_statistics.pkl`` (optional): pitch and loudness statistics of the training data.

Our :class:`~.decoder.RnnFcDecoder` has Magenta's layer layout (one FC stack per input, a GRU,
an FC stack, a dense layer), so the weights map one to one; only the order of the concatenated
inputs differs (Magenta: ``input_keys`` order, then ``[inputs..., rnn]``; ours: ``[f0, ld]``, then
``[rnn, f0, ld]``), which is a permutation of the GRU input kernel's and the out stack's first
kernel's rows. Keras' GRU gates ``(z, r, h)`` with ``reset_after=True`` biases ``(2, 3u)`` become
torch's ``(r, z, n)`` ``bias_ih`` / ``bias_hh``. Magenta's leaky-ReLU slope (0.2), Keras' LayerNorm
epsilon (1e-3), ``DB_RANGE`` loudness scaling (80 dB, clipped at -80), window upsampling of
amplitudes, the noise bias and the free reverb taps are set in the imported :class:`DDSPConfig`.

The folder's files are read by :mod:`.magenta_files` (gin config, checkpoint) and
:mod:`.magenta_stats` (statistics); this module maps the weights (:func:`convert`) and writes the
instrument (:func:`import_ddsp`). TensorFlow (``tf.train.load_checkpoint``) runs only in a child
process (:mod:`.tf_checkpoint`), and ``gin-config`` is imported only when an import runs (``pip install 'covermill[magenta]'``). ``dataset_statistics.pkl`` is a pickle: it is
read with :class:`StatisticsUnpickler`, which reconstructs numpy arrays, dtypes and scalars and
builtin containers only; ddsp's ``QuantileTransformer`` and numpy's random state inside it are
replaced by inert placeholders without running any of their code, and any other global refuses
the file. Nothing is written until everything has been read and checked; the instrument folder
then appears at once (staged beside it, renamed into place).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import ModelLoadingError, OutputError, ParameterError
from . import store
from .config import PRESETS, DDSPConfig
from .magenta_files import (  # noqa: F401  (re-exported: the checkpoint folder's files)
    INSTALL_HINT,
    GinMacro,
    GinRef,
    _latest,
    _natural_key,
    find_checkpoint,
    parse_gin,
    read_checkpoint,
)
from .magenta_stats import (  # noqa: F401  (re-exported: the statistics pickle)
    RefusedGlobal,
    StatisticsUnpickler,
    load_statistics,
    midi_to_hz,
    stats_from_dataset_statistics,
)

log = logging.getLogger(__name__)

SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
DECODER = "model/decoder/"
EXPECTED = ("model/decoder/input_stacks/<i>/..., model/decoder/rnn/..., model/decoder/out_stack/..., "
            "model/decoder/dense_out/{kernel,bias}")
#: ddsp >= 3.0 scales loudness as ``dB / 80 + 1`` (``ddsp.core.DB_RANGE``); earlier releases used 120.
DB_RANGE = 80.0
#: Keras ``LayerNormalization``'s default epsilon and ``tf.nn.leaky_relu``'s default slope.
KERAS_LN_EPS = 1e-3
LEAKY_SLOPE = 0.2
_OUR_SPLITS = ("amps", "harmonic_distribution", "noise_magnitudes")


@dataclass
class ImportResult:
    path: Path
    config: DDSPConfig
    checkpoint: str
    stats: dict
    warnings: list[str]


def _stack(variables: dict[str, np.ndarray], prefix: str, where: str) -> list[dict[str, np.ndarray]]:
    """The Dense + LayerNorm pairs of an ``FcStack`` (a Keras Sequential of ``Fc`` Sequentials), in order."""
    groups: dict[str, dict[str, np.ndarray]] = {}
    for k, v in variables.items():
        if k.startswith(prefix):
            layer, _, leaf = k[len(prefix):].rpartition("/")
            groups.setdefault(layer, {})[leaf] = v
    layers = [groups[k] for k in sorted(groups, key=_natural_key)]
    if not layers or len(layers) % 2:
        raise ModelLoadingError(f"{where}: {prefix}* has {len(layers)} weight layers; expected Dense + LayerNorm "
                                "pairs (ddsp's FcStack)")
    fcs = []
    for dense, norm in zip(layers[::2], layers[1::2], strict=True):
        if set(dense) != {"kernel", "bias"} or set(norm) != {"gamma", "beta"}:
            raise ModelLoadingError(f"{where}: {prefix}* is not Dense -> LayerNormalization layers "
                                    f"(found {sorted(dense)} then {sorted(norm)})")
        fcs.append({**dense, **norm})
    return fcs


def _binding(gin: dict, configurable: str, arg: str, default):
    return gin.get((configurable, arg), default)


def _unsupported(where: str, what: str) -> ModelLoadingError:
    return ModelLoadingError(f"{where}: {what}; covermill's decoder cannot mirror this model")


def convert(variables: dict[str, np.ndarray], gin: dict, *, where: str, db_range: float = DB_RANGE,
            ) -> tuple[DDSPConfig, dict]:
    """covermill's config and torch state dict (numpy arrays) for Magenta's decoder variables + gin bindings."""
    dec = {k[len(DECODER):]: v for k, v in variables.items() if k.startswith(DECODER)}
    needed = ("input_stacks/", "rnn/", "out_stack/", "dense_out/")
    if not dec or not all(any(k.startswith(p) for k in dec) for p in needed):
        sample = ", ".join(sorted(variables)[:3]) or "no model variables"
        raise ModelLoadingError(f"{where}: foreign checkpoint, no Magenta RnnFcDecoder variables (expected {EXPECTED}; "
                                f"found {sample})")
    # --- gin: what the checkpoint cannot tell
    input_keys = tuple(_binding(gin, "RnnFcDecoder", "input_keys", ("ld_scaled", "f0_scaled", "z")))
    if sorted(input_keys) != ["f0_scaled", "ld_scaled"]:
        raise _unsupported(where, f"RnnFcDecoder.input_keys = {input_keys}, expected ('ld_scaled', 'f0_scaled') "
                                  "(a decoder of f0 and loudness only, solo_instrument.gin)")
    rnn_type = _binding(gin, "RnnFcDecoder", "rnn_type", "gru")
    if rnn_type != "gru" or _binding(gin, "RnnFcDecoder", "stateless", False):
        raise _unsupported(where, f"RnnFcDecoder.rnn_type = {rnn_type!r} (stateless="
                                  f"{_binding(gin, 'RnnFcDecoder', 'stateless', False)}); only a GRU is supported")
    splits = _binding(gin, "RnnFcDecoder", "output_splits", None)
    try:
        splits = [(str(k), int(n)) for k, n in splits]
    except (TypeError, ValueError):
        raise ModelLoadingError(f"{where}: gin config has no usable RnnFcDecoder.output_splits ({splits!r})") from None
    if sorted(k for k, _ in splits) != sorted(_OUR_SPLITS) or dict(splits)["amps"] != 1:
        raise _unsupported(where, f"RnnFcDecoder.output_splits = {splits}; expected amps (1), harmonic_distribution "
                                  "and noise_magnitudes")
    for cfg_name in ("Fc", "FcStack"):
        nl = _binding(gin, cfg_name, "nonlinearity", "leaky_relu")
        if nl != "leaky_relu":
            raise _unsupported(where, f"{cfg_name}.nonlinearity = {nl!r}; only leaky_relu is supported")
    for proc in ("Harmonic", "FilteredNoise"):
        fn = _binding(gin, proc, "scale_fn", GinRef("core.exp_sigmoid", False))
        if not (isinstance(fn, GinRef) and fn.short == "exp_sigmoid" and not fn.evaluate):
            raise _unsupported(where, f"{proc}.scale_fn = {fn!r}; only exp_sigmoid is supported")
    if not _binding(gin, "Harmonic", "normalize_below_nyquist", True):
        raise _unsupported(where, "Harmonic.normalize_below_nyquist = False")
    amp_method = _binding(gin, "Harmonic", "amp_resample_method", "window")
    if amp_method not in ("window", "linear"):
        raise _unsupported(where, f"Harmonic.amp_resample_method = {amp_method!r} (window or linear only)")
    if not _binding(gin, "Reverb", "add_dry", True):
        raise _unsupported(where, "Reverb.add_dry = False")
    sample_rate = int(_binding(gin, "Harmonic", "sample_rate", 16000))
    n_samples = int(_binding(gin, "Harmonic", "n_samples", 64000))
    time_steps = int(_binding(gin, "F0LoudnessPreprocessor", "time_steps", 1000))
    if time_steps <= 0 or n_samples % time_steps or sample_rate * time_steps % n_samples:
        raise _unsupported(where, f"Harmonic.n_samples = {n_samples} and F0LoudnessPreprocessor.time_steps = "
                                  f"{time_steps} give no whole hop and frame rate at {sample_rate} Hz")
    frame_rate = sample_rate * time_steps // n_samples

    # --- shapes
    n_in = len(input_keys)
    stacks = [_stack(dec, f"input_stacks/{i}/", where) for i in range(n_in)]
    if any(k.startswith(f"input_stacks/{n_in}/") for k in dec):
        raise ModelLoadingError(f"{where}: more input stacks than RnnFcDecoder.input_keys {input_keys}")
    out_stack = _stack(dec, "out_stack/", where)
    rnn = {k.rpartition("/")[2]: v for k, v in dec.items() if k.startswith("rnn/")}
    if set(rnn) != {"kernel", "recurrent_kernel", "bias"}:
        raise ModelLoadingError(f"{where}: model/decoder/rnn has {sorted(rnn)}; expected a Keras GRU's kernel, "
                                "recurrent_kernel and bias")
    dense = {k.rpartition("/")[2]: v for k, v in dec.items() if k.startswith("dense_out/")}
    if set(dense) != {"kernel", "bias"}:
        raise ModelLoadingError(f"{where}: model/decoder/dense_out has {sorted(dense)}; expected kernel and bias")
    ch = stacks[0][0]["kernel"].shape[-1]
    layers = len(stacks[0])
    units = rnn["recurrent_kernel"].shape[0]
    sizes = dict(splits)
    n_out = sum(sizes.values())

    def expect(name: str, arr: np.ndarray, shape: tuple) -> None:
        if tuple(arr.shape) != shape:
            raise ModelLoadingError(f"{where}: shape mismatch: {name} is {tuple(arr.shape)}, expected {shape} "
                                    f"(ch={ch}, layers={layers}, rnn={units}, outputs={n_out} from the gin config)")

    for name, stack in [*((f"input_stacks/{i}", s) for i, s in enumerate(stacks)), ("out_stack", out_stack)]:
        if len(stack) != layers:
            raise ModelLoadingError(f"{where}: shape mismatch: {name} has {len(stack)} layers, input_stacks/0 {layers}")
        for j, fc in enumerate(stack):
            n_prev = (1 if name != "out_stack" else n_in * ch + units) if j == 0 else ch
            expect(f"{name} layer {j} kernel", fc["kernel"], (n_prev, ch))
            for leaf in ("bias", "gamma", "beta"):
                expect(f"{name} layer {j} {leaf}", fc[leaf], (ch,))
    if rnn["kernel"].shape[-1] == 4 * units:
        raise _unsupported(where, "model/decoder/rnn is an LSTM")
    expect("rnn kernel", rnn["kernel"], (n_in * ch, 3 * units))
    expect("rnn recurrent_kernel", rnn["recurrent_kernel"], (units, 3 * units))
    if rnn["bias"].shape == (3 * units,):
        raise _unsupported(where, "the GRU has reset_after=False (TF1 layout)")
    expect("rnn bias", rnn["bias"], (2, 3 * units))
    expect("dense_out kernel", dense["kernel"], (ch, n_out))
    expect("dense_out bias", dense["bias"], (n_out,))

    # --- reverb
    ir = None
    if _binding(gin, "Reverb", "trainable", False):
        cands = [v for k, v in sorted(variables.items()) if k.startswith("model/processor_group/")
                 and "reverb" in k.lower() and k.rpartition("/")[2].lstrip("_") == "ir" and v.ndim in (1, 2)]
        if not cands:
            raise ModelLoadingError(f"{where}: the gin config has a trainable Reverb but the checkpoint has no "
                                    "model/processor_group/reverb/.../ir variable")
        ir = np.asarray(cands[0], np.float32).reshape(-1)

    # --- weights, permuted to our layout
    f0_i, ld_i = input_keys.index("f0_scaled"), input_keys.index("ld_scaled")

    def rows(i: int) -> slice:
        return slice(i * ch, (i + 1) * ch)

    perm = np.r_[units : 2 * units, 0:units, 2 * units : 3 * units]  # keras (z, r, h) -> torch (r, z, n)
    sd: dict[str, np.ndarray] = {}
    for ours, stack in (("f0_mlp", stacks[f0_i]), ("ld_mlp", stacks[ld_i]), ("out_mlp", out_stack)):
        for j, fc in enumerate(stack):
            kernel = fc["kernel"]
            if ours == "out_mlp" and j == 0:  # magenta rows: [input stacks..., rnn]; ours: [rnn, f0, ld]
                kernel = np.concatenate([kernel[n_in * ch :], kernel[rows(f0_i)], kernel[rows(ld_i)]], axis=0)
            sd[f"decoder.{ours}.{3 * j}.weight"] = kernel.T
            sd[f"decoder.{ours}.{3 * j}.bias"] = fc["bias"]
            sd[f"decoder.{ours}.{3 * j + 1}.weight"] = fc["gamma"]
            sd[f"decoder.{ours}.{3 * j + 1}.bias"] = fc["beta"]
    k_in = np.concatenate([rnn["kernel"][rows(f0_i)], rnn["kernel"][rows(ld_i)]], axis=0)
    sd["decoder.gru.weight_ih_l0"] = k_in[:, perm].T
    sd["decoder.gru.weight_hh_l0"] = rnn["recurrent_kernel"][:, perm].T
    sd["decoder.gru.bias_ih_l0"] = rnn["bias"][0][perm]
    sd["decoder.gru.bias_hh_l0"] = rnn["bias"][1][perm]
    starts, s = {}, 0
    for k, n in splits:
        starts[k] = slice(s, s + n)
        s += n
    out_perm = np.concatenate([np.arange(n_out)[starts[k]] for k in _OUR_SPLITS])
    sd["decoder.dense_out.weight"] = dense["kernel"][:, out_perm].T
    sd["decoder.dense_out.bias"] = dense["bias"][out_perm]
    reverb_len = len(ir) if ir is not None else 1
    sd["reverb.noise"] = ir if ir is not None else np.zeros(1, np.float32)
    sd["reverb.decay"] = np.zeros((), np.float32)
    sd["reverb.wet"] = np.zeros((), np.float32)

    full = PRESETS["full"]
    config = DDSPConfig(
        sample_rate=sample_rate, frame_rate=frame_rate, n_harmonics=sizes["harmonic_distribution"],
        n_noise_bands=sizes["noise_magnitudes"], mlp_units=ch, mlp_layers=layers, gru_units=units,
        reverb_s=reverb_len / sample_rate, excerpt_s=n_samples / sample_rate, batch_size=full.batch_size,
        learning_rate=full.learning_rate, fft_sizes=full.fft_sizes, f0_method="crepe",
        leaky_slope=LEAKY_SLOPE, norm_eps=KERAS_LN_EPS, ld_range=float(db_range), ld_clip=True,
        amp_upsample=amp_method, noise_bias=float(_binding(gin, "FilteredNoise", "initial_bias", -5.0)),
        reverb_mode="free",
    )
    try:
        config.validate()
    except ParameterError as exc:
        raise _unsupported(where, str(exc)) from None
    return config, {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


def import_ddsp(folder: str | os.PathLike, *, name: str, instruments_dir: str | os.PathLike | None = None,
                db_range: float = DB_RANGE, overwrite: bool = False) -> ImportResult:
    """Import the Magenta DDSP checkpoint in ``folder`` as the trained instrument ``name``.

    ``db_range`` is the loudness scaling the model was trained with: ddsp >= 3.0 (January 2022)
    scales ``dB / 80 + 1``, earlier releases ``dB / 120 + 1``; Magenta's 2021-07-08 pretrained
    checkpoints predate the change. The checkpoint and gin config do not record it.
    """
    import torch

    from ..parametric import BUILTIN_TIMBRES
    from .decoder import DDSPModel

    store.check_name(name)
    if name in BUILTIN_TIMBRES:
        raise ParameterError(f"instrument name {name!r} is a built-in instrument; choose another name")
    if not db_range > 0:
        raise ParameterError(f"db_range={db_range} must be > 0")
    folder = Path(folder)
    root = store.instruments_dir(instruments_dir)
    target = root / name
    if target.exists() and not overwrite:
        raise OutputError(f"{target}: already exists; choose another --name or pass --force to replace it")
    prefix = find_checkpoint(folder)
    gin_path = _latest(folder, "operative_config-*.gin")
    if gin_path is None:
        raise ModelLoadingError(f"{folder}: no operative_config-*.gin; it is needed for the decoder's input order, "
                                "output splits and rates (it is saved beside every DDSP checkpoint)")
    gin = parse_gin(gin_path)
    stats_path = folder / "dataset_statistics.pkl"
    ds = load_statistics(stats_path) if stats_path.is_file() else None  # before TensorFlow's seconds
    variables = read_checkpoint(prefix)
    config, sd = convert(variables, gin, where=prefix, db_range=db_range)
    warnings: list[str] = []
    if ds is None:
        warnings.append(f"{stats_path.name} not found: transfer uses generic pitch range and loudness statistics")
    stats, more = stats_from_dataset_statistics(ds)
    warnings += more
    for w in warnings:
        log.warning("%s: %s", folder, w)

    model = DDSPModel(config)
    tensors = {k: torch.from_numpy(v) for k, v in sd.items()}
    store.load_state(model, tensors, Path(prefix))

    meta = {"config": config, "stats": stats,
            "description": f"Magenta DDSP instrument imported from {folder.name} ({config.n_harmonics} harmonics, "
                           f"GRU {config.gru_units}, {config.frame_rate} frames/s)",
            "source": {"kind": "magenta-ddsp", "checkpoint": Path(prefix).name, "gin": gin_path.name,
                       "dataset_statistics": ds is not None, "db_range": float(db_range)}}
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"~import-{name}-", dir=root))  # '~': never listed as an instrument
    try:
        store.write_tensors(staging / store.WEIGHTS, model.state_dict())
        store.write_meta(staging, meta)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f"~replaced-{name}-", dir=root))
            os.replace(target, old / name)
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ImportResult(target, config, Path(prefix).name, stats, warnings)
