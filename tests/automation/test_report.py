"""The per-render HTML report: self-contained, every image a real PNG, and it renders in headless Chromium."""

import base64
import re
import shutil
import subprocess

import numpy as np
import pytest
from conftest import song

from covermill.analysis import cover
from covermill.automation.report import render_report

SR = 22050
IMG = re.compile(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'")
# Chromium's headless flags for a sandbox-free, network-free, first-run-free page load.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--hide-scrollbars"]


@pytest.fixture(scope="module")
def page():
    original = song(bars=8, seed=0, sr=SR)
    covered = song(bars=8, seed=0, sr=SR, transpose=2, bpm=105.0)
    feats = (cover.features(original, sr=SR), cover.features(covered, sr=SR))
    check = cover.compare_features(*feats)
    qa = {"song": "song <&> 'x'.wav", "recipe": "pop_to_jazz", "tempo": {"source_bpm": 120.0, "cover_bpm": 105.0,
          "target_bpm": 105.0}, "loudness_lufs": -14.0, "cover": {**check, "reference": check}}
    return render_report(original=original, cover=covered, sr=SR, qa=qa, features=feats), check


def test_report_is_self_contained(page):
    text, check = page
    pngs = IMG.findall(text)
    assert len(pngs) == 4  # two spectrograms, chroma, cross-recurrence
    for data in pngs:
        raw = base64.b64decode(data)
        assert raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) > 2000
    assert not re.search(r"(src|href)=['\"]?(https?:|//)", text)
    assert "<script" not in text
    assert "song &lt;&amp;&gt; &#x27;x&#x27;.wav" in text  # escaped
    assert f"Qmax {check['qmax']}" in text


def test_report_takes_the_original_spectrogram_drawn_earlier():
    from concurrent.futures import ThreadPoolExecutor

    from covermill.automation.report import spectrogram_png

    original = song(bars=4, seed=0, sr=SR)
    with ThreadPoolExecutor(1) as pool:
        early = pool.submit(spectrogram_png, original, sr=SR, title="original")
        text = render_report(original=original, cover=original * 0.5, sr=SR, qa={"song": "s.wav", "cover": None},
                             original_spectrogram=early.result())  # the render waits; the report takes data
    pngs = IMG.findall(text)
    assert len(pngs) == 4 and pngs[0] == early.result()  # the early drawing first; cover, chroma, recurrence
    assert pngs[1] != pngs[0]


def test_report_of_silence_has_no_images():
    silent = np.zeros((2, SR * 3), np.float32)
    text = render_report(original=silent, cover=silent, sr=SR, qa={"song": "s.wav", "cover": None})
    assert "No cover verdict" in text and not IMG.findall(text)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium is not installed (make test installs it)")
def test_report_renders_in_headless_chromium(page, tmp_path):
    text, _ = page
    # a probe (test only) that lists every image that failed to decode into the page title
    probe = ("<script>window.addEventListener('load',()=>{const bad=[...document.images].filter("
             "i=>!(i.complete&&i.naturalWidth>0)).length;document.title='images:'+document.images.length+':bad:'+bad;"
             "});</script></body>")
    html_file = tmp_path / "report.html"
    html_file.write_text(text.replace("</body>", probe), encoding="utf-8")
    shot = tmp_path / "shot.png"
    common = [shutil.which("chromium"), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
              "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000"]
    dom = subprocess.run([*common, "--dump-dom", html_file.as_uri()], capture_output=True, text=True, timeout=120)
    assert "<title>images:4:bad:0</title>" in dom.stdout, dom.stderr[-2000:]
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    subprocess.run([*common, f"--screenshot={shot}", "--window-size=1200,2400", html_file.as_uri()],
                   capture_output=True, text=True, timeout=120)
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[0] >= 2000 and pixels.shape[1] >= 1100
    not_white = np.mean(pixels.min(axis=2) < 0.9)
    assert not_white > 0.08, f"only {not_white:.1%} of the screenshot is not white"
    dark = np.mean(pixels.max(axis=2) < 0.25)  # the spectrograms' dark background and the recurrence dots
    assert dark > 0.02, f"only {dark:.1%} of the screenshot is dark: the images did not paint"
