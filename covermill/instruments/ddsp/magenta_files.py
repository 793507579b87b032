"""The files of a Magenta DDSP checkpoint folder: the gin config (:func:`parse_gin`, gin-config's
parser, nothing registered or imported) and the TensorFlow checkpoint (:func:`find_checkpoint`,
:func:`read_checkpoint`: TensorFlow runs in a child process, :mod:`.tf_checkpoint`). Used by
:mod:`.magenta`.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import BackendUnavailableError, ModelLoadingError, ParameterError

INSTALL_HINT = "pip install 'covermill[magenta]'"


@dataclass(frozen=True)
class GinRef:
    """``@name`` (``evaluate=False``) or ``@name()`` in a gin file."""

    name: str
    evaluate: bool

    @property
    def short(self) -> str:
        return self.name.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class GinMacro:
    name: str


def parse_gin(path: Path) -> dict[tuple[str, str], object]:
    """Unscoped bindings of a gin file as ``{(configurable, argument): value}`` (configurable without its
    module path; ``@refs`` as :class:`GinRef`; macros resolved). Parsed with gin-config's parser,
    without registering or importing anything."""
    try:
        from gin import config_parser
    except ImportError:
        raise BackendUnavailableError(f"import-ddsp needs gin-config to read {path.name}: {INSTALL_HINT}") from None

    class Delegate(config_parser.ParserDelegate):
        def configurable_reference(self, scoped_name, evaluate):
            return GinRef(scoped_name, bool(evaluate))

        def macro(self, name):
            return GinMacro(name)

    try:
        text = path.read_text()
        statements = list(config_parser.ConfigParser(text, Delegate()))
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelLoadingError(f"{path}: unreadable ({exc})") from None
    except SyntaxError as exc:
        raise ModelLoadingError(f"{path}: not a gin config (line {exc.lineno}: {exc.msg})") from None
    except Exception as exc:  # gin's parser raises ValueError & co. on odd input
        raise ModelLoadingError(f"{path}: not a gin config ({type(exc).__name__}: {exc})") from None
    macros: dict[str, object] = {}
    bindings: dict[tuple[str, str], object] = {}
    for st in statements:
        if type(st).__name__ != "BindingStatement" or st.scope:
            continue
        if not st.arg_name:  # a macro: `name = value`
            macros[st.selector] = st.value
        else:
            bindings[(st.selector.rsplit(".", 1)[-1], st.arg_name)] = st.value

    def resolve(v, depth=0):
        if isinstance(v, GinMacro) and depth < 20:
            return resolve(macros.get(v.name), depth + 1)
        if isinstance(v, list):
            return [resolve(x, depth) for x in v]
        if isinstance(v, tuple):
            return tuple(resolve(x, depth) for x in v)
        return v

    return {k: resolve(v) for k, v in bindings.items()}


def _natural_key(path: str) -> tuple:
    return tuple(int(n) for n in re.findall(r"\d+", path)) + (path,)


def find_checkpoint(folder: Path) -> str:
    """The checkpoint prefix (``folder/ckpt-N``) with the highest N; errors name what is missing."""
    if not folder.exists():
        raise ParameterError(f"{folder}: no such folder; pass a Magenta DDSP checkpoint folder "
                             "(ckpt-N.index, ckpt-N.data-*, operative_config-N.gin)")
    if not folder.is_dir():
        raise ParameterError(f"{folder}: not a folder; pass the Magenta DDSP checkpoint folder that holds it")
    indices = sorted(folder.glob("*.index"), key=lambda p: _natural_key(p.name))
    if not indices:
        raise ModelLoadingError(f"{folder}: no TensorFlow checkpoint (*.index) in this folder; expected "
                                "ckpt-N.index + ckpt-N.data-* from a Magenta DDSP training run")
    prefix = str(indices[-1])[: -len(".index")]
    if not list(folder.glob(Path(prefix).name + ".data-*")):
        raise ModelLoadingError(f"{prefix}.index: its data file {Path(prefix).name}.data-* is missing; the "
                                "checkpoint is incomplete, copy the whole folder again")
    return prefix


def read_checkpoint(prefix: str, *, timeout_s: float = 600.0) -> dict[str, np.ndarray]:
    """Every model variable of the checkpoint ``prefix`` (optimizer slots left out), keyed by its object path
    without ``/.ATTRIBUTES/VARIABLE_VALUE``. Every tensor is read once, so a corrupt or truncated data
    file fails here (TensorFlow checks each tensor's CRC32C), before anything is written.

    TensorFlow runs in a child process (:mod:`.tf_checkpoint`): loaded into this one, it makes a
    later import of triton (torch's compiler, pulled in by ``torch.optim``) crash the process.
    """
    if importlib.util.find_spec("tensorflow") is None:
        raise BackendUnavailableError(f"import-ddsp needs TensorFlow to read checkpoints: {INSTALL_HINT}")
    script = Path(__file__).with_name("tf_checkpoint.py")
    with tempfile.TemporaryDirectory(prefix="covermill-ddsp-") as tmp:
        out = Path(tmp) / "variables.npz"
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        try:
            proc = subprocess.run([sys.executable, str(script), prefix, str(out)], capture_output=True, text=True,
                                  timeout=timeout_s, env=env)
        except subprocess.TimeoutExpired:
            raise ModelLoadingError(f"{prefix}: reading the checkpoint took over {timeout_s:.0f} s") from None
        if proc.returncode != 0:
            lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
            if proc.returncode == 3 and lines:
                raise ModelLoadingError(lines[-1])
            detail = lines[-1][:300] if lines else f"exit code {proc.returncode}"
            raise ModelLoadingError(f"{prefix}: TensorFlow could not read the checkpoint ({detail})")
        with np.load(out, allow_pickle=False) as data:
            names = [str(n) for n in data["__names__"]]
            return {n: data[f"arr_{i}"] for i, n in enumerate(names)}


def _latest(folder: Path, pattern: str) -> Path | None:
    found = sorted(folder.glob(pattern), key=lambda p: _natural_key(p.name))
    return found[-1] if found else None
