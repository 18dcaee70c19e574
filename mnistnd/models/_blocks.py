"""Shared building blocks of the compendium's models.

Layers (:func:`mlp`, :func:`xavier_init_`), Gaussian helpers (:func:`positive_variance`,
:func:`reparameterize`, :func:`log_normal`, :func:`kl_normal`, :func:`kl_standard_normal`), the
categorical helpers (:func:`gumbel_softmax`, :func:`kl_categorical_uniform`), the Bernoulli
likelihood (:func:`bernoulli_nll`) and the Gumbel temperature schedule
(:func:`temperature_schedule`). Every function works on batches: the last axis is the feature
axis and per-sample quantities are summed over it, so callers only average over the batch.

All random draws use torch's global generator, which :func:`mnistnd.training.fit` seeds per
epoch; that is what makes training bitwise reproducible and resumable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "apply_batched",
    "ACTIVATIONS",
    "make_activation",
    "mlp",
    "xavier_init_",
    "positive_variance",
    "reparameterize",
    "log_normal",
    "kl_normal",
    "kl_standard_normal",
    "gumbel_softmax",
    "kl_categorical_uniform",
    "bernoulli_nll",
    "temperature_schedule",
    "count_parameters",
]

#: Activation layers by name (lower case), for :func:`mlp` and model constructors.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "selu": nn.SELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "softplus": nn.Softplus,
    "identity": nn.Identity,
}

#: Added to variances so that their logarithm stays finite when softplus underflows.
VARIANCE_EPS = 1e-8


def make_activation(name: str) -> nn.Module:
    """Return a fresh activation module by name (one of :data:`ACTIVATIONS`).

    Parameters
    ----------
    name
        Case-insensitive activation name, e.g. ``"relu"``.

    Returns
    -------
    torch.nn.Module
        The activation layer.
    """
    if not isinstance(name, str) or name.lower() not in ACTIVATIONS:
        raise ValueError(f"activation={name!r} is not one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name.lower()]()


def mlp(
    sizes: Sequence[int],
    activation: str = "relu",
    output_activation: str | None = None,
    bias: bool = True,
) -> nn.Sequential:
    """Build a multilayer perceptron ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``.

    Parameters
    ----------
    sizes
        Layer widths including input and output, at least two entries, all positive.
    activation
        Activation after every hidden layer (name from :data:`ACTIVATIONS`).
    output_activation
        Activation after the last layer; ``None`` leaves the output linear.
    bias
        Whether the linear layers have a bias.

    Returns
    -------
    torch.nn.Sequential
        ``Linear, act, Linear, act, ..., Linear[, output_act]``; weights are torch's default
        initialisation (call :func:`xavier_init_` for the compendium's).
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise ValueError(f"sizes must hold at least two positive widths, got {sizes}")
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out, bias=bias))
        if i < len(sizes) - 2:
            layers.append(make_activation(activation))
    if output_activation is not None:
        layers.append(make_activation(output_activation))
    return nn.Sequential(*layers)


def xavier_init_(module: nn.Module) -> nn.Module:
    """Xavier-normal weights and zero biases for every ``nn.Linear`` inside ``module``.

    The initialisation of the reference m-VAE code (and of the other models here).

    Parameters
    ----------
    module
        Any module; its ``nn.Linear`` submodules are re-initialised in place using torch's
        global generator.

    Returns
    -------
    torch.nn.Module
        ``module`` itself.
    """
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.xavier_normal_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return module


def positive_variance(raw: torch.Tensor, eps: float = VARIANCE_EPS) -> torch.Tensor:
    """Map an unconstrained network output to a variance: ``softplus(raw) + eps``."""
    return F.softplus(raw) + eps


def reparameterize(mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """Draw ``z ~ N(mean, diag(var))`` differentiably (``mean + sqrt(var) * eps``)."""
    return mean + torch.sqrt(var) * torch.randn_like(mean)


def log_normal(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """Log density of a diagonal Gaussian, summed over the last axis.

    Parameters
    ----------
    x, mean, var
        Broadcastable tensors; ``var`` must be positive.

    Returns
    -------
    torch.Tensor
        ``sum_j log N(x_j | mean_j, var_j)``, one value per sample.
    """
    return -0.5 * torch.sum(math.log(2 * math.pi) + torch.log(var) + (x - mean) ** 2 / var, dim=-1)


def kl_normal(
    mean_q: torch.Tensor, var_q: torch.Tensor, mean_p: torch.Tensor, var_p: torch.Tensor
) -> torch.Tensor:
    """Closed-form ``KL(N(mean_q, var_q) || N(mean_p, var_p))`` summed over the last axis."""
    return 0.5 * torch.sum(
        torch.log(var_p) - torch.log(var_q) + (var_q + (mean_q - mean_p) ** 2) / var_p - 1.0,
        dim=-1,
    )


def kl_standard_normal(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Closed-form ``KL(N(mean, exp(logvar)) || N(0, I))`` summed over the last axis."""
    return 0.5 * torch.sum(torch.exp(logvar) + mean**2 - 1.0 - logvar, dim=-1)


def gumbel_softmax(
    logits: torch.Tensor, temperature: float, hard: bool = False, eps: float = 1e-20
) -> torch.Tensor:
    """Differentiable sample from the categorical distribution ``softmax(logits)``.

    Adds Gumbel noise ``-log(-log(u))`` to the logits and takes a softmax at ``temperature``
    (Jang et al. 2016). With ``hard=True`` the forward value is the one-hot argmax while the
    gradient is that of the soft sample (straight-through estimator).

    Parameters
    ----------
    logits
        Unnormalised log-probabilities, shape ``(..., n_components)``.
    temperature
        Softmax temperature, > 0; lower is closer to one-hot.
    hard
        Return a one-hot sample (straight-through) instead of the soft one.
    eps
        Keeps both logarithms finite.

    Returns
    -------
    torch.Tensor
        Samples on the simplex, same shape as ``logits``.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    u = torch.rand_like(logits)
    gumbel = -torch.log(-torch.log(u + eps) + eps)
    y = F.softmax((logits + gumbel) / temperature, dim=-1)
    if not hard:
        return y
    index = y.argmax(dim=-1, keepdim=True)
    y_hard = torch.zeros_like(y).scatter_(-1, index, 1.0)
    return (y_hard - y).detach() + y


def kl_categorical_uniform(logits: torch.Tensor) -> torch.Tensor:
    """``KL(softmax(logits) || uniform)`` per sample: ``sum_k q_k log q_k + log K``.

    Zero when ``q`` is uniform, ``log K`` when it is one-hot.
    """
    log_q = F.log_softmax(logits, dim=-1)
    return torch.sum(log_q.exp() * log_q, dim=-1) + math.log(logits.shape[-1])


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of targets ``x`` in [0, 1] under ``sigmoid(logits)``, summed per sample.

    Computed from the logits (``binary_cross_entropy_with_logits``), which equals BCE on the
    sigmoid output but stays finite where the sigmoid saturates to 0 or 1.
    """
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=-1)


def temperature_schedule(
    epoch: int, initial: float = 1.0, rate: float = math.log(2) / 50, floor: float = 0.5
) -> float:
    """Gumbel-softmax temperature of an epoch: ``max(initial * exp(-rate * epoch), floor)``.

    With the defaults (the reference m-VAE's) the temperature halves in 50 epochs, from 1.0 at
    epoch 0 to the floor 0.5 at epoch 50 and after.
    """
    return max(initial * math.exp(-rate * epoch), floor)


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Count the (trainable) scalar parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


@torch.no_grad()
def apply_batched(module: nn.Module, X, fn, batch_size: int = 2048) -> np.ndarray:
    """Apply ``fn`` (tensor in, tensor out) to an array ``X`` in batches, in eval mode.

    The module's training mode is restored afterwards, so a read-out between epochs does not
    switch dropout or batch statistics off for the rest of training. Numpy in, numpy out.
    """
    was_training = module.training
    module.eval()
    device = next(module.parameters()).device
    X = torch.as_tensor(np.asarray(X, dtype=np.float32))
    try:
        out = [fn(X[i : i + batch_size].to(device)).cpu() for i in range(0, len(X), batch_size)]
    finally:
        module.train(was_training)
    return torch.cat(out).numpy()
