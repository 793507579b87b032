"""Shared constants. Derived values are computed, not repeated."""

#: Sample rate every stage works at (Hz). Inputs are resampled to it on load.
WORK_SR = 44100
#: Channels every stage works with: stereo, shape ``(2, n)``.
WORK_CHANNELS = 2
#: The four canonical stems every separator returns.
STEM_NAMES = ("vocals", "drums", "bass", "other")
#: Shortest input we process (seconds): beat tracking and f0 need a few frames.
MIN_DURATION_S = 2.0
#: Default master loudness target (LUFS, ITU-R BS.1770) and true-peak ceiling (dBTP).
DEFAULT_LUFS = -14.0
DEFAULT_TRUE_PEAK_DB = -1.0
#: Audio file extensions we look for when a folder is given.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".m4a", ".aac", ".opus", ".aiff", ".aif", ".wma")
