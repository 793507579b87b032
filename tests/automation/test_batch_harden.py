"""Findings 3, 4, 6 and 16 of issue 18: batch output names, dying workers, a private cluster, OUT in FOLDER."""

import os
from pathlib import Path

import pytest
from conftest import song, write

from covermill.automation.batch import clean_stale, find_songs, out_lock, plan, read_manifest, run_batch, run_job
from covermill.errors import ParameterError

FAST = "name: fast\nstems:\n  drums: {gain_db: -6}\n"


def kill_worker_on_doomed(job, *args):
    """The task of the dying-worker test: a song named `doomed` kills the worker process."""
    if "doomed" in Path(job.song).name:
        os._exit(1)
    return run_job(job, *args)


def _touch_songs(folder: Path, names):
    for name in names:
        p = folder / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"RIFF")  # planning never decodes
    return folder


def test_output_names_are_unique_readable_and_stable(tmp_path):
    """Finding 3: no two songs (or two recipes named alike) share an output folder."""
    songs = _touch_songs(tmp_path / "songs", ["track.wav", "track.flac", "a b.wav", "a_b.wav", "夜に駆ける.wav",
                                              "群青.wav", "Song.wav", "song.mp3", "what?.wav", "what_.wav",
                                              "disc 1/01 Intro.flac", "disc:1/01 Intro.flac"])
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "fast.yaml").write_text(FAST)
    (tmp_path / "two").mkdir()
    (tmp_path / "two" / "fast.yaml").write_text(FAST)
    recipes = [str(tmp_path / "one" / "fast.yaml"), str(tmp_path / "two" / "fast.yaml")]
    out = tmp_path / "out"
    jobs = plan(songs, recipes, out)
    dirs = [j.out_dir for j in jobs]
    assert len(jobs) == 24 and len(set(dirs)) == 24
    assert len({d.casefold() for d in dirs}) == 24  # also on a case-blind disk
    rel = {Path(j.song).relative_to(songs).as_posix(): Path(j.out_dir).relative_to(out).parent.as_posix()
           for j in jobs}
    assert rel["夜に駆ける.wav"] == "夜に駆ける" and rel["群青.wav"] == "群青"
    assert rel["a b.wav"] == "a b" and rel["a_b.wav"] == "a_b" and rel["disc 1/01 Intro.flac"] == "disc 1/01 Intro"
    assert rel["track.wav"] == "track-wav" and rel["track.flac"] == "track-flac"
    assert rel["what?.wav"].startswith("what_-") and rel["what_.wav"] == "what_"
    assert plan(songs, recipes, out) == jobs  # stable


def test_rendered_pairs_keep_their_folder_when_songs_are_added(tmp_path):
    songs = _touch_songs(tmp_path / "songs", ["track.wav"])
    recipe = tmp_path / "fast.yaml"
    recipe.write_text(FAST)
    out = tmp_path / "out"
    (first,) = plan(songs, [str(recipe)], out)
    assert Path(first.out_dir) == out / "track" / "fast"
    out.mkdir()
    (out / "manifest.jsonl").write_text(
        f'{{"song": "{first.song}", "recipe": "{first.recipe}", "output": "{first.out_dir}", "status": "ok"}}\n')
    _touch_songs(songs, ["track.flac"])
    again = {Path(j.song).name: j.out_dir for j in plan(songs, [str(recipe)], out)}
    assert again["track.wav"] == first.out_dir and again["track.flac"] != first.out_dir


def test_out_inside_folder_is_not_rendered_again(tmp_path):
    """Finding 16: the outputs of an earlier batch are not songs."""
    songs = _touch_songs(tmp_path / "songs", ["a.wav", "covers/a/fast/cover.wav", "covers/a/fast/stems/bass.wav"])
    assert [p.name for p in find_songs(songs, exclude=songs / "covers")] == ["a.wav"]
    recipe = tmp_path / "fast.yaml"
    recipe.write_text(FAST)
    assert [Path(j.song).name for j in plan(songs, [str(recipe)], songs / "covers")] == ["a.wav"]


def test_clean_stale_never_deletes_files_it_did_not_make(tmp_path):
    """Finding 16: a user's hidden `.movie.mkv.part` (or any other name) survives."""
    keep = [".movie.mkv.part", ".notes.staging-old", ".cover.wav.part", "x.wav.part"]
    for name in keep:
        (tmp_path / name).write_bytes(b"user data")
    (tmp_path / ".manifest.jsonl.k2j_9xq1.jsonl.part").write_text("half")
    (tmp_path / ".fast.staging-a1b2c3d4").mkdir()
    assert clean_stale(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)


def test_two_batches_on_one_out_are_refused(tmp_path):
    """Finding 16: the second batch on an OUT stops at once, with one line."""
    songs = tmp_path / "songs"
    songs.mkdir()
    write(songs / "a.wav", song(bars=2, seed=1))
    recipe = tmp_path / "fast.yaml"
    recipe.write_text(FAST)
    out = tmp_path / "out"
    out.mkdir()
    with out_lock(out):
        with pytest.raises(ParameterError, match=rf"another covermill batch \(pid {os.getpid()}\) is writing here"):
            run_batch(songs, [str(recipe)], out, workers=1, separator="dsp")
    assert not (out / "manifest.jsonl").exists()


def test_a_song_that_kills_its_worker_is_recorded_and_the_batch_goes_on(tmp_path):
    """Finding 4: retried at most twice, then failed with the reason; manifest and index written."""
    songs = tmp_path / "songs"
    songs.mkdir()
    write(songs / "a.wav", song(bars=2, seed=1))
    write(songs / "doomed.wav", song(bars=2, seed=2))
    recipe = tmp_path / "fast.yaml"
    recipe.write_text(FAST)
    out = tmp_path / "out"
    summary = run_batch(songs, [str(recipe)], out, workers=1, separator="dsp", task=kill_worker_on_doomed,
                        separate_first_pass=False)
    assert (summary.ok, summary.failed) == (1, 1)
    by_name = {Path(k[0]).name: r for k, r in read_manifest(out).items()}
    assert by_name["a.wav"]["status"] == "ok"
    assert by_name["doomed.wav"]["status"] == "failed" and "died 3 times" in by_name["doomed.wav"]["error"]
    assert "died 3 times" in (out / "index.html").read_text()


def test_local_cluster_is_private(tmp_path):
    """Finding 6: the local cluster speaks TLS and refuses a client without this run's certificate."""
    from distributed import Client
    from distributed.security import Security

    from covermill.automation.batch_cluster import make_client

    client, cluster = make_client(workers=1, memory_limit=None, scheduler=None)
    try:
        assert cluster.scheduler_address.startswith("tls://127.0.0.1:")
        assert client.submit(sum, [1, 2]).result() == 3
        with pytest.raises(Exception, match="(?i)certificate|ssl|tls"):
            Client(cluster.scheduler_address, security=Security.temporary(), timeout="5s")
        with pytest.raises(Exception):  # noqa: B017 - plain TCP: refused one way or another
            Client(cluster.scheduler_address.replace("tls://", "tcp://"), timeout="3s")
    finally:
        client.close()
        cluster.close()


def test_lock_that_is_a_link_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".covermill-batch.lock").symlink_to(tmp_path / "elsewhere")
    from covermill.errors import OutputError

    with pytest.raises(OutputError, match="cannot open the batch lock"):
        with out_lock(out):
            pass
    assert not (tmp_path / "elsewhere").exists()
