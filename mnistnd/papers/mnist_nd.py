"""The MNIST-Nd paper (Turishcheva et al.): its reported numbers and its claims, as data.

The chapters import this module only. The paper's numbers and our tolerances are defined in
:mod:`mnistnd.papers.mnist_nd_numbers`, the claims about the datasets' properties in
:mod:`mnistnd.papers.mnist_nd_properties`; both are re-exported here. Each claims function takes
the table a chapter already has and returns :func:`~mnistnd.papers.claims.check_claims`'s table:

* :func:`mvae_claims` (§2, Fig. 1B, Fig. 4C) on the m-VAE loss table;
* :func:`forest_claims` (Fig. 1D), :func:`disco_claims` (Fig. 2A, Table 1) and
  :func:`density_peak_claims` (Fig. 2B-C) for the embedding properties;
* :func:`app_e_claims` (App. E) for the density peaks at every radius;
* :func:`table1_claims` (App. D, Table 1) for the validity indices, with
  :func:`table1_beside_paper`, :func:`variants_beside_paper` and :func:`closest_variants`
  putting the paper's values beside ours;
* :func:`benchmark_claims` (Fig. 3 and Fig. 5). The paper reports these figures as plots only,
  so each statement is tested on a benchmark table (:func:`mnistnd.clustering.benchmark`) by
  comparing the mean over seeds at the smallest and the largest dimension
  (:func:`mnistnd.clustering.dimension_trend`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from mnistnd.clustering import _select, dimension_trend, summarize
from mnistnd.datasets import PAPER_DIMS
from mnistnd.papers.claims import Claim, Outcome, check_claims, has_columns, per_dim
from mnistnd.papers.mnist_nd_numbers import (
    BETA_SCALE,
    DISCO_NEAR_ZERO,
    DISCO_TOLERANCE,
    LOW_D_MAX,
    N_COMPONENTS,
    N_TEST,
    RATIO_SPREAD,
    RF_ACCURACY,
    RF_TOLERANCE,
    TABLE1,
    low_high,
)
from mnistnd.papers.mnist_nd_properties import (
    APP_E_CLAIMS,
    DISCO_CLAIMS,
    FOREST_CLAIMS,
    PEAK_CLAIMS,
    TABLE1_CLAIMS,
    app_e_claims,
    closest_variants,
    density_peak_claims,
    disco_claims,
    forest_claims,
    table1_beside_paper,
    table1_claims,
    variants_beside_paper,
)

__all__ = [
    "APP_E_CLAIMS", "BENCHMARK_CLAIMS", "BETA_SCALE", "CENTROID", "DISCO_CLAIMS",
    "DISCO_NEAR_ZERO", "DISCO_TOLERANCE", "FOREST_CLAIMS", "LOW_D_MAX", "MVAE_CLAIMS",
    "N_COMPONENTS", "N_TEST", "PEAK_CLAIMS", "RATIO_SPREAD", "RF_ACCURACY", "RF_TOLERANCE",
    "TABLE1", "TABLE1_CLAIMS", "app_e_claims", "benchmark_claims", "closest_variants",
    "density_peak_claims", "disco_claims", "forest_claims", "mvae_claims",
    "table1_beside_paper", "table1_claims", "variants_beside_paper",
]

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


# --------------------------------------------------------------------------------------------
# The m-VAEs (§2, Fig. 1B, Fig. 4C)
# --------------------------------------------------------------------------------------------
def _beta_as_paper(table: pd.DataFrame) -> Outcome:
    if not has_columns(table, ["beta"]):
        return None
    return (", ".join(f"{b:g}" for b in table["beta"]),
            bool(np.allclose(table["beta"], BETA_SCALE / table["latent_dim"])))


def _ratio_similar(table: pd.DataFrame) -> Outcome:
    if not has_columns(table, ["ratio"], min_groups=2):
        return None
    low, high = table["ratio"].min(), table["ratio"].max()
    return f"{low:.1f} to {high:.1f} (x{high / low:.2f})", high / low <= RATIO_SPREAD


def _categorical_higher_at_low_d(table: pd.DataFrame) -> Outcome:
    if not has_columns(table, ["val_categorical"]):
        return None
    low, high = low_high(table, "val_categorical")
    if low.empty or high.empty:
        return None
    return f"{low.mean():.3f} vs {high.mean():.3f}", low.mean() > high.mean()


def _mixture_in_use(table: pd.DataFrame) -> Outcome:
    if not has_columns(table, ["components used"]):
        return None
    used = table["components used"]
    return per_dim(table["latent_dim"], used), bool((used > 1).all())


def _every_test_image(table: pd.DataFrame) -> Outcome:
    if not has_columns(table, ["n_test"]):
        return None
    n = table["n_test"].astype(int)
    ours = f"{n.iloc[0]:,}" if n.nunique() == 1 else per_dim(table["latent_dim"], n, "{:,}")
    return ours, bool((n == N_TEST).all())


#: The claims about the trained m-VAEs, in the order the m-VAE chapter lists them.
MVAE_CLAIMS = (
    Claim("§2", "beta per dimension", _beta_as_paper,
          paper=f"{BETA_SCALE:g}/d ({BETA_SCALE / min(PAPER_DIMS):.1f} ... "
                f"{BETA_SCALE / max(PAPER_DIMS):g})"),
    Claim("1B", "total/KL ratio across d", _ratio_similar, paper="similar across d"),
    Claim("4C", f"categorical loss, d <= {LOW_D_MAX} vs d > {LOW_D_MAX}",
          _categorical_higher_at_low_d,
          paper="higher at d = " + ", ".join(str(d) for d in PAPER_DIMS if d <= LOW_D_MAX)),
    Claim("§2", "components used by the test images", _mixture_in_use,
          paper=f"a mixture of {N_COMPONENTS}"),
    Claim("§2", "encoded test images", _every_test_image, paper=f"{N_TEST:,}"),
)


def mvae_claims(losses: pd.DataFrame, usage: pd.DataFrame | None = None,
                n_test: int | Mapping[int, int] | None = None) -> pd.DataFrame:
    """Check :data:`MVAE_CLAIMS` on the trained m-VAEs.

    Parameters
    ----------
    losses : pandas.DataFrame
        One row per model: ``latent_dim``, ``beta``, ``ratio`` (total over β-weighted Gaussian
        KL loss) and ``val_categorical``, at the restored epoch.
    usage : pandas.DataFrame, optional
        ``latent_dim`` and ``components used`` (mixture components the test images are given
        to); without it the claim about the mixture is not tested.
    n_test : int or mapping of int to int, optional
        Test images encoded per dataset (one number for all, or ``{d: n}``).

    Returns
    -------
    pandas.DataFrame
        :func:`~mnistnd.papers.claims.check_claims`'s table, with the paper's values.
    """
    table = losses.copy()
    if usage is not None:
        table = table.merge(usage[["latent_dim", "components used"]], on="latent_dim")
    if n_test is not None:
        table["n_test"] = (table["latent_dim"].map(n_test) if isinstance(n_test, Mapping)
                           else n_test)
    return check_claims(MVAE_CLAIMS, table)
