"""DCSI, the Density Cluster Separability Index (Gauss, Scheipl & Herrmann 2023).

Reproduces the authors' R functions ``calc_DCSI`` / ``calc_DCSI_RW`` (``JanaGauss/dcsi``) and
the Python port in ``pasiweber/DISCO`` (``src/Evaluation/dcsi.py``).
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.cluster.hierarchy import linkage
from scipy.spatial.distance import cdist, pdist

from mnistnd._checks import check_choice, check_int
from mnistnd.validity._graph import check_xy, cluster_ids, min_cross, row_blocks

#: Allowed ``variant`` of :func:`dcsi`.
_DCSI_VARIANTS = ("r", "paper", "disco")


def _kth_distinct(S, k: int) -> np.ndarray:
    """Per row of the row-sorted ``S``: the ``k``-th (0-based) distinct value, else the largest."""
    new = np.ones(S.shape, bool)
    new[:, 1:] = S[:, 1:] != S[:, :-1]
    hit = np.cumsum(new, axis=1) == k + 1
    pos = np.where(hit.any(axis=1), hit.argmax(axis=1), S.shape[1] - 1)
    return S[np.arange(S.shape[0]), pos]


def _radii(Xk, min_pts: int, distinct: bool):
    """Per point of one cluster: its ``min_pts``-th and ``2 min_pts``-th neighbour distances.

    The point itself is not counted (a copy of it is). ``distinct=True`` (the DISCO port):
    squared distances; the second radius is the value at position ``2 min_pts`` among the
    sorted distinct distances from the point (0 first), or the largest; the first radius is
    ``inf`` when the cluster has at most ``min_pts`` points.
    """
    n, k = Xk.shape[0], 2 * min_pts
    r_core, r_eps = np.full(n, np.inf), np.empty(n)
    for sl in row_blocks(n, n):
        D = cdist(Xk[sl], Xk)  # the point itself: 0, so it sorts first
        if distinct:
            D = np.sort(D**2, axis=1)
            r_eps[sl] = _kth_distinct(D, k)
            if min_pts < n:
                r_core[sl] = D[:, min_pts]
        else:
            D.partition([min_pts, k], axis=1)
            r_core[sl], r_eps[sl] = D[:, min_pts], D[:, k]
    return r_core, r_eps


def _connectedness(Xc) -> float:
    """Largest edge of the Euclidean minimum spanning tree of ``Xc`` (0 for <= 1 point).

    The largest merge height of scipy's single linkage, which builds the tree with Prim's
    algorithm on the condensed distances (scipy's ``minimum_spanning_tree`` sorts all edges).
    """
    if Xc.shape[0] < 2:
        return 0.0
    return float(linkage(pdist(Xc), method="single")[:, 2].max())


def dcsi(X, labels, min_pts: int = 5, variant: str = "r") -> float:
    """Density Cluster Separability Index (Gauss, Scheipl & Herrmann 2023).

    For each cluster, ``eps`` = median over its points of the distance to the
    ``2 * min_pts``-th nearest neighbour within the cluster; core points are those whose
    ``min_pts``-th within-cluster neighbour lies within ``eps`` (the point itself not
    counted). ``Conn_c`` = largest edge of the minimum spanning tree of the cluster's core
    points; ``Sep_cd`` = smallest distance between core points of clusters ``c`` and ``d``.
    The pairwise index is ``q / (1 + q)`` with ``q = Sep_cd / max(Conn_c, Conn_d)`` and the
    index of a partition is the mean over all pairs of clusters (the authors' results use this
    mean; their R code notes it). A pair with ``Sep = Conn = 0`` scores 0. The variants:

    * ``"r"``: the authors' R function ``calc_DCSI_RW`` (the code behind the paper's real-data
      results, averaged over its pairwise matrix): Euclidean distances, but ``Sep_cd`` is
      twice the smallest distance, because that function fills both triangles of its
      separation matrix before adding the matrix to its transpose.
    * ``"paper"``: the definition in the paper (and ``Sep`` of the R function ``calc_DCSI``):
      Euclidean distances, ``Sep_cd`` the smallest distance.
    * ``"disco"``: the Python port in the DISCO authors' repository (``dcsi_score``): every
      distance squared (``eps`` is the median of squared radii, ``Conn`` and ``Sep`` are
      squared); the ``2 * min_pts``-th neighbour is the ``2 * min_pts``-th smallest
      *distinct* distance (the largest when there are fewer), which differs from the
      ``2 * min_pts``-th neighbour only where distances tie; clusters of any size are
      accepted: a cluster of at most ``min_pts`` points has no core points and its pairs add
      0 while still counting in the mean. The port compares positions with label values when
      it loops over pairs, which selects every pair only for labels ``0..k-1``; every pair is
      used here.

    ``"r"`` and ``"paper"`` need more than ``2 * min_pts`` points per cluster (the R code's
    nearest-neighbour graph), so every cluster has core points (at least half of its points).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Finite data.
    labels : array-like of shape (n_samples,)
        Integer cluster labels; ``-1`` (noise) points are left out.
    min_pts : int, default 5
        ``minPts`` of the core-point definition.
    variant : {"r", "paper", "disco"}, default "r"
        Which implementation to follow (see above).

    Returns
    -------
    float
        In ``[0, 1]``; higher means better separated clusters.

    Raises
    ------
    ValueError
        Unknown ``variant``, fewer than two clusters, or (``"r"``, ``"paper"``) a cluster with
        at most ``2 * min_pts`` points.
    """
    X, labels = check_xy(X, labels)
    min_pts = check_int("min_pts", min_pts, minimum=1)
    check_choice("variant", variant, _DCSI_VARIANTS)
    ids, sizes = cluster_ids(labels, "dcsi")
    squared = variant == "disco"
    if not squared and np.any(sizes <= 2 * min_pts):
        small = ids[sizes <= 2 * min_pts][0]
        raise ValueError(
            f"labels: dcsi needs more than 2 * min_pts = {2 * min_pts} points per cluster; "
            f"cluster {small} has {sizes[ids == small][0]}"
        )
    cores = []
    for cid in ids:
        Xk = X[labels == cid]
        r_core, r_eps = _radii(Xk, min_pts, distinct=squared)
        cores.append(Xk[r_core <= np.median(r_eps)])
    return _mean_of_pairs(cores, variant)


def _mean_of_pairs(cores, variant: str) -> float:
    """Mean over pairs of clusters of ``Sep / (Sep + Conn)`` (= ``q / (1 + q)``), per variant.

    ``cores``: each cluster's core points. A pair with a coreless cluster, or with
    ``Sep = Conn = 0``, adds 0.
    """
    conn = [_connectedness(Xc) for Xc in cores]
    vals = []
    for c, o in itertools.combinations(range(len(cores)), 2):
        if cores[c].size == 0 or cores[o].size == 0:
            vals.append(0.0)
            continue
        sep, cn = min_cross(cores[c], cores[o]), max(conn[c], conn[o])
        if variant == "disco":
            sep, cn = sep**2, cn**2
        elif variant == "r":
            sep = 2.0 * sep
        vals.append(sep / (sep + cn) if sep + cn > 0 else 0.0)
    return float(np.mean(vals))
