"""Table 1 of MNIST-Nd: every index for labelled datasets, and the variants of DBCV and DCSI."""

from __future__ import annotations

import numpy as np

from mnistnd._checks import check_int
from mnistnd.validity._graph import check_xy
from mnistnd.validity.dbcv import dbcv
from mnistnd.validity.dcsi import dcsi
from mnistnd.validity.disco import disco
from mnistnd.validity.s_dbw import s_dbw

#: The indices of Table 1, in its column order.
TABLE1_INDICES = ("DISCO", "DBCV", "DCSI", "S_Dbw")


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
    X, labels = check_xy(X, labels)
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
    X, labels = check_xy(X, labels)
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
        One row per latent dimension ``d``: ``n_points``, our value of each index, seconds
        taken, and notes for undefined indices (the paper's values are put beside them by
        :func:`mnistnd.papers.mnist_nd.table1_beside_paper`).
    """
    import time

    import pandas as pd
    from tqdm.auto import tqdm

    rows = []
    for d, (X, labels) in tqdm(list(datasets.items()), desc="validity indices"):
        t0 = time.perf_counter()
        scores = score_all(X, labels, min_points=min_points)
        row = {"d": int(d), "n_points": int(np.asarray(X).shape[0])}
        for name in TABLE1_INDICES:
            row[name] = scores[name]
        row["S_Dbw (2001)"] = scores["S_Dbw (2001)"]
        row["notes"] = "; ".join(f"{k[:-5]}: {v}" for k, v in scores.items() if k.endswith("note"))
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
    return pd.DataFrame(rows)
