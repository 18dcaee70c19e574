"""Comparing partitions: external scores, stability across seeds, bootstrap robustness.

Everything here compares two (or more) labelings of the same points; nothing looks at the data.

* External scores against a reference labeling (scikit-learn's implementations):
  :func:`adjusted_rand`, :func:`fowlkes_mallows`, :func:`homogeneity`, :func:`completeness`,
  :func:`nmi`, plus :func:`rand_index` (uncorrected, for the ARI appendix),
  :func:`clustering_accuracy` (best one-to-one matching, Hungarian algorithm) and
  :func:`f_measure` (the F-measure of MoE-Sim-VAE, paper 002, SI A.1). :data:`SCORES` maps the
  names used in result tables to these functions and :func:`score_all` computes them all.
* :func:`ari_terms`: the pieces of the ARI formula (paper 000, App B) for a worked example.
* :func:`pairwise_stability`: ARI of every pair of partitions (e.g. one per seed).
* :func:`bootstrap_splits` and :func:`bootstrap_ari`: three overlapping 60 % subsets and the
  ARI between the clusterings of two subsets on the points they share (paper 000, Fig 3C).

Labels may be integers or strings (e.g. a categorical ``obs["digit"]``); they are only compared
for equality.
"""

from __future__ import annotations

from itertools import combinations
from typing import NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.special import comb
from sklearn import metrics as _skm

from mnistnd._checks import check_choice, check_int

__all__ = [
    "SCORES",
    "BootstrapSplits",
    "adjusted_rand",
    "ari_terms",
    "bootstrap_ari",
    "bootstrap_splits",
    "clustering_accuracy",
    "completeness",
    "contingency",
    "f_measure",
    "fowlkes_mallows",
    "homogeneity",
    "nmi",
    "pairwise_stability",
    "rand_index",
    "score_all",
]


# --------------------------------------------------------------------------- input checks
def _as_labels(name: str, labels) -> np.ndarray:
    """Return ``labels`` as 1-D integer codes (0..k-1); refuse NaN, inf and non-1-D input."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} must not be empty")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if arr.dtype.kind == "O":
        # object arrays (e.g. pandas categoricals of strings): NaN/None are missing labels
        if any(v is None or (isinstance(v, float) and not np.isfinite(v)) for v in arr):
            raise ValueError(f"{name} contains missing (None/NaN) labels")
        arr = arr.astype(str)
    return np.unique(arr, return_inverse=True)[1].astype(np.int64).ravel()


def _pair(labels_true, labels_pred) -> tuple[np.ndarray, np.ndarray]:
    """Check two labelings of the same points and return them as integer codes."""
    a = _as_labels("labels_true", labels_true)
    b = _as_labels("labels_pred", labels_pred)
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"labels_true has {a.shape[0]} entries but labels_pred has {b.shape[0]}; "
            "they must label the same points"
        )
    return a, b


def contingency(labels_true, labels_pred) -> np.ndarray:
    """Contingency table ``n[i, j]``: points with reference class ``i`` and cluster ``j``.

    Rows follow the sorted unique values of ``labels_true``, columns those of ``labels_pred``.

    Parameters
    ----------
    labels_true, labels_pred : array-like of shape (n_samples,)
        Two labelings of the same points.

    Returns
    -------
    numpy.ndarray of int64, shape (n_classes, n_clusters)
    """
    a, b = _pair(labels_true, labels_pred)
    table = np.zeros((a.max() + 1, b.max() + 1), dtype=np.int64)
    np.add.at(table, (a, b), 1)
    return table


# --------------------------------------------------------------------------- external scores
def adjusted_rand(labels_true, labels_pred) -> float:
    """Return the adjusted Rand index (Hubert & Arabie 1985), scikit-learn's implementation.

    1 for identical partitions, about 0 for independent ones (can be negative).
    """
    return float(_skm.adjusted_rand_score(*_pair(labels_true, labels_pred)))


def rand_index(labels_true, labels_pred) -> float:
    """Rand index without chance correction: fraction of point pairs on which both agree."""
    return float(_skm.rand_score(*_pair(labels_true, labels_pred)))


def fowlkes_mallows(labels_true, labels_pred) -> float:
    """Fowlkes–Mallows index: geometric mean of pairwise precision and recall."""
    return float(_skm.fowlkes_mallows_score(*_pair(labels_true, labels_pred)))


def homogeneity(labels_true, labels_pred) -> float:
    """Homogeneity: 1 when every cluster holds points of a single reference class."""
    return float(_skm.homogeneity_score(*_pair(labels_true, labels_pred)))


def completeness(labels_true, labels_pred) -> float:
    """Completeness: 1 when every reference class falls in a single cluster."""
    return float(_skm.completeness_score(*_pair(labels_true, labels_pred)))


def nmi(labels_true, labels_pred) -> float:
    """Return the normalized mutual information (arithmetic-mean normalisation, sklearn's)."""
    return float(_skm.normalized_mutual_info_score(*_pair(labels_true, labels_pred)))


def clustering_accuracy(labels_true, labels_pred) -> float:
    """Clustering accuracy: fraction of points correct under the best one-to-one matching.

    Each cluster is matched to at most one reference class (and vice versa) so that the number
    of points whose cluster is matched to their own class is maximal (Hungarian algorithm on the
    contingency table, :func:`scipy.optimize.linear_sum_assignment`). With more clusters than
    classes, the points of unmatched clusters count as errors; the usual "ACC" of deep clustering
    papers (e.g. MoE-Sim-VAE, paper 002, Table 1).

    Parameters
    ----------
    labels_true, labels_pred : array-like of shape (n_samples,)
        Reference classes and cluster labels (any hashable values).

    Returns
    -------
    float
        Accuracy in [0, 1].
    """
    table = contingency(labels_true, labels_pred)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / table.sum())


def f_measure(labels_true, labels_pred, *, weight_by: str = "pred") -> float:
    r"""Return the F-measure of a clustering against reference classes (paper 002, SI A.1).

    For a cluster ``c`` and a class ``k`` with ``n_ck`` common points, precision is
    ``n_ck / |c|``, recall ``n_ck / |k|`` and their harmonic mean
    ``F(c, k) = 2 n_ck / (|c| + |k|)``. The F-measure is the size-weighted average, over the
    groups of one labeling, of each group's best F against the groups of the other:

    .. math:: F(C, K) = \sum_{c_i \in C} \frac{|c_i|}{N} \max_{k_j \in K} F(c_i, k_j).

    Paper 002 names ``C`` "the cluster result" and ``K`` "the reference", so the default
    (``weight_by="pred"``) sums over the predicted clusters, as Eq. 12 is written. The reference
    it cites (Aghaeepour et al. 2013, FlowCAP) sums over the reference populations instead:
    ``weight_by="true"``. The two agree when the clusters match the classes one to one; they
    differ when a method merges or splits classes (``"pred"`` penalises a cluster that merges
    classes, ``"true"`` a class split across clusters).

    Parameters
    ----------
    labels_true, labels_pred : array-like of shape (n_samples,)
        Reference classes and cluster labels (any hashable values).
    weight_by : {"pred", "true"}
        Which labeling's groups are averaged over (see above).

    Returns
    -------
    float
        F-measure in (0, 1]; 1 exactly when both labelings define the same partition.
    """
    check_choice("weight_by", weight_by, ("pred", "true"))
    table = contingency(labels_true, labels_pred).astype(np.float64)  # classes x clusters
    if weight_by == "pred":
        table = table.T  # rows: the groups averaged over
    row_size = table.sum(axis=1, keepdims=True)
    col_size = table.sum(axis=0, keepdims=True)
    f = 2.0 * table / (row_size + col_size)
    n = table.sum()
    return float(np.sum(row_size[:, 0] / n * f.max(axis=1)))


#: Scores reported in the benchmark tables, by the name used in the ``metric`` column.
SCORES = {
    "ARI": adjusted_rand,
    "FMI": fowlkes_mallows,
    "homogeneity": homogeneity,
    "completeness": completeness,
    "NMI": nmi,
    "accuracy": clustering_accuracy,
}


def score_all(labels_true, labels_pred, names=None) -> dict[str, float]:
    """Compute several external scores at once.

    Parameters
    ----------
    labels_true, labels_pred : array-like of shape (n_samples,)
        Reference classes and cluster labels.
    names : sequence of str, optional
        Keys of :data:`SCORES`; all of them by default.

    Returns
    -------
    dict
        ``{name: value}`` in the order of ``names``.
    """
    names = list(SCORES) if names is None else list(names)
    for name in names:
        check_choice("names", name, SCORES)
    a, b = _pair(labels_true, labels_pred)
    return {name: SCORES[name](a, b) for name in names}


def ari_terms(labels_true, labels_pred) -> dict[str, float]:
    """Return the terms of the ARI formula, for teaching (paper 000, App B).

    With contingency counts ``n_ij``, row sums ``a_i``, column sums ``b_j`` and ``n`` points:

    * ``index = sum_ij C(n_ij, 2)`` (pairs together in both labelings),
    * ``expected = sum_i C(a_i, 2) * sum_j C(b_j, 2) / C(n, 2)`` (its expectation under random
      labelings with the same group sizes),
    * ``max_index = (sum_i C(a_i, 2) + sum_j C(b_j, 2)) / 2``,
    * ``ARI = (index - expected) / (max_index - expected)``.

    Parameters
    ----------
    labels_true, labels_pred : array-like of shape (n_samples,)
        Two labelings of the same points.

    Returns
    -------
    dict
        ``index``, ``sum_rows``, ``sum_cols``, ``expected``, ``max_index``, ``ari``,
        ``rand_index`` (uncorrected) and ``n_pairs``.
    """
    table = contingency(labels_true, labels_pred)
    n = int(table.sum())
    index = float(comb(table, 2).sum())
    sum_rows = float(comb(table.sum(axis=1), 2).sum())
    sum_cols = float(comb(table.sum(axis=0), 2).sum())
    n_pairs = float(comb(n, 2))
    expected = sum_rows * sum_cols / n_pairs
    max_index = 0.5 * (sum_rows + sum_cols)
    # both labelings trivial (one group each, or all singletons): the partitions agree
    ari = 1.0 if max_index == expected else (index - expected) / (max_index - expected)
    # Rand index: pairs together in both + pairs apart in both, over all pairs
    rand = (n_pairs + 2 * index - sum_rows - sum_cols) / n_pairs if n_pairs else 1.0
    return {
        "index": index,
        "sum_rows": sum_rows,
        "sum_cols": sum_cols,
        "expected": expected,
        "max_index": max_index,
        "ari": float(ari),
        "rand_index": float(rand),
        "n_pairs": n_pairs,
    }


# --------------------------------------------------------------------------- stability
def pairwise_stability(partitions) -> np.ndarray:
    """ARI of every pair of partitions of the same points (paper 000, Fig 3B).

    Parameters
    ----------
    partitions : sequence of array-like, each of shape (n_samples,)
        At least two labelings, e.g. one clustering per random seed.

    Returns
    -------
    numpy.ndarray of shape (n_partitions * (n_partitions - 1) / 2,)
        ARI of pairs ``(0, 1), (0, 2), ..., (1, 2), ...`` in :func:`itertools.combinations` order.
    """
    if isinstance(partitions, np.ndarray) and partitions.ndim == 2:
        partitions = list(partitions)
    if isinstance(partitions, (str, bytes)) or not hasattr(partitions, "__len__"):
        raise TypeError("partitions must be a sequence of label arrays")
    if len(partitions) < 2:
        raise ValueError(
            f"partitions needs at least two labelings (e.g. two seeds), got {len(partitions)}"
        )
    codes = [_as_labels(f"partitions[{i}]", p) for i, p in enumerate(partitions)]
    sizes = {c.shape[0] for c in codes}
    if len(sizes) != 1:
        raise ValueError(f"partitions must all label the same points; got lengths {sorted(sizes)}")
    return np.array([_skm.adjusted_rand_score(a, b) for a, b in combinations(codes, 2)])


class BootstrapSplits(NamedTuple):
    """Three overlapping subsets of ``range(n)`` (see :func:`bootstrap_splits`)."""

    #: indices shared by all three subsets (40 % of the points)
    shared: np.ndarray
    #: the indices of each subset: ``shared`` followed by its own unique 20 %
    subsets: tuple[np.ndarray, np.ndarray, np.ndarray]


def bootstrap_splits(n: int, seed: int | None = 0) -> BootstrapSplits:
    """Three subsets of 60 % of ``n`` points: 40 % shared by all three, 20 % unique to each.

    Together they cover every point once (40 + 3 x 20 = 100 %). With ``u = n // 5`` unique
    points per subset, ``n - 3u`` points are shared (exactly 40 % when ``n`` is a multiple of 5).

    The authors of paper 000 used fixed index ranges of the 10,000 test points:
    ``0:6000``, ``0:4000 + 6000:8000`` and ``0:4000 + 8000:10000`` (shared ``0:4000``), which
    ties the subsets to the order of the test set. Here the same layout is applied to a seeded
    permutation of ``range(n)``, so the subsets are random but reproducible; the permutation
    depends only on ``n`` and ``seed``, so every latent dimension of MNIST-Nd (same points, same
    order) gets the same subsets. ``seed=None`` uses the identity permutation, i.e. exactly the
    authors' ranges (scaled to ``n``).

    Parameters
    ----------
    n : int
        Number of points (at least 5).
    seed : int or None
        Seed of the permutation (:func:`numpy.random.default_rng`); ``None``: no permutation.

    Returns
    -------
    BootstrapSplits
        ``shared`` (sorted) and ``subsets``: three index arrays, each ``shared`` followed by its
        unique part (sorted within each part), so the first ``len(shared)`` entries of every
        subset are the same points in the same order.
    """
    n = check_int("n", n, minimum=5)
    if seed is not None:
        seed = check_int("seed", seed, minimum=0)
        order = np.random.default_rng(seed).permutation(n)
    else:
        order = np.arange(n)
    n_unique = n // 5
    n_shared = n - 3 * n_unique
    shared = np.sort(order[:n_shared])
    subsets = tuple(
        np.concatenate(
            [shared, np.sort(order[n_shared + k * n_unique : n_shared + (k + 1) * n_unique])]
        )
        for k in range(3)
    )
    return BootstrapSplits(shared=shared, subsets=subsets)


def bootstrap_ari(labels_by_subset, splits: BootstrapSplits) -> np.ndarray:
    """ARI between the clusterings of two subsets, on the points they share (paper 000, Fig 3C).

    Parameters
    ----------
    labels_by_subset : sequence of three array-like
        ``labels_by_subset[k][i]`` is the cluster of point ``splits.subsets[k][i]`` when the
        method is fitted on subset ``k`` alone.
    splits : BootstrapSplits
        The output of :func:`bootstrap_splits`.

    Returns
    -------
    numpy.ndarray of shape (3,)
        ARI on the shared points for the subset pairs (0, 1), (0, 2), (1, 2).
    """
    if not isinstance(splits, BootstrapSplits):
        raise TypeError("splits must be the BootstrapSplits returned by bootstrap_splits")
    if len(labels_by_subset) != len(splits.subsets):
        raise ValueError(
            f"labels_by_subset needs {len(splits.subsets)} labelings, got {len(labels_by_subset)}"
        )
    n_shared = splits.shared.shape[0]
    on_shared = []
    for k, (labels, idx) in enumerate(zip(labels_by_subset, splits.subsets, strict=True)):
        codes = _as_labels(f"labels_by_subset[{k}]", labels)
        if codes.shape[0] != idx.shape[0]:
            raise ValueError(
                f"labels_by_subset[{k}] has {codes.shape[0]} entries but subset {k} has "
                f"{idx.shape[0]} points"
            )
        on_shared.append(codes[:n_shared])  # subsets start with the shared points, same order
    return np.array([_skm.adjusted_rand_score(a, b) for a, b in combinations(on_shared, 2)])
