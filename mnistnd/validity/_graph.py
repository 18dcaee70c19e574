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
    if n_rows == 0:
        return iter(())
    return gen_batches(n_rows, max(1, BLOCK_BYTES // (8 * max(n_cols, 1))))


def pair_distances(X, i, j, Y=None, squared: bool = False) -> np.ndarray:
    """Euclidean distances between rows ``X[i]`` and ``Y[j]``, from coordinate differences.

    ``i`` and ``j`` broadcast; ``Y`` defaults to ``X``; ``squared``: the squares, not rooted.
    """
    Y = X if Y is None else Y
    i, j = np.broadcast_arrays(np.asarray(i), np.asarray(j))
    out = np.empty(i.shape)
    flat_i, flat_j, flat_out = i.ravel(), j.ravel(), out.reshape(-1)
    for sl in gen_batches(flat_i.size, max(1, 2**20 // max(X.shape[1], 1))):
        diff = X[flat_i[sl]] - Y[flat_j[sl]]
        flat_out[sl] = np.einsum("ij,ij->i", diff, diff)
    return out if squared else np.sqrt(out, out=out)


def blas_sq_error(sq_norms, n_features: int) -> float:
    """Bound on the error of squared distances computed as ``|x|^2 + |y|^2 - 2 x.y`` (float64).

    The float64 error of that formula is at most ``2 gamma_(p+2) (|x|^2 + |y|^2)`` for ``p``
    features (``gamma_m ~ m u``, ``u`` the unit roundoff), below ``(p + 2) eps max |x|^2``
    (``eps = 2 u``); the bound returned is 16 times that, which also covers the square roots
    and squares a neighbour search takes on the way. Distances from coordinate differences
    (trees, :func:`pair_distances`) are more accurate still.
    """
    return 16.0 * (n_features + 2) * np.finfo(float).eps * float(np.max(sq_norms, initial=0.0))


def nearest_neighbors(X, n_neighbors: int):
    """Find the ``n_neighbors`` nearest other rows of every row, exactly, with a lower bound.

    scikit-learn selects the neighbours (on centred data); their distances are recomputed
    from coordinate differences and sorted. Every unlisted row ``j`` of row ``i`` lies at
    least ``bound[i]`` away: scikit-learn returned ``n_neighbors`` rows no farther than ``j``
    by its own distances, whose squares are within :func:`blas_sq_error` of the exact ones.

    Returns
    -------
    idx, dist : ndarray of shape (n_samples, n_neighbors)
        Neighbour rows and their exact distances, nearest first.
    bound : ndarray of shape (n_samples,)
        Lower bound on the exact distance from each row to every row not in its list.
    """
    Xc = X - X.mean(axis=0)
    approx, idx = NearestNeighbors(n_neighbors=n_neighbors).fit(Xc).kneighbors()
    dist = pair_distances(X, np.arange(X.shape[0])[:, None], idx)
    order = np.argsort(dist, axis=1, kind="stable")
    delta = blas_sq_error(np.einsum("ij,ij->i", Xc, Xc), X.shape[1])
    bound = np.sqrt(np.maximum(approx[:, -1] ** 2 - delta, 0.0))
    return np.take_along_axis(idx, order, 1), np.take_along_axis(dist, order, 1), bound


def kth_neighbor_distance(X, k: int, neighbors=None) -> np.ndarray:
    """Exact distance of every row to its ``k``-th nearest other row (``1 <= k < n_samples``).

    From :func:`nearest_neighbors` (``neighbors``: its output, listing at least ``k``; by
    default ``k + 8`` are searched). Where the ``k``-th listed distance exceeds the row's
    bound an unlisted row could be nearer, and the row is recomputed against all rows.
    """
    idx, dist, bound = neighbors or nearest_neighbors(X, min(X.shape[0] - 1, k + 8))
    out = dist[:, k - 1].copy()
    unsure = np.flatnonzero((out > bound) & (idx.shape[1] < X.shape[0] - 1))
    for sl in row_blocks(unsure.size, X.shape[0]):
        D = cdist(X[unsure[sl]], X)
        D[np.arange(D.shape[0]), unsure[sl]] = np.inf  # the row itself
        out[unsure[sl]] = np.partition(D, k - 1, axis=1)[:, k - 1]
    return out


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


def min_cross(XA, XB, core_a=None, core_b=None, squared: bool = False) -> float:
    """Smallest distance between rows of ``XA`` and ``XB``, exact, in row blocks.

    With core distances the distances are mutual-reachability ``max(d_ij, core_i, core_j)``;
    ``squared``: ``d_ij`` is the squared distance (cores in the same units). BLAS squared
    distances select, per block, the pairs within twice :func:`blas_sq_error` of the block's
    smallest value, so the exact smallest pair is among them; those are recomputed from
    coordinate differences (as scipy's ``cdist`` computes them).
    """
    mean = XA.mean(axis=0)
    A, B = XA - mean, XB - mean
    sq_a, sq_b = np.einsum("ij,ij->i", A, A), np.einsum("ij,ij->i", B, B)
    zero_a, zero_b = np.zeros(A.shape[0]), np.zeros(B.shape[0])
    # cores in squared units, so that every comparison below is between squared distances
    ca, cb = (zero_a, zero_b) if core_a is None else (core_a, core_b)
    ca, cb = (ca, cb) if squared else (ca**2, cb**2)
    delta = blas_sq_error(np.r_[sq_a, sq_b], A.shape[1])
    delta += 4 * np.finfo(float).eps * max(ca.max(initial=0), cb.max(initial=0))
    best = np.inf
    for sl in row_blocks(A.shape[0], B.shape[0]):
        S = A[sl] @ B.T
        S *= -2.0
        S += sq_a[sl, None]
        S += sq_b[None, :]
        np.maximum(S, ca[sl, None], out=S)
        np.maximum(S, cb[None, :], out=S)
        r, c = np.nonzero(S <= S.min() + 2.0 * delta)
        d = pair_distances(XA, sl.start + r, c, XB, squared=squared)
        if core_a is not None:
            d = np.maximum(d, np.maximum(core_a[sl.start + r], core_b[c]))
        best = min(best, float(d.min()))
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
