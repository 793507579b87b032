"""The render job: one song + one recipe -> a cover, its stems, the resolved recipe and QA.

Stages (each timed into ``qa.json``): ``load``, ``separate``, ``analyse`` (source tempo),
``revoice`` (re-voiced stems are synthesized at the new tempo from time-scaled controls),
``mix`` (per-stem chains, one Rubber Band pass over the kept stems and their sends, buses),
``master``, ``qa``, ``write``.

Outputs are rendered into a staging folder beside ``OUT`` and moved into place file by
file with ``os.replace`` only when everything succeeded: a failed render leaves ``OUT``
as it was, and a re-render replaces each file atomically.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import instruments, stems
from ..analysis.loudness import integrated_lufs
from ..analysis.rhythm import estimate_tempo
from ..analysis.similarity import cover_similarity
from ..audio import load_audio, save_audio
from ..constants import MIN_DURATION_S, WORK_SR
from ..errors import OutputError, ParameterError
from ..fsutil import write_text_atomic
from ..recipes import Recipe, recipe_to_yaml
from .master import master
from .mixer import audible, mix_cover
from .tempo import tempo_ratio

log = logging.getLogger(__name__)

STAGES = ("load", "separate", "analyse", "revoice", "mix", "master", "qa", "write")
ProgressCallback = Callable[[dict[str, Any]], None]


@dataclass
class RenderResult:
    out_dir: Path
    cover: Path
    stems: dict[str, Path]
    qa: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    @property
    def qa_path(self) -> Path:
        return self.out_dir / "qa.json"


def _finite(x: float | None, ndigits: int = 2) -> float | None:
    """JSON-safe number: ``None`` instead of NaN/inf."""
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), ndigits)


def check_out_dir(out_dir: str | os.PathLike) -> Path:
    """Refuse an output path that is an existing file (before any work is done)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is a file; choose a folder for the cover (-o OUT)")
    return out


class _Clock:
    def __init__(self, progress: ProgressCallback | None) -> None:
        self.progress = progress
        self.seconds: dict[str, float] = {}
        self._i = 0

    def stage(self, name: str):
        clock = self

        class _Ctx:
            def __enter__(self_inner):
                self_inner.t0 = time.perf_counter()
                if clock.progress:
                    clock.progress({"stage": name, "done": clock._i, "total": len(STAGES), "state": "start"})

            def __exit__(self_inner, exc_type, exc, tb):
                clock.seconds[name] = round(time.perf_counter() - self_inner.t0, 3)
                clock._i += 1
                if exc_type is None and clock.progress:
                    clock.progress({"stage": name, "done": clock._i, "total": len(STAGES), "state": "end"})
                return False

        return _Ctx()


def render(
    song: str | os.PathLike,
    recipe: Recipe,
    out_dir: str | os.PathLike,
    *,
    separator: str = "dsp",
    recipe_root: str | os.PathLike | None = None,
    progress: ProgressCallback | None = None,
    sr: int = WORK_SR,
    excerpt: tuple[float, float] | None = None,
    stretcher: str = "pedalboard",
    instruments_dir: str | os.PathLike | None = None,
) -> RenderResult:
    """Render ``song`` as a cover following ``recipe`` into ``out_dir``.

    Writes ``cover.wav``, ``stems/<name>.wav`` (the separated stems, source tempo),
    ``recipe.yaml`` (the resolved recipe) and ``qa.json``. The input file is only read.
    ``excerpt=(start_s, seconds)`` renders only that part of the song (for quick listening
    while a recipe is tuned). ``instruments_dir`` is where trained instruments named by
    ``revoice`` are looked up (default ``$COVERMILL_INSTRUMENTS_DIR`` or the user data dir).
    """
    song = Path(song)
    out = check_out_dir(out_dir)
    clock = _Clock(progress)
    warnings: list[str] = []

    with clock.stage("load"):
        mix = load_audio(song, sr=sr)
        if excerpt is not None:
            mix = _cut(mix, song=song, sr=sr, start_s=excerpt[0], seconds=excerpt[1])
    n = mix.shape[1]
    silent = float(np.max(np.abs(mix))) < 1e-5
    if silent:
        warnings.append(f"{song}: the song is silent; the cover will be silent too")

    with clock.stage("separate"):
        sep = stems.get(separator)
        parts = sep.separate(mix, sr=sr)

    with clock.stage("analyse"):
        source_bpm = float("nan") if silent else estimate_tempo(mix, sr=sr)
        rule = recipe.tempo
        try:
            ratio = tempo_ratio(source_bpm, target_bpm=rule.target_bpm, bpm_delta=rule.bpm_delta, ratio=rule.ratio,
                                genre=recipe.target_genre if rule.genre_range else None)
        except Exception as exc:  # unknown source tempo: keep the tempo, say so
            warnings.append(f"{song}: {exc}; the cover keeps the original tempo")
            ratio = 1.0
        if not 0.5 <= ratio <= 2.0:
            warnings.append(f"tempo ratio {ratio:.3f} clamped to [0.5, 2]")
            ratio = float(np.clip(ratio, 0.5, 2.0))
    semitones = recipe.key.semitones

    for name in recipe.stems:
        if name not in parts:
            warnings.append(f"recipe stem {name!r} is not produced by separator {separator!r} (it gives "
                            f"{', '.join(parts)}); ignored")

    heard = audible(recipe, list(parts))
    with clock.stage("revoice"):
        revoiced: dict[str, np.ndarray] = {}
        for name in heard:
            spec = recipe.stem(name)
            if spec.action == "revoice":
                instrument = instruments.get(spec.revoice.instrument, instruments_dir=instruments_dir)
                revoiced[name] = instrument.revoice(parts[name], sr=sr, time_ratio=ratio, semitones=semitones)
    with clock.stage("mix"):
        kept = {name: parts[name] for name in heard if recipe.stem(name).action == "keep"}
        cover = mix_cover(kept, revoiced, recipe=recipe, sr=sr, n_in=n, time_ratio=ratio, semitones=semitones,
                          stretcher=stretcher, root=recipe_root)

    with clock.stage("master"):
        mastered = master(cover, sr=sr, spec=recipe.master, root=recipe_root)
        cover = mastered.audio
        if mastered.lufs is None and not silent:
            warnings.append("the cover is silent (every stem muted or empty)")

    with clock.stage("qa"):
        cover_silent = float(np.max(np.abs(cover))) < 1e-5
        cover_bpm = float("nan") if cover_silent else estimate_tempo(cover, sr=sr)
        target_bpm = source_bpm * ratio if math.isfinite(source_bpm) else float("nan")
        if silent or cover_silent:
            sim = {"similarity": None, "reference": None, "margin": None}
        else:
            sim = cover_similarity(mix, cover, sr=sr)
        qa: dict[str, Any] = {
            "song": str(song),
            "recipe": recipe.name,
            "separator": separator,
            "duration_s": round(cover.shape[1] / sr, 3),
            "source_duration_s": round(n / sr, 3),
            "excerpt": {"start_s": excerpt[0], "seconds": excerpt[1]} if excerpt else None,
            "tempo": {
                "source_bpm": _finite(source_bpm),
                "target_bpm": _finite(target_bpm),
                "cover_bpm": _finite(cover_bpm),
                "ratio": round(ratio, 5),
            },
            "key": {"semitones": semitones},
            "loudness_lufs": _finite(integrated_lufs(cover, sr=sr)) if not cover_silent else None,
            "loudness_target_lufs": recipe.master.lufs,
            "true_peak_db": mastered.true_peak_db,
            "cover_similarity": sim["similarity"],
            "cover_similarity_floor": sim["reference"],
            "cover_similarity_margin": sim["margin"],
            "stems": {name: recipe.stem(name).action for name in parts},
        }

    with clock.stage("write"):
        _write_audio(out, cover=cover, parts=parts, recipe=recipe, sr=sr)
    qa["stages"] = dict(clock.seconds)
    qa["warnings"] = list(warnings)
    qa["outputs"] = {"cover": "cover.wav", "stems": {n: f"stems/{n}.wav" for n in parts}, "recipe": "recipe.yaml"}
    write_text_atomic(out / "qa.json", json.dumps(qa, indent=2, allow_nan=False) + "\n")
    result = RenderResult(out, out / "cover.wav", {n: out / f"stems/{n}.wav" for n in parts}, qa, warnings)
    for w in warnings:
        log.warning(w)
    return result


def _cut(mix: np.ndarray, *, song: Path, sr: int, start_s: float, seconds: float) -> np.ndarray:
    duration = mix.shape[1] / sr
    if start_s >= duration:
        raise ParameterError(f"{song}: excerpt starts at {start_s:g} s but the song is {duration:.1f} s long")
    part = mix[:, int(start_s * sr) : int((start_s + seconds) * sr)]
    if part.shape[1] < MIN_DURATION_S * sr:
        raise ParameterError(f"{song}: the excerpt is {part.shape[1] / sr:.2f} s; make it at least {MIN_DURATION_S:g} s")
    return np.ascontiguousarray(part)


def _write_audio(out: Path, *, cover, parts, recipe, sr) -> None:
    """Render files into a staging folder beside ``out``, then move each into place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    try:
        save_audio(staging / "cover.wav", cover, sr=sr)
        (staging / "stems").mkdir()
        for name, audio in parts.items():
            save_audio(staging / "stems" / f"{name}.wav", audio, sr=sr, subtype="FLOAT", clip="none")
        (staging / "recipe.yaml").write_text(recipe_to_yaml(recipe), encoding="utf-8")
        out.mkdir(parents=True, exist_ok=True)
        (out / "stems").mkdir(exist_ok=True)
        for rel in ["cover.wav", "recipe.yaml", *[f"stems/{name}.wav" for name in parts]]:
            os.replace(staging / rel, out / rel)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
