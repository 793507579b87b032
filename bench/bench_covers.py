"""Benchmark: every built-in recipe's cover of songs whose score is known, scored against the score.

    .venv/bin/python bench/bench_covers.py --write docs/BENCHMARKS.md [--songs N] [--recipes a,b] [--seconds S]

The songs are ``bench/groundtruth.py``'s (FluidSynth renders of scores written there): the six
regular songs (cut to ``--seconds``, default 20 s) and, reported apart, the free-time, key-change
(cut after the change) and 3-s songs. Each is rendered by every built-in recipe
(:func:`covermill.automation.pipeline.render`, stem cache in a temporary folder, so separation is
paid once per song, by the first recipe). For the original mix and every cover:

- pitch-class precision / recall and melody heard (``bench/scoring.py``: basic-pitch's notes of
  ``cover.wav`` against the score, score times divided by ``qa.tempo.ratio``, pitches moved by
  ``qa.key.semitones``, 50 frames/s);
- the lead sheet the render estimated from the original (``OUT/leadsheet.json``) against the
  score: chord accuracy (mir_eval majmin, sevenths), downbeat F, key (exact);
- the shipped taste model's P(target) of the original -> the cover, and whether the target is top-1;
- Qmax (cover vs original), wall-clock render time (the ``separate`` stage, paid once per song,
  is counted apart);
- generated parts (``OUT/midi/parts/*.mid``): the share of their pitched note time outside the
  current chord's scale (:func:`covermill.instruments.part_checks.out_of_scale_share`), the cover's
  chords being the score's, retimed by the tempo ratio and moved by the key shift.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import groundtruth as gt  # noqa: E402
import numpy as np  # noqa: E402
import scoring  # noqa: E402
import soundfile as sf  # noqa: E402
from _markdown import write_section  # noqa: E402

from covermill.audio import load_audio  # noqa: E402
from covermill.automation.pipeline import render  # noqa: E402
from covermill.leadsheet import LeadSheet  # noqa: E402
from covermill.recipes import builtin_names, load_recipe  # noqa: E402

ORIGINAL = "original"
PC = ("pc_precision", "pc_recall", "melody_heard")
SHEET = ("majmin", "sevenths", "downbeat_f", "key")
COLS = (*PC, *SHEET, "p_before", "p_after", "top1", "qmax", "out_of_scale", "render_s")
KEY_CHANGE_SECONDS = 26.0  # the key-change song moves up a tone after 8 bars (~17.6 s): keep some of it


def song_clip(song: gt.Song, seconds: float, folder: Path) -> tuple[Path, LeadSheet]:
    """The first ``seconds`` of the song's mix as a WAV in ``folder`` and its score cut alike."""
    mix, sr = gt.render(song)
    truth = gt.score_sheet(song)
    cut_s = min(seconds, mix.shape[1] / sr)
    path = folder / f"{song.name}.wav"
    sf.write(str(path), mix[:, : int(cut_s * sr)].T, sr, subtype="PCM_16")
    if cut_s < truth.duration_s:
        truth = gt.cut(truth, cut_s)
    return path, truth


def parts_out_of_scale(out: Path, recipe, cover_sheet: LeadSheet) -> float:
    """Share of the generated pitched parts' note time outside the current chord's scale (NaN: none); a
    melody part (the lead sheet's tune doubled, its passing tones included) is left out."""
    import pretty_midi

    from covermill.instruments.part_checks import out_of_scale_share
    from covermill.instruments.styles import get_style

    total = outside = 0.0
    for name, part in recipe.parts.items():
        kind = part.kind or name
        mid = out / "midi" / "parts" / f"{name}.mid"
        if kind in ("drums", "melody") or not mid.is_file():  # a melody part plays the song's tune: scored by precision
            continue
        style = get_style(part.style, kind=kind)
        for inst in pretty_midi.PrettyMIDI(str(mid)).instruments:
            if inst.is_drum or not inst.notes:
                continue
            t = sum(n.end - n.start for n in inst.notes)
            total += t
            outside += t * out_of_scale_share(inst, cover_sheet, style)
    return outside / total if total else float("nan")


def evaluate_original(path: Path, truth: LeadSheet) -> dict:
    y = load_audio(path)
    return scoring.audio_scores(y, sr=44100, truth=truth)


def evaluate_cover(path: Path, truth: LeadSheet, name: str, work: Path, cache: Path) -> dict:
    recipe = load_recipe(name)
    out = work / f"{path.stem}.{name}"
    t0 = time.perf_counter()
    result = render(path, recipe, out, cache_dir=cache)
    wall = time.perf_counter() - t0
    qa = result.qa
    ratio, semitones = float(qa["tempo"]["ratio"]), float(qa["key"]["semitones"])
    y = load_audio(result.cover)
    row = scoring.audio_scores(y, sr=44100, truth=truth, time_ratio=ratio, semitones=semitones)
    est = LeadSheet.from_dict(json.loads((out / "leadsheet.json").read_text()))
    sheet = scoring.sheet_scores(truth, est)
    row.update({k: sheet[k] for k in SHEET})
    row["key_est"] = est.key.label if est.key else "-"
    genre = qa.get("genre") or {}
    row["p_before"] = float(genre.get("target_prob_original", float("nan")))
    row["p_after"] = float(genre.get("target_prob_cover", float("nan")))
    target = genre.get("model_class")
    row["top1"] = float(genre.get("cover_top") == target) if target else float("nan")
    row["target"] = target or "-"
    check = qa.get("cover") or {}
    judged = check.get("is_cover") is not None  # None: too short to judge
    row["qmax"] = float(check["qmax"]) if judged and check.get("qmax") is not None else float("nan")
    row["is_cover"] = float(bool(check["is_cover"])) if judged else float("nan")
    sep = float(qa.get("stages", {}).get("separate", 0.0))
    row["render_s"], row["separate_s"] = wall, sep
    row["out_of_scale"] = parts_out_of_scale(out, recipe, truth.retimed(ratio, semitones))
    row["ratio"], row["semitones"] = ratio, semitones
    row["warnings"] = len(result.warnings)
    return row


def _fmt(x, digits: int = 2) -> str:
    if isinstance(x, str):
        return x
    return "–" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def mean_rows(rows: list[dict]) -> dict:
    out = {}
    for c in (*COLS, "separate_s"):
        vals = [r[c] for r in rows if c in r and np.isfinite(r[c])]
        out[c] = float(np.mean(vals)) if vals else float("nan")
    targets = sorted({r.get("target", "-") for r in rows} - {"-"})
    out["target"] = ",".join(targets) or "–"
    return out


def recipe_table(results: dict[str, dict[str, dict]], names: list[str], songs: list[str]) -> list[str]:
    """One row per recipe (the original first): the mean over ``songs``."""
    head = ["recipe", "target", "PC precision", "PC recall", "melody heard", "chords majmin", "sevenths",
            "downbeat F", "key", "P(target) before → after", "target top-1", "Qmax (verdict cover)", "parts out of scale",
            "render s"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    for name in [ORIGINAL, *names]:
        rows = [results[s][name] for s in songs if name in results[s]]
        if not rows:
            continue
        m = mean_rows(rows)
        if name == ORIGINAL:
            sheet = mean_rows([next(r[n] for n in names if n in r) for r in (results[s] for s in songs)
                               if any(n in r for n in names)])
            cells = [ORIGINAL + " mix", "–", *(_fmt(m[c]) for c in PC), *(_fmt(sheet[c]) for c in SHEET),
                     "–", "–", "–", "–", "–"]
        else:
            top = sum(int(r["top1"] == 1.0) for r in rows)
            cells = [f"`{name}`", m["target"], *(_fmt(m[c]) for c in (*PC, *SHEET)),
                     f"{_fmt(m['p_before'])} → {_fmt(m['p_after'])}", f"{top}/{len(rows)}",
                     f"{_fmt(m['qmax'])} ({sum(int(r['is_cover'] == 1.0) for r in rows)}/"
                     f"{sum(int(np.isfinite(r['is_cover'])) for r in rows)})",
                     _fmt(m["out_of_scale"], 3), _fmt(m["render_s"], 1)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def song_table(results: dict[str, dict[str, dict]], names: list[str], songs: list[str]) -> list[str]:
    """Per song: the original's PC scores and the lead sheet, then each recipe's precision/recall/melody."""
    head = ["song", "original P/R/mel", "chords majmin / sevenths", "downbeat F", "key (est.)",
            *(f"`{n}` P/R/mel" for n in names)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in songs:
        r = results[s]
        orig = r.get(ORIGINAL, {})
        first = next((r[n] for n in names if n in r), {})

        def prm(row):
            return "/".join(_fmt(row.get(c, float("nan"))) for c in PC) if row else "–"

        cells = [s, prm(orig), f"{_fmt(first.get('majmin', float('nan')))} / {_fmt(first.get('sevenths', float('nan')))}",
                 _fmt(first.get("downbeat_f", float("nan"))),
                 f"{_fmt(first.get('key', float('nan')))} ({first.get('key_est', '-')})",
                 *(prm(r.get(n, {})) for n in names)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--songs", type=int, default=len(gt.SONGS), help="how many regular songs (default all 6)")
    ap.add_argument("--recipes", default="", help="comma-separated recipe names (default every built-in)")
    ap.add_argument("--seconds", type=float, default=20.0, help="seconds of each song rendered (default 20)")
    ap.add_argument("--no-special", action="store_true", help="skip the free-time, key-change and 3-s songs")
    ap.add_argument("--write", type=Path, help="markdown file whose covers section is replaced")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    logging.getLogger("covermill").setLevel(logging.ERROR)
    names = [n for n in args.recipes.split(",") if n] or list(builtin_names())
    regular = list(gt.SONGS[: args.songs])
    special = [] if args.no_special else list(gt.SPECIAL)
    results: dict[str, dict[str, dict]] = {}
    cold: list[float] = []
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_covers_") as tmp:
        work, cache = Path(tmp), Path(tmp) / "cache"
        for song in regular + special:
            seconds = KEY_CHANGE_SECONDS if song.modulate else args.seconds
            path, truth = song_clip(song, seconds, work)
            results[song.name] = {ORIGINAL: evaluate_original(path, truth)}
            t0 = time.perf_counter()  # warm-up: separation and the original's analysis, paid once per song
            render(path, load_recipe(names[0]), work / f"{song.name}.warmup", cache_dir=cache)
            cold.append(time.perf_counter() - t0)
            for name in names:
                t0 = time.perf_counter()
                try:
                    row = evaluate_cover(path, truth, name, work, cache)
                except Exception as exc:  # a benchmark reports a failed render and goes on
                    print(f"{song.name} {name}: FAILED {type(exc).__name__}: {exc}", flush=True)
                    continue
                results[song.name][name] = row
                print(f"{song.name} {name}: " + " ".join(f"{k}={_fmt(row[k])}" for k in (*COLS, "separate_s"))
                      + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
    total_min = (time.perf_counter() - t_start) / 60
    reg_names, spec_names = [s.name for s in regular], [s.name for s in special]
    sep = mean_rows([r for s in reg_names for n, r in results[s].items() if n != ORIGINAL])["separate_s"]
    lines = [
        f"Command: `.venv/bin/python bench/bench_covers.py --write docs/BENCHMARKS.md` ({platform.machine()}, "
        f"{os.cpu_count()} cores shared with other jobs, OMP_NUM_THREADS=1; {total_min:.0f} min in all). "
        f"Songs: `bench/groundtruth.py` (scores rendered by FluidSynth: lead on *Voice Oohs*, electric piano, "
        f"finger bass, GM drums), the first {args.seconds:g} s of each; every built-in recipe renders each with "
        "default options (stem cache in a temporary folder). Scoring: `bench/scoring.py`. PC precision / recall / "
        "melody heard: basic-pitch's notes of `cover.wav` against the score as pitch classes per frame (50/s), "
        "score times divided by `qa.tempo.ratio`, pitches moved by `qa.key.semitones`. Chords, downbeat F, key: "
        "`OUT/leadsheet.json` (estimated from the original) against the score. P(target): the shipped taste "
        "model on the original → the cover; top-1: the target class is the cover's first. Parts out of scale: "
        "share of the generated pitched parts' (`midi/parts/*.mid`, drums and melody doublings excluded) note time outside the "
        "current chord's tones + the style's extensions (approach notes in), chords = the score's retimed to "
        "the cover. Render s: wall-clock seconds of a warm in-process render (each song is rendered once first, "
        f"by `{names[0]}`, not counted: separation and the original's analysis, cached in-process and on disk; "
        f"that cold render took {_fmt(float(np.mean(cold)) if cold else float('nan'), 1)} s on average; the "
        f"`separate` stage is then a stem-cache hit, {_fmt(sep, 2)} s on average). The lead sheet is the "
        "same for every recipe of a song (estimated from the original); the original's row shows it.",
        "",
        f"**Regular songs (mean of {len(regular)})** — targets (#15): PC precision ≥ 0.85, recall ≥ 0.75, melody "
        "heard ≥ 0.85; chords majmin ≥ 0.80, downbeat F ≥ 0.80, key ≥ 0.9; (#16): target top-1, P(target) "
        "+0.3, Qmax ≥ 0.46, parts out of scale ≤ 0.10:",
        "",
        *recipe_table(results, names, reg_names),
        "",
        "Per song (pitch-class precision / recall / melody heard):",
        "",
        *song_table(results, names, reg_names),
    ]
    if special:
        lines += ["", "Reported apart (free time, key change cut at "
                  f"{KEY_CHANGE_SECONDS:g} s, the 3-s song; no targets):", "",
                  *song_table(results, names, spec_names), ""]
        for s in spec_names:
            lines += [f"`{s}`:", "", *recipe_table(results, names, [s]), ""]
    body = "\n".join(lines).rstrip("\n")
    print(body)
    if args.write:
        write_section(args.write, "covers", body, heading="Covers against the score (ground truth)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
