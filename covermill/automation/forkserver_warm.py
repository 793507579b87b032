"""Imported by the forkserver that starts a batch's local workers: it warms up once (imports,
taste model, beat kernels, reference chroma; :func:`.warmup.warm_up`) and every worker it forks,
the first ones and those restarted after a worker died, starts with all of it loaded.

Importing this module never raises: a forkserver whose preload fails cannot start workers, and a
failed warm-up only costs each worker the time to load what it needs itself.
"""

from __future__ import annotations

try:
    from .warmup import warm_up

    STEPS = warm_up()
except Exception:  # noqa: BLE001 - see the module docstring
    STEPS = {}
