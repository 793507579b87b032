"""`covermill preview`: every save re-renders, reusing what the edit did not change; a bad save
keeps the last good render and says file:line; deleting the recipe stops the preview."""

import threading
import time

import pytest
from click.testing import CliRunner
from conftest import file_digest, song, write

from covermill.automation.options import RenderOptions
from covermill.automation.preview import preview
from covermill.cli import main

RECIPE = ("name: p\nstems:\n  vocals: {revoice: {instrument: flute}}\n  drums: {gain_db: -6}\n"
          "parts:\n  bass: {style: walking, gain_db: -3}\ntempo: {ratio: 0.9}\nmaster: {lufs: -16}\n")


def _wait(events, n, timeout=240):
    t0 = time.time()
    while len(events) < n:
        assert time.time() - t0 < timeout, f"no event {n} after {timeout} s: {events}"
        time.sleep(0.05)


@pytest.mark.slow
def test_preview_reuses_what_an_edit_did_not_change(tmp_path):
    src = write(tmp_path / "s.wav", song(bars=8))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE)
    out = tmp_path / "out"
    events, stop = [], threading.Event()
    worker = threading.Thread(target=preview, args=(src, recipe, out), daemon=True,
                              kwargs=dict(options=RenderOptions(cache_dir=tmp_path / "cache", parallel=False),
                                          excerpt=(0.0, 12.0), poll_s=0.05, stop=stop, on_event=events.append))
    worker.start()
    try:
        _wait(events, 1)
        assert events[0].kind == "render" and (out / "cover.wav").is_file() and not (out / "report.html").exists()
        time.sleep(0.05)
        recipe.write_text(RECIPE.replace("lufs: -16", "lufs: -12"))  # a mix-only edit
        _wait(events, 2)
        second = events[1]
        assert second.kind == "render" and second.reused == {"stretch": 1, "revoice": 1, "part": 1}
        assert any(c.startswith("lufs -16") for c in second.changes)
        good = file_digest(out / "cover.wav")
        time.sleep(0.05)
        recipe.write_text("name: [half-written")
        _wait(events, 3)
        assert events[2].kind == "error" and f"{recipe}:1:" in events[2].message
        assert file_digest(out / "cover.wav") == good  # the last good render stays
        recipe.unlink()
        _wait(events, 4)
        assert events[3].kind == "stopped" and "deleted" in events[3].message
        worker.join(10)
        assert not worker.is_alive()
    finally:
        stop.set()


def test_preview_once_from_the_command_line(tmp_path):
    src = write(tmp_path / "s.wav", song(bars=4))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE)
    result = CliRunner().invoke(main, ["preview", str(src), "-r", str(recipe), "--once", "--excerpt", "0:6",
                                       "--cache-dir", str(tmp_path / "cache")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "LUFS" in result.output and (tmp_path / "preview" / "cover.wav").is_file()
