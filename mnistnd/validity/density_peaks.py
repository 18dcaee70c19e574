"""Decision-graph quantities of density peaks clustering (Rodriguez & Laio 2014)."""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import pdist
from sklearn.metrics.pairwise import euclidean_distances

from mnistnd._checks import check_float, check_matrix
from mnistnd.validity._graph import pair_distances, row_blocks


def _kernel_sums(Xc, dcs):
    """``rho`` for every ``d_c``: ``sum_{j != i} exp(-(d_ij / d_c)^2)``.

    Computed once per distinct row (weighted by its copies, which add ``exp(0) = 1`` each), so
    copies get the same value. Blocks right of the diagonal only (the kernel is symmetric):
    each adds to the sums of its rows and of its columns; one block serves every ``d_c``.
    """
    U, inverse, counts = np.unique(Xc, axis=0, return_inverse=True, return_counts=True)
    counts = counts.astype(float)
    rhos = [counts - 1.0 for _ in dcs]
    for sl in row_blocks(U.shape[0], U.shape[0]):
        D2 = euclidean_distances(U[sl], U[sl.start :], squared=True)
        lower = np.tril_indices(D2.shape[0])  # self, and pairs j < i (row j has them)
        for rho, dc in zip(rhos, dcs, strict=True):
            K = np.exp(D2 * (-1.0 / dc**2))
            K[lower] = 0.0
            rho[sl] += K @ counts[sl.start :]
            rho[sl.start :] += counts[sl] @ K
    return [rho[inverse.reshape(-1)] for rho in rhos]


def _delta(X, Xc, rho):
    """Distance to the nearest denser point; the densest point gets its largest distance.

    "Denser" is a strict order: larger ``rho`` rounded to 9 significant digits of the largest
    (float noise cannot split ties), then the smaller index. Rows sorted by that order are
    searched in lower-triangular blocks (row ``p``'s denser points are rows ``0..p-1``); BLAS
    selects the nearest, its distance is recomputed from coordinate differences.
    """
    key = np.round(rho / max(rho.max(), 1e-300), 9)
    order = np.lexsort((np.arange(rho.size), -key))
    Xs = Xc[order]
    nearest = np.empty(rho.size, np.intp)
    for sl in row_blocks(rho.size, rho.size):
        D2 = euclidean_distances(Xs[sl], Xs[: sl.stop], squared=True)
        D2[np.arange(sl.stop)[None, :] >= np.arange(sl.start, sl.stop)[:, None]] = np.inf
        nearest[sl] = np.argmin(D2, axis=1)
    far = euclidean_distances(Xs[:1], Xs, squared=True)[0]
    nearest[0] = int(np.argmax(far))
    delta = np.empty(rho.size)
    delta[order] = pair_distances(X, order, order[nearest])
    return delta


def density_peaks_multi(X, percentiles) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """:func:`density_peaks` for several percentiles of the same ``X``, sharing distance passes.

    Every result equals ``density_peaks(X, p)``: the percentiles come from one pass over the
    pairwise distances and ``rho`` for every ``d_c`` from one pass of squared distances.

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
    if np.all(X == X[0]):
        raise ValueError("X: all points are identical; density peaks are undefined")
    # exact distances from coordinate differences; sorted in place, then freed
    dcs = np.percentile(pdist(X), qs, overwrite_input=True)
    for q, dc in zip(qs, dcs, strict=True):
        if dc <= 0:
            raise ValueError(
                f"percentile={q} gives d_c = 0 (duplicated points); choose a larger one"
            )
    Xc = X - X.mean(axis=0)  # smaller rounding error of the BLAS distances
    return [(rho, delta, rho * delta)
            for rho in _kernel_sums(Xc, dcs) for delta in [_delta(X, Xc, rho)]]


def density_peaks(X, percentile: float = 2.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decision-graph quantities of Rodriguez & Laio's density peaks.

    ``rho_i = sum_{j != i} exp(-(d_ij / d_c)^2)`` with ``d_c`` the ``percentile``-th percentile
    (numpy's linear interpolation) of all ``n(n-1)/2`` pairwise distances. ``delta_i`` =
    distance to the nearest point that is denser than ``i``, where "denser" is a strict total
    order: larger ``rho``, ties (``rho`` equal up to 1e-9 of the largest ``rho``) going to the
    smaller index; the densest point gets the largest distance to any point.
    ``gamma = rho * delta``. For several percentiles of the same data use
    :func:`density_peaks_multi` (same results, shared distance passes).

    Copies of a point have the same ``rho``; the first copy (smallest index) gets the
    ``delta`` of the point, the later copies ``delta = 0`` (their denser neighbour is the first
    copy). If ``d_c`` is 0 (most pairs are duplicates) a ``ValueError`` asks for a larger
    percentile. The pairwise distances are held once (``n (n - 1) / 2`` floats) for the
    percentile; everything else works in blocks.

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
