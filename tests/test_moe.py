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


# --------------------------------------------------------------------------- VaDE and the sweeps
def _tiny_vade(n_input=6, means=((-1.0,), (1.0,)), seed=0):
    """A VaDE with a hand-set 1-d prior: two unit-variance components with equal weights."""
    import torch

    from mnistnd.models import VaDE

    torch.manual_seed(seed)
    model = VaDE(n_input=n_input, n_latent=len(means[0]), n_clusters=len(means), hidden=(4,))
    with torch.no_grad():
        model.prior_means.copy_(torch.tensor(means))
    return model.eval()


class _ConstantClassifier:
    """Judge that calls every image ``label`` (scikit-learn ``predict`` protocol)."""

    def __init__(self, label):
        self.label = label

    def predict(self, X):
        return np.full(len(X), self.label)


def test_train_vade_initialises_prior_from_pretrained_codes(monkeypatch):
    from mnistnd.models.vade import VaDE

    rng = np.random.default_rng(0)
    X = rng.uniform(size=(120, 8)).astype(np.float32)
    X[:60] *= 0.2
    seen = {}
    original = VaDE.init_prior_from_codes

    def spy(self, Z):
        # the codes of the training part, from the pretrained encoder, before the ELBO stage
        train_idx, _ = moe._split(len(X), 0.25, 3)
        seen["match"] = np.allclose(Z, self.transform(X[train_idx]), atol=1e-6)
        seen["gmm"] = original(self, Z)
        seen["prior"] = [t.detach().numpy().copy() for t in self.prior_params()]
        return seen["gmm"]

    monkeypatch.setattr(VaDE, "init_prior_from_codes", spy)
    model, history = moe.train_vade(
        X, n_clusters=2, n_latent=2, hidden=(8,), pretrain_epochs=2, epochs=2, batch_size=30,
        seed=3, val_fraction=0.25, device="cpu", progress=False, num_threads=1)
    assert seen["match"]
    weights, means, variances = seen["prior"]
    np.testing.assert_allclose(means, seen["gmm"].means_, atol=1e-6)
    np.testing.assert_allclose(weights, seen["gmm"].weights_, atol=1e-6)
    np.testing.assert_allclose(variances, seen["gmm"].covariances_, rtol=1e-5)
    assert list(history["stage"].unique()) == ["pretrain", "train"]
    assert (history["stage"] == "train").sum() == 2
    assert history.loc[history["stage"] == "train", "train_categorical"].notna().all()
    assert not model.training and model.predict(X).shape == (120,)


def test_train_vade_refuses_one_cluster_before_training(monkeypatch):
    from mnistnd.models.vade import VaDE

    def fail(*args, **kwargs):
        raise AssertionError("pretraining started")

    monkeypatch.setattr(VaDE, "pretrain", fail)
    X = np.random.default_rng(0).uniform(size=(40, 5))
    with pytest.raises(ValueError, match="n_clusters must be >= 2"):
        moe.train_vade(X, n_clusters=1, progress=False)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        moe.train_vade(X * 3)


def test_generation_sweep_vade_thresholds_and_judges():
    model = _tiny_vade(means=((0.0,), (0.0,)))  # identical components: p(c | z) = 1/2
    mapping = {0: 7, 1: 3}
    scores, confusion = moe.generation_sweep(model, _ConstantClassifier(7), mapping,
                                             thresholds=[0.0, 0.4, 0.6], n_per_component=10,
                                             seed=0, max_draws=50)
    assert len(scores) == 6 and list(scores["threshold"].unique()) == [0.0, 0.4, 0.6]
    kept = scores[scores["threshold"] < 0.5]
    assert (kept["n_images"] == 10).all() and (kept["n_drawn"] == 10).all()
    assert (kept["draws_per_image"] == 1.0).all()
    # the constant judge is right for the component of digit 7 only
    assert kept.set_index("target")["accuracy"].to_dict() == {7: 1.0, 3: 0.0}
    # the model's own clustering: a tie goes to component 0, the one of digit 7
    assert kept.set_index("target")["model_accuracy"].to_dict() == {7: 1.0, 3: 0.0}
    # above 1/2 no draw passes: no images, every draw spent, scores undefined
    rejected = scores[scores["threshold"] == 0.6]
    assert (rejected["n_images"] == 0).all() and (rejected["n_drawn"] == 50).all()
    assert rejected["accuracy"].isna().all() and rejected["draws_per_image"].isna().all()
    assert confusion[0.0].values.sum() == 20 and confusion[0.0].loc[3, 7] == 10
    assert confusion[0.6].values.sum() == 0 and set(confusion[0.6].index) == {3, 7}
    summary = moe.sweep_summary(scores)
    assert summary.index.tolist() == [0.0, 0.4, 0.6]
    assert summary.loc[0.0, "accuracy"] == 0.5 and summary.loc[0.4, "draws_per_image"] == 1.0
    assert np.isnan(summary.loc[0.6, "accuracy"]) and np.isnan(summary.loc[0.6, "draws_per_image"])
    with pytest.raises(ValueError, match="thresholds"):
        moe.generation_sweep(model, _ConstantClassifier(7), mapping, thresholds=[1.0])
    with pytest.raises(TypeError, match="VaDE or a MoESimVAE"):
        moe.generation_sweep(object(), _ConstantClassifier(7), mapping)
    with pytest.raises(ValueError, match="components must lie"):
        moe.generation_sweep(model, _ConstantClassifier(7), {5: 1})


def test_generation_sweep_moe_repeats_without_threshold():
    X, y, _ = moe.make_gaussian_mixture(3, n_samples=300, n_features=6, seed=0)
    model, _ = moe.train_moe(X, None, n_experts=4, code_size=3, epochs=3, batch_size=60,
                             seed=0, device="cpu", hidden=(16,), gate_depth=1, gate_width=16,
                             progress=False, num_threads=1)
    mapping = moe.component_to_class(y, model.predict(X))
    clf = moe.train_digit_classifier(X, y)
    scores, confusion = moe.generation_sweep(model, clf, mapping, thresholds=[0.0, 0.999],
                                             n_per_component=20, seed=1)
    assert len(scores) == 2 * len(mapping)
    # MoE-Sim-VAE draws are never rejected: every threshold gets all its images at once
    assert (scores["n_images"] == 20).all() and (scores["draws_per_image"] == 1.0).all()
    assert scores["accuracy"].between(0, 1).all() and scores["model_accuracy"].between(0, 1).all()
    assert all(c.values.sum() == 20 * len(mapping) for c in confusion.values())


def test_latent_draws_respect_threshold_and_centres():
    import torch

    model = _tiny_vade(means=((-1.0,), (1.0,)))
    Z, labels = moe.latent_draws(model, 30, threshold=0.8, seed=0)
    assert Z.shape == (60, 1) and np.bincount(labels).tolist() == [30, 30]
    post = torch.softmax(model.log_joint(torch.as_tensor(Z)), dim=1).detach().numpy()
    assert np.all(post[np.arange(60), labels] > 0.8)
    assert np.all(Z[labels == 0] < 0) and np.all(Z[labels == 1] > 0)
    X, y, _ = moe.make_gaussian_mixture(2, n_samples=200, n_features=4, seed=0)
    moe_model, _ = moe.train_moe(X, None, n_experts=3, code_size=2, epochs=2, batch_size=50,
                                 seed=0, device="cpu", hidden=(8,), gate_depth=1, gate_width=8,
                                 progress=False, num_threads=1)
    Zm, lab = moe.latent_draws(moe_model, 500, components=[0], seed=0)
    centre = moe_model.means_[0].numpy()
    assert Zm.shape == (500, 2) and (lab == 0).all()
    np.testing.assert_allclose(Zm.mean(0), centre, atol=0.15)  # z ~ N(mu_k, I)
    np.testing.assert_allclose(Zm.std(0), 1.0, atol=0.1)


def test_check_study_sizes_with_a_grid():
    assert moe.check_study_sizes([2, 5], [8, 5, 8]) == ([2, 5], [5, 8])
    assert moe.check_study_sizes([2, 5], 6) == ([2, 5], 6)
    with pytest.raises(ValueError, match=r"n_experts=\[3, 4\] is below.*max\(n_components\)=5"):
        moe.check_study_sizes([2, 5], [3, 4])
    with pytest.raises(TypeError, match="sequence of expert counts"):
        moe.expert_search([2], 4)
    with pytest.raises(ValueError, match="n_experts"):
        moe.expert_search([2, 6], [3, 5], projection="pca")


def test_select_expert_count_rule():
    runs = pd.DataFrame({
        "true_components": [3, 3, 3, 3, 4, 4, 5, 5],
        "n_experts": [3, 5, 8, 10, 6, 8, 5, 6],
        "experts_used": [3, 3, 4, 3, 5, 4, 5, 6],
    })
    sel = moe.select_expert_count(runs).set_index("true_components")
    # k = 3: E = 3 uses all (no vote), votes 3, 4, 3 -> 3; k = 4: a tie 5/4 -> the smaller
    assert sel.loc[3, "estimate"] == 3 and sel.loc[3, "votes"] == 3 and sel.loc[3, "correct"]
    assert sel.loc[4, "estimate"] == 4 and sel.loc[4, "used_at_largest"] == 4
    # k = 5: every run used all its experts -> undetermined
    assert np.isnan(sel.loc[5, "estimate"]) and not sel.loc[5, "correct"]
    with pytest.raises(ValueError, match="experts_used"):
        moe.select_expert_count(runs.drop(columns="experts_used"))


def test_expert_search_finds_true_count_on_easy_data():
    runs = moe.expert_search(
        [3], [4, 6], n_samples=300, n_features=4, seed=0, projection="pca", epochs=40,
        batch_size=100, lr=3e-3, code_size=2, hidden=(16,), gate_depth=2, gate_width=32,
        device="cpu", similarity_mode="components", similarity_threshold=0.3, val_fraction=0.0,
        mixture_weight=0.0, depict_weight=0.0, progress=False, num_threads=1,
    )
    assert runs["n_experts"].tolist() == [4, 6]
    assert (runs["experts_used"] <= runs["n_experts"]).all()
    sel = moe.select_expert_count(runs)
    assert sel["estimate"].tolist() == [3.0] and sel["correct"].all()
