"""Fixtures and helpers shared by the stem tests: tiny HTDemucs models and local demucs repos.

``tests/stems`` is a package (``__init__.py``) so that this file is imported as
``stems.conftest`` and does not replace ``tests/conftest.py`` as the ``conftest`` module the
test files import their audio helpers from.
"""

import pytest

SOURCES = ["drums", "bass", "other", "vocals"]


def tiny_htdemucs(sources=SOURCES, seed=0):
    """A small HTDemucs (2 s segments) with seeded random weights: runs in milliseconds on a CPU."""
    import torch
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(seed)
    return HTDemucs(sources=list(sources), channels=8, depth=4, t_layers=1, t_heads=1, bottom_channels=0,
                    dconv_comp=4, segment=2)


def save_repo(folder, name="tiny", sources=SOURCES, sig="abcd1234", seed=0):
    """Write a demucs local repo: ``<sig>-<sha256[:8]>.th`` + ``<name>.yaml``, as demucs saves them."""
    from demucs.states import get_state, save_with_checksum

    model = tiny_htdemucs(sources, seed)
    args, kwargs = model._init_args_kwargs
    package = {"klass": type(model), "args": args, "kwargs": kwargs, "state": get_state(model, None, half=False)}
    folder.mkdir(parents=True, exist_ok=True)
    save_with_checksum(package, folder / f"{sig}.th")
    (folder / f"{name}.yaml").write_text(f"models: ['{sig}']\n")
    return next(folder.glob(f"{sig}-*.th"))


@pytest.fixture(scope="module")
def one_thread():
    """The tiny model runs fastest on one torch thread (and the test machine is shared).

    Not autouse: the DSP tests must not import torch. Use ``pytest.mark.usefixtures("one_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
