"""Cluster validity indices (DISCO, DBCV, DCSI, S_Dbw) and density peaks.

Every index is a pure function ``f(X, labels, ...) -> float`` that follows its paper; the
docstrings state each definition, the parameters and how noise (label ``-1``) and degenerate
inputs are handled. Nothing here holds an ``n x n`` matrix: pairwise distances are computed in
row blocks (:func:`_blocks`) of at most ``_BLOCK_BYTES`` bytes, so that memory stays ``O(n)``
beyond one block; only DBCV in hdbscan's form holds one cluster's dense distance matrix, as
hdbscan does. DBCV and DCSI have several published implementations that give different values;
each is an option of :func:`dbcv` / :func:`dcsi`, and :func:`index_variants` computes them all.

References
----------
* DISCO: Beer et al., "DISCO: Internal evaluation of density-based clustering" (2024), public
  reference code ``disco_score`` / ``disco_samples`` (cited by MNIST-Nd as "Anonymous 2024").
* DBCV: Moulavi, Jaskowiak, Campello, Zimek & Sander, "Density-based clustering validation",
  SDM 2014; ``hdbscan.validity.validity_index``; the DISCO authors' copy of it
  (``pasiweber/DISCO``, ``src/Evaluation/dbcv.py``).
* DCSI: Gauss, Scheipl & Herrmann, "DCSI - an improved measure of cluster separability based on
  separation and connectedness", arXiv:2310.12806 (2023); the authors' R functions
  ``calc_DCSI`` / ``calc_DCSI_RW`` (``JanaGauss/dcsi``); the Python port in
  ``pasiweber/DISCO`` (``src/Evaluation/dcsi.py``).
* S_Dbw: Halkidi & Vazirgiannis, "Clustering validity assessment: finding the optimal
  partitioning of a data set", ICDM 2001; Tong & Tan (2009) for ``method="tong"``.
* Density peaks: Rodriguez & Laio, "Clustering by fast search and find of density peaks",
  Science 2014.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.spatial.distance import cdist
from sklearn.metrics import pairwise_distances

from mnistnd._checks import check_choice, check_float, check_int, check_labels, check_matrix

__all__ = [
    "INDEX_VARIANTS",
    "PAPER_TABLE1",
    "dbcv",
    "dcsi",
    "density_peaks",
    "density_peaks_multi",
    "disco",
    "disco_samples",
    "index_variants",
    "indices_table",
    "s_dbw",
    "score_all",
]

NOISE = -1
#: Bytes of one block of pairwise distances (float64); bounds the working memory.
_BLOCK_BYTES = 32 * 2**20
#: Below this many points DISCO builds its tree with dense Prim, above with kNN-Boruvka.
_DENSE_LIMIT = 2048
#: Above this many points the kNN search thresholds rows with a column sample first.
_KNN_SAMPLE_MIN = 4096


# --------------------------------------------------------------------------------------------
# distance helpers
# --------------------------------------------------------------------------------------------


def _find(parent: list, x: int) -> int:
    """Union-find root of ``x`` with path compression (``parent`` is a plain list: faster)."""
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:
        parent[x], x = root, parent[x]
    return root


def _blocks(n_rows: int, n_cols: int, block_bytes: int | None = None):
    """Yield ``slice`` objects over ``n_rows`` so that a block of rows x n_cols fits the budget."""
    budget = _BLOCK_BYTES if block_bytes is None else block_bytes
    step = max(1, int(budget // (8 * max(n_cols, 1))))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def _sqdist(A: np.ndarray, B: np.ndarray, sqA: np.ndarray, sqB: np.ndarray, clip: bool = True):
    """Squared Euclidean distances between rows of ``A`` and ``B`` (BLAS; optionally >= 0)."""
    D = (-2.0 * A) @ B.T
    D += sqA[:, None]
    D += sqB[None, :]
    if clip:
        np.maximum(D, 0.0, out=D)
    return D


def _mask_lower(D: np.ndarray, value: float) -> None:
    """Set entries with column <= row (a block starting on the diagonal) to ``value``."""
    r = D.shape[0]
    D[:, :r][np.tril_indices(r)] = value


def _mask_upper_from(D: np.ndarray, start: int, value: float) -> None:
    """Block of rows ``start..`` against columns ``0..``: set column >= global row to ``value``."""
    r = D.shape[0]
    D[:, start : start + r][np.triu_indices(r)] = value


def _exact_dist(X: np.ndarray, i, j) -> np.ndarray:
    """Euclidean distances between rows ``X[i]`` and ``X[j]`` from differences (no cancellation).

    ``i`` and ``j`` broadcast; pairs are processed in chunks to bound the temporary memory.
    """
    i, j = np.broadcast_arrays(np.asarray(i), np.asarray(j))
    shape = i.shape
    i, j = i.ravel(), j.ravel()
    out = np.empty(i.size)
    step = max(1, (8 * 2**20) // (8 * max(X.shape[1], 1)))
    for s in range(0, i.size, step):
        diff = X[i[s : s + step]] - X[j[s : s + step]]
        out[s : s + step] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    return out.reshape(shape) if shape else out[0]


def _prepare(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre ``X`` (the expanded distance formula loses less to cancellation) and row norms."""
    Xc = X - X.mean(axis=0)
    return Xc, np.einsum("ij,ij->i", Xc, Xc)


def _kth_neighbor_dist(X, sq, k: int, exclude_self: bool) -> np.ndarray:
    """Distance of each point to its ``k``-th nearest neighbour (chunked, exact values).

    With ``exclude_self=False`` the point itself counts as its first neighbour (distance 0).
    The neighbour is selected on the BLAS distances and its distance recomputed exactly.
    """
    n = X.shape[0]
    kth = k if exclude_self else k - 1  # 0-based position in the row sorted with self first
    out = np.empty(n)
    for sl in _blocks(n, n):
        D = _sqdist(X[sl], X, sq[sl], sq)
        rows = np.arange(sl.start, sl.stop)
        D[np.arange(len(rows)), rows] = -1.0  # self sorts first, even among duplicates
        idx = np.argpartition(D, kth, axis=1)[:, kth]
        out[sl] = _exact_dist(X, rows, idx)
    return out


def _knn(X, sq, k: int):
    """Find the ``k`` nearest neighbours of every row (the row itself excluded), sorted.

    One blocked pass: a per-row threshold from an evenly spaced sample of columns bounds the
    ``k``-th distance from above, so only the few entries below it are sorted. Distances are
    recomputed exactly from coordinate differences. Returns ``(idx, dist)`` of shape (n, k).
    """
    n = X.shape[0]
    idx = np.empty((n, k), np.intp)
    step = max(1, n // 1024)
    sample = np.arange(0, n, step)
    use_sample = sample.size >= 4 * (k + 1) and n > _KNN_SAMPLE_MIN
    for sl in _blocks(n, n):
        D = _sqdist(X[sl], X, sq[sl], sq)
        r = np.arange(sl.stop - sl.start)
        D[r, r + sl.start] = np.inf  # exclude the point itself (also among duplicates)
        if use_sample:
            tau = np.partition(D[:, sample], k - 1, axis=1)[:, k - 1]
            flat = np.flatnonzero(D <= tau[:, None])
            rows, cols = np.divmod(flat, n)
            counts = np.bincount(rows, minlength=r.size)
            starts = np.r_[0, np.cumsum(counts)[:-1]]
            # pad each row's candidates into a small matrix and select there
            P = np.full((r.size, int(counts.max())), np.inf)
            C = np.zeros(P.shape, np.intp)
            pos = np.arange(flat.size) - starts[rows]
            P[rows, pos] = D.ravel()[flat]
            C[rows, pos] = cols
            part = np.argpartition(P, k - 1, axis=1)[:, :k]
            idx[sl] = np.take_along_axis(C, part, axis=1)
        else:
            part = np.argpartition(D, k - 1, axis=1)[:, :k]
            vals = np.take_along_axis(D, part, axis=1)
            idx[sl] = np.take_along_axis(part, np.argsort(vals, axis=1, kind="stable"), axis=1)
    dist = _exact_dist(X, np.arange(n)[:, None], idx)
    order = np.argsort(dist, axis=1, kind="stable")
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(dist, order, axis=1)


def _boruvka_mr_mst(X, sq, core, nbr, nbr_d, max_components: int = 3000):
    """Exact MST of the mutual-reachability graph: kNN Boruvka rounds, then a component graph.

    Boruvka may add the lightest outgoing edge of any component (cut property). For point ``i``
    the candidates are its ``k`` nearest neighbours outside its component; every other outside
    point ``j`` has ``d_ij >= r_k(i)``, hence weight ``>= max(r_k(i), core_i)``. A component
    whose best candidate is not above any of its points' bounds has a certified lightest edge;
    rounds add only those (cheap, ``O(n k)``). When no component can be certified, one blocked
    pass computes the lightest edge between every pair of the remaining components, and the
    MST of that small complete graph completes the tree. Returns ``(a, b, w)``.
    """
    n = X.shape[0]
    mr = np.maximum(nbr_d, np.maximum(core[:, None], core[nbr]))
    lower = np.maximum(nbr_d[:, -1], core)
    parent = list(range(n))

    ea, eb, ew = [], [], []
    comp = np.arange(n)
    rows = np.arange(n)
    while True:
        cand = np.where(comp[nbr] != comp[:, None], mr, np.inf)
        jpos = np.argmin(cand, axis=1)
        best = cand[rows, jpos]
        comp_best = np.full(n, np.inf)
        np.minimum.at(comp_best, comp, best)
        # bound of the unresolved points: the component is certified if none is below its best
        unresolved = np.where(best > lower, lower, np.inf)
        comp_low = np.full(n, np.inf)
        np.minimum.at(comp_low, comp, unresolved)
        ok = np.isfinite(comp_best) & (comp_best <= comp_low)
        order = np.lexsort((rows, best, comp))
        first = order[np.r_[True, comp[order][1:] != comp[order][:-1]]]
        first = first[ok[comp[first]]]
        first = first[np.argsort(best[first], kind="stable")]
        added = 0
        for i in first.tolist():
            j = int(nbr[i, jpos[i]])
            ri, rj = _find(parent, i), _find(parent, j)
            if ri != rj:
                parent[rj] = ri
                ea.append(i)
                eb.append(j)
                ew.append(best[i])
                added += 1
        comp = np.fromiter((_find(parent, x) for x in range(n)), np.intp, n)
        if added == 0 or len(ea) == n - 1:
            break
    if len(ea) < n - 1 and np.unique(comp).size > max_components:
        # pathological data (many isolated groups): Prim on rows, slower but O(n) memory
        return _prim_mst(X, sq, core, dense_limit=0)
    if len(ea) < n - 1:
        a2, b2, w2 = _component_graph_mst(X, sq, core, comp, max_components)
        ea.extend(a2.tolist())
        eb.extend(b2.tolist())
        ew.extend(w2.tolist())
    return np.asarray(ea, np.intp), np.asarray(eb, np.intp), np.asarray(ew, float)


def _component_graph_mst(X, sq, core, comp, max_components: int):
    """Finish the MST: lightest edges between all pairs of components, then Prim on those."""
    labels, comp = np.unique(comp, return_inverse=True)
    m = labels.size
    if m > max_components:
        raise RuntimeError(f"internal: {m} components left (> {max_components})")
    _log_components(m)
    order = np.argsort(comp, kind="stable")
    starts = np.r_[0, np.flatnonzero(np.diff(comp[order])) + 1]
    Xo, sqo, go = X[order], sq[order], comp[order]
    co2 = core[order] ** 2
    M = np.full((m, m), np.inf)
    for sl in _blocks(X.shape[0], X.shape[0]):
        D = _sqdist(Xo[sl], Xo, sqo[sl], sqo)  # squared: max and min commute with sqrt
        np.maximum(D, co2[sl][:, None], out=D)
        np.maximum(D, co2[None, :], out=D)
        R = np.minimum.reduceat(D, starts, axis=1)  # rows x components
        g = go[sl]
        rs = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
        M[g[rs]] = np.minimum(M[g[rs]], np.minimum.reduceat(R, rs, axis=0))
    np.fill_diagonal(M, np.inf)
    ca, cb, _ = _prim_dense(M)
    members = [order[starts[t] : (starts[t + 1] if t + 1 < m else X.shape[0])] for t in range(m)]
    a, b, w = [], [], []
    for p, q in zip(ca.tolist(), cb.tolist(), strict=True):
        A, B = members[p], members[q]
        best = (np.inf, -1, -1)
        for sl in _blocks(A.size, B.size):
            D = _sqdist(X[A[sl]], X[B], sq[A[sl]], sq[B])
            np.maximum(D, (core[A[sl]] ** 2)[:, None], out=D)
            np.maximum(D, (core[B] ** 2)[None, :], out=D)
            i, j = np.unravel_index(np.argmin(D), D.shape)
            if D[i, j] < best[0]:
                best = (D[i, j], A[sl][i], B[j])
        _, ia, jb = best
        a.append(ia)
        b.append(jb)
        w.append(max(float(_exact_dist(X, ia, jb)), core[ia], core[jb]))
    return np.asarray(a, np.intp), np.asarray(b, np.intp), np.asarray(w)


def _log_components(m: int) -> None:
    """Report the number of components left for the component graph (a benchmark hook)."""


def _prim_dense(W):
    """Prim's MST on a dense symmetric weight matrix; returns ``(a, b, w)``."""
    n = W.shape[0]
    best = W[0].copy()
    parent = np.zeros(n, np.intp)
    in_tree = np.zeros(n, bool)
    in_tree[0] = True
    best[0] = np.inf
    a, b, w = [], [], []
    for _ in range(n - 1):
        v = int(np.argmin(best))
        a.append(int(parent[v]))
        b.append(v)
        w.append(best[v])
        in_tree[v] = True
        best[v] = np.inf
        upd = (W[v] < best) & ~in_tree
        best[upd] = W[v][upd]
        parent[upd] = v
    return np.asarray(a, np.intp), np.asarray(b, np.intp), np.asarray(w)


def _prim_mst(X, sq, core=None, dense_limit: int = 2048, tie_break: bool = False):
    """Minimum spanning tree of the (mutual-reachability) graph on the rows of ``X``.

    Edge weights are ``max(d_ij, core_i, core_j)`` (``core=None``: plain Euclidean). Prim's
    algorithm on rows computed on demand, so memory is ``O(n)`` (a dense matrix is used only
    below ``dense_limit`` points). Mutual-reachability weights tie often (every edge shorter
    than both core distances weighs the larger core distance), so the tree is not unique; with
    ``tie_break=True`` equal weights are ordered by the Euclidean length, which makes the tree
    canonical (DBCV's internal nodes depend on it). Returns ``(a, b, w)`` arrays of the
    ``n - 1`` edges with the weights recomputed exactly from coordinate differences.
    """
    n = X.shape[0]
    if n < 2:
        return np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0)
    core = np.zeros(n) if core is None else core
    dense = dense_d = None
    if n <= dense_limit:
        dense_d = np.sqrt(_sqdist(X, X, sq, sq))
        dense = np.maximum(dense_d, core[:, None])
        np.maximum(dense, core[None, :], out=dense)
    best = np.full(n, np.inf)
    best_d = np.full(n, np.inf)
    parent = np.zeros(n, np.intp)
    in_tree = np.zeros(n, bool)
    a = np.empty(n - 1, np.intp)
    b = np.empty(n - 1, np.intp)
    u = 0
    in_tree[0] = True
    for t in range(n - 1):
        if dense is not None:
            row, row_d = dense[u], dense_d[u]
        else:
            row_d = X @ X[u]
            row_d *= -2.0
            row_d += sq
            row_d += sq[u]
            np.maximum(row_d, 0.0, out=row_d)
            np.sqrt(row_d, out=row_d)
            row = np.maximum(row_d, core)
            np.maximum(row, core[u], out=row)
        upd = row < best
        if tie_break:
            upd |= (row == best) & (row_d < best_d)
            best_d[upd & ~in_tree] = row_d[upd & ~in_tree]
        upd &= ~in_tree
        best[upd] = row[upd]
        parent[upd] = u
        best[u] = np.inf
        v = int(np.argmin(best))
        if tie_break:
            ties = np.flatnonzero(best == best[v])
            if ties.size > 1:
                v = int(ties[np.argmin(best_d[ties])])
        a[t], b[t] = parent[v], v
        in_tree[v] = True
        best[v] = np.inf
        u = v
    w = np.maximum(_exact_dist(X, a, b), np.maximum(core[a], core[b]))
    return a, b, w


def _single_linkage(n: int, a, b, w):
    """Binary merge tree (like scipy's linkage) of MST edges merged in increasing weight.

    Returns ``children`` of shape (n - 1, 2) and ``height`` (n - 1,): node ``n + t`` merges the
    two children at height ``height[t]``; the dc-distance of two points is the height of their
    lowest common ancestor.
    """
    order = np.argsort(w, kind="stable")
    comp = list(range(n))  # union-find over points (plain lists: faster than numpy scalars)
    node_of = list(range(n))  # tree node holding the component of a representative
    a_l, b_l = a.tolist(), b.tolist()

    children = np.empty((n - 1, 2), np.intp)
    for t, e in enumerate(order.tolist()):
        ra, rb = _find(comp, a_l[e]), _find(comp, b_l[e])
        children[t] = node_of[ra], node_of[rb]
        comp[rb] = ra
        node_of[ra] = n + t
    height = np.asarray(w, dtype=np.float64)[order]
    return children, height


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------
def _check_xy(X, labels, min_samples: int = 2):
    X = check_matrix("X", X, min_samples=min_samples)
    labels = check_labels("labels", labels, X.shape[0])
    bad = labels[(labels < 0) & (labels != NOISE)]
    if bad.size:
        raise ValueError(f"labels: negative label {int(bad[0])}; only -1 (noise) may be negative")
    return X, labels


def _clusters(labels, name: str, min_clusters: int = 2):
    ids, sizes = np.unique(labels[labels != NOISE], return_counts=True)
    if ids.size < min_clusters:
        raise ValueError(
            f"{name} needs at least {min_clusters} clusters (label -1 is noise), got {ids.size}"
        )
    return ids, sizes


# --------------------------------------------------------------------------------------------
# DISCO
# --------------------------------------------------------------------------------------------
def _dc_tree(X, min_points: int):
    """Core distances and single-linkage tree of the dc-distance (mutual reachability MST)."""
    Xc, sq = _prepare(X)
    n = X.shape[0]
    if n <= _DENSE_LIMIT:  # small: Prim on a dense matrix is simplest
        core = (
            _kth_neighbor_dist(Xc, sq, min_points, exclude_self=False)
            if min_points > 1
            else np.zeros(n)
        )
        a, b, w = _prim_mst(Xc, sq, core)
    else:
        k = min(n - 1, max(32, min_points))
        nbr, nbr_d = _knn(Xc, sq, k)
        # the point itself is its first neighbour in DISCO's core distance
        core = nbr_d[:, min_points - 2] if min_points > 1 else np.zeros(n)
        a, b, w = _boruvka_mr_mst(Xc, sq, core, nbr, nbr_d)
    children, height = _single_linkage(X.shape[0], a, b, w)
    return core, children, height


def _tree_cluster_stats(children, height, member, need_min: bool):
    """Per point and per group: sum (and optionally min) of dc-distances to the group's points.

    ``member`` is an (n,) array of group indices in ``0..k-1`` (``-1``: in no group). The sum
    for point i over group c is ``sum over ancestors v of i of height(v) * count_c(sibling)``,
    accumulated top-down, so the cost is O(n k) and no pairwise matrix is formed.
    """
    n = member.shape[0]
    k = int(member.max()) + 1 if member.size and member.max() >= 0 else 0
    n_nodes = 2 * n - 1
    counts = np.zeros((n_nodes, k))
    has = member >= 0
    counts[np.flatnonzero(has), member[has]] = 1.0
    for t in range(n - 1):
        counts[n + t] = counts[children[t, 0]] + counts[children[t, 1]]
    sums = np.zeros((n_nodes, k))
    mins = np.full((n_nodes, k), np.inf) if need_min else None
    for t in range(n - 2, -1, -1):
        node = n + t
        left, right = children[t]
        h = height[t]
        sums[left] = sums[node] + h * counts[right]
        sums[right] = sums[node] + h * counts[left]
        if need_min:
            mins[left] = np.where(counts[right] > 0, h, mins[node])
            mins[right] = np.where(counts[left] > 0, h, mins[node])
    return sums[:n], (mins[:n] if need_min else None)


def _silhouette_from_sums(sums, member, sizes):
    """Silhouette values from per-group distance sums (sklearn's conventions for singletons)."""
    n = member.shape[0]
    idx = np.arange(n)
    own = member
    with np.errstate(divide="ignore", invalid="ignore"):
        a = sums[idx, own] / (sizes[own] - 1)
        mean_other = sums / sizes[None, :]
        mean_other[idx, own] = np.inf
        b = mean_other.min(axis=1)
        s = (b - a) / np.maximum(a, b)
    s[sizes[own] == 1] = 0.0  # a singleton cluster scores 0, as in Rousseeuw and scikit-learn
    return np.nan_to_num(s, nan=0.0)


def _noise_scores(core, labels, cluster_ids, min_dc_to_cluster):
    """DISCO's noise score ``min(p_sparse, p_far)`` for every noise point."""
    noise = labels == NOISE
    cd_noise = core[noise]
    p_sparse = np.full(cd_noise.shape, np.inf)
    p_far = np.full(cd_noise.shape, np.inf)
    for c_idx, cid in enumerate(cluster_ids):
        max_core = core[labels == cid].max()
        for values, acc in ((cd_noise, p_sparse), (min_dc_to_cluster[:, c_idx], p_far)):
            den = np.maximum(values, max_core)
            with np.errstate(divide="ignore", invalid="ignore"):
                q = np.where(den > 0, (values - max_core) / den, 0.0)
            np.minimum(acc, q, out=acc)
    return np.minimum(p_sparse, p_far)


def disco_samples(X, labels, min_points: int = 5) -> np.ndarray:
    """DISCO score of every point (density-based silhouette on dc-distances).

    The dc-distance of two points is the minimax path distance in the mutual-reachability graph
    (weights ``max(d_ij, core_i, core_j)``, ``core_i`` the distance to the ``min_points``-th
    nearest neighbour counting the point itself, as in the authors' reference). It equals the
    height at which the two points merge in the single-linkage tree of that graph's minimum
    spanning tree; the silhouette sums are accumulated on that tree, so memory is ``O(n k)``
    (the reference builds the ``n x n`` dc matrix).

    Cluster points get the silhouette ``(b - a) / max(a, b)`` on dc-distances, computed among
    the non-noise points (singleton clusters score 0). Noise points (label ``-1``) get
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
    X, labels = _check_xy(X, labels, min_samples=1)
    n = X.shape[0]
    min_points = check_int("min_points", min_points, minimum=1, maximum=n)
    cluster_ids = np.unique(labels[labels != NOISE])
    if cluster_ids.size == 0:
        return np.full(n, -1.0)
    has_noise = bool(np.any(labels == NOISE))
    if cluster_ids.size == 1 and not has_noise:
        return np.zeros(n)
    core, children, height = _dc_tree(X, min_points)
    member = np.searchsorted(cluster_ids, labels)
    member[labels == NOISE] = -1
    sizes = np.bincount(member[member >= 0], minlength=cluster_ids.size).astype(float)
    sums, mins = _tree_cluster_stats(children, height, member, need_min=has_noise)
    out = np.empty(n)
    pts = member >= 0
    if cluster_ids.size == 1:
        # the reference treats every noise point as a singleton cluster here: b = min dc to noise
        noise_grp = np.where(labels == NOISE, 0, -1)
        _, min_noise = _tree_cluster_stats(children, height, noise_grp, need_min=True)
        a = sums[pts, 0] / (sizes[0] - 1) if sizes[0] > 1 else np.zeros(int(pts.sum()))
        b = min_noise[pts, 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.nan_to_num((b - a) / np.maximum(a, b), nan=0.0)
        if sizes[0] == 1:
            s[:] = 0.0
        out[pts] = s
    else:
        out[pts] = _silhouette_from_sums(sums[pts], member[pts], sizes)
    if has_noise:
        out[~pts] = _noise_scores(core, labels, cluster_ids, mins[~pts])
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


# --------------------------------------------------------------------------------------------
# DBCV
# --------------------------------------------------------------------------------------------
#: Allowed ``mst`` of :func:`dbcv`: which of the tied minimum spanning trees a cluster gets.
_DBCV_TREES = ("hdbscan", "length_ties")
#: Allowed ``metric`` of :func:`dbcv`.
_DBCV_METRICS = ("euclidean", "sqeuclidean")


def _int_power(A: np.ndarray, p: int) -> np.ndarray:
    """Raise ``A`` to a positive integer power by repeated squaring (much faster than pow)."""
    result = None
    base = A.copy()
    while True:
        if p & 1:
            result = base.copy() if result is None else result * base
        p >>= 1
        if not p:
            return result
        base *= base


def _all_points_core_distance(Xk, sqk, exponent: int) -> np.ndarray:
    """Moulavi et al.'s apcd within one cluster, computed without overflow.

    ``apcd(x) = (mean_j (1 / d(x, j))^D)^(-1/D)`` over the other points of the cluster, with
    ``D = exponent`` (the dimensionality in the paper). Scaling by the nearest distance ``m``
    keeps every power <= 1: ``apcd = m * (mean_j (m / d_j)^D)^(-1/D)``. A duplicate (``m = 0``)
    gives ``apcd = 0``, the limit of the definition.
    """
    n = Xk.shape[0]
    out = np.empty(n)
    for sl in _blocks(n, n):
        D = np.sqrt(_sqdist(Xk[sl], Xk, sqk[sl], sqk))
        rows = np.arange(sl.start, sl.stop)
        r = np.arange(len(rows))
        D[r, rows] = np.inf  # drop self
        nn = np.argmin(D, axis=1)
        m = _exact_dist(Xk, rows, nn)
        D[r, nn] = m
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(m[:, None] > 0, m[:, None] / D, 0.0)
            mean = np.sum(_int_power(ratio, exponent), axis=1) / (n - 1)
            out[sl] = np.where(m > 0, m * mean ** (-1.0 / exponent), 0.0)
    return out


def _apcd_hdbscan(D: np.ndarray, exponent: int) -> np.ndarray:
    """Compute hdbscan's apcd from one cluster's dense distance matrix ``D`` (zero diagonal).

    ``(mean_j (1 / d_ij)^D)^(-1/D)`` where zero distances (the point itself, copies of it) add
    nothing but the mean still divides by ``n - 1``; if every sum is 0, every apcd is 0. The
    operations are hdbscan's, in its order, so that the values (and hence the ties between
    mutual-reachability distances) are the same bit for bit; like hdbscan, a power that
    overflows gives ``apcd = 0``.
    """
    powers = np.zeros_like(D)
    nonzero = D != 0
    with np.errstate(over="ignore"):
        powers[nonzero] = (1.0 / D[nonzero]) ** exponent
    mean = powers.sum(axis=1) / (D.shape[0] - 1)
    if mean.sum() == 0:
        return np.zeros(D.shape[0])
    with np.errstate(divide="ignore"):
        return mean ** (-1.0 / exponent)


def _prim_first_met(W: np.ndarray):
    """Build the minimum spanning tree hdbscan's DBCV gets from a dense weight matrix ``W``.

    Prim's algorithm from node 0; each step adds the lowest-index node among those nearest to
    the tree (hdbscan's ``mst_linkage_core``), rows of ``W`` being read for the node just added.
    The new node is attached to the lowest-index tree node whose weight to it (its own row of
    ``W``) is ``numpy.isclose`` to the step's weight, as ``internal_minimum_spanning_tree``
    rewrites the edge list; the edge keeps the step's weight. Returns ``(a, b, w)`` of the
    ``n - 1`` steps in order: attached-to node, new node, weight.
    """
    n = W.shape[0]
    a = np.empty(n - 1, np.intp)
    b = np.empty(n - 1, np.intp)
    w = np.empty(n - 1)
    in_tree = np.zeros(n, bool)
    best = np.full(n, np.inf)
    u = 0
    for t in range(n - 1):
        in_tree[u] = True
        best[u] = np.inf
        np.minimum(best, W[u], out=best, where=~in_tree)
        v = int(np.argmin(best))  # the first index among equal weights
        b[t], w[t] = v, best[v]
        # never empty: the tree node that gave best[v] is within rounding of it
        a[t] = np.flatnonzero(in_tree & np.isclose(W[v], w[t]))[0]
        u = v
    return a, b, w


def _internal(n: int, a, b, w, lone: str):
    """Return internal nodes (MST degree > 1) and the weights of edges joining two of them.

    When no node is internal (a two-point cluster), ``lone="all"`` takes every node (the
    authors' MATLAB code) and ``lone="first"`` node 0 only (hdbscan). When no edge joins two
    internal nodes (three points), every edge counts (both).
    """
    deg = np.bincount(np.concatenate([a, b]), minlength=n)
    nodes = np.flatnonzero(deg > 1)
    if nodes.size == 0:
        nodes = np.arange(n) if lone == "all" else np.zeros(1, np.intp)
    inner = (deg[a] > 1) & (deg[b] > 1)
    edges = w[inner] if np.any(inner) else w
    return nodes, edges


def _dbcv_cluster_hdbscan(Xk, metric: str, exponent: int):
    """Return apcd, internal nodes and sparseness of one cluster, as hdbscan computes them."""
    D = pairwise_distances(Xk, metric=metric)
    apcd = _apcd_hdbscan(D, exponent)
    W = np.maximum(D, np.maximum(apcd[:, None], apcd[None, :]))
    a, b, w = _prim_first_met(W)
    nodes, edges = _internal(Xk.shape[0], a, b, w, lone="first")
    return apcd, nodes, float(edges.max())


def _dbcv_cluster_length_ties(Xk, exponent: int):
    """Return apcd, internal nodes and sparseness of one cluster, tied weights by length."""
    Xc, sq = _prepare(Xk)
    apcd = _all_points_core_distance(Xc, sq, exponent)
    a, b, w = _prim_mst(Xc, sq, apcd, tie_break=True)
    nodes, edges = _internal(Xk.shape[0], a, b, w, lone="all")
    return apcd, nodes, float(edges.max())


def _min_cross(X, A, B, metric: str = "euclidean", core=None) -> float:
    """Smallest distance between the rows ``A`` and the rows ``B`` of ``X``, in row blocks.

    With ``core`` (per row of ``X``) the distances are mutual-reachability distances
    ``max(d_ij, core_i, core_j)``. Distances come from ``scipy.spatial.distance.cdist``.
    """
    best = np.inf
    for sl in _blocks(A.size, B.size):
        D = cdist(X[A[sl]], X[B], metric)
        if core is not None:
            np.maximum(D, core[A[sl]][:, None], out=D)
            np.maximum(D, core[B][None, :], out=D)
        best = min(best, float(D.min()))
    return best


def _dbcv_clusters(X, labels, ids, mst: str, metric: str):
    """Return apcd of every point, and per cluster its sparseness and internal nodes (into X)."""
    dim = X.shape[1]
    apcd = np.empty(X.shape[0])
    dsc = np.empty(ids.size)
    internal = []
    for c, cid in enumerate(ids):
        mask = labels == cid
        if mst == "hdbscan":
            core, nodes, dsc[c] = _dbcv_cluster_hdbscan(X[mask], metric, dim)
        else:
            exponent = 2 * dim if metric == "sqeuclidean" else dim
            core, nodes, dsc[c] = _dbcv_cluster_length_ties(X[mask], exponent)
        apcd[mask] = core
        internal.append(np.flatnonzero(mask)[nodes])
    return apcd, dsc, internal


def dbcv(X, labels, mst: str = "hdbscan", metric: str = "euclidean") -> float:
    """Density-Based Clustering Validation index (Moulavi et al. 2014).

    Per cluster: all-points core distances ``apcd_i = (mean_j (1 / d_ij)^D)^(-1/D)`` over the
    cluster's other points, ``D`` = n_features for either metric (as in hdbscan); the minimum
    spanning tree (MST) of the mutual-reachability distances ``max(d_ij, apcd_i, apcd_j)``;
    density sparseness ``DSC`` = largest MST edge between internal nodes (degree > 1). The
    separation ``DSPC`` of two clusters is the smallest mutual-reachability distance between
    their internal nodes, computed cluster pair by pair in blocks (never ``n x n``).
    ``V_c = (min DSPC - DSC) / max(min DSPC, DSC)`` (0 when both are 0) and
    ``DBCV = sum_c |c| / n * V_c``, ``n`` counting noise points, so noise lowers the score.

    Mutual-reachability distances tie often (every edge shorter than both core distances
    weighs the larger core distance), so the MST and its internal nodes are not unique, and
    the choice changes the value; ``mst`` makes it:

    * ``"hdbscan"`` equals ``hdbscan.validity.validity_index`` up to rounding: its apcd
      formula (zero distances left out of the sum, mean over ``|c| - 1``, powers that may
      overflow in high dimension), the tree its Prim's algorithm meets first (lowest index
      among equal weights, each node attached to the lowest-index earlier node at a
      ``numpy.isclose`` weight) and its fallbacks (node 0 when no node is internal, all edges
      when no edge joins two internal nodes). The value depends on the order of the points;
      a cluster's dense ``|c| x |c|`` distance matrix is held, as in hdbscan.
    * ``"length_ties"`` orders equal weights by Euclidean edge length: a canonical tree and a
      value independent of the point order. apcd in a scaled form that cannot overflow, 0 for
      a duplicated point (the limit of the definition); every node counts as internal when
      none is (the authors' MATLAB code). Memory ``O(n)`` beyond blocks of distances.

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
    X, labels = _check_xy(X, labels)
    check_choice("mst", mst, _DBCV_TREES)
    check_choice("metric", metric, _DBCV_METRICS)
    ids, sizes = _clusters(labels, "dbcv")
    if np.any(sizes < 2):
        raise ValueError(
            f"labels: dbcv needs at least 2 points per cluster; cluster {ids[sizes < 2][0]} has 1"
        )
    # length_ties works on Euclidean distances; squared ones come from exponent 2 D (see above)
    squared = mst == "length_ties" and metric == "sqeuclidean"
    apcd, dsc, internal = _dbcv_clusters(X, labels, ids, mst, metric)
    dspc = np.full((ids.size, ids.size), np.inf)
    for c, o in itertools.combinations(range(ids.size), 2):
        dspc[c, o] = dspc[o, c] = _min_cross(
            X, internal[c], internal[o], "euclidean" if mst == "length_ties" else metric, apcd
        )
    sep = dspc.min(axis=1)
    if squared:
        sep, dsc = sep**2, dsc**2
    den = np.maximum(sep, dsc)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(den > 0, (sep - dsc) / den, 0.0)
    return float(np.sum(sizes * v) / X.shape[0])


# --------------------------------------------------------------------------------------------
# DCSI
# --------------------------------------------------------------------------------------------
#: Allowed ``variant`` of :func:`dcsi`.
_DCSI_VARIANTS = ("r", "paper", "disco")


def _kth_distinct(S: np.ndarray, k: int) -> np.ndarray:
    """Per row of the row-sorted ``S``: the ``k``-th (0-based) distinct value, else the largest."""
    new = np.ones(S.shape, bool)
    new[:, 1:] = S[:, 1:] != S[:, :-1]
    hit = np.cumsum(new, axis=1) == k + 1
    pos = np.where(hit.any(axis=1), hit.argmax(axis=1), S.shape[1] - 1)
    return S[np.arange(S.shape[0]), pos]


def _dcsi_radii(Xk, min_pts: int, distinct: bool):
    """Per point of one cluster: its ``min_pts``-th and ``2 min_pts``-th neighbour distances.

    The point itself is not counted (a copy of it is). ``distinct=True`` (the DISCO port):
    distances are squared; the second radius is the value at position ``2 min_pts`` of the
    sorted distinct distances from the point, 0 (itself and its copies) first, or the largest
    if there are fewer; the first radius is ``inf`` when the cluster has at most ``min_pts``
    points (then fewer than ``min_pts`` others can lie within any radius).
    """
    n, k = Xk.shape[0], 2 * min_pts
    r_core = np.full(n, np.inf)
    r_eps = np.empty(n)
    for sl in _blocks(n, n):
        D = cdist(Xk[sl], Xk)  # column of the point itself: 0, so it sorts first
        if distinct:
            D **= 2
            D.sort(axis=1)
            r_eps[sl] = _kth_distinct(D, k)
            if min_pts < n:
                r_core[sl] = D[:, min_pts]
        else:
            D.partition([min_pts, k], axis=1)
            r_core[sl], r_eps[sl] = D[:, min_pts], D[:, k]
    return r_core, r_eps


def _dcsi_mean_of_pairs(X, cores, conn, variant: str) -> float:
    """Mean over cluster pairs of ``Sep / (Sep + Conn)`` (= ``q / (1 + q)``), per ``variant``.

    ``cores``: indices into ``X`` of each cluster's core points; ``conn``: each cluster's
    Euclidean connectedness. A pair with a coreless cluster, or with ``Sep = Conn = 0``, adds 0.
    """
    vals = []
    for c, o in itertools.combinations(range(len(cores)), 2):
        if cores[c].size == 0 or cores[o].size == 0:
            vals.append(0.0)
            continue
        sep = _min_cross(X, cores[c], cores[o])
        cn = max(conn[c], conn[o])
        if variant == "disco":
            sep, cn = sep**2, cn**2
        elif variant == "r":
            sep = 2.0 * sep
        vals.append(sep / (sep + cn) if sep + cn > 0 else 0.0)
    return float(np.mean(vals))


def dcsi(X, labels, min_pts: int = 5, variant: str = "r") -> float:
    """Density Cluster Separability Index (Gauss, Scheipl & Herrmann 2023).

    For each cluster, ``eps`` = median over its points of the distance to the
    ``2 * min_pts``-th nearest neighbour within the cluster; core points are those whose
    ``min_pts``-th within-cluster neighbour lies within ``eps`` (the point itself not
    counted). ``Conn_c`` = largest edge of the minimum spanning tree of the cluster's core
    points; ``Sep_cd`` = smallest distance between core points of clusters ``c`` and ``d``.
    The pairwise index is ``q / (1 + q)`` with ``q = Sep_cd / max(Conn_c, Conn_d)`` and the
    index of a partition is the mean over all pairs of clusters (the authors' results use this
    mean; their R code notes it). A pair with ``Sep = Conn = 0`` scores 0. The variants differ
    as follows:

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
    X, labels = _check_xy(X, labels)
    min_pts = check_int("min_pts", min_pts, minimum=1)
    check_choice("variant", variant, _DCSI_VARIANTS)
    ids, sizes = _clusters(labels, "dcsi")
    squared = variant == "disco"
    if not squared and np.any(sizes <= 2 * min_pts):
        small = ids[sizes <= 2 * min_pts][0]
        raise ValueError(
            f"labels: dcsi needs more than 2 * min_pts = {2 * min_pts} points per cluster; "
            f"cluster {small} has {sizes[ids == small][0]}"
        )
    cores, conn = [], np.zeros(ids.size)
    for c, cid in enumerate(ids):
        idx = np.flatnonzero(labels == cid)
        r_core, r_eps = _dcsi_radii(X[idx], min_pts, distinct=squared)
        cores.append(idx[r_core <= np.median(r_eps)])
        if cores[c].size > 1:
            Xc, sq = _prepare(X[cores[c]])
            conn[c] = _prim_mst(Xc, sq)[2].max()
    return _dcsi_mean_of_pairs(X, cores, conn, variant)


# --------------------------------------------------------------------------------------------
# S_Dbw
# --------------------------------------------------------------------------------------------
def s_dbw(
    X,
    labels,
    method: str = "tong",
    dispersion: str = "std",
    centers: str = "nearest",
) -> float:
    """S_Dbw index (Halkidi & Vazirgiannis 2001): ``Scat + Dens_bw``; lower is better.

    ``Scat = (1/c) sum_i ||sigma(v_i)|| / ||sigma(S)||`` with ``sigma`` the per-dimension
    dispersion vector of a cluster / the data set; ``stdev = sqrt(sum_i ||sigma(v_i)||) / c``;
    ``density(u)`` counts the points of the clusters involved within ``stdev`` of ``u``;
    ``Dens_bw = 1/(c(c-1)) sum_{i != j} density(u_ij) / max(density(v_i), density(v_j))`` with
    ``u_ij`` the midpoint of the centres.

    ``method="halkidi", dispersion="variance", centers="mean"`` is the 2001 paper literally.
    The defaults are the ``s-dbw`` package's defaults, which MNIST-Nd's Table 1 used:
    ``method="tong"`` (Tong & Tan 2009: scattering weighted by ``(n - n_i) / n`` and divided by
    ``c - 1``; density counts points inside a per-dimension box ``1.96 sigma_ij / sqrt(n_ij)``
    around a midpoint shifted towards the denser centre, ``lambda = 0.7``), standard deviations
    and centre = the cluster's data point nearest to its mean. With the same settings this
    function agrees with the package, and ``method="halkidi", dispersion="std",
    centers="nearest"`` agrees with the package's ``method="Halkidi"``. In high dimension the
    2001 radius ``stdev`` is far below the typical point-to-centre distance, so the densities
    vanish and the Halkidi variant raises (the package raises too).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Finite data.
    labels : array-like of shape (n_samples,)
        Integer cluster labels; ``-1`` (noise) points are left out (the package's ``"filter"``).
    method : {"halkidi", "tong"}
        Index variant.
    dispersion : {"variance", "std"}
        Per-dimension dispersion vector ``sigma``.
    centers : {"mean", "nearest"}
        Cluster centre: the mean, or the cluster's data point nearest to it.

    Returns
    -------
    float
        Non-negative; lower is better.

    Raises
    ------
    ValueError
        Fewer than two clusters, or two or more clusters with zero density around their centre.
    """
    X, labels = _check_xy(X, labels)
    check_choice("method", method, ["halkidi", "tong"])
    check_choice("dispersion", dispersion, ["variance", "std"])
    check_choice("centers", centers, ["mean", "nearest"])
    keep = labels != NOISE
    X, labels = X[keep], labels[keep]
    ids, sizes = _clusters(labels, "s_dbw")
    c, n = ids.size, X.shape[0]

    def spread(A):
        return A.var(axis=0) if dispersion == "variance" else A.std(axis=0)

    groups = [X[labels == cid] for cid in ids]
    sig = [spread(g) for g in groups]
    sig_norm = np.array([np.sqrt(s @ s) for s in sig])
    sig_all = spread(X)
    sig_all_norm = np.sqrt(sig_all @ sig_all)
    if sig_all_norm == 0:
        raise ValueError("X: all points are identical; S_Dbw is undefined")
    cent = []
    for g in groups:
        m = g.mean(axis=0)
        if centers == "nearest":
            m = g[np.argmin(np.sum((g - m) ** 2, axis=1))]
        cent.append(m)
    if method == "halkidi":
        scat = sig_norm.sum() / (sig_all_norm * c)
        stdev = np.sqrt(sig_norm.sum()) / c

        def density(members, u):
            return sum(int(np.sum(np.sqrt(np.sum((g - u) ** 2, axis=1)) <= stdev)) for g in members)

        dens = np.array([density([groups[i]], cent[i]) for i in range(c)])
    else:
        w = (n - sizes) / n
        scat = np.sum(w * sig_norm) / (sig_all_norm * (c - 1))
        std = [g.std(axis=0) for g in groups]

        def box_density(members, u, sigma, n_ij):
            half = 1.96 * sigma / np.sqrt(n_ij)
            return sum(int(np.sum(np.all(np.abs(g - u) <= half, axis=1))) for g in members)

        dens = np.array([box_density([groups[i]], cent[i], std[i], sizes[i]) for i in range(c)])
    if np.count_nonzero(dens == 0) > 1:
        raise ValueError("labels: two or more clusters have zero density around their centre")
    total = 0.0
    for i in range(c):
        for j in range(c):
            if i == j:
                continue
            if method == "halkidi":
                u = (cent[i] + cent[j]) / 2
                d_ij = density([groups[i], groups[j]], u)
            else:
                n_ij = sizes[i] + sizes[j]
                lam = 0.7
                u = lam * (cent[i] * sizes[j] + cent[j] * sizes[i]) / n_ij + (1 - lam) * (
                    (cent[i] * dens[i] + cent[j] * dens[j]) / (dens[i] + dens[j])
                )
                d_ij = box_density([groups[i], groups[j]], u, (std[i] + std[j]) / 2, n_ij)
            total += d_ij / max(dens[i], dens[j])
    return float(total / (c * (c - 1)) + scat)


# --------------------------------------------------------------------------------------------
# density peaks
# --------------------------------------------------------------------------------------------
def _unique_rows(X):
    """Distinct rows, the inverse map and multiplicities (duplicates are handled exactly)."""
    U, inverse, counts = np.unique(X, axis=0, return_inverse=True, return_counts=True)
    return U, inverse.reshape(-1), counts.astype(np.float64)


def _collect_pairs_multi(U, sqU, counts, brackets, cap: float):
    """For several ``[lo, hi]`` brackets (squared), count pairs below and collect those inside.

    One blocked pass serves every bracket: each block's distances are computed once, the pairs
    up to the largest ``hi`` are picked out, and every bracket works on that short list only.
    Returns, per bracket, the weighted count below ``lo`` and the pairs (i < j) inside with their
    weights and squared distances; ``None`` for a bracket holding more than ``cap`` pairs.
    """
    m = U.shape[0]
    ones = bool(np.all(counts == 1))
    nb = len(brackets)
    hmax = max(hi for _, hi in brackets)
    below = [0.0] * nb
    parts = [([], [], [], []) for _ in range(nb)]
    inside = [0] * nb
    alive = [True] * nb
    for sl in _blocks(m, m):
        D = _sqdist(U[sl], U[sl.start :], sqU[sl], sqU[sl.start :])
        _mask_lower(D, np.inf)  # each pair once (j > i)
        ii, jj = np.nonzero(D <= hmax)
        v = D[ii, jj]
        jj = jj + sl.start
        ii = ii + sl.start
        w = None if ones else counts[ii] * counts[jj]
        for k, (lo, hi) in enumerate(brackets):
            if not alive[k]:
                continue
            low = v < lo
            below[k] += float(np.count_nonzero(low)) if ones else float(w[low].sum())
            sel = np.flatnonzero(~low & (v <= hi))
            inside[k] += sel.size
            if inside[k] > cap:
                alive[k] = False
                parts[k] = None
                continue
            ci, cj, cw, cv = parts[k]
            ci.append(ii[sel])
            cj.append(jj[sel])
            cw.append(counts[ii[sel]] * counts[jj[sel]])
            cv.append(v[sel])
    cat = np.concatenate
    return [(below[k], *(cat(a) for a in parts[k])) if alive[k] else None for k in range(nb)]


def _collect_pairs(U, sqU, counts, lo: float, hi: float, cap: float):
    """Count pairs below ``lo`` and collect those in ``[lo, hi]`` (squared), in one pass.

    Returns the weighted count below, and the pairs (i < j) inside with their weights and
    squared distances; ``None`` if more than ``cap`` pairs fall inside.
    """
    return _collect_pairs_multi(U, sqU, counts, [(lo, hi)], cap)[0]


def _histogram_bracket(U, sqU, counts, targets, cap: float):
    """Narrow ``[lo, hi]`` (squared distances) around the target ranks by weighted histograms."""
    m = U.shape[0]
    lo, hi = 0.0, float(4 * np.max(sqU)) * (1 + 1e-9) + 1e-300
    below = 0.0  # weighted count of pairs with d2 < lo
    n_bins = 1 << 14
    for _ in range(64):
        hist = np.zeros(n_bins)
        inside = 0.0
        width = (hi - lo) / n_bins
        for sl in _blocks(m, m):
            D = _sqdist(U[sl], U, sqU[sl], sqU)
            upper = np.arange(sl.stop - sl.start)[:, None] < (np.arange(m)[None, :] - sl.start)
            sel = upper & (D >= lo) & (D <= hi)
            vals = D[sel]
            wts = (counts[sl][:, None] * counts[None, :])[sel]
            bins = np.minimum(((vals - lo) / width).astype(np.int64), n_bins - 1)
            hist += np.bincount(bins, weights=wts, minlength=n_bins)
            inside += wts.sum()
        if inside <= cap or width <= 1e-15 * max(hi, 1e-300):
            break
        cum = below + np.cumsum(hist)
        first = min(int(np.searchsorted(cum, min(targets), side="right")), n_bins - 1)
        last = min(int(np.searchsorted(cum, max(targets), side="right")), n_bins - 1)
        below = cum[first - 1] if first > 0 else below
        lo, hi = lo + first * width, lo + (last + 1) * width
    return lo, hi


def _sample_bracket(Ds, S, counts, sqU, targets, distinct_total, sorted_flat=None):
    """Squared-distance bracket ``[lo, hi]`` around target ranks, from a sample of rows.

    ``sorted_flat`` (the sorted sample, unit weights only) lets several brackets share one sort;
    its order statistics are the values ``np.partition`` would give.
    """
    f = np.array(targets) / distinct_total
    delta = 6 * np.sqrt(f * (1 - f) / (40 * S.size)) + 2e-4
    f_lo, f_hi = max(f.min() - delta.max(), 0.0), min(f.max() + delta.max(), 1.0)
    if np.all(counts == 1):
        flat = Ds.ravel()
        n_s = flat.size - S.size  # the inf self-distances sort last
        k_lo, k_hi = int(f_lo * (n_s - 1)), int(np.ceil(f_hi * (n_s - 1)))
        part = np.partition(flat, [k_lo, k_hi]) if sorted_flat is None else sorted_flat
        lo, hi = part[k_lo], part[k_hi]
    else:
        Ws = counts[S][:, None] * counts[None, :]
        Ws[np.arange(S.size), S] = 0.0
        o = np.argsort(Ds, axis=None)
        vs, cs = Ds.ravel()[o], np.cumsum(Ws.ravel()[o])
        cs /= cs[-1]
        lo = vs[min(int(np.searchsorted(cs, f_lo)), vs.size - 1)]
        hi = vs[min(int(np.searchsorted(cs, f_hi)), vs.size - 1)]
    if f.min() - delta.max() <= 0:
        lo = 0.0
    if f.max() + delta.max() >= 1 or not np.isfinite(hi):
        hi = float(4 * np.max(sqU)) * (1 + 1e-9) + 1e-300
    return float(lo), float(hi)


def _select_ranks(res, pending, targets, sqU, Uraw, values) -> None:
    """Exact distances of the target ranks from the pairs collected in a bracket."""
    below, ci, cj, cw, d2 = res
    if np.all(cw == 1):
        # unit weights: the rank inside the bracket is t - below, so selection (no full sort)
        # finds the BLAS value there; the window of near-ties around it is resolved on the
        # exact distances, as below
        scale = 1e-12 * float(np.max(sqU))
        for r, t in zip(pending, targets, strict=True):
            pos = min(int(t - below), d2.size - 1)
            v = np.partition(d2, pos)[pos]
            tol = 1e-9 * v + scale
            a = int(np.count_nonzero(d2 < v - tol))
            idx = np.flatnonzero((d2 >= v - tol) & (d2 <= v + tol))
            exact = _exact_dist(Uraw, ci[idx], cj[idx])
            k = min(int(t - below - a), idx.size - 1)
            values[r] = float(np.partition(exact, k)[k])
        return
    # order on the BLAS values; only a window of near-ties around each target needs the
    # exact distances (values outside it differ by far more than the rounding error)
    order = np.argsort(d2, kind="stable")
    d2, ci, cj, cw = d2[order], ci[order], cj[order], cw[order]
    cum = below + np.cumsum(cw)
    for r, t in zip(pending, targets, strict=True):
        pos = min(int(np.searchsorted(cum, t, side="right")), d2.size - 1)
        tol = 1e-9 * d2[pos] + 1e-12 * float(np.max(sqU))
        a = int(np.searchsorted(d2, d2[pos] - tol, side="left"))
        b = int(np.searchsorted(d2, d2[pos] + tol, side="right"))
        exact = _exact_dist(Uraw, ci[a:b], cj[a:b])
        sub = np.argsort(exact, kind="stable")
        base = below + (cum[a - 1] - below if a > 0 else 0.0)
        sub_cum = base + np.cumsum(cw[a:b][sub])
        k = min(int(np.searchsorted(sub_cum, t, side="right")), b - a - 1)
        values[r] = float(exact[sub][k])


def _pairwise_percentiles(U, sqU, counts, percentiles, Uraw) -> list[float]:
    """Exact ``np.percentile`` (linear) of all n(n-1)/2 pairwise distances, for several q at once.

    Distinct rows ``U`` carry multiplicities ``counts``: a pair of distinct rows stands for
    ``c_u * c_v`` distances, a row for ``c_u (c_u - 1) / 2`` zeros. A sample of rows brackets
    each percentile's target order statistics; one blocked pass over all pairs counts, for every
    bracket, the pairs below it and collects those inside, whose distances are recomputed from
    coordinate differences and selected exactly. A bracket that misses (checked) is narrowed by
    weighted histograms and collected again on its own. The result for each percentile is the
    same as computing it alone.
    """
    m = U.shape[0]
    n = counts.sum()
    total = n * (n - 1) / 2
    zeros = float(np.sum(counts * (counts - 1) / 2))
    distinct_total = total - zeros
    cap = 4_000_000
    jobs, out = [], []
    for q in percentiles:
        h = (total - 1) * q / 100.0
        lo_r, hi_r = int(np.floor(h)), int(np.ceil(h))
        values = {r: 0.0 for r in (lo_r, hi_r) if r < zeros}
        pending = [r for r in sorted({lo_r, hi_r}) if r >= zeros]
        out.append((h, lo_r, hi_r, values))
        if pending:
            jobs.append((pending, [r - zeros for r in pending], values))  # ranks among distinct
    if jobs:
        # brackets from one sample of rows (rows are the sampling units: conservative margin)
        S = np.unique(np.linspace(0, m - 1, min(m, 512)).astype(np.intp))
        Ds = _sqdist(U[S], U, sqU[S], sqU)
        Ds[np.arange(S.size), S] = np.inf
        shared = np.sort(Ds, axis=None) if len(jobs) > 1 and np.all(counts == 1) else None
        brackets = [_sample_bracket(Ds, S, counts, sqU, t, distinct_total, shared)
                    for _, t, _ in jobs]
        # widen by a relative 1e-9 so rounding of the BLAS distances cannot drop a pair
        wide = [(lo * (1 - 1e-9), hi * (1 + 1e-9) + 1e-300) for lo, hi in brackets]
        if len(wide) == 1:
            got = [_collect_pairs(U, sqU, counts, *wide[0], cap)]
        else:
            got = _collect_pairs_multi(U, sqU, counts, wide, cap)
        for (pending, targets, values), res in zip(jobs, got, strict=True):
            ok = res is not None and res[0] <= min(targets) and max(targets) < res[0] + res[3].sum()
            if not ok:
                lo, hi = _histogram_bracket(U, sqU, counts, targets, cap)
                res = _collect_pairs(U, sqU, counts, lo * (1 - 1e-9), hi * (1 + 1e-9) + 1e-300,
                                     cap)
                if res is None or not (res[0] <= min(targets)
                                       and max(targets) < res[0] + res[3].sum()):
                    raise RuntimeError("internal: could not bracket the distance percentile")
            _select_ranks(res, pending, targets, sqU, Uraw, values)
    return [values[lo_r] + (h - lo_r) * (values[hi_r] - values[lo_r])
            for h, lo_r, hi_r, values in out]


def _pairwise_percentile(U, sqU, counts, percentile: float, Uraw) -> float:
    """Exact ``np.percentile`` (linear) of all pairwise distances (see _pairwise_percentiles)."""
    return _pairwise_percentiles(U, sqU, counts, [percentile], Uraw)[0]


#: Neighbours per point searched first for the nearest denser point (shared by all radii).
_DP_NEIGHBOURS = 32


def _delta_triangular(U, U_raw, sqU, inverse, rep_rank, is_first):
    """``delta`` by one lower-triangular pass over the rows sorted by density (one radius)."""
    m, n = U.shape[0], inverse.size
    # in density order, the denser rows of row p are rows 0..p-1
    perm = np.argsort(rep_rank, kind="stable")
    Us, sqs = U[perm], sqU[perm]
    near_j = np.full(m, -1, np.int64)
    for sl in _blocks(m, m):
        D = _sqdist(Us[sl], Us[: sl.stop], sqs[sl], sqs[: sl.stop], clip=False)
        _mask_upper_from(D, sl.start, np.inf)
        near_j[sl] = np.argmin(D, axis=1)
    near_j[0] = -1
    near = np.empty(m)
    near[1:] = _exact_dist(U_raw, perm[1:], perm[near_j[1:]])
    # the densest row: largest distance to any point
    top_row = np.sqrt(np.maximum(_sqdist(Us[:1], Us, sqs[:1], sqs)[0], 0.0))
    near[0] = float(_exact_dist(U_raw, perm[0], perm[int(np.argmax(top_row))]))
    near_u = np.empty(m)
    near_u[perm] = near
    delta = np.zeros(n)
    delta[is_first] = near_u[inverse[is_first]]
    return delta


def _density_order_delta(U, U_raw, sqU, inverse, rho, knn=None):
    """``delta`` of every point for given densities (strict order, duplicates as documented).

    ``knn`` = ``(idx, dist)``, the exact nearest neighbours of every distinct row (worth
    computing once for several radii): a row's nearest denser row is the first denser one in its
    list, when it is clearly closer than the list's last entry; the few other rows (local
    density maxima) are searched among all rows. Without ``knn`` (one radius) one
    lower-triangular pass in density order searches all rows. Both pick the nearest denser row;
    they can differ only where two candidates are equally near up to the rounding of the
    expanded distance formula.
    """
    n, m = rho.size, U.shape[0]
    # strict order: rho (rounded so that float noise cannot split ties), then index
    key = np.round(rho / max(rho.max(), 1e-300), 9)
    order = np.lexsort((np.arange(n), -key))
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    # each distinct row is represented by its first (densest-ranked) copy
    rep_rank = np.full(m, n, np.int64)
    np.minimum.at(rep_rank, inverse, rank)
    is_first = rank == rep_rank[inverse]
    if knn is None:
        return _delta_triangular(U, U_raw, sqU, inverse, rep_rank, is_first)
    idx, dist = knn
    rows = np.arange(m)
    denser = rep_rank[idx] < rep_rank[:, None]
    first = np.argmax(denser, axis=1)
    found = denser[rows, first]
    if idx.shape[1] < m - 1:  # a partial list: the hit must be clear of its (rounded) end
        found &= dist[rows, first] < dist[:, -1] * (1 - 1e-6)
    top = int(np.argmin(rep_rank))
    found[top] = False
    near_j = np.where(found, idx[rows, first], -1)
    rest = np.flatnonzero(~found)
    rest = rest[rest != top]
    for sl in _blocks(rest.size, m):
        r = rest[sl]
        D = _sqdist(U[r], U, sqU[r], sqU, clip=False)
        D[rep_rank[None, :] >= rep_rank[r][:, None]] = np.inf  # only denser rows
        near_j[r] = np.argmin(D, axis=1)
    near_u = np.empty(m)
    others = rows != top
    near_u[others] = _exact_dist(U_raw, rows[others], near_j[others])
    # the densest row: largest distance to any point
    far = _sqdist(U[top : top + 1], U, sqU[top : top + 1], sqU)[0]
    near_u[top] = float(_exact_dist(U_raw, top, int(np.argmax(far))))
    delta = np.zeros(n)
    delta[is_first] = near_u[inverse[is_first]]
    return delta


def density_peaks_multi(X, percentiles) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """:func:`density_peaks` for several percentiles of the same ``X``, sharing distance passes.

    Every result equals ``density_peaks(X, p)`` (``rho`` bitwise, ``delta`` up to the rounding
    of near-equal candidate distances, equal in our checks): the exact percentiles of the pairwise
    distances come from one sample and one blocked pass for all ``p`` (instead of one each),
    ``rho`` for every ``d_c`` from one pass of squared distances, and the nearest neighbours that
    give most points' ``delta`` from one more pass; per percentile only the few local density
    maxima are searched among all points.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Finite data, at least 2 points.
    percentiles : sequence of float
        Percentiles of the pairwise distances used as ``d_c``, each in ``(0, 100]``.

    Returns
    -------
    list of (rho, delta, gamma)
        One tuple of arrays of shape (n_samples,) per percentile, in the order given.
    """
    X = check_matrix("X", X, min_samples=2)
    if isinstance(percentiles, (str, bytes)) or np.ndim(percentiles) != 1:
        raise TypeError(f"percentiles must be a sequence of numbers, got {percentiles!r}")
    if len(percentiles) == 0:
        raise ValueError("percentiles must not be empty")
    qs = [check_float(f"percentiles[{i}]" if len(percentiles) > 1 else "percentile", p,
                      minimum=0.0, maximum=100.0, open_low=True)
          for i, p in enumerate(percentiles)]
    U_raw, inverse, counts = _unique_rows(X)
    if U_raw.shape[0] < 2:
        raise ValueError("X: all points are identical; density peaks are undefined")
    U, sqU = _prepare(U_raw)
    dcs = _pairwise_percentiles(U, sqU, counts, qs, U_raw)
    for q, dc in zip(qs, dcs, strict=True):
        if dc <= 0:
            raise ValueError(
                f"percentile={q} gives d_c = 0 (duplicated points); choose a larger one"
            )
    m = U.shape[0]
    # rho: the kernel matrix is symmetric, so only blocks right of the diagonal are computed
    # and each block adds to the rows' and to the columns' sums; one distance block serves
    # every d_c
    rho_u = [counts - 1.0 for _ in dcs]  # the other copies of the point itself, at distance 0
    for sl in _blocks(m, m):
        D2 = _sqdist(U[sl], U[sl.start :], sqU[sl], sqU[sl.start :], clip=False)
        for r, dc in zip(rho_u, dcs, strict=True):
            D = D2 * (-1.0 / dc**2)
            np.exp(D, out=D)
            _mask_lower(D, 0.0)
            r[sl] += D @ counts[sl.start :]
            r[sl.start :] += counts[sl] @ D
    # several radii: one neighbour search serves every delta pass
    knn = _knn(U, sqU, min(_DP_NEIGHBOURS, m - 1)) if len(dcs) > 1 else None
    out = []
    for r in rho_u:
        rho = r[inverse]
        delta = _density_order_delta(U, U_raw, sqU, inverse, rho, knn)
        out.append((rho, delta, rho * delta))
    return out


def density_peaks(X, percentile: float = 2.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decision-graph quantities of Rodriguez & Laio's density peaks, exactly and in blocks.

    ``rho_i = sum_{j != i} exp(-(d_ij / d_c)^2)`` with ``d_c`` the ``percentile``-th percentile
    (numpy's linear interpolation) of all ``n(n-1)/2`` pairwise distances, computed exactly
    without storing them. ``delta_i`` = distance to the nearest point that is denser than ``i``,
    where "denser" is a strict total order: larger ``rho``, ties (``rho`` equal up to 1e-9 of
    the largest ``rho``) going to the smaller index; the densest point gets the largest
    distance to any point. ``gamma = rho * delta``. For several percentiles of the same data use
    :func:`density_peaks_multi` (same results, shared distance passes).

    Duplicated points are defined consistently: copies of a point have identical ``rho``; the
    first copy (smallest index) gets the ``delta`` of the point, the later copies ``delta = 0``
    (their denser neighbour is the first copy). If ``d_c`` is 0 (most pairs are duplicates) a
    ``ValueError`` asks for a larger percentile.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Finite data, at least 2 points.
    percentile : float, default 2.0
        Percentile of the pairwise distances used as ``d_c``, in ``(0, 100]``.

    Returns
    -------
    rho, delta, gamma : numpy.ndarray of shape (n_samples,)
    """
    X = check_matrix("X", X, min_samples=2)
    percentile = check_float("percentile", percentile, minimum=0.0, maximum=100.0, open_low=True)
    return density_peaks_multi(X, [percentile])[0]


# --------------------------------------------------------------------------------------------
# Table 1 of the MNIST-Nd paper
# --------------------------------------------------------------------------------------------
#: Table 1 of MNIST-Nd (App. D): index -> {latent dimension: value}.
PAPER_TABLE1 = {
    "DISCO": {2: -0.05, 4: -0.10, 8: -0.02, 16: -0.01, 32: -0.02, 64: -0.02},
    "DBCV": {2: -1.0, 4: -0.92, 8: -0.77, 16: -0.65, 32: -0.63, 64: -0.56},
    "DCSI": {2: 0.16, 4: 0.35, 8: 0.48, 16: 0.46, 32: 0.46, 64: 0.44},
    "S_Dbw": {2: 0.87, 4: 0.78, 8: 0.68, 16: 0.81, 32: 0.86, 64: 0.88},
}


def _scores(calls: dict) -> dict:
    """Call every ``name: function`` of ``calls``; an index undefined for the data is ``None``.

    Only ``ValueError`` (raised when an index is undefined for the data, e.g. too few points
    per cluster) becomes ``None``, with its message under ``"<name> note"``, never a silent NaN.
    """
    out = {}
    for name, call in calls.items():
        try:
            out[name] = call()
        except ValueError as err:
            out[name] = None
            out[f"{name} note"] = str(err)
    return out


def score_all(X, labels, min_points: int = 5) -> dict:
    """All four indices of Table 1 (plus the 2001 form of S_Dbw) for one labelled dataset.

    Every index is computed with its defaults (DBCV as hdbscan, DCSI as the authors' R code);
    :func:`index_variants` gives the other implementations of DBCV and DCSI.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Data.
    labels : array-like of shape (n_samples,)
        Cluster labels.
    min_points : int, default 5
        ``min_points`` of DISCO and ``min_pts`` of DCSI.

    Returns
    -------
    dict
        ``DISCO``, ``DBCV``, ``DCSI``, ``S_Dbw`` (the package default, as in the paper) and
        ``S_Dbw (2001)`` (Halkidi & Vazirgiannis literally); an index that is undefined for the
        data is ``None`` and its reason is under ``"<name> note"``.
    """
    # bad input raises here; only "undefined for these data" becomes None
    X, labels = _check_xy(X, labels)
    min_points = check_int("min_points", min_points, minimum=1)
    return _scores({
        "DISCO": lambda: disco(X, labels, min_points=min_points),
        "DBCV": lambda: dbcv(X, labels),
        "DCSI": lambda: dcsi(X, labels, min_pts=min_points),
        "S_Dbw": lambda: s_dbw(X, labels),
        "S_Dbw (2001)": lambda: s_dbw(
            X, labels, method="halkidi", dispersion="variance", centers="mean"
        ),
    })


#: The implementations of DBCV and DCSI in use, as computed by :func:`index_variants`:
#: name -> reference implementation and how it differs from the others.
INDEX_VARIANTS = {
    "DBCV (hdbscan)": (
        "hdbscan's validity_index(X, labels): Euclidean distances, core-distance exponent = "
        "number of features, the minimum spanning tree its Prim's algorithm meets first among "
        "tied mutual-reachability weights, so the value can change when the points are "
        "reordered. dbcv(X, labels), the default."
    ),
    "DBCV (length ties)": (
        "Moulavi et al. (2014) with the authors' MATLAB fallbacks for 2- and 3-point clusters; "
        "tied weights ordered by Euclidean edge length, so the value does not depend on the "
        "order of the points. dbcv(X, labels, mst='length_ties')."
    ),
    "DBCV (squared, DISCO repo)": (
        "The DISCO authors' copy of hdbscan's code (pasiweber/DISCO, src/Evaluation/dbcv.py) "
        "with its default metric='sqeuclidean': the same algorithm on squared distances, "
        "exponent still = number of features. dbcv(X, labels, metric='sqeuclidean')."
    ),
    "DCSI (R)": (
        "The authors' R function calc_DCSI_RW (JanaGauss/dcsi), mean of its pairwise matrix as "
        "in their results: Euclidean distances, every separation doubled (its separation "
        "matrix is filled in both triangles, then added to its transpose). dcsi(X, labels), "
        "the default."
    ),
    "DCSI (paper definition)": (
        "Gauss et al. (2023) as written (separation = smallest distance between core points, "
        "as in the R function calc_DCSI), mean over pairs of clusters. "
        "dcsi(X, labels, variant='paper')."
    ),
    "DCSI (squared, DISCO repo)": (
        "The Python port in pasiweber/DISCO (src/Evaluation/dcsi.py): squared distances "
        "throughout, eps from the 2 minPts-th smallest distinct distance, clusters without "
        "core points score 0 in their pairs. dcsi(X, labels, variant='disco')."
    ),
}

#: Function and options of every entry of :data:`INDEX_VARIANTS`.
_VARIANT_CALLS = {
    "DBCV (hdbscan)": (dbcv, {"mst": "hdbscan"}),
    "DBCV (length ties)": (dbcv, {"mst": "length_ties"}),
    "DBCV (squared, DISCO repo)": (dbcv, {"mst": "hdbscan", "metric": "sqeuclidean"}),
    "DCSI (R)": (dcsi, {"variant": "r"}),
    "DCSI (paper definition)": (dcsi, {"variant": "paper"}),
    "DCSI (squared, DISCO repo)": (dcsi, {"variant": "disco"}),
}


def index_variants(X, labels, min_points: int = 5) -> dict:
    """Every implementation of DBCV and DCSI in :data:`INDEX_VARIANTS`, for one dataset.

    The published implementations of the two indices disagree (tie handling in the minimum
    spanning tree, squared distances, a doubled separation), and the MNIST-Nd paper does not
    say which it used; this reports all of them side by side.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Data.
    labels : array-like of shape (n_samples,)
        Cluster labels, ``-1`` for noise.
    min_points : int, default 5
        ``min_pts`` of DCSI.

    Returns
    -------
    dict
        One float per key of :data:`INDEX_VARIANTS`, in its order; a variant that is undefined
        for the data is ``None`` and its reason is under ``"<name> note"``.
    """
    X, labels = _check_xy(X, labels)
    min_points = check_int("min_points", min_points, minimum=1)

    def call(fn, options):
        extra = {"min_pts": min_points} if fn is dcsi else {}
        return lambda: fn(X, labels, **extra, **options)

    return _scores({name: call(fn, opts) for name, (fn, opts) in _VARIANT_CALLS.items()})


def indices_table(datasets, min_points: int = 5):
    """Table 1: every index for every dataset, beside the paper's values.

    Parameters
    ----------
    datasets : mapping of int to (X, labels)
        ``{d: (X, digits)}``, e.g. from :func:`mnistnd.embedding.subsample`.
    min_points : int, default 5
        Passed to :func:`score_all`.

    Returns
    -------
    pandas.DataFrame
        One row per latent dimension ``d``: ``n_points``, our value of each index, the paper's
        value (``<index> paper``), seconds taken, and notes for undefined indices.
    """
    import time

    import pandas as pd
    from tqdm.auto import tqdm

    rows = []
    for d, (X, labels) in tqdm(list(datasets.items()), desc="validity indices"):
        t0 = time.perf_counter()
        scores = score_all(X, labels, min_points=min_points)
        row = {"d": int(d), "n_points": int(np.asarray(X).shape[0])}
        for name in PAPER_TABLE1:
            row[name] = scores[name]
            row[f"{name} paper"] = PAPER_TABLE1[name].get(int(d))
        row["S_Dbw (2001)"] = scores["S_Dbw (2001)"]
        row["notes"] = "; ".join(f"{k[:-5]}: {v}" for k, v in scores.items() if k.endswith("note"))
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
    return pd.DataFrame(rows)
