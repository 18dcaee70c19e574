"""Shared pieces of the validity indices: input checks, exact distances, neighbours and trees.

Distances that end up in an index value are computed from coordinate differences (scipy's
``pdist`` / ``cdist``, or :func:`pair_distances`), never from the expanded BLAS formula, whose
rounding error is large for near points; BLAS (scikit-learn) only *selects* neighbours.
"""

from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import linkage
from scipy.spatial.distance import cdist, pdist
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import gen_batches

from mnistnd._checks import check_labels, check_matrix

NOISE = -1
#: Bytes of one block of pairwise distances (float64): bounds the working memory.
BLOCK_BYTES = 32 * 2**20


def check_xy(X, labels, min_samples: int = 2):
    """Return ``X`` (finite float matrix) and integer ``labels``; only -1 may be negative."""
    X = check_matrix("X", X, min_samples=min_samples)
    labels = check_labels("labels", labels, X.shape[0])
    bad = labels[(labels < 0) & (labels != NOISE)]
    if bad.size:
        raise ValueError(f"labels: negative label {int(bad[0])}; only -1 (noise) may be negative")
    return X, labels


def cluster_ids(labels, name: str, min_clusters: int = 2):
    """Cluster labels (noise left out) and their sizes; too few clusters raise."""
    ids, sizes = np.unique(labels[labels != NOISE], return_counts=True)
    if ids.size < min_clusters:
        raise ValueError(
            f"{name} needs at least {min_clusters} clusters (label -1 is noise), got {ids.size}"
        )
    return ids, sizes


def row_blocks(n_rows: int, n_cols: int):
    """Slices over ``n_rows`` such that a block of ``rows x n_cols`` floats fits BLOCK_BYTES."""
    return gen_batches(n_rows, max(1, BLOCK_BYTES // (8 * max(n_cols, 1))))


def pair_distances(X, i, j) -> np.ndarray:
    """Euclidean distances between rows ``X[i]`` and ``X[j]`` (broadcast), from differences."""
    i, j = np.broadcast_arrays(np.asarray(i), np.asarray(j))
    out = np.empty(i.shape)
    flat_i, flat_j, flat_out = i.ravel(), j.ravel(), out.reshape(-1)
    for sl in gen_batches(flat_i.size, max(1, 2**20 // max(X.shape[1], 1))):
        diff = X[flat_i[sl]] - X[flat_j[sl]]
        flat_out[sl] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    return out


def kth_neighbor_distance(X, k: int) -> np.ndarray:
    """Exact distance of every row to its ``k``-th nearest other row (``k >= 1``).

    scikit-learn finds a few more than ``k`` neighbours on BLAS distances; their distances are
    recomputed exactly and the ``k``-th smallest taken, so BLAS rounding cannot pick a wrong one.
    """
    n_query = min(X.shape[0] - 1, k + 8)
    idx = NearestNeighbors(n_neighbors=n_query).fit(X).kneighbors(return_distance=False)
    exact = pair_distances(X, np.arange(X.shape[0])[:, None], idx)
    return np.partition(exact, k - 1, axis=1)[:, k - 1]


def mutual_reachability_linkage(X, core) -> np.ndarray:
    """Single-linkage tree (scipy's ``Z``) of the weights ``max(d_ij, core_i, core_j)``.

    Its merge heights are the edges of the minimum spanning tree of the mutual-reachability
    graph, and the height where two points merge is their minimax path distance. The
    condensed distance matrix (``n (n - 1) / 2`` floats) is held while the tree is built.
    """
    n = X.shape[0]
    d = pdist(X)
    start = 0
    for i in range(n - 1):  # row i of the condensed matrix: pairs (i, i+1..n-1)
        seg = d[start : start + n - 1 - i]
        np.maximum(seg, core[i], out=seg)
        np.maximum(seg, core[i + 1 :], out=seg)
        start += n - 1 - i
    return linkage(d, method="single")


def min_cross(XA, XB, core_a=None, core_b=None, metric: str = "euclidean") -> float:
    """Smallest distance between rows of ``XA`` and ``XB`` (scipy ``cdist``), in row blocks.

    With core distances the distances are mutual-reachability ``max(d_ij, core_i, core_j)``.
    """
    best = np.inf
    for sl in row_blocks(XA.shape[0], XB.shape[0]):
        D = cdist(XA[sl], XB, metric)
        if core_a is not None:
            np.maximum(D, core_a[sl, None], out=D)
            np.maximum(D, core_b[None, :], out=D)
        best = min(best, float(D.min()))
    return best


def prim(W, D=None):
    """Prim's minimum spanning tree of the dense symmetric ``W``, grown from node 0.

    Each step adds the lowest-index node among those nearest to the tree; with ``D`` equal
    weights are ordered by ``D`` first (a canonical tree when the pairs ``(W, D)`` are
    distinct). Returns ``(parent, node, weight)`` of the ``n - 1`` steps, in order.
    """
    n = W.shape[0]
    best, best_d = np.full(n, np.inf), np.full(n, np.inf)
    parent = np.zeros(n, np.intp)
    in_tree = np.zeros(n, bool)
    steps, u = [], 0
    for _ in range(n - 1):
        in_tree[u] = True
        best[u] = np.inf
        upd = W[u] < best
        if D is not None:
            upd |= (W[u] == best) & (D[u] < best_d)
            best_d[upd & ~in_tree] = D[u][upd & ~in_tree]
        upd &= ~in_tree
        best[upd], parent[upd] = W[u][upd], u
        v = int(np.argmin(best))
        if D is not None:
            ties = np.flatnonzero(best == best[v])
            v = int(ties[np.argmin(best_d[ties])]) if ties.size > 1 else v
        steps.append((parent[v], v, best[v]))
        u = v
    a, b, w = zip(*steps, strict=True) if steps else ((), (), ())
    return np.array(a, np.intp), np.array(b, np.intp), np.array(w, float)
