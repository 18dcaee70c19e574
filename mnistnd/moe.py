"""Experiments of the MoE-Sim-VAE chapter (paper 002): training, separation, generation, GMM study.

* :func:`similarity_projection`: the per-sample projection (UMAP or PCA) from which each batch's
  kNN similarity matrix is built inside :meth:`mnistnd.models.MoESimVAE.loss`.
* :func:`train_moe`: builds a :class:`~mnistnd.models.MoESimVAE` and trains it with
  :func:`mnistnd.training.fit` on ``(X, projection)``; :func:`train_vade` does the same for the
  baseline :class:`~mnistnd.models.VaDE` (autoencoder pretraining, GMM prior from its codes).
* :func:`cluster_scores`: NMI (scikit-learn), clustering accuracy and F-measure
  (:mod:`mnistnd.metrics`) of a labeling against reference classes.
* :func:`mmd2` and :func:`mmd_matrix`: the unbiased MMD^2 estimate with an RBF kernel (paper 002,
  SI A.2, Eq. 14) between clusters of the latent space; :func:`separation` summarises it.
* :func:`generation_confusion`: sample each mixture component, decode with its expert, classify
  the images with a classifier trained on real data (:func:`train_digit_classifier`).
  :func:`generation_sweep` does it for either model over VaDE's posterior thresholds phi (SI
  Figs. B.4-B.6), and :func:`latent_draws` samples the components' codes for their MMD (B.3).
* :func:`make_gaussian_mixture` and :func:`cluster_number_study`: synthetic Gaussian mixtures with
  random parameters, and how many experts the model really uses for each true number of
  components (paper 002, SI B.1), with :func:`check_study_sizes` refusing fewer experts than
  components before any training; :func:`expert_search` trains a grid of expert counts per data
  set and :func:`select_expert_count` reads the number of clusters off the runs;
  :func:`similarity_probe` shows why the similarity matrix decides that number.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from mnistnd._checks import check_choice, check_float, check_int, check_int_list, check_matrix
from mnistnd.metrics import clustering_accuracy, contingency, f_measure, nmi

__all__ = [
    "PAPER_THRESHOLDS",
    "check_study_sizes",
    "cluster_number_study",
    "cluster_scores",
    "expert_search",
    "experts_used",
    "generation_confusion",
    "generation_sweep",
    "latent_draws",
    "make_gaussian_mixture",
    "mmd2",
    "pbmc_input",
    "mmd_matrix",
    "select_expert_count",
    "separation",
    "similarity_probe",
    "sweep_summary",
    "similarity_projection",
    "train_digit_classifier",
    "train_moe",
    "train_vade",
]


# --------------------------------------------------------------------------- projection
def similarity_projection(
    X, method: str = "umap", n_components: int = 2, seed: int = 0, n_pca: int = 50
) -> np.ndarray:
    """Compute the per-sample projection in which each batch's kNN similarity is computed.

    Paper 002 uses a UMAP projection of MNIST; ``"pca"`` is a cheaper stand-in.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    method : {"umap", "pca"}
        ``"umap"``: UMAP (``n_components``) of the first ``n_pca`` principal components;
        ``"pca"``: the first ``n_components`` principal components.
    n_components : int
        Output dimension.
    seed : int
        Random state of PCA/UMAP.
    n_pca : int
        Principal components fed to UMAP (speed).

    Returns
    -------
    numpy.ndarray of float32, shape (n_samples, n_components)
    """
    check_choice("method", method, ("umap", "pca"))
    n_components = check_int("n_components", n_components, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    n_pca = check_int("n_pca", n_pca, minimum=1)
    X = check_matrix("X", X, min_samples=3, dtype=np.float32)
    from sklearn.decomposition import PCA

    if method == "pca":
        k = min(n_components, *X.shape)
        return PCA(k, random_state=seed).fit_transform(X).astype(np.float32)
    import umap

    Xp = PCA(min(n_pca, *X.shape), random_state=seed).fit_transform(X) if X.shape[1] > n_pca else X
    reducer = umap.UMAP(n_components=n_components, random_state=seed, n_jobs=1)
    return reducer.fit_transform(Xp).astype(np.float32)


# --------------------------------------------------------------------------- training
def _check_unit_data(X) -> np.ndarray:
    """``X`` as float32 after checking it lies in [0, 1] (both models use a BCE loss)."""
    X = check_matrix("X", X, min_samples=2, dtype=np.float32)
    if X.min() < 0 or X.max() > 1:
        raise ValueError(f"X must be scaled to [0, 1] (BCE loss), got range [{X.min()}, {X.max()}]")
    return X


def _split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded training and validation indices; ``round(val_fraction * n)`` go to validation."""
    val_fraction = check_float("val_fraction", val_fraction, minimum=0.0, maximum=1.0,
                               open_high=True)
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(val_fraction * n))
    return order[n_val:], order[:n_val]


def train_moe(
    X,
    projection=None,
    *,
    n_experts: int = 10,
    code_size: int = 10,
    epochs: int = 20,
    batch_size: int = 128,
    lr: float = 1e-3,
    knn_k: int = 10,
    seed: int = 0,
    device: str = "auto",
    val_fraction: float = 0.1,
    patience: int | None = None,
    checkpoint_dir=None,
    progress: bool = True,
    num_threads: int | None = None,
    **model_kwargs,
):
    """Build a :class:`~mnistnd.models.MoESimVAE` and train it with :func:`mnistnd.training.fit`.

    The data are split (seeded) into training and validation parts; a few training samples are
    left out when needed so that no batch holds ``knn_k`` samples or fewer (the kNN similarity
    needs ``knn_k`` neighbours per sample).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Data in [0, 1].
    projection : array-like of shape (n_samples, n_components), optional
        Per-sample projection for the similarity matrix (:func:`similarity_projection`); ``X``
        itself when omitted.
    n_experts, code_size, knn_k
        Model parameters (see :class:`~mnistnd.models.MoESimVAE`).
    epochs, batch_size, lr, seed, device, patience, checkpoint_dir, progress, num_threads
        Passed to :func:`mnistnd.training.fit`.
    val_fraction : float
        Held-out fraction for the validation loss, in [0, 1).
    **model_kwargs
        Further :class:`~mnistnd.models.MoESimVAE` arguments (gate size, loss weights ...).

    Returns
    -------
    model : MoESimVAE
        Trained, in eval mode, with cluster centres over ``X`` (:meth:`update_means`).
    history : pandas.DataFrame
        :func:`~mnistnd.training.fit`'s history.
    """
    import torch

    from mnistnd.models.moe_sim_vae import MoESimVAE
    from mnistnd.training import fit

    X = _check_unit_data(X)
    n = X.shape[0]
    if projection is not None:
        projection = check_matrix("projection", projection, dtype=np.float32)
        if projection.shape[0] != n:
            raise ValueError(f"projection has {projection.shape[0]} rows but X has {n}")
    batch_size = check_int("batch_size", batch_size, minimum=2)
    knn_k = check_int("knn_k", knn_k, minimum=1)
    if knn_k >= batch_size:
        raise ValueError(f"knn_k={knn_k} must be smaller than batch_size={batch_size}")
    seed = check_int("seed", seed, minimum=0)
    train_idx, val_idx = _split(n, val_fraction, seed)
    n_val = len(val_idx)
    last = len(train_idx) % batch_size
    if 0 < last <= knn_k:  # a last batch this small cannot hold knn_k neighbours per sample
        train_idx = train_idx[: len(train_idx) - last]
    if len(train_idx) <= knn_k:
        raise ValueError(f"{len(train_idx)} training samples are too few for knn_k={knn_k}")
    if 0 < n_val <= knn_k:
        raise ValueError(f"{n_val} validation samples are too few for knn_k={knn_k}; "
                         "raise val_fraction or set it to 0")

    def arrays(idx):
        return (X[idx],) if projection is None else (X[idx], projection[idx])

    torch.manual_seed(seed)  # initial weights
    model = MoESimVAE(n_input=X.shape[1], n_experts=n_experts, code_size=code_size,
                      knn_k=knn_k, **model_kwargs)
    history = fit(
        model, arrays(train_idx), X_val=arrays(val_idx) if n_val else None, val_fraction=0.0,
        epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device,
        patience=patience, checkpoint_dir=checkpoint_dir, progress=progress,
        num_threads=num_threads,
    )
    model.update_means(X)
    return model, history


def train_vade(
    X,
    *,
    n_clusters: int = 10,
    n_latent: int = 10,
    hidden: Sequence[int] = (500, 500, 2000),
    pretrain_epochs: int = 10,
    epochs: int = 20,
    batch_size: int = 100,
    lr: float = 2e-3,
    seed: int = 0,
    device: str = "auto",
    val_fraction: float = 0.1,
    patience: int | None = None,
    checkpoint_dir=None,
    progress: bool = True,
    num_threads: int | None = None,
    **model_kwargs,
):
    """Build a :class:`~mnistnd.models.VaDE`, pretrain it, and train it on its negative ELBO.

    The VaDE counterpart of :func:`train_moe` (same seeded split). As in the VaDE paper, the
    encoder mean and decoder are first trained as an autoencoder and the mixture prior is set to
    a diagonal GMM of the training part's pretrained codes (:meth:`~mnistnd.models.VaDE.pretrain`);
    then networks and prior are trained together (:func:`mnistnd.training.fit`). The model is
    built first, so bad model arguments (``n_clusters`` below 2 ...) raise before any training.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Data in [0, 1].
    n_clusters, n_latent, hidden
        Model size (see :class:`~mnistnd.models.VaDE`; the paper: 10, 10, (500, 500, 2000)).
    pretrain_epochs : int
        Autoencoder epochs before the GMM initialisation (>= 1).
    epochs, batch_size, lr, seed, device, patience, progress, num_threads
        Passed to both stages of :func:`mnistnd.training.fit` (the VaDE paper: batch 100,
        learning rate 0.002). ``seed`` also seeds the weights and the GMM.
    val_fraction : float
        Held-out fraction for the validation loss, in [0, 1).
    checkpoint_dir : path, optional
        Checkpoints of the two stages go to its ``pretrain`` and ``train`` subfolders.
    **model_kwargs
        Further :class:`~mnistnd.models.VaDE` arguments (``activation``).

    Returns
    -------
    model : VaDE
        Trained, in eval mode.
    history : pandas.DataFrame
        Both stages' :func:`~mnistnd.training.fit` histories, one after the other, with a
        ``stage`` column (``"pretrain"`` or ``"train"``).
    """
    from pathlib import Path

    import torch

    from mnistnd.models.vade import VaDE
    from mnistnd.training import fit

    X = _check_unit_data(X)
    seed = check_int("seed", seed, minimum=0)
    train_idx, val_idx = _split(X.shape[0], val_fraction, seed)
    torch.manual_seed(seed)  # initial weights
    model = VaDE(n_input=X.shape[1], n_latent=n_latent, n_clusters=n_clusters, hidden=hidden,
                 random_state=seed, **model_kwargs)
    pretrain_epochs = check_int("pretrain_epochs", pretrain_epochs, minimum=1)
    X_val = X[val_idx] if len(val_idx) else None
    folders = {stage: None if checkpoint_dir is None else Path(checkpoint_dir) / stage
               for stage in ("pretrain", "train")}
    options = dict(X_val=X_val, val_fraction=0.0, batch_size=batch_size, lr=lr, seed=seed,
                   device=device, patience=patience, progress=progress, num_threads=num_threads)
    pre = model.pretrain(X[train_idx], epochs=pretrain_epochs,
                         checkpoint_dir=folders["pretrain"], **options)
    main = fit(model, X[train_idx], epochs=epochs, checkpoint_dir=folders["train"], **options)
    model.eval()
    history = pd.concat([pre.assign(stage="pretrain"), main.assign(stage="train")],
                        ignore_index=True)
    return model, history


# --------------------------------------------------------------------------- scores
def cluster_scores(labels_true, labels_pred) -> dict[str, float]:
    """NMI (scikit-learn), clustering accuracy (Hungarian) and F-measure (paper 002, SI A.1).

    Returns
    -------
    dict
        ``{"NMI": ..., "accuracy": ..., "F-measure": ..., "n_clusters": ...}``.
    """
    labels_true = np.asarray(labels_true)
    labels_pred = np.asarray(labels_pred)
    return {
        "NMI": nmi(labels_true, labels_pred),
        "accuracy": clustering_accuracy(labels_true, labels_pred),
        "F-measure": f_measure(labels_true, labels_pred),
        "n_clusters": int(len(np.unique(labels_pred))),
    }


def experts_used(labels, n_experts: int, min_fraction: float = 0.01) -> int:
    """Count the experts that receive at least ``min_fraction`` of the samples.

    Parameters
    ----------
    labels : array-like of int
        Gate assignments (argmax expert per sample).
    n_experts : int
        Number of experts of the model.
    min_fraction : float
        Share of the samples an expert must get to count as used, in [0, 1).

    Returns
    -------
    int
    """
    labels = np.asarray(labels)
    n_experts = check_int("n_experts", n_experts, minimum=1)
    min_fraction = check_float("min_fraction", min_fraction, minimum=0.0, maximum=1.0,
                               open_high=True)
    if labels.size == 0:
        raise ValueError("labels must not be empty")
    if labels.min() < 0 or labels.max() >= n_experts:
        raise ValueError(f"labels must lie in [0, {n_experts - 1}]")
    share = np.bincount(labels.astype(np.int64), minlength=n_experts) / labels.size
    return int(np.sum((share > 0) & (share >= min_fraction)))


# --------------------------------------------------------------------------- MMD
def _rbf(A: np.ndarray, B: np.ndarray, bandwidth: float) -> np.ndarray:
    d2 = np.sum(A**2, 1)[:, None] + np.sum(B**2, 1)[None, :] - 2.0 * A @ B.T
    return np.exp(-np.maximum(d2, 0.0) / (2.0 * bandwidth**2))


def mmd2(X, Y, bandwidth: float) -> float:
    """Unbiased MMD^2 estimate with an RBF kernel (paper 002, SI A.2, Eq. 14; Gretton et al.).

    ``mean_{i != i'} k(x_i, x_i') + mean_{j != j'} k(y_j, y_j') - 2 mean_{i, j} k(x_i, y_j)``
    with ``k(a, b) = exp(-|a - b|^2 / (2 bandwidth^2))``. About zero (and possibly negative) when
    both samples come from the same distribution.

    Parameters
    ----------
    X : array-like of shape (m, d)
    Y : array-like of shape (n, d)
    bandwidth : float
        Kernel width (> 0); :func:`mmd_matrix` uses the median pairwise distance.

    Returns
    -------
    float
    """
    X = check_matrix("X", X, min_samples=2)
    Y = check_matrix("Y", Y, min_samples=2)
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"X has {X.shape[1]} features but Y has {Y.shape[1]}")
    bandwidth = check_float("bandwidth", bandwidth, minimum=0.0, open_low=True)
    m, n = len(X), len(Y)
    kxx = _rbf(X, X, bandwidth)
    kyy = _rbf(Y, Y, bandwidth)
    kxy = _rbf(X, Y, bandwidth)
    term_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    term_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(term_x + term_y - 2.0 * kxy.mean())


def mmd_matrix(Z, labels, n_per_group: int = 200, seed: int = 0, bandwidth: float | None = None):
    """MMD^2 between every pair of groups of ``Z`` (e.g. digits in the latent space).

    Each group contributes two disjoint random samples of ``n_per_group`` points (fewer if the
    group is small): the diagonal compares a group's two halves (about 0), the off-diagonal
    entries compare the first halves of two groups.

    Parameters
    ----------
    Z : array-like of shape (n_samples, d)
    labels : array-like of shape (n_samples,)
        Group of each point.
    n_per_group : int
        Points drawn per half.
    seed : int
        Seed of the draws.
    bandwidth : float, optional
        RBF width; default the median pairwise distance of the drawn points.

    Returns
    -------
    pandas.DataFrame
        Square, indexed and labelled by the sorted groups; ``attrs["bandwidth"]``.
    """
    Z = check_matrix("Z", Z, min_samples=4)
    labels = np.asarray(labels)
    if labels.shape != (Z.shape[0],):
        raise ValueError(f"labels must have shape ({Z.shape[0]},), got {labels.shape}")
    n_per_group = check_int("n_per_group", n_per_group, minimum=2)
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    groups = np.unique(labels)
    halves = {}
    for g in groups:
        idx = rng.permutation(np.flatnonzero(labels == g))
        m = min(n_per_group, len(idx) // 2)
        if m < 2:
            continue
        halves[g] = (Z[idx[:m]], Z[idx[m : 2 * m]])
    if len(halves) < 2:
        raise ValueError("need at least two groups with 4 or more points each")
    if bandwidth is None:
        pool = np.concatenate([a for a, _ in halves.values()])
        sub = pool[rng.choice(len(pool), min(len(pool), 1000), replace=False)]
        d2 = np.sum(sub**2, 1)[:, None] + np.sum(sub**2, 1)[None, :] - 2 * sub @ sub.T
        bandwidth = float(np.sqrt(np.median(np.maximum(d2[np.triu_indices(len(sub), 1)], 0))))
        bandwidth = bandwidth if bandwidth > 0 else 1.0
    keys = list(halves)
    out = np.zeros((len(keys), len(keys)))
    for i, a in enumerate(keys):
        for j, b in enumerate(keys):
            if i == j:
                out[i, j] = mmd2(halves[a][0], halves[a][1], bandwidth)
            elif j > i:
                out[i, j] = out[j, i] = mmd2(halves[a][0], halves[b][0], bandwidth)
    frame = pd.DataFrame(out, index=keys, columns=keys)
    frame.attrs["bandwidth"] = bandwidth
    return frame


def separation(mmd: pd.DataFrame) -> dict[str, float]:
    """Mean within-group (diagonal) and between-group (off-diagonal) MMD^2 of :func:`mmd_matrix`."""
    values = np.asarray(mmd, dtype=float)
    off = ~np.eye(len(values), dtype=bool)
    return {"within": float(np.mean(np.diag(values))), "between": float(np.mean(values[off]))}


# --------------------------------------------------------------------------- generation
def train_digit_classifier(X, y, seed: int = 0, max_iter: int = 100):
    """Fit a multinomial logistic regression on real images (the judge of generated digits).

    ``max_iter`` caps the lbfgs iterations (speed); the convergence warning of a capped run is
    silenced, so check the classifier's accuracy on held-out real images.

    Returns
    -------
    sklearn.linear_model.LogisticRegression
        Fitted classifier.
    """
    from sklearn.linear_model import LogisticRegression

    X = check_matrix("X", X, min_samples=2)
    y = np.asarray(y)
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},), got {y.shape}")
    clf = LogisticRegression(max_iter=check_int("max_iter", max_iter, minimum=1),
                             random_state=check_int("seed", seed, minimum=0))
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        # a capped lbfgs run is the point (speed); its test accuracy is what the chapter reports
        warnings.simplefilter("ignore", ConvergenceWarning)
        return clf.fit(X, y)


def component_to_class(labels_true, labels_pred) -> dict[int, int]:
    """Map each cluster to the class it best matches (Hungarian on the contingency table).

    Clusters left unmatched (more clusters than classes) get their majority class.
    """
    from scipy.optimize import linear_sum_assignment

    classes = np.unique(labels_true)
    clusters = np.unique(labels_pred)
    table = contingency(labels_true, labels_pred)  # classes x clusters
    rows, cols = linear_sum_assignment(-table)
    mapping = {int(clusters[c]): classes[r].item() for r, c in zip(rows, cols, strict=True)}
    for j, c in enumerate(clusters):
        mapping.setdefault(int(c), classes[int(np.argmax(table[:, j]))].item())
    return mapping


def generation_confusion(model, classifier, mapping: dict, n_per_expert: int = 500, seed: int = 0):
    """Generate from each mixture component with its expert and classify the images.

    Parameters
    ----------
    model : MoESimVAE
        Trained model with cluster centres (:meth:`~mnistnd.models.MoESimVAE.update_means`).
    classifier
        Fitted scikit-learn classifier on real images (:func:`train_digit_classifier`).
    mapping : dict
        Component -> class it represents (:func:`component_to_class` on the training data).
    n_per_expert : int
        Images per component.
    seed : int
        Seed of the latent draws.

    Returns
    -------
    dict
        ``images``, ``component``, ``target`` (mapped class), ``predicted`` (classifier),
        ``gated`` (gate's expert for each latent draw), ``accuracy`` (predicted == target),
        ``gate_agreement`` (gated == component) and ``confusion`` (DataFrame, target x predicted).
    """
    components = sorted(mapping)
    images, comp, gated = model.generate(n_per_expert, experts=components, seed=seed)
    target = np.array([mapping[int(c)] for c in comp])
    predicted = classifier.predict(images)
    confusion = _confusion(target, predicted)
    return {
        "images": images, "component": comp, "target": target, "predicted": predicted,
        "gated": gated, "accuracy": float(np.mean(predicted == target)),
        "gate_agreement": float(np.mean(gated == comp)), "confusion": confusion,
    }


def _confusion(target, predicted, classes=()) -> pd.DataFrame:
    """Count requested (rows) against classified (columns) classes, every class on both.

    ``classes`` are shown even when absent from both (e.g. no image generated for them).
    """
    target, predicted = np.asarray(target), np.asarray(predicted)
    parts = [target, predicted] + ([np.asarray(classes)] if len(classes) else [])
    classes = np.unique(np.concatenate(parts))
    table = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(table, (np.searchsorted(classes, target), np.searchsorted(classes, predicted)), 1)
    return pd.DataFrame(table, index=pd.Index(classes, name="requested"),
                        columns=pd.Index(classes, name="classified"))


#: Posterior thresholds phi of paper 002 (SI Figs. B.4 and B.6): VaDE keeps a latent draw of
#: component c only when p(c | z) > phi; 0.999 is the VaDE authors' default.
PAPER_THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.999)


def _check_generator(model) -> bool:
    """Return ``True`` for a VaDE, ``False`` for a MoE-Sim-VAE; ``TypeError`` otherwise."""
    from mnistnd.models.moe_sim_vae import MoESimVAE
    from mnistnd.models.vade import VaDE

    if isinstance(model, VaDE):
        return True
    if isinstance(model, MoESimVAE):
        return False
    raise TypeError(f"model must be a VaDE or a MoESimVAE, got {type(model).__name__}")


def _component_codes(model, is_vade: bool, component: int, n: int, threshold: float, seed: int,
                     max_draws: int | None):
    """``(z, n_drawn)``: VaDE draws above its posterior threshold, MoE draws around ``mu_k``."""
    import torch

    if is_vade:
        return model.sample_latent(n, component, threshold=threshold, seed=seed,
                                   max_draws=max_draws)
    gen = torch.Generator().manual_seed(seed)  # as MoESimVAE.generate: z ~ N(mu_k, I)
    eps = torch.randn(n, model.code_size, generator=gen).to(model.means_.device)
    return model.means_[component] + eps, n


def latent_draws(model, n_per_component: int, *, components: Sequence[int] | None = None,
                 threshold: float = 0.0, seed: int = 0, max_draws: int | None = None):
    """Latent codes sampled from each mixture component of a VaDE or a MoE-Sim-VAE.

    A VaDE draws from its prior component and keeps a draw only when ``p(c | z) > threshold``
    (:meth:`~mnistnd.models.VaDE.sample_latent`); a MoE-Sim-VAE draws ``z ~ N(mu_k, I)`` around
    its cluster centres and never rejects a draw (paper 002 thresholds only VaDE). Paper 002
    (SI Fig. B.3) compares the components' draws by their MMD (:func:`mmd_matrix`), VaDE's at
    ``threshold = 0.8``.

    Parameters
    ----------
    model : VaDE or MoESimVAE
        Trained model (a MoE-Sim-VAE with :meth:`~mnistnd.models.MoESimVAE.update_means` done).
    n_per_component : int
        Codes per component (fewer for a VaDE component whose draws rarely pass ``threshold``).
    components : sequence of int, optional
        Which components; default all (VaDE) or those with samples (MoE-Sim-VAE).
    threshold : float
        VaDE's posterior threshold, in [0, 1); not used for a MoE-Sim-VAE.
    seed : int
        Seed of the draws (component ``i`` in the list uses ``seed + i``).
    max_draws : int, optional
        VaDE: draws allowed per component (default ``1000 * n_per_component``).

    Returns
    -------
    Z : numpy.ndarray of shape (n_codes, n_latent)
    labels : numpy.ndarray of int
        Component of each code.
    """
    is_vade = _check_generator(model)
    n = check_int("n_per_component", n_per_component, minimum=1)
    threshold = check_float("threshold", threshold, minimum=0.0, maximum=1.0, open_high=True)
    seed = check_int("seed", seed, minimum=0)
    components = _components(model, is_vade, components)
    Z, labels = [], []
    for i, k in enumerate(components):
        z, _ = _component_codes(model, is_vade, k, n, threshold, seed + i, max_draws)
        Z.append(z.detach().cpu().numpy())
        labels.append(np.full(len(z), k))
    return np.concatenate(Z), np.concatenate(labels)


def _components(model, is_vade: bool, components) -> list[int]:
    """Check the requested components against the model (default: every usable one)."""
    n_total = model.n_clusters if is_vade else model.n_experts
    if not is_vade and float(model.counts_.sum()) == 0:
        raise RuntimeError("no cluster means yet: call model.update_means(X) first")
    if components is None:
        if is_vade:
            return list(range(n_total))
        return [int(k) for k in np.flatnonzero(model.counts_.cpu().numpy() > 0)]
    components = check_int_list("components", list(components), minimum=0)
    if max(components) >= n_total:
        raise ValueError(f"components must lie in [0, {n_total - 1}], got {components}")
    return components


def generation_sweep(model, classifier, mapping: dict,
                     thresholds: Sequence[float] = PAPER_THRESHOLDS, n_per_component: int = 500,
                     seed: int = 0, max_draws: int | None = None):
    """Score generation per component over posterior thresholds phi (paper 002, SI Fig. B.4).

    For each threshold ``phi`` and each component ``k`` of ``mapping``, draws
    ``n_per_component`` latent codes of ``k`` and decodes them: a VaDE keeps only draws with
    ``p(k | z) > phi`` and decodes them with its single decoder; a MoE-Sim-VAE, which the paper
    does not threshold, draws ``z ~ N(mu_k, I)`` and decodes with expert ``k``, so each ``phi``
    is an independent repetition of the same generation (as in the paper). The images are
    judged twice: by ``classifier`` (trained on real images) and by the model's own clustering
    of the images mapped to classes with ``mapping`` (the paper's judge); a cluster absent from
    ``mapping`` counts as wrong. Images are not kept, so ``n_per_component`` can be large.

    Parameters
    ----------
    model : VaDE or MoESimVAE
        Trained model (a MoE-Sim-VAE with :meth:`~mnistnd.models.MoESimVAE.update_means` done).
    classifier
        Fitted scikit-learn classifier on real images (:func:`train_digit_classifier`).
    mapping : dict
        Component -> class it represents (:func:`component_to_class` on training data).
    thresholds : sequence of float
        Posterior thresholds, each in [0, 1) (default: the paper's 0, 0.1, ..., 0.9, 0.999).
    n_per_component : int
        Images per component and threshold.
    seed : int
        Seed of all draws (each threshold and component gets its own stream).
    max_draws : int, optional
        VaDE: draws allowed per component and threshold (default ``1000 * n_per_component``);
        a component whose draws rarely pass gets fewer images (``n_images``), none gives NaN.

    Returns
    -------
    scores : pandas.DataFrame
        One row per threshold and component: ``threshold``, ``component``, ``target``,
        ``n_images``, ``n_drawn`` (draws up to the last image kept), ``draws_per_image``,
        ``accuracy`` (classifier) and ``model_accuracy`` (the model's own clustering).
    confusion : dict of float to pandas.DataFrame
        Per threshold, requested class x class assigned by ``classifier`` (counts).
    """
    is_vade = _check_generator(model)
    if not isinstance(mapping, dict) or not mapping:
        raise ValueError("mapping must be a non-empty dict component -> class")
    components = _components(model, is_vade, sorted(mapping))
    if isinstance(thresholds, (str, bytes)) or not isinstance(thresholds, Sequence) or not len(
            thresholds):
        raise TypeError(f"thresholds must be a non-empty sequence of numbers, got {thresholds!r}")
    thresholds = [check_float(f"thresholds[{i}]", t, minimum=0.0, maximum=1.0, open_high=True)
                  for i, t in enumerate(thresholds)]
    n = check_int("n_per_component", n_per_component, minimum=1)
    seeds = np.random.default_rng(check_int("seed", seed, minimum=0)).integers(
        2**31, size=(len(thresholds), len(components)))
    rows, confusion = [], {}
    for i, phi in enumerate(thresholds):
        requested, assigned = [], []
        for j, k in enumerate(components):
            row = _judge_component(model, is_vade, classifier, mapping, k, n, phi,
                                   int(seeds[i, j]), max_draws)
            assigned.append(row.pop("assigned"))
            requested.append(np.full(len(assigned[-1]), mapping[k]))
            rows.append({"threshold": phi, **row})
        confusion[phi] = _confusion(np.concatenate(requested), np.concatenate(assigned),
                                    classes=list(mapping.values()))
    return pd.DataFrame(rows), confusion


def sweep_summary(scores: pd.DataFrame) -> pd.DataFrame:
    """Summarise :func:`generation_sweep` per threshold, over the components.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``threshold``: ``accuracy`` and ``own_clustering`` (means over the
        components of ``accuracy`` and ``model_accuracy``; a component without images is left
        out), ``draws_per_image`` (all draws over all images kept at that threshold).
    """
    missing = {"threshold", "accuracy", "model_accuracy", "n_drawn", "n_images"} - set(scores)
    if missing:
        raise ValueError(f"scores lacks the column(s) {sorted(missing)}; pass the scores of "
                         "generation_sweep")
    groups = scores.groupby("threshold", sort=True)
    totals = groups[["n_drawn", "n_images"]].sum()
    return pd.DataFrame({
        "accuracy": groups["accuracy"].mean(),
        "own_clustering": groups["model_accuracy"].mean(),
        "draws_per_image": totals["n_drawn"] / totals["n_images"].where(totals["n_images"] > 0),
    })


def _judge_component(model, is_vade, classifier, mapping, k, n, phi, seed, max_draws) -> dict:
    """Generate from component ``k`` at threshold ``phi`` and score the images (one row)."""
    import torch

    z, n_drawn = _component_codes(model, is_vade, k, n, phi, seed, max_draws)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            images = (model.decode(z) if is_vade else torch.sigmoid(model.experts[k](z)))
            images = images.cpu().numpy()
    finally:
        model.train(was_training)
    target, m = mapping[k], len(images)
    if m == 0:  # no draw passed the threshold
        return {"component": k, "target": target, "n_images": 0, "n_drawn": n_drawn,
                "draws_per_image": np.nan, "accuracy": np.nan, "model_accuracy": np.nan,
                "assigned": np.array([], dtype=np.asarray(list(mapping.values())).dtype)}
    assigned = classifier.predict(images)
    own = np.array([mapping.get(int(c)) == target for c in model.predict(images)])
    return {"component": k, "target": target, "n_images": m, "n_drawn": n_drawn,
            "draws_per_image": n_drawn / m, "accuracy": float(np.mean(assigned == target)),
            "model_accuracy": float(np.mean(own)), "assigned": assigned}


# --------------------------------------------------------------------------- PBMC
def pbmc_input(adata, n_top_genes: int | None = 2000) -> np.ndarray:
    """Log-normalised expression scaled to [0, 1] per gene, the MoE-Sim-VAE's PBMC input.

    The BCE reconstruction loss needs values in [0, 1] (paper 003 uses BCE on RNA-seq too), so
    each gene's ``log1p`` expression (``layers["lognorm"]`` of :func:`mnistnd.pbmc.preprocess`,
    non-negative) is divided by its maximum over the cells.

    Parameters
    ----------
    adata : anndata.AnnData
        Output of :func:`mnistnd.pbmc.preprocess` or :func:`mnistnd.pbmc.preprocess_bundled`.
    n_top_genes : int, optional
        Keep the genes with the largest ``var["vst_variance"]`` (all genes when ``None`` or
        when that ranking is absent).

    Returns
    -------
    numpy.ndarray of float32, shape (n_cells, n_genes)
    """
    if "lognorm" not in adata.layers:
        raise KeyError("adata.layers['lognorm'] is missing: pass the output of "
                       "mnistnd.pbmc.preprocess or preprocess_bundled")
    X = adata.layers["lognorm"]
    X = np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=np.float32)
    if n_top_genes is not None and "vst_variance" in adata.var:
        n_top_genes = check_int("n_top_genes", n_top_genes, minimum=2)
        order = np.argsort(-adata.var["vst_variance"].to_numpy(), kind="stable")[:n_top_genes]
        X = X[:, np.sort(order)]
    X = X - np.minimum(X.min(axis=0), 0.0)
    top = X.max(axis=0)
    X = X[:, top > 0] / top[top > 0]
    return X.astype(np.float32)


# --------------------------------------------------------------------------- synthetic GMM
def make_gaussian_mixture(
    n_components: int,
    n_samples: int = 2000,
    n_features: int = 10,
    seed: int = 0,
    separation: float = 8.0,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Sample a Gaussian mixture with random parameters, scaled to [0, 1] (paper 002, SI B.1).

    Means are uniform in a cube of side ``separation * n_components ** (1 / n_features)``;
    covariances ``A A^T / n_features + 0.1 I`` with ``A`` standard normal; weights from a
    Dirichlet(5, ..., 5). The data are then min-max scaled per feature (the BCE loss needs
    [0, 1]).

    Returns
    -------
    X : numpy.ndarray of float32, shape (n_samples, n_features)
    labels : numpy.ndarray of int64
        True component of each sample.
    params : dict
        ``means``, ``covariances``, ``weights`` (before scaling).
    """
    n_components = check_int("n_components", n_components, minimum=1)
    n_samples = check_int("n_samples", n_samples, minimum=n_components)
    n_features = check_int("n_features", n_features, minimum=1)
    separation = check_float("separation", separation, minimum=0.0, open_low=True)
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    side = separation * n_components ** (1.0 / n_features)
    means = rng.uniform(0.0, side, size=(n_components, n_features))
    A = rng.standard_normal((n_components, n_features, n_features))
    covs = A @ A.transpose(0, 2, 1) / n_features + 0.1 * np.eye(n_features)
    weights = rng.dirichlet(np.full(n_components, 5.0))
    labels = rng.choice(n_components, size=n_samples, p=weights)
    chol = np.linalg.cholesky(covs)
    noise = rng.standard_normal((n_samples, n_features))
    X = means[labels] + np.einsum("nij,nj->ni", chol[labels], noise)
    lo, hi = X.min(0), X.max(0)
    X = (X - lo) / np.where(hi > lo, hi - lo, 1.0)
    params = {"means": means, "covariances": covs, "weights": weights}
    return X.astype(np.float32), labels.astype(np.int64), params


def similarity_probe(
    projection,
    labels,
    X=None,
    *,
    knn_k: int = 10,
    threshold: float = 2.0,
    n_split: int = 20,
    seed: int = 0,
) -> pd.DataFrame:
    """How each similarity matrix of :class:`~mnistnd.models.MoESimVAE` sees one batch.

    For the kNN, the distance-threshold and the connected-components matrices of the batch
    (``projection``), reports the share of same-component pairs with ``S = 1`` and of
    different-component pairs with ``S = 1``, and the similarity loss (Eq. 7) of two one-hot
    gates: the true partition, and k-means with ``n_split`` clusters (components split over
    many experts). The matrix whose loss is lower for the true partition is the one under which
    the model can count the components.

    Parameters
    ----------
    projection : array-like of shape (n_samples, n_components)
        Per-sample coordinates of the batch (e.g. its rows of a 2-D UMAP).
    labels : array-like of shape (n_samples,)
        True components.
    X : array-like of shape (n_samples, n_features), optional
        Data on which k-means splits the batch (default: ``projection``).
    knn_k, threshold : int, float
        Settings of the kNN and threshold matrices.
    n_split : int
        Clusters of the over-split partition (e.g. the number of experts).
    seed : int
        Seed of k-means.

    Returns
    -------
    pandas.DataFrame
        One row per matrix.
    """
    import torch

    from mnistnd.clustering import cluster
    from mnistnd.models.moe_sim_vae import knn_similarity, similarity_loss, threshold_similarity

    P = check_matrix("projection", projection)
    _, y = np.unique(np.asarray(labels), return_inverse=True)
    if y.shape[0] != P.shape[0]:
        raise ValueError(f"labels has {y.shape[0]} entries but projection has {P.shape[0]} rows")
    X = P if X is None else check_matrix("X", X)
    if X.shape[0] != P.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but projection has {P.shape[0]}")
    n_split = check_int("n_split", n_split, minimum=2, maximum=P.shape[0])
    knn_k = check_int("knn_k", knn_k, minimum=1, maximum=P.shape[0] - 1)
    threshold = check_float("threshold", threshold, minimum=0.0, open_low=True)
    split = cluster(X, "kmeans", n_clusters=n_split, seed=seed)
    gates = {"true partition": y, f"k-means with {n_split}": split}
    same = y[:, None] == y[None, :]
    Pt = torch.as_tensor(P, dtype=torch.float32)
    matrices = {
        f"kNN (k = {knn_k})": knn_similarity(Pt, knn_k),
        f"threshold {threshold}": threshold_similarity(Pt, threshold),
        f"components at {threshold}": threshold_similarity(Pt, threshold, components=True),
    }
    rows = {}
    for name, S in matrices.items():
        Sb = S.numpy().astype(bool)
        rows[name] = {"S = 1 within components": Sb[same].mean(),
                      "S = 1 across components": Sb[~same].mean()}
        for gate, lab in gates.items():
            onehot = torch.nn.functional.one_hot(torch.as_tensor(lab, dtype=torch.int64)).float()
            rows[name][f"loss, {gate}"] = float(similarity_loss(onehot, S))
    return pd.DataFrame(rows).T


def check_study_sizes(n_components: Sequence[int], n_experts) -> tuple[list[int], int | list[int]]:
    """Check the sizes of :func:`cluster_number_study` or :func:`expert_search` before any work.

    The study asks whether the model uses as many experts as there are components, so every
    searched number must be reachable: the (largest) number of experts may not be below the
    largest number of components searched (with fewer experts, components must share experts
    whatever the model learns, and a wrong count would say nothing about the model).

    Parameters
    ----------
    n_components : sequence of int
        True numbers of mixture components searched (non-empty, each >= 1).
    n_experts : int or sequence of int
        Experts available to the model (>= 2), or the grid of expert counts searched.

    Returns
    -------
    n_components : list of int
    n_experts : int, or sorted list of the distinct counts when a grid was given

    Raises
    ------
    TypeError, ValueError
        Bad values; a ``ValueError`` naming both values when the largest ``n_experts`` is below
        ``max(n_components)``.
    """
    ks = check_int_list("n_components", n_components, minimum=1)
    if isinstance(n_experts, (Sequence, np.ndarray)) and not isinstance(n_experts, (str, bytes)):
        grid = sorted(set(check_int_list("n_experts", n_experts, minimum=2)))
        largest, out = grid[-1], grid
    else:
        largest = out = check_int("n_experts", n_experts, minimum=2)
    if largest < max(ks):
        raise ValueError(
            f"n_experts={n_experts} is below the largest number of components searched "
            f"(max(n_components)={max(ks)}, n_components={ks}): the model needs at least one "
            f"expert per component; use n_experts >= {max(ks)}"
        )
    return ks, out


def expert_search(
    n_components: Sequence[int],
    n_experts: Sequence[int],
    *,
    n_samples: int = 2000,
    n_features: int = 10,
    seed: int = 0,
    projection: str | None = "umap",
    min_fraction: float = 0.01,
    progress: bool = True,
    **train_kwargs,
) -> pd.DataFrame:
    """Train MoE-Sim-VAE with every expert count of a grid on mixtures of known size.

    Paper 002 (SI B.1, Fig. B.1) iterates the number of experts (2 to 40) for each number of
    mixture components and reads the model's number of clusters as the experts it really uses.
    For each true number of components ``k``, this draws one random Gaussian mixture
    (:func:`make_gaussian_mixture`, seed ``seed + i`` for the ``i``-th number), computes its
    similarity projection once (:func:`similarity_projection`; ``None`` uses the data), and
    trains one model (:func:`train_moe`, same seed) for each grid count ``>= k``: with fewer
    experts than components every expert is needed, so those runs cannot show whether the model
    finds ``k``. :func:`select_expert_count` turns the runs into one estimate per data set.

    Parameters
    ----------
    n_components : sequence of int
        True numbers of mixture components, one data set each.
    n_experts : sequence of int
        Grid of expert counts; its largest must be ``>= max(n_components)``
        (:func:`check_study_sizes`, before any data set is drawn).
    n_samples, n_features : int
        Size of each synthetic data set.
    seed : int
        Base seed of data sets and models.
    projection : {"umap", "pca"} or None
        Projection in which the batch similarity is computed.
    min_fraction : float
        Share of the samples an expert needs to count as used (:func:`experts_used`).
    progress : bool
        Show a progress bar over the data sets.
    **train_kwargs
        Passed to :func:`train_moe` (epochs, batch size, model and loss settings).

    Returns
    -------
    pandas.DataFrame
        One row per run: ``true_components``, ``n_experts``, ``experts_used``, ``NMI``,
        ``accuracy``, ``F-measure``, ``seconds`` (training), ``projection_seconds`` (the data
        set's projection).
    """
    import time

    from tqdm.auto import tqdm

    if isinstance(n_experts, (str, bytes)) or not isinstance(n_experts, (Sequence, np.ndarray)):
        raise TypeError(f"n_experts must be a sequence of expert counts, got {n_experts!r} "
                        "(cluster_number_study trains a single count)")
    ks, grid = check_study_sizes(n_components, n_experts)
    if projection is not None:
        check_choice("projection", projection, ("umap", "pca"))
    rows = []
    for i, k in enumerate(tqdm(ks, desc="GMM study", disable=not progress)):
        t0 = time.perf_counter()
        X, y, _ = make_gaussian_mixture(k, n_samples, n_features, seed=seed + i)
        proj = None if projection is None else similarity_projection(X, projection, seed=seed + i)
        t_proj = time.perf_counter() - t0
        for n_exp in (e for e in grid if e >= k):
            t0 = time.perf_counter()
            model, _ = train_moe(X, proj, n_experts=n_exp, seed=seed + i, progress=False,
                                 **train_kwargs)
            pred = model.predict(X)
            rows.append({"true_components": k, "n_experts": n_exp,
                         "experts_used": experts_used(pred, n_exp, min_fraction),
                         **{m: v for m, v in cluster_scores(y, pred).items() if m != "n_clusters"},
                         "seconds": time.perf_counter() - t0, "projection_seconds": t_proj})
    return pd.DataFrame(rows)


def select_expert_count(runs: pd.DataFrame) -> pd.DataFrame:
    """Estimate each data set's number of clusters from the runs of :func:`expert_search`.

    The model chooses its number of clusters by leaving experts unused (paper 002: "a minimum
    number of required experts ... were selected by the model"). A run that uses all its experts
    may have needed more, so only runs with spare experts (``experts_used < n_experts``) vote;
    the estimate is their most frequent count of experts used, the smaller on a tie. When every
    run used all its experts the estimate is undetermined (NaN). The rule never looks at the true
    number.

    Parameters
    ----------
    runs : pandas.DataFrame
        Output of :func:`expert_search` (columns ``true_components``, ``n_experts``,
        ``experts_used``).

    Returns
    -------
    pandas.DataFrame
        One row per true number of components: ``true_components``, ``estimate``, ``votes``
        (runs with spare experts), ``runs``, ``used_at_largest`` (experts used with the largest
        grid count), ``correct`` (estimate equals the true number).
    """
    missing = {"true_components", "n_experts", "experts_used"} - set(runs.columns)
    if missing:
        raise ValueError(f"runs lacks the column(s) {sorted(missing)}; pass expert_search's output")
    rows = []
    for k, group in runs.groupby("true_components", sort=True):
        spare = group.loc[group["experts_used"] < group["n_experts"], "experts_used"]
        counts = spare.value_counts()
        estimate = float(min(counts.index[counts == counts.max()])) if len(counts) else np.nan
        largest = group.loc[group["n_experts"].idxmax(), "experts_used"]
        rows.append({"true_components": int(k), "estimate": estimate, "votes": len(spare),
                     "runs": len(group), "used_at_largest": int(largest),
                     "correct": bool(estimate == k)})
    return pd.DataFrame(rows)


def cluster_number_study(
    n_components: Sequence[int], n_experts: int = 20, **search_kwargs
) -> pd.DataFrame:
    """Experts really used by MoE-Sim-VAE against the true number of mixture components.

    :func:`expert_search` with a single expert count: for each true number of components, one
    random Gaussian mixture, its similarity projection, one model with ``n_experts`` experts,
    and the count of experts that receive at least ``min_fraction`` of the samples.

    How each batch's similarity matrix is built from the projection is a model argument passed
    in ``search_kwargs`` (``similarity_mode``, ``similarity_threshold``, ``knn_k``; see
    :class:`~mnistnd.models.MoESimVAE`). It decides the outcome: with a kNN matrix (``k = 10``)
    in batches of hundreds of samples, the similarity loss is lowest when every component is
    split over several experts, so the model uses nearly all of them; the chapter uses the
    connected components of a distance-threshold graph on a 2-D UMAP (``"components"``).

    Parameters
    ----------
    n_components : sequence of int
        True numbers of mixture components, one data set each.
    n_experts : int
        Experts available to the model, at least ``max(n_components)``
        (:func:`check_study_sizes`, before any training).
    **search_kwargs
        Further :func:`expert_search` arguments (``n_samples``, ``n_features``, ``seed``,
        ``projection``, ``min_fraction``, ``progress``) and model arguments.

    Returns
    -------
    pandas.DataFrame
        One row per true number: ``true_components``, ``n_experts``, ``experts_used``, ``NMI``,
        ``accuracy``, ``F-measure``, ``seconds`` (projection and training).

    Raises
    ------
    TypeError, ValueError
        Bad sizes (:func:`check_study_sizes`) or ``projection``, before any data set is drawn.
    """
    _, n_experts = check_study_sizes(n_components, n_experts)
    runs = expert_search(n_components, [n_experts], **search_kwargs)
    runs["seconds"] += runs.pop("projection_seconds")
    return runs
