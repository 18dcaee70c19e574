"""Exact minimum spanning tree of the mutual-reachability graph without the ``n x n`` matrix.

The weights are ``w_ij = max(d_ij, core_i, core_j)`` with ``d_ij`` from coordinate differences
(:func:`~mnistnd.validity._graph.pair_distances`). Edges are compared in the strict total order
``(w_ij, min(i, j), max(i, j))``, in which the minimum spanning tree ``T*`` is unique; ``T*`` is
also a minimum spanning tree for the weights alone, and every minimum spanning tree has the same
merge heights in single linkage (the minimax path distance between two points does not depend
on the tree). So the tree built here gives the dense path's dc-distances.

Why the tree is ``T*``:

1. *Certified Boruvka rounds.* For a component ``C`` of the edges found so far, its lightest
   listed edge ``e_C`` (kNN lists, strict order) leaving ``C`` is compared with the bounds of
   the unlisted edges: an unlisted ``(i, j)`` has ``d_ij >= bound_i`` (see
   :func:`~mnistnd.validity._graph.nearest_neighbors`), so ``w_ij >= max(bound_i, core_i)``.
   When ``w(e_C)`` is *strictly* below that for every ``i`` in ``C``, ``e_C`` precedes every
   edge leaving ``C`` in the strict order, so ``e_C`` is in ``T*`` (cut property). All such
   edges of a round lie in ``T*``; they form a forest with the earlier ones (duplicates, one
   edge certified from both sides, are dropped).
2. *Completion.* The forest ``F`` found so far lies in ``T*``, a minimum spanning tree; so
   ``F`` plus any minimum spanning tree of the graph of components (an edge between two
   components weighing the lightest edge between them) is a minimum spanning tree of the
   whole graph. The lightest edge between every two components is found exactly: BLAS
   squared distances select, for every pair of components, the candidates within twice the
   rounding bound of the smallest value met; their weights are recomputed exactly, so the
   true lightest edge is among them.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from mnistnd.validity._graph import blas_sq_error, pair_distances, prim, row_blocks

#: Above this many components left by the certified rounds the completion is not tried.
MAX_COMPONENTS = 1024


def _first_per_group(group, *keys):
    """Index of the first element of every group after sorting by ``keys`` (last key first)."""
    order = np.lexsort((*keys, group))
    first = np.ones(order.size, bool)
    first[1:] = group[order][1:] != group[order][:-1]
    return order[first]


def _certified_edges(comp, idx, w, floor):
    """Edges ``e_C`` of one Boruvka round that are certified (see the module docstring).

    ``idx, w``: listed neighbours and edge weights per point; ``floor[i]``: lower bound on
    every unlisted edge at ``i``. Returns the certified edges ``(a, b, w)``, each once.
    """
    w = np.where(comp[idx] != comp[:, None], w, np.inf)
    # per point its lightest outside edges (ties kept), then per component the strict minimum
    src, pos = np.nonzero((w == w.min(axis=1, keepdims=True)) & np.isfinite(w))
    dst, w = idx[src, pos], w[src, pos]
    lo, hi = np.minimum(src, dst), np.maximum(src, dst)
    best = _first_per_group(comp[src], hi, lo, w)
    comp_floor = np.full(comp.size, np.inf)
    np.minimum.at(comp_floor, comp, floor)
    keep = best[w[best] < comp_floor[comp[src[best]]]]
    _, once = np.unique(lo[keep] * comp.size + hi[keep], return_index=True)
    keep = keep[once]
    return lo[keep], hi[keep], w[keep]


def _certified_forest(core, idx, dist, bound):
    """Boruvka rounds on the kNN lists while they certify edges of ``T*``.

    Returns the forest ``(a, b, w)`` and the component label of every point.
    """
    n = core.size
    w = np.maximum(dist, np.maximum(core[:, None], core[idx]))
    floor = np.maximum(bound, core)
    comp = np.arange(n)
    edges = [np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0)]
    while True:
        a, b, ew = _certified_edges(comp, idx, w, floor)
        if a.size == 0:
            return (*edges, comp)
        edges = [np.concatenate(pair) for pair in zip(edges, (a, b, ew), strict=True)]
        graph = coo_matrix((np.ones(edges[0].size), (edges[0], edges[1])), shape=(n, n))
        n_comp, comp = connected_components(graph, directed=False)
        if n_comp == 1:
            return (*edges, comp)


def _block_candidates(Xs, sq, core, g, starts, sl, delta):
    """Candidate edges of the rows ``sl`` (sorted by component) to later components.

    For every pair of components met, the pairs whose approximate squared weight is within
    ``2 delta`` of the smallest one (so the exact lightest is among them). Returns row and
    column indices into the sorted order.
    """
    lo = starts[g[sl.start]]  # columns from the block's first component on
    A = Xs[sl] @ Xs[lo:].T
    A *= -2.0
    A += sq[sl, None]
    A += sq[None, lo:]
    np.maximum(A, core[sl, None] ** 2, out=A)
    np.maximum(A, core[None, lo:] ** 2, out=A)
    A[g[sl, None] >= g[None, lo:]] = np.inf  # each pair once, from its earlier component
    g0 = g[sl.start]
    col_starts = starts[g0:] - lo
    row_starts = starts[g0 : g[sl.stop - 1] + 1] - sl.start
    row_starts[0] = 0
    B = np.minimum.reduceat(np.minimum.reduceat(A, col_starts, axis=1), row_starts, axis=0)
    B[np.isinf(B)] = -np.inf  # pairs not met in this block: no candidates
    thr = B[(g[sl] - g0)[:, None], (g[lo:] - g0)[None, :]] + 2.0 * delta
    r, c = np.nonzero(A <= thr)
    return sl.start + r, lo + c


def _component_edges(X, core, comp, n_comp):
    """Exact lightest edge between every two components: weights and endpoints, ``m x m``."""
    order = np.argsort(comp, kind="stable")
    g = comp[order]
    Xs = X[order] - X.mean(axis=0)
    sq = np.einsum("ij,ij->i", Xs, Xs)
    delta = blas_sq_error(sq, X.shape[1]) + 4 * np.finfo(float).eps * float(core.max()) ** 2
    starts = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
    cs = core[order]
    rows, cols = [], []
    for sl in row_blocks(X.shape[0], X.shape[0]):
        r, c = _block_candidates(Xs, sq, cs, g, starts, sl, delta)
        rows.append(order[r])
        cols.append(order[c])
    i, j = np.concatenate(rows), np.concatenate(cols)
    w = np.maximum(pair_distances(X, i, j), np.maximum(core[i], core[j]))
    first = _first_per_group(comp[i] * n_comp + comp[j], w)
    M = np.full((n_comp, n_comp), np.inf)
    end_a, end_b = np.zeros_like(M, np.intp), np.zeros_like(M, np.intp)
    p, q = comp[i[first]], comp[j[first]]
    M[p, q] = M[q, p] = w[first]
    end_a[p, q] = end_a[q, p] = i[first]
    end_b[p, q] = end_b[q, p] = j[first]
    return M, end_a, end_b


def mutual_reachability_mst(X, core, neighbors):
    """Edges ``(a, b, w)`` of the exact minimum spanning tree (see the module docstring).

    ``neighbors``: :func:`~mnistnd.validity._graph.nearest_neighbors` of ``X``. Returns None
    when more than :data:`MAX_COMPONENTS` components are left for the completion.
    """
    a, b, w, comp = _certified_forest(core, *neighbors)
    n_comp = int(comp.max()) + 1
    if n_comp == 1:
        return a, b, w
    if n_comp > MAX_COMPONENTS:
        return None
    M, end_a, end_b = _component_edges(X, core, comp, n_comp)
    ca, cb, _ = prim(M)
    return (np.concatenate([a, end_a[ca, cb]]), np.concatenate([b, end_b[ca, cb]]),
            np.concatenate([w, M[ca, cb]]))


def linkage_from_tree(n: int, a, b, w) -> np.ndarray:
    """Single-linkage matrix (scipy's ``Z``) of a spanning tree: edges merged by weight.

    Node ``n + t`` is the ``t``-th merge; ``Z[t] = (child, child, height, size)``.
    """
    parent = list(range(n))  # union-find over points (plain lists: fast scalar access)
    node = list(range(n))  # tree node of the component whose root is the index
    size = [1] * (2 * n - 1)
    Z = np.empty((n - 1, 4))
    order = np.argsort(w, kind="stable")
    for t, (u, v) in enumerate(zip(a[order].tolist(), b[order].tolist(), strict=True)):
        ru, rv = _root(parent, u), _root(parent, v)
        size[n + t] = size[node[ru]] + size[node[rv]]
        Z[t, :2] = sorted((node[ru], node[rv]))
        Z[t, 3] = size[n + t]
        parent[rv], node[ru] = ru, n + t
    Z[:, 2] = np.asarray(w, float)[order]
    return Z


def _root(parent: list, x: int) -> int:
    """Union-find root of ``x``, compressing the path."""
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:
        parent[x], x = root, parent[x]
    return root
