"""VaDE: Variational Deep Embedding (Jiang, Zheng, Tan, Tang & Zhou 2017), MoE-Sim-VAE's baseline.

VaDE is a VAE whose prior is a Gaussian mixture in latent space. Its generative model is

    c ~ Cat(pi),   z | c ~ N(mu_c, diag(sigma2_c)),   x | z ~ Bernoulli(sigmoid(f(z)))

with ``n_clusters`` components; the mixture weights ``pi``, means ``mu_c`` and variances
``sigma2_c`` are learned with the networks. The variational posterior factorises as
``q(z, c | x) = q(z | x) q(c | x)`` with ``q(z | x) = N(mu(x), diag(s2(x)))`` from an MLP
encoder, and ``q(c | x)`` is taken to be the responsibilities ``gamma_c = p(c | z)`` of the
prior at a posterior sample ``z`` (the paper shows that ``p(c | z)`` maximises the ELBO over
``q(c | x)`` for a given ``z``). The clusters of the data are the argmax of
``p(c | z = mu(x))``.

Training follows the paper: the encoder and decoder are first pretrained as a plain
autoencoder, a diagonal Gaussian mixture fitted to the codes initialises the prior
(:meth:`VaDE.pretrain`), then the negative ELBO (:meth:`VaDE.loss`) is minimised over networks
and prior together by :func:`mnistnd.training.fit`.

Parameterisation: the prior weights are ``softmax(prior_logits)`` (always on the simplex) and
the prior variances ``exp(prior_log_var)`` (always positive), so Adam can update them freely.
The authors' Keras code updated ``pi`` and ``sigma2`` as raw values, with nothing keeping them
on the simplex or positive.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mnistnd._checks import check_float, check_int, check_int_list, check_matrix
from mnistnd.models._blocks import (
    apply_batched,
    bernoulli_nll,
    log_normal,
    make_activation,
    mlp,
    reparameterize,
)

__all__ = ["VaDE", "HIDDEN"]

#: Encoder widths of the VaDE paper's MNIST network (the decoder mirrors them).
HIDDEN = (500, 500, 2000)


class _PretrainAutoencoder(nn.Module):
    """The encoder mean and the decoder of a :class:`VaDE` as a deterministic autoencoder.

    Shares (does not copy) the submodules, so training it with :func:`mnistnd.training.fit`
    trains the VaDE's networks in place. The log-variance head and the prior take no part.
    """

    def __init__(self, vade: VaDE):
        super().__init__()
        self.encoder = vade.encoder
        self.mean_head = vade.mean_head
        self.decoder = vade.decoder

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"loss", "reconstruction"}``: Bernoulli cross-entropy summed over features."""
        reconstruction = bernoulli_nll(self.decoder(self.mean_head(self.encoder(x))), x).mean()
        return {"loss": reconstruction, "reconstruction": reconstruction}


class VaDE(nn.Module):
    """Variational Deep Embedding: a VAE with a learned Gaussian-mixture prior.

    Parameters
    ----------
    n_input : int
        Number of input features (784 for MNIST), values in [0, 1].
    n_latent : int
        Dimension of the latent ``z`` (the paper: 10).
    n_clusters : int
        Number of mixture components (>= 2; the paper: 10 on MNIST).
    hidden : sequence of int
        Encoder hidden widths, ``n_input -> hidden -> (mean, log-variance)``; the decoder runs
        through them reversed, ``n_latent -> hidden[::-1] -> n_input``. The paper's MNIST network
        is (500, 500, 2000).
    activation : str
        Hidden activation (a name from :data:`mnistnd.models._blocks.ACTIVATIONS`; the paper:
        ReLU).
    random_state : int
        Seed of the Gaussian mixture that initialises the prior (:meth:`init_prior_from_codes`).
        Network weights come from torch's global generator, like the compendium's other models.

    Attributes
    ----------
    prior_logits : torch.nn.Parameter of shape (n_clusters,)
        Mixture weights ``pi = softmax(prior_logits)``.
    prior_means : torch.nn.Parameter of shape (n_clusters, n_latent)
        Component means ``mu_c``.
    prior_log_var : torch.nn.Parameter of shape (n_clusters, n_latent)
        Log of the diagonal component variances ``sigma2_c``.

    Notes
    -----
    Before :meth:`pretrain` (or :meth:`init_prior_from_codes`) the prior is the authors' initial
    one: uniform weights, zero means, unit variances; every component is then the same and the
    responsibilities are uniform, so training from there cannot separate clusters. Weights are
    Glorot-uniform with zero biases (Keras' default, which the authors' networks used).

    The authors trained on MNIST with batch 100 for 3000 epochs by Adam (``epsilon=1e-4``) at a
    learning rate of 0.002 multiplied by 0.9 every 10 epochs down to 0.0002; the responsibilities
    there carry a ``1e-10`` floor, here they are computed in log space instead.
    :func:`mnistnd.training.fit` keeps the learning rate constant.
    """

    def __init__(
        self,
        n_input: int = 784,
        n_latent: int = 10,
        n_clusters: int = 10,
        hidden: Sequence[int] = HIDDEN,
        activation: str = "relu",
        random_state: int = 0,
    ):
        super().__init__()
        self.n_input = check_int("n_input", n_input, minimum=1)
        self.n_latent = check_int("n_latent", n_latent, minimum=1)
        self.n_clusters = check_int("n_clusters", n_clusters, minimum=2)
        self.hidden = tuple(check_int_list("hidden", hidden, minimum=1))
        make_activation(activation)  # validates the name before any layer is built
        self.activation = activation
        self.random_state = check_int("random_state", random_state, minimum=0)
        d, k = self.n_latent, self.n_clusters

        # the last hidden layer keeps its activation: the two heads read the same features
        self.encoder = mlp([self.n_input, *self.hidden], activation, output_activation=activation)
        self.mean_head = nn.Linear(self.hidden[-1], d)
        self.log_var_head = nn.Linear(self.hidden[-1], d)
        self.decoder = mlp([d, *self.hidden[::-1], self.n_input], activation)  # Bernoulli logits
        self.prior_logits = nn.Parameter(torch.zeros(k))
        self.prior_means = nn.Parameter(torch.zeros(k, d))
        self.prior_log_var = nn.Parameter(torch.zeros(k, d))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot-uniform weights and zero biases; uniform, zero-mean, unit-variance prior."""
        for layer in self.modules():
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)
        with torch.no_grad():
            self.prior_logits.zero_()
            self.prior_means.zero_()
            self.prior_log_var.zero_()

    # ----------------------------------------------------------------------- distributions
    def prior_params(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Weights ``pi`` (K,), means (K, d) and variances (K, d) of the prior, with gradients."""
        return (F.softmax(self.prior_logits, dim=0), self.prior_means,
                torch.exp(self.prior_log_var))

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of ``q(z | x)``, each of shape (n_samples, n_latent)."""
        h = self.encoder(x)
        return self.mean_head(h), self.log_var_head(h)

    def log_joint(self, z: torch.Tensor) -> torch.Tensor:
        """``log pi_c + log N(z | mu_c, diag(sigma2_c))`` for every component, shape (n, K)."""
        _, means, variances = self.prior_params()
        log_pi = F.log_softmax(self.prior_logits, dim=0)
        return log_pi + log_normal(z[:, None, :], means, variances)

    def _check_batch(self, x: torch.Tensor) -> None:
        if x.ndim != 2 or x.shape[1] != self.n_input:
            raise ValueError(f"x must have shape (n_samples, {self.n_input}), got {tuple(x.shape)}")

    # ----------------------------------------------------------------------- protocol
    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Negative ELBO of VaDE with one reparameterised sample (the paper's SGVB estimator).

        For each sample, with ``q(z | x) = N(m, diag(s2))``, ``z = m + sqrt(s2) * eps``,
        ``eps ~ N(0, I)``, the prior's ``pi_c``, ``mu_c``, ``sigma2_c`` and the responsibilities
        ``gamma_c = pi_c N(z | mu_c, sigma2_c) / sum_c' pi_c' N(z | mu_c', sigma2_c')``::

            reconstruction = -sum_i [x_i log p_i + (1 - x_i) log(1 - p_i)],  p = sigmoid(f(z))
            gaussian       = sum_c gamma_c KL(N(m, s2) || N(mu_c, sigma2_c))
                           = sum_c gamma_c 1/2 sum_j [log sigma2_cj - log s2_j
                                                      + (s2_j + (m_j - mu_cj)^2) / sigma2_cj - 1]
            categorical    = sum_c gamma_c log(gamma_c / pi_c)
            loss           = reconstruction + gaussian + categorical   (= -ELBO)

        The paper writes the last two as ``1/2 sum_c gamma_c sum_j (log sigma2_cj + s2_j/sigma2_cj
        + (m_j - mu_cj)^2/sigma2_cj) - 1/2 sum_j (1 + log s2_j)`` and ``-sum_c gamma_c log(pi_c /
        gamma_c)``; since the ``gamma_c`` sum to 1 these are the same. ``gamma`` keeps its
        gradient with respect to ``z`` and the prior, as in the authors' code.

        Parameters
        ----------
        x : torch.Tensor of shape (n_samples, n_input)
            Data in [0, 1].

        Returns
        -------
        dict of str to torch.Tensor
            ``loss``, ``reconstruction``, ``gaussian``, ``categorical``: batch means, scalars.
        """
        self._check_batch(x)
        mean, log_var = self.posterior(x)
        z = reparameterize(mean, torch.exp(log_var))
        reconstruction = bernoulli_nll(self.decoder(z), x)
        log_joint = self.log_joint(z)
        log_gamma = F.log_softmax(log_joint, dim=1)
        gamma = log_gamma.exp()
        _, means, variances = self.prior_params()
        kl_c = 0.5 * torch.sum(
            torch.log(variances) - log_var[:, None, :]
            + (torch.exp(log_var)[:, None, :] + (mean[:, None, :] - means) ** 2) / variances
            - 1.0,
            dim=-1,
        )  # (n, K): KL(q(z|x) || p(z|c)) for each component
        gaussian = torch.sum(gamma * kl_c, dim=1)
        log_pi = F.log_softmax(self.prior_logits, dim=0)
        categorical = torch.sum(gamma * (log_gamma - log_pi), dim=1)
        return {
            "loss": (reconstruction + gaussian + categorical).mean(),
            "reconstruction": reconstruction.mean(),
            "gaussian": gaussian.mean(),
            "categorical": categorical.mean(),
        }

    # ----------------------------------------------------------------------- pretraining
    def pretrain(self, X, epochs: int = 50, **fit_kwargs):
        """Pretrain encoder and decoder as an autoencoder, then initialise the prior from a GMM.

        Step 1 trains ``x -> encoder mean -> decoder`` as a deterministic autoencoder with the
        Bernoulli cross-entropy of :meth:`loss`, through :func:`mnistnd.training.fit` (so it is
        seeded, reproducible and resumable like every other training here). Step 2 encodes ``X``
        by the means of ``q(z | x)`` and calls :meth:`init_prior_from_codes`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_input)
            Training data in [0, 1].
        epochs : int
            Maximum number of autoencoder epochs (>= 1).
        **fit_kwargs
            Passed to :func:`mnistnd.training.fit` (``batch_size``, ``lr``, ``seed``, ``device``,
            ``patience``, ``val_fraction``, ``checkpoint_dir``, ``progress`` ...).

        Returns
        -------
        pandas.DataFrame
            The autoencoder's training history (see :func:`mnistnd.training.fit`).

        Notes
        -----
        The paper pretrains a stacked autoencoder (greedy layer-wise, as DEC does) and the
        authors' code loads such weights from a file; here the autoencoder is trained end to end.
        Like theirs, the log-variance head is not pretrained. Their MNIST run copied only the
        means and variances of the mixture and kept the weights uniform; here the weights are
        copied too.
        """
        from mnistnd.training import fit, resolve_device

        epochs = check_int("epochs", epochs, minimum=1)
        X = check_matrix("X", X, dtype=np.float32)
        if X.shape[1] != self.n_input:
            raise ValueError(f"X has {X.shape[1]} features but n_input={self.n_input}")
        history = fit(_PretrainAutoencoder(self), X, epochs=epochs, **fit_kwargs)
        self.to(resolve_device(fit_kwargs.get("device", "auto")))
        self.init_prior_from_codes(self.transform(X))
        return history

    @torch.no_grad()
    def init_prior_from_codes(self, Z):
        """Set the prior to a diagonal Gaussian mixture fitted to the codes ``Z``.

        Fits ``sklearn.mixture.GaussianMixture(n_components=n_clusters, covariance_type="diag",
        random_state=random_state)`` and copies its weights, means and variances into the prior
        (as logits, means and log-variances). The weights stay on the simplex and the variances
        positive (sklearn adds ``reg_covar`` to them).

        Parameters
        ----------
        Z : array-like of shape (n_samples, n_latent)
            Codes, normally the encoder means of the training data; at least ``n_clusters`` rows.

        Returns
        -------
        sklearn.mixture.GaussianMixture
            The fitted mixture.
        """
        from sklearn.mixture import GaussianMixture

        Z = check_matrix("Z", Z, min_samples=self.n_clusters)
        if Z.shape[1] != self.n_latent:
            raise ValueError(f"Z has {Z.shape[1]} columns but n_latent={self.n_latent}")
        gmm = GaussianMixture(n_components=self.n_clusters, covariance_type="diag",
                              random_state=self.random_state).fit(Z)
        self.prior_logits.copy_(torch.as_tensor(np.log(gmm.weights_)))
        self.prior_means.copy_(torch.as_tensor(gmm.means_))
        self.prior_log_var.copy_(torch.as_tensor(np.log(gmm.covariances_)))
        return gmm

    # ----------------------------------------------------------------------- tensor read-outs
    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic embedding: the mean of ``q(z | x)``, shape (n_samples, n_latent)."""
        return self.posterior(x)[0]

    @torch.no_grad()
    def cluster_probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """``q(c | x) ~ p(c | z = encode(x))``, shape (n_samples, n_clusters), rows sum to 1.

        Evaluated at the posterior mean rather than a sample, as the authors' evaluation code
        does, so the clustering is a function of ``x`` alone.
        """
        return F.softmax(self.log_joint(self.encode(x)), dim=1)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic reconstruction ``sigmoid(decoder(encode(x)))``, values in (0, 1)."""
        return torch.sigmoid(self.decoder(self.encode(x)))

    # ----------------------------------------------------------------------- array read-outs
    @torch.no_grad()
    def _batched(self, X, fn, batch_size: int) -> np.ndarray:
        batch_size = check_int("batch_size", batch_size, minimum=1)
        X = check_matrix("X", X, dtype=np.float32)
        if X.shape[1] != self.n_input:
            raise ValueError(f"X has {X.shape[1]} features but n_input={self.n_input}")
        return apply_batched(self, X, fn, batch_size)

    def transform(self, X, batch_size: int = 2048) -> np.ndarray:
        """Return the encoder means of an array ``X`` (numpy), shape (n_samples, n_latent)."""
        return self._batched(X, self.encode, batch_size)

    def predict_proba(self, X, batch_size: int = 2048) -> np.ndarray:
        """Cluster probabilities :meth:`cluster_probabilities` of an array ``X`` (numpy)."""
        return self._batched(X, self.cluster_probabilities, batch_size)

    def predict(self, X, batch_size: int = 2048) -> np.ndarray:
        """Clusters of an array ``X``: argmax of :meth:`predict_proba`, integers in [0, K)."""
        return self.predict_proba(X, batch_size).argmax(axis=1)

    @torch.no_grad()
    def sample_latent(self, n: int, cluster: int, *, threshold: float = 0.0, seed: int = 0,
                      max_draws: int | None = None) -> tuple[torch.Tensor, int]:
        """Draw codes of prior component ``cluster`` with ``p(c | z) > threshold``.

        Draws ``z ~ N(mu_c, diag(sigma2_c))`` in chunks until ``n`` draws pass the threshold or
        ``max_draws`` draws were made. With ``threshold > 0`` this is the rejection step of the
        authors' generation code (their default 0.999), which discards draws in the tails where
        another component is more probable; paper 002 (SI Fig. B.4) reports how many draws it
        needs.

        Parameters
        ----------
        n : int
            Number of codes wanted (>= 1).
        cluster : int
            Component ``c`` in [0, n_clusters).
        threshold : float
            Minimum posterior ``p(c | z)`` of a kept draw, in [0, 1); 0 keeps every draw.
        seed : int
            Seed of the draws (a private generator; torch's global one is untouched).
        max_draws : int, optional
            Give up after this many draws (default ``1000 * n``).

        Returns
        -------
        z : torch.Tensor of shape (n_kept, n_latent)
            The kept codes, ``n_kept <= n`` (fewer only when ``max_draws`` ran out).
        n_drawn : int
            Draws made up to and including the ``n``-th kept one (all draws when fewer passed),
            so ``n_drawn / n_kept`` is the number of draws per kept code.
        """
        n = check_int("n", n, minimum=1)
        cluster = check_int("cluster", cluster, minimum=0, maximum=self.n_clusters - 1)
        threshold = check_float("threshold", threshold, minimum=0.0, maximum=1.0, open_high=True)
        max_draws = 1000 * n if max_draws is None else check_int("max_draws", max_draws, minimum=n)
        gen = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
        _, means, variances = self.prior_params()
        kept, n_kept, n_drawn = [], 0, 0
        while n_kept < n and n_drawn < max_draws:
            size = min(max(n, 256), max_draws - n_drawn)
            eps = torch.randn(size, self.n_latent, generator=gen, dtype=means.dtype)
            z = means[cluster] + torch.sqrt(variances[cluster]) * eps.to(means.device)
            passed = torch.ones(size, dtype=torch.bool, device=z.device) if threshold == 0 else (
                F.softmax(self.log_joint(z), dim=1)[:, cluster] > threshold)
            index = torch.nonzero(passed).ravel()
            if n_kept + len(index) >= n:  # stop counting at the n-th kept draw
                index = index[: n - n_kept]
                kept.append(z[index])
                return torch.cat(kept), n_drawn + int(index[-1]) + 1
            kept.append(z[index])
            n_kept += len(index)
            n_drawn += size
        return torch.cat(kept), n_drawn

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli means ``sigmoid(decoder(z))`` of latent codes, values in (0, 1)."""
        return torch.sigmoid(self.decoder(z))

    @torch.no_grad()
    def generate(self, n: int, cluster: int, *, threshold: float = 0.0, seed: int = 0,
                 max_draws: int | None = None) -> np.ndarray:
        """Decode ``n`` latent samples of prior component ``cluster`` (Bernoulli means).

        The codes come from :meth:`sample_latent` (with its posterior ``threshold``); the images
        are ``sigmoid(decoder(z))``.

        Parameters
        ----------
        n, cluster, threshold, seed, max_draws
            See :meth:`sample_latent`.

        Returns
        -------
        numpy.ndarray of shape (n, n_input)
            Pixel probabilities in [0, 1].

        Raises
        ------
        RuntimeError
            When fewer than ``n`` of ``max_draws`` draws pass ``threshold``.
        """
        z, n_drawn = self.sample_latent(n, cluster, threshold=threshold, seed=seed,
                                        max_draws=max_draws)
        if z.shape[0] < n:
            raise RuntimeError(
                f"only {z.shape[0]} of {n_drawn} draws from component {cluster} have p(c | z) > "
                f"threshold={threshold}; lower threshold or raise max_draws"
            )
        return self.decode(z).cpu().numpy()

    def n_parameters(self) -> int:
        """Return the number of trainable parameters (networks and prior)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
