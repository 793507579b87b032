"""Benchmark: DDSP instruments -- f0 trackers against ground truth, training on a real solo trumpet, transfer speed.

    .venv/bin/python bench/bench_ddsp.py --write docs/BENCHMARKS.md

1. f0: pyin and torchcrepe (tiny; ``--crepe-full`` adds full) on the ground-truth f0 of
   ``../shared/data/mirdata_fixtures`` (vocadito, mdb_stem_synth): raw pitch
   accuracy within 50 cents, voicing recall and false alarm (mir_eval), x realtime.
2. Training: the CPU config on the first 80 % of the solo trumpet recording; multi-scale
   spectral loss of resynthesising the held-out last 20 % from its own f0/loudness, for the
   trained decoder, the untrained decoder and the built-in parametric trumpet (RMS-matched to
   the target, which favours it); steps/s.
3. Transfer: x realtime of re-voicing a 20-s synthesized melody with the trained instrument.

Writes the results between the ``<!-- bench:ddsp -->`` markers of the target file.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from covermill.audio import read_audio, resample  # noqa: E402
from covermill.instruments.features import FEATURE_SR, extract_controls  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
TRUMPET = SHARED / "librosa_data" / "cc_by_or_pd" / "sorohanro_-_solo-trumpet-06.hq.ogg"
FIX = SHARED / "mirdata_fixtures"
F0_SETS = [
    ("vocadito_1", FIX / "vocadito/Audio/vocadito_1.wav", FIX / "vocadito/Annotations/F0/vocadito_1_f0.csv"),
    ("mdb_stem_synth NightOwl_STEM_08", FIX / "mdb_stem_synth/audio_stems/AClassicEducation_NightOwl_STEM_08.RESYN.wav",
     FIX / "mdb_stem_synth/annotation_stems/AClassicEducation_NightOwl_STEM_08.RESYN.csv"),
]
#: Not used: medleydb_pitch's fixture csv holds 2 rows (0.07 s) for a 2-s file, a loader fixture and no f0 reference.
START, END = "<!-- bench:ddsp -->", "<!-- /bench:ddsp -->"
HOP = 160  # 100 frames/s at 16 kHz


def f0_scores(ref_csv: Path, f0: np.ndarray, frame_rate: float) -> dict:
    import mir_eval

    ref = np.loadtxt(ref_csv, delimiter=",", ndmin=2)
    est_t = np.arange(len(f0)) / frame_rate
    s = mir_eval.melody.evaluate(ref[:, 0], ref[:, 1], est_t, np.where(f0 > 0, f0, 0.0))
    return {"rpa": s["Raw Pitch Accuracy"], "recall": s["Voicing Recall"], "fa": s["Voicing False Alarm"]}


def bench_f0(methods: list[tuple[str, dict]]) -> list[str]:
    rows = ["| file | seconds | tracker | raw pitch acc. (50 c) | voicing recall | voicing false alarm | x realtime |",
            "|---|---:|---|---:|---:|---:|---:|"]
    for name, wav, csv in F0_SETS:
        if not wav.exists():
            rows.append(f"| {name} | - | (missing) | | | | |")
            continue
        y, sr = read_audio(wav)
        secs = y.shape[1] / sr
        for label, kw in methods:
            t0 = time.perf_counter()
            ctl = extract_controls(y, sr=sr, hop_length=HOP, fmin=50.0, fmax=1500.0, **kw)
            dt = time.perf_counter() - t0
            s = f0_scores(csv, ctl.f0_hz, ctl.frame_rate)
            rows.append(f"| {name} | {secs:.1f} | {label} | {s['rpa']:.3f} | {s['recall']:.3f} | {s['fa']:.3f} | "
                        f"{secs / dt:.1f}x |")
            print(rows[-1], flush=True)
    return rows


def bench_training(steps: int) -> tuple[list[str], Path, Path]:
    import soundfile as sf
    import torch

    from covermill.instruments.ddsp.config import preset
    from covermill.instruments.ddsp.decoder import DDSPModel
    from covermill.instruments.ddsp.instrument import DDSPInstrument
    from covermill.instruments.ddsp.synth import multiscale_spectral_loss
    from covermill.instruments.ddsp.train import fill_unvoiced, train_instrument
    from covermill.instruments.parametric import BUILTIN_TIMBRES, ParametricInstrument

    cfg = preset("cpu")
    y, sr = read_audio(TRUMPET)
    mono = y.mean(axis=0)
    cut = int(0.8 * len(mono))
    tmp = Path(tempfile.mkdtemp(prefix="bench-ddsp-"))
    (tmp / "train").mkdir()
    sf.write(str(tmp / "train" / "trumpet_train.wav"), mono[:cut], sr)
    held = mono[cut:]
    t0 = time.perf_counter()
    last = [0.0]
    result = train_instrument(tmp / "train", name="trumpet_bench", instruments_dir=tmp / "inst", steps=steps,
                              config=cfg, checkpoint_every=max(steps // 2, 1),
                              progress=lambda ev: last.__setitem__(0, ev["loss"]))
    wall = time.perf_counter() - t0

    ctl = extract_controls(held[None], sr=sr, hop_length=FEATURE_SR // cfg.frame_rate)
    target = resample(held[None], sr_in=sr, sr_out=cfg.sample_rate)[0]
    n = len(ctl) * cfg.hop
    target = torch.from_numpy(np.pad(target, (0, max(0, n - len(target))))[:n])[None]
    f0 = torch.from_numpy(fill_unvoiced(ctl.f0_hz, ctl.voiced))[None]
    ld = torch.from_numpy(ctl.loudness_db)[None]

    def loss_of(audio: torch.Tensor) -> float:
        return float(multiscale_spectral_loss(audio[:, :n], target, fft_sizes=cfg.fft_sizes))

    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    trained = DDSPInstrument(result.path).load().model_
    torch.manual_seed(0)
    untrained = DDSPModel(cfg).eval()
    with torch.no_grad():
        l_trained, l_untrained = loss_of(trained(f0, ld, generator=gen())), loss_of(untrained(f0, ld, generator=gen()))
    para = ParametricInstrument(BUILTIN_TIMBRES["trumpet"]).synthesize(ctl, sr=cfg.sample_rate, n_samples=n)
    para *= float(target.std()) / max(float(np.std(para)), 1e-9)
    l_para = loss_of(torch.from_numpy(para)[None])
    rows = [
        f"Material: `{TRUMPET.name}` ({len(mono) / sr:.1f} s; trained on the first {cut / sr:.1f} s, "
        f"held out the last {len(held) / sr:.1f} s). Config `cpu` (16 kHz, {cfg.frame_rate} frames/s, "
        f"{cfg.n_harmonics} harmonics, {cfg.n_noise_bands} noise bands, GRU {cfg.gru_units}, batch "
        f"{cfg.batch_size} x {cfg.excerpt_s:g} s, {len(cfg.fft_sizes)}-scale loss), {steps} steps, f0 by pyin.",
        "",
        "| resynthesis of the held-out audio | multi-scale spectral loss |",
        "|---|---:|",
        f"| DDSP decoder, trained {steps} steps | **{l_trained:.2f}** |",
        f"| DDSP decoder, untrained | {l_untrained:.2f} |",
        f"| built-in parametric `trumpet` (RMS-matched) | {l_para:.2f} |",
        "",
        f"Training: {result.steps_per_s:.2f} steps/s on CPU (torch threads: {torch.get_num_threads()}), "
        f"{wall:.0f} s wall including feature extraction; training loss {result.first_loss:.2f} -> {result.loss:.2f}.",
    ]
    print("\n".join(rows), flush=True)
    return rows, result.path, tmp


def bench_transfer(path: Path, methods: list[tuple[str, dict]]) -> list[str]:
    from covermill.instruments.ddsp.instrument import DDSPInstrument

    sr = 44100
    rng = np.random.default_rng(0)
    notes = 60 + rng.integers(0, 12, 40)
    t = np.arange(sr // 2) / sr
    env = np.minimum(1, np.minimum(t / 0.01, (0.5 - t) / 0.03))
    x = np.concatenate([0.3 * env * sum(np.sin(2 * np.pi * k * 440 * 2 ** ((m - 69) / 12) * t) / k for k in (1, 2, 3))
                        for m in notes]).astype(np.float32)
    rows = ["| transfer of a 20-s melody (44.1 kHz) | seconds | x realtime |", "|---|---:|---:|"]
    for label, kw in methods:
        inst = DDSPInstrument(path, f0_method=kw.get("f0_method", "pyin"))
        inst.load()
        t0 = time.perf_counter()
        inst.revoice(x[None], sr=sr)
        dt = time.perf_counter() - t0
        rows.append(f"| f0 by {label} | {dt:.1f} | {len(x) / sr / dt:.1f}x |")
        print(rows[-1], flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=80, help="training steps (CPU config)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1 is fastest on a shared 2-core machine: 2 s/step vs 10 s with 2 threads)")
    ap.add_argument("--crepe-full", action="store_true", help="also torchcrepe full (about 0.3x realtime on 2 cores)")
    ap.add_argument("--write", type=Path, help="markdown file to update")
    args = ap.parse_args(argv)
    if not TRUMPET.exists() or not FIX.exists():
        print(f"skipped: {SHARED} is not here (it sits beside the repository)")
        return 0
    import torch

    torch.set_num_threads(args.threads)
    methods = [("pyin", {"f0_method": "pyin"}), ("torchcrepe tiny", {"f0_method": "crepe", "crepe_model": "tiny"})]
    if args.crepe_full:
        methods.append(("torchcrepe full", {"f0_method": "crepe", "crepe_model": "full"}))
    t_all = time.perf_counter()
    f0_rows = bench_f0(methods)
    train_rows, path, _tmp = bench_training(args.steps)
    transfer_rows = bench_transfer(path, methods[:2])
    total = time.perf_counter() - t_all
    cmd = "python bench/bench_ddsp.py --write docs/BENCHMARKS.md" + (f" --steps {args.steps}" if args.steps != 80 else "")
    block = "\n".join([
        START, f"Command: `{cmd}`", "",
        f"{os.cpu_count()} CPU cores shared with other jobs (load average {os.getloadavg()[0]:.1f} at the end: "
        f"timings are pessimistic and noisy), torch {torch.__version__}, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}; whole benchmark {total:.0f} s.", "",
        "### f0 trackers (100 frames/s, fmin 50 Hz, fmax 1500 Hz; mir_eval)", "", *f0_rows, "",
        "medleydb_pitch is left out: its fixture's pitch csv has 2 rows (0.07 s) for 2 s of audio.", "",
        "### Training on the real solo trumpet", "", *train_rows, "",
        "### Transfer speed", "", *transfer_rows, END,
    ])
    print(block)
    if args.write:
        text = args.write.read_text()
        if START in text:
            text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
        else:
            text = text.rstrip("\n") + "\n\n## Instruments (DDSP)\n\n" + block + "\n"
        args.write.write_text(text)
        print(f"\nwritten to {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
