"""The mixture VAE (m-VAE, a Gaussian-mixture VAE) that makes the MNIST-Nd datasets.

The model of Dilokthanakul et al. (2016) with a Gumbel-softmax categorical latent, as adapted by
the MNIST-Nd paper (its Fig. 1A and Appendix A):

* ``q(y|x)``: ``x -> 512 -> 512 -> K`` logits (ReLU); ``y`` is a Gumbel-softmax sample at a
  temperature annealed per epoch (:func:`~mnistnd.models._blocks.temperature_schedule`).
* ``q(z|x,y)``: ``concat(x, y) -> 512 -> 512 ->`` mean and softplus variance.
* learned prior ``p(z|y)``: mean and softplus variance, each a linear map of ``y``.
* decoder ``p(x|z)``: ``z -> 512 -> 512 -> 784``, Bernoulli (sigmoid) likelihood.

Loss (per sample, averaged over the batch)::

    loss = reconstruction + beta * gaussian + categorical
    reconstruction = BCE(x, decoder(z)) summed over pixels
    gaussian       = log q(z|x,y) - log p(z|y)      (one-sample estimate of the Gaussian KL)
    categorical    = KL(q(y|x) || uniform over K)

with ``beta = 8 / n_latent`` by default (the authors' values: 4.0 at d = 2 ... 0.125 at d = 64).

Implementation note (speed, not maths): the first layers of ``q(y|x)`` and ``q(z|x,y)`` both read
``x``, so their ``x`` weights are stacked into one ``Linear(784, 1024)`` (one GEMM instead of two)
and the ``y`` part of the ``q(z|x,y)`` layer is a separate bias-free ``Linear(K, 512)``; the sum of
the two is exactly ``Linear(784 + K, 512)`` applied to ``concat(x, y)``, with the same number of
parameters. Each block is Xavier-normal initialised with the fan-in/fan-out of the original layer.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mnistnd._checks import check_float, check_int
from mnistnd.models._blocks import (
    bernoulli_nll,
    count_parameters,
    gumbel_softmax,
    kl_categorical_uniform,
    log_normal,
    make_activation,
    positive_variance,
    reparameterize,
    temperature_schedule,
)

__all__ = ["MixtureVAE", "default_beta"]


def default_beta(n_latent: int) -> float:
    """Return the authors' KL weight for latent dimension ``n_latent``: ``8 / n_latent``."""
    return 8.0 / check_int("n_latent", n_latent, minimum=1)


def _xavier_block_(weight: torch.Tensor, fan_in: int, fan_out: int) -> None:
    """Xavier-normal init of (a view of) a weight with the fans of the layer it stands for."""
    with torch.no_grad():
        weight.normal_(0.0, math.sqrt(2.0 / (fan_in + fan_out)))


class MixtureVAE(nn.Module):
    """Gaussian-mixture VAE with a Gumbel-softmax component variable.

    Parameters
    ----------
    n_latent
        Dimension ``d`` of the continuous latent ``z`` (the MNIST-Nd dimension).
    n_input
        Number of input features (784 for MNIST), values in [0, 1].
    n_components
        Number of mixture components ``K`` (10: one per digit, though labels are never used).
    n_hidden
        Width of every hidden layer (512).
    beta
        Weight of the Gaussian KL term; ``None`` means ``8 / n_latent``.
    activation
        Hidden activation (a name from :data:`mnistnd.models._blocks.ACTIVATIONS`).
    temperature_initial, temperature_rate, temperature_floor
        Gumbel-softmax temperature at epoch ``e``: ``max(initial * exp(-rate * e), floor)``;
        defaults 1.0, ln 2 / 50, 0.5 (the reference implementation's).
    hard_gumbel
        Use the straight-through one-hot Gumbel sample during training (the reference code used
        the soft sample, the default here).

    Attributes
    ----------
    temperature : float
        Current Gumbel-softmax temperature, set by :meth:`on_epoch_start`.
    """

    def __init__(
        self,
        n_latent: int,
        n_input: int = 784,
        n_components: int = 10,
        n_hidden: int = 512,
        beta: float | None = None,
        activation: str = "relu",
        temperature_initial: float = 1.0,
        temperature_rate: float = math.log(2) / 50,
        temperature_floor: float = 0.5,
        hard_gumbel: bool = False,
    ):
        super().__init__()
        self.n_latent = check_int("n_latent", n_latent, minimum=1)
        self.n_input = check_int("n_input", n_input, minimum=1)
        self.n_components = check_int("n_components", n_components, minimum=2)
        self.n_hidden = check_int("n_hidden", n_hidden, minimum=1)
        self.beta = (default_beta(self.n_latent) if beta is None
                     else check_float("beta", beta, minimum=0.0))
        self.temperature_initial = check_float("temperature_initial", temperature_initial,
                                               minimum=0.0, open_low=True)
        self.temperature_rate = check_float("temperature_rate", temperature_rate, minimum=0.0)
        self.temperature_floor = check_float("temperature_floor", temperature_floor,
                                             minimum=0.0, open_low=True)
        self.hard_gumbel = bool(hard_gumbel)
        self.activation = activation
        self.temperature = self.temperature_initial
        d, k, h, p = self.n_latent, self.n_components, self.n_hidden, self.n_input

        # encoder: first layers of q(y|x) and q(z|x,y) share one GEMM on x (see module docs)
        self.x_in = nn.Linear(p, 2 * h)
        self.y_in = nn.Linear(k, h, bias=False)
        self.qy_body = nn.Sequential(make_activation(activation), nn.Linear(h, h),
                                     make_activation(activation), nn.Linear(h, k))
        self.qz_body = nn.Sequential(make_activation(activation), nn.Linear(h, h),
                                     make_activation(activation))
        self.qz_out = nn.Linear(h, 2 * d)  # mean | raw variance
        # learned prior p(z|y): mean | raw variance, linear in y
        self.prior = nn.Linear(k, 2 * d)
        # decoder p(x|z), outputs Bernoulli logits
        self.decoder = nn.Sequential(nn.Linear(d, h), make_activation(activation),
                                     nn.Linear(h, h), make_activation(activation),
                                     nn.Linear(h, p))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-normal weights with the original layers' fans, zero biases."""
        d, k, h, p = self.n_latent, self.n_components, self.n_hidden, self.n_input
        for layer in self.modules():
            if isinstance(layer, nn.Linear) and layer.bias is not None:
                nn.init.zeros_(layer.bias)
        _xavier_block_(self.x_in.weight[:h], p, h)  # q(y|x) layer 1: Linear(p, h)
        _xavier_block_(self.x_in.weight[h:], p + k, h)  # q(z|x,y) layer 1: Linear(p + k, h)
        _xavier_block_(self.y_in.weight, p + k, h)
        for layer in (*self.qy_body, *self.qz_body, *self.decoder):
            if isinstance(layer, nn.Linear):
                nn.init.xavier_normal_(layer.weight)
        for out in (self.qz_out, self.prior):  # two Linear(., d) stacked
            n_in = out.weight.shape[1]
            _xavier_block_(out.weight[:d], n_in, d)
            _xavier_block_(out.weight[d:], n_in, d)

    # ----------------------------------------------------------------------------------------
    def on_epoch_start(self, epoch: int) -> None:
        """Anneal the Gumbel-softmax temperature for ``epoch`` (0-based)."""
        self.temperature = temperature_schedule(
            epoch, self.temperature_initial, self.temperature_rate, self.temperature_floor
        )

    def _encode_x(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hx = self.x_in(x)
        h = self.n_hidden
        return self.qy_body(hx[:, :h]), hx[:, h:]

    def _qz(self, hz_x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.qz_out(self.qz_body(hz_x + self.y_in(y)))
        return out[:, : self.n_latent], positive_variance(out[:, self.n_latent:])

    def prior_params(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of the learned prior ``p(z|y)`` for component weights ``y``."""
        out = self.prior(y)
        return out[:, : self.n_latent], positive_variance(out[:, self.n_latent:])

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the stochastic model on ``x``; return every intermediate by name."""
        logits, hz_x = self._encode_x(x)
        y = gumbel_softmax(logits, self.temperature, hard=self.hard_gumbel)
        z_mean, z_var = self._qz(hz_x, y)
        z = reparameterize(z_mean, z_var)
        prior_mean, prior_var = self.prior_params(y)
        return {"logits": logits, "y": y, "z_mean": z_mean, "z_var": z_var, "z": z,
                "prior_mean": prior_mean, "prior_var": prior_var, "x_logits": self.decoder(z)}

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss terms (batch means) by name.

        Returns
        -------
        dict
            ``loss`` (total minimised), ``reconstruction`` (BCE summed over pixels),
            ``gaussian`` (unweighted one-sample estimate of ``KL(q(z|x,y) || p(z|y))``),
            ``kl`` (``beta * gaussian``, the Gaussian KL as it enters the total) and
            ``categorical`` (``KL(q(y|x) || uniform)``).
        """
        out = self.forward(x)
        reconstruction = bernoulli_nll(out["x_logits"], x).mean()
        gaussian = (log_normal(out["z"], out["z_mean"], out["z_var"])
                    - log_normal(out["z"], out["prior_mean"], out["prior_var"])).mean()
        categorical = kl_categorical_uniform(out["logits"]).mean()
        kl = self.beta * gaussian
        return {"loss": reconstruction + kl + categorical, "reconstruction": reconstruction,
                "gaussian": gaussian, "kl": kl, "categorical": categorical}

    # ---- deterministic read-outs ---------------------------------------------------------------
    @torch.no_grad()
    def component_probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """``q(y|x)``: component probabilities, shape ``(n, K)``."""
        return torch.softmax(self._encode_x(x)[0], dim=-1)

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic embedding: the mean of ``q(z|x,y)`` at the most probable component ``y``.

        The reference code instead fed a random soft Gumbel sample of ``y`` at evaluation, which
        made its "mean" embedding random; ours is a function of ``x`` alone.
        """
        logits, hz_x = self._encode_x(x)
        y = torch.nn.functional.one_hot(logits.argmax(dim=-1), self.n_components).to(x.dtype)
        return self._qz(hz_x, y)[0]

    @torch.no_grad()
    def encode_gumbel(self, x: torch.Tensor, temperature: float | None = None) -> torch.Tensor:
        """Embed like the reference code did at evaluation (random; kept for comparison).

        Mean of ``q(z|x,y)`` at a *soft Gumbel-softmax sample* ``y`` (temperature ``temperature``,
        default the current :attr:`temperature`), so the same image gives a different point on
        every call. :meth:`encode` is the deterministic embedding used for MNIST-Nd.
        """
        logits, hz_x = self._encode_x(x)
        y = gumbel_softmax(logits, self.temperature if temperature is None else temperature)
        return self._qz(hz_x, y)[0]

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic reconstruction: decoder mean ``sigmoid(decoder(encode(x)))``."""
        return torch.sigmoid(self.decoder(self.encode(x)))

    def n_parameters(self) -> int:
        """Return the number of trainable parameters."""
        return count_parameters(self)

    def architecture(self) -> list[dict]:
        """Layers as in the paper's Fig. 1A, with parameter counts (for the chapter's table).

        Returns
        -------
        list of dict
            One entry per logical layer: ``part``, ``layer``, ``in``, ``out``, ``parameters``.
        """
        d, k, h, p = self.n_latent, self.n_components, self.n_hidden, self.n_input

        def lin(part, name, n_in, n_out):
            return {"part": part, "layer": name, "in": n_in, "out": n_out,
                    "parameters": n_in * n_out + n_out}

        return [
            lin("q(y|x)", "linear + ReLU", p, h),
            lin("q(y|x)", "linear + ReLU", h, h),
            lin("q(y|x)", "linear -> logits, Gumbel-softmax", h, k),
            lin("q(z|x,y)", "linear on concat(x, y) + ReLU", p + k, h),
            lin("q(z|x,y)", "linear + ReLU", h, h),
            lin("q(z|x,y)", "linear -> mean", h, d),
            lin("q(z|x,y)", "linear -> softplus variance", h, d),
            lin("p(z|y)", "linear -> mean", k, d),
            lin("p(z|y)", "linear -> softplus variance", k, d),
            lin("p(x|z)", "linear + ReLU", d, h),
            lin("p(x|z)", "linear + ReLU", h, h),
            lin("p(x|z)", "linear -> sigmoid", h, p),
        ]
