"""The three autoencoders of the PBMC3k report (paper 004): deep AE, β-VAE and β-VSC.

All three share the report's widths, ``n_input -> 128 -> 32 -> 16 -> n_latent`` with ReLU and
a mirrored decoder ``n_latent -> 16 -> 32 -> 128 -> n_input`` with a linear output, and the
report's reconstruction term: the squared error summed over genes (its ``MSELoss(reduction=
"sum")``), here averaged over the cells of a batch as the model protocol asks.

* :class:`Autoencoder` -- deterministic code; loss = reconstruction.
* :class:`BetaVAE` -- Gaussian encoder (mean and log-variance heads, each ``32 -> 16 ->
  n_latent`` as in the report's equations); loss = reconstruction + β KL(q(z|x) || N(0, I)),
  β = 2.
* :class:`BetaVSC` -- variational sparse coding (Tonolini, Sand Jensen & Murray-Smith 2019): a
  third head gives the log spike probability ``log γ <= 0``; a sample is
  ``z = sigmoid(c (η + γ - 1)) ⊙ (μ + σ ε)`` with ``η ~ U(0, 1)``, ``ε ~ N(0, I)``, ``c = 50``;
  loss = reconstruction + β KL of the spike-and-slab posterior against the prior with spike
  probability α = 0.5 (:func:`vsc_kl`). The report's code forgot to pass β to this loss, so its
  "β-VSC" trained with β = 1; here β is applied.

Models follow the compendium's protocol (``loss(x) -> dict`` with ``"loss"``, ``encode(x)``)
and are trained by :func:`mnistnd.training.fit`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_float, check_int
from ._blocks import kl_standard_normal, mlp

__all__ = ["Autoencoder", "BetaVAE", "BetaVSC", "vsc_kl", "squared_error"]

#: Hidden widths of the report's encoder (the decoder mirrors them).
HIDDEN = (128, 32, 16)
#: Spike probabilities are clamped to [SPIKE_EPS, 1 - SPIKE_EPS] inside logarithms.
SPIKE_EPS = 1e-6


def _check_common(n_input, n_latent, hidden) -> tuple[int, int, tuple[int, ...]]:
    n_input = check_int("n_input", n_input, minimum=1)
    n_latent = check_int("n_latent", n_latent, minimum=1)
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence) or len(hidden) < 2:
        raise ValueError(f"hidden must be a sequence of at least two widths, got {hidden!r}")
    hidden = tuple(check_int(f"hidden[{i}]", h, minimum=1) for i, h in enumerate(hidden))
    return n_input, n_latent, hidden


def squared_error(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Squared reconstruction error summed over features, one value per sample."""
    return torch.sum((x_hat - x) ** 2, dim=-1)


def vsc_kl(mu: torch.Tensor, logvar: torch.Tensor, spike: torch.Tensor,
           alpha: float = 0.5) -> torch.Tensor:
    """KL divergence of the VSC spike-and-slab posterior from its prior, summed per sample.

    Posterior per latent dimension: with probability ``γ`` (``spike``) a slab
    ``N(μ, σ²)``, else a spike at 0; prior: slab ``N(0, 1)`` with probability ``α``. Following
    Tonolini et al. (2019, eq. 9) the divergence is

    ``-½ γ (1 + log σ² - μ² - σ²) + γ log(γ / α) + (1 - γ) log((1 - γ) / (1 - α))``

    summed over dimensions: the Gaussian KL weighted by the slab probability plus the KL of the
    two Bernoulli selection variables.

    Parameters
    ----------
    mu, logvar
        Slab mean and log-variance, shape ``(..., n_latent)``.
    spike
        Slab (non-zero) probability γ in (0, 1), same shape; clamped to
        ``[1e-6, 1 - 1e-6]`` inside the logarithms.
    alpha
        Prior slab probability, in (0, 1).

    Returns
    -------
    torch.Tensor
        One value per sample, shape ``(...)``.
    """
    alpha = check_float("alpha", alpha, minimum=0.0, maximum=1.0, open_low=True, open_high=True)
    g = torch.clamp(spike, SPIKE_EPS, 1.0 - SPIKE_EPS)
    slab = -0.5 * g * (1.0 + logvar - mu**2 - torch.exp(logvar))
    select = g * torch.log(g / alpha) + (1.0 - g) * torch.log((1.0 - g) / (1.0 - alpha))
    return torch.sum(slab + select, dim=-1)


class Autoencoder(nn.Module):
    """Deep autoencoder ``n_input -> 128 -> 32 -> 16 -> n_latent`` with a mirrored decoder.

    Parameters
    ----------
    n_input
        Number of genes (13,714 for PBMC3k).
    n_latent
        Code size (>= 1; the report used 6).
    hidden
        Encoder widths; the decoder mirrors them.

    Notes
    -----
    ReLU after every hidden layer, the first included: the report's equations leave the first
    layer linear (as do its autoencoder and beta-VAE code, while its VSC code applies a ReLU
    there), and a linear first layer followed by a linear second one is a single affine map. The
    code and the reconstruction are linear, as in the report's code.
    """

    def __init__(self, n_input: int, n_latent: int = 6, hidden: Sequence[int] = HIDDEN):
        super().__init__()
        n_input, n_latent, hidden = _check_common(n_input, n_latent, hidden)
        self.n_input, self.n_latent, self.hidden = n_input, n_latent, hidden
        self.encoder = mlp([n_input, *hidden, n_latent], activation="relu")
        self.decoder = mlp([n_latent, *reversed(hidden), n_input], activation="relu")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Return the code of ``x`` (deterministic)."""
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction of ``x``."""
        return self.decoder(self.encoder(x))

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"loss", "recon"}``: squared error summed over genes, mean over cells."""
        recon = squared_error(self.forward(x), x).mean()
        return {"loss": recon, "recon": recon}


class BetaVAE(nn.Module):
    """β-VAE with the report's widths: Gaussian encoder, MSE reconstruction + β KL.

    Parameters
    ----------
    n_input
        Number of genes.
    n_latent
        Latent size (>= 1; the report used 6).
    beta
        Weight of the KL term (>= 0; the report used 2).
    hidden
        Widths: a shared trunk ``n_input -> hidden[0] -> ... -> hidden[-2]`` and, per head
        (mean, log-variance), ``hidden[-2] -> hidden[-1] -> n_latent``, as in the report's
        equations (separate 16-wide layers ``h31``, ``h32``).
    """

    n_heads = 2

    def __init__(self, n_input: int, n_latent: int = 6, beta: float = 2.0,
                 hidden: Sequence[int] = HIDDEN):
        super().__init__()
        n_input, n_latent, hidden = _check_common(n_input, n_latent, hidden)
        self.beta = check_float("beta", beta, minimum=0.0)
        self.n_input, self.n_latent, self.hidden = n_input, n_latent, hidden
        self.trunk = mlp([n_input, *hidden[:-1]], activation="relu", output_activation="relu")
        self.mu_head = mlp([hidden[-2], hidden[-1], n_latent], activation="relu")
        self.logvar_head = mlp([hidden[-2], hidden[-1], n_latent], activation="relu")
        self.decoder = mlp([n_latent, *reversed(hidden), n_input], activation="relu")

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | x)."""
        h = self.trunk(x)
        return self.mu_head(h), self.logvar_head(h)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior mean (deterministic embedding)."""
        return self.posterior(x)[0]

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"loss", "recon", "kl"}``; loss = recon + β kl (batch means)."""
        mu, logvar = self.posterior(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        recon = squared_error(self.decoder(z), x).mean()
        kl = kl_standard_normal(mu, logvar).mean()
        return {"loss": recon + self.beta * kl, "recon": recon, "kl": kl}


class BetaVSC(BetaVAE):
    """β-VSC: variational sparse coding (Tonolini et al. 2019) with a β-weighted KL.

    Parameters
    ----------
    n_input, n_latent, hidden
        As :class:`BetaVAE`; a third head (``hidden[-2] -> hidden[-1] -> n_latent``) gives the
        log spike (slab) probability, kept <= 0 by ``-relu(-h)``.
    beta
        Weight of the KL term (>= 0). The report meant 2 but its code passed 1.
    alpha
        Prior slab probability (0.5 in the report).
    c
        Steepness of the sigmoid that relaxes the Bernoulli selection (50, as Tonolini et al.).
    """

    n_heads = 3

    def __init__(self, n_input: int, n_latent: int = 6, beta: float = 2.0, alpha: float = 0.5,
                 c: float = 50.0, hidden: Sequence[int] = HIDDEN):
        super().__init__(n_input, n_latent, beta=beta, hidden=hidden)
        self.alpha = check_float("alpha", alpha, minimum=0.0, maximum=1.0, open_low=True,
                                 open_high=True)
        self.c = check_float("c", c, minimum=0.0, open_low=True)
        self.spike_head = mlp([self.hidden[-2], self.hidden[-1], self.n_latent],
                              activation="relu")

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Slab mean, slab log-variance and spike probability γ of q(z | x)."""
        h = self.trunk(x)
        log_spike = -F.relu(-self.spike_head(h))
        return self.mu_head(h), self.logvar_head(h), torch.exp(log_spike)

    def sample(self, x: torch.Tensor) -> torch.Tensor:
        """One relaxed spike-and-slab sample ``sigmoid(c (η + γ - 1)) ⊙ (μ + σ ε)``."""
        mu, logvar, spike = self.posterior(x)
        return self._sample(mu, logvar, spike)

    def _sample(self, mu, logvar, spike):
        slab = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        eta = torch.rand_like(mu)
        return torch.sigmoid(self.c * (eta + spike - 1.0)) * slab

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior mean ``γ ⊙ μ`` (the selection is on with probability γ)."""
        mu, _, spike = self.posterior(x)
        return spike * mu

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"loss", "recon", "kl"}``; loss = recon + β kl, kl from :func:`vsc_kl`."""
        mu, logvar, spike = self.posterior(x)
        recon = squared_error(self.decoder(self._sample(mu, logvar, spike)), x).mean()
        kl = vsc_kl(mu, logvar, spike, self.alpha).mean()
        return {"loss": recon + self.beta * kl, "recon": recon, "kl": kl}
