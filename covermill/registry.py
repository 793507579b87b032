"""One registry shape for every pluggable stage: separators, instruments, mixers, stretchers,
effects and QA checks.

A :class:`Registry` maps names to factories; ``register(name)`` is a decorator,
``get(name, **params)`` builds one (an unknown name lists the choices and suggests the
closest), ``available()`` lists the names. The CLI takes its choices from here, so a new
backend appears on every command that offers its stage.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Any

from .errors import ParameterError


class Registry:
    """Named factories of one kind (``kind`` names it in errors: "separator", "mixer", ...).

    ``loader`` is called before the first lookup (it imports the modules that register the
    built-ins, so importing the registry stays cheap)."""

    def __init__(self, kind: str, *, loader: Callable[[], None] | None = None) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., Any]] = {}
        self._loader = loader
        self._loaded = loader is None

    def register(self, name: str) -> Callable:
        """Decorator: make ``obj`` available under ``name`` (returns it unchanged)."""

        def deco(obj):
            self._factories[name] = obj
            return obj

        return deco

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            self._loader()

    def available(self) -> list[str]:
        """The registered names, sorted."""
        self._load()
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._factories

    def __iter__(self) -> Iterator[str]:
        return iter(self.available())

    def factory(self, name: str) -> Callable[..., Any]:
        """The factory registered as ``name``; an unknown name raises :class:`ParameterError`."""
        self._load()
        try:
            return self._factories[name]
        except KeyError:
            close = difflib.get_close_matches(str(name), list(self._factories), n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ParameterError(f"unknown {self.kind} {name!r}{hint}; choose one of "
                                 f"{', '.join(self.available())}") from None

    def get(self, name: str, **params: Any) -> Any:
        """Build ``name`` with ``params``."""
        return self.factory(name)(**params)
