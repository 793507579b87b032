"""``covermill preview``: re-render an excerpt each time the recipe file is saved, reusing what
the edit did not change (stems, pitch and notes, the lead sheet, the original's analysis,
re-voiced stems, generated parts, the stretch), print what changed in QA, optionally play it.

The loop polls the recipe's modification time. A save that does not load (half-written,
invalid) prints its ``file:line`` error and keeps the last good render; deleting the recipe
stops the preview with one line. Renders are ``light`` (no report page, no DAW project) and,
unless asked otherwise, use Rubber Band's faster engine for the kept stems (``draft``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CovermillError
from .options import RenderOptions
from .reuse import Reuse

DEFAULT_EXCERPT = (0.0, 20.0)


@dataclass
class PreviewEvent:
    """What one save produced: ``kind`` ``render`` (``seconds``, ``summary``, ``changes``), ``error``
    (``message``: the recipe's file:line error) or ``stopped`` (``message``)."""

    kind: str
    message: str = ""
    seconds: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)
    changes: list[str] = field(default_factory=list)
    cover: Path | None = None
    reused: dict[str, int] = field(default_factory=dict)


def summary(qa: dict[str, Any]) -> dict[str, Any]:
    """The QA values a preview line shows."""
    cover = qa.get("cover") or {}
    genre = qa.get("genre") or {}
    return {"bpm": (qa.get("tempo") or {}).get("cover_bpm"), "lufs": qa.get("loudness_lufs"),
            "peak_db": qa.get("true_peak_db"), "qmax": cover.get("qmax"),
            "genre": genre.get("cover_top"), "p_target": genre.get("target_prob_cover")}


def changes(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """``["lufs -14.0 -> -13.2", ...]`` for the values that changed."""
    if before is None:
        return []
    return [f"{k} {before.get(k)} -> {v}" for k, v in after.items() if before.get(k) != v]


def _play(path: Path) -> str | None:
    """Play a WAV file through the default output device (pedalboard's AudioStream); the reason
    when it cannot (no device, no backend)."""
    try:
        from pedalboard.io import AudioFile, AudioStream

        with AudioFile(str(path)) as f:
            audio, sr = f.read(f.frames), f.samplerate
        if not AudioStream.output_device_names:
            return "no audio output device: --play is off"
        AudioStream.play(audio, sr)
    except Exception as exc:  # noqa: BLE001  (any backend failure only turns playback off)
        return f"cannot play ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}): --play is off"
    return None


def preview(song: str | os.PathLike, recipe_path: str | os.PathLike, out_dir: str | os.PathLike, *,
            options: RenderOptions | None = None, excerpt: tuple[float, float] = DEFAULT_EXCERPT,
            quality: str = "draft", play: bool = False, poll_s: float = 0.2, once: bool = False,
            stop: threading.Event | None = None, on_event: Callable[[PreviewEvent], None] | None = None) -> None:
    """Watch ``recipe_path`` and re-render ``song``'s ``excerpt`` into ``out_dir`` on every save.

    ``quality`` ``draft`` (R2, the default here) or ``high`` overrides the recipe's tempo quality;
    ``once`` renders once and returns; ``stop`` (an event) ends the loop; ``on_event`` receives a
    :class:`PreviewEvent` per save."""
    from ..recipes import load_recipe
    from .pipeline import render

    recipe_path = Path(recipe_path)
    emit = on_event or (lambda ev: None)
    reuse = Reuse()
    opts = RenderOptions.of(options, excerpt=excerpt, light=True, reuse=reuse)
    seen: float | None = None
    last: dict[str, Any] | None = None
    playing = play
    while stop is None or not stop.is_set():
        try:
            mtime = recipe_path.stat().st_mtime_ns
        except FileNotFoundError:
            emit(PreviewEvent("stopped", f"{recipe_path}: the recipe was deleted; preview stopped"))
            return
        if mtime != seen:
            seen = mtime
            t0 = time.perf_counter()
            reuse.reset_counts()
            try:
                recipe = load_recipe(recipe_path)
                recipe = recipe.model_copy(update={"tempo": recipe.tempo.model_copy(update={"quality": quality})})
                result = render(song, recipe, out_dir, opts)
            except CovermillError as exc:
                emit(PreviewEvent("error", f"{exc} (still playing the last good render)"))
            else:
                now = summary(result.qa)
                emit(PreviewEvent("render", seconds=time.perf_counter() - t0, summary=now, changes=changes(last, now),
                                  cover=result.cover, reused=dict(reuse.hits)))
                last = now
                if playing:
                    reason = _play(result.cover)
                    if reason:
                        playing = False
                        emit(PreviewEvent("error", reason))
            if once:
                return
        time.sleep(poll_s)
