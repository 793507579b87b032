"""YAML for files a user may have downloaded: ``yaml.SafeLoader`` with limits.

Recipes and instrument files are read through :func:`load_yaml_file`. Besides refusing
every tag that would build a Python object (SafeLoader), it bounds what a small file can
cost to read (documented in ``docs/security.md``):

- the file is at most :data:`MAX_YAML_BYTES` bytes;
- the document, with every alias expanded, has at most :data:`MAX_YAML_NODES` nodes (a
  "billion laughs" file of nested aliases is refused before anything walks it);
- collections nest at most :data:`MAX_YAML_DEPTH` levels (aliases counted; a recursive
  alias is refused);
- an integer has at most :data:`MAX_INT_DIGITS` digits.

Every refusal is the caller's error class with one line: ``file:line: problem; fix``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

MAX_YAML_BYTES = 1_000_000
MAX_YAML_NODES = 20_000
MAX_YAML_DEPTH = 50
MAX_INT_DIGITS = 30


class _Limit(yaml.YAMLError):
    def __init__(self, problem: str, mark: Any = None):
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


class LimitedSafeLoader(yaml.SafeLoader):
    """SafeLoader that refuses deep nesting while composing and huge integers while constructing."""

    def __init__(self, stream: Any):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise _Limit(f"nests deeper than {MAX_YAML_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        digits = sum(c.isdigit() for c in str(node.value))
        if digits > MAX_INT_DIGITS:
            raise _Limit(f"an integer with {digits} digits (at most {MAX_INT_DIGITS})", node.start_mark)
        return super().construct_yaml_int(node)


LimitedSafeLoader.add_constructor("tag:yaml.org,2002:int", LimitedSafeLoader.construct_yaml_int)


def _check_expanded(root: yaml.Node) -> None:
    """Count nodes and depth with every alias expanded, in time linear in the file."""
    sizes: dict[int, int] = {}
    heights: dict[int, int] = {}

    def walk(node: yaml.Node, depth: int) -> None:
        if depth > MAX_YAML_DEPTH:
            raise _Limit(f"nests deeper than {MAX_YAML_DEPTH} levels once aliases are expanded "
                         "(or an alias refers to itself)", node.start_mark)
        key = id(node)
        if key in sizes:
            if depth + heights[key] > MAX_YAML_DEPTH:
                raise _Limit(f"nests deeper than {MAX_YAML_DEPTH} levels once aliases are expanded",
                             node.start_mark)
            return
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        size, height = 1, 0
        for child in children:
            walk(child, depth + 1)
            size += sizes[id(child)]
            height = max(height, heights[id(child)] + 1)
            if size > MAX_YAML_NODES:
                raise _Limit(f"expands to more than {MAX_YAML_NODES} values (nested aliases?)", node.start_mark)
        sizes[key], heights[key] = size, height

    walk(root, 0)


def parse_yaml(text: str) -> tuple[Any, yaml.Node | None]:
    """Compose and construct one document within the limits; returns ``(data, node)``.

    Raises ``yaml.YAMLError`` (with ``problem`` and ``problem_mark``) for malformed YAML,
    a refused tag or a limit.
    """
    loader = LimitedSafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise _Limit(f"nests deeper than {MAX_YAML_DEPTH} levels") from None
        if node is None:
            return None, None
        _check_expanded(node)
        return loader.construct_document(node), node
    finally:
        loader.dispose()


def read_yaml_text(path: Path, error: type[Exception], what: str) -> str:
    """Read a small UTF-8 YAML file; ``error`` (one line) if it is missing, too big or not text."""
    try:
        size = os.stat(path).st_size
        if size > MAX_YAML_BYTES:
            raise error(f"{path}: is {size} bytes; a {what} is at most {MAX_YAML_BYTES} bytes")
        with open(path, "rb") as handle:
            raw = handle.read(MAX_YAML_BYTES + 1)
    except FileNotFoundError:
        raise error(f"{path}: no such {what}; check the path") from None
    except IsADirectoryError:
        raise error(f"{path}: is a folder; pass a {what} (.yaml)") from None
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror}); check its permissions") from None
    if len(raw) > MAX_YAML_BYTES:
        raise error(f"{path}: is over {MAX_YAML_BYTES} bytes; a {what} is at most that")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{path}: is not UTF-8 text; save the {what} as UTF-8 YAML") from None


def load_yaml_file(path: str | os.PathLike, error: type[Exception], what: str = "YAML file") -> tuple[Any, yaml.Node | None]:
    """Read and parse ``path`` within the limits; every failure is ``error`` with one line."""
    path = Path(path)
    text = read_yaml_text(path, error, what)
    try:
        return parse_yaml(text)
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else "?"
        raise error(f"{path}:{line}: YAML tags are not allowed in a {what} ({exc.problem}); remove the tag") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"{mark.line + 1}" if mark else "?"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if isinstance(exc, _Limit):
            raise error(f"{path}:{line}: {problem}; simplify the file (limits: docs/security.md)") from None
        raise error(f"{path}:{line}: malformed YAML ({problem}); fix the syntax") from None


def line_map(node: yaml.Node, *, digit_keys: bool = False) -> dict[tuple, int]:
    """Map every key path in a composed YAML tree to its 1-based line (for ``file:line`` errors);
    ``digit_keys`` reads keys such as ``3`` as ints (a style's meters)."""
    out: dict[tuple, int] = {}

    def walk(n: yaml.Node, path: tuple) -> None:
        out.setdefault(path, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            for key_node, value_node in n.value:
                key = key_node.value
                if digit_keys and isinstance(key, str) and key.isdigit():
                    key = int(key)
                out[path + (key,)] = key_node.start_mark.line + 1
                walk(value_node, path + (key,))
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                out[path + (i,)] = item.start_mark.line + 1
                walk(item, path + (i,))

    walk(node, ())
    return out

