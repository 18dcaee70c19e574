"""The MNIST-Nd paper's claims about its datasets: separability, overlap, density, Table 1.

The claims of §2 (Fig. 1D, Fig. 2), App. D (Table 1) and App. E, each tested on the table its
chapter already has: the random-forest summary (:func:`mnistnd.embedding.forest_accuracy_summary`),
the DISCO summary (:func:`mnistnd.embedding.disco_summary`), the density-peak counts
(:func:`mnistnd.embedding.density_peaks_table`) or the validity indices
(:func:`mnistnd.validity.indices_table`). Re-exported by :mod:`mnistnd.papers.mnist_nd`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from mnistnd.papers.claims import Claim, Outcome, check_claims, has_columns, per_dim
from mnistnd.papers.mnist_nd_numbers import (
    DISCO_NEAR_ZERO,
    DISCO_TOLERANCE,
    LOW_D_MAX,
    N_COMPONENTS,
    RF_ACCURACY,
    RF_TOLERANCE,
    TABLE1,
    low_high,
)
from mnistnd.validity import INDEX_VARIANTS


def _indexed(summary: pd.DataFrame) -> pd.DataFrame:
    """Turn a summary indexed by ``latent_dim`` into a table with that column."""
    return summary.rename_axis("latent_dim").reset_index()


def _range(values: pd.Series, fmt: str = "{:.2f}") -> str:
    return f"{fmt.format(values.min())} to {fmt.format(values.max())}"


# --------------------------------------------------------------------------------------------
# Fig. 1D: random-forest accuracy
# --------------------------------------------------------------------------------------------
def _forest_near_paper(table: pd.DataFrame) -> Outcome:
    if not has_columns(table, ["mean"]):
        return None
    return (per_dim(table["latent_dim"], table["mean"], "{:.1%}"),
            bool(((table["mean"] - RF_ACCURACY).abs() <= RF_TOLERANCE).all()))


#: The claim of Fig. 1D, read with our tolerance :data:`~.mnist_nd_numbers.RF_TOLERANCE`.
FOREST_CLAIMS = (
    Claim("1D", f"cross-validated random-forest accuracy, within {RF_TOLERANCE * 100:g} points "
          "of the paper at every d", _forest_near_paper, paper=f"~{RF_ACCURACY:.0%} at every d"),
)


def forest_claims(summary: pd.DataFrame) -> pd.DataFrame:
    """Check :data:`FOREST_CLAIMS` on :func:`mnistnd.embedding.forest_accuracy_summary`'s table."""
    return check_claims(FOREST_CLAIMS, _indexed(summary))


# --------------------------------------------------------------------------------------------
# Fig. 2A and Table 1: DISCO scores of the digit labels
# --------------------------------------------------------------------------------------------
def _disco_means_as_table1(table: pd.DataFrame) -> Outcome:
    if not has_columns(table, ["mean"]):
        return None
    rows = table[table["latent_dim"].isin(list(TABLE1["DISCO"]))]
    if rows.empty:
        return None
    paper = rows["latent_dim"].map(TABLE1["DISCO"])
    return (per_dim(rows["latent_dim"], rows["mean"], "{:.3f}"),
            bool(((rows["mean"] - paper).abs() <= DISCO_TOLERANCE).all()))


def _disco_majority_low(table: pd.DataFrame) -> Outcome:
    if not has_columns(table, ["frac_at_most_near_zero"]):
        return None
    frac = table["frac_at_most_near_zero"]
    return f"{_range(frac, '{:.0%}')} of the points", bool((frac > 0.5).all())


#: The DISCO claims: Table 1's mean scores and §2's "majority around zero or below" (Fig. 2A).
DISCO_CLAIMS = (
    Claim("Table 1", f"mean DISCO score of the digit labels, within {DISCO_TOLERANCE:g} of the "
          "paper at every d", _disco_means_as_table1,
          paper=_range(pd.Series(TABLE1["DISCO"]))),
    Claim("2A", "the majority of points are scored around zero or below "
          f"(score <= {DISCO_NEAR_ZERO:g})", _disco_majority_low, paper="the majority"),
)


def disco_claims(summary: pd.DataFrame) -> pd.DataFrame:
    """Check :data:`DISCO_CLAIMS` on :func:`mnistnd.embedding.disco_summary`'s table.

    The summary must be computed with ``near_zero=DISCO_NEAR_ZERO``, the edge the claim names.
    """
    return check_claims(DISCO_CLAIMS, _indexed(summary))


# --------------------------------------------------------------------------------------------
# Fig. 2B-C and App. E: clear density peaks
# --------------------------------------------------------------------------------------------
def _counts(table: pd.DataFrame) -> pd.DataFrame | None:
    """Clear centres as a (latent_dim x percentile) grid, ``None`` without the columns."""
    if not has_columns(table, ["percentile", "n_clear_centres"]):
        return None
    return table.pivot(index="latent_dim", columns="percentile", values="n_clear_centres")


def _fewer_than_ten(table: pd.DataFrame) -> Outcome:
    c = _counts(table)
    if c is None:
        return None
    n = table["n_clear_centres"]
    return (f"{int((n < N_COMPONENTS).sum())} of {len(n)} graphs have fewer than "
            f"{N_COMPONENTS}", bool((n < N_COMPONENTS).all()))


def _corners(c: pd.DataFrame):
    """Return the counts at the extreme dimensions and radii, ``None`` if one is missing."""
    lo, hi, pmin, pmax = c.index.min(), c.index.max(), c.columns.min(), c.columns.max()
    corner = c.loc[sorted({lo, hi}), sorted({pmin, pmax})]
    return None if corner.isna().any(axis=None) else (lo, hi, pmin, pmax, corner.astype(int))


def _small_radius_more_peaks(table: pd.DataFrame) -> Outcome:
    c = _counts(table)
    if c is None or c.shape[1] < 2 or (found := _corners(c)) is None:
        return None
    lo, hi, pmin, pmax, k = found
    ours = f"d={hi}: {k.at[hi, pmin]} at p={pmin:g}% vs {k.at[hi, pmax]} at p={pmax:g}%"
    if lo != hi:
        ours += f"; d={lo}: {k.at[lo, pmin]} vs {k.at[lo, pmax]}"
    return ours, bool(k.at[hi, pmin] > k.at[hi, pmax])


def _more_peaks_than_low_d(table: pd.DataFrame) -> Outcome:
    c = _counts(table)
    if c is None or c.shape[0] < 2 or (found := _corners(c)) is None:
        return None
    lo, hi, pmin, _pmax, k = found
    return (f"p={pmin:g}%: d={hi}: {k.at[hi, pmin]} vs d={lo}: {k.at[lo, pmin]}",
            bool(k.at[hi, pmin] > k.at[lo, pmin]))


#: The three observations of §2 on the decision graphs (Fig. 2B-C).
PEAK_CLAIMS = (
    Claim("2B-C", "fewer than ten clear density modes in every plot", _fewer_than_ten),
    Claim("2B-C", "smaller radii reveal more peaks in higher dimensions",
          _small_radius_more_peaks),
    Claim("2B-C", "... more than in lower dimensions at the same small radius",
          _more_peaks_than_low_d),
)

#: App. E's conclusions on the decision graphs at every radius.
APP_E_CLAIMS = (
    Claim("App. E", "below ten clear density modes within a range of thresholds",
          _fewer_than_ten),
    Claim("App. E", "smaller distances reveal more density peaks for higher dimensions",
          _small_radius_more_peaks),
)


def density_peak_claims(peaks: pd.DataFrame) -> pd.DataFrame:
    """Check :data:`PEAK_CLAIMS` on :func:`mnistnd.embedding.density_peaks_table`'s table."""
    return check_claims(PEAK_CLAIMS, peaks)


def app_e_claims(peaks: pd.DataFrame) -> pd.DataFrame:
    """Check :data:`APP_E_CLAIMS` on :func:`mnistnd.embedding.density_peaks_table`'s table."""
    return check_claims(APP_E_CLAIMS, peaks)


# --------------------------------------------------------------------------------------------
# App. D, Table 1: validity indices of the digit labels
# --------------------------------------------------------------------------------------------
def table1_beside_paper(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`mnistnd.validity.indices_table`'s table with ``<index> paper`` after each index.

    The paper's value (:data:`TABLE1`) is NaN for a dimension Table 1 does not have; a
    ``<index> paper`` column already in ``table`` is replaced.
    """
    out = table.drop(columns=[f"{name} paper" for name in TABLE1], errors="ignore")
    for name, values in TABLE1.items():
        out.insert(out.columns.get_loc(name) + 1, f"{name} paper",
                   out["d"].map(values).astype(float))
    return out


def variants_beside_paper(scores: Mapping[int, Mapping[str, float | None]]) -> pd.DataFrame:
    """Every variant of every index beside the paper's value (``index``, ``variant``, ``d``).

    Parameters
    ----------
    scores : mapping of int to mapping
        ``{d: mnistnd.validity.index_variants(X_d, y_d)}``; an undefined index (``None``) is NaN.

    Returns
    -------
    pandas.DataFrame
        ``index``, ``variant``, ``d``, ``ours``, ``paper`` and ``abs. difference``.
    """
    rows = [{"index": name.split(" ")[0], "variant": name, "d": d, "ours": s[name]}
            for d, s in scores.items() for name in INDEX_VARIANTS]
    out = pd.DataFrame(rows, columns=["index", "variant", "d", "ours"])
    out["ours"] = out["ours"].astype(float)
    out["paper"] = [TABLE1[i].get(d, np.nan) for i, d in zip(out["index"], out["d"], strict=True)]
    out["abs. difference"] = (out["ours"] - out["paper"]).abs()
    return out


def closest_variants(variants: pd.DataFrame) -> pd.DataFrame:
    """Per index, the variant closest to the paper (:func:`variants_beside_paper`'s table).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``index``: ``variant`` and ``abs. difference`` (its mean over dimensions).
    """
    mean = variants.groupby(["index", "variant"])["abs. difference"].mean().reset_index()
    return mean.sort_values("abs. difference").groupby("index").first()


def _clustering_bad(table: pd.DataFrame) -> Outcome:
    if not has_columns(table, ["DISCO", "DBCV"], by="d"):
        return None
    disco, dbcv = table["DISCO"].astype(float).dropna(), table["DBCV"].astype(float).dropna()
    if disco.empty or dbcv.empty:
        return None
    return (f"DISCO {_range(disco)}, DBCV {_range(dbcv)}",
            bool((disco <= DISCO_NEAR_ZERO).all() and (dbcv < 0).all()))


def _high_d_preferred(table: pd.DataFrame) -> Outcome:
    if not has_columns(table, ["DBCV", "DCSI"], by="d"):
        return None
    parts, ok = [], True
    for name in ("DBCV", "DCSI"):
        low, high = low_high(table, name, dim="d")
        if low.empty or high.empty:
            return None
        parts.append(f"{name}: at most {low.max():.2f} at d <= {LOW_D_MAX}, at least "
                     f"{high.min():.2f} above")
        ok = ok and high.min() > low.max()
    return "; ".join(parts), ok


#: App. D's reading of Table 1, tested on our indices.
TABLE1_CLAIMS = (
    Claim("Table 1", "DISCO and DBCV evaluate the clustering as 'bad' (DISCO <= "
          f"{DISCO_NEAR_ZERO:g}, DBCV < 0 at every d)", _clustering_bad),
    Claim("Table 1", "DBCV and DCSI clearly prefer the 8-64 dimensional embeddings (every d > "
          f"{LOW_D_MAX} scores higher than every d <= {LOW_D_MAX})", _high_d_preferred),
)


def table1_claims(table: pd.DataFrame) -> pd.DataFrame:
    """Check :data:`TABLE1_CLAIMS` on :func:`mnistnd.validity.indices_table`'s table."""
    return check_claims(TABLE1_CLAIMS, table)
