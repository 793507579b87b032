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


MEMORY_MINUTES = (5, 20, 60)
#: input + 4 stems, float32 stereo at 44.1 kHz: the memory any in-memory separation needs, MiB per minute
UNAVOIDABLE_MIB_PER_MIN = 5 * 2 * 4 * SR * 60 / 2**20


def synth_song(path: Path, minutes: float, *, block_s: float = 10.0) -> Path:
    """``minutes`` of seeded stereo 44.1 kHz 16-bit WAV (chords, bass, clicks, noise), written block by block."""
    rng = np.random.default_rng(0)
    n_block = int(block_s * SR)
    t = np.arange(n_block) / SR
    with sf.SoundFile(str(path), "w", samplerate=SR, channels=2, subtype="PCM_16") as f:
        for _ in range(int(np.ceil(minutes * 60 / block_s))):
            root = 110 * 2 ** (rng.integers(0, 12) / 12)
            y = sum(0.08 * np.sin(2 * np.pi * root * r * t + rng.uniform(0, 6)) for r in (1, 1.25, 1.5, 2, 3))
            y = y + 0.15 * np.sin(2 * np.pi * root / 2 * t)
            clicks = np.zeros(n_block)
            clicks[:: SR // 2] = 0.6
            y = y + np.convolve(clicks, np.exp(-np.arange(800) / 80), mode="same")
            stereo = np.stack([y, y]) + 0.02 * rng.standard_normal((2, n_block))
            f.write((0.5 * stereo).T.astype(np.float32))
    return path


def tiny_htdemucs_repo(folder: Path) -> None:
    """The tests' tiny HTDemucs (2 s segments) as model ``tiny`` in a demucs local repo: memory, not quality."""
    import torch
    from demucs.htdemucs import HTDemucs
    from demucs.states import get_state, save_with_checksum

    torch.manual_seed(0)
    model = HTDemucs(sources=["drums", "bass", "other", "vocals"], channels=8, depth=4, t_layers=1, t_heads=1,
                     bottom_channels=0, dconv_comp=4, segment=2)
    args, kwargs = model._init_args_kwargs
    save_with_checksum({"klass": HTDemucs, "args": args, "kwargs": kwargs, "state": get_state(model, None)},
                       folder / "71170000.th")
    (folder / "tiny.yaml").write_text("models: ['71170000']\n")


def peak_rss_mib(cmd: list[str], env: dict | None = None) -> tuple[float, float]:
    """(peak RSS MiB, wall seconds) of ``cmd`` run under ``/usr/bin/time -v``."""
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return int(m.group(1)) / 1024, wall


def memory(minutes=MEMORY_MINUTES, *, demucs_minutes=MEMORY_MINUTES, keep: Path | None = None) -> str:
    """Peak RSS of ``covermill stems`` (a fresh process each) on synthesized songs of ``minutes``; Markdown."""
    import tempfile

    rows, per = [], {}
    with tempfile.TemporaryDirectory(dir=keep) as tmp:
        tmp = Path(tmp)
        base = [sys.executable, "-m", "covermill.cli", "stems", "--no-cache", "--format", "wav"]
        configs = {"dsp": ["--separator", "dsp"]}
        if demucs_minutes:
            tiny_htdemucs_repo(tmp)
            configs["demucs, tiny HTDemucs, CPU"] = ["--separator", "demucs", "--model", "tiny", "--model-dir",
                                                     str(tmp), "--device", "cpu"]
        idle, _ = peak_rss_mib([sys.executable, "-c", "import covermill.cli, numpy, scipy, librosa, soundfile"])
        for m in sorted({*minutes, *demucs_minutes}):
            song = synth_song(tmp / f"song_{m:g}min.wav", m)
            for label, extra in configs.items():
                if m not in (demucs_minutes if label.startswith("demucs") else minutes):
                    continue
                # one torch thread: on a shared 2-core machine torch's default threads run 4x slower
                env = {"OMP_NUM_THREADS": "1"} if label.startswith("demucs") else None
                peak, wall = peak_rss_mib([*base, str(song), "-o", str(tmp / "out"), *extra], env)
                shutil.rmtree(tmp / "out", ignore_errors=True)
                per.setdefault(label, []).append((m, peak))
                unavoidable = m * UNAVOIDABLE_MIB_PER_MIN
                rows.append(f"| {label} | {m:g} min | {peak:.0f} MiB | {unavoidable:.0f} MiB | "
                            f"{peak / unavoidable:.2f} | {wall:.0f} s |")
                print(rows[-1], flush=True)
            song.unlink()
    lines = ["| separator | song | peak RSS | input + 4 stems (float32) | ratio | wall |", "|---|---:|---:|---:|---:|---:|",
             *rows, "", "Growth of the peak with the song's length (least-squares slope over the lengths), against "
             f"the unavoidable {UNAVOIDABLE_MIB_PER_MIN:.0f} MiB per minute (input + 4 stems, float32 stereo):", ""]
    for label, pts in per.items():
        x, y = np.array(pts).T
        slope = float(np.polyfit(x, y, 1)[0]) if len(pts) > 1 else float("nan")
        lines.append(f"- {label}: {slope:.0f} MiB per minute of audio "
                     f"({slope / UNAVOIDABLE_MIB_PER_MIN:.2f}x the unavoidable)")
    lines += ["", f"Interpreter and libraries alone (imports only): {idle:.0f} MiB peak RSS."]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", type=Path, help="markdown file to update between the bench:stems markers")
    ap.add_argument("--mixes", type=int, default=len(MIXES), help="how many 30 s mixes (at most 5)")
    ap.add_argument("--model-dir", type=Path, help="Demucs checkpoints (rows for Demucs when found)")
    ap.add_argument("--demucs-seconds", type=float, default=20.0,
                    help="audio for the speed of a full-size random-weight HTDemucs (0: skip)")
    ap.add_argument("--memory", action="store_true",
                    help="only the memory section: peak RSS of `covermill stems` on 5/20/60-minute songs")
    ap.add_argument("--minutes", type=float, nargs="+", default=list(MEMORY_MINUTES), help="song lengths for --memory")
    ap.add_argument("--demucs-minutes", type=float, nargs="*", default=list(MEMORY_MINUTES),
                    help="song lengths for --memory with the tiny Demucs on CPU (none: DSP only)")
    args = ap.parse_args(argv)
    if args.memory:
        return memory_main(args)
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


def memory_main(args) -> int:
    from _markdown import write_section

    table = memory(args.minutes, demucs_minutes=args.demucs_minutes)
    minutes = " ".join(f"{m:g}" for m in args.minutes)
    demucs_minutes = " ".join(f"{m:g}" for m in args.demucs_minutes)
    text = "\n".join([
        f"Command: `.venv/bin/python bench/bench_stems.py --memory --minutes {minutes} --demucs-minutes "
        f"{demucs_minutes} --write docs/BENCHMARKS.md`",
        "",
        "Peak resident memory (`/usr/bin/time -v`, whole process) of `covermill stems SONG -o DIR --no-cache` "
        "(decode, separate, write 4 float32 WAV stems) on synthesized stereo 44.1 kHz 16-bit WAV songs; the "
        "tiny HTDemucs is the tests' (2 s segments, random weights; memory, not quality) on one torch thread; "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPU cores, "
        f"{time.strftime('%Y-%m-%d')}.",
        "",
        table,
    ])
    print(text)
    if args.write:
        write_section(args.write, "stems_memory", text, heading="Stem separation: memory on long songs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
