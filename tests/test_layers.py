"""The package layers, enforced on the source (every import, lazy ones inside functions too).

* ``stems``, ``instruments`` and ``analysis`` (the stage packages) import nothing from each
  other, nor from ``automation``, ``recipes`` or ``cli``;
* ``recipes`` imports no stage package and not ``automation``;
* the shared lower layer (``audio``, ``errors``, ``constants``, ``fsutil``, ``kernels``,
  ``leadsheet``, ``registry``, ``gm``, ``effects``) imports no package above it;
* only ``automation`` composes stages; ``cli`` calls them.
* No module is over 400 lines.
"""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "covermill"
STAGES = {"stems", "instruments", "analysis"}
UPPER = STAGES | {"automation", "recipes", "cli"}
MAX_LINES = 400


def _modules():
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield path, parts


def _imports(path: Path, parts: list[str]) -> set[str]:
    """Absolute ``covermill.x`` names imported anywhere in the module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = parts if path.name == "__init__.py" else parts[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
                if node.module is None:  # from . import x
                    found.update(f"{name}.{a.name}" for a in node.names)
                    continue
            else:
                name = node.module or ""
            found.add(name)
    return {n for n in found if n.split(".")[0] == "covermill"}


def _layer(parts: list[str]) -> str:
    return parts[1] if len(parts) > 1 else "covermill"


def _owner(name: str) -> str:
    bits = name.split(".")
    return bits[1] if len(bits) > 1 else "covermill"


def test_layers():
    problems = []
    for path, parts in _modules():
        layer = _layer(parts)
        for name in _imports(path, parts):
            target = _owner(name)
            if target == layer or target not in UPPER and target != "covermill":
                continue
            allowed = {"automation": STAGES | {"recipes"}, "cli": UPPER - {"cli"}}.get(layer, set())
            if layer == "recipes":
                allowed = set()
            if target not in allowed and target != "covermill":
                problems.append(f"{path.relative_to(PKG.parent)} ({layer}) imports {name}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", sorted(PKG.rglob("*.py")), ids=lambda p: str(p.relative_to(PKG)))
def test_module_size(path):
    n = len(path.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{path}: {n} lines > {MAX_LINES}; split it by responsibility"
