"""Genre CNN (fastai) on small synthesized 'genres': tonal songs vs noisy drum loops."""

import json

import numpy as np
import pytest
from conftest import SR, click_track, song, write

from covermill.errors import ModelLoadingError, ParameterError

torch = pytest.importorskip("torch")
pytest.importorskip("fastai")


@pytest.fixture(scope="module")
def genre_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("genres")
    rng = np.random.default_rng(0)
    for i in range(4):
        tonal = song(bars=3, seed=i, transpose=i)
        tonal[:] = tonal - 0.5 * click_track(120, tonal.shape[1] / SR)[:, : tonal.shape[1]]  # mostly melody
        (root / "tonal").mkdir(exist_ok=True)
        write(root / "tonal" / f"t{i}.wav", tonal)
        noisy = click_track(100 + 10 * i, 6.0) + 0.05 * rng.standard_normal((2, 6 * SR)).astype(np.float32)
        (root / "noisy").mkdir(exist_ok=True)
        write(root / "noisy" / f"n{i}.wav", noisy)
    return root


def test_train_from_scratch_saves_and_predicts(genre_folder, tmp_path):
    from covermill.analysis.cnn import load_cnn, predict_cnn, train_genre_cnn

    torch.set_num_threads(2)
    result = train_genre_cnn(genre_folder, tmp_path / "cnn", arch="resnet18", epochs=4, clip_s=2.0, image_size=64,
                             batch_size=8, valid_pct=0.25)
    assert result.classes == ["noisy", "tonal"]
    assert result.losses[-1] < result.losses[0]
    assert (tmp_path / "cnn" / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    metrics = json.loads((tmp_path / "cnn" / "metrics.json").read_text())
    assert len(metrics["valid_songs"]) == 2  # one held-out song per genre, never split across sides
    model, cfg = load_cnn(result.model_path)
    y = click_track(110, 4.0)
    probs = predict_cnn(model, cfg, y, sr=SR)
    assert set(probs) == {"noisy", "tonal"} and abs(sum(probs.values()) - 1) < 1e-3
    assert result.accuracy >= 0.5


def test_local_pretrained_weights(genre_folder, tmp_path):
    import torchvision

    from covermill.analysis.cnn import train_genre_cnn

    weights = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
    result = train_genre_cnn(genre_folder, tmp_path / "ft", arch="resnet18", epochs=1, weights=weights, clip_s=2.0,
                             image_size=64, batch_size=8)
    assert result.model_path.is_file()
    bad = tmp_path / "bad.pth"
    bad.write_text("not weights")
    with pytest.raises(ModelLoadingError, match="cannot be read as weights"):
        train_genre_cnn(genre_folder, tmp_path / "x", arch="resnet18", weights=bad, epochs=1)
    with pytest.raises(ModelLoadingError, match="does not fit resnet34"):
        train_genre_cnn(genre_folder, tmp_path / "y", arch="resnet34", weights=weights, epochs=1, clip_s=2.0,
                        image_size=64)


def test_bad_folders(tmp_path):
    from covermill.analysis.cnn import train_genre_cnn

    (tmp_path / "only").mkdir()
    with pytest.raises(ParameterError, match="at least two genre sub-folders"):
        train_genre_cnn(tmp_path, tmp_path / "o")
    with pytest.raises(ParameterError, match="unknown architecture"):
        train_genre_cnn(tmp_path, tmp_path / "o", arch="vgg")
