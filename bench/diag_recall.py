"""Where a cover's pitch-class recall is lost: the cover and each of its stems, scored by the score's roles.

    .venv/bin/python bench/diag_recall.py [--recipes a,b|FILE] [--songs 0,1,...] [--runs DIR] [--only STEM,...]

Renders each regular ground-truth song (``bench/groundtruth.py``, first 20 s, as
``bench/bench_covers.py``) with each recipe into ``--runs`` (kept: a second call rescores without
rendering), then transcribes ``cover.wav`` and every ``cover_stems/*.wav`` (or only ``--only``)
with basic-pitch and splits pitch-class recall by what the score plays at that moment: the
chord's root, third, fifth and seventh, the melody's non-chord tones and the bass; ``q0..q3`` is
the recall of the chord tones in each quarter of every chord (a decaying or dipping harmony
loses the later quarters), ``union`` the recall of all stems each transcribed alone (what the
mix masks is ``union - cover``). Prints one line per render and stem and saves
``diag.json`` in each render's folder; ``--summary`` prints the means of saved results.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_covers as bc  # noqa: E402
import groundtruth as gt  # noqa: E402
import numpy as np  # noqa: E402
import scoring  # noqa: E402

from covermill.audio import load_audio  # noqa: E402
from covermill.automation.pipeline import render  # noqa: E402
from covermill.leadsheet import CHORD_INTERVALS  # noqa: E402
from covermill.recipes import load_recipe  # noqa: E402

FPS = scoring.FPS
ROLES = ("root", "third", "fifth", "seventh", "mel_nct", "bass")
KEYS = ("P", "R", "mel", *ROLES, "q0", "q1", "q2", "q3")


def role_masks(score, n: int):
    """``(masks per role (12, n), chord quarter per frame (-1 outside chords), chord tones, melody)``."""
    m = {r: np.zeros((12, n), bool) for r in ROLES}
    quarter = np.full(n, -1)
    for c in score.chords:
        if c.root is None:
            continue
        a, b = int(round(c.start_s * FPS)), min(n, int(round(c.end_s * FPS)))
        for k, i in enumerate(CHORD_INTERVALS[c.quality]):
            m[("root", "third", "fifth", "seventh")[min(k, 3)]][(c.root + i) % 12, a:b] = True
        if b > a:
            quarter[a:b] = np.minimum(3, (np.arange(b - a) * 4) // (b - a))
    tones = m["root"] | m["third"] | m["fifth"] | m["seventh"]
    melody = scoring.pc_frames(score.melody, n)
    m["mel_nct"] = melody & ~tones
    m["bass"] = scoring.pc_frames(score.bass, n)
    return m, quarter, tones, melody


def analyse(heard, score, n: int) -> tuple[dict, np.ndarray]:
    got = scoring.pc_frames(heard, n)
    ref = scoring.pc_frames(scoring.score_notes(score), n)
    m, quarter, tones, melody = role_masks(score, n)
    out = {"P": (got & ref).sum() / max(1, got.sum()), "R": (got & ref).sum() / max(1, ref.sum()),
           "mel": (got & melody).sum() / max(1, melody.sum())}
    out.update({r: (got & m[r]).sum() / max(1, m[r].sum()) for r in ROLES})
    for k in range(4):
        sel = tones[:, quarter == k]
        out[f"q{k}"] = (got[:, quarter == k] & sel).sum() / max(1, sel.sum())
    return {k: float(v) for k, v in out.items()}, got


def score_render(out: Path, truth, only: list[str]) -> dict:
    qa = json.loads((out / "qa.json").read_text())
    score = truth.retimed(float(qa["tempo"]["ratio"]), float(qa["key"]["semitones"]))
    n = int(np.ceil(score.duration_s * FPS)) + 1
    files = {"COVER": out / "cover.wav"}
    files.update({p.stem: p for p in sorted((out / "cover_stems").glob("*.wav")) if not only or p.stem in only})
    res, union = {}, np.zeros((12, n), bool)
    for key, f in files.items():
        y = load_audio(f)
        heard = [h for h in scoring.transcribe(y, sr=44100) if h.start_s < score.duration_s]
        row, got = analyse(heard, score, n)
        row["rms_db"] = float(20 * np.log10(np.sqrt(np.mean(y**2)) + 1e-9))
        res[key] = row
        if key != "COVER":
            union |= got
    ref = scoring.pc_frames(scoring.score_notes(score), n)
    res["UNION"] = {"R": float((union & ref).sum() / ref.sum())}
    return res


def _line(name: str, row: dict) -> str:
    return f"{name:18s} " + " ".join(f"{k} {row[k]:.2f}" for k in KEYS if k in row)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", default="chiptune,lofi_hiphop,orchestral,pop_to_piano_trio,reggae")
    ap.add_argument("--songs", default="0,1,2,3,4,5", help="indices into groundtruth.SONGS")
    ap.add_argument("--runs", type=Path, default=Path("out/diag_recall"))
    ap.add_argument("--only", default="", help="comma-separated cover stems to score (default all; 'none': the cover only)")
    ap.add_argument("--summary", action="store_true", help="print the means of the saved results, render nothing")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    logging.getLogger("covermill").setLevel(logging.ERROR)
    only = [x for x in args.only.split(",") if x]
    songs = [gt.SONGS[int(i)] for i in args.songs.split(",")]
    for name in args.recipes.split(","):
        tag = Path(name).stem
        saved = []
        for song in songs:
            work = args.runs / song.name
            out, cache = work / tag, work / tag / "diag.json"
            if args.summary:
                if cache.is_file():
                    saved.append(json.loads(cache.read_text()))
                continue
            work.mkdir(parents=True, exist_ok=True)
            path, truth = bc.song_clip(song, 20.0, work)
            if not (out / "qa.json").is_file():
                render(path, load_recipe(name), out, cache_dir=args.runs / "cache")
            res = json.loads(cache.read_text()) if cache.is_file() else score_render(out, truth, only)
            cache.write_text(json.dumps(res))
            print(_line(f"{song.name} {tag}", res["COVER"]) + f" | union R {res['UNION']['R']:.2f}", flush=True)
            for stem, row in res.items():
                if stem not in ("COVER", "UNION"):
                    print("    " + _line(stem, row) + f" rms {row['rms_db']:.1f} dB", flush=True)
        if saved:
            stems = sorted(set().union(*saved) - {"UNION"})
            for stem in ["COVER", *(s for s in stems if s != "COVER")]:
                rows = [r[stem] for r in saved if stem in r]
                mean = {k: float(np.mean([r[k] for r in rows])) for k in KEYS if k in rows[0]}
                print(_line(f"{tag} {stem}" if stem == "COVER" else f"    {stem}", mean) + f" (n={len(rows)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
