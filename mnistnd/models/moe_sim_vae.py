"""MoE-Sim-VAE: a mixture-of-experts decoder on a similarity-clustered latent space (paper 002).

Kopf, Fortuin, Somnath & Claassen (2020/2021). The model has

* an **encoder** ``x -> z`` (code size a parameter);
* a **clustering (gating) network** ``z -> p(k | z)`` with configurable depth, width and dropout;
* ``K`` **expert decoders** ``z -> x``; each sample is reconstructed by its argmax expert
  ``k_i = argmax_k p_ik`` only, so an expert learns one mode of the data.

Its loss (paper 002, Eqs. 3–11 and SI B), returned term by term by :meth:`MoESimVAE.loss`:

``reconstruction``
    Binary cross-entropy between ``x`` in [0, 1] and the argmax expert's output (Eq. 4), as a mean
    over samples and features (the Keras convention, which keeps the three SI B coefficients on a
    common scale).
``mixture_kl``
    Eq. 3, per cluster: ``1/2 sum_j (1/s_kj - 1 + ln s_kj)`` with ``s_kj`` the variance of the
    codes gated to cluster ``k`` around its mean ``mu_k`` of Eq. 6; the KL from ``N(mu_k, I)`` to
    ``N(mu_k, diag(s_k))``, zero exactly when every cluster has unit variance. Averaged over
    clusters with weights ``N_k / N``.
``similarity``
    Eq. 7, binary cross-entropy between the batch's kNN similarity matrix ``S`` and ``P P^T``.
    Eq. 7 as printed keeps only the ``S log(PP^T)`` term, which a single cluster minimises
    trivially; we use the full binary cross-entropy the text names.
``depict``
    Eqs. 8–9 (DEPICT, Dizaji et al. 2017): cross-entropy between the target ``q`` computed from
    the clean probabilities and the probabilities of a dropout-noised pass of the gate.
``loss``
    Eq. 11 with the SI B coefficients: ``w_rec * reconstruction + w_mix * mixture_kl +
    w_clu * (w_sim * similarity + w_depict * depict)``; defaults 0.487, 0.024, 0.487 and
    ``w_sim = w_depict = 1`` (Eq. 10 with ``pi_2 = 1``). ``w_sim = 0`` is the paper's ablation.

The similarity matrix is built inside :meth:`MoESimVAE.loss` from a per-sample projection passed
with the batch (``fit(model, (X, projection))``: e.g. a UMAP or PCA embedding of the data), by
:func:`knn_similarity` or :func:`threshold_similarity` (``similarity_mode``); a precomputed
``similarity`` matrix can be passed instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mnistnd._checks import check_choice, check_float, check_int, check_int_list
from mnistnd.models._blocks import apply_batched, bernoulli_nll, make_activation, mlp, xavier_init_

__all__ = [
    "PAPER_COEFFICIENTS",
    "MoESimVAE",
    "cluster_means",
    "depict_loss",
    "depict_target",
    "knn_similarity",
    "mixture_kl",
    "similarity_loss",
    "threshold_similarity",
]

#: Loss coefficients of paper 002, SI B (reconstruction, clustering, mixture of Gaussians).
PAPER_COEFFICIENTS = {"reconstruction": 0.487, "clustering": 0.487, "mixture": 0.024}

#: Probabilities are clamped to [EPS, 1 - EPS] before taking logarithms.
EPS = 1e-7

#: Floor on per-cluster variances in the mixture KL (a cluster of identical codes would give
#: an infinite 1 / s); below it the term is constant, so it cannot blow up the gradient.
VARIANCE_FLOOR = 1e-4


# --------------------------------------------------------------------------- loss functions
def _batch_distances(projection: torch.Tensor) -> torch.Tensor:
    """Euclidean distances between the rows of a 2-D projection, without gradient (float32)."""
    if projection.ndim != 2:
        raise ValueError(
            f"projection must be 2-D (n_samples, n_components), got {tuple(projection.shape)}"
        )
    with torch.no_grad():
        proj = projection.detach().float()
        return torch.cdist(proj, proj)


def knn_similarity(projection: torch.Tensor, k: int) -> torch.Tensor:
    """Binary kNN similarity matrix of a batch (the ``S`` of paper 002, Eq. 7).

    ``S_ij = 1`` when ``j`` is among the ``k`` nearest neighbours of ``i`` (Euclidean distance in
    ``projection``) or ``i`` among those of ``j`` (symmetrised, since ``P P^T`` is symmetric);
    ``S_ii = 1`` (a point is similar to itself, as ``(P P^T)_ii`` is near 1 for a confident gate).

    Parameters
    ----------
    projection : torch.Tensor of shape (n_samples, n_components)
        Per-sample coordinates in which neighbours are sought (e.g. UMAP of the data).
    k : int
        Number of neighbours, ``1 <= k < n_samples``.

    Returns
    -------
    torch.Tensor of shape (n_samples, n_samples)
        Symmetric 0/1 matrix (dtype of ``projection``), no gradient.
    """
    k = check_int("knn_k", k, minimum=1)
    dist = _batch_distances(projection)
    n = dist.shape[0]
    if k >= n:
        raise ValueError(
            f"knn_k={k} must be smaller than the batch size ({n} samples): each sample needs k "
            "neighbours other than itself"
        )
    with torch.no_grad():
        dist.fill_diagonal_(float("inf"))
        nn_index = dist.topk(k, dim=1, largest=False).indices
        S = torch.zeros(n, n, dtype=projection.dtype, device=projection.device)
        S.scatter_(1, nn_index, 1.0)
        S = torch.maximum(S, S.T)
        S.fill_diagonal_(1.0)
    return S


def threshold_similarity(
    projection: torch.Tensor, threshold: float, components: bool = False
) -> torch.Tensor:
    """Distance-threshold similarity matrix of a batch (paper 002: "distance thresholding").

    ``S_ij = 1`` when ``|projection_i - projection_j| < threshold`` (so ``S_ii = 1``). With
    ``components=True`` the threshold graph is closed transitively: ``S_ij = 1`` when ``i`` and
    ``j`` lie in the same connected component of that graph (single-linkage groups at
    ``threshold``), which makes ``S`` block-diagonal with one block per group.

    Parameters
    ----------
    projection : torch.Tensor of shape (n_samples, n_components)
        Per-sample coordinates (e.g. a 2-D UMAP of the data).
    threshold : float
        Distance below which two samples are similar (> 0).
    components : bool
        Close the graph transitively (connected components).

    Returns
    -------
    torch.Tensor of shape (n_samples, n_samples)
        Symmetric 0/1 matrix (dtype of ``projection``), no gradient.
    """
    threshold = check_float("similarity_threshold", threshold, minimum=0.0, open_low=True)
    adjacent = _batch_distances(projection) < threshold
    with torch.no_grad():
        if components:
            from scipy.sparse import csr_matrix
            from scipy.sparse.csgraph import connected_components

            _, group = connected_components(csr_matrix(adjacent.cpu().numpy()), directed=False)
            group = torch.as_tensor(group, device=projection.device)
            adjacent = group[:, None] == group[None, :]
        adjacent.fill_diagonal_(True)
    return adjacent.to(projection.dtype)


def similarity_loss(p: torch.Tensor, similarity: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy between ``similarity`` and ``P P^T`` (paper 002, Eq. 7).

    Parameters
    ----------
    p : torch.Tensor of shape (n_samples, n_clusters)
        Cluster probabilities (rows sum to 1), so ``(P P^T)_ij`` lies in [0, 1].
    similarity : torch.Tensor of shape (n_samples, n_samples)
        Target similarities in [0, 1].

    Returns
    -------
    torch.Tensor
        Scalar: mean over all ``n_samples**2`` entries.
    """
    n = p.shape[0]
    if similarity.ndim != 2 or tuple(similarity.shape) != (n, n):
        raise ValueError(
            f"similarity must have shape ({n}, {n}) for a batch of {n} samples, "
            f"got {tuple(similarity.shape)}"
        )
    ppt = (p @ p.T).clamp(EPS, 1.0 - EPS)
    return F.binary_cross_entropy(ppt, similarity.to(ppt.dtype))


def depict_target(p: torch.Tensor) -> torch.Tensor:
    """Auxiliary target distribution ``q`` of DEPICT (paper 002, Eq. 9).

    ``q_ik = (p_ik / sqrt(sum_i' p_i'k)) / sum_k' (p_ik' / sqrt(sum_i' p_i'k'))``: it sharpens
    the assignment and divides by the square root of each cluster's soft size, which discourages
    one cluster from absorbing the batch. Treated as a constant target (no gradient).

    Parameters
    ----------
    p : torch.Tensor of shape (n_samples, n_clusters)
        Clean cluster probabilities.

    Returns
    -------
    torch.Tensor of shape (n_samples, n_clusters)
        Rows on the simplex.
    """
    p = p.detach()
    weighted = p / torch.sqrt(p.sum(dim=0, keepdim=True).clamp_min(EPS))
    return weighted / weighted.sum(dim=1, keepdim=True).clamp_min(EPS)


def depict_loss(p_clean: torch.Tensor, p_noisy: torch.Tensor) -> torch.Tensor:
    """DEPICT loss (paper 002, Eq. 8): ``-1/N sum_i sum_k q_ik log p_noisy_ik``.

    Parameters
    ----------
    p_clean : torch.Tensor of shape (n_samples, n_clusters)
        Gate probabilities without dropout (give the target :func:`depict_target`).
    p_noisy : torch.Tensor of shape (n_samples, n_clusters)
        Gate probabilities of a dropout-noised pass.

    Returns
    -------
    torch.Tensor
        Scalar.
    """
    if p_clean.shape != p_noisy.shape:
        raise ValueError(
            f"p_clean {tuple(p_clean.shape)} and p_noisy {tuple(p_noisy.shape)} differ in shape"
        )
    q = depict_target(p_clean)
    return -(q * torch.log(p_noisy.clamp_min(EPS))).sum(dim=1).mean()


def cluster_means(z: torch.Tensor, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cluster centres of paper 002, Eq. 6: ``mu_k = 1/N_k sum_i p_ik z_i``.

    ``N_k`` is the number of samples whose argmax cluster is ``k``; clusters with ``N_k = 0``
    get ``mu_k = 0`` (they are unused).

    Parameters
    ----------
    z : torch.Tensor of shape (n_samples, code_size)
        Codes.
    p : torch.Tensor of shape (n_samples, n_clusters)
        Cluster probabilities.

    Returns
    -------
    means : torch.Tensor of shape (n_clusters, code_size)
    counts : torch.Tensor of shape (n_clusters,)
        ``N_k`` (float).
    """
    counts = torch.bincount(p.argmax(dim=1), minlength=p.shape[1]).to(z.dtype)
    means = (p.T @ z) / counts.clamp_min(1.0)[:, None]
    return means, counts


def mixture_kl(z: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Mixture-of-Gaussians KL of paper 002, Eq. 3 (each cluster's covariance against ``I``).

    For each cluster ``k`` with at least two gated samples (argmax of ``p``), ``s_kj`` is the
    mean squared deviation of their codes from ``mu_k`` (Eq. 6) along dimension ``j`` and
    ``KL_k = 1/2 sum_j (1/s_kj - 1 + ln s_kj)``, the KL divergence from ``N(mu_k, I)`` to
    ``N(mu_k, diag(s_k))`` (Eq. 2 with ``mu_0 = mu_1``). Returns ``sum_k N_k KL_k / sum_k N_k``.

    Parameters
    ----------
    z : torch.Tensor of shape (n_samples, code_size)
    p : torch.Tensor of shape (n_samples, n_clusters)

    Returns
    -------
    torch.Tensor
        Scalar, >= 0; zero when every used cluster has unit variance in every dimension.
    """
    # p enters the centres as a constant: with a gradient through Eq. 6 the gate can lower the
    # KL by moving mu_k away from its own members (inflating s_k) instead of the encoder
    # spreading the codes, and in our tests that collapsed every sample into one cluster.
    means, counts = cluster_means(z, p.detach())
    assign = p.argmax(dim=1)
    one_hot = F.one_hot(assign, p.shape[1]).to(z.dtype)  # n x K
    sq_dev = (z[:, None, :] - means[None, :, :]) ** 2  # n x K x D
    var = (one_hot[:, :, None] * sq_dev).sum(dim=0) / counts.clamp_min(1.0)[:, None]  # K x D
    var = var.clamp_min(VARIANCE_FLOOR)
    kl = 0.5 * (1.0 / var - 1.0 + torch.log(var)).sum(dim=1)  # K
    used = counts >= 2
    if not bool(used.any()):
        return z.new_zeros(())
    weights = counts * used
    return (weights * kl).sum() / weights.sum()


# --------------------------------------------------------------------------- networks
class _ConvEncoder(nn.Module):
    """The MNIST encoder of paper 002, SI B.2 (conv 64-128-pool-128-pool-64-8, dense code)."""

    def __init__(self, code_size: int):
        super().__init__()

        def conv(c_in, c_out):
            return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ELU(), nn.BatchNorm2d(c_out)]

        self.net = nn.Sequential(
            *conv(1, 64), *conv(64, 128), nn.MaxPool2d(2), nn.BatchNorm2d(128),
            *conv(128, 128), nn.MaxPool2d(2), nn.BatchNorm2d(128),
            *conv(128, 64), *conv(64, 8), nn.Flatten(), nn.Linear(7 * 7 * 8, code_size),
        )  # fmt: skip

    def forward(self, x):
        return self.net(x.reshape(-1, 1, 28, 28))


class _ConvExpert(nn.Module):
    """One MNIST expert of paper 002, SI B.2 (dense 7x7x8, conv 128-up-64-up-32-1); logits out."""

    def __init__(self, code_size: int):
        super().__init__()
        self.dense = nn.Linear(code_size, 7 * 7 * 8)
        self.net = nn.Sequential(
            nn.Conv2d(8, 128, 3, padding=1), nn.ELU(), nn.Upsample(scale_factor=2),
            nn.Conv2d(128, 64, 3, padding=1), nn.ELU(), nn.Upsample(scale_factor=2),
            nn.Conv2d(64, 32, 3, padding=1), nn.ELU(), nn.Conv2d(32, 1, 3, padding=1),
        )  # fmt: skip

    def forward(self, z):
        h = self.dense(z).reshape(-1, 8, 7, 7)
        return self.net(h).reshape(-1, 784)


class MoESimVAE(nn.Module):
    """Mixture-of-Experts Similarity VAE (paper 002) with named loss terms.

    Parameters
    ----------
    n_input : int
        Number of input features (784 for MNIST), values in [0, 1].
    n_experts : int
        Number of clusters / expert decoders ``K`` (>= 2).
    code_size : int
        Dimension of the latent code ``z``.
    hidden : sequence of int
        Hidden widths of the MLP encoder; the MLP experts use them reversed. SI B.1 uses three
        layers of 50.
    gate_depth, gate_width : int
        Number of hidden layers and their width in the clustering network (SI B: 3 x 200 on
        MNIST, 5 x 100 on synthetic data).
    gate_dropout : float
        Dropout rate in [0, 1) after every hidden layer of the gate's noisy pass (DEPICT; SI B:
        0.5).
    architecture : {"mlp", "conv"}
        ``"conv"``: the paper's convolutional MNIST encoder and experts (needs ``n_input=784``).
    knn_k : int
        Neighbours per sample in the batch similarity matrix (SI B: 10), for
        ``similarity_mode="knn"``.
    similarity_mode : {"knn", "threshold", "components"}
        How each batch's ``S`` is built from the projection: ``"knn"`` (:func:`knn_similarity`;
        the paper's MNIST setting), ``"threshold"`` (distances below ``similarity_threshold``;
        the paper's synthetic and CyTOF setting) or ``"components"`` (the connected components
        of that threshold graph; our departure, see Notes).
    similarity_threshold : float
        Distance threshold in the projection's units (SI B.1: 2), > 0.
    reconstruction_weight, clustering_weight, mixture_weight : float
        Coefficients of Eq. 11 (SI B: 0.487, 0.487, 0.024), all >= 0.
    similarity_weight, depict_weight : float
        Weights of the two clustering terms (Eq. 10; ``depict_weight`` is ``pi_2``);
        ``similarity_weight=0`` is the paper's ablation without similarity matrix.
    activation : str
        Hidden activation (SI B: ``"elu"``).

    Notes
    -----
    The similarity loss can only count clusters when ``S`` is dense inside each true cluster.
    A kNN matrix with ``k`` much smaller than a cluster's share of the batch marks most
    same-cluster pairs dissimilar, and the binary cross-entropy of Eq. 7 is then lower when
    each cluster is split over several experts (tested in ``tests/test_models_moe_sim_vae.py``):
    on the paper's MNIST setting (batch 128, ``k = 10``, ten digits) this does not arise, on
    synthetic mixtures in batches of hundreds it makes the model use nearly every expert. A
    plain distance threshold (SI B.1) has the same problem for large clusters, whose 2-D UMAP
    extent exceeds the threshold; ``"components"`` closes the threshold graph transitively so
    ``S`` is block-diagonal with one block per well-separated group.

    The encoder is deterministic: the paper's objective (Eqs. 3–11) has no per-sample posterior
    term; the latent distribution is shaped by the batch-level mixture KL. Generation samples
    ``z ~ N(mu_k, I)`` (Eq. 1) and decodes it with expert ``k``.
    """

    def __init__(
        self,
        n_input: int = 784,
        n_experts: int = 10,
        code_size: int = 10,
        hidden: Sequence[int] = (256, 128),
        gate_depth: int = 3,
        gate_width: int = 200,
        gate_dropout: float = 0.5,
        architecture: str = "mlp",
        knn_k: int = 10,
        similarity_mode: str = "knn",
        similarity_threshold: float = 2.0,
        reconstruction_weight: float = PAPER_COEFFICIENTS["reconstruction"],
        clustering_weight: float = PAPER_COEFFICIENTS["clustering"],
        mixture_weight: float = PAPER_COEFFICIENTS["mixture"],
        similarity_weight: float = 1.0,
        depict_weight: float = 1.0,
        activation: str = "elu",
    ):
        super().__init__()
        self.n_input = check_int("n_input", n_input, minimum=1)
        self.n_experts = check_int("n_experts", n_experts, minimum=2)
        self.code_size = check_int("code_size", code_size, minimum=1)
        hidden = list(hidden)
        self.hidden = tuple(check_int_list("hidden", hidden, minimum=1) if hidden else ())
        self.gate_depth = check_int("gate_depth", gate_depth, minimum=0)
        self.gate_width = check_int("gate_width", gate_width, minimum=1)
        self.gate_dropout = check_float("gate_dropout", gate_dropout, minimum=0.0, maximum=1.0,
                                        open_high=True)
        self.architecture = check_choice("architecture", architecture, ("mlp", "conv"))
        if architecture == "conv" and self.n_input != 784:
            raise ValueError(f"architecture='conv' needs n_input=784 (28x28 images), got {n_input}")
        self.knn_k = check_int("knn_k", knn_k, minimum=1)
        self.similarity_mode = check_choice("similarity_mode", similarity_mode,
                                            ("knn", "threshold", "components"))
        self.similarity_threshold = check_float("similarity_threshold", similarity_threshold,
                                                minimum=0.0, open_low=True)
        weights = {
            "reconstruction_weight": reconstruction_weight,
            "clustering_weight": clustering_weight,
            "mixture_weight": mixture_weight,
            "similarity_weight": similarity_weight,
            "depict_weight": depict_weight,
        }
        for name, value in weights.items():
            setattr(self, name, check_float(name, value, minimum=0.0))
        make_activation(activation)  # validates the name before any layer is built
        self.activation = activation

        if architecture == "conv":
            self.encoder = _ConvEncoder(self.code_size)
            self.experts = nn.ModuleList(_ConvExpert(self.code_size) for _ in range(self.n_experts))
        else:
            self.encoder = mlp([self.n_input, *self.hidden, self.code_size], activation)
            self.experts = nn.ModuleList(
                mlp([self.code_size, *self.hidden[::-1], self.n_input], activation)
                for _ in range(self.n_experts)
            )
        self.gate = mlp([self.code_size, *[self.gate_width] * self.gate_depth, self.n_experts],
                        activation)
        xavier_init_(self)
        # cluster centres of Eq. 6 over a data set, set by `update_means` (used by `generate`)
        self.register_buffer("means_", torch.zeros(self.n_experts, self.code_size))
        self.register_buffer("counts_", torch.zeros(self.n_experts))

    # ----------------------------------------------------------------------- forward pieces
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent codes ``z`` of ``x`` (deterministic)."""
        return self.encoder(x)

    def gate_probabilities(self, z: torch.Tensor, noisy: bool = False) -> torch.Tensor:
        """Cluster probabilities ``p(k | z)``; ``noisy=True`` applies dropout after each layer."""
        h = z
        for layer in self.gate:
            h = layer(h)
            if noisy and not isinstance(layer, nn.Linear) and self.gate_dropout > 0:
                h = F.dropout(h, self.gate_dropout, training=True)
        return F.softmax(h, dim=-1)

    def expert_logits(self, z: torch.Tensor, expert: torch.Tensor | int) -> torch.Tensor:
        """Return decoder logits of ``z``, each row by its expert (int or one int per row)."""
        if isinstance(expert, int):
            check_int("expert", expert, minimum=0, maximum=self.n_experts - 1)
            return self.experts[expert](z)
        expert = torch.as_tensor(expert, device=z.device)
        out = z.new_empty(z.shape[0], self.n_input)
        # only the experts that receive samples run, each on its own samples
        for k in torch.unique(expert).tolist():
            rows = expert == k
            out[rows] = self.experts[k](z[rows])
        return out

    def similarity_matrix(self, x: torch.Tensor, projection: torch.Tensor | None) -> torch.Tensor:
        """Build the similarity ``S`` of a batch from its projection (or from ``x``).

        ``similarity_mode`` picks :func:`knn_similarity` (``"knn"``) or
        :func:`threshold_similarity` (``"threshold"``; ``"components"`` closes it transitively).
        """
        source = x if projection is None else projection
        if source.shape[0] != x.shape[0]:
            raise ValueError(
                f"projection has {source.shape[0]} rows but the batch has {x.shape[0]} samples"
            )
        source = source.reshape(source.shape[0], -1)
        if self.similarity_mode == "knn":
            return knn_similarity(source, self.knn_k)
        return threshold_similarity(source, self.similarity_threshold,
                                    components=self.similarity_mode == "components")

    # ----------------------------------------------------------------------- protocol
    def loss(
        self,
        x: torch.Tensor,
        projection: torch.Tensor | None = None,
        *,
        similarity: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Loss terms of a batch by name (paper 002, Eqs. 3–11); ``"loss"`` is the total.

        Parameters
        ----------
        x : torch.Tensor of shape (n_samples, n_input)
            Data in [0, 1].
        projection : torch.Tensor of shape (n_samples, n_components), optional
            Per-sample projection from which the kNN similarity matrix is built; ``x`` itself
            when omitted.
        similarity : torch.Tensor of shape (n_samples, n_samples), optional
            A precomputed similarity matrix (overrides ``projection``).

        Returns
        -------
        dict of str to torch.Tensor
            ``loss``, ``reconstruction``, ``mixture_kl``, ``similarity``, ``depict``,
            ``clustering`` (all scalars).
        """
        if x.ndim != 2 or x.shape[1] != self.n_input:
            raise ValueError(f"x must have shape (n_samples, {self.n_input}), got {tuple(x.shape)}")
        n = x.shape[0]
        if similarity is None:
            if self.similarity_mode == "knn" and self.knn_k >= n:
                raise ValueError(
                    f"knn_k={self.knn_k} must be smaller than the batch size ({n} samples); "
                    "use a larger batch_size or a smaller knn_k"
                )
            S = self.similarity_matrix(x, projection)
        else:
            S = similarity
            if S.ndim != 2 or tuple(S.shape) != (n, n):
                raise ValueError(
                    f"similarity must have shape ({n}, {n}) for a batch of {n} samples, "
                    f"got {tuple(S.shape)}"
                )
        z = self.encode(x)
        p = self.gate_probabilities(z)
        p_noisy = self.gate_probabilities(z, noisy=True)
        logits = self.expert_logits(z, p.argmax(dim=1))
        reconstruction = bernoulli_nll(logits, x).mean() / self.n_input
        kl = mixture_kl(z, p)
        sim = similarity_loss(p, S)
        dep = depict_loss(p, p_noisy)
        clustering = self.similarity_weight * sim + self.depict_weight * dep
        total = (
            self.reconstruction_weight * reconstruction
            + self.mixture_weight * kl
            + self.clustering_weight * clustering
        )
        return {
            "loss": total,
            "reconstruction": reconstruction,
            "mixture_kl": kl,
            "similarity": sim,
            "depict": dep,
            "clustering": clustering,
        }

    # ----------------------------------------------------------------------- inference
    def _batched(self, X, fn, batch_size: int = 2048) -> np.ndarray:
        return apply_batched(self, X, fn, batch_size)

    def transform(self, X, batch_size: int = 2048) -> np.ndarray:
        """Codes ``z`` of an array ``X`` (numpy in, numpy out, eval mode)."""
        return self._batched(X, self.encode, batch_size)

    def predict_proba(self, X, batch_size: int = 2048) -> np.ndarray:
        """Gate probabilities ``p(k | z(x))`` of an array ``X``, shape (n_samples, n_experts)."""
        return self._batched(X, lambda x: self.gate_probabilities(self.encode(x)), batch_size)

    def predict(self, X, batch_size: int = 2048) -> np.ndarray:
        """Gate clusters (argmax expert) of an array ``X``."""
        return self.predict_proba(X, batch_size).argmax(axis=1)

    def reconstruct(self, X, batch_size: int = 2048) -> np.ndarray:
        """Reconstructions of ``X`` by each sample's argmax expert, in [0, 1]."""

        def fn(x):
            z = self.encode(x)
            return torch.sigmoid(self.expert_logits(z, self.gate_probabilities(z).argmax(1)))

        return self._batched(X, fn, batch_size)

    @torch.no_grad()
    def update_means(self, X, batch_size: int = 2048) -> np.ndarray:
        """Store the cluster centres of Eq. 6 over the whole array ``X`` in ``means_``.

        Returns
        -------
        numpy.ndarray of shape (n_experts, code_size)
        """
        z = torch.as_tensor(self.transform(X, batch_size))
        p = torch.as_tensor(self._batched(z, lambda v: self.gate_probabilities(v), batch_size))
        means, counts = cluster_means(z, p)
        self.means_.copy_(means.to(self.means_))
        self.counts_.copy_(counts.to(self.counts_))
        return means.numpy()

    @torch.no_grad()
    def generate(
        self, n_per_expert: int, experts: Sequence[int] | None = None, seed: int = 0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sample ``z ~ N(mu_k, I)`` for each expert ``k`` and decode it with expert ``k``.

        Call :meth:`update_means` first (the centres ``mu_k`` of Eq. 6).

        Parameters
        ----------
        n_per_expert : int
            Samples per component.
        experts : sequence of int, optional
            Which components; default those with at least one sample in the last
            :meth:`update_means`.
        seed : int
            Seed of the latent draws.

        Returns
        -------
        images : numpy.ndarray of shape (n_experts_used * n_per_expert, n_input)
            Decoded samples in [0, 1].
        component : numpy.ndarray of int
            Component (expert) each sample was drawn from.
        gated : numpy.ndarray of int
            Expert the gate assigns to each latent sample (agreement with ``component`` says
            whether the sample lies in its component's region).
        """
        n_per_expert = check_int("n_per_expert", n_per_expert, minimum=1)
        if float(self.counts_.sum()) == 0:
            raise RuntimeError("no cluster means yet: call update_means(X) before generate")
        if experts is None:
            experts = torch.nonzero(self.counts_ > 0).ravel().tolist()
        experts = [check_int("experts[i]", k, minimum=0, maximum=self.n_experts - 1)
                   for k in experts]
        gen = torch.Generator().manual_seed(int(seed))
        was_training = self.training
        self.eval()
        device = self.means_.device
        images, comps, gated = [], [], []
        try:
            for k in experts:
                eps = torch.randn(n_per_expert, self.code_size, generator=gen).to(device)
                z = self.means_[k] + eps
                images.append(torch.sigmoid(self.experts[k](z)).cpu())
                gated.append(self.gate_probabilities(z).argmax(1).cpu())
                comps.append(torch.full((n_per_expert,), k))
        finally:
            self.train(was_training)
        return torch.cat(images).numpy(), torch.cat(comps).numpy(), torch.cat(gated).numpy()
