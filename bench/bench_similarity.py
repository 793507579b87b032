"""Chroma similarity (``qa.json`` ``cover_similarity``) before and after the one ``beat_chroma``.

    .venv/bin/python bench/bench_similarity.py --write docs/BENCHMARKS.md [--seconds S] [--synth N] [--variants V]

Until issue 19 the similarity had its own beat chroma (every CQT frame scaled to a maximum of 1,
then the median per beat, frame-level chroma kept when fewer than 4 beats were found); now it
reads :func:`covermill.analysis.rhythm.beat_chroma`, the one cover detection reads (the median
of the raw frames per beat, then each beat scaled to a maximum of 1; 0.5-s pools without a beat
grid). Both then remove the song's mean chroma and compare by DTW over 12 transpositions
(:func:`covermill.analysis.similarity.chroma_similarity`). The old chroma is rebuilt here from
the same memoised CQT chroma and beats, so the two differ only in that normalisation.

Items are ``bench/bench_cover.py``'s: the real recordings of ``../shared/data/librosa_data/``
(up to ``--seconds`` s) and synthesized songs, each with ``--variants`` covers (transposed,
re-timed, EQ, noise; synthesized ones re-instrumented). Reports, before and after: ROC AUC of
cover pairs against non-cover pairs, the lowest cover pair, the highest non-cover pair, the
mean margin of each source's covers over its best non-cover, and the demo's QA numbers
(``covermill render examples/lets_go_fishin.ogg -r pop_to_jazz --excerpt 0:30``: similarity and
the unrelated reference's floor), read from two ``qa.json`` files when given.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import date
from pathlib import Path

import librosa
import numpy as np
from _markdown import write_section  # noqa: E402  (bench/ is the script's folder)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import bench_cover  # noqa: E402
from bench_cover import build_items, roc_auc  # noqa: E402

from covermill.analysis import rhythm  # noqa: E402
from covermill.analysis.similarity import chroma_similarity  # noqa: E402


def old_beat_chroma(y: np.ndarray, *, sr: int) -> np.ndarray:
    """The similarity's own beat chroma before issue 19 (frames max-normalised, then the beat median)."""
    mono = rhythm.analysis_mono(y, sr=sr)
    chroma = librosa.util.normalize(rhythm.cqt_chroma(mono, sr=rhythm.ANALYSIS_SR, hop_length=rhythm.CHROMA_HOP),
                                    norm=np.inf, axis=-2)
    beats = rhythm.track_beats(mono, sr=rhythm.ANALYSIS_SR)
    frames = librosa.time_to_frames(beats.times_s, sr=rhythm.ANALYSIS_SR, hop_length=rhythm.CHROMA_HOP)
    frames = frames[(frames > 0) & (frames < chroma.shape[1])]
    if len(frames) >= 4:
        chroma = librosa.util.sync(chroma, frames, aggregate=np.median)
    return chroma.astype(np.float32)


def scores(items: list[dict], key: str) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    s, labels, pairs = [], [], []
    for i, a in enumerate(items):
        for j in range(i + 1, len(items)):
            b = items[j]
            if a["kind"] == "cover" and b["kind"] == "cover" and a["source"] == b["source"]:
                continue  # two covers of one song: neither is the original
            s.append(chroma_similarity(a[key], b[key]))
            labels.append(a["source"] == b["source"])
            pairs.append((i, j))
    return np.array(s), np.array(labels), pairs


def summary(items, key) -> dict:
    s, labels, pairs = scores(items, key)
    margins = []
    for sid in sorted({it["source"] for it in items}):
        mine = [k for k, (i, j) in enumerate(pairs) if labels[k] and items[i]["source"] == sid]
        other = [k for k, (i, j) in enumerate(pairs) if not labels[k] and sid in (items[i]["source"], items[j]["source"])
                 and "source" in (items[i]["kind"], items[j]["kind"])]
        if mine and other:
            margins.append(float(np.min(s[mine]) - np.max(s[other])))
    return {"auc": roc_auc(s, labels), "min_cover": float(s[labels].min()), "max_noncover": float(s[~labels].max()),
            "mean_margin": float(np.mean(margins)), "n_cover": int(labels.sum()), "n_non": int((~labels).sum())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0, help="longest excerpt of a real song (s)")
    ap.add_argument("--synth", type=int, default=4, help="synthesized source songs")
    ap.add_argument("--variants", type=int, default=2, help="covers per source")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--demo-before", type=Path, help="qa.json of the demo render before")
    ap.add_argument("--demo-after", type=Path, help="qa.json of the demo render after")
    ap.add_argument("--write", type=Path, help="markdown file to update")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    old: dict[int, np.ndarray] = {}
    features = bench_cover.cover.features

    def both(y, *, sr):  # the old chroma from the same memoised CQT chroma and beats as the new
        feats = features(y, sr=sr)
        old[id(feats)] = old_beat_chroma(y, sr=sr)
        return feats

    bench_cover.cover.features = both
    try:
        items = build_items(args)
    finally:
        bench_cover.cover.features = features
    for it in items:
        it["old"] = old[id(it["feats"])]
    print(f"{len(items)} items in {time.perf_counter() - t0:.0f} s")
    rows = {}
    for label, key in (("before (own beat chroma)", "old"), ("after (rhythm.beat_chroma)", "new")):
        if key == "new":
            for it in items:
                it["new"] = it["feats"].chroma
        rows[label] = summary(items, key)
    body = [f"Command: `.venv/bin/python bench/bench_similarity.py --seconds {args.seconds:g} --synth {args.synth} "
            f"--variants {args.variants} --write docs/BENCHMARKS.md` ({platform.machine()}, 2 shared CPU cores, "
            f"{date.today().isoformat()}). Items: `bench/bench_cover.py`'s sources and covers; "
            f"{rows[next(iter(rows))]['n_cover']} cover pairs, {rows[next(iter(rows))]['n_non']} non-cover pairs.",
            "", "| beat chroma | ROC AUC | lowest cover pair | highest non-cover pair | mean margin per source |",
            "|---|---:|---:|---:|---:|"]
    for label, r in rows.items():
        body.append(f"| {label} | {r['auc']:.3f} | {r['min_cover']:.3f} | {r['max_noncover']:.3f} | "
                    f"{r['mean_margin']:+.3f} |")
    if args.demo_before and args.demo_after:
        a, b = (json.loads(p.read_text()) for p in (args.demo_before, args.demo_after))
        body += ["", "Demo (`covermill render examples/lets_go_fishin.ogg -r pop_to_jazz --no-cache --excerpt 0:30`): "
                 f"similarity {a['cover_similarity']} -> {b['cover_similarity']}, unrelated floor "
                 f"{a['cover_similarity_floor']} -> {b['cover_similarity_floor']}, margin "
                 f"{a['cover_similarity_margin']} -> {b['cover_similarity_margin']}; Qmax {a['cover']['qmax']} -> "
                 f"{b['cover']['qmax']} (cover detection's chroma did not change), `cover.wav` identical."]
    text = "\n".join(body)
    print(text)
    if args.write:
        write_section(args.write, "similarity", text, heading="Chroma similarity: one beat chroma (issue 19)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
