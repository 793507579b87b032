"""Demucs weights: which models exist, which are here, fetching and verifying them.

The catalogue is demucs's own: the ``remote/`` folder of the installed demucs package holds
``files.txt`` (``root: hybrid_transformer/`` lines followed by the ``<sig>-<sha256 prefix>.th``
checkpoints under that folder of :data:`DEMUCS_URL`) and one ``<name>.yaml`` bag per model
(``models: [sig, ...]``). A *mirror* (``--from URL``, ``$COVERMILL_MODELS_URL``: an HTTP(S)
server, or a bucket through fsspec) has the same layout: ``URL/files.txt``, ``URL/<name>.yaml``
and ``URL/<root>/<sig>-<sha>.th``; copying demucs's ``remote/`` folder and the checkpoints
there makes one.

:func:`fetch` downloads the checkpoints of a model that are missing from the destination
folder (a demucs local repo, which :func:`covermill.stems.demucs.locate` searches), streams
each into a temporary file beside its target while hashing it, refuses it when its SHA-256
does not start with the prefix its file name carries, and only then renames it into place
(:func:`covermill.fsutil.atomic_path`); the bag file goes in last, so a folder never names a
model whose checkpoints are not all there. No network, or an unknown host, is one line.

Fetching on first use (:func:`fetch_allowed`) is off unless the user allows it:
``$COVERMILL_FETCH_MODELS=1`` (what ``--fetch-models`` sets, and what cluster workers are
given in ``docs/cluster.md``). CI never sets it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailableError, ModelLoadingError, ParameterError
from ..fsutil import atomic_path

__all__ = ["DEMUCS_URL", "FETCH_ENV", "URL_ENV", "Catalogue", "ModelFile", "default_dest", "fetch", "fetch_allowed",
           "model_status", "verify"]

#: Where demucs 4.1.0 publishes its checkpoints (``demucs.pretrained.ROOT_URL``).
DEMUCS_URL = "https://dl.fbaipublicfiles.com/demucs/"
#: ``1``: a separator whose weights are missing fetches them (see module docstring).
FETCH_ENV = "COVERMILL_FETCH_MODELS"
#: A mirror to fetch from instead of :data:`DEMUCS_URL`.
URL_ENV = "COVERMILL_MODELS_URL"
CHUNK = 1 << 20
_FILE = re.compile(r"^([0-9a-f]{8})-([0-9a-f]{8})\.th$")

Progress = Callable[[dict[str, Any]], None]


def fetch_allowed() -> bool:
    """Whether a missing model may be fetched on first use (``$COVERMILL_FETCH_MODELS``)."""
    return os.environ.get(FETCH_ENV, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class ModelFile:
    """One checkpoint: ``name`` (``<sig>-<sha>.th``) at ``rel`` (``<root>/<name>``) under the base URL."""

    sig: str
    name: str
    rel: str

    @property
    def sha_prefix(self) -> str:
        return self.name[:-3].rsplit("-", 1)[1]


def _parse_files(text: str) -> dict[str, ModelFile]:
    files, root = {}, ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("root:"):
            root = line.split(":", 1)[1].strip()
            continue
        if _FILE.match(line):
            sig = line.split("-", 1)[0]
            files[sig] = ModelFile(sig=sig, name=line, rel=root + line)
    return files


def _bag_models(text: str, where: str) -> list[str]:
    import yaml

    from ..yamlsafe import parse_yaml

    try:  # a downloaded file: SafeLoader within covermill's YAML limits
        data, _ = parse_yaml(text)
        sigs = [str(s) for s in data["models"]]
    except (yaml.YAMLError, TypeError, KeyError) as exc:
        raise ModelLoadingError(f"{where}: not a demucs bag file ({type(exc).__name__}); expected YAML with a "
                                "'models' list of signatures") from None
    return sigs


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")


def _open(url: str, timeout_s: float):
    """A binary stream and its size (or None) for ``url``; one-line errors, never credentials."""
    if url.startswith(("http://", "https://")):
        try:
            resp = urllib.request.urlopen(url, timeout=timeout_s)  # noqa: S310 - http(s) only
        except urllib.error.HTTPError as exc:
            raise ModelLoadingError(f"{_host(url)} answered {exc.code} {exc.reason} for {url.rsplit('/', 1)[1]}; "
                                    "check the model name and the --from URL") from None
        except OSError as exc:  # URLError, TimeoutError, connection refused
            reason = getattr(exc, "reason", exc)
            raise ModelLoadingError(f"cannot reach {_host(url)} ({reason}): offline? copy the weights into the "
                                    "model folder by hand, or fetch from a reachable mirror with --from URL") from None
        size = resp.headers.get("Content-Length")
        return resp, int(size) if size and size.isdigit() else None
    try:
        import fsspec
    except ImportError:  # pragma: no cover - fsspec comes with dask
        raise BackendUnavailableError(f"fetching from {_host(url)} needs fsspec: pip install fsspec") from None
    try:
        f = fsspec.open(url, "rb").open()
    except FileNotFoundError:
        raise ModelLoadingError(f"{_host(url)}: no file {url.rsplit('/', 1)[1]} there; check the --from URL") from None
    except ImportError as exc:
        raise BackendUnavailableError(f"fetching from {_host(url)} needs a filesystem package ({exc})") from None
    except (OSError, ValueError) as exc:
        raise ModelLoadingError(f"cannot open {_host(url)} ({type(exc).__name__}); check the URL, the network and "
                                "the credentials in the environment") from None
    return f, getattr(f, "size", None)


def _read_text(url: str, timeout_s: float, limit: int = 1_000_000) -> str:
    """A small text file (a catalogue or a bag) from ``url``; refused beyond ``limit`` bytes."""
    stream, _ = _open(url, timeout_s)
    with stream:
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise ModelLoadingError(f"{_host(url)}: {url.rsplit('/', 1)[1]} is over {limit} bytes; not a demucs "
                                "catalogue file (check the --from URL)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelLoadingError(f"{_host(url)}: {url.rsplit('/', 1)[1]} is not UTF-8 text; not a demucs "
                                "catalogue file (check the --from URL)") from None


def _demucs_remote() -> Path | None:
    spec = importlib.util.find_spec("demucs")  # the package's data files; demucs (and torch) not imported
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "remote"
    return folder if (folder / "files.txt").is_file() else None


class Catalogue:
    """The models and checkpoints of demucs's published location, or of a mirror at ``base_url``."""

    def __init__(self, base_url: str | None = None, *, timeout_s: float = 30.0) -> None:
        self.timeout_s = timeout_s
        self.mirror = base_url is not None
        self.base_url = (base_url or DEMUCS_URL).rstrip("/") + "/"
        if self.mirror:
            self.local = None
            self.files = _parse_files(_read_text(self.base_url + "files.txt", timeout_s))
        else:
            self.local = _demucs_remote()
            if self.local is None:
                raise BackendUnavailableError("the list of demucs models comes with demucs: "
                                              "pip install 'covermill[demucs]'")
            self.files = _parse_files((self.local / "files.txt").read_text(encoding="utf-8"))

    def names(self) -> list[str]:
        """Model names (bags) of the installed demucs package; a mirror lists those it serves of them."""
        local = self.local or _demucs_remote()
        return sorted(p.stem for p in local.glob("*.yaml")) if local else []

    def bag_text(self, name: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name.startswith("."):
            raise ParameterError(f"model name {name!r} must be letters, digits, '_', '-' or '.'")
        if self.local is not None:
            path = self.local / f"{name}.yaml"
            if not path.is_file():
                raise ModelLoadingError(f"demucs publishes no model {name!r}; known: {', '.join(self.names())}")
            return path.read_text(encoding="utf-8")
        return _read_text(f"{self.base_url}{name}.yaml", self.timeout_s)

    def model_files(self, name: str) -> list[ModelFile]:
        """The checkpoints of model ``name`` (from its bag)."""
        files = []
        for sig in _bag_models(self.bag_text(name), f"{name}.yaml"):
            if sig not in self.files:
                raise ModelLoadingError(f"model {name!r} needs checkpoint {sig}, which files.txt at "
                                        f"{self.base_url} does not list")
            files.append(self.files[sig])
        return files


def default_dest(model_dir: str | os.PathLike | None = None) -> Path:
    """Where fetched weights go: ``model_dir``, else ``$COVERMILL_MODEL_DIR``, else torch hub's
    checkpoint folder (where demucs itself puts its downloads)."""
    from .demucs import MODEL_DIR_ENV, hub_checkpoint_dir

    chosen = model_dir or os.environ.get(MODEL_DIR_ENV)
    return Path(chosen).expanduser() if chosen else hub_checkpoint_dir()


def _download(url: str, target: Path, expected: str, *, timeout_s: float, progress: Progress | None) -> None:
    stream, total = _open(url, timeout_s)
    sha = hashlib.sha256()
    done = 0
    with stream, atomic_path(target) as tmp, open(tmp, "wb") as out:
        while True:
            try:
                chunk = stream.read(CHUNK)
            except OSError as exc:  # incl. TimeoutError
                raise ModelLoadingError(f"the download of {target.name} from {_host(url)} broke off after {done} "
                                        f"bytes ({type(exc).__name__}); run the fetch again") from None
            if not chunk:
                break
            sha.update(chunk)
            out.write(chunk)
            done += len(chunk)
            if progress:
                progress({"stage": target.name, "done": done, "total": total or done})
        out.flush()
        got = sha.hexdigest()[: len(expected)]
        if got != expected:  # atomic_path removes the temporary file: nothing is placed
            raise ModelLoadingError(f"{target.name} from {_host(url)}: SHA-256 starts with {got}, its name says "
                                    f"{expected}; the download is corrupt or the mirror serves another file "
                                    "(nothing was saved)")
        if total is not None and done != total:
            raise ModelLoadingError(f"{target.name} from {_host(url)}: got {done} of {total} bytes; run the fetch "
                                    "again")


def fetch(name: str, *, dest: str | os.PathLike | None = None, base_url: str | None = None,
          progress: Progress | None = None, timeout_s: float = 30.0) -> list[Path]:
    """Download the checkpoints of demucs model ``name`` missing from ``dest`` (default
    :func:`default_dest`) from ``base_url`` (a mirror; default ``$COVERMILL_MODELS_URL``, else
    :data:`DEMUCS_URL`), checksum each before it is placed, then write ``<name>.yaml``.

    Returns the paths of the model's checkpoints in ``dest``. ``progress`` gets
    ``{"stage": file, "done": bytes, "total": bytes}``. Raises
    :class:`~covermill.errors.ModelLoadingError` with one line (offline, HTTP error, checksum).
    """
    base_url = base_url or os.environ.get(URL_ENV) or None
    cat = Catalogue(base_url, timeout_s=timeout_s)
    bag = cat.bag_text(name)
    files = cat.model_files(name)
    folder = default_dest() if dest is None else Path(dest).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelLoadingError(f"{folder}: cannot create the model folder ({exc.strerror}); choose another "
                                "--model-dir") from None
    paths = []
    for f in files:
        target = folder / f.name
        if not target.is_file() or _sha_prefix(target, len(f.sha_prefix)) != f.sha_prefix:
            _download(cat.base_url + f.rel, target, f.sha_prefix, timeout_s=timeout_s, progress=progress)
        paths.append(target)
    bag_path = folder / f"{name}.yaml"
    if not bag_path.is_file():
        with atomic_path(bag_path) as tmp:
            tmp.write_text(bag, encoding="utf-8")
    return paths


def _sha_prefix(path: Path, n: int = 8) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            sha.update(chunk)
    return sha.hexdigest()[:n]


def model_status(name: str, model_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """``{"name", "found": folder or None, "files": [checkpoint paths]}`` for model ``name``."""
    from .demucs import locate

    found = locate(name, model_dir)
    return {"name": name, "found": str(found[0]) if found else None,
            "files": [str(p) for p in found[2]] if found else []}


def verify(name: str, model_dir: str | os.PathLike | None = None) -> list[tuple[Path, bool, str]]:
    """Check the checkpoints of model ``name`` where :func:`~covermill.stems.demucs.locate` finds
    them: ``[(path, ok, message)]``. A file whose name carries no checksum is reported as such.
    Raises :class:`~covermill.errors.ModelLoadingError` when the model is not here."""
    from .demucs import locate, missing_message

    found = locate(name, model_dir)
    if found is None:
        raise ModelLoadingError(missing_message(name, model_dir) + "; or fetch it: covermill models fetch " + name)
    results = []
    for path in found[2]:
        m = _FILE.match(path.name)
        if not m:
            results.append((path, True, "no checksum in its name; not checked"))
            continue
        got = _sha_prefix(path, 8)
        ok = got == m.group(2)
        results.append((path, ok, "checksum ok" if ok else f"SHA-256 starts with {got}, its name says {m.group(2)}: "
                        "corrupt; delete it and fetch again"))
    return results
