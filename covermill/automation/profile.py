"""Taste profiles: the genre distribution of a listener's music folder, and recipe suggestions.

Every song is classified by the shipped taste model
(:func:`covermill.analysis.taste.genre_probabilities`); results are cached by the file's
content hash (and the model's), so a second run over the same folder only reads the
cache. Unreadable songs are skipped and listed. The profile is the mean of the songs'
genre probabilities; recipes whose target genre is among the listener's top genres are
suggested.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import fsutil
from ..errors import CovermillError
from ..fsutil import file_hash, write_text_atomic
from ..recipes.genres import NEAREST_CLASS  # the recipe genre -> taste-model class table

log = logging.getLogger(__name__)



@dataclass
class Profile:
    songs: dict[str, dict[str, float]]
    skipped: dict[str, str]
    distribution: dict[str, float]
    top_counts: dict[str, int]
    suggestions: list[dict[str, str]]

    def as_dict(self) -> dict[str, Any]:
        return {"distribution": self.distribution, "top_genre_counts": self.top_counts,
                "suggested_recipes": self.suggestions, "songs": self.songs, "skipped": self.skipped}


def suggest_recipes(distribution: dict[str, float], *, top: int = 3) -> list[dict[str, str]]:
    """Built-in recipes whose target genre (or its nearest model class) is in the top genres."""
    from ..recipes import builtin_names, load_recipe

    ranked = list(distribution)[:top]
    out = []
    for name in builtin_names():
        recipe = load_recipe(name)
        genre = NEAREST_CLASS.get(recipe.target_genre, recipe.target_genre)
        if genre in ranked:
            out.append({"recipe": name, "target_genre": recipe.target_genre, "because": genre,
                        "description": recipe.description})
    out.sort(key=lambda s: ranked.index(s["because"]))
    return out


def profile_folder(
    folder: str | os.PathLike,
    out: str | os.PathLike,
    *,
    cache_dir: str | os.PathLike | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> Profile:
    """Classify every song in ``folder``; write ``OUT/profile.json`` and ``OUT/genres.png``."""
    from ..analysis.taste import DEFAULT_MODEL, genre_probabilities, load_model, plot_genre_bars
    from ..audio import load_audio
    from .batch import find_songs

    songs = find_songs(folder)
    cache = Path(cache_dir) if cache_dir else fsutil.cache_dir("genre")
    model = load_model()
    model_id = file_hash(DEFAULT_MODEL)[:16]
    results: dict[str, dict[str, float]] = {}
    skipped: dict[str, str] = {}
    for i, song in enumerate(songs):
        try:
            key = f"{file_hash(song)}-{model_id}"
            entry = cache / f"{key}.json"
            probs = None
            if entry.is_file():
                try:
                    probs = json.loads(entry.read_text())
                except ValueError:
                    probs = None  # a corrupt cache entry is recomputed
            if not isinstance(probs, dict):
                probs = genre_probabilities(load_audio(song), sr=44100, model=model)
                write_text_atomic(entry, json.dumps(probs))
            results[str(song)] = probs
        except (CovermillError, OSError) as exc:
            skipped[str(song)] = str(exc)
            log.debug("skipped %s: %s", song, exc)
        if progress:
            progress({"done": i + 1, "total": len(songs), "song": str(song), "skipped": len(skipped)})
    genres = sorted({g for p in results.values() for g in p})
    mean = {g: sum(p.get(g, 0.0) for p in results.values()) / max(1, len(results)) for g in genres}
    distribution = {g: round(v, 4) for g, v in sorted(mean.items(), key=lambda kv: -kv[1])}
    counts: dict[str, int] = {}
    for p in results.values():
        top = next(iter(p))
        counts[top] = counts.get(top, 0) + 1
    profile = Profile(results, skipped, distribution, dict(sorted(counts.items(), key=lambda kv: -kv[1])),
                      suggest_recipes(distribution) if results else [])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "profile.json", json.dumps(profile.as_dict(), indent=2) + "\n")
    if results:
        plot_genre_bars({"your music": distribution}, out / "genres.png",
                        title=f"Taste profile of {len(results)} songs")
    return profile
