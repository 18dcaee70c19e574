"""Tests of the PBMC autoencoders: loss terms by hand, training lowers the loss, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mnistnd.models import Autoencoder, BetaVAE, BetaVSC
from mnistnd.models.autoencoders import squared_error, vsc_kl
from mnistnd.training import fit


def synthetic_counts(n_cells=300, n_genes=60, n_types=3, seed=0):
    """Poisson counts with cell-type-specific gene programmes, log1p'd and scaled."""
    rng = np.random.default_rng(seed)
    types = rng.integers(0, n_types, n_cells)
    rates = rng.gamma(0.5, 2.0, size=(n_types, n_genes))
    counts = rng.poisson(rates[types] * rng.uniform(0.5, 1.5, size=(n_cells, 1)))
    x = np.log1p(counts)
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    return x.astype(np.float32), types


def test_vsc_kl_matches_hand_calculation():
    mu, logvar, gamma, alpha = 0.7, -0.4, 0.3, 0.5
    slab = -0.5 * gamma * (1 + logvar - mu**2 - math.exp(logvar))
    select = gamma * math.log(gamma / alpha) + (1 - gamma) * math.log((1 - gamma) / (1 - alpha))
    second = (-1.2, 0.5, 0.9)  # another latent dimension, summed in
    slab2 = -0.5 * second[2] * (1 + second[1] - second[0] ** 2 - math.exp(second[1]))
    select2 = second[2] * math.log(second[2] / alpha) + (1 - second[2]) * math.log(
        (1 - second[2]) / (1 - alpha))
    expected = slab + select + slab2 + select2
    got = vsc_kl(torch.tensor([[mu, second[0]]]), torch.tensor([[logvar, second[1]]]),
                 torch.tensor([[gamma, second[2]]]), alpha)
    assert got.shape == (1,)
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_vsc_kl_limits():
    mu = torch.tensor([[0.3, -1.0]])
    logvar = torch.tensor([[0.2, -0.5]])
    # posterior equal to the prior: no divergence
    assert vsc_kl(torch.zeros(1, 2), torch.zeros(1, 2), torch.full((1, 2), 0.2), 0.2).item() == (
        pytest.approx(0.0, abs=1e-6))
    # slab always on: Gaussian KL plus the cost log(1/alpha) of switching the slab on
    gauss = 0.5 * torch.sum(logvar.exp() + mu**2 - 1 - logvar).item()
    got = vsc_kl(mu, logvar, torch.ones(1, 2), 0.5).item()
    assert got == pytest.approx(gauss + 2 * math.log(2), rel=1e-4)
    # slab always off: only the Bernoulli part, log(1/(1-alpha)) per dimension
    assert vsc_kl(mu, logvar, torch.zeros(1, 2), 0.25).item() == pytest.approx(
        2 * math.log(1 / 0.75), rel=1e-4)


def test_vsc_kl_refuses_bad_alpha():
    with pytest.raises(ValueError, match="alpha"):
        vsc_kl(torch.zeros(1, 1), torch.zeros(1, 1), torch.full((1, 1), 0.5), 1.0)


def test_architecture_widths():
    ae = Autoencoder(100, 6)
    widths = [m.out_features for m in ae.encoder if isinstance(m, torch.nn.Linear)]
    assert widths == [128, 32, 16, 6]
    widths = [m.out_features for m in ae.decoder if isinstance(m, torch.nn.Linear)]
    assert widths == [16, 32, 128, 100]
    vsc = BetaVSC(100, 6)
    x = torch.randn(5, 100)
    mu, logvar, spike = vsc.posterior(x)
    assert mu.shape == logvar.shape == spike.shape == (5, 6)
    assert torch.all((spike > 0) & (spike <= 1))
    assert vsc.encode(x).shape == (5, 6)
    assert BetaVAE(100, 3).encode(x).shape == (5, 3)


@pytest.mark.parametrize("cls", [BetaVAE, BetaVSC])
def test_loss_applies_beta(cls):
    torch.manual_seed(0)
    x = torch.randn(16, 40)
    model = cls(40, 4, beta=2.0)
    torch.manual_seed(1)
    terms = model.loss(x)
    assert set(terms) == {"loss", "recon", "kl"}
    assert terms["loss"].item() == pytest.approx(terms["recon"].item() + 2.0 * terms["kl"].item(),
                                                 rel=1e-5)
    model.beta = 0.0
    torch.manual_seed(1)
    assert model.loss(x)["loss"].item() == pytest.approx(terms["recon"].item(), rel=1e-5)


def test_autoencoder_loss_is_summed_squared_error():
    torch.manual_seed(0)
    model = Autoencoder(30, 2)
    x = torch.randn(8, 30)
    expected = ((model(x) - x) ** 2).sum(dim=1).mean()
    assert model.loss(x)["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert squared_error(torch.ones(2, 3), torch.zeros(2, 3)).tolist() == [3.0, 3.0]


def test_vsc_sample_is_sparse_where_spike_is_small():
    torch.manual_seed(0)
    model = BetaVSC(20, 4)
    mu = torch.ones(1000, 4)
    logvar = torch.full((1000, 4), -10.0)
    spike = torch.tensor([0.02, 0.5, 0.98, 0.3]).expand(1000, 4)
    z = model._sample(mu, logvar, spike)
    on = (z.abs() > 0.5).float().mean(dim=0)
    # the selection is on with probability gamma (sigmoid with c=50 is nearly a step)
    assert torch.allclose(on, torch.tensor([0.02, 0.5, 0.98, 0.3]), atol=0.05)


@pytest.mark.parametrize(
    "cls,kwargs", [(Autoencoder, {}), (BetaVAE, {"beta": 2.0}), (BetaVSC, {"beta": 2.0})]
)
def test_training_lowers_loss_on_synthetic_counts(cls, kwargs):
    x, _ = synthetic_counts()
    torch.manual_seed(0)
    model = cls(x.shape[1], 4, **kwargs)

    def total(m):
        m.eval()
        torch.manual_seed(123)  # same noise before and after for the variational models
        with torch.no_grad():
            return m.loss(torch.from_numpy(x))["loss"].item()

    before = total(model)
    history = fit(model, x, epochs=25, batch_size=32, lr=1e-3, seed=0, device="cpu",
                  val_fraction=0.0, patience=None, progress=False, restore_best=False,
                  num_threads=1)
    after = total(model)
    assert len(history) == 25
    assert after < 0.8 * before, (before, after)


def test_gradients_reach_every_head():
    torch.manual_seed(0)
    model = BetaVSC(10, 3)
    model.loss(torch.randn(32, 10))["loss"].backward()
    for name in ("mu_head", "logvar_head", "spike_head", "trunk", "decoder"):
        grads = [p.grad for p in getattr(model, name).parameters()]
        assert all(g is not None for g in grads), name
        assert sum(float(g.abs().sum()) for g in grads) > 0, name


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: Autoencoder(10, 0), "n_latent"),
        (lambda: BetaVAE(10, 0), "n_latent"),
        (lambda: BetaVAE(10, 2, beta=-1.0), "beta"),
        (lambda: BetaVSC(10, 2, beta=-0.5), "beta"),
        (lambda: BetaVSC(10, 2, alpha=0.0), "alpha"),
        (lambda: Autoencoder(0, 2), "n_input"),
        (lambda: Autoencoder(10, 2, hidden=(8,)), "hidden"),
    ],
)
def test_bad_parameters_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()
