"""Benchmark: DDSP instruments -- f0 trackers against ground truth, training on a real solo trumpet, transfer speed.

    .venv/bin/python bench/bench_ddsp.py --write docs/BENCHMARKS.md

1. f0: pyin and torchcrepe (tiny; ``--crepe-full`` adds full) on the ground-truth f0 of
   ``../shared/data/mirdata_fixtures`` (vocadito, mdb_stem_synth): raw pitch
   accuracy within 50 cents, voicing recall and false alarm (mir_eval), x realtime.
2. Training: the CPU config on the first 80 % of the solo trumpet recording; multi-scale
   spectral loss of resynthesising the held-out last 20 % from its own f0/loudness, for the
   trained decoder, the untrained decoder and the built-in parametric trumpet (RMS-matched to
   the target, which favours it); steps/s.
3. Transfer: x realtime of re-voicing a 3-minute synthesized vocal-like stem with rests
   (44.1 kHz) with a ``cpu``-preset instrument (untrained weights: the same compute), with
   crepe tiny (fast default and exact path) and pyin; the time of each stage; and a table of
   the speed-ups, each with its x realtime on the stem and its f0 cost on the section-1 files.

``--sections f0,transfer`` runs only some sections; the others keep their text in the target file.
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


def vocal_stem(seconds: float = 180.0, sr: int = 44100, seed: int = 0) -> np.ndarray:
    """A mono vocal-like melody: 3-8 s phrases of notes (vibrato, 8 harmonics) between 1-4 s rests."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    y = np.zeros(n)
    t = 0.5
    while t < seconds - 1.0:
        end = min(t + rng.uniform(3.0, 8.0), seconds - 0.5)
        while end - t >= 0.1:
            dur = min(float(rng.choice([0.25, 0.5, 0.75, 1.0])), end - t)
            i0, i1 = int(t * sr), int((t + dur) * sr)
            tt = np.arange(i1 - i0) / sr
            vib = 2 ** (0.3 / 12 * np.sin(2 * np.pi * 5.5 * tt) * np.minimum(1, tt / 0.3))
            f0 = 440 * 2 ** ((57 + int(rng.integers(0, 15)) - 69) / 12) * vib
            ph = 2 * np.pi * np.cumsum(f0) / sr
            env = np.minimum(1, np.minimum(tt / 0.02, (dur - tt) / 0.04))
            y[i0:i1] += 0.25 * env * sum(np.sin(k * ph) / k * (1.5 if 2 <= k <= 4 else 1.0) for k in range(1, 9))
            t += dur
        t += rng.uniform(1.0, 4.0)
    y += 1e-5 * rng.standard_normal(n)  # a noise floor near -100 dBFS
    return y.astype(np.float32)


def untrained_instrument() -> Path:
    import torch

    from covermill.instruments.ddsp import store
    from covermill.instruments.ddsp.config import preset
    from covermill.instruments.ddsp.decoder import DDSPModel

    cfg = preset("cpu")
    folder = Path(tempfile.mkdtemp(prefix="bench-ddsp-transfer-")) / "cpu_untrained"
    folder.mkdir()
    torch.manual_seed(0)
    store.write_tensors(folder / store.WEIGHTS, DDSPModel(cfg).state_dict())
    store.write_meta(folder, {"config": cfg, "stats": {"f0_range_hz": [100.0, 1000.0], "loudness_mean_db": -30.0,
                                                       "loudness_max_db": -10.0}})
    return folder


def _timed(fn, *a, **kw):
    t0 = time.perf_counter()
    out = fn(*a, **kw)
    return out, time.perf_counter() - t0


def transfer_stages(inst, x: np.ndarray, sr: int, **feature_kw) -> dict[str, float]:
    """Seconds of each stage of ``inst.revoice`` (time ratio 1), run stage by stage."""
    import torch

    from covermill.instruments.ddsp.train import fill_unvoiced
    from covermill.instruments.features import a_weighted_loudness, extract_controls

    cfg = inst.config
    hop = FEATURE_SR // cfg.frame_rate
    t = {}
    mono, t["resample in (soxr)"] = _timed(resample, x[None], sr_in=sr, sr_out=FEATURE_SR)
    _, t["loudness"] = _timed(a_weighted_loudness, mono[0], sr=FEATURE_SR, hop_length=hop)
    ctl, dt = _timed(extract_controls, x[None], sr=sr, hop_length=hop, **feature_kw)
    t["f0"] = max(0.0, dt - t["resample in (soxr)"] - t["loudness"])
    ctl = inst.adjust(ctl)
    gate = torch.from_numpy(np.convolve(ctl.voiced, np.ones(3) / 3, mode="same").astype(np.float32))[None]
    f0 = torch.from_numpy(fill_unvoiced(ctl.f0_hz, ctl.voiced))[None]
    ld = torch.from_numpy(ctl.loudness_db)[None]
    model = inst.model_
    with torch.no_grad():
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as in render
        _, t["decoder (MLPs + GRU)"] = _timed(model.controls, f0, ld)
        torch.set_num_threads(threads)
        audio, dt = _timed(model.render, f0, ld, gate, generator=torch.Generator().manual_seed(0))
        _, t["reverb (FFT convolution)"] = _timed(model.reverb, audio)
        # render = decoder (1 thread) + synthesis + reverb
        t["synthesis (harmonic + noise, silent spans skipped)"] = max(
            0.0, dt - t["decoder (MLPs + GRU)"] - t["reverb (FFT convolution)"])
    _, t["resample out (soxr)"] = _timed(resample, audio.numpy(), sr_in=cfg.sample_rate, sr_out=sr)
    return t


def bench_transfer(seconds: float, f0_scores_of) -> list[str]:
    """Whole-transfer x realtime on a ``seconds``-long stem, stage times, and the speed-up table."""
    import torch

    from covermill.instruments.ddsp.instrument import DDSPInstrument
    from covermill.instruments.features import FEATURE_SR as FSR
    from covermill.instruments.features import a_weighted_loudness, active_runs, crepe_viterbi

    sr = 44100
    x = vocal_stem(seconds, sr)
    secs = len(x) / sr
    folder = untrained_instrument()
    threads = torch.get_num_threads()
    loads = [os.getloadavg()[0]]
    rows = [f"Stem: {secs:.0f} s of a synthesized vocal-like melody (vibrato, 8 harmonics; 3-8 s phrases, 1-4 s "
            f"rests, noise floor near -100 dBFS) at 44.1 kHz; instrument: `cpu` preset (untrained weights, the "
            f"same compute as a trained one); torch threads: {threads}.", "",
            "| whole transfer (`DDSPInstrument.revoice`) | seconds | x realtime |", "|---|---:|---:|"]
    totals = {}
    for label, kw in [("crepe tiny, fast path, crepe at 50 frames/s (default)", {"f0_method": "crepe"}),
                      ("crepe tiny, fast path, crepe at every frame (100/s)", {"f0_method": "crepe", "crepe_hop": None}),
                      ("crepe tiny, exact path (`exact_f0=True`)", {"f0_method": "crepe", "exact_f0": True}),
                      ("pyin (default: non-silent regions)", {"f0_method": "pyin"})]:
        inst = DDSPInstrument(folder, **kw).load()
        _, dt = _timed(inst.revoice, x[None], sr=sr)
        totals[label] = dt
        loads.append(os.getloadavg()[0])
        rows.append(f"| {label} | {dt:.1f} | **{secs / dt:.1f}x** |" if "default" in label and "crepe" in label
                    else f"| {label} | {dt:.1f} | {secs / dt:.1f}x |")
        print(rows[-1], flush=True)

    inst = DDSPInstrument(folder).load()
    stages = {}
    for label, kw in [("crepe fast, every frame", {"f0_method": "crepe", "crepe_model": "tiny"}), ("pyin", {"f0_method": "pyin"})]:
        stages[label] = transfer_stages(inst, x, sr, **kw)
        loads.append(os.getloadavg()[0])
    names = list(next(iter(stages.values())))
    rows += ["", "Stage by stage (seconds, x realtime):", "",
             "| stage | " + " | ".join(f"f0 by {k}" for k in stages) + " |", "|---|" + "---:|" * len(stages)]
    for n in names:
        rows.append(f"| {n} | " + " | ".join(f"{v[n]:.2f} ({secs / max(v[n], 1e-9):.0f}x)" for v in stages.values())
                    + " |")
    print("\n".join(rows[-len(names) - 2:]), flush=True)

    # speed-ups of the f0 stage, one at a time, with their f0 cost on the section-1 files
    mono = resample(x[None], sr_in=sr, sr_out=FSR)[0]
    loud = a_weighted_loudness(mono, sr=FSR, hop_length=HOP)
    runs = active_runs(loud, silence_db=-70.0)
    share = sum(e - s for s, e in runs) / len(loud)
    from covermill.instruments.features import crepe_f0

    variants = [
        ("torchcrepe.predict, every frame (exact path)", dict(exact=True), {"exact": True}),
        ("+ own framing, conv1d network, banded Viterbi over the whole file, local-average pitch", {},
         {"exact": True, "_fast_full": True}),
        (f"+ only non-silent runs ({share:.0%} of the frames here)", dict(runs=runs), {}),
        ("+ crepe at 50 frames/s, interpolated to 100", dict(runs=runs, crepe_hop=2 * HOP), {"crepe_hop": 2 * HOP}),
    ]
    rows += ["", f"Speed-ups of crepe tiny's f0 stage on the {secs:.0f}-s stem (100 frames/s), cumulative; f0 cost "
             "as raw pitch accuracy / voicing recall / false alarm on vocadito_1 and NightOwl (section 1's files):", "",
             "| f0 stage | seconds | x realtime | vocadito_1 RPA / recall / FA | NightOwl RPA / recall / FA |",
             "|---|---:|---:|---|---|"]
    for label, kw, score_kw in variants:
        torch.manual_seed(0)
        _, dt = _timed(crepe_f0, mono, hop_length=HOP, fmin=40.0, fmax=1200.0, model="tiny", **kw)
        loads.append(os.getloadavg()[0])
        sc = f0_scores_of({"f0_method": "crepe", "crepe_model": "tiny", **score_kw})
        rows.append(f"| {label} | {dt:.1f} | {secs / dt:.1f}x | " + " | ".join(sc) + " |")
        print(rows[-1], flush=True)
    # batch size and threads, fast path
    for bs, th in [(2048, threads), (512, 1 if threads != 1 else 2)]:
        torch.set_num_threads(th)
        _, dt = _timed(crepe_f0, mono, hop_length=HOP, model="tiny", runs=runs, batch_size=bs)
        torch.set_num_threads(threads)
        rows.append(f"| fast path, batch {bs}, {th} torch thread{'s' if th > 1 else ''} | {dt:.1f} | "
                    f"{secs / dt:.1f}x | same | same |")
        print(rows[-1], flush=True)
    # Viterbi alone: librosa's dense 360 x 360 vs the banded search, on 3000 frames of crepe-like observations
    import librosa

    rng = np.random.default_rng(0)
    obs = np.exp(rng.random((3000, 360)) ** 4)
    obs /= obs.sum(1, keepdims=True)
    tr = np.maximum(12 - np.abs(np.subtract.outer(np.arange(360), np.arange(360))), 0).astype(float)
    tr /= tr.sum(1, keepdims=True)
    librosa.sequence.viterbi(obs[:10].T, tr)  # numba compile
    (p_dense, t_dense), (p_band, t_band) = _timed(librosa.sequence.viterbi, obs.T, tr), _timed(crepe_viterbi, obs)
    rows += ["", f"Viterbi decoding of 3000 frames: librosa's dense 360 x 360 search {t_dense:.2f} s, the banded "
             f"search (23 transitions per bin) {t_band:.2f} s ({t_dense / t_band:.1f}x faster, same path: "
             f"{bool(np.array_equal(p_dense, p_band))})."]
    # pyin
    from covermill.instruments.features import extract_controls

    rows += ["", "| pyin f0 stage (extract_controls) | seconds | x realtime | vocadito_1 RPA / recall / FA | "
             "NightOwl RPA / recall / FA |", "|---|---:|---:|---|---|"]
    for label, kw in [("every frame (`exact=True`)", {"exact": True}), ("non-silent runs only (default)", {})]:
        _, dt = _timed(extract_controls, x[None], sr=sr, hop_length=HOP, **kw)
        loads.append(os.getloadavg()[0])
        sc = f0_scores_of({"f0_method": "pyin", **kw})
        rows.append(f"| {label} | {dt:.1f} | {secs / dt:.1f}x | " + " | ".join(sc) + " |")
        print(rows[-1], flush=True)
    rows += ["", f"Load average (1 min) during this section: {min(loads):.1f} to {max(loads):.1f} on "
             f"{os.cpu_count()} cores (other jobs share them, so absolute x realtime is pessimistic; compare "
             "rows of one table)."]
    return rows


def f0_scores_for(kw: dict) -> list[str]:
    """``RPA / recall / FA`` per F0_SETS file for extract_controls(**kw) at the bench's settings."""
    from covermill.instruments import features

    out = []
    fast_full = kw.pop("_fast_full", False)
    for _name, wav, csv in F0_SETS:
        if not wav.exists():
            out.append("-")
            continue
        y, sr = read_audio(wav)
        if fast_full:  # fast crepe over every frame (no region skipping)
            mono = resample(y.mean(axis=0)[None], sr_in=sr, sr_out=FEATURE_SR)[0]
            loud = features.a_weighted_loudness(mono, sr=FEATURE_SR, hop_length=HOP)
            f0, v = features.crepe_f0(mono, hop_length=HOP, fmin=50.0, fmax=1500.0, model="tiny")
            n = min(len(f0), len(loud))
            f0 = np.where((v[:n] > 0) & (loud[:n] > -70.0), f0[:n], 0.0)
        else:
            f0 = extract_controls(y, sr=sr, hop_length=HOP, fmin=50.0, fmax=1500.0, **kw).f0_hz
        sc = f0_scores(csv, f0, FEATURE_SR / HOP)
        out.append(f"{sc['rpa']:.3f} / {sc['recall']:.3f} / {sc['fa']:.3f}")
    return out


def _old_sections(path: Path | None) -> dict[str, str]:
    """``### heading`` -> text of the sections of the current bench block in ``path``."""
    if path is None or not path.exists():
        return {}
    m = re.search(re.escape(START) + "(.*?)" + re.escape(END), path.read_text(), flags=re.S)
    if not m:
        return {}
    parts = re.split(r"^### ", m.group(1), flags=re.M)[1:]
    return {p.split("\n", 1)[0].strip(): p.split("\n", 1)[1].strip("\n") for p in parts}


SECTIONS = ("f0", "training", "transfer")
F0_HEADING = "f0 trackers (100 frames/s, fmin 50 Hz, fmax 1500 Hz; mir_eval)"
TRAIN_HEADING = "Training on the real solo trumpet"
TRANSFER_HEADING = "Transfer speed"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=80, help="training steps (CPU config)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1 is fastest on a shared 2-core machine: 2 s/step vs 10 s with 2 threads)")
    ap.add_argument("--crepe-full", action="store_true", help="also torchcrepe full (about 0.3x realtime on 2 cores)")
    ap.add_argument("--sections", default=",".join(SECTIONS),
                    help="comma-separated sections to run (f0, training, transfer); the others keep their text")
    ap.add_argument("--transfer-seconds", type=float, default=180.0, help="length of the transfer stem")
    ap.add_argument("--write", type=Path, help="markdown file to update")
    args = ap.parse_args(argv)
    sections = [x.strip() for x in args.sections.split(",") if x.strip()]
    if not set(sections) <= set(SECTIONS):
        ap.error(f"--sections: choose from {', '.join(SECTIONS)}")
    if not TRUMPET.exists() or not FIX.exists():
        print(f"skipped: {SHARED} is not here (it sits beside the repository)")
        return 0
    import torch

    torch.set_num_threads(args.threads)
    methods = [("pyin", {"f0_method": "pyin"}), ("torchcrepe tiny", {"f0_method": "crepe", "crepe_model": "tiny"}),
               ("torchcrepe tiny, exact path", {"f0_method": "crepe", "crepe_model": "tiny", "exact": True})]
    if args.crepe_full:
        methods.append(("torchcrepe full", {"f0_method": "crepe", "crepe_model": "full"}))
    old = _old_sections(args.write)
    t_all = time.perf_counter()
    f0_text = train_text = transfer_text = None
    if "f0" in sections:
        f0_text = "\n".join([*bench_f0(methods), "",
                             "medleydb_pitch is left out: its fixture's pitch csv has 2 rows (0.07 s) for 2 s of audio."])
    if "training" in sections:
        train_rows, _path, _tmp = bench_training(args.steps)
        train_text = "\n".join(train_rows)
    if "transfer" in sections:
        transfer_text = "\n".join(bench_transfer(args.transfer_seconds, f0_scores_for))
    total = time.perf_counter() - t_all
    cmd = "python bench/bench_ddsp.py --write docs/BENCHMARKS.md" + (f" --steps {args.steps}" if args.steps != 80 else "")
    if set(sections) != set(SECTIONS):
        cmd += f" --sections {','.join(sections)}"
    kept = [h for h, t in ((F0_HEADING, f0_text), (TRAIN_HEADING, train_text), (TRANSFER_HEADING, transfer_text))
            if t is None]
    note = f" Sections kept from an earlier run: {', '.join(kept)}." if kept else ""
    block = "\n".join([
        START, f"Command: `{cmd}`", "",
        f"{os.cpu_count()} CPU cores shared with other jobs (load average {os.getloadavg()[0]:.1f} at the end: "
        f"timings are pessimistic and noisy), torch {torch.__version__}, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}; this run {total:.0f} s.{note}", "",
        f"### {F0_HEADING}", "", f0_text if f0_text is not None else old.get(F0_HEADING, "(not run)"), "",
        f"### {TRAIN_HEADING}", "", train_text if train_text is not None else old.get(TRAIN_HEADING, "(not run)"), "",
        f"### {TRANSFER_HEADING}", "", transfer_text if transfer_text is not None else old.get(TRANSFER_HEADING,
                                                                                              "(not run)"),
        END,
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
