"""S_Dbw (Halkidi & Vazirgiannis 2001; Tong & Tan 2009), as in the ``s-dbw`` package."""

from __future__ import annotations

import numpy as np

from mnistnd._checks import check_choice
from mnistnd.validity._graph import NOISE, check_xy, cluster_ids


def _density_counter(method: str, groups, std, sizes):
    """``count(members, u, i, j)``: points of the clusters ``members`` near ``u``.

    ``"halkidi"``: within the radius ``stdev`` (set as ``count.stdev``) of ``u``; ``"tong"``:
    inside the box ``1.96 sigma / sqrt(n)`` around ``u``, ``sigma`` and ``n`` those of cluster
    ``i`` or, for a pair ``i, j``, the mean ``sigma`` and the summed sizes.
    """
    def count(members, u, i, j=None):
        if method == "halkidi":
            return sum(int(np.sum(np.sqrt(np.sum((groups[m] - u) ** 2, axis=1)) <= count.stdev))
                       for m in members)
        sigma = std[i] if j is None else (std[i] + std[j]) / 2
        half = 1.96 * sigma / np.sqrt(sizes[i] if j is None else sizes[i] + sizes[j])
        return sum(int(np.sum(np.all(np.abs(groups[m] - u) <= half, axis=1))) for m in members)

    return count


def s_dbw(X, labels, method: str = "tong", dispersion: str = "std",
          centers: str = "nearest") -> float:
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
    X, labels = check_xy(X, labels)
    check_choice("method", method, ["halkidi", "tong"])
    check_choice("dispersion", dispersion, ["variance", "std"])
    check_choice("centers", centers, ["mean", "nearest"])
    X, labels = X[labels != NOISE], labels[labels != NOISE]
    ids, sizes = cluster_ids(labels, "s_dbw")
    c, n = ids.size, X.shape[0]
    spread = np.var if dispersion == "variance" else np.std
    groups = [X[labels == cid] for cid in ids]
    sig_norm = np.array([np.linalg.norm(spread(g, axis=0)) for g in groups])
    sig_all_norm = np.linalg.norm(spread(X, axis=0))
    if sig_all_norm == 0:
        raise ValueError("X: all points are identical; S_Dbw is undefined")
    cent = [g.mean(axis=0) for g in groups]
    if centers == "nearest":
        cent = [g[np.argmin(np.sum((g - m) ** 2, axis=1))] for g, m in zip(groups, cent,
                                                                           strict=True)]
    count = _density_counter(method, groups, [g.std(axis=0) for g in groups], sizes)
    if method == "halkidi":
        scat = sig_norm.sum() / (sig_all_norm * c)
        count.stdev = np.sqrt(sig_norm.sum()) / c
    else:
        scat = np.sum((n - sizes) / n * sig_norm) / (sig_all_norm * (c - 1))
    dens = np.array([count([i], cent[i], i) for i in range(c)])
    if np.count_nonzero(dens == 0) > 1:
        raise ValueError("labels: two or more clusters have zero density around their centre")
    return float(_dens_bw(method, cent, dens, sizes, count) + scat)


def _dens_bw(method: str, cent, dens, sizes, count) -> float:
    """``Dens_bw``: mean over ordered pairs of the density between two centres, relative."""
    c, total = len(cent), 0.0
    for i, j in ((i, j) for i in range(c) for j in range(c) if i != j):
        if method == "halkidi":
            u = (cent[i] + cent[j]) / 2
        else:
            lam = 0.7  # the package's weight of the size-weighted midpoint
            shift = (cent[i] * dens[i] + cent[j] * dens[j]) / (dens[i] + dens[j])
            u = lam * (cent[i] * sizes[j] + cent[j] * sizes[i]) / (sizes[i] + sizes[j]) + (
                1 - lam) * shift
        total += count([i, j], u, i, j) / max(dens[i], dens[j])
    return total / (c * (c - 1))
