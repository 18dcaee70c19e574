"""Tests of the MoE-Sim-VAE model and its loss terms (paper 002, Eqs. 3-11)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mnistnd.models import MoESimVAE
from mnistnd.models.moe_sim_vae import (
    cluster_means,
    depict_loss,
    depict_target,
    knn_similarity,
    mixture_kl,
    similarity_loss,
    threshold_similarity,
)


def _toy(n_per=60, n_clusters=3, n_features=12, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.uniform(0.1, 0.9, size=(n_clusters, n_features))
    y = np.repeat(np.arange(n_clusters), n_per)
    X = np.clip(centers[y] + 0.04 * rng.standard_normal((len(y), n_features)), 0, 1)
    return X.astype(np.float32), y


def test_depict_target_matches_formula():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(4), size=7)
    q = depict_target(torch.tensor(p)).numpy()
    expected = np.empty_like(p)
    for i in range(7):
        num = [p[i, k] / np.sqrt(p[:, k].sum()) for k in range(4)]
        expected[i] = np.array(num) / np.sum(num)
    np.testing.assert_allclose(q, expected, rtol=1e-10)
    # the target favours small clusters relative to p (division by sqrt of soft size)
    big = np.argmax(p.sum(0))
    assert np.mean(q[:, big]) < np.mean(p[:, big])


def test_depict_loss_is_cross_entropy_with_target():
    p = torch.tensor([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4]], dtype=torch.float64)
    noisy = torch.tensor([[0.5, 0.5], [0.1, 0.9], [0.9, 0.1]], dtype=torch.float64)
    q = depict_target(p)
    expected = -(q * torch.log(noisy)).sum(1).mean()
    assert float(depict_loss(p, noisy)) == pytest.approx(float(expected))
    with pytest.raises(ValueError, match="differ in shape"):
        depict_loss(p, noisy[:2])


#: Similarity of five points on a line, a chain 0-1-2 and a pair 3-4 (both tests below).
CHAIN_THEN_PAIR = np.array(
    [[1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [0, 1, 1, 0, 0], [0, 0, 0, 1, 1], [0, 0, 0, 1, 1]],
    dtype=np.float32,
)


def test_knn_similarity_on_a_line():
    proj = torch.tensor([[0.0], [1.0], [1.5], [10.0], [10.2]])
    S = knn_similarity(proj, 1).numpy()
    np.testing.assert_array_equal(S, CHAIN_THEN_PAIR)
    with pytest.raises(ValueError, match="knn_k=5 must be smaller than the batch size"):
        knn_similarity(proj, 5)


def test_threshold_similarity_and_components():
    proj = torch.tensor([[0.0], [0.8], [1.6], [10.0], [10.5]])
    S = threshold_similarity(proj, 1.0).numpy()
    np.testing.assert_array_equal(S, CHAIN_THEN_PAIR)
    # transitive closure: 0 and 2 are linked through 1 (single-linkage groups at the threshold)
    C = threshold_similarity(proj, 1.0, components=True).numpy()
    groups = np.array([0, 0, 0, 1, 1])
    np.testing.assert_array_equal(C, (groups[:, None] == groups[None, :]).astype(np.float32))
    with pytest.raises(ValueError, match="similarity_threshold"):
        threshold_similarity(proj, 0.0)
    with pytest.raises(ValueError, match="similarity_mode"):
        MoESimVAE(n_input=5, similarity_mode="tsne")


def test_knn_similarity_loss_prefers_splitting_large_clusters():
    # Why the kNN matrix cannot count clusters in large batches: with k much smaller than a
    # cluster's share of the batch, most same-cluster pairs have S = 0, and the BCE of Eq. 7
    # is lower for a partition that splits each cluster than for the true one. The
    # connected-components matrix makes the true partition the minimum.
    X, y = _toy(n_per=150, n_clusters=2, seed=0)
    x = torch.tensor(X, dtype=torch.float64)
    true_p = F.one_hot(torch.tensor(y)).double()
    split = np.argsort(np.argsort(X[:, 0] + 10 * y))  # rank within clusters along one axis
    split_p = F.one_hot(torch.tensor(2 * y + (split % 150 >= 75)), 4).double()
    S_knn = knn_similarity(x, 10)
    S_cc = threshold_similarity(x, 0.5, components=True)
    assert float(similarity_loss(split_p, S_knn)) < float(similarity_loss(true_p, S_knn))
    assert float(similarity_loss(true_p, S_cc)) < 1e-5
    assert float(similarity_loss(split_p, S_cc)) > 1.0


def test_similarity_loss_on_toy_batch():
    S = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]], dtype=torch.float64)
    p_good = torch.tensor([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=torch.float64)
    p_bad = torch.tensor([[1, 0], [0, 1], [1, 0], [0, 1]], dtype=torch.float64)
    p_soft = torch.full((4, 2), 0.5, dtype=torch.float64)
    assert float(similarity_loss(p_good, S)) < 1e-5
    # uniform p: every (PP^T)_ij = 1/2, so the BCE is log 2 for every entry
    assert float(similarity_loss(p_soft, S)) == pytest.approx(np.log(2), rel=1e-6)
    assert float(similarity_loss(p_bad, S)) > 5.0
    with pytest.raises(ValueError, match=r"similarity must have shape \(4, 4\)"):
        similarity_loss(p_good, S[:3, :3])


def test_cluster_means_eq6():
    z = torch.tensor([[0.0, 0.0], [2.0, 2.0], [10.0, 0.0]])
    p = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.0, 1.0]])
    means, counts = cluster_means(z, p)
    np.testing.assert_allclose(counts.numpy(), [2, 1])
    np.testing.assert_allclose(means.numpy(), [[0.8, 0.8], [10.4, 0.4]], rtol=1e-6)


def test_mixture_kl_zero_when_codes_match_prior():
    # two clusters whose codes have exactly unit variance around their means in every dimension
    base = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]], dtype=torch.float64)
    z = torch.cat([base + 5.0, base - 5.0])
    p = torch.tensor([[1.0, 0.0]] * 4 + [[0.0, 1.0]] * 4, dtype=torch.float64)
    assert float(mixture_kl(z, p)) == pytest.approx(0.0, abs=1e-12)
    # shrinking one cluster (variance 1/4) gives 1/2 * (4 - 1 + ln 1/4) per dim, weight 1/2
    z_small = torch.cat([base * 0.5 + 5.0, base - 5.0])
    expected = 0.5 * (0.5 * 2 * (4 - 1 + np.log(0.25)))
    assert float(mixture_kl(z_small, p)) == pytest.approx(expected, rel=1e-9)
    # spreading a cluster (variance 4) is penalised too
    assert float(mixture_kl(torch.cat([base * 2 + 5, base - 5]), p)) > 0.1


def test_gradients_reach_gate_and_used_experts():
    torch.manual_seed(0)
    X, _ = _toy(n_per=20)
    model = MoESimVAE(n_input=X.shape[1], n_experts=4, code_size=3, hidden=(16,),
                      gate_depth=2, gate_width=16, knn_k=5)
    x = torch.tensor(X)
    terms = model.loss(x)
    assert set(terms) == {"loss", "reconstruction", "mixture_kl", "similarity", "depict",
                          "clustering"}
    terms["loss"].backward()
    assign = model.gate_probabilities(model.encode(x)).argmax(1).unique().tolist()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.gate.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())
    for k, expert in enumerate(model.experts):
        grads = [p.grad for p in expert.parameters()]
        if k in assign:
            assert all(g is not None and g.abs().sum() > 0 for g in grads)
        else:  # an expert that receives no sample gets no gradient
            assert all(g is None for g in grads)


def test_total_is_eq11_combination():
    torch.manual_seed(0)
    X, _ = _toy(n_per=10)
    model = MoESimVAE(n_input=X.shape[1], n_experts=3, code_size=2, hidden=(8,), knn_k=3,
                      reconstruction_weight=0.5, clustering_weight=0.3, mixture_weight=0.2,
                      similarity_weight=0.7, depict_weight=2.0)
    torch.manual_seed(1)
    t = {k: v.detach() for k, v in model.loss(torch.tensor(X)).items()}
    expected = (0.5 * t["reconstruction"] + 0.2 * t["mixture_kl"]
                + 0.3 * (0.7 * t["similarity"] + 2.0 * t["depict"]))
    assert float(t["loss"]) == pytest.approx(float(expected), rel=1e-6)
    assert float(t["clustering"]) == pytest.approx(float(0.7 * t["similarity"] + 2 * t["depict"]))


def test_bad_input_raises():
    with pytest.raises(ValueError, match="n_experts"):
        MoESimVAE(n_input=5, n_experts=1)
    with pytest.raises(ValueError, match="mixture_weight"):
        MoESimVAE(n_input=5, mixture_weight=-0.1)
    with pytest.raises(ValueError, match="similarity_weight"):
        MoESimVAE(n_input=5, similarity_weight=-1.0)
    with pytest.raises(ValueError, match="architecture"):
        MoESimVAE(n_input=5, architecture="transformer")
    with pytest.raises(ValueError, match="n_input=784"):
        MoESimVAE(n_input=5, architecture="conv")
    model = MoESimVAE(n_input=5, n_experts=2, code_size=2, hidden=(4,), knn_k=10)
    x = torch.rand(8, 5)
    with pytest.raises(ValueError, match="knn_k=10 must be smaller than the batch size"):
        model.loss(x)
    with pytest.raises(ValueError, match=r"similarity must have shape \(8, 8\)"):
        model.loss(x, similarity=torch.ones(8, 7))
    with pytest.raises(ValueError, match="projection has 7 rows"):
        MoESimVAE(n_input=5, n_experts=2, code_size=2, hidden=(4,), knn_k=3).loss(
            x, torch.rand(7, 2))


def test_precomputed_similarity_is_used():
    torch.manual_seed(0)
    model = MoESimVAE(n_input=5, n_experts=2, code_size=2, hidden=(4,), knn_k=2)
    x = torch.rand(6, 5)
    S = torch.eye(6)
    torch.manual_seed(3)
    a = model.loss(x, similarity=S)["similarity"]
    p = model.gate_probabilities(model.encode(x))
    assert float(a.detach()) == pytest.approx(float(similarity_loss(p, S).detach()), rel=1e-6)


def test_conv_architecture_shapes():
    torch.manual_seed(0)
    model = MoESimVAE(n_input=784, n_experts=2, code_size=4, architecture="conv", knn_k=3,
                      gate_depth=1, gate_width=8)
    x = torch.rand(6, 784)
    terms = model.loss(x)
    assert torch.isfinite(terms["loss"])
    assert model.reconstruct(x.numpy()).shape == (6, 784)


def test_training_lowers_loss_and_separates_toy_clusters():
    from mnistnd.moe import train_moe

    X, y = _toy(n_per=100, n_clusters=3)
    model, history = train_moe(
        X, None, n_experts=4, code_size=3, epochs=40, batch_size=60, lr=3e-3, knn_k=10,
        seed=0, device="cpu", hidden=(16,), gate_depth=2, gate_width=32, gate_dropout=0.1,
        progress=False, num_threads=1,
    )
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    pred = model.predict(X)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(y, pred) > 0.9
    # generation decodes from the stored centres of Eq. 6
    images, comp, gated = model.generate(5, seed=0)
    assert images.shape == (5 * len(np.unique(pred)), X.shape[1])
    assert images.min() >= 0 and images.max() <= 1


@pytest.mark.parametrize("seed", [0, 1])
def test_three_separated_clusters_use_exactly_three_of_eight_experts(seed):
    # paper 002, SI B.1 in miniature: a block-diagonal similarity (connected components of the
    # distance-threshold graph) leaves the unneeded experts unused
    from mnistnd.moe import experts_used, train_moe

    X, y = _toy(n_per=100, n_clusters=3, seed=seed)
    model, _ = train_moe(
        X, None, n_experts=8, code_size=3, epochs=60, batch_size=150, lr=3e-3, knn_k=5,
        seed=seed, device="cpu", hidden=(16,), gate_depth=2, gate_width=32, gate_dropout=0.5,
        similarity_mode="components", similarity_threshold=0.5, mixture_weight=0.0,
        depict_weight=0.0, val_fraction=0.0, progress=False, num_threads=1,
    )
    pred = model.predict(X)
    assert experts_used(pred, 8) == 3
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(y, pred) > 0.99


def test_knn_similarity_in_large_batches_spreads_clusters_over_experts():
    # the same data and budget with the kNN matrix (k = 5, 50 samples of each cluster per batch)
    from mnistnd.moe import experts_used, train_moe

    X, _ = _toy(n_per=100, n_clusters=3, seed=0)
    model, _ = train_moe(
        X, None, n_experts=8, code_size=3, epochs=60, batch_size=150, lr=3e-3, knn_k=5,
        seed=0, device="cpu", hidden=(16,), gate_depth=2, gate_width=32, gate_dropout=0.5,
        similarity_mode="knn", mixture_weight=0.0, depict_weight=0.0, val_fraction=0.0,
        progress=False, num_threads=1,
    )
    assert experts_used(model.predict(X), 8) > 3
