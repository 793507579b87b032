"""Finding 17 of issue 18: paths with rich markup characters are printed, not parsed."""

from click.testing import CliRunner

from covermill.cli import main

FAST = "name: fast\nstems:\n  drums: {gain_db: -6}\n"


def test_batch_prints_a_song_path_with_brackets(tmp_path):
    songs = tmp_path / "songs"
    (songs / "live [").mkdir(parents=True)
    bad = songs / "live [" / "b] take.wav"  # the error line holds ".../live [/b] take.wav": a closing tag
    bad.write_bytes(b"\x00garbage" * 500)
    recipe = tmp_path / "fast.yaml"
    recipe.write_text(FAST)
    out = tmp_path / "out [/bold]"
    result = CliRunner().invoke(main, ["batch", str(songs), "-r", str(recipe), "-o", str(out), "-j", "1"],
                                catch_exceptions=False)
    assert result.exit_code == 1  # one failed song, reported; no MarkupError
    assert "[/b] take.wav: cannot be decoded" in result.output
    assert "[/bold]" in result.output
