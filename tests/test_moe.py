"""Tests of the MoE-Sim-VAE experiment helpers (mnistnd.moe)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mnistnd import moe


def test_cluster_scores_hand_computed_f_measure():
    # classes a (4 points), b (2 points); clusters 0 = {a,a,a}, 1 = {a,b,b}
    y = np.array(["a", "a", "a", "a", "b", "b"])
    pred = np.array([0, 0, 0, 1, 1, 1])
    # Eq. 12 over the predicted clusters: F(0,a) = 2*3/(3+4) = 6/7, F(0,b) = 0;
    # F(1,a) = 2*1/(3+4) = 2/7, F(1,b) = 2*2/(3+2) = 4/5  ->  F = 3/6*6/7 + 3/6*4/5
    expected = 0.5 * 6 / 7 + 0.5 * 4 / 5
    scores = moe.cluster_scores(y, pred)
    assert scores["F-measure"] == pytest.approx(expected)
    assert scores["accuracy"] == pytest.approx(5 / 6)
    assert scores["n_clusters"] == 2
    assert 0 < scores["NMI"] < 1
    perfect = moe.cluster_scores(y, (y == "b").astype(int))
    assert perfect["F-measure"] == pytest.approx(1.0) and perfect["NMI"] == pytest.approx(1.0)


def test_experts_used():
    labels = np.array([0] * 50 + [3] * 49 + [5])
    assert moe.experts_used(labels, 6, min_fraction=0.0) == 3
    assert moe.experts_used(labels, 6, min_fraction=0.02) == 2
    with pytest.raises(ValueError, match="labels must lie"):
        moe.experts_used(labels, 4)


def test_mmd_same_vs_different_distribution():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((200, 3)), rng.standard_normal((200, 3))
    c = rng.standard_normal((200, 3)) + 3.0
    same, diff = moe.mmd2(a, b, 1.0), moe.mmd2(a, c, 1.0)
    assert abs(same) < 0.02
    assert diff > 0.2 and diff > 20 * abs(same)
    with pytest.raises(ValueError, match="bandwidth"):
        moe.mmd2(a, b, 0.0)


def test_mmd2_matches_direct_sum():
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((5, 2)), rng.standard_normal((4, 2)) + 1

    def k(u, v):
        return np.exp(-np.sum((u - v) ** 2) / 2.0)

    xx = sum(k(X[i], X[j]) for i in range(5) for j in range(5) if i != j) / 20
    yy = sum(k(Y[i], Y[j]) for i in range(4) for j in range(4) if i != j) / 12
    xy = sum(k(x, y) for x in X for y in Y) / 20
    assert moe.mmd2(X, Y, 1.0) == pytest.approx(xx + yy - 2 * xy)


def test_mmd_matrix_and_separation():
    rng = np.random.default_rng(2)
    labels = np.repeat([0, 1, 2], 100)
    Z = rng.standard_normal((300, 2)) + 6.0 * labels[:, None]
    m = moe.mmd_matrix(Z, labels, n_per_group=40, seed=0)
    assert isinstance(m, pd.DataFrame) and m.shape == (3, 3)
    np.testing.assert_allclose(m.values, m.values.T)
    s = moe.separation(m)
    assert s["between"] > 10 * abs(s["within"])
    with pytest.raises(ValueError, match="labels must have shape"):
        moe.mmd_matrix(Z, labels[:-1])


def test_make_gaussian_mixture():
    X, y, params = moe.make_gaussian_mixture(5, n_samples=500, n_features=4, seed=3)
    assert X.shape == (500, 4) and X.dtype == np.float32
    assert X.min() == pytest.approx(0.0) and X.max() == pytest.approx(1.0)
    assert set(np.unique(y)) <= set(range(5)) and len(np.unique(y)) == 5
    assert params["means"].shape == (5, 4) and params["weights"].sum() == pytest.approx(1.0)
    X2, y2, _ = moe.make_gaussian_mixture(5, n_samples=500, n_features=4, seed=3)
    np.testing.assert_array_equal(X, X2)
    with pytest.raises(ValueError, match="n_components"):
        moe.make_gaussian_mixture(0)


def test_component_to_class_and_generation():
    X, y, _ = moe.make_gaussian_mixture(3, n_samples=300, n_features=6, seed=0)
    model, _ = moe.train_moe(X, None, n_experts=4, code_size=3, epochs=10, batch_size=60,
                             lr=3e-3, seed=0, device="cpu", hidden=(16,), gate_depth=2,
                             gate_width=32, gate_dropout=0.1, progress=False, num_threads=1)
    pred = model.predict(X)
    mapping = moe.component_to_class(y, pred)
    assert set(mapping) == set(np.unique(pred))
    clf = moe.train_digit_classifier(X, y)
    out = moe.generation_confusion(model, clf, mapping, n_per_expert=50, seed=0)
    assert out["images"].shape == (50 * len(mapping), 6)
    assert out["confusion"].values.sum() == 50 * len(mapping)
    assert 0.0 <= out["accuracy"] <= 1.0


def test_train_moe_bad_input():
    X = np.random.default_rng(0).random((100, 5)).astype(np.float32)
    with pytest.raises(ValueError, match="knn_k=10 must be smaller than batch_size=8"):
        moe.train_moe(X, batch_size=8, knn_k=10)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        moe.train_moe(X * 3)
    with pytest.raises(ValueError, match="projection has 50 rows"):
        moe.train_moe(X, np.zeros((50, 2)))


def test_pbmc_input_scales_top_genes_to_unit_interval():
    import anndata
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    lognorm = rng.gamma(1.0, 1.0, size=(30, 6)).astype(np.float32)
    lognorm[:, 4] = 0.0  # a gene never expressed is dropped (no scale)
    ad = anndata.AnnData(X=np.zeros((30, 6), dtype=np.float32))
    ad.layers["lognorm"] = sp.csr_matrix(lognorm)
    ad.var["vst_variance"] = [5.0, 1.0, 4.0, 0.5, 3.0, 2.0]
    X = moe.pbmc_input(ad, n_top_genes=3)  # genes 0, 2, 4 -> gene 4 all zero is dropped
    np.testing.assert_allclose(X, lognorm[:, [0, 2]] / lognorm[:, [0, 2]].max(0), rtol=1e-6)
    assert moe.pbmc_input(ad, None).shape == (30, 5)
    del ad.layers["lognorm"]
    with pytest.raises(KeyError, match="lognorm"):
        moe.pbmc_input(ad)


def test_cluster_number_study_rows_and_bad_input():
    with pytest.raises(ValueError, match="projection"):
        moe.cluster_number_study([2], n_experts=3, projection="tsne")
    with pytest.raises(ValueError, match="n_experts"):
        moe.cluster_number_study([2], n_experts=1)
    study = moe.cluster_number_study(
        [2, 3], n_experts=4, n_samples=200, n_features=4, projection="pca", epochs=2,
        batch_size=50, code_size=2, hidden=(8,), gate_depth=1, gate_width=8, device="cpu",
        similarity_mode="components", similarity_threshold=0.2, val_fraction=0.0,
        progress=False, num_threads=1,
    )
    assert list(study["true_components"]) == [2, 3]
    assert set(study.columns) >= {"experts_used", "NMI", "accuracy", "F-measure", "seconds"}
    assert study["experts_used"].between(1, 4).all()


def test_similarity_probe_separates_the_three_matrices():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 60)
    P = rng.normal(scale=0.3, size=(180, 2)) + np.array([[0, 0], [10, 0], [0, 10]])[y]
    probe = moe.similarity_probe(P, y, knn_k=5, threshold=1.0, n_split=12, seed=0)
    comp = probe.loc["components at 1.0"]
    assert comp["S = 1 within components"] == 1.0 and comp["S = 1 across components"] == 0.0
    assert comp["loss, true partition"] < 1e-3 < comp["loss, k-means with 12"]
    knn = probe.loc["kNN (k = 5)"]
    assert knn["S = 1 within components"] < 0.2  # k much smaller than a component
    assert knn["loss, k-means with 12"] < knn["loss, true partition"]  # splitting is cheaper
    with pytest.raises(ValueError, match="labels has 179 entries"):
        moe.similarity_probe(P, y[:-1])
    with pytest.raises(ValueError, match="X has 179 rows"):
        moe.similarity_probe(P, y, P[:-1])
    with pytest.raises(ValueError, match="knn_k"):
        moe.similarity_probe(P, y, knn_k=180)
