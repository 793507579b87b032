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


# -- the "Listen" section -------------------------------------------------------------------------------

def _listen_page(tmp_path):
    import soundfile as sf

    from covermill.leadsheet import Chord, Key, LeadSheet, Section

    original = song(bars=4, seed=0, sr=SR)
    covered = song(bars=4, seed=0, sr=SR, transpose=2, bpm=100.0)
    dur = covered.shape[1] / SR
    bar = 4 * 60 / 100.0
    sheet = LeadSheet(duration_s=dur, bpm=100.0, beats_s=tuple(np.arange(0, dur, bar / 4)),
                      downbeats_s=tuple(np.arange(0, dur - 1e-6, bar)), key=Key(2, "major"),
                      chords=(Chord(0, bar, 2, "maj"), Chord(bar, 2 * bar, 7, "maj"), Chord(2 * bar, dur, None)),
                      sections=(Section(0, 2 * bar, "A"), Section(2 * bar, dur, "B <&>")))
    (tmp_path / "cover_stems").mkdir()
    files = {"original.wav": original, "cover.wav": covered, "cover_stems/bass part.wav": covered * 0.3,
             "cover_stems/drums.wav": covered * 0.2}
    for name, y in files.items():
        sf.write(tmp_path / name, y.T, SR)
    text = render_report(original=original, cover=covered, sr=SR, qa={"song": "s.wav", "cover": None},
                         original_url="original.wav", cover_url="cover.wav", leadsheet=sheet,
                         stem_urls={"bass": "cover_stems/bass part.wav", "drums": "cover_stems/drums.wav"})
    return text, sheet, dur


def test_listen_section_links_players_and_draws_the_lead_sheet(tmp_path):
    from urllib.parse import unquote

    text, sheet, dur = _listen_page(tmp_path)
    srcs = re.findall(r"<audio id='play-(\w+)'[^>]*src='([^']+)'", text)
    assert srcs == [("original", "original.wav"), ("cover", "cover.wav")]
    stems = re.findall(r"<audio controls preload='none' src='([^']+)'", text)
    assert stems == ["cover_stems/bass%20part.wav", "cover_stems/drums.wav"]
    assert all((tmp_path / unquote(s)).is_file() for _, s in srcs) and all((tmp_path / unquote(s)).is_file() for s in stems)
    strips = re.findall(r"<img id='strip-(\w+)'[^>]*src='data:image/png;base64,([A-Za-z0-9+/=]+)'", text)
    assert [n for n, _ in strips] == ["original", "cover"]
    assert all(base64.b64decode(d)[:8] == b"\x89PNG\r\n\x1a\n" for _, d in strips)
    # lanes: sections, chords (no-chord left out), bars; positions are fractions of the cover
    assert "B &lt;&amp;&gt;" in text and ">D:maj<" in text and ">G:maj<" in text and ">N<" not in text
    first_b = re.search(r"data-a='([\d.]+)' data-b='([\d.]+)'[^>]*title='B &lt;&amp;&gt;'", text)
    assert float(first_b.group(1)) == pytest.approx(sheet.sections[1].start_s / dur, abs=1e-4)
    assert len(re.findall(r"<div class='lane' aria-label='bars'>", text)) == 1
    assert text.count("<script>") == 1 and "key D major" in text


@pytest.mark.parametrize("url", ["../cover.wav", "/tmp/cover.wav", "http://example.com/c.wav", "a/../../c.wav", " "])
def test_player_links_must_stay_beside_the_report(url):
    from covermill.errors import ParameterError

    y = song(bars=1, sr=SR)
    with pytest.raises(ParameterError, match="player link"):
        render_report(original=y, cover=y, sr=SR, qa={"song": "s.wav", "cover": None}, cover_url=url)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium is not installed (make test installs it)")
def test_listen_section_plays_and_switches_in_headless_chromium(tmp_path):
    text, sheet, dur = _listen_page(tmp_path)
    # a probe (test only): load every player's metadata, seek the cover to 50 %, switch to the original
    probe = ("<script>window.addEventListener('load',()=>{const all=[...document.querySelectorAll('audio')];"
             "let left=all.length,bad=[];const done=()=>{if(--left>0)return;"
             "const a=document.getElementById('play-original'),b=document.getElementById('play-cover');"
             "b.currentTime=b.duration/2;window.coverAB('original');"
             "setTimeout(()=>{const on=[...document.querySelectorAll('.lane span.on')].map(s=>s.textContent);"
             "document.title=JSON.stringify({n:all.length,bad:bad,a:a.currentTime/a.duration,"
             "da:a.duration,db:b.duration,on:on,hidden:document.getElementById('strip-cover').hidden,"
             "head:document.getElementById('playhead').style.left});},50);};"
             "all.forEach(x=>{x.preload='metadata';x.addEventListener('loadedmetadata',done,{once:true});"
             "x.addEventListener('error',()=>{bad.push(x.src);done();},{once:true});x.load();});});</script></body>")
    html_file = tmp_path / "report.html"
    html_file.write_text(text.replace("</body>", probe), encoding="utf-8")
    import html as html_lib
    import json

    # the players' metadata loads from disk in real time while the page runs on virtual time:
    # a busy machine can need a longer budget, so the page is given up to three
    for budget in (10000, 30000, 90000):
        cmd = [shutil.which("chromium"), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / f'profile{budget}'}",
               "--enable-logging=stderr", "--v=0", "--autoplay-policy=no-user-gesture-required",
               f"--virtual-time-budget={budget}", "--dump-dom", html_file.as_uri()]
        dom = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        title = re.search(r"<title>(.*?)</title>", dom.stdout, re.S)
        if title and title.group(1).startswith("{"):
            break
    assert title and title.group(1).startswith("{"), (title and title.group(1), dom.stderr[-2000:])
    got = json.loads(html_lib.unescape(title.group(1)))
    assert got["n"] == 4 and got["bad"] == []  # every player's file exists and decodes
    assert got["da"] == pytest.approx(4 * 4 * 60 / 120, abs=0.1) and got["db"] == pytest.approx(dur, abs=0.1)
    assert got["a"] == pytest.approx(0.5, abs=0.01)  # A/B kept the position (same fraction of the song)
    assert got["hidden"] is True and got["head"].startswith("50")
    assert "B <&>" in got["on"]  # the lane under the playhead is highlighted
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
