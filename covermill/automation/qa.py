"""Post-render QA: the typed report behind ``qa.json``, the report page, the CLI summary and
the batch index, and the checks that fill it (tempo, loudness, cover detection, genre).

:class:`QAReport` holds every field of ``qa.json``; :meth:`QAReport.to_dict` writes it with
the same keys as before the report was typed. A QA check is a function registered in
:data:`CHECKS` that returns its block; the render stores the block under the check's name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..analysis import cover as cover_qa
from ..errors import CovermillError
from ..recipes import Recipe
from ..registry import Registry


def finite(x: float | None, ndigits: int = 2) -> float | None:
    """JSON-safe number: ``None`` instead of NaN/inf."""
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), ndigits)


@dataclass
class TempoQA:
    source_bpm: float | None
    target_bpm: float | None
    cover_bpm: float | None
    ratio: float


@dataclass
class QAReport:
    """What ``qa.json`` says about one render (its keys, in its order)."""

    song: str
    recipe: str
    separator: str
    stem_cache: str
    duration_s: float
    source_duration_s: float
    excerpt: dict[str, float] | None
    tempo: TempoQA
    key: dict[str, float]
    loudness_lufs: float | None
    loudness_target_lufs: float
    true_peak_db: float | None
    cover_similarity: float | None
    cover_similarity_floor: float | None
    cover_similarity_margin: float | None
    genre: dict[str, Any]
    cover: dict[str, Any] | None
    stems: dict[str, str]
    mixer: str = "pedalboard"
    checks: dict[str, Any] = field(default_factory=dict)  # blocks of registered QA checks, by name
    stages: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        """``"cover"``, ``"not a cover"``, ``"too short to judge"`` or ``"no verdict"`` (silence)."""
        if self.cover is None:
            return "no verdict"
        if self.cover.get("is_cover") is None:
            return "too short to judge"
        return "cover" if self.cover["is_cover"] else "not a cover"

    def to_dict(self, *, final: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"song": self.song, "recipe": self.recipe, "separator": self.separator,
                               "stem_cache": self.stem_cache}
        if self.mixer != "pedalboard":
            out["mixer"] = self.mixer
        out.update({
            "duration_s": self.duration_s, "source_duration_s": self.source_duration_s, "excerpt": self.excerpt,
            "tempo": {"source_bpm": self.tempo.source_bpm, "target_bpm": self.tempo.target_bpm,
                      "cover_bpm": self.tempo.cover_bpm, "ratio": self.tempo.ratio},
            "key": dict(self.key), "loudness_lufs": self.loudness_lufs,
            "loudness_target_lufs": self.loudness_target_lufs, "true_peak_db": self.true_peak_db,
            "cover_similarity": self.cover_similarity, "cover_similarity_floor": self.cover_similarity_floor,
            "cover_similarity_margin": self.cover_similarity_margin, "genre": self.genre, "cover": self.cover,
            "stems": dict(self.stems), **self.checks,
        })
        if final:
            out.update(stages=dict(self.stages), warnings=list(self.warnings), outputs=self.outputs)
        else:
            out["warnings"] = list(self.warnings)
        return out


#: Registered QA checks: ``name -> fn(context: QAContext) -> block | None``; the render stores each
#: block under the check's name in ``qa.json`` (see :class:`QAReport.checks`).
CHECKS: Registry = Registry("QA check")


@dataclass(frozen=True)
class QAContext:
    """What a QA check may look at: the original and the cover (float32 ``(2, n)`` at ``sr``), the
    recipe, the song's lead sheet and the cover's (retimed), the cover's tracks before the master."""

    original: np.ndarray
    cover: np.ndarray
    sr: int
    recipe: Recipe
    sheet: Any
    cover_sheet: Any
    tracks: dict[str, np.ndarray] = field(default_factory=dict)


def run_checks(ctx: QAContext) -> dict[str, Any]:
    """Every registered check's block (a check returning ``None`` adds nothing)."""
    out = {}
    for name in CHECKS.available():
        block = CHECKS.factory(name)(ctx)
        if block is not None:
            out[name] = block
    return out


@CHECKS.register("leadsheet")
def _leadsheet_check(ctx: QAContext) -> dict[str, Any]:
    """The lead sheet's summary (the whole sheet is ``leadsheet.json``)."""
    s = ctx.sheet
    return {"key": s.key.label if s.key else None, "bpm": finite(s.bpm),
            "beats_per_bar": s.beats_per_bar, "bars": len(s.downbeats_s),
            "chords": len([c for c in s.chords if c.root is not None]),
            "melody_notes": len(s.melody), "sections": len(s.sections), "warnings": list(s.warnings)}


@CHECKS.register("parts")
def _parts_check(ctx: QAContext) -> dict[str, Any] | None:
    """The genre parts the recipe added (part -> style)."""
    return {n: p.style for n, p in ctx.recipe.parts.items()} or None


def original_features(mix: np.ndarray, *, sr: int) -> cover_qa.CoverFeatures:
    """The original's cover-detection features; on the way, its beats and chroma land in the
    analysis memo (:mod:`covermill.analysis.rhythm`) that the chroma similarity reads, and the
    unrelated reference's features are loaded."""
    cover_qa.reference_features()
    return cover_qa.features(mix, sr=sr)


def genre_probabilities(y: np.ndarray, *, sr: int) -> dict[str, float] | str:
    """The shipped taste model's genre probabilities of ``y``, or the reason there are none."""
    from ..analysis.taste import genre_probabilities as probabilities
    from ..analysis.taste import load_model

    try:
        model = load_model()
    except CovermillError as exc:
        return f"genre QA skipped: {exc}"
    return probabilities(y, sr=sr, model=model)


def genre_qa(before: dict[str, float] | str | None, after: dict[str, float] | str | None, *, recipe: Recipe,
             warnings: list[str]) -> dict[str, Any]:
    """Does the cover move toward the target genre? Taste-model probabilities ``before`` and ``after``
    (from :func:`genre_probabilities`; ``None`` for silence)."""
    from ..recipes.genres import NEAREST_CLASS

    target = NEAREST_CLASS.get(recipe.target_genre, recipe.target_genre)
    qa: dict[str, Any] = {"target": recipe.target_genre, "model_class": None, "original_top": None, "cover_top": None,
                          "target_prob_original": None, "target_prob_cover": None}
    if before is None or after is None:
        return qa
    if isinstance(before, str):
        warnings.append(before)
        return qa
    qa.update(original_top=next(iter(before)), cover_top=next(iter(after)))
    if target in before:
        qa.update(model_class=target, target_prob_original=before[target], target_prob_cover=after[target])
    qa["original"] = before
    qa["cover"] = after
    return qa


def cover_check(fo: cover_qa.CoverFeatures, cover: np.ndarray, *, sr: int) -> tuple[dict[str, Any], tuple]:
    """Cover detection (Qmax verdict, 2DFTM distance) of ``cover`` against the original (its
    features ``fo``), and against an unrelated recording as the floor; also returns the two
    songs' features (for the report). Too few beats for a verdict: ``is_cover`` is ``None``
    and ``verdict`` says "too short to judge"."""
    keys = ("qmax", "twodftm_distance", "is_cover", "threshold")
    fc = cover_qa.features(cover, sr=sr)
    result = cover_qa.compare_features(fo, fc)
    floor = cover_qa.compare_features(fo, cover_qa.reference_features())
    check = {**{k: result[k] for k in keys}, "reference": {k: floor[k] for k in keys},
             "reference_song": cover_qa.REFERENCE_SONG.name}
    if "verdict" in result:
        check["verdict"] = result["verdict"]
    return check, (fo, fc)
