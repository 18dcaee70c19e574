"""DBCV, Density-Based Clustering Validation (Moulavi et al. 2014), in its published forms.

Reproduces ``hdbscan.validity.validity_index`` and the DISCO authors' copy of it
(``pasiweber/DISCO``, ``src/Evaluation/dbcv.py``, squared distances).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import pdist, squareform
from sklearn.metrics import pairwise_distances

from mnistnd._checks import check_choice
from mnistnd.validity._graph import check_xy, cluster_ids, min_cross, prim, row_blocks

#: Allowed ``mst`` of :func:`dbcv`: which of the tied minimum spanning trees a cluster gets.
_DBCV_TREES = ("hdbscan", "length_ties")
#: Allowed ``metric`` of :func:`dbcv`.
_DBCV_METRICS = ("euclidean", "sqeuclidean")


def _apcd_hdbscan(D, exponent: int) -> np.ndarray:
    """Compute hdbscan's all-points core distances from a distance matrix, bit for bit.

    ``(mean_j (1 / d_ij)^D)^(-1/D)``: zero distances add nothing but the mean still divides by
    ``n - 1``; all sums 0 give 0; a power that overflows gives 0 (hdbscan's operation order).
    """
    nonzero = D != 0
    powers = np.divide(1.0, D, out=np.zeros_like(D), where=nonzero)
    with np.errstate(over="ignore"):
        np.power(powers, exponent, out=powers, where=nonzero)
    mean = powers.sum(axis=1) / (D.shape[0] - 1)
    if mean.sum() == 0:
        return np.zeros(D.shape[0])
    with np.errstate(divide="ignore"):
        return mean ** (-1.0 / exponent)


def _apcd_scaled(D, exponent: int) -> np.ndarray:
    """Moulavi et al.'s apcd in a form that cannot overflow; 0 for a duplicated point.

    Scaling by the nearest distance ``m`` keeps every power <= 1:
    ``apcd = m (mean_j (m / d_j)^D)^(-1/D)`` over the other points.
    """
    D = D + np.diag(np.full(D.shape[0], np.inf))
    m = D.min(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(m[:, None] > 0, m[:, None] / D, 0.0)
        mean = np.sum(ratio**exponent, axis=1) / (D.shape[0] - 1)
        return np.where(m > 0, m * mean ** (-1.0 / exponent), 0.0)


def _internal(n: int, a, b, w, lone: str):
    """Return the internal nodes (tree degree > 1) and the largest edge joining two of them.

    No internal node (two points): every node (``lone="all"``, the authors' MATLAB code) or
    node 0 (``"first"``, hdbscan). No edge between internal nodes (three points): all edges.
    """
    deg = np.bincount(np.concatenate([a, b]), minlength=n)
    nodes = np.flatnonzero(deg > 1)
    if nodes.size == 0:
        nodes = np.arange(n) if lone == "all" else np.zeros(1, np.intp)
    inner = (deg[a] > 1) & (deg[b] > 1)
    return nodes, float((w[inner] if inner.any() else w).max())


def _cluster_hdbscan(Xk, metric: str, exponent: int):
    """apcd, internal nodes and sparseness of one cluster, as hdbscan computes them.

    hdbscan's Prim adds the lowest-index node among the nearest; it then attaches each new
    node to the lowest-index earlier node whose weight to it is ``numpy.isclose`` to the step's.
    """
    D = pairwise_distances(Xk, metric=metric)
    apcd = _apcd_hdbscan(D, exponent)
    W = np.maximum(D, np.maximum(apcd[:, None], apcd[None, :]))
    _, b, w = prim(W)
    joined = np.zeros(W.shape[0], np.intp)  # step after which each node is in the tree
    joined[b] = np.arange(1, b.size + 1)
    a = np.empty_like(b)
    for sl in row_blocks(b.size, W.shape[0]):  # numpy.isclose(W[v], w[t]), default tolerances
        t = np.arange(sl.start, sl.stop)[:, None]
        close = np.abs(W[b[sl]] - w[t]) <= 1e-8 + 1e-5 * np.abs(w[t])
        a[sl] = np.argmax(close & (joined[None, :] <= t), axis=1)  # lowest index in the tree
    return (apcd, *_internal(W.shape[0], a, b, w, lone="first"))


def _cluster_length_ties(Xk, exponent: int):
    """apcd, internal nodes and sparseness of one cluster; tied weights ordered by length."""
    D = squareform(pdist(Xk))
    apcd = _apcd_scaled(D, exponent)
    W = np.maximum(D, np.maximum(apcd[:, None], apcd[None, :]))
    tree = prim(W, D)
    return (apcd, *_internal(W.shape[0], *tree, lone="all"))


def dbcv(X, labels, mst: str = "hdbscan", metric: str = "euclidean") -> float:
    """Density-Based Clustering Validation index (Moulavi et al. 2014).

    Per cluster: all-points core distances ``apcd_i = (mean_j (1 / d_ij)^D)^(-1/D)`` over the
    cluster's other points, ``D`` = n_features for either metric (as in hdbscan); the minimum
    spanning tree (MST) of the mutual-reachability distances ``max(d_ij, apcd_i, apcd_j)``;
    density sparseness ``DSC`` = largest MST edge between internal nodes (degree > 1). The
    separation ``DSPC`` of two clusters is the smallest mutual-reachability distance between
    their internal nodes. ``V_c = (min DSPC - DSC) / max(min DSPC, DSC)`` (0 when both are 0)
    and ``DBCV = sum_c |c| / n * V_c``, ``n`` counting noise points, so noise lowers the score.

    Mutual-reachability distances tie often (every edge shorter than both core distances
    weighs the larger core distance), so the MST and its internal nodes are not unique, and
    the choice changes the value; ``mst`` makes it:

    * ``"hdbscan"`` equals ``hdbscan.validity.validity_index``: its apcd formula (zero
      distances left out of the sum, mean over ``|c| - 1``, powers that may overflow in high
      dimension), the tree its Prim's algorithm meets first (lowest index among equal weights,
      each node attached to the lowest-index earlier node at a ``numpy.isclose`` weight) and
      its fallbacks (node 0 when no node is internal, all edges when no edge joins two
      internal nodes). The value depends on the order of the points.
    * ``"length_ties"`` orders equal weights by Euclidean edge length: a canonical tree and a
      value independent of the point order. apcd in a scaled form that cannot overflow, 0 for
      a duplicated point (the limit of the definition); every node counts as internal when
      none is (the authors' MATLAB code). Both hold one cluster's dense distance matrix.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Finite data.
    labels : array-like of shape (n_samples,)
        Integer cluster labels, ``-1`` for noise (excluded from clusters).
    mst : {"hdbscan", "length_ties"}, default "hdbscan"
        Which minimum spanning tree a cluster gets among tied ones (see above).
    metric : {"euclidean", "sqeuclidean"}, default "euclidean"
        ``d_ij``. Squared Euclidean is the default of the DISCO authors' copy of hdbscan's
        code, i.e. ``validity_index(X, labels, metric="sqeuclidean")``. With
        ``mst="length_ties"`` it is the Euclidean index with exponent ``2 D`` and squared
        ``DSC`` and ``DSPC`` (squaring is monotone: same tree, same ties).

    Returns
    -------
    float
        In ``[-1, 1]``; higher is better.

    Raises
    ------
    ValueError
        Unknown ``mst`` or ``metric``, fewer than two clusters, or a cluster with a single
        point (``apcd`` undefined).
    """
    X, labels = check_xy(X, labels)
    check_choice("mst", mst, _DBCV_TREES)
    check_choice("metric", metric, _DBCV_METRICS)
    ids, sizes = cluster_ids(labels, "dbcv")
    if np.any(sizes < 2):
        raise ValueError(
            f"labels: dbcv needs at least 2 points per cluster; cluster {ids[sizes < 2][0]} has 1"
        )
    ties = mst == "length_ties"
    squared = ties and metric == "sqeuclidean"  # Euclidean tree, exponent 2 D (see above)
    apcd, dsc, internal = [], np.empty(ids.size), []
    for c, cid in enumerate(ids):
        Xk = X[labels == cid]
        core, nodes, dsc[c] = (_cluster_length_ties(Xk, X.shape[1] * (2 if squared else 1))
                               if ties else _cluster_hdbscan(Xk, metric, X.shape[1]))
        apcd.append(core[nodes])
        internal.append(Xk[nodes])
    # min over the other clusters of DSPC: one search against all their internal nodes
    sep = np.array([min_cross(internal[c], np.concatenate(internal[:c] + internal[c + 1:]),
                              apcd[c], np.concatenate(apcd[:c] + apcd[c + 1:]),
                              squared=not ties and metric == "sqeuclidean")
                    for c in range(ids.size)])
    if squared:
        sep, dsc = sep**2, dsc**2
    den = np.maximum(sep, dsc)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(den > 0, (sep - dsc) / den, 0.0)
    return float(np.sum(sizes * v) / X.shape[0])
