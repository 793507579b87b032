"""One helper for every benchmark script: replace its section of ``docs/BENCHMARKS.md``."""

from __future__ import annotations

import re
from pathlib import Path


def write_section(path: Path, tag: str, body: str, *, heading: str) -> None:
    """Put ``body`` between ``<!-- bench:TAG -->`` and ``<!-- /bench:TAG -->`` in ``path``.

    An existing block is replaced in place; otherwise a ``## heading`` section holding the
    block is appended (the file is created when missing).
    """
    start, end = f"<!-- bench:{tag} -->", f"<!-- /bench:{tag} -->"
    block = f"{start}\n{body}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if start in text:
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + f"\n\n## {heading}\n\n{block}\n"
    path.write_text(text)
