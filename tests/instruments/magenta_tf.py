"""TensorFlow side of tests/instruments/test_magenta.py, run as a script in its own process.

TensorFlow loaded into pytest's process makes a later import of triton (torch's compiler) crash
it, so the tests run this file in a subprocess:

    python magenta_tf.py write DIR [--no-stats] [--seed N]
        a Magenta solo-instrument checkpoint folder (ckpt-1.*, operative_config-0.gin,
        dataset_statistics.pkl), written with TensorFlow and Keras 2 (``tf_keras``, the Keras ddsp 3.x
        was trained with) by layers that carry the attribute names of ddsp's classes
        (``Autoencoder.decoder``, ``RnnFcDecoder.input_stacks/rnn/out_stack/dense_out``,
        ``nn.FcStack``/``nn.Fc`` Sequentials, ``nn.Rnn.rnn``, ``ProcessorGroup.<module name>``,
        ``Reverb._ir``) and saved like ddsp's trainer, ``tf.train.Checkpoint(model=..., optimizer=...)``:
        the variable keys come from TensorFlow's object graph, not from strings shared with the importer;
    python magenta_tf.py write DIR --reference INPUTS.npz OUT.npz
        also the reference forward pass of those weights on INPUTS (f0_hz, loudness_db), following
        ddsp's source (decoders.py, nn.py, preprocessing.py, synths.py, effects.py, core.py);
    python magenta_tf.py foreign DIR
        a TensorFlow checkpoint of some other model;
    python magenta_tf.py keys DIR
        the checkpoint's variable names, one per line.
"""

from __future__ import annotations

import math
import os
import pickle
import sys
import types

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

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



def main(argv: list[str]) -> int:
    from pathlib import Path

    cmd, folder = argv[0], Path(argv[1])
    if cmd == "keys":
        for name, _ in tf.train.list_variables(str(folder)):
            print(name)
        return 0
    if cmd == "write-all":  # everything the tests need from one TensorFlow process
        main(["write", str(folder / "solo_toy_ckpt"), *argv[2:]])
        main(["foreign", str(folder / "foreign")])
        main(["keys", str(folder / "solo_toy_ckpt")])
        return 0
    if cmd == "foreign":
        mod = tf.Module()
        mod.encoder = tf.Module()
        mod.encoder.w = tf.Variable(tf.ones([3, 3]))
        tf.train.Checkpoint(model=mod).save(str(folder / "ckpt"))
        (folder / "operative_config-0.gin").write_text(GIN)
        return 0
    seed = int(argv[argv.index("--seed") + 1]) if "--seed" in argv else 0
    model, reverb = write_magenta_checkpoint(folder, seed=seed, stats="--no-stats" not in argv)
    if "--reference" in argv:
        i = argv.index("--reference")
        inputs = np.load(argv[i + 1])
        f0, ld = inputs["f0_hz"], inputs["loudness_db"]
        n = f0.shape[1] * 64  # hop at 16 kHz, 250 frames/s
        ref = tf_controls(model, f0, ld)
        ir = reverb._ir.numpy()
        out = {k: v.numpy() for k, v in ref.items()}
        out["ir"] = ir
        out["audio"] = tf_reverb(tf_harmonic_synthesis(ref["f0_hz"], ref["harmonic_amplitudes"], n), ir).numpy()
        dry64 = tf_harmonic_synthesis(ref["f0_hz"], ref["harmonic_amplitudes"], n, phase_dtype=tf.float64)
        out["audio_phase64"] = tf_reverb(tf.cast(dry64, tf.float32), ir).numpy()
        np.savez(argv[i + 2], **out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
