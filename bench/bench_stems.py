"""Benchmark: stem separation quality (SDR against exact ground truth) and speed.

    make bench   # or: .venv/bin/python bench/bench_stems.py --write docs/BENCHMARKS.md

Material: the Slakh MIDI of ``../shared/data/mirdata_fixtures/slakh/babyslakh_16k/Track00001``
is rendered per instrument with FluidSynth and the FluidR3 General MIDI soundfont (Debian
``fluidsynth`` + ``fluid-soundfont-gm``) and grouped by the track's ``metadata.yaml`` into
drums (``is_drum``), bass (``inst_class: Bass``) and other; vocadito's solo singing (looped)
is the vocals. Several 30 s mixes are cut from different sections of the song, each with the
voice at another offset and gain. Rendered audio is kept in ``out/bench_stems`` for reruns.

Metric: the MUSDB18/MDX "new SDR" per stem and track, ``10 log10(sum s^2 / sum (s - s_hat)^2)``
over the whole (stereo) excerpt, averaged over the mixes. Baseline: the mixture itself used as
every stem (scale 1, the SiSEC "mix" baseline). Speed: x realtime (wall clock and per CPU
second) and peak resident memory (``VmHWM`` of a fresh process per separator, reset before the
timed separation, and its growth over the resident size before it) on a 3-minute stereo 44.1 kHz mix, in the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from covermill import stems  # noqa: E402
from covermill.audio import read_audio, resample, to_stereo  # noqa: E402
from covermill.constants import STEM_NAMES  # noqa: E402
from covermill.stems.demucs import locate  # noqa: E402

SR = 44100
FIXTURES = REPO.parent / "shared" / "data" / "mirdata_fixtures"
TRACK = FIXTURES / "slakh" / "babyslakh_16k" / "Track00001"
VOICE = FIXTURES / "vocadito" / "Audio" / "vocadito_1.wav"
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
WORK = REPO / "out" / "bench_stems"
START, END = "<!-- bench:stems -->", "<!-- /bench:stems -->"
#: (start of the excerpt in the song (s), voice offset (s), voice gain) per mix
MIXES = [(12.0, 0.0, 1.0), (52.0, 7.0, 0.7), (92.0, 14.0, 1.2), (132.0, 21.0, 0.8), (172.0, 3.0, 1.0)]
SECONDS = 30.0


def render_groups() -> dict[str, np.ndarray]:
    """Full-length ``{drums, bass, other}`` float32 (2, n) from the Slakh MIDI, rendered once."""
    if shutil.which("fluidsynth") is None or not SOUNDFONT.is_file():
        sys.exit("needs fluidsynth and the GM soundfont: apt-get install fluidsynth fluid-soundfont-gm (make bench)")
    meta = yaml.safe_load((TRACK / "metadata.yaml").read_text())["stems"]
    WORK.mkdir(parents=True, exist_ok=True)
    groups: dict[str, np.ndarray] = {}
    for midi in sorted((TRACK / "MIDI").glob("S*.mid")):
        info = meta[midi.stem]
        group = "drums" if info["is_drum"] else "bass" if info["inst_class"] == "Bass" else "other"
        wav = WORK / f"{midi.stem}.wav"
        if not wav.is_file():
            subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.4", "-r", str(SR), "-o", "audio.file.format=float",
                            "-F", str(wav), str(SOUNDFONT), str(midi)], check=True, capture_output=True)
        y, _ = sf.read(str(wav), dtype="float32", always_2d=True)
        y = y.T
        if group in groups:
            n = max(groups[group].shape[1], y.shape[1])
            groups[group] = np.pad(groups[group], ((0, 0), (0, n - groups[group].shape[1])))
            groups[group][:, : y.shape[1]] += y
        else:
            groups[group] = y
    return groups


def voice() -> np.ndarray:
    y, sr = read_audio(VOICE)
    y = resample(to_stereo(y), sr_in=sr, sr_out=SR)
    return y / (np.sqrt(np.mean(y**2)) + 1e-9)


def make_mix(groups, vocal, start_s, voice_offset_s, voice_gain, seconds=SECONDS) -> dict[str, np.ndarray]:
    i0, n = int(start_s * SR), int(seconds * SR)
    refs = {}
    for name in ("drums", "bass", "other"):
        g = groups[name]
        refs[name] = np.ascontiguousarray(np.pad(g, ((0, 0), (0, max(0, i0 + n - g.shape[1]))))[:, i0 : i0 + n])
    band_rms = np.sqrt(np.mean(sum(refs.values()) ** 2))
    reps = int(np.ceil((n + voice_offset_s * SR) / vocal.shape[1])) + 1
    v = np.tile(vocal, reps)[:, int(voice_offset_s * SR) : int(voice_offset_s * SR) + n]
    refs["vocals"] = (v * band_rms * 0.8 * voice_gain).astype(np.float32)  # voice ~2 dB under the band
    return {name: refs[name].astype(np.float32) for name in STEM_NAMES}


def sdr(ref: np.ndarray, est: np.ndarray) -> float:
    """MUSDB18/MDX "new SDR" (dB) over the whole signal."""
    num = np.sum(ref.astype(np.float64) ** 2) + 1e-9
    den = np.sum((ref.astype(np.float64) - est) ** 2) + 1e-9
    return float(10 * np.log10(num / den))


def evaluate(separator_factories, mixes) -> dict[str, dict[str, float]]:
    scores: dict[str, dict[str, list[float]]] = {}
    for refs in mixes:
        mix = sum(refs.values())
        for label, factory in separator_factories.items():
            out = {n: mix for n in STEM_NAMES} if factory is None else factory().separate(mix, sr=SR)
            for name in STEM_NAMES:
                scores.setdefault(label, {}).setdefault(name, []).append(sdr(refs[name], out[name]))
    return {label: {n: float(np.mean(v)) for n, v in per.items()} for label, per in scores.items()}


def _vm_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _speed_child(name: str, params: dict, mix_path: str, queue) -> None:
    mix = np.load(mix_path)
    sep = stems.get(name, **params)
    sep.separate(mix[:, : 5 * SR], sr=SR)  # warm-up (numba JIT, model load)
    before = _vm_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    t0, c0 = time.perf_counter(), time.process_time()
    sep.separate(mix, sr=SR)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = _vm_kib("VmHWM")
    queue.put((mix.shape[1] / SR / seconds, mix.shape[1] / SR / cpu, peak / 1024, (peak - before) / 1024))


def speed(name: str, params: dict, mix: np.ndarray) -> tuple[float, float, float, float]:
    """(x realtime by wall clock, audio seconds per CPU second, peak RSS MiB, peak RSS growth MiB during the
    separation) of separating ``mix``, in a fresh process so that peaks are this separator's alone."""
    import multiprocessing as mp
    import tempfile

    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "mix.npy")
        np.save(path, mix)
        queue = ctx.Queue()
        proc = ctx.Process(target=_speed_child, args=(name, params, path, queue))
        proc.start()
        result = queue.get()
        proc.join()
    return result


def random_htdemucs_repo(folder: Path) -> None:
    """A full-size HTDemucs with random weights in a demucs local repo (speed only: its SDR means nothing)."""
    from demucs.htdemucs import HTDemucs
    from demucs.states import get_state, save_with_checksum

    model = HTDemucs(sources=["drums", "bass", "other", "vocals"])
    args, kwargs = model._init_args_kwargs
    save_with_checksum({"klass": HTDemucs, "args": args, "kwargs": kwargs, "state": get_state(model, None)},
                       folder / "00000000.th")
    (folder / "random_htdemucs.yaml").write_text("models: ['00000000']\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", type=Path, help="markdown file to update between the bench:stems markers")
    ap.add_argument("--mixes", type=int, default=len(MIXES), help="how many 30 s mixes (at most 5)")
    ap.add_argument("--model-dir", type=Path, help="Demucs checkpoints (rows for Demucs when found)")
    ap.add_argument("--demucs-seconds", type=float, default=20.0,
                    help="audio for the speed of a full-size random-weight HTDemucs (0: skip)")
    args = ap.parse_args(argv)
    if not TRACK.is_dir():
        sys.exit(f"{TRACK}: missing; the benchmark needs ../shared beside the repository")

    groups = render_groups()
    vocal = voice()
    mixes = [make_mix(groups, vocal, *spec) for spec in MIXES[: args.mixes]]
    specs = {"dsp": ("dsp", {})}
    if locate("htdemucs", args.model_dir) is not None:
        specs["demucs htdemucs"] = ("demucs", {"model": "htdemucs", "model_dir": args.model_dir})
    factories = {"mixture as every stem (baseline)": None,
                 **{label: (lambda n=n, p=p: stems.get(n, **p)) for label, (n, p) in specs.items()}}
    results = evaluate(factories, mixes)
    long_mix = sum(make_mix(groups, vocal, 12.0, 0.0, 1.0, seconds=180.0).values())
    speeds = {label: speed(n, p, long_mix) for label, (n, p) in specs.items()}
    if args.demucs_seconds > 0:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            random_htdemucs_repo(Path(tmp))
            label = f"demucs, full-size HTDemucs with random weights (speed only; {args.demucs_seconds:g} s of the mix)"
            speeds[label] = speed("demucs", {"model": "random_htdemucs", "model_dir": tmp, "device": "cpu"},
                                  long_mix[:, : int(args.demucs_seconds * SR)])

    lines = [
        "Command: `make bench` (or `.venv/bin/python bench/bench_stems.py --write docs/BENCHMARKS.md`)",
        "",
        f"Material: {len(mixes)} mixes x {SECONDS:g} s from Slakh Track00001's MIDI rendered per instrument with "
        "FluidSynth + FluidR3_GM (drums / bass / other by `metadata.yaml`), vocadito_1 singing looped as vocals, "
        f"44.1 kHz stereo. {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPU cores, {time.strftime('%Y-%m-%d')}.",
        "",
        "SDR (dB, MUSDB18 \"new SDR\" per track, mean over the mixes; higher is better):",
        "",
        "| separator | " + " | ".join(STEM_NAMES) + " | mean |",
        "|---|" + "---:|" * (len(STEM_NAMES) + 1),
    ]
    base = float(np.mean(list(results["mixture as every stem (baseline)"].values())))
    for label, per in results.items():
        mean = float(np.mean(list(per.values())))
        lines.append(f"| {label} | " + " | ".join(f"{per[n]:.2f}" for n in STEM_NAMES) + f" | **{mean:.2f}** |")
    lines.append("| *anchor: HT Demucs fine-tuned, MUSDB18-HQ (Demucs README)* | | | | | *9.0* |")
    lines.append("| *anchor: BS-RoFormer, no extra data (arXiv 2309.02612)* | | | | | *9.8* |")
    dsp_mean = float(np.mean(list(results["dsp"].values())))
    lines += ["", f"DSP separator vs baseline: **{dsp_mean - base:+.2f} dB** on average (target +3 dB). "
              "Anchors are on MUSDB18-HQ (real recordings), not on this material: they place the scale, "
              "they are not a like-for-like comparison.", "",
              "Speed on a 3-minute stereo 44.1 kHz mix (same run; CPU, torch's default threads for Demucs):", "",
              "| separator | x realtime (wall) | audio s per CPU s | peak RSS | RSS growth while separating |",
              "|---|---:|---:|---:|---:|"]
    for label, (xrt, xcpu, peak, grow) in speeds.items():
        lines.append(f"| {label} | {xrt:.1f}x | {xcpu:.1f} | {peak:.0f} MiB | {grow:.0f} MiB |")
    lines += ["", f"Load average while this ran: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (wall-clock "
              "speed depends on it; CPU-time speed much less)."]
    if "demucs htdemucs" not in factories:
        lines += ["", "Demucs: no weights on this machine (none can be downloaded here), so no Demucs row; "
                  "`--model-dir` adds one where the checkpoints are."]
    text = "\n".join(lines)
    print(text)
    if args.write:
        doc = args.write.read_text(encoding="utf-8")
        block = f"{START}\n{text}\n{END}"
        if START in doc:
            doc = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, doc, flags=re.S)
        else:
            doc = doc.rstrip("\n") + f"\n\n## Stem separation\n\n{block}\n"
        args.write.write_text(doc, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
