"""Drive a real Audacity through mod-script-pipe.

- :mod:`.client`   quoting/escaping, reply parsing, pipe I/O with timeouts
- :mod:`.launcher` a covermill-owned profile, Xvfb, start/attach/stop
- :mod:`.session`  ``session.aup3`` for review: original, stems, processed stems, beat labels
"""

from .client import PipeClient, build_command, quote
from .launcher import Audacity

__all__ = ["Audacity", "PipeClient", "build_command", "quote"]
