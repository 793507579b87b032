"""Audacity through mod-script-pipe: the client's quoting, sessions, failure modes.

Tests marked ``audacity`` drive a real Audacity (Debian 3.2.4) on a private Xvfb; no fake
pipe server stands in for it. One Audacity is started for the module; the last test
kills it on purpose. ``make test`` installs audacity and xvfb.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import sqlite3
import time

import numpy as np
import pytest
import soundfile as sf
from conftest import SR, click_track, sine, song, write

from covermill.automation.audacity.client import MAX_LINE_BYTES, PipeClient, build_command, parse_reply, quote
from covermill.automation.audacity.session import (
    SessionTrack,
    audacity_gain_pan,
    aup3_info,
    aup3_tracks,
    build_session,
    close_project,
    open_session,
)
from covermill.automation.mixer import pan_gains, process_stem
from covermill.errors import AudacityError
from covermill.recipes import Stem

HAVE_AUDACITY = shutil.which("audacity") is not None
needs_audacity = pytest.mark.skipif(not HAVE_AUDACITY, reason="audacity is not installed "
                                    "(apt-get install audacity xvfb; `make test` does it)")


# -- the client, without Audacity ----------------------------------------------------------------------

def test_quote_escapes_quotes_and_backslashes():
    assert quote('a "b" \\c') == '"a \\"b\\" \\\\c"'
    assert build_command("Import2", {"Filename": "/x y/z.wav"}) == 'Import2: Filename="/x y/z.wav"'
    assert build_command("SetTrack", {"Gain": -6.0, "Mute": True, "Track": 2}) == "SetTrack: Gain=-6 Mute=1 Track=2"


@pytest.mark.parametrize("value,why", [("a\nSelectAll:", "newline"), ("a\rb", "carriage return"),
                                       ("C:\\new\\x.wav", "backslash followed by 'n'"), ("a\x00b", "NUL")])
def test_values_audacity_cannot_receive_intact_are_refused(value, why):
    with pytest.raises(AudacityError, match=why):
        build_command("Message", {"Text": value})


def test_overlong_command_is_refused():
    with pytest.raises(AudacityError, match="at most 1000"):
        build_command("Import2", {"Filename": "/" + "x" * MAX_LINE_BYTES})
    with pytest.raises(AudacityError, match="invalid Audacity"):
        build_command("Select: Track=0\nRemoveTracks", {})


def test_reply_parsing():
    assert parse_reply("\n[ 1 ]\nBatchCommand finished: OK\n\n", command="GetInfo") == "[ 1 ]"
    with pytest.raises(AudacityError, match="Audacity refused `Bogus`: Your batch command of Bogus"):
        parse_reply("Your batch command of Bogus was not recognized.\nBatchCommand finished: Failed!\n\n",
                    command="Bogus")


@pytest.mark.parametrize("pan", [-1.0, -0.6, 0.0, 0.3, 1.0])
@pytest.mark.parametrize("channels", [1, 2])
def test_audacity_gain_pan_reproduces_constant_power_law(pan, channels):
    gain_db, q = audacity_gain_pan(-3.0, pan, channels=channels)
    g, q = 10 ** (gain_db / 20), q / 100
    audacity = (g * (1 - max(q, 0)), g * (1 + min(q, 0)))  # Audacity's linear balance
    scale = np.sqrt(2) if channels == 2 else 1.0
    want = tuple(10 ** (-3 / 20) * scale * x for x in pan_gains(pan))
    np.testing.assert_allclose(audacity, want, atol=1e-5)


def test_audacity_mixer_rejects_effects_with_what_it_can_do():
    from covermill.automation.audacity.mixer import check_recipe
    from covermill.errors import ParameterError
    from covermill.recipes.schema import Effect, Recipe

    recipe = Recipe(name="fx", stems={"drums": Stem(effects=(Effect(plugin="Reverb"),)), "bass": Stem(gain_db=-3)})
    with pytest.raises(ParameterError, match=r"stems\.drums\.effects \(Reverb\).*can express: stem gain_db, stem pan"):
        check_recipe(recipe)
    check_recipe(Recipe(name="ok", stems={"bass": Stem(gain_db=-3, pan=0.2)}))


# -- the command line, refusals that need no Audacity ------------------------------------------------------

def test_cli_refuses_effects_for_the_audacity_mixer_and_missing_sessions(tmp_path):
    from click.testing import CliRunner

    from covermill.cli import main

    src = write(tmp_path / "song.wav", song(bars=2))
    result = CliRunner().invoke(main, ["render", str(src), "-r", "pop_to_jazz", "-o", str(tmp_path / "out"),
                                       "--mixer", "audacity", "--quiet"])
    assert result.exit_code == 1 and "cannot apply stems." in result.output and "can express:" in result.output
    assert not (tmp_path / "out").exists()
    result = CliRunner().invoke(main, ["audacity", "open", str(tmp_path / "missing.aup3")])
    assert result.exit_code == 1 and "no such file" in result.output
    (tmp_path / "bad.aup3").write_text("not a database")
    result = CliRunner().invoke(main, ["audacity", "open", str(tmp_path / "bad.aup3")])
    assert result.exit_code == 1 and "not a readable Audacity project" in result.output


# -- a real Audacity -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def app(tmp_path_factory):
    if not HAVE_AUDACITY:
        pytest.skip("audacity is not installed (apt-get install audacity xvfb; `make test` does it)")
    from covermill.automation.audacity import Audacity

    started = Audacity.start(profile=tmp_path_factory.mktemp("audacity-profile"), timeout_s=60,
                             command_timeout_s=30, headless=True)
    try:
        yield started
    finally:
        started.stop()
        assert started.proc is None


def tracks(app) -> list[dict]:
    # Audacity's JSON escapes quotes but not backslashes: escape those that do not precede a quote
    text = app.client.do("GetInfo", Type="Tracks", Format="JSON") or "[]"
    return json.loads(re.sub(r'\\(?!")', r"\\\\", text))


def clear(app) -> None:
    app.client.do("SelectAll")
    app.client.do("RemoveTracks")


@needs_audacity
def test_injection_through_a_filename_or_value_cannot_run_a_second_command(app, tmp_path):
    folder = tmp_path / 'dir with "quotes" and \\ back\\slashes'
    folder.mkdir()
    name = 'it\'s "a" \\track\\ ; RemoveTracks: .wav'
    path = write(folder / name, sine(440.0, 1.0))
    app.client.do("Import2", Filename=str(path))
    app.client.do("Import2", Filename=str(path))
    got = tracks(app)
    assert [t["name"] for t in got] == [path.stem, path.stem]  # imported, by its exact name, twice
    # A value that closes the quote and appends parameters or commands comes back verbatim.
    for value in ['x" Text="y', 'x\\" ; RemoveTracks:', 'x\\\\"', "é ü 日本 \\t"]:
        assert app.client.do("Message", Text=value) == value
    with pytest.raises(AudacityError, match="newline"):
        app.client.do("Message", Text='x"\nRemoveTracks:')
    assert len(tracks(app)) == 2  # nothing was removed
    with pytest.raises(AudacityError, match="not recognized"):
        app.client.do("Bogus")
    with pytest.raises(AudacityError, match="Audacity refused `SetLabel`: .+") as info:
        app.client.do("SetLabel", Label=99, Text="x")
    print(info.value)
    clear(app)


@needs_audacity
def test_attach_to_a_running_audacity_and_refuse_a_second_one(app, tmp_path):
    from covermill.automation.audacity import Audacity

    with pytest.raises(AudacityError, match="already running"):
        Audacity.start(profile=tmp_path / "other", headless=True)
    app.client.close()  # one client at a time on the per-user pipes
    try:
        attached = Audacity.attach(timeout_s=10)
        assert not attached.owned
        assert attached.client.do("Message", Text="attached") == "attached"
        attached.stop()  # leaves an Audacity it did not start running
        assert app.alive()
    finally:
        app.client.connect(timeout_s=10)
    assert app.client.do("Message", Text="back") == "back"


@needs_audacity
def test_session_holds_named_tracks_and_exports_covermills_mix(app, tmp_path, monkeypatch):
    # two stems as covermill mixes them (constant power pan, gain) vs Audacity playing the session
    a = song(bars=2)
    b = sine(330.0, a.shape[1] / SR, amp=0.3)
    specs = {"keys": Stem(gain_db=-4.0, pan=-0.5), "pad": Stem(gain_db=2.0, pan=0.8)}
    ta = SessionTrack("keys", write(tmp_path / "a.wav", a, subtype="FLOAT"), gain_db=-4.0, pan=-0.5)
    tb = SessionTrack("pad", write(tmp_path / "b.wav", b, subtype="FLOAT"), gain_db=2.0, pan=0.8)
    ref = SessionTrack("reference", write(tmp_path / "r.wav", a, subtype="FLOAT"), mute=True)
    monkeypatch.chdir(tmp_path)  # a relative target: Audacity would resolve it against its own folder
    build_session(app, [ref, ta, tb], "out/session.aup3", labels=[(0.5, "1.1"), (1.0, "1.2")])
    target = tmp_path / "out" / "session.aup3"
    assert sorted(p.name for p in target.parent.iterdir()) == ["session.aup3"]  # no -wal, no staging
    assert aup3_tracks(target) == ["reference", "keys", "pad", "beats"]
    with contextlib.closing(sqlite3.connect(target)) as db:  # an open connection would make Audacity ask
        assert db.execute("SELECT count(*) FROM sampleblocks").fetchone()[0] > 0
    assert tracks(app) == []  # closed after saving: the next session starts empty

    reopened, names = open_session(target, app=app, timeout_s=10)
    assert names == ["reference", "keys", "pad", "beats"]
    info = tracks(app)
    assert [t["name"] for t in info] == names and info[0]["mute"] == 1
    labels = json.loads(app.client.do("GetInfo", Type="Labels"))
    assert [x[2] for x in labels[0][1]] == ["1.1", "1.2"]
    exported = tmp_path / "mix.wav"
    app.client.do("SelectAll")  # Export2 exports the selection (muted tracks stay out of the mix)
    app.client.do("Export2", Filename=str(exported), NumChannels=2)
    close_project(app)
    got, sr = sf.read(exported, dtype="float32", always_2d=True)
    want = process_stem(a, sr=SR, spec=specs["keys"]) + process_stem(b, sr=SR, spec=specs["pad"])
    n = min(got.shape[0], want.shape[1])
    assert sr == SR and abs(got.shape[0] - want.shape[1]) < 0.01 * SR
    for ch in range(2):
        diff_db = 20 * np.log10(np.sqrt(np.mean(got[:n, ch] ** 2)) / np.sqrt(np.mean(want[ch, :n] ** 2)))
        assert abs(diff_db) < 0.1, (ch, diff_db)
        assert np.corrcoef(got[:n, ch], want[ch, :n])[0, 1] > 0.999


@needs_audacity
def test_render_with_session(app, tmp_path):
    from covermill.automation.pipeline import render
    from covermill.recipes.loader import load_recipe

    recipe_file = tmp_path / "quick.yaml"
    recipe_file.write_text("name: quick\nstems:\n  vocals: {revoice: {instrument: flute}, pan: 0.4}\n"
                           "  drums: {gain_db: -6, pan: -0.3}\n  bass: {action: mute}\ntempo: {ratio: 0.9}\n")
    src = write(tmp_path / "song.wav", song(bars=2))
    result = render(src, load_recipe(recipe_file), tmp_path / "out", session=True, mixer="audacity", audacity=app)
    assert result.qa["outputs"]["session"] == "session.aup3" and result.qa["mixer"] == "audacity"
    assert abs(result.qa["duration_s"] - result.qa["source_duration_s"] / 0.9) < 0.05
    assert abs(result.qa["loudness_lufs"] - (-14.0)) < 0.5
    assert "session" in result.qa["stages"]
    names = aup3_tracks(tmp_path / "out" / "session.aup3")
    assert names[:10] == ["original", "stem vocals", "stem drums", "stem bass", "stem other",
                          "vocals", "drums", "other", "cover (mastered)", "beats"]
    assert set(names[10:]) <= {"bars", "sections", "chords"} and "bars" in names  # from the lead sheet


def spectral_correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Correlation of log-magnitude spectrograms (46 ms frames): alike in time and frequency, phase ignored."""
    from scipy.signal import stft

    sx, sy = (np.log1p(100 * np.abs(stft(z, nperseg=2048, noverlap=1024)[2])) for z in (x, y))
    return float(np.corrcoef(sx.ravel(), sy.ravel())[0, 1])


@needs_audacity
def test_audacity_mix_matches_the_pedalboard_mix(app):
    """gain/pan/tempo only: Audacity vs pedalboard + Rubber Band, before mastering.

    Gain and pan are sample-exact; tempo is a different algorithm (SoundTouch vs Rubber Band
    R3), so the stretched mixes agree in level and spectrogram, not in phase.
    """
    from covermill.automation.audacity.mixer import mix
    from covermill.automation.mixer import sum_stems
    from covermill.automation.tempo import stretch

    a = song(bars=3)
    n = a.shape[1]
    stems = {"music": (a, Stem(gain_db=-2.0, pan=-0.4)),
             "other": (song(bars=3, transpose=5, seed=1), Stem(gain_db=3.0, pan=0.7)),
             "clicks": (click_track(120.0, n / SR)[:, :n], Stem(gain_db=-6.0, pan=0.0))}
    bus = sum_stems([process_stem(y, sr=SR, spec=s) for y, s in stems.values()], length=n)
    for ratio in (1.0, 0.9):
        n_out = round(n / ratio)
        t0 = time.perf_counter()
        ours = stretch(bus, sr=SR, time_ratio=ratio)
        t_pedalboard = time.perf_counter() - t0
        t0 = time.perf_counter()
        theirs = mix(app, sr=SR, kept=stems, voiced={}, time_ratio=ratio, semitones=0.0, n_out=n_out)
        t_audacity = time.perf_counter() - t0
        print(f"ratio {ratio}, {n / SR:.1f} s: pedalboard {t_pedalboard:.2f} s, audacity {t_audacity:.2f} s")
        assert theirs.shape == ours.shape == (2, n_out)
        for ch in range(2):
            diff_db = 20 * np.log10(np.sqrt(np.mean(theirs[ch] ** 2)) / np.sqrt(np.mean(ours[ch] ** 2)))
            assert abs(diff_db) < (0.1 if ratio == 1.0 else 0.5), (ratio, ch, diff_db)
            if ratio == 1.0:
                assert np.corrcoef(ours[ch], theirs[ch])[0, 1] > 0.9999
            else:
                assert spectral_correlation(ours[ch], theirs[ch]) > 0.9
            print(ratio, ch, round(diff_db, 3), spectral_correlation(ours[ch], theirs[ch]))


def _count_commands(monkeypatch) -> list[tuple[PipeClient, str]]:
    """Record every line written to a pipe with the client that wrote it (the real client still
    sends it): a build that restarts a crashed Audacity continues on a new client."""
    sent: list[tuple[PipeClient, str]] = []
    original = PipeClient._write

    def write(self, line: str) -> None:
        sent.append((self, line))
        original(self, line)

    monkeypatch.setattr(PipeClient, "_write", write)
    return sent


@needs_audacity
def test_session_labels_and_settings_take_a_fixed_number_of_commands(app, tmp_path, monkeypatch):
    from covermill.automation.audacity.labels import file_name_for

    a = song(bars=2)
    names = ['pad "wide" é', "keys", "original"]
    files = [write(tmp_path / f"{i}" / file_name_for(n), a, subtype="FLOAT") for i, n in enumerate(names)
             if (tmp_path / f"{i}").mkdir() is None]
    tracks_ = [SessionTrack(names[0], files[0], gain_db=-3.0, pan=0.5), SessionTrack(names[1], files[1]),
               SessionTrack(names[2], files[2], mute=True, collapsed=True)]  # imported first, moved last
    dur = a.shape[1] / SR
    counts = []
    for n_labels in (3, 300):
        beats = [(dur * k / n_labels, f"{k // 4 + 1}.{k % 4 + 1}") for k in range(n_labels)]
        groups = {"sections": [(0.0, dur / 2, 'Verse "1" é'), (dur / 2, dur, "Chorus")],
                  "chords": [(0.0, 1.0, "C:maj"), (1.0, 2.5, "A:min7")]}
        sent = _count_commands(monkeypatch)
        target = build_session(app, tracks_, tmp_path / f"s{n_labels}.aup3", labels=beats, label_tracks=groups)
        monkeypatch.undo()
        counts.append(len([line for client, line in sent if client is app.client]))  # the attempt that built it
        info = aup3_info(target)
        assert [t["name"] for t in info] == names + ["beats", "sections", "chords"]
        assert [t["kind"] for t in info] == ["wave"] * 3 + ["label"] * 3
        # each clip carries its track's name (a quote cannot be in a List-of-Files path: "_")
        assert [t["clips"] for t in info[:3]] == [['pad _wide_ é'], ["keys"], ["original"]]
        # fitted to the window (1280x1024 in covermill's profile): the collapsed reference track takes
        # a title bar (< 40 px), the rest shares what is left of the 1024-px screen
        assert [t["minimized"] for t in info] == [False, False, True, False, False, False]
        assert sum(t["height"] for t in info if not t["minimized"]) + 40 <= 1024
    assert counts[0] == counts[1] <= 20, counts  # independent of the number of labels (2 for the é name)

    _, got = open_session(target, app=app, timeout_s=10)
    labels = json.loads(app.client.do("GetInfo", Type="Labels"))
    texts = [[x[2] for x in track[1]] for track in labels]
    assert texts[0][:5] == ["1.1", "1.2", "1.3", "1.4", "2.1"] and len(texts[0]) == 300
    assert texts[1] == ['Verse "1" é', "Chorus"] and texts[2] == ["C:maj", "A:min7"]
    assert labels[2][1][1][:2] == [1.0, 2.5]
    info = tracks(app)
    assert info[0]["mute"] == 0 and info[2]["mute"] == 1 and info[1]["gain"] == pytest.approx(1.0)
    gain_db, pan = audacity_gain_pan(-3.0, 0.5)
    assert info[0]["pan"] == pytest.approx(pan / 100, abs=1e-3)
    assert 20 * np.log10(info[0]["gain"]) == pytest.approx(gain_db, abs=1e-3)
    close_project(app)


@needs_audacity
def test_render_session_with_lead_sheet_label_tracks(app, tmp_path):
    from covermill.automation.audacity.labels import leadsheet_label_tracks
    from covermill.automation.audacity.session import render_session
    from covermill.leadsheet import Chord, LeadSheet, Section

    y = song(bars=2)
    dur = y.shape[1] / SR
    sheet = LeadSheet(duration_s=dur, bpm=120.0, beats_s=tuple(np.arange(0, dur, 0.5)), downbeats_s=(0.0, 2.0),
                      chords=(Chord(0.0, 2.0, 0, "maj"), Chord(2.0, dur, None)),
                      sections=(Section(0.0, dur, "A"),))
    out = render_session(tmp_path / "session.aup3", sr=SR, original=y, stems={"drums": y}, cover=y,
                         processed={"drums": (y, Stem(gain_db=-2.0))}, beats_s=sheet.beats_s,
                         downbeats_s=sheet.downbeats_s, app=app,
                         label_tracks={**leadsheet_label_tracks(sheet), "empty": []})
    info = aup3_info(out)
    assert [t["name"] for t in info] == ["original", "stem drums", "drums", "cover (mastered)",
                                         "beats", "bars", "sections", "chords"]
    assert [t["clips"] for t in info[:4]] == [["original"], ["stem drums"], ["drums"], ["cover (mastered)"]]


@needs_audacity
@pytest.mark.parametrize(("crash_before", "how"), [("NyquistPrompt", "exit"), ("SaveProject2", "exit"),
                                                   ("Close", "exit"), ("Close", "hang")])
def test_session_survives_audacity_dying_mid_build(app, tmp_path, monkeypatch, caplog, crash_before, how):
    """Audacity 3.2.4 under Xvfb now and then crashes in ``Close`` (its crash report, a
    ``/tmp/Audacity_dbgrpt-<pid>-*`` folder, ends right after Close opens the fresh project), then
    exits or hangs in its crash reporter: the build starts again in a restarted Audacity. Here the
    process is really killed (``exit``) or stopped with its crash-report folder written (``hang``)
    before the command ``crash_before`` is sent."""
    import os
    import signal
    import tempfile
    from pathlib import Path

    y = song(bars=2)
    files = [write(tmp_path / f"{name}.wav", y, subtype="FLOAT") for name in ("keys", "bass")]
    tracks_ = [SessionTrack("keys", files[0]), SessionTrack("bass", files[1], gain_db=-6.0)]
    killed, reports = [], []
    original = PipeClient._write

    def crash(self, line: str) -> None:
        if line.startswith(crash_before) and not killed:
            killed.append(app.proc.pid)
            if how == "exit":
                app.proc.kill()
                app.proc.wait(10)
            else:
                os.kill(app.proc.pid, signal.SIGSTOP)
                report = Path(tempfile.gettempdir()) / f"Audacity_dbgrpt-{app.proc.pid}-test"
                report.mkdir()
                reports.append(report)
        original(self, line)

    monkeypatch.setattr(PipeClient, "_write", crash)
    t0 = time.monotonic()
    try:
        with caplog.at_level("WARNING", logger="covermill.automation.audacity.session"):
            target = build_session(app, tracks_, tmp_path / "s.aup3", labels=[(0.0, "1.1"), (0.5, "1.2")],
                                   label_tracks={"chords": [(0.0, 1.0, "C:maj")]})
    finally:
        monkeypatch.undo()
        for report in reports:
            report.rmdir()
    assert time.monotonic() - t0 < 60, "a crash is noticed at once, not after the command timeout"
    assert killed and app.proc.pid != killed[0] and app.alive(), "a fresh Audacity took over"
    assert "restarting Audacity and building s.aup3 again" in caplog.text
    assert [t["name"] for t in aup3_info(target)] == ["keys", "bass", "beats", "chords"]
    assert not list(tmp_path.glob(".s.aup3.staging-*")), "the failed attempt's staging folder is gone"
    assert app.client.do("GetInfo", Type="Tracks", Format="Brief").strip() == "", "left empty for the next session"


@needs_audacity
def test_dead_or_hung_audacity_gives_an_error_not_a_hang(app, tmp_path):
    """Runs last: it leaves the module's Audacity stuck, then kills it."""
    bad = tmp_path / "not audio.wav"
    bad.write_bytes(b"this is not a wav file" * 100)
    t0 = time.monotonic()
    with pytest.raises(AudacityError, match="did not answer `Import2` within 2 s"):
        app.client.do("Import2", Filename=str(bad), timeout_s=2)  # an error dialog waits for a person
    assert time.monotonic() - t0 < 4
    app.proc.kill()
    app.proc.wait(10)
    t0 = time.monotonic()
    with pytest.raises(AudacityError, match="exited or crashed"):
        app.client.do("GetInfo", Type="Tracks", timeout_s=10)
    assert time.monotonic() - t0 < 3
    # the pipes outlive Audacity; a new client finds nobody listening and says so
    t0 = time.monotonic()
    with pytest.raises(AudacityError, match="no Audacity is listening"):
        PipeClient().connect(timeout_s=1.0)
    assert time.monotonic() - t0 < 3

