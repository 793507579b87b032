"""Which covermill build this is: a version that names the git commit it was built from.

Versions come from git through setuptools-scm (``pyproject.toml``, ``[tool.setuptools_scm]``):
a tagged commit ``vX.Y.Z`` is ``X.Y.Z``; any other commit is ``<next>.devN+g<commit>`` (N commits
after the last tag), with ``.d<date>`` when the work tree had uncommitted changes. Building or
installing (``pip install .`` or ``pip install -e .``) writes the version into the git-ignored
``covermill/_version.py``.

:func:`version` answers, in this order:

1. a source checkout (the folder above the package holds ``.git`` and ``pyproject.toml``) with
   setuptools-scm importable asks git, so a checkout run with ``PYTHONPATH`` or an editable
   install that has seen commits since ``pip install -e`` still names its current commit;
2. ``covermill/_version.py`` written at build time (wheels, sdists, copies without ``.git``);
3. :data:`UNKNOWN`.

The answer is computed once per process and only when asked (``covermill.__version__``,
``covermill --version``, a batch checking its workers): importing covermill runs no git.
"""

from __future__ import annotations

import functools
from pathlib import Path

__all__ = ["UNKNOWN", "version"]

#: The version of a build that carries no version information (no git, no ``_version.py``).
UNKNOWN = "0+unknown"


def _from_git(root: Path) -> str | None:
    if not ((root / ".git").exists() and (root / "pyproject.toml").is_file()):
        return None
    try:
        from setuptools_scm import get_version
    except ImportError:  # a build-time tool; without it the generated file answers
        return None
    try:  # the settings the build uses (pyproject.toml), so both give the same version
        import tomllib

        with open(root / "pyproject.toml", "rb") as f:
            config = tomllib.load(f).get("tool", {}).get("setuptools_scm", {})
        config = {k: v for k, v in config.items() if k not in ("version_file", "write_to")}
        return str(get_version(root=str(root), **config))
    except Exception:  # no git program, a broken repository, ...: the generated file answers
        return None


@functools.cache
def version() -> str:
    """This build's version, e.g. ``0.1.dev251+g27dfccf97`` (see the module docstring)."""
    found = _from_git(Path(__file__).resolve().parents[1])
    if found:
        return found
    try:
        from ._version import __version__ as generated
    except ImportError:
        return UNKNOWN
    return str(generated)
