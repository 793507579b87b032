"""Genre CNNs on spectrogram images, as in the paper: ResNet34/50 or SqueezeNet 1.1 with fastai.

``train_genre_cnn(DIR, OUT)`` takes a labelled folder ``DIR/<genre>/<song>`` of audio,
cuts each song into ``clip_s`` clips, renders each clip as a log-mel spectrogram image,
splits **by song** (clips of one song never sit on both sides), trains with fastai, and
reports macro-F1 and a confusion matrix on the held-out songs. Pretrained weights come
only from a local file the user names (torchvision's state-dict format, loaded with
``weights_only=True``, or safetensors); otherwise the network starts from scratch.
The trained network is saved as safetensors + JSON (no pickle; fastai's
``Learner.export`` is not used).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelLoadingError, ParameterError

log = logging.getLogger(__name__)

ARCHS = ("resnet34", "resnet50", "squeezenet1_1", "resnet18")
IMAGE_SR = 22050
N_MELS = 128
HOP = 512
IMAGENET_STATS = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


def spectrogram_image(y: np.ndarray, *, sr: int) -> np.ndarray:
    """Log-mel spectrogram of ``(channels, n)`` audio as an ``(N_MELS, frames, 3)`` uint8 image.

    The dB values (top 80 dB) map linearly to grey levels, low frequencies at the bottom.
    """
    import librosa

    from ..audio import resample

    mono = np.asarray(y, np.float32)
    mono = mono.mean(axis=0) if mono.ndim == 2 else mono
    mono = resample(mono[None], sr_in=sr, sr_out=IMAGE_SR)[0]
    S = librosa.feature.melspectrogram(y=mono, sr=IMAGE_SR, n_mels=N_MELS, hop_length=HOP)
    db = librosa.power_to_db(S, ref=np.max(S) if np.max(S) > 0 else 1.0, top_db=80.0)
    grey = np.clip((db + 80.0) / 80.0 * 255.0, 0, 255).astype(np.uint8)[::-1]
    return np.repeat(grey[:, :, None], 3, axis=2)


def _arch(name: str):
    import torchvision.models as tvm

    if name not in ARCHS:
        raise ParameterError(f"unknown architecture {name!r}; choose one of {', '.join(ARCHS)}")
    return getattr(tvm, name)


def _load_state_dict(path: Path) -> dict:
    import torch

    if not path.is_file():
        raise ModelLoadingError(f"{path}: no such weights file; pass a local torchvision state dict (.pth/.safetensors)")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelLoadingError(f"{path}: cannot be read as weights ({str(exc).splitlines()[0]}); "
                                "use a torchvision state dict saved with torch.save(model.state_dict())") from None
    if not isinstance(state, dict):
        raise ModelLoadingError(f"{path}: holds {type(state).__name__}, not a state dict")
    return state


def _make_images(folder: Path, work: Path, *, clip_s: float, valid_pct: float, seed: int):
    """Write clip images under ``work/<genre>/``; return (items, valid song ids, skipped)."""
    from PIL import Image

    from ..audio import load_audio
    from ..constants import WORK_SR
    from ..errors import CovermillError
    from ..fsutil import find_audio

    genres = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(genres) < 2:
        raise ParameterError(f"{folder}: needs at least two genre sub-folders (DIR/<genre>/<songs>); found {genres}")
    rng = np.random.default_rng(seed)
    items, valid, skipped = [], set(), {}
    for genre in genres:
        songs = find_audio(folder / genre)
        if len(songs) < 2:
            raise ParameterError(f"{folder / genre}: needs at least 2 songs (one is held out for validation)")
        n_valid = max(1, int(round(valid_pct * len(songs))))
        for j in rng.permutation(len(songs))[:n_valid]:
            valid.add(str(songs[j]))
        for song in songs:
            try:
                y = load_audio(song)
            except CovermillError as exc:
                skipped[str(song)] = str(exc)
                continue
            n = int(clip_s * WORK_SR)
            sid = hashlib.sha1(str(song).encode()).hexdigest()[:10]
            starts = range(0, max(1, y.shape[1] - n + 1), n)
            for k, start in enumerate(starts):
                img = spectrogram_image(y[:, start : start + n], sr=WORK_SR)
                path = work / genre / f"{sid}_{k:03d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(img).save(path)
                items.append((path, genre, str(song)))
    return items, valid, skipped


@dataclass
class CNNResult:
    arch: str
    classes: list[str]
    macro_f1: float
    accuracy: float
    losses: list[float]
    model_path: Path
    confusion_png: Path

    def as_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}


def train_genre_cnn(
    folder: str | os.PathLike,
    out: str | os.PathLike,
    *,
    arch: str = "resnet34",
    epochs: int = 5,
    weights: str | os.PathLike | None = None,
    clip_s: float = 10.0,
    image_size: int = 128,
    batch_size: int = 16,
    valid_pct: float = 0.2,
    seed: int = 0,
) -> CNNResult:
    """Train a genre CNN on ``folder/<genre>/*`` audio; write model, metrics and a confusion matrix to ``out``."""
    import torch
    from fastai.vision.all import (
        CategoryBlock,
        DataBlock,
        F1Score,
        ImageBlock,
        Normalize,
        Resize,
        accuracy,
        create_body,
        model_meta,
        set_seed,
        vision_learner,
    )

    folder, out = Path(folder), Path(out)
    if not folder.is_dir():
        raise ParameterError(f"{folder}: is not a folder; pass DIR with one sub-folder of songs per genre")
    arch_fn = _arch(arch)
    state = _load_state_dict(Path(weights)) if weights else None
    set_seed(seed, reproducible=True)
    work = out / "images"
    items, valid_songs, skipped = _make_images(folder, work, clip_s=clip_s, valid_pct=valid_pct, seed=seed)
    song_of = {str(p): s for p, _, s in items}
    block = DataBlock(
        blocks=(ImageBlock, CategoryBlock),
        get_items=lambda _: [p for p, _, _ in items],
        get_y=lambda p: Path(p).parent.name,
        splitter=lambda files: ([i for i, f in enumerate(files) if song_of[str(f)] not in valid_songs],
                                [i for i, f in enumerate(files) if song_of[str(f)] in valid_songs]),
        item_tfms=Resize(image_size),
        batch_tfms=[Normalize.from_stats(*IMAGENET_STATS)] if state is not None else [],
    )
    dls = block.dataloaders(work, bs=batch_size, num_workers=0, device=torch.device("cpu"))
    learn = vision_learner(dls, arch_fn, pretrained=False, normalize=False,
                           metrics=[accuracy, F1Score(average="macro")])
    if state is not None:
        base = arch_fn(weights=None)
        try:
            base.load_state_dict(state)
        except RuntimeError as exc:
            raise ModelLoadingError(f"{weights}: does not fit {arch} ({str(exc).splitlines()[0]})") from None
        body = create_body(base, pretrained=True, cut=model_meta.get(arch_fn, {}).get("cut"))
        learn.model[0].load_state_dict(body.state_dict())
        learn.freeze()
        learn.fine_tune(epochs)
    else:
        learn.fit_one_cycle(epochs)
    losses = [float(x) for x in learn.recorder.losses]
    preds, targets = learn.get_preds(dl=dls.valid)
    pred = preds.argmax(dim=1).numpy()
    true = targets.numpy()
    classes = list(dls.vocab)
    from sklearn.metrics import confusion_matrix, f1_score

    f1 = float(f1_score(true, pred, average="macro"))
    acc = float((pred == true).mean())
    cm = confusion_matrix(true, pred, labels=range(len(classes)))
    model_path = save_cnn(learn.model, out / "genre_cnn", arch=arch, classes=classes, image_size=image_size,
                          normalize=state is not None, clip_s=clip_s)
    png = _plot_confusion(cm, classes, out / "confusion.png", title=f"{arch}: macro-F1 {f1:.2f} (held-out songs)")
    result = CNNResult(arch, classes, round(f1, 4), round(acc, 4), losses, model_path, png)
    from ..fsutil import write_text_atomic

    write_text_atomic(out / "metrics.json", json.dumps({**result.as_dict(), "skipped": skipped,
                                                         "valid_songs": sorted(valid_songs)}, indent=2) + "\n")
    return result


def save_cnn(model, stem: Path, **config) -> Path:
    """``stem.safetensors`` (weights) + ``stem.json`` (architecture, classes, preprocessing)."""
    from safetensors.torch import save_file

    from ..fsutil import atomic_path, write_text_atomic

    stem.parent.mkdir(parents=True, exist_ok=True)
    weights = stem.with_suffix(".safetensors")
    with atomic_path(weights) as tmp:
        save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    write_text_atomic(stem.with_suffix(".json"), json.dumps({"format": "covermill-genre-cnn/1", **config}, indent=2))
    return weights


def load_cnn(path: str | os.PathLike):
    """Rebuild a saved CNN (eval mode) and its config from ``stem.safetensors`` + ``stem.json``."""
    from fastai.vision.all import create_vision_model
    from safetensors.torch import load_file

    weights = Path(path).with_suffix(".safetensors")
    cfg_path = weights.with_suffix(".json")
    if not weights.is_file() or not cfg_path.is_file():
        raise ModelLoadingError(f"{weights}: needs {weights.name} and {cfg_path.name} side by side")
    cfg = json.loads(cfg_path.read_text())
    if cfg.get("format") != "covermill-genre-cnn/1":
        raise ModelLoadingError(f"{cfg_path}: is not a covermill genre CNN")
    model = create_vision_model(_arch(cfg["arch"]), len(cfg["classes"]), pretrained=False)
    try:
        model.load_state_dict(load_file(str(weights)))
    except Exception as exc:
        raise ModelLoadingError(f"{weights}: weights do not fit {cfg['arch']} ({str(exc).splitlines()[0]})") from None
    return model.eval(), cfg


def predict_cnn(model, cfg: dict, y: np.ndarray, *, sr: int) -> dict[str, float]:
    """Genre probabilities of ``(channels, n)`` audio: mean over its ``clip_s`` clips."""
    import torch
    import torch.nn.functional as F

    n = int(cfg["clip_s"] * sr)
    clips = [y[:, s : s + n] for s in range(0, max(1, y.shape[1] - n + 1), n)]
    batch = []
    for clip in clips:
        img = torch.from_numpy(spectrogram_image(clip, sr=sr)).permute(2, 0, 1).float() / 255.0
        img = F.interpolate(img[None], size=(cfg["image_size"], cfg["image_size"]), mode="bilinear")[0]
        if cfg.get("normalize"):
            mean, std = (torch.tensor(s)[:, None, None] for s in IMAGENET_STATS)
            img = (img - mean) / std
        batch.append(img)
    with torch.no_grad():
        proba = torch.softmax(model(torch.stack(batch)), dim=1).mean(dim=0).numpy()
    return {c: round(float(p), 4) for c, p in sorted(zip(cfg["classes"], proba, strict=True), key=lambda t: -t[1])}


def _plot_confusion(cm: np.ndarray, classes: list[str], path: Path, *, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(classes), 0.8 + 0.6 * len(classes)), dpi=110)
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
