"""Importing Magenta DDSP checkpoints (``covermill instruments import-ddsp``).

The checkpoint is written here with TensorFlow and Keras 2 (``tf_keras``, the Keras ddsp 3.x was
trained with) by layers that carry the attribute names of ddsp's classes (``Autoencoder.decoder``,
``RnnFcDecoder.input_stacks/rnn/out_stack/dense_out``, ``nn.FcStack``/``nn.Fc`` Sequentials,
``nn.Rnn.rnn``, ``ProcessorGroup.<module name>``, ``Reverb._ir``) and saved like ddsp's trainer,
``tf.train.Checkpoint(model=..., optimizer=...)``: the variable keys come from TensorFlow's object
graph, not from strings shared with the importer. The TensorFlow reference forward pass below
follows ddsp's source (decoders.py, nn.py, preprocessing.py, synths.py, effects.py, core.py).
"""

from __future__ import annotations

import math
import os
import pickle
import subprocess
import sys
import types

import numpy as np
import pytest
import torch
from click.testing import CliRunner

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow", reason="tensorflow not installed: pip install 'covermill[magenta]'")
keras = pytest.importorskip("tf_keras", reason="tf_keras (Keras 2, writes ddsp-layout checkpoints) not installed")
pytest.importorskip("gin", reason="gin-config not installed: pip install 'covermill[magenta]'")

from covermill.cli import main  # noqa: E402
from covermill.instruments.ddsp import store  # noqa: E402
from covermill.instruments.ddsp.instrument import DDSPInstrument  # noqa: E402
from covermill.instruments.ddsp.magenta import import_ddsp  # noqa: E402
from covermill.instruments.ddsp.synth import harmonic_synth  # noqa: E402

tfkl = keras.layers
CH, RNN, LAYERS, N_HARM, N_NOISE, IR_LEN = 16, 16, 2, 20, 17, 800
SPLITS = (("amps", 1), ("harmonic_distribution", N_HARM), ("noise_magnitudes", N_NOISE))
GIN = f"""\
import ddsp
import ddsp.training

# Macros:
# ==============================================================================
batch_size = 16

# Parameters for Autoencoder:
# ==============================================================================
Autoencoder.decoder = @decoders.RnnFcDecoder()
Autoencoder.encoder = None
Autoencoder.preprocessor = @preprocessing.F0LoudnessPreprocessor()
Autoencoder.processor_group = @processors.ProcessorGroup()

# Parameters for F0LoudnessPreprocessor:
F0LoudnessPreprocessor.time_steps = 1000

# Parameters for FilteredNoise:
FilteredNoise.initial_bias = -5.0
FilteredNoise.n_samples = 64000
FilteredNoise.name = 'filtered_noise'
FilteredNoise.scale_fn = @core.exp_sigmoid
FilteredNoise.window_size = 0

# Parameters for Harmonic:
Harmonic.n_samples = 64000
Harmonic.name = 'harmonic'
Harmonic.normalize_below_nyquist = True
Harmonic.sample_rate = 16000
Harmonic.scale_fn = @core.exp_sigmoid

# Parameters for ProcessorGroup:
ProcessorGroup.dag = \\
    [(@synths.Harmonic(), ['amps', 'harmonic_distribution', 'f0_hz']),
     (@synths.FilteredNoise(), ['noise_magnitudes']),
     (@processors.Add(), ['filtered_noise/signal', 'harmonic/signal']),
     (@effects.Reverb(), ['add/signal'])]

# Parameters for Reverb:
Reverb.name = 'reverb'
Reverb.reverb_length = {IR_LEN}
Reverb.trainable = True

# Parameters for RnnFcDecoder:
RnnFcDecoder.ch = {CH}
RnnFcDecoder.input_keys = ('ld_scaled', 'f0_scaled')
RnnFcDecoder.layers_per_stack = {LAYERS}
RnnFcDecoder.output_splits = \\
    (('amps', 1), ('harmonic_distribution', {N_HARM}), ('noise_magnitudes', {N_NOISE}))
RnnFcDecoder.rnn_channels = {RNN}
RnnFcDecoder.rnn_type = 'gru'

# Parameters for train:
train.batch_size = %batch_size
"""


# --------------------------------------------------------------------------- ddsp's layer layout, Keras 2
class Fc(keras.Sequential):  # ddsp.training.nn.Fc
    def __init__(self, ch):
        super().__init__([tfkl.Dense(ch), tfkl.LayerNormalization(), tfkl.Activation(tf.nn.leaky_relu)])


class FcStack(keras.Sequential):  # ddsp.training.nn.FcStack
    def __init__(self, ch, layers):
        super().__init__([Fc(ch) for _ in range(layers)])


class Rnn(tfkl.Layer):  # ddsp.training.nn.Rnn
    def __init__(self, dims):
        super().__init__()
        self.rnn = tfkl.GRU(dims, return_sequences=True)

    def call(self, x):
        return self.rnn(x)


class RnnFcDecoder(tfkl.Layer):  # ddsp.training.decoders.RnnFcDecoder (call() as there)
    def __init__(self, input_keys=("ld_scaled", "f0_scaled"), output_splits=SPLITS):
        super().__init__()
        self.input_keys, self.output_splits = list(input_keys), output_splits
        self.input_stacks = [FcStack(CH, LAYERS) for _ in self.input_keys]
        self.rnn = Rnn(RNN)
        self.out_stack = FcStack(CH, LAYERS)
        self.dense_out = tfkl.Dense(sum(n for _, n in output_splits))

    def call(self, *inputs):
        inputs = [stack(x) for stack, x in zip(self.input_stacks, inputs, strict=True)]
        x = self.rnn(tf.concat(inputs, axis=-1))
        x = tf.concat(inputs + [x], axis=-1)
        x = self.dense_out(self.out_stack(x))
        names, sizes = zip(*self.output_splits, strict=True)
        return dict(zip(names, tf.split(x, list(sizes), axis=-1), strict=True))


class Reverb(tfkl.Layer):  # ddsp.effects.Reverb(trainable=True)
    def __init__(self, reverb_length, name="reverb"):
        super().__init__(name=name, trainable=True)
        self._reverb_length = reverb_length

    def build(self, unused_input_shape):
        self._ir = self.add_weight(name="ir", shape=[self._reverb_length], dtype=tf.float32,
                                   initializer=tf.random_normal_initializer(mean=0, stddev=1e-6))
        self.built = True


class Processor(tfkl.Layer):  # weightless ddsp processors (Harmonic, FilteredNoise, Add)
    pass


class ProcessorGroup(tfkl.Layer):  # ddsp.processors.ProcessorGroup (dags.DAGLayer: setattr per module name)
    def __init__(self, modules):
        super().__init__()
        self.dag = [(m.name, ["x"]) for m in modules]
        self.module_names = [m.name for m in modules]
        for m in modules:
            setattr(self, m.name, m)


class Autoencoder(keras.Model):  # ddsp.training.models.Autoencoder
    def __init__(self, decoder, processor_group):
        super().__init__()
        self.preprocessor = None
        self.encoder = None
        self.decoder = decoder
        self.processor_group = processor_group
        self.loss_objs = []

    def call(self, features):
        return self.decoder(features["ld_scaled"], features["f0_scaled"])


def write_magenta_checkpoint(folder, *, seed=0, gin=GIN, stats=True, **decoder_kw):
    """A trained-looking Magenta solo-instrument checkpoint folder; returns the Keras model and reverb."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    decoder = RnnFcDecoder(**decoder_kw)
    reverb = Reverb(IR_LEN)
    model = Autoencoder(decoder, ProcessorGroup([Processor(name="harmonic"), Processor(name="filtered_noise"),
                                                 Processor(name="add"), reverb]))
    x = tf.zeros([1, 4, 1])
    model({"ld_scaled": x, "f0_scaled": x})
    reverb.build(None)
    for v in model.variables:  # random everything: biases, LayerNorm gain/shift and GRU biases too
        name = v.name
        if "gamma" in name:
            val = 1.0 + 0.2 * rng.standard_normal(v.shape)
        elif "/ir" in name:
            val = 0.05 * rng.standard_normal(v.shape) * np.exp(-np.arange(IR_LEN) / 200.0)
        else:
            val = (0.5 if "kernel" in name else 0.2) * rng.standard_normal(v.shape)
        v.assign(val.astype(np.float32))
    opt = keras.optimizers.Adam()
    opt.build(model.trainable_variables)  # slots, as in a trainer's checkpoint
    tf.train.Checkpoint(model=model, optimizer=opt).save(str(folder / "ckpt"))
    (folder / "operative_config-0.gin").write_text(gin)
    if stats:
        write_statistics(folder / "dataset_statistics.pkl")
    return model, reverb


def write_statistics(path):
    """ddsp's ``compute_dataset_statistics`` dict, with its ``QuantileTransformer`` object (pickled as
    ``ddsp.training.postprocessing.QuantileTransformer``, holding numpy's global RandomState)."""
    mod = types.ModuleType("ddsp.training.postprocessing")

    class QuantileTransformer:
        def __init__(self):
            self.n_quantiles = 1000
            self.random_state = np.random.mtrand._rand
            self.quantiles_ = np.linspace(-80, 0, 100)[:, None]
            self.references_ = np.linspace(0, 1, 100)

    QuantileTransformer.__module__ = mod.__name__
    QuantileTransformer.__qualname__ = "QuantileTransformer"
    mod.QuantileTransformer = QuantileTransformer
    saved = {k: sys.modules.get(k) for k in ("ddsp", "ddsp.training", "ddsp.training.postprocessing")}
    sys.modules.update({"ddsp": types.ModuleType("ddsp"), "ddsp.training": types.ModuleType("ddsp.training"),
                        "ddsp.training.postprocessing": mod})
    try:
        f32 = np.float32
        stats = {"mean_pitch": f32(64.0), "max_pitch": f32(90.0), "min_pitch": f32(40.0),
                 "mean_pitch_note": f32(67.0), "mean_max_pitch_note": f32(81.0), "mean_min_pitch_note": f32(57.0),
                 "std_pitch_note": f32(5.0), "mean_loudness_note": f32(-35.0), "max_loudness_note": f32(-8.0),
                 "std_loudness_note": f32(6.5), "mean_loudness": f32(-45.0),
                 "quantile_transform": QuantileTransformer()}
        path.write_bytes(pickle.dumps(stats))
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


# --------------------------------------------------------------------------- TF reference (ddsp's core.py)
DB_RANGE, F0_RANGE = 80.0, 127.0


def tf_exp_sigmoid(x, exponent=10.0, max_value=2.0, threshold=1e-7):
    return max_value * tf.nn.sigmoid(x) ** tf.math.log(exponent) + threshold


def tf_hz_to_midi(f):
    notes = 12.0 * (tf.math.log(f) / tf.math.log(2.0) - tf.math.log(440.0) / tf.math.log(2.0)) + 69.0
    return tf.where(f <= 0.0, 0.0, notes)


def tf_controls(model, f0_hz, loudness_db, sample_rate=16000):
    """Preprocessor -> decoder -> Harmonic/FilteredNoise.get_controls, as ddsp does it."""
    f0 = tf.constant(f0_hz[..., None], tf.float32)
    ld = tf.maximum(tf.constant(loudness_db[..., None], tf.float32), -DB_RANGE)  # compute_loudness's range
    out = model({"ld_scaled": ld / DB_RANGE + 1.0, "f0_scaled": tf_hz_to_midi(f0) / F0_RANGE})
    raw = tf.concat([out[k] for k, _ in SPLITS], axis=-1)
    amps = tf_exp_sigmoid(out["amps"])
    hd = tf_exp_sigmoid(out["harmonic_distribution"])
    k = tf.linspace(1.0, float(N_HARM), N_HARM)[None, None, :]
    hd = tf.where(f0 * k >= sample_rate / 2.0, tf.zeros_like(hd), hd)
    total = tf.reduce_sum(hd, axis=-1, keepdims=True)
    hd = hd / tf.where(total == 0.0, 1e-7, total)
    noise = tf_exp_sigmoid(out["noise_magnitudes"] - 5.0)
    return {"raw": raw, "f0_hz": f0, "harmonic_amplitudes": amps * hd, "noise_magnitudes": noise}


def tf_upsample_with_windows(x, n):
    x = tf.concat([x, x[:, -1:, :]], axis=1)
    hop = n // (int(x.shape[1]) - 1)
    w = tf.signal.hann_window(2 * hop)
    y = tf.signal.overlap_and_add(tf.transpose(x, [0, 2, 1])[..., None] * w[None, None, None, :], hop)
    return tf.transpose(y, [0, 2, 1])[:, hop:-hop, :]


def tf_harmonic_synthesis(f0, harmonic_amplitudes, n_samples, sample_rate=16000, phase_dtype=tf.float32):
    """core.harmonic_synthesis: frequencies resampled linearly, amplitudes with windows, oscillator_bank
    (``tf.cumsum`` of the phase in float32 as in ddsp, or in ``phase_dtype``)."""
    freqs = f0 * tf.linspace(1.0, float(N_HARM), N_HARM)[None, None, :]
    freq_env = tf.compat.v1.image.resize(freqs[:, :, None, :], [n_samples, 1], method="bilinear",
                                         align_corners=False)[:, :, 0, :]
    amp_env = tf_upsample_with_windows(harmonic_amplitudes, n_samples)
    amp_env = tf.where(freq_env >= sample_rate / 2.0, tf.zeros_like(amp_env), amp_env)
    phases = tf.cumsum(tf.cast(freq_env, phase_dtype) * (2.0 * np.pi) / float(sample_rate), axis=1)
    return tf.reduce_sum(tf.cast(amp_env, phase_dtype) * tf.sin(phases), axis=-1)


def tf_reverb(audio, ir):
    """effects.Reverb.get_signal: ir[0] masked, fft_convolve(padding='same', delay_compensation=0), dry added."""
    ir = tf.concat([tf.zeros([1]), ir[1:]], axis=0)[None, :]
    n, m = int(audio.shape[-1]), int(ir.shape[-1])
    fft = 2 ** math.ceil(math.log2(n + m - 1))
    wet = tf.signal.irfft(tf.signal.rfft(audio, [fft]) * tf.signal.rfft(ir, [fft]))[:, :n]
    return wet + audio


def controls_input(n_frames=60):
    t = np.arange(n_frames) / 250.0
    f0 = (220.0 * 2 ** (2 * t / t[-1]) * (1 + 0.01 * np.sin(2 * np.pi * 6 * t)))[None].astype(np.float32)
    f0[0, 40:] = 1300.0 + 200 * t[40:]  # high notes: harmonics above Nyquist are removed
    ld = np.linspace(-95.0, -5.0, n_frames)[None].astype(np.float32)  # below -80: clipped as Magenta's loudness
    return f0, ld


# --------------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def magenta(tmp_path_factory):
    root = tmp_path_factory.mktemp("magenta")
    model, reverb = write_magenta_checkpoint(root / "solo_toy_ckpt")
    result = import_ddsp(root / "solo_toy_ckpt", name="toy_violin", instruments_dir=root / "inst")
    inst = DDSPInstrument(result.path).load()
    return {"root": root, "ckpt": root / "solo_toy_ckpt", "keras": model, "ir": reverb._ir.numpy(), "result": result,
            "inst": inst}


def test_checkpoint_has_ddsp_object_graph_keys(magenta):
    names = [n for n, _ in tf.train.list_variables(str(magenta["ckpt"]))]
    assert any(n.startswith("model/decoder/input_stacks/1/") for n in names)
    assert any(n.startswith("model/decoder/rnn/") for n in names)
    assert any(n.startswith("model/processor_group/reverb/") for n in names)
    assert any(".OPTIMIZER_SLOT" in n or n.startswith("optimizer/") for n in names)


def test_imported_config_mirrors_magenta(magenta):
    c = magenta["result"].config
    assert (c.sample_rate, c.frame_rate, c.n_harmonics, c.n_noise_bands) == (16000, 250, N_HARM, N_NOISE)
    assert (c.mlp_units, c.mlp_layers, c.gru_units) == (CH, LAYERS, RNN)
    assert (c.leaky_slope, c.norm_eps, c.ld_range, c.ld_clip) == (0.2, 1e-3, 80.0, True)
    assert (c.amp_upsample, c.noise_bias, c.reverb_mode, c.f0_method) == ("window", -5.0, "free", "crepe")
    assert round(c.reverb_s * c.sample_rate) == IR_LEN


def test_decoder_and_controls_match_tensorflow(magenta):
    model = magenta["inst"].model_
    f0, ld = controls_input()
    ref = {k: v.numpy() for k, v in tf_controls(magenta["keras"], f0, ld).items()}
    with torch.no_grad():
        f0_t, ld_t = torch.from_numpy(f0), torch.from_numpy(ld)
        from covermill.instruments.ddsp.decoder import hz_to_midi

        raw = model.decoder(hz_to_midi(f0_t[..., None]) / 127.0, ld_t[..., None].clamp_min(-80.0) / 80.0 + 1.0)
        ctl = model.controls(f0_t, ld_t)
    assert np.abs(raw.numpy() - ref["raw"]).max() < 1e-5
    for key in ("harmonic_amplitudes", "noise_magnitudes"):
        ours, theirs = ctl[key].numpy(), ref[key]
        assert np.abs(ours - theirs).max() < 1e-5 * max(1.0, np.abs(theirs).max()), key
    amps = ref["harmonic_amplitudes"]
    assert (amps[0, 45:, 10:] == 0).all() and (ctl["harmonic_amplitudes"].numpy()[0, 45:, 10:] == 0).all()


def test_harmonic_audio_and_reverb_match_tensorflow(magenta):
    model, cfg = magenta["inst"].model_, magenta["result"].config
    f0, ld = controls_input()
    n = f0.shape[1] * cfg.hop
    ref = tf_controls(magenta["keras"], f0, ld)
    theirs = tf_reverb(tf_harmonic_synthesis(ref["f0_hz"], ref["harmonic_amplitudes"], n), magenta["ir"]).numpy()
    with torch.no_grad():
        ctl = model.controls(torch.from_numpy(f0), torch.from_numpy(ld))
        dry = harmonic_synth(ctl["f0_hz"], ctl["harmonic_amplitudes"], sample_rate=cfg.sample_rate, n_samples=n,
                             amp_method=cfg.amp_upsample)
        ours = model.reverb(dry).numpy()
    peak = np.abs(theirs).max()
    assert peak > 0.05
    # ddsp accumulates phase with a float32 tf.cumsum, we in float64: measured 5e-4 of the peak here
    assert np.abs(ours - theirs).max() < 2e-3 * peak
    # with the phase accumulated in float64 on both sides the rest agrees to float32 rounding (measured 8e-6)
    dry64 = tf.cast(tf_harmonic_synthesis(ref["f0_hz"], ref["harmonic_amplitudes"], n, phase_dtype=tf.float64),
                    tf.float32)
    assert np.abs(ours - tf_reverb(dry64, magenta["ir"]).numpy()).max() < 1e-4 * peak
    with torch.no_grad():  # the full model (noise included) renders finite audio of the right length
        y = model.render(torch.from_numpy(f0), torch.from_numpy(ld), torch.ones(1, f0.shape[1]),
                         generator=torch.Generator().manual_seed(0))
    assert y.shape == (1, n) and torch.isfinite(y).all()


def test_statistics_become_instrument_stats(magenta):
    stats = store.read_meta(magenta["result"].path)["stats"]
    assert stats["f0_range_hz"] == pytest.approx([440 * 2 ** ((57 - 69) / 12), 440 * 2 ** ((81 - 69) / 12)], rel=1e-5)
    assert stats["loudness_mean_db"] == pytest.approx(-35.0) and stats["loudness_max_db"] == pytest.approx(-8.0)
    assert magenta["result"].warnings == []


def test_imported_instrument_revoices_a_stem(magenta):
    from conftest import melody

    y = melody([67, 69, 71], bpm=120, sr=44100)[None]
    inst = DDSPInstrument(magenta["result"].path, f0_method="pyin")
    out = inst.revoice(y, sr=44100)
    assert out.shape == (1, y.shape[-1]) and np.isfinite(out).all() and np.abs(out).max() > 0


def test_cli_imports_and_lists(magenta, tmp_path):
    out = CliRunner().invoke(main, ["instruments", "import-ddsp", str(magenta["ckpt"]), "--name", "cli_violin",
                                    "--instruments-dir", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert "cli_violin: imported ckpt-1" in out.output
    listed = CliRunner().invoke(main, ["instruments", "list", "--instruments-dir", str(tmp_path)])
    assert any(line.startswith("cli_violin") and "trained" in line and "Magenta" in line
               for line in listed.output.splitlines())
    again = CliRunner().invoke(main, ["instruments", "import-ddsp", str(magenta["ckpt"]), "--name", "cli_violin",
                                      "--instruments-dir", str(tmp_path)])
    assert again.exit_code == 1 and "already exists" in again.output
    forced = CliRunner().invoke(main, ["instruments", "import-ddsp", str(magenta["ckpt"]), "--name", "cli_violin",
                                       "--instruments-dir", str(tmp_path), "--force"])
    assert forced.exit_code == 0, forced.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli_violin"]


def test_missing_statistics_is_a_warning(tmp_path):
    write_magenta_checkpoint(tmp_path / "ck", stats=False)
    out = CliRunner().invoke(main, ["instruments", "import-ddsp", str(tmp_path / "ck"), "--name", "nostats",
                                    "--instruments-dir", str(tmp_path / "inst")])
    assert out.exit_code == 0, out.output
    assert "dataset_statistics.pkl not found" in out.output


def _bad(tmp_path, folder, expect):
    inst = tmp_path / "inst"
    out = CliRunner().invoke(main, ["instruments", "import-ddsp", str(folder), "--name", "bad",
                                    "--instruments-dir", str(inst)])
    lines = [line for line in out.output.splitlines() if line.strip()]
    assert out.exit_code == 1, out.output
    assert len(lines) == 1 and expect in lines[0] and "Traceback" not in out.output, out.output
    assert not inst.exists() or list(inst.iterdir()) == []  # nothing written, no staging left behind


def copy_ckpt(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_bad_inputs_are_one_clear_line(magenta, tmp_path):
    _bad(tmp_path, tmp_path / "nowhere", "no such folder")
    (tmp_path / "empty").mkdir()
    _bad(tmp_path, tmp_path / "empty", "no TensorFlow checkpoint")
    # foreign: a TensorFlow checkpoint without ddsp's decoder
    foreign = tmp_path / "foreign"
    mod = tf.Module()
    mod.encoder = tf.Module()
    mod.encoder.w = tf.Variable(tf.ones([3, 3]))
    tf.train.Checkpoint(model=mod).save(str(foreign / "ckpt"))
    (foreign / "operative_config-0.gin").write_text(GIN)
    _bad(tmp_path, foreign, "foreign checkpoint, no Magenta RnnFcDecoder variables (expected model/decoder/")
    # corrupt: flipped bytes in the data file (checksums), a truncated data file, a garbage index
    flipped = copy_ckpt(magenta["ckpt"], tmp_path / "flipped")
    data = next(flipped.glob("ckpt-1.data-*"))
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 64] = bytes(b ^ 0xFF for b in raw[len(raw) // 2 : len(raw) // 2 + 64])
    data.write_bytes(bytes(raw))
    _bad(tmp_path, flipped, "corrupt")
    truncated = copy_ckpt(magenta["ckpt"], tmp_path / "truncated")
    data = next(truncated.glob("ckpt-1.data-*"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 3])
    _bad(tmp_path, truncated, "corrupt")
    garbage = copy_ckpt(magenta["ckpt"], tmp_path / "garbage")
    (garbage / "ckpt-1.index").write_bytes(b"not a checkpoint index" * 10)
    _bad(tmp_path, garbage, "corrupt or not a TensorFlow checkpoint")
    nodata = copy_ckpt(magenta["ckpt"], tmp_path / "nodata")
    next(nodata.glob("ckpt-1.data-*")).unlink()
    _bad(tmp_path, nodata, "is missing")
    # shape mismatch: the gin config promises other output sizes than the checkpoint has
    mismatch = copy_ckpt(magenta["ckpt"], tmp_path / "mismatch")
    (mismatch / "operative_config-0.gin").write_text(GIN.replace(f"('noise_magnitudes', {N_NOISE})",
                                                                 "('noise_magnitudes', 65)"))
    _bad(tmp_path, mismatch, "shape mismatch: dense_out kernel")
    nogin = copy_ckpt(magenta["ckpt"], tmp_path / "nogin")
    (nogin / "operative_config-0.gin").unlink()
    _bad(tmp_path, nogin, "no operative_config-*.gin")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


def test_statistics_pickle_never_runs_code(magenta, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = copy_ckpt(magenta["ckpt"], tmp_path / "evil")
    (evil / "dataset_statistics.pkl").write_bytes(pickle.dumps({"mean_pitch": 60.0, "x": _Evil()}))
    _bad(tmp_path, evil, "refusing to load posix.system")
    assert not (tmp_path / "pwned.txt").exists()
    (evil / "dataset_statistics.pkl").write_bytes(b"\x80\x04garbage")
    _bad(tmp_path, evil, "corrupt statistics pickle")


def test_missing_tensorflow_is_one_line(magenta, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # `import tensorflow` now raises ImportError
    out = CliRunner().invoke(main, ["instruments", "import-ddsp", str(magenta["ckpt"]), "--name", "x",
                                    "--instruments-dir", str(tmp_path)])
    assert out.exit_code == 1 and "pip install 'covermill[magenta]'" in out.output
    assert len(out.output.strip().splitlines()) == 1


def test_tensorflow_is_imported_only_by_the_importer():
    # basic_pitch/__init__ imports TensorFlow whenever it is installed; covermill hides it there (ONNX is ours)
    code = ("import sys; import covermill.cli, covermill.instruments, covermill.instruments.ddsp.magenta; "
            "from covermill.instruments.ddsp import instrument, decoder; from covermill.instruments import midi; "
            "midi._import_basic_pitch(); "
            "assert 'tensorflow' not in sys.modules and 'gin' not in sys.modules, 'imported eagerly'")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": os.getcwd()})


def test_old_instruments_keep_their_config_defaults():
    from covermill.instruments.ddsp.config import DDSPConfig

    c = DDSPConfig.from_dict({"sample_rate": 16000, "frame_rate": 100})
    assert (c.leaky_slope, c.norm_eps, c.ld_range, c.ld_clip, c.amp_upsample, c.noise_bias, c.reverb_mode) == (
        0.01, 1e-5, 120.0, False, "linear", -5.0, "decay")
