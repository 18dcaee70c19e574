"""Tests of VaDE (Jiang et al. 2017): ELBO terms by hand, GMM prior init, clustering end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture

import mnistnd.models.vade as vade_module
from mnistnd.models import VaDE
from mnistnd.training import fit


def _relu(a):
    return np.maximum(a, 0.0)


def _log_normal(z, mean, var):
    return -0.5 * np.sum(np.log(2 * np.pi) + np.log(var) + (z - mean) ** 2 / var, axis=-1)


def _elbo_terms_numpy(model, x, eps):
    """The VaDE ELBO terms recomputed from the paper's formulas with the model's weights."""
    W = {k: v.detach().numpy().astype(np.float64) for k, v in model.state_dict().items()}
    h = _relu(x @ W["encoder.0.weight"].T + W["encoder.0.bias"])
    m = h @ W["mean_head.weight"].T + W["mean_head.bias"]
    log_s2 = h @ W["log_var_head.weight"].T + W["log_var_head.bias"]
    s2 = np.exp(log_s2)
    z = m + np.sqrt(s2) * eps
    hd = _relu(z @ W["decoder.0.weight"].T + W["decoder.0.bias"])
    p = 1 / (1 + np.exp(-(hd @ W["decoder.2.weight"].T + W["decoder.2.bias"])))
    rec = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)
    logits = W["prior_logits"]
    pi = np.exp(logits) / np.exp(logits).sum()
    mu_c, sigma2_c = W["prior_means"], np.exp(W["prior_log_var"])
    K = len(pi)
    joint = np.stack([pi[c] * np.exp(_log_normal(z, mu_c[c], sigma2_c[c])) for c in range(K)], 1)
    gamma = joint / joint.sum(1, keepdims=True)
    # the paper's SGVB estimator of L_ELBO as printed (its constants cancel), sign flipped to a loss
    gaussian = sum(
        gamma[:, c] * 0.5 * np.sum(np.log(sigma2_c[c]) + s2 / sigma2_c[c]
                                   + (m - mu_c[c]) ** 2 / sigma2_c[c], axis=1)
        for c in range(K)
    ) - 0.5 * np.sum(1 + log_s2, axis=1)
    categorical = np.sum(gamma * np.log(gamma / pi), axis=1)
    return rec.mean(), gaussian.mean(), categorical.mean()


def test_elbo_terms_hand_computed(monkeypatch):
    torch.manual_seed(0)
    model = VaDE(n_input=4, n_latent=2, n_clusters=2, hidden=(3,)).double()
    with torch.no_grad():
        model.prior_logits.copy_(torch.tensor([0.3, -0.2]))
        model.prior_means.copy_(torch.tensor([[0.5, -0.4], [-0.6, 0.2]]))
        model.prior_log_var.copy_(torch.log(torch.tensor([[0.8, 1.5], [1.2, 0.6]])))
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(5, 4))
    x[0] = [0.0, 1.0, 1.0, 0.0]  # binary pixels too
    eps = rng.standard_normal((5, 2))
    calls = []

    def fixed_sample(mean, var):
        calls.append(1)
        return mean + torch.sqrt(var) * torch.as_tensor(eps)

    monkeypatch.setattr(vade_module, "reparameterize", fixed_sample)
    terms = model.loss(torch.as_tensor(x))
    assert len(calls) == 1
    assert set(terms) == {"loss", "reconstruction", "gaussian", "categorical"}
    assert all(t.ndim == 0 for t in terms.values())
    rec, gaussian, categorical = _elbo_terms_numpy(model, x, eps)
    assert terms["reconstruction"].item() == pytest.approx(rec, abs=1e-6)
    assert terms["gaussian"].item() == pytest.approx(gaussian, abs=1e-6)
    assert terms["categorical"].item() == pytest.approx(categorical, abs=1e-6)
    assert terms["loss"].item() == pytest.approx(rec + gaussian + categorical, abs=1e-6)
    # the responsibilities are not degenerate, so both mixture terms are exercised
    assert categorical > 1e-3


def test_prior_initialised_from_gmm_of_codes():
    rng = np.random.default_rng(1)
    Z = np.concatenate([rng.normal([-3.0, 2.0], [0.5, 0.3], (150, 2)),
                        rng.normal([3.0, -1.0], [0.4, 0.7], (100, 2))])
    model = VaDE(n_input=6, n_latent=2, n_clusters=2, hidden=(4,), random_state=7)
    gmm = model.init_prior_from_codes(Z)
    ref = GaussianMixture(n_components=2, covariance_type="diag", random_state=7).fit(Z)
    weights, means, variances = (t.detach().numpy() for t in model.prior_params())
    np.testing.assert_allclose(means, ref.means_, atol=1e-6)
    np.testing.assert_allclose(weights, ref.weights_, atol=1e-6)
    np.testing.assert_allclose(variances, ref.covariances_, rtol=1e-5)
    np.testing.assert_allclose(gmm.means_, ref.means_)
    assert weights.sum() == pytest.approx(1.0, abs=1e-6) and np.all(variances > 0)
    assert sorted(np.round(means[:, 0]).tolist()) == [-3.0, 3.0]
    with pytest.raises(ValueError, match="n_latent"):
        model.init_prior_from_codes(np.zeros((10, 3)))


def _patterns(n=300, n_features=48, n_groups=3, flip=0.08, seed=0):
    """Noisy copies of ``n_groups`` random binary patterns (pixels flipped with prob. ``flip``)."""
    rng = np.random.default_rng(seed)
    prototypes = rng.integers(0, 2, size=(n_groups, n_features))
    y = rng.integers(0, n_groups, size=n)
    flips = rng.uniform(size=(n, n_features)) < flip
    return np.where(flips, 1 - prototypes[y], prototypes[y]).astype(np.float32), y


def test_pretrain_then_fit_clusters_noisy_patterns():
    X, y = _patterns()
    torch.manual_seed(0)
    model = VaDE(n_input=X.shape[1], n_latent=2, n_clusters=3, hidden=(32,), random_state=0)
    options = dict(batch_size=32, lr=2e-3, device="cpu", progress=False, val_fraction=0.0,
                   patience=None, num_threads=1)
    pre = model.pretrain(X, epochs=15, seed=0, **options)
    assert pre["train_reconstruction"].iloc[-1] < pre["train_reconstruction"].iloc[0]
    assert model.prior_params()[0].sum().item() == pytest.approx(1.0, abs=1e-6)
    history = fit(model, X, epochs=8, seed=1, **options)
    losses = history["train_loss"].to_numpy()
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    for term in ("reconstruction", "gaussian", "categorical"):
        assert np.all(np.isfinite(history[f"train_{term}"]))
    labels = model.predict(X)
    assert adjusted_rand_score(y, labels) > 0.9
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(proba.argmax(1), labels)
    assert model.transform(X).shape == (len(X), 2)
    # generation with the authors' posterior threshold keeps draws that the model assigns back
    images = model.generate(20, int(labels[0]), threshold=0.999, seed=3)
    assert images.shape == (20, X.shape[1])


def test_generate_shape_range_and_rejection():
    torch.manual_seed(0)
    model = VaDE(n_input=5, n_latent=3, n_clusters=2, hidden=(4, 6))
    images = model.generate(7, 1, seed=0)
    assert images.shape == (7, 5) and np.all((images >= 0) & (images <= 1))
    np.testing.assert_array_equal(images, model.generate(7, 1, seed=0))
    # identical components: p(c | z) = 1/2 everywhere, so no draw passes a 0.9 threshold
    with pytest.raises(RuntimeError, match="threshold"):
        model.generate(3, 0, threshold=0.9, max_draws=50)
    with pytest.raises(ValueError, match="cluster"):
        model.generate(3, 2)


def test_deterministic_readouts():
    torch.manual_seed(0)
    model = VaDE(n_input=6, n_latent=2, n_clusters=3, hidden=(5,))
    x = torch.rand(4, 6)
    torch.testing.assert_close(model.encode(x), model.encode(x))
    assert model.encode(x).shape == (4, 2)
    probs = model.cluster_probabilities(x)
    # the initial prior has identical components: uniform responsibilities
    torch.testing.assert_close(probs, torch.full((4, 3), 1 / 3))
    rec = model.reconstruct(x)
    assert rec.shape == (4, 6) and torch.all((rec > 0) & (rec < 1))
    with pytest.raises(ValueError, match="n_samples, 6"):
        model.loss(torch.rand(4, 5))


def test_paper_defaults():
    model = VaDE()
    assert (model.n_input, model.n_latent, model.n_clusters) == (784, 10, 10)
    assert model.hidden == (500, 500, 2000)
    assert model.prior_means.shape == (10, 10)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"n_clusters": 1}, ValueError, "n_clusters must be >= 2"),
    ({"n_latent": 0}, ValueError, "n_latent"),
    ({"n_latent": 2.5}, TypeError, "n_latent"),
    ({"n_input": 0}, ValueError, "n_input"),
    ({"hidden": ()}, ValueError, "hidden"),
    ({"hidden": (4, 0)}, ValueError, "hidden"),
    ({"activation": "nope"}, ValueError, "activation"),
    ({"random_state": -1}, ValueError, "random_state"),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        VaDE(**{"n_input": 4, "hidden": (3,), **kwargs})


def test_pretrain_validates_before_training():
    model = VaDE(n_input=4, n_latent=2, n_clusters=2, hidden=(3,))
    with pytest.raises(ValueError, match="n_input=4"):
        model.pretrain(np.zeros((20, 5)), epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        model.pretrain(np.zeros((20, 4)), epochs=0)


def test_pretrain_initialises_prior_from_gmm_of_pretrained_codes():
    X, _ = _patterns(n=120, n_features=16, seed=2)
    torch.manual_seed(0)
    model = VaDE(n_input=16, n_latent=2, n_clusters=3, hidden=(8,), random_state=5)
    before = model.prior_means.detach().clone()
    model.pretrain(X, epochs=2, batch_size=40, seed=0, device="cpu", progress=False,
                   val_fraction=0.0, num_threads=1)
    codes = model.transform(X)  # the pretrained encoder's means; pretraining left them here
    ref = GaussianMixture(n_components=3, covariance_type="diag", random_state=5).fit(codes)
    weights, means, variances = (t.detach().numpy() for t in model.prior_params())
    np.testing.assert_allclose(means, ref.means_, atol=1e-5)
    np.testing.assert_allclose(weights, ref.weights_, atol=1e-5)
    np.testing.assert_allclose(variances, ref.covariances_, rtol=1e-4)
    assert not torch.equal(model.prior_means.detach(), before)


def test_sample_latent_counts_draws_to_the_last_kept_one():
    model = VaDE(n_input=3, n_latent=1, n_clusters=2, hidden=(2,))
    with torch.no_grad():
        model.prior_means.copy_(torch.tensor([[-1.0], [1.0]]))
    # equal weights and variances: p(0 | z) > 1/2 exactly when z < 0
    z, n_drawn = model.sample_latent(5, 0, threshold=0.5, seed=4)
    eps = torch.randn(256, 1, generator=torch.Generator().manual_seed(4))
    stream = -1.0 + eps[:, 0]
    passed = torch.nonzero(stream < 0).ravel()
    assert n_drawn == int(passed[4]) + 1 and n_drawn > 5
    torch.testing.assert_close(z[:, 0], stream[passed[:5]])
    all_kept, n_all = model.sample_latent(5, 0, seed=4)
    assert n_all == 5 and all_kept.shape == (5, 1)
    # a threshold no draw passes: every allowed draw is spent and nothing is kept
    none, spent = model.sample_latent(3, 0, threshold=0.999999, seed=0, max_draws=40)
    assert none.shape == (0, 1) and spent == 40
