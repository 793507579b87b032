"""Cover-detection benchmark: Qmax and 2DFTM on covers made here from real and synthesized songs.

    .venv/bin/python bench/bench_cover.py --write docs/BENCHMARKS.md

Sources: the real recordings of ``../shared/data/librosa_data/`` (both sub-folders; the
non-commercial ones are only read here, never copied) cut to at most ``--seconds`` s, and
synthesized songs (random diatonic progressions, melody, bass, drums). Each source gets
``--variants`` covers: transposed ±1..4 semitones and re-timed ±5..25 % (Rubber Band via
pedalboard), EQ'd (shelves and a peak, ±9 dB), with noise (SNR 12..30 dB) and a shifted
start; synthesized covers are also re-instrumented (other harmonic spectra). Negatives:
every source against every other source's covers and against the other sources.

Reports, for Qmax and 2DFTM: binary accuracy at a threshold calibrated on half of the
sources and tested on the other half (2-fold by source, both directions averaged), ROC
AUC, MAP (each source queries all other items), the triplet accuracy of Bertin-Mahieux &
Ellis's binary task (is the cover closer than a random non-cover), kNN clique accuracy
(2DFTM, leave one out), seconds per pair with cached features, and the threshold
calibrated on all pairs (the value for ``covermill/analysis/cover.py``).
"""

from __future__ import annotations

import argparse
import pickle
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pedalboard
from _markdown import write_section  # noqa: E402  (bench/ is the script's folder)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from covermill.analysis import cover  # noqa: E402
from covermill.analysis.cliques import average_precision, evaluate_knn  # noqa: E402
from covermill.audio import load_audio  # noqa: E402

SR = 22050
DATA = REPO.parent / "shared" / "data" / "librosa_data"


def synth_song(seed: int, *, seconds: float, timbre: int = 0, transpose: int = 0, bpm: float | None = None) -> np.ndarray:
    """A mono song: random diatonic 8-chord progression, melody, bass, hi-hat; timbre picks the spectra."""
    rng = np.random.default_rng(seed)
    key = int(rng.integers(0, 12)) + transpose
    bpm = bpm or float(rng.uniform(80, 140))
    scale = np.array([0, 2, 4, 5, 7, 9, 11])
    degrees = rng.integers(0, 7, size=8)
    beat = 60.0 / bpm
    n_beats = int(seconds / beat)
    n = int(n_beats * beat * SR) + SR
    y = np.zeros(n, np.float32)
    melody = rng.integers(0, 7, size=64)
    spectra = [lambda k: 1.0 / k, lambda k: (k % 2) / k, lambda k: 1.0 / k**2, lambda k: float(k <= 2)]
    lead_amp, pad_amp = spectra[timbre % 4], spectra[(timbre + 1) % 4]

    def note(midi: float, start: float, dur: float, amp: float, spectrum) -> None:
        i, m = int(start * SR), int(dur * SR)
        t = np.arange(m) / SR
        f = 440.0 * 2 ** ((midi - 69) / 12)
        env = np.minimum(1.0, np.minimum(t / 0.01, (dur - t) / 0.05)).clip(0) * np.exp(-t * (1.5 + timbre))
        x = sum(spectrum(k) * np.sin(2 * np.pi * k * f * t) for k in range(1, 8) if k * f < SR / 2)
        y[i : i + m] += (amp * env * x).astype(np.float32)[: n - i]

    for b in range(n_beats):
        chord = degrees[(b // 4) % 8]
        root = 48 + key + scale[chord]
        third, fifth = 48 + key + scale[(chord + 2) % 7], 48 + key + scale[(chord + 4) % 7]
        if b % 4 == 0:
            for p in (root, third + 12 * (third < root), fifth + 12 * (fifth < root)):
                note(p + 12, b * beat, 4 * beat, 0.08, pad_amp)
        note(root - 12, b * beat, beat, 0.25, spectra[0])
        deg = int(melody[b % 64]) if b % 2 == 0 else int(melody[(b + 1) % 64])
        note(72 + key + scale[deg % 7], b * beat, beat * 0.9, 0.2, lead_amp)
        k = int(b * beat * SR)
        hat = rng.standard_normal(int(0.02 * SR)) * np.exp(-np.linspace(0, 6, int(0.02 * SR)))
        y[k : k + len(hat)] += 0.15 * hat.astype(np.float32)[: n - k]
    return y / max(float(np.max(np.abs(y))), 1e-9) * 0.7


def make_cover(y: np.ndarray, rng: np.random.Generator, *, semitones: int, time_ratio: float) -> np.ndarray:
    """Transpose, re-time, EQ, add noise, shift the start."""
    start = int(rng.uniform(0, 4) * SR)
    y = np.ascontiguousarray(y[None, start:], dtype=np.float32)
    y = pedalboard.time_stretch(y, float(SR), stretch_factor=float(time_ratio),
                                pitch_shift_in_semitones=float(semitones), high_quality=False)
    board = pedalboard.Pedalboard([
        pedalboard.LowShelfFilter(cutoff_frequency_hz=200, gain_db=float(rng.uniform(-9, 9))),
        pedalboard.HighShelfFilter(cutoff_frequency_hz=4000, gain_db=float(rng.uniform(-9, 9))),
        pedalboard.PeakFilter(cutoff_frequency_hz=float(rng.uniform(300, 3000)), gain_db=float(rng.uniform(-6, 6)), q=1.0),
    ])
    y = board(y, SR)[0]
    snr_db = rng.uniform(12, 30)
    noise = rng.standard_normal(len(y)).astype(np.float32)
    noise *= np.sqrt(np.mean(y**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return (y + noise).astype(np.float32)


def random_params(rng: np.random.Generator) -> tuple[int, float]:
    semitones = int(rng.choice([-1, 1]) * rng.integers(1, 5))
    time_ratio = float(1 + rng.choice([-1, 1]) * rng.uniform(0.05, 0.25))
    return semitones, time_ratio


def build_items(args) -> list[dict]:
    """Every item: name, source id, kind ('source'|'cover'), features."""
    rng = np.random.default_rng(args.seed)
    sources: list[tuple[str, np.ndarray]] = []
    if DATA.exists():
        for path in sorted(DATA.glob("*/*.ogg")):
            y = load_audio(path, sr=SR, stereo=False, min_duration_s=0.1).mean(axis=0)
            if len(y) < 15 * SR:
                print(f"skip {path.name}: {len(y) / SR:.1f} s is too short for a beat-level comparison")
                continue
            sources.append((path.stem.split("__")[-1][:28], y[: int(args.seconds * SR)]))
    else:
        print(f"{DATA} is absent: synthesized songs only")
    for s in range(args.synth):
        sources.append((f"synth-{s}", synth_song(100 + s, seconds=args.seconds * 0.75)))
    items = []
    for sid, (name, y) in enumerate(sources):
        t0 = time.perf_counter()
        items.append({"name": name, "source": sid, "kind": "source", "feats": cover.features(y, sr=SR)})
        for v in range(args.variants):
            semitones, ratio = random_params(rng)
            if name.startswith("synth-"):  # re-instrumented: the song rendered with other spectra
                base = synth_song(100 + int(name.split("-")[1]), seconds=args.seconds * 0.75, timbre=1 + v)
            else:
                base = y
            c = make_cover(base, rng, semitones=semitones, time_ratio=ratio)
            items.append({"name": f"{name} v{v} ({semitones:+d} st, x{ratio:.2f})", "source": sid, "kind": "cover",
                          "feats": cover.features(c, sr=SR)})
        print(f"{name:<30} {len(y) / SR:5.1f} s  {1 + args.variants} items in {time.perf_counter() - t0:.1f} s")
    return items


SLAKH = REPO.parent / "shared" / "data" / "mirdata_fixtures" / "slakh" / "babyslakh_16k"
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")


def _slakh_midi(track: Path):
    import mido

    if (track / "all_src.mid").exists():
        return mido.MidiFile(track / "all_src.mid")
    parts = [mido.MidiFile(f) for f in sorted((track / "MIDI").glob("*.mid"))]
    if not parts or len({p.ticks_per_beat for p in parts}) != 1:
        return None
    merged = mido.MidiFile(type=1, ticks_per_beat=parts[0].ticks_per_beat)
    for p in parts:
        merged.tracks.extend(p.tracks)
    return merged


def _fluidsynth(mid, seconds: float, tmp: Path) -> np.ndarray:
    import subprocess

    import soundfile as sf

    path, wav = tmp / "x.mid", tmp / "x.wav"
    mid.save(path)
    subprocess.run(["fluidsynth", "-ni", "-q", "-F", str(wav), "-r", str(SR), str(SOUNDFONT), str(path)],
                   check=True, capture_output=True)
    y, _ = sf.read(wav, dtype="float32", always_2d=True)
    y = y.mean(axis=1)
    start = int(np.argmax(np.abs(y) > 1e-3))  # skip the MIDI's leading silence
    return y[start : start + int(seconds * SR)]


def midi_items(first_source: int, args, rng: np.random.Generator) -> list[dict]:
    """Slakh MIDI rendered with FluidSynth; covers re-instrumented (other GM programs), transposed
    and re-timed in the MIDI itself."""
    import copy
    import shutil
    import tempfile

    if not SLAKH.exists() or not SOUNDFONT.exists() or shutil.which("fluidsynth") is None:
        print("no Slakh MIDI, FluidR3_GM soundfont or fluidsynth: MIDI covers skipped")
        return []
    out = []
    with tempfile.TemporaryDirectory(prefix="bench-midi-") as tmp:
        for track in sorted(SLAKH.glob("Track*")):
            mid = _slakh_midi(track)
            if mid is None:
                continue
            sid = first_source + len({it["source"] for it in out})
            t0 = time.perf_counter()
            out.append({"name": f"slakh-{track.name}", "source": sid, "kind": "source",
                        "feats": cover.features(_fluidsynth(mid, args.seconds, Path(tmp)), sr=SR)})
            for v in range(args.variants):
                semitones, ratio = random_params(rng)
                var = copy.deepcopy(mid)
                for t in var.tracks:
                    for msg in t:
                        if msg.type in ("note_on", "note_off") and msg.channel != 9:
                            msg.note = int(np.clip(msg.note + semitones, 0, 127))
                        elif msg.type == "program_change" and msg.channel != 9:
                            msg.program = int(rng.integers(0, 96))
                        elif msg.type == "set_tempo":
                            msg.tempo = int(round(msg.tempo / ratio))
                y = _fluidsynth(var, args.seconds / ratio, Path(tmp))
                out.append({"name": f"slakh-{track.name} v{v} ({semitones:+d} st, x{ratio:.2f}, GM programs)",
                            "source": sid, "kind": "cover", "feats": cover.features(y, sr=SR)})
            print(f"slakh-{track.name:<24} {1 + args.variants} items in {time.perf_counter() - t0:.1f} s")
    return out


def recipe_items(items: list[dict], args) -> list[dict]:
    """Covers rendered by covermill itself (each recipe over each real source excerpt)."""
    import tempfile

    import soundfile as sf

    from covermill.automation.pipeline import render
    from covermill.recipes import load_recipe

    out = []
    source_of = {it["name"]: it for it in items if it["kind"] == "source"}
    with tempfile.TemporaryDirectory(prefix="bench-cover-") as tmp:
        for path in sorted(DATA.glob("*/*.ogg")):
            it = source_of.get(path.stem.split("__")[-1][:28])
            if it is None:
                continue
            src = Path(tmp) / f"src{it['source']}.wav"
            sf.write(src, load_audio(path, sr=SR, stereo=False)[0][: int(args.seconds * SR)], SR)
            for name in args.recipes:
                t0 = time.perf_counter()
                res = render(src, load_recipe(name), Path(tmp) / f"out{it['source']}-{name}")
                y = load_audio(res.cover, sr=SR, stereo=False)[0]
                out.append({"name": f"{it['name']} {name}", "source": it["source"], "kind": "cover",
                            "feats": cover.features(y, sr=SR)})
                print(f"{it['name']:<30} {name:<14} rendered in {time.perf_counter() - t0:.1f} s")
    return out


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """Threshold (score >= t is a cover) of the best balanced accuracy; midpoint between neighbours."""
    cands = np.unique(scores)
    mids = np.concatenate([[cands[0] - 1e-6], (cands[1:] + cands[:-1]) / 2, [cands[-1] + 1e-6]])
    bal = [balanced_accuracy(scores, labels, t) for t in mids]
    return float(mids[int(np.argmax(bal))])


def balanced_accuracy(scores, labels, t) -> float:
    pred = scores >= t
    return 0.5 * (float(np.mean(pred[labels == 1])) + float(np.mean(~pred[labels == 0])))


def accuracy(scores, labels, t) -> float:
    return float(np.mean((scores >= t) == (labels == 1)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="longest excerpt of a real song (s)")
    ap.add_argument("--synth", type=int, default=8, help="synthesized source songs")
    ap.add_argument("--variants", type=int, default=4, help="covers per source")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write", type=Path, help="markdown file to update")
    ap.add_argument("--recipes", default="pop_to_jazz",
                    help="covermill recipes whose renders of every real source are covers too ('' for none)")
    ap.add_argument("--items", type=Path, help="pickle of the computed features: reused when it exists")
    args = ap.parse_args(argv)
    args.recipes = [r for r in args.recipes.split(",") if r]

    t0 = time.perf_counter()
    if args.items and args.items.exists():
        with open(args.items, "rb") as fh:
            items, feat_s = pickle.load(fh)
    else:
        items = build_items(args)
        feat_s = time.perf_counter() - t0
        if args.items:
            with open(args.items, "wb") as fh:
                pickle.dump((items, feat_s), fh)
    midi_cache = args.items.with_suffix(".midi.pkl") if args.items else None
    if midi_cache and midi_cache.exists():
        with open(midi_cache, "rb") as fh:
            midis = pickle.load(fh)
    else:
        midis = midi_items(1 + max(it["source"] for it in items), args, np.random.default_rng(args.seed + 1))
        if midi_cache:
            with open(midi_cache, "wb") as fh:
                pickle.dump(midis, fh)
    n_items = len(items) + len(midis)
    items = items + midis
    n_rendered = 0
    if args.recipes:
        cache = args.items.with_suffix(".recipes.pkl") if args.items else None
        if cache and cache.exists():
            with open(cache, "rb") as fh:
                rendered = pickle.load(fh)
        else:
            rendered = recipe_items(items, args)
            if cache:
                with open(cache, "wb") as fh:
                    pickle.dump(rendered, fh)
        items, n_rendered = items + rendered, len(rendered)
    sources = [i for i, it in enumerate(items) if it["kind"] == "source"]
    pairs, labels = [], []
    for q in sources:
        for j, it in enumerate(items):
            if j == q or (it["kind"] == "source" and j < q):
                continue
            pairs.append((q, j))
            labels.append(int(items[q]["source"] == it["source"]))
    labels = np.array(labels)
    qm, dist, q_s, d_s = [], [], 0.0, 0.0
    for q, j in pairs:
        a, b = items[q]["feats"], items[j]["feats"]
        t = time.perf_counter()
        qm.append(cover.qmax(a.chroma, b.chroma))
        q_s += time.perf_counter() - t
        t = time.perf_counter()
        dist.append(cover.twodftm_distance(a, b))
        d_s += time.perf_counter() - t
    scores = {"Qmax": np.array(qm), "2DFTM": -np.array(dist)}  # higher = more of a cover
    n_src = len(sources)
    fold = np.array([items[q]["source"] % 2 for q, _ in pairs])
    rows = []
    for method, s in scores.items():
        cv, cv_bal = [], []
        for f in (0, 1):
            t = best_threshold(s[fold == f], labels[fold == f])
            cv.append(accuracy(s[fold != f], labels[fold != f], t))
            cv_bal.append(balanced_accuracy(s[fold != f], labels[fold != f], t))
        thr = best_threshold(s, labels)
        aps, trip = [], []
        for q in sources:
            mask = np.array([p[0] == q for p in pairs])
            aps.append(average_precision(s[mask], labels[mask]))
            pos, neg = s[mask & (labels == 1)], s[mask & (labels == 0)]
            trip.append(float(np.mean(pos[:, None] > neg[None, :])))
        per_pair = (q_s if method == "Qmax" else d_s) / len(pairs)
        rows.append((method, np.mean(cv), np.mean(cv_bal), accuracy(s, labels, thr), roc_auc(s, labels), np.mean(aps), np.mean(trip),
                     per_pair, thr if method == "Qmax" else -thr))
    X = np.stack([it["feats"].twodftm for it in items])
    y = np.array([it["source"] for it in items])
    knn = {k: evaluate_knn(X, y, n_neighbors=k) for k in (1, 3, 5)}
    best_k = max(knn, key=lambda k: knn[k]["accuracy"])
    knn_pca = evaluate_knn(X, y, n_neighbors=best_k, pca_components=50)

    # a 3-minute pair: Let's Go Fishin' (133 s) tiled to 180 s against its cover
    long_row = ""
    fishin = DATA / "cc_by_or_pd" / "Karissa_Hobbs_-_Lets_Go_Fishin.hq.ogg"
    if fishin.exists():
        y = load_audio(fishin, sr=SR, stereo=False).mean(axis=0)
        y = np.concatenate([y, y])[: 180 * SR]
        c = make_cover(y, np.random.default_rng(1), semitones=-2, time_ratio=0.85)
        t = time.perf_counter()
        fa, fb = cover.features(y, sr=SR), cover.features(c, sr=SR)
        t_feat = time.perf_counter() - t
        t = time.perf_counter()
        res = cover.compare_features(fa, fb)
        t_cmp = time.perf_counter() - t
        long_row = (f"3-minute pair (Let's Go Fishin' looped to 180 s vs its -2 st, x0.85 cover; {fa.chroma.shape[1]} and "
                    f"{fb.chroma.shape[1]} beats): features {t_feat:.1f} s for both, compare {t_cmp:.3f} s with features "
                    f"cached; qmax {res['qmax']}, 2DFTM distance {res['twodftm_distance']}.")

    n_pos, n_neg = int(labels.sum()), int((1 - labels).sum())
    lines = [
        f"{n_src} sources ({sum(not items[q]['name'].startswith(('synth-', 'slakh-')) for q in sources)} real from "
        f"`../shared/data/librosa_data/`, up to {args.seconds:g} s; {args.synth} synthesized; {len(midis) // (1 + args.variants)} "
        f"Slakh MIDI rendered with FluidSynth, covers re-instrumented with random GM programs), {args.variants} covers each "
        f"(±1..4 st, ±5..25 % tempo, EQ, noise 12..30 dB SNR, shifted start; synthesized covers re-instrumented)"
        f"{f', plus {n_rendered} covers rendered by covermill (recipes ' + ', '.join(args.recipes) + ') of the real sources' if n_rendered else ''}; "
        f"{n_pos} cover pairs, {n_neg} non-cover pairs. Features for the first {n_items - len(midis)} items: {feat_s:.0f} s. "
        f"{platform.processor() or platform.machine()}, 2 shared CPU cores, Python {platform.python_version()}, {date.today()}.",
        "",
        "| method | binary accuracy (2-fold CV) | balanced accuracy (2-fold CV) | accuracy, all-data threshold | ROC AUC | MAP | triplet accuracy | s / pair (cached) | calibrated threshold |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for method, cv, cv_bal, acc, auc, mapv, trip, per_pair, thr in rows:
        rule = "qmax >=" if method == "Qmax" else "distance <="
        lines.append(f"| {method} | {cv:.3f} | {cv_bal:.3f} | {acc:.3f} | {auc:.3f} | {mapv:.3f} | {trip:.3f} | {per_pair:.4f} | {rule} {thr:.3f} |")
    lines += [
        "",
        "2DFTM + kNN cliques (each source and its covers = one clique, leave one out): "
        + ", ".join(f"k={k}: accuracy {v['accuracy']:.3f}, MAP {v['map']:.3f}" for k, v in knn.items())
        + f" (best k={best_k}); with PCA to 50 dimensions as in Bertin-Mahieux & Ellis, k={best_k}: accuracy "
        f"{knn_pca['accuracy']:.3f}, MAP {knn_pca['map']:.3f}.",
    ]
    if long_row:
        lines += ["", long_row]
    table = "\n".join(lines)
    print(table)
    if args.write:
        cmd = "`.venv/bin/python bench/bench_cover.py --write docs/BENCHMARKS.md`"
        write_section(args.write, "cover", f"Command: {cmd}\n\n{table}", heading="Cover detection")
        print(f"\nwritten to {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
