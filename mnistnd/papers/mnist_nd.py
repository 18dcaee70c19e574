"""The MNIST-Nd paper (Turishcheva et al.): its claims about the clustering benchmark (§3, App C).

The paper reports Fig 3 and Fig 5 as plots only, so each statement is tested on a benchmark
table (:func:`mnistnd.clustering.benchmark`) by comparing the mean over seeds at the smallest and
the largest dimension (:func:`mnistnd.clustering.dimension_trend`).
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from mnistnd.clustering import _select, dimension_trend, summarize
from mnistnd.papers.claims import Claim, Outcome, check_claims

#: The methods the paper calls centroid-based.
CENTROID = ("kmeans", "gmm", "tmm")


def _has(table: pd.DataFrame, experiment: str, methods=(), min_dims: int = 2) -> bool:
    return (experiment in set(table["experiment"]) and set(methods) <= set(table["method"])
            and table["dim"].nunique() >= min_dims)


def _trend_text(trend: pd.DataFrame, methods) -> str:
    return "; ".join(f"{m}: {trend.at[m, 'at_low']:.2f} -> {trend.at[m, 'at_high']:.2f}"
                     for m in methods)


def _leiden_decays_less(experiment: str) -> Callable:
    """Centroid methods decay with d while Leiden changes less than any of them."""

    def check(table: pd.DataFrame) -> Outcome:
        centroid = [m for m in CENTROID if m in set(table["method"])]
        if not centroid or not _has(table, experiment, ["leiden"]):
            return None
        t = dimension_trend(table, experiment)
        others = t.loc[centroid, "change"]
        ok = (others < 0).all() and t.at["leiden", "change"] > others.max()
        return _trend_text(t, ["leiden", *centroid]), ok

    return check


def _bootstrap_tmm_most_robust(table: pd.DataFrame) -> Outcome:
    if not _has(table, "bootstrap", CENTROID):
        return None
    t = dimension_trend(table, "bootstrap")
    ok = min(t.at["kmeans", "change"], t.at["gmm", "change"]) < t.at["tmm", "change"]
    return _trend_text(t, CENTROID), ok


def _bootstrap_leiden_decays(table: pd.DataFrame) -> Outcome:
    if not _has(table, "bootstrap", ["leiden"]):
        return None
    t = dimension_trend(table, "bootstrap")
    return _trend_text(t, ["leiden"]), t.at["leiden", "change"] < 0


def _leiden_best_at_top(table: pd.DataFrame) -> Outcome:
    if not _has(table, "truth", ["leiden"], min_dims=1) or table["method"].nunique() < 2:
        return None
    s = summarize(table, "truth", "ARI")
    top_dim = s["dim"].max()
    top = s[s["dim"] == top_dim].set_index("method")["mean"]
    return (f"d={top_dim}: " + ", ".join(f"{m} {v:.2f}" for m, v in top.items()),
            top.idxmax() == "leiden")


def _metrics_order_as_ari(table: pd.DataFrame) -> Outcome:
    if not _has(table, "truth", min_dims=1) or table["method"].nunique() < 2:
        return None

    def ranks(metric):
        means = _select(table, "truth", metric).groupby(["dim", "method"])["value"].mean()
        return means.unstack().rank(axis=1)

    ari = ranks("ARI")
    same = total = 0
    for metric in ("FMI", "homogeneity", "completeness", "NMI"):
        r = ranks(metric)
        same += int((r == ari).all(axis=1).sum())
        total += r.shape[0]
    return f"same order as ARI in {same} of {total} (metric, d) cases", same >= 0.75 * total


#: The benchmark claims of Fig 3 and Fig 5, in the order the chapter lists them.
BENCHMARK_CLAIMS = (
    Claim("3A", "ARI with truth decreases with d for all methods except Leiden, which is "
          "affected much less", _leiden_decays_less("truth")),
    Claim("3B", "Leiden stays stable across seeds while the stability of the centroid-based "
          "methods (k-means, GMM, TMM) decreases with d", _leiden_decays_less("stability")),
    Claim("3C", "GMM and k-means decay most with d under bootstrapping; TMM is more robust",
          _bootstrap_tmm_most_robust),
    Claim("3C", "Leiden's bootstrap ARI decreases at higher d", _bootstrap_leiden_decays),
    Claim("3A", "Leiden outperforms the other methods (ARI with truth) in the highest "
          "dimension", _leiden_best_at_top),
    Claim("5", "FMI, homogeneity, completeness and NMI order the methods as ARI does (Fig 5)",
          _metrics_order_as_ari),
)


def benchmark_claims(table: pd.DataFrame) -> pd.DataFrame:
    """Check :data:`BENCHMARK_CLAIMS` on a benchmark table (:func:`~.claims.check_claims`)."""
    return check_claims(BENCHMARK_CLAIMS, table)
