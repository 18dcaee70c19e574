"""DISCO (Beer et al. 2024): a density-based silhouette on dc-distances.

Reproduces the authors' ``disco_samples`` / ``disco_score`` (``pasiweber/DISCO``, also in clustpy).
"""

from __future__ import annotations

import numpy as np

from mnistnd._checks import check_int
from mnistnd.validity._graph import (
    NOISE,
    check_xy,
    kth_neighbor_distance,
    mutual_reachability_linkage,
    nearest_neighbors,
)
from mnistnd.validity._mst import linkage_from_tree, mutual_reachability_mst

#: Above this many points the tree is built from nearest neighbours (:mod:`._mst`), which
#: avoids the condensed ``n (n - 1) / 2`` distance matrix of the plain path.
DENSE_LIMIT = 2048
#: Neighbours listed per point for the nearest-neighbour tree.
N_NEIGHBORS = 32


def _dc_linkage(X, min_points: int):
    """Core distances and the single-linkage tree of the mutual-reachability distances.

    Both paths give the same merge heights (see :mod:`mnistnd.validity._mst`); the plain one
    (scipy on the condensed matrix) serves small data and data that leave too many
    components for the nearest-neighbour completion.
    """
    n, k = X.shape[0], min_points - 1
    neighbors = None
    if n > DENSE_LIMIT:
        neighbors = nearest_neighbors(X, min(n - 1, max(N_NEIGHBORS, k + 8)))
    core = kth_neighbor_distance(X, k, neighbors) if k else np.zeros(n)
    tree = mutual_reachability_mst(X, core, neighbors) if neighbors else None
    if tree is None:
        return core, mutual_reachability_linkage(X, core)
    return core, linkage_from_tree(n, *tree)


def _tree_sums(Z, member, need_min: bool):
    """Per point and group: sum (and min) of dc-distances to the group's points.

    ``member`` holds group indices ``0..k-1`` (``-1``: no group). The sum for point ``i`` over
    group ``c`` is the sum over the ancestors ``v`` of ``i`` of ``height(v)`` times the number of
    ``c``'s points under ``v``'s other child, accumulated top-down: ``O(n k)``, no ``n x n``.
    """
    n = member.shape[0]
    k = int(member.max()) + 1 if member.size and member.max() >= 0 else 0
    children, height = Z[:, :2].astype(np.intp), Z[:, 2]
    counts = np.zeros((2 * n - 1, k))
    has = member >= 0
    counts[np.flatnonzero(has), member[has]] = 1.0
    for t in range(n - 1):
        counts[n + t] = counts[children[t, 0]] + counts[children[t, 1]]
    sums = np.zeros_like(counts)
    mins = np.full_like(counts, np.inf)
    for t in range(n - 2, -1, -1):
        (left, right), h = children[t], height[t]
        sums[left] = sums[n + t] + h * counts[right]
        sums[right] = sums[n + t] + h * counts[left]
        if need_min:
            mins[left] = np.where(counts[right] > 0, h, mins[n + t])
            mins[right] = np.where(counts[left] > 0, h, mins[n + t])
    return sums[:n], mins[:n]


def _silhouette(a, b):
    """``(b - a) / max(a, b)``, 0 where both are 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.nan_to_num((b - a) / np.maximum(a, b), nan=0.0)


def _cluster_scores(sums, mins_noise, member, sizes):
    """Silhouettes of the cluster points (sklearn's conventions: a singleton scores 0).

    With one cluster (``mins_noise`` given) every noise point is its own singleton cluster.
    """
    rows = np.arange(member.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = sums[rows, member] / (sizes[member] - 1)
        if mins_noise is None:
            mean_other = sums / sizes[None, :]
            mean_other[rows, member] = np.inf
            b = mean_other.min(axis=1)
        else:
            b = mins_noise
    s = _silhouette(np.nan_to_num(a, nan=0.0), b)
    s[sizes[member] == 1] = 0.0
    return s


def _noise_scores(core, labels, ids, min_dc):
    """DISCO's noise score ``min(p_sparse, p_far)`` of every noise point."""
    noise = labels == NOISE
    out = np.full(int(noise.sum()), np.inf)
    for c, cid in enumerate(ids):
        max_core = core[labels == cid].max()
        for x in (core[noise], min_dc[:, c]):
            den = np.maximum(x, max_core)
            with np.errstate(divide="ignore", invalid="ignore"):
                np.minimum(out, np.where(den > 0, (x - max_core) / den, 0.0), out=out)
    return out


def disco_samples(X, labels, min_points: int = 5) -> np.ndarray:
    """DISCO score of every point (density-based silhouette on dc-distances).

    The dc-distance of two points is the minimax path distance in the mutual-reachability graph
    (weights ``max(d_ij, core_i, core_j)``, ``core_i`` the distance to the ``min_points``-th
    nearest neighbour counting the point itself, as in the authors' reference): the height at
    which they merge in the single-linkage tree of those weights: from scipy on the condensed
    distance matrix, or, above ``DENSE_LIMIT`` points, from the exact minimum spanning tree
    built on nearest neighbours (same heights). The silhouette sums are accumulated on that
    tree (the reference builds the ``n x n`` dc matrix).

    Cluster points get the silhouette ``(b - a) / max(a, b)`` on dc-distances among the
    non-noise points (singleton clusters score 0). Noise points (label ``-1``) get
    ``min(p_sparse, p_far)``: ``p_sparse`` compares the point's core distance with each
    cluster's largest core distance, ``p_far`` its dc-distance to the cluster with the same,
    each as ``(x - m) / max(x, m)`` minimised over clusters. As in the reference: only noise
    gives ``-1`` everywhere; one cluster without noise gives ``0`` everywhere; one cluster with
    noise scores the cluster points with every noise point as its own singleton cluster.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Finite data.
    labels : array-like of shape (n_samples,)
        Integer cluster labels, ``-1`` for noise.
    min_points : int, default 5
        Neighbourhood size of the core distance (1 <= min_points <= n_samples).

    Returns
    -------
    numpy.ndarray of shape (n_samples,)
        Scores in ``[-1, 1]``.
    """
    X, labels = check_xy(X, labels, min_samples=1)
    n = X.shape[0]
    min_points = check_int("min_points", min_points, minimum=1, maximum=n)
    ids = np.unique(labels[labels != NOISE])
    noise = labels == NOISE
    if ids.size == 0:
        return np.full(n, -1.0)
    if ids.size == 1 and not noise.any():
        return np.zeros(n)
    core, Z = _dc_linkage(X, min_points)
    member = np.where(noise, -1, np.searchsorted(ids, labels))
    sizes = np.bincount(member[~noise], minlength=ids.size).astype(float)
    sums, mins = _tree_sums(Z, member, need_min=bool(noise.any()))
    out = np.empty(n)
    nearest_noise = None
    if ids.size == 1:
        nearest_noise = _tree_sums(Z, np.where(noise, 0, -1), need_min=True)[1][~noise, 0]
    out[~noise] = _cluster_scores(sums[~noise], nearest_noise, member[~noise], sizes)
    if noise.any():
        out[noise] = _noise_scores(core, labels, ids, mins[noise])
    return out


def disco(X, labels, min_points: int = 5) -> float:
    """Mean DISCO score over all points (see :func:`disco_samples` for the definition).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Finite data.
    labels : array-like of shape (n_samples,)
        Integer cluster labels, ``-1`` for noise.
    min_points : int, default 5
        Neighbourhood size of the core distance.

    Returns
    -------
    float
        In ``[-1, 1]``; higher is better, values near 0 mean overlapping clusters.
    """
    return float(np.mean(disco_samples(X, labels, min_points=min_points)))
