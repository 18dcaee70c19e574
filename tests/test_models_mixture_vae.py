"""Tests of the m-VAE and the shared blocks it uses (hand-computed cases)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mnistnd.models import MixtureVAE
from mnistnd.models import _blocks as B
from mnistnd.models.mixture_vae import default_beta


def test_lazy_exports():
    import mnistnd.models as models

    assert models.MixtureVAE is MixtureVAE
    assert "MoESimVAE" in dir(models)
    with pytest.raises(AttributeError):
        models.NoSuchModel  # noqa: B018


def test_log_normal_and_kl_hand_computed():
    x = torch.tensor([[1.0, 0.0]])
    # log N(1|0,1) + log N(0|0,4) = -0.5(log 2pi + 1) - 0.5(log 2pi + log 4)
    expected = -0.5 * (math.log(2 * math.pi) + 1) - 0.5 * (math.log(2 * math.pi) + math.log(4))
    got = B.log_normal(x, torch.zeros(1, 2), torch.tensor([[1.0, 4.0]]))
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # KL(N(0,1) || N(1,2)) = 0.5 (log 2 + (1 + 1)/2 - 1) = 0.5 log 2
    kl = B.kl_normal(torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1, 1), 2 * torch.ones(1, 1))
    assert kl.item() == pytest.approx(0.5 * math.log(2), rel=1e-6)
    assert B.kl_standard_normal(torch.zeros(1, 3), torch.zeros(1, 3)).item() == 0.0


def test_kl_to_uniform():
    assert B.kl_categorical_uniform(torch.zeros(1, 10)).item() == pytest.approx(0.0, abs=1e-6)
    # q = (3/4, 1/4): 3/4 log 3/4 + 1/4 log 1/4 + log 2
    q = B.kl_categorical_uniform(torch.tensor([[math.log(3.0), 0.0]])).item()
    assert q == pytest.approx(0.75 * math.log(0.75) + 0.25 * math.log(0.25) + math.log(2), 1e-6)
    # a near one-hot q costs log K
    assert B.kl_categorical_uniform(torch.tensor([[50.0, 0, 0, 0]])).item() == pytest.approx(
        math.log(4), rel=1e-5
    )


def test_bernoulli_nll_equals_bce_on_sigmoid():
    logits = torch.tensor([[0.0, 2.0, -1.0]])
    x = torch.tensor([[1.0, 0.0, 0.5]])
    p = torch.sigmoid(logits)
    expected = -(x * torch.log(p) + (1 - x) * torch.log(1 - p)).sum()
    assert B.bernoulli_nll(logits, x).item() == pytest.approx(expected.item(), rel=1e-6)


def test_temperature_schedule():
    assert B.temperature_schedule(0) == 1.0
    assert B.temperature_schedule(25) == pytest.approx(2 ** -0.5)
    assert B.temperature_schedule(50) == pytest.approx(0.5)
    assert B.temperature_schedule(80) == 0.5
    model = MixtureVAE(2, n_input=4, n_hidden=3)
    model.on_epoch_start(10)
    assert model.temperature == pytest.approx(math.exp(-math.log(2) / 5))


def test_gumbel_softmax_samples():
    torch.manual_seed(0)
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1]])).repeat(20000, 1)
    hard = B.gumbel_softmax(logits, 0.5, hard=True)
    assert torch.all(hard.sum(-1) == 1) and set(hard.unique().tolist()) == {0.0, 1.0}
    # argmax of logits + Gumbel noise is an exact sample of the categorical
    np.testing.assert_allclose(hard.mean(0).numpy(), [0.7, 0.2, 0.1], atol=0.015)
    soft = B.gumbel_softmax(logits, 1.0)
    assert torch.allclose(soft.sum(-1), torch.ones(20000)) and (soft > 0).all()
    with pytest.raises(ValueError, match="temperature"):
        B.gumbel_softmax(logits, 0.0)


def test_beta_and_parameter_count():
    assert default_beta(2) == 4.0 and default_beta(64) == 0.125
    assert MixtureVAE(16).beta == 0.5
    model = MixtureVAE(64)
    d, k, h, p = 64, 10, 512, 784
    naive = ((p * h + h) + (h * h + h) + (h * k + k)  # q(y|x)
             + ((p + k) * h + h) + (h * h + h) + 2 * (h * d + d)  # q(z|x,y)
             + 2 * (k * d + d)  # p(z|y)
             + (d * h + h) + (h * h + h) + (h * p + p))  # p(x|z)
    assert model.n_parameters() == naive
    assert sum(r["parameters"] for r in model.architecture()) == naive


def test_xavier_init_statistics():
    torch.manual_seed(0)
    model = MixtureVAE(8)
    w = model.x_in.weight
    assert w[:512].std().item() == pytest.approx(math.sqrt(2 / (784 + 512)), rel=0.02)
    assert w[512:].std().item() == pytest.approx(math.sqrt(2 / (794 + 512)), rel=0.02)
    assert all(torch.count_nonzero(m.bias) == 0 for m in model.modules()
               if isinstance(m, torch.nn.Linear) and m.bias is not None)


def _constant_model(q_var=1.0, p_mean=0.0, p_var=1.0):
    """A model whose every output is its bias (all weights zero)."""
    model = MixtureVAE(n_latent=1, n_input=3, n_components=2, n_hidden=2)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.zero_()
                if m.bias is not None:
                    m.bias.zero_()
        inv_softplus = lambda v: math.log(math.expm1(v - B.VARIANCE_EPS))  # noqa: E731
        model.qy_body[-1].bias.copy_(torch.tensor([math.log(3.0), 0.0]))
        model.qz_out.bias.copy_(torch.tensor([0.0, inv_softplus(q_var)]))
        model.prior.bias.copy_(torch.tensor([p_mean, inv_softplus(p_var)]))
        model.decoder[-1].bias.copy_(torch.tensor([0.0, 2.0, -1.0]))
    return model


def test_loss_terms_hand_computed():
    model = _constant_model()
    x = torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, 1.0]])
    terms = model.loss(x)
    s = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    probs = [s(0.0), s(2.0), s(-1.0)]

    def bce(row):
        return -sum(t * math.log(p) + (1 - t) * math.log(1 - p) for t, p in zip(row, probs,
                                                                               strict=True))

    rec = (bce([1.0, 0.0, 0.5]) + bce([0.0, 1.0, 1.0])) / 2
    cat = 0.75 * math.log(0.75) + 0.25 * math.log(0.25) + math.log(2)
    assert terms["reconstruction"].item() == pytest.approx(rec, rel=1e-6)
    assert terms["categorical"].item() == pytest.approx(cat, rel=1e-5)
    # q(z|x,y) equals p(z|y): the log-ratio is zero for every sample z
    assert terms["gaussian"].item() == pytest.approx(0.0, abs=1e-6)
    assert terms["loss"].item() == pytest.approx(rec + cat, rel=1e-6)
    assert set(terms) == {"loss", "reconstruction", "gaussian", "kl", "categorical"}


def test_gaussian_term_is_an_unbiased_kl_estimate_weighted_by_beta():
    torch.manual_seed(1)
    model = _constant_model(q_var=0.5, p_mean=1.0, p_var=2.0)
    terms = model.loss(torch.zeros(40000, 3))
    closed = B.kl_normal(torch.zeros(1, 1), torch.full((1, 1), 0.5), torch.ones(1, 1),
                         torch.full((1, 1), 2.0)).item()
    assert terms["gaussian"].item() == pytest.approx(closed, abs=0.02)
    assert terms["kl"].item() == pytest.approx(8.0 * terms["gaussian"].item(), rel=1e-6)


def test_encode_is_deterministic_mean_at_most_probable_component():
    torch.manual_seed(0)
    model = MixtureVAE(3, n_input=6, n_components=4, n_hidden=5)
    x = torch.rand(7, 6)
    z1, z2 = model.encode(x), model.encode(x)
    assert z1.shape == (7, 3) and torch.equal(z1, z2)
    y = torch.nn.functional.one_hot(model.component_probabilities(x).argmax(-1), 4).float()
    _, hz_x = model._encode_x(x)
    torch.testing.assert_close(z1, model._qz(hz_x, y)[0])
    rec = model.reconstruct(x)
    assert rec.shape == (7, 6) and torch.all((rec > 0) & (rec < 1))


def test_gumbel_encoding_is_random_and_tends_to_encode_at_low_temperature():
    torch.manual_seed(0)
    model = MixtureVAE(3, n_input=6, n_components=4, n_hidden=5)
    with torch.no_grad():
        model.qy_body[-1].bias.copy_(torch.tensor([8.0, 0.0, 0.0, 0.0]))  # confident q(y|x)
    x = torch.rand(7, 6)
    a, b = model.encode_gumbel(x, 1.0), model.encode_gumbel(x, 1.0)
    assert not torch.equal(a, b)
    torch.testing.assert_close(model.encode_gumbel(x, 1e-3), model.encode(x), rtol=0, atol=1e-4)


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"n_latent": 0}, ValueError), ({"n_latent": 2.5}, TypeError),
    ({"n_latent": 2, "beta": -1.0}, ValueError), ({"n_latent": 2, "n_components": 1}, ValueError),
    ({"n_latent": 2, "activation": "nope"}, ValueError),
])
def test_bad_model_arguments(kwargs, error):
    with pytest.raises(error):
        MixtureVAE(**kwargs)
