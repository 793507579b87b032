"""SHS clique bookkeeping and the kNN clique model (the paper's Model 1)."""

import numpy as np
import pytest
from conftest import SHARED

from covermill.analysis.cliques import (
    CliqueKNN,
    average_precision,
    evaluate_knn,
    load_shs,
    paper_selection,
    select_cliques,
)
from covermill.errors import ParameterError

SHS = SHARED / "data" / "shs"
LIST = """# comment
%1,2, Song A
TRA1<SEP>AR1<SEP>1
TRA2<SEP>AR2<SEP>-1
%3, Song B, with a comma
TRB1<SEP>AR3<SEP>3
"""


def test_load_shs_format(tmp_path):
    p = tmp_path / "list.txt"
    p.write_text(LIST)
    cliques = load_shs(p)
    assert [c.title for c in cliques] == ["Song A", "Song B, with a comma"]
    assert cliques[0].works == ("1", "2") and len(cliques[0]) == 2
    assert cliques[0].tracks[1] == ("TRA2", "AR2", "-1")
    assert select_cliques(cliques, min_members=1) == [cliques[0]]


def test_load_shs_refuses_a_track_before_a_clique(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_text("TRA1<SEP>AR1<SEP>1\n")
    with pytest.raises(ParameterError, match=r"bad.txt:1: expected"):
        load_shs(p)
    with pytest.raises(ParameterError, match="no such SHS clique list"):
        load_shs(tmp_path / "missing.txt")


@pytest.mark.shared
@pytest.mark.skipif(not SHS.is_dir(), reason="../shared/data/shs is absent (a fresh clone has no ../shared)")
def test_shs_lists_and_the_papers_selection():
    train, test = load_shs(SHS / "shs_dataset_train.txt"), load_shs(SHS / "shs_dataset_test.txt")
    assert (len(train), sum(map(len, train))) == (4128, 12960)  # SOURCE.txt
    assert (len(test), sum(map(len, test))) == (1726, 5236)
    chosen = paper_selection(train, test)
    assert len(chosen) == 29  # the paper's 29 cliques
    assert sum(map(len, chosen)) == 593  # (the paper says 441 tracks; see paper_selection)
    assert {"Summertime", "Silent Night", "Body And Soul"} <= {c.title for c in chosen}
    literal = select_cliques(train + test, min_members=15)  # "> 15" read literally
    assert (len(literal), sum(map(len, literal))) == (19, 443)


def synthetic_cliques(rng, *, n_cliques=8, per=6, dim=20, spread=0.3):
    centres = rng.standard_normal((n_cliques, dim))
    X = np.repeat(centres, per, axis=0) + spread * rng.standard_normal((n_cliques * per, dim))
    return X, np.repeat(np.arange(n_cliques), per)


def test_knn_finds_synthetic_cliques(rng):
    X, y = synthetic_cliques(rng)
    result = evaluate_knn(X, y, n_neighbors=3)
    assert result["accuracy"] == 1.0 and result["map"] == 1.0
    assert (result["n_tracks"], result["n_cliques"]) == (48, 8)


def test_knn_on_shuffled_labels_is_near_chance(rng):
    X, y = synthetic_cliques(rng)
    result = evaluate_knn(X, rng.permutation(y), n_neighbors=3)
    assert result["accuracy"] < 0.4 and result["map"] < 0.4


def test_knn_predicts_new_points(rng):
    X, y = synthetic_cliques(rng, spread=0.1)
    model = CliqueKNN(n_neighbors=5).fit(X, y)
    assert (model.predict(X[::6] + 0.01) == y[::6]).all()
    with pytest.raises(ParameterError, match="not fitted"):
        CliqueKNN().predict(X)
    with pytest.raises(ParameterError, match="one label per track"):
        CliqueKNN().fit(X, y[:-1])


def test_pca_keeps_cliques_apart(rng):
    from covermill.analysis.cliques import pca_project

    X, y = synthetic_cliques(rng, dim=100)
    Z = pca_project(X, 10)
    assert Z.shape == (48, 10)
    assert np.allclose(Z.mean(axis=0), 0, atol=1e-9)
    assert np.all(np.diff(Z.var(axis=0)) <= 1e-9)  # components by decreasing variance
    assert evaluate_knn(X, y, n_neighbors=3, pca_components=10)["accuracy"] == 1.0


def test_average_precision():
    assert average_precision(np.array([3.0, 2.0, 1.0]), np.array([1, 0, 1])) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision(np.array([1.0, 2.0]), np.array([0, 0])) == 0.0
