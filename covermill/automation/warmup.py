"""Pay a process's one-off costs before its first render: imports, models, compiled kernels.

A fresh process pays, on its first render only, for importing the render (about 1.5 s), loading
the taste model (its compiled arrays; scikit-learn only for a model without them), loading
librosa's compiled beat kernels and the reference recording's chroma (both from covermill's cache
folder after the first run).
:func:`warm_up` does all of it and returns what each step took. A batch's local Dask workers
preload this module (:func:`dask_setup`): each worker warms up on a thread as soon as it starts,
while the client submits the work, so its first render starts without those costs (a render
that arrives earlier waits only for what is still loading: imports and models take locks).
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger(__name__)

__all__ = ["warm_up", "later_stages", "dask_setup", "LAST"]

#: The last background warm-up: ``{"steps": {step: seconds}, "finished_at": time.time()}``.
LAST: dict = {}


def warm_up() -> dict[str, float]:
    """Import the render and load what every render loads once per process; seconds per step.

    The results are those of a cold render: nothing here changes what a render computes.
    """
    steps: dict[str, float] = {}
    t0 = time.perf_counter()

    def done(name: str) -> None:
        nonlocal t0
        now = time.perf_counter()
        steps[name] = round(now - t0, 3)
        t0 = now

    from ..recipes import load_recipe  # noqa: F401
    from . import pipeline  # noqa: F401  (the render and everything it imports)

    done("imports")
    from ..analysis.taste import load_model

    load_model()
    done("taste model")
    from ..kernels import librosa_beat

    librosa_beat()
    done("beat kernels")
    from ..analysis.cover import reference_features

    reference_features()  # the unrelated reference's cover features (on disk after the first process)
    done("reference chroma")
    steps.update(later_stages())
    return steps


def later_stages() -> dict[str, float]:
    """What only the last stages load, once per process: the report's plotting (matplotlib,
    ``librosa.display``: about 0.7 s) and this build's version for the DAW project (git in a
    checkout: about 0.4 s). A render submits this beside its separation, so a fresh process
    does not pay it in the ``write`` stage; seconds per step."""
    t0 = time.perf_counter()
    import librosa.display  # noqa: F401
    import matplotlib.figure  # noqa: F401

    t1 = time.perf_counter()
    from ..buildinfo import version

    version()
    return {"plotting": round(t1 - t0, 3), "version": round(time.perf_counter() - t1, 3)}


def _warm_quietly() -> None:
    try:
        steps = warm_up()
        LAST.update(steps=steps, finished_at=time.time())
        log.debug("warm-up: %s", steps)
    except Exception:  # noqa: BLE001 - a failed warm-up only costs time: the render reports the error itself
        log.debug("warm-up failed", exc_info=True)


def dask_setup(worker=None) -> None:
    """Dask's preload hook: start :func:`warm_up` on a daemon thread and return at once."""
    threading.Thread(target=_warm_quietly, name="covermill-warm-up", daemon=True).start()
