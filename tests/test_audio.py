import os

import numpy as np
import pytest
import soundfile as sf
from conftest import SR, file_digest, sine, write

from covermill.audio import check_audio, load_audio, resample, save_audio, to_stereo
from covermill.errors import AudioError, ParameterError


def dominant_hz(y, sr):
    spec = np.abs(np.fft.rfft(y[0] * np.hanning(y.shape[1])))
    return np.argmax(spec) * sr / y.shape[1]


@pytest.mark.parametrize("sr_in", [8000, 22050, 44100, 48000, 96000])
@pytest.mark.parametrize("channels", [1, 2])
def test_load_resamples_and_keeps_pitch(tmp_path, sr_in, channels):
    path = write(tmp_path / "a.wav", sine(440.0, 3.0, sr=sr_in, channels=channels), sr_in)
    y = load_audio(path)
    assert y.dtype == np.float32 and y.shape[0] == 2
    assert abs(y.shape[1] - 3.0 * SR) <= 2
    assert abs(dominant_hz(y, SR) - 440.0) < 1.0
    np.testing.assert_allclose(y[0], y[1], atol=1e-6)


@pytest.mark.parametrize("ext,fmt", [(".flac", "FLAC"), (".ogg", "OGG"), (".mp3", "MP3"), (".aiff", "AIFF")])
def test_load_codecs(tmp_path, ext, fmt):
    path = write(tmp_path / f"a{ext}", sine(330.0, 2.5), SR, format=fmt)
    y = load_audio(path)
    assert abs(dominant_hz(y, SR) - 330.0) < 2.0
    assert y.shape[1] >= 2.4 * SR


def test_load_m4a_through_ffmpeg(tmp_path):
    import shutil
    import subprocess

    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed (make test installs it)")
    wav = write(tmp_path / "a.wav", sine(550.0, 2.5), SR)
    m4a = tmp_path / "a.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "aac", str(m4a)], check=True)
    y = load_audio(m4a)
    assert abs(dominant_hz(y, SR) - 550.0) < 2.0


def test_six_channel_downmix_rule():
    # 5.1 order L R C LFE Ls Rs: centre at -3 dB into both sides, LFE dropped
    n = 100
    y = np.zeros((6, n), np.float32)
    y[2] = 1.0  # centre
    y[3] = 1.0  # LFE
    y[4] = 0.5  # left surround
    out = to_stereo(y)
    np.testing.assert_allclose(out[0], 1 / np.sqrt(2) + 0.5 / np.sqrt(2), rtol=1e-6)
    np.testing.assert_allclose(out[1], 1 / np.sqrt(2), rtol=1e-6)


def test_resample_length_and_dtype():
    y = sine(100.0, 1.0, sr=8000)
    out = resample(y, sr_in=8000, sr_out=SR)
    assert out.shape == (2, SR) and out.dtype == np.float32


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda p: p, "no such file"),
        (lambda p: (p.write_bytes(b""), p)[1], "empty"),
        (lambda p: (p.write_bytes(os.urandom(4096)), p)[1], "cannot be decoded"),
        (lambda p: (p.write_text("this is not audio\n" * 50), p)[1], "cannot be decoded"),
    ],
    ids=["missing", "empty", "corrupt", "text"],
)
def test_bad_files_refused(tmp_path, make, match):
    path = make(tmp_path / "song.wav")
    with pytest.raises(AudioError, match=match) as info:
        load_audio(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_folder_and_short_refused(tmp_path):
    with pytest.raises(AudioError, match="is a folder"):
        load_audio(tmp_path)
    short = write(tmp_path / "short.wav", sine(440, 0.5), SR)
    with pytest.raises(AudioError, match="at least"):
        load_audio(short)


def test_nan_samples_refused(tmp_path):
    y = sine(440, 3.0)
    y[0, 100] = np.nan
    path = write(tmp_path / "nan.wav", y, SR, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        load_audio(path)


def test_load_never_modifies_input(tmp_path):
    path = write(tmp_path / "in.flac", sine(440, 3.0, sr=48000), 48000)
    before, mtime = file_digest(path), path.stat().st_mtime_ns
    load_audio(path)
    assert file_digest(path) == before and path.stat().st_mtime_ns == mtime


def test_save_is_atomic_and_clamps(tmp_path):
    target = tmp_path / "out.wav"
    save_audio(target, sine(440, 1.0, amp=2.0), sr=SR)
    data, sr = sf.read(target)
    assert sr == SR and np.max(np.abs(data)) <= 1.0
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]  # no temp file left
    with pytest.raises(ParameterError):
        save_audio(target, np.full((2, 10), np.nan, np.float32), sr=SR)
    data2, _ = sf.read(target)
    np.testing.assert_array_equal(data, data2)  # failed write left the old file intact


def test_check_audio_rejects_bad_arrays():
    with pytest.raises(ParameterError, match="sr"):
        check_audio(np.zeros((2, 10), np.float32), 0)
    with pytest.raises(ParameterError, match="float"):
        check_audio(np.zeros((2, 10), np.int16), SR)


def test_excerpt_decodes_only_that_part(tmp_path):
    """Finding 12 of issue 18: a long file is not decoded whole for an excerpt."""
    from covermill.audio import MAX_DURATION_S

    sr = 8000
    path = tmp_path / "long.flac"
    block = np.zeros((sr * 60, 1), np.float32)
    with sf.SoundFile(path, "w", samplerate=sr, channels=1, format="FLAC") as f:
        for _ in range(int(MAX_DURATION_S // 60) + 1):
            f.write(block)
    with pytest.raises(AudioError, match=r"long\.flac: the song is 31\.0 min long .*--excerpt") as info:
        load_audio(path)
    assert "\n" not in str(info.value)
    y = load_audio(path, excerpt=(25 * 60.0, 3.0))
    assert y.shape == (2, 3 * SR)


def test_excerpt_equals_the_cut_of_the_whole(tmp_path):
    y = sine(440.0, 6.0) * np.linspace(0, 1, 6 * SR, dtype=np.float32)
    path = write(tmp_path / "a.wav", y, SR, subtype="FLOAT")
    whole = load_audio(path)
    np.testing.assert_array_equal(load_audio(path, excerpt=(1.5, 2.5)), whole[:, int(1.5 * SR):int(4.0 * SR)])
    np.testing.assert_array_equal(load_audio(path, excerpt=(3.0, 100.0)), whole[:, 3 * SR:])  # clipped at the end
    with pytest.raises(AudioError, match="starts at 7 s but the song is 6.0 s long"):
        load_audio(path, excerpt=(7.0, 3.0))
    with pytest.raises(AudioError, match="the excerpt is 1.00 s long"):
        load_audio(path, excerpt=(5.0, 3.0))
    for bad in [(float("nan"), 5.0), (0.0, float("inf")), (-1.0, 3.0), (0.0, 0.0)]:
        with pytest.raises(ParameterError, match="excerpt"):
            load_audio(path, excerpt=bad)


def test_too_many_channels_and_odd_rates_refused(tmp_path):
    many = write(tmp_path / "many.wav", sine(440.0, 2.5, channels=20), SR)
    with pytest.raises(AudioError, match="has 20 channels .at most 16.; downmix"):
        load_audio(many)
    slow = write(tmp_path / "slow.wav", sine(100.0, 2.5, sr=1000), 1000)
    with pytest.raises(AudioError, match="sample rate 1000 Hz is outside"):
        load_audio(slow)


def test_excerpt_through_ffmpeg(tmp_path):
    import shutil
    import subprocess

    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed (make test installs it)")
    wav = write(tmp_path / "a.wav", sine(550.0, 6.0), SR)
    m4a = tmp_path / "a.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "aac", str(m4a)], check=True)
    y = load_audio(m4a, excerpt=(2.0, 3.0))
    assert abs(y.shape[1] - 3 * SR) < 0.05 * SR and abs(dominant_hz(y, SR) - 550.0) < 2.0


@pytest.mark.parametrize("name", ["concat:a.wav|b.wav", "-i.m4a", "http:x.m4a"])
def test_ffmpeg_reads_odd_names_as_files(tmp_path, monkeypatch, name):
    """Finding 15 of issue 18: a file name is never an ffmpeg protocol or option."""
    import shutil
    import subprocess

    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed (make test installs it)")
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "src.wav", sine(220.0, 3.0), SR)
    subprocess.run(["ffmpeg", "-v", "error", "-i", "src.wav", "-c:a", "aac", "-f", "mp4", f"file:{name}"], check=True)
    y = load_audio(name)  # the m4a itself (as a protocol, `a.wav`, `b.wav`, `x.m4a` do not exist)
    assert abs(y.shape[1] - 3 * SR) < 0.05 * SR
