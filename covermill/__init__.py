"""covermill: turn any song into a cover in a listener's favourite genre.

Subpackages, one job each:

- :mod:`covermill.recipes`     YAML genre recipes: schema, loading, built-ins
- :mod:`covermill.stems`       source separation (DSP default; Demucs when weights exist)
- :mod:`covermill.instruments` timbre transfer: f0/loudness -> harmonic-plus-noise synthesis
- :mod:`covermill.analysis`    tempo, cover similarity, genre QA
- :mod:`covermill.automation`  mixing, tempo/key, mastering, and the render pipeline

``stems``, ``instruments`` and ``analysis`` know nothing of each other; ``automation``
composes them; ``covermill.cli`` only parses arguments and calls ``automation``.
This module stays light: importing it loads no audio or ML library.
"""


def __getattr__(name: str):
    """``covermill.__version__``: this build's version (:func:`covermill.buildinfo.version`),
    computed on first use so that importing covermill runs no git."""
    if name == "__version__":
        from .buildinfo import version

        return version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
