"""Tests of the paper glue: claims as data, and the MNIST-Nd claims on small synthetic tables.

Each claims function is checked on a table where every claim holds, one where each fails, and
tables that cannot test a claim (its verdict is then ``None``). The benchmark claims are tested
with the clustering benchmark in ``tests/test_clustering.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mnistnd.papers import mnist_nd as M
from mnistnd.papers.claims import Claim, check_claims, has_columns, per_dim
from mnistnd.validity import INDEX_VARIANTS

DIMS = [2, 4, 8, 16, 32, 64]


def _verdicts(claims: pd.DataFrame) -> list:
    return list(claims["agrees"])


# ------------------------------------------------------------------ the record and its checker
def test_check_claims_columns_and_not_testable():
    claims = (Claim("1", "always", lambda t: ("x", True)),
              Claim("2", "never testable", lambda t: None))
    out = check_claims(claims, pd.DataFrame())
    assert list(out.columns) == ["figure", "claim", "ours", "agrees"]
    assert _verdicts(out) == [True, None] and out.at[1, "ours"] == "not run"
    with_paper = check_claims((*claims, Claim("3", "valued", lambda t: ("1", 0), paper="2")),
                              pd.DataFrame())
    assert list(with_paper.columns) == ["figure", "claim", "paper", "ours", "agrees"]
    assert with_paper.at[2, "agrees"] is False and with_paper.at[2, "paper"] == "2"


def test_has_columns_and_per_dim():
    table = pd.DataFrame({"latent_dim": [2, 4], "x": [1, 2]})
    assert has_columns(table, ["x"], min_groups=2)
    assert not has_columns(table, ["x"], min_groups=3)
    assert not has_columns(table, ["y"])
    assert not has_columns(table, ["x"], by="d")
    assert per_dim([2, 4], [0.5, 0.25], "{:.0%}") == "d=2: 50%, d=4: 25%"


# ------------------------------------------------------------------ the m-VAEs
def _losses(**changes) -> pd.DataFrame:
    table = pd.DataFrame({
        "latent_dim": DIMS,
        "beta": [M.BETA_SCALE / d for d in DIMS],
        "ratio": [10.0, 11.0, 12.0, 12.5, 13.0, 14.0],
        "val_categorical": [2.2, 2.1, 0.3, 0.2, 0.1, 0.1],
    })
    return table.assign(**changes)


USAGE = pd.DataFrame({"latent_dim": DIMS, "components used": [3, 10, 10, 9, 10, 10]})


def test_mvae_claims_hold():
    out = M.mvae_claims(_losses(), USAGE, n_test=M.N_TEST)
    assert list(out.columns) == ["figure", "claim", "paper", "ours", "agrees"]
    assert _verdicts(out) == [True] * 5
    assert out.at[1, "ours"] == "10.0 to 14.0 (x1.40)"
    assert out.at[4, "ours"] == f"{M.N_TEST:,}"


def test_mvae_claims_fail():
    losses = _losses(beta=1.0, ratio=[10.0, 11.0, 12.0, 12.5, 13.0, 30.0],
                     val_categorical=[0.1, 0.2, 0.3, 2.2, 2.2, 2.2])
    usage = USAGE.assign(**{"components used": [1, 10, 10, 9, 10, 10]})
    n_test = dict.fromkeys(DIMS, M.N_TEST) | {64: 5000}
    out = M.mvae_claims(losses, usage, n_test=n_test)
    assert _verdicts(out) == [False] * 5
    assert "d=64: 5,000" in out.at[4, "ours"]


def test_mvae_claims_not_testable():
    one_side = _losses().query("latent_dim > 4")
    out = M.mvae_claims(one_side.head(1))
    assert _verdicts(out) == [True, None, None, None, None]
    assert _verdicts(M.mvae_claims(one_side))[1:3] == [True, None]


# ------------------------------------------------------------------ Fig. 1D, Fig. 2A
def _summary(column: str, values) -> pd.DataFrame:
    return pd.DataFrame({column: values}, index=pd.Index(DIMS[:len(values)], name="latent_dim"))


def test_forest_claims():
    near = [M.RF_ACCURACY + s * 0.8 * M.RF_TOLERANCE for s in (-1, 1, 0, -1, 1, 0)]
    assert _verdicts(M.forest_claims(_summary("mean", near))) == [True]
    far = M.forest_claims(_summary("mean", [*near[:-1], M.RF_ACCURACY - 2 * M.RF_TOLERANCE]))
    assert _verdicts(far) == [False] and "d=64" in far.at[0, "ours"]
    assert _verdicts(M.forest_claims(_summary("sd", near))) == [None]


def test_disco_claims():
    paper = [M.TABLE1["DISCO"][d] for d in DIMS]
    good = _summary("mean", [v + M.DISCO_TOLERANCE / 2 for v in paper]).assign(
        frac_at_most_near_zero=0.8)
    assert _verdicts(M.disco_claims(good)) == [True, True]
    bad = good.assign(frac_at_most_near_zero=[0.8, 0.8, 0.4, 0.9, 0.9, 0.9])
    bad.loc[2, "mean"] = paper[0] + 2 * M.DISCO_TOLERANCE
    assert _verdicts(M.disco_claims(bad)) == [False, False]
    not_in_table1 = pd.DataFrame({"mean": [0.0], "frac_at_most_near_zero": [0.7]},
                                 index=pd.Index([3], name="latent_dim"))
    assert _verdicts(M.disco_claims(not_in_table1)) == [None, True]


# ------------------------------------------------------------------ Fig. 2B-C, App. E
def _peaks(counts: dict) -> pd.DataFrame:
    """``{(d, p): n}`` as a density-peaks table."""
    return pd.DataFrame([{"latent_dim": d, "percentile": p, "n_clear_centres": n}
                         for (d, p), n in counts.items()])


HOLDS = {(2, 0.01): 2, (2, 5.0): 1, (64, 0.01): 6, (64, 5.0): 1}


def test_density_peak_claims_hold_and_fail():
    assert _verdicts(M.density_peak_claims(_peaks(HOLDS))) == [True, True, True]
    assert _verdicts(M.app_e_claims(_peaks(HOLDS))) == [True, True]
    fails = HOLDS | {(2, 0.01): 12, (64, 0.01): 1}
    assert _verdicts(M.density_peak_claims(_peaks(fails))) == [False, False, False]
    out = M.app_e_claims(_peaks(fails))
    assert _verdicts(out) == [False, False]
    assert out.at[0, "ours"].startswith("3 of 4 graphs")
    assert out.at[1, "ours"] == "d=64: 1 at p=0.01% vs 1 at p=5%; d=2: 12 vs 1"


def test_density_peak_claims_not_testable():
    one_dim = {k: v for k, v in HOLDS.items() if k[0] == 64}
    assert _verdicts(M.density_peak_claims(_peaks(one_dim))) == [True, True, None]
    one_radius = {k: v for k, v in HOLDS.items() if k[1] == 0.01}
    assert _verdicts(M.density_peak_claims(_peaks(one_radius))) == [True, None, True]
    holes = {k: v for k, v in HOLDS.items() if k != (2, 5.0)}
    assert _verdicts(M.app_e_claims(_peaks(holes))) == [True, None]
    assert _verdicts(M.app_e_claims(pd.DataFrame({"latent_dim": [2]}))) == [None, None]


# ------------------------------------------------------------------ App. D, Table 1
def _indices(**changes) -> pd.DataFrame:
    table = pd.DataFrame({"d": DIMS, "n_points": 100})
    for name, values in M.TABLE1.items():
        table[name] = [values[d] for d in DIMS]
    return table.assign(**changes)


def test_table1_claims_hold_on_the_papers_values():
    out = M.table1_claims(_indices())
    assert _verdicts(out) == [True, True]
    assert "DBCV -1.00 to -0.56" in out.at[0, "ours"]


def test_table1_claims_fail_and_not_testable():
    bad = _indices(DBCV=[-0.9, -0.8, -0.7, 0.2, -0.6, -0.5], DCSI=[0.5, 0.4, 0.3, 0.3, 0.3, 0.3])
    assert _verdicts(M.table1_claims(bad)) == [False, False]
    undefined = _indices(DCSI=[None, None, 0.4, 0.4, 0.4, 0.4])
    assert _verdicts(M.table1_claims(undefined)) == [True, None]
    assert _verdicts(M.table1_claims(_indices().head(2))) == [True, None]
    assert _verdicts(M.table1_claims(_indices().drop(columns="DBCV"))) == [None, None]


def test_table1_beside_paper():
    ours = _indices().drop(columns="n_points").assign(d=[2, 4, 8, 16, 32, 3])
    out = M.table1_beside_paper(ours)
    names = list(M.TABLE1)
    assert list(out.columns) == ["d"] + [c for n in names for c in (n, f"{n} paper")]
    assert out.loc[0, "DBCV paper"] == M.TABLE1["DBCV"][2]
    assert np.isnan(out.loc[5, "DISCO paper"])
    assert "DISCO paper" not in ours.columns
    stale = ours.assign(**{"DBCV paper": 0.0})
    pd.testing.assert_frame_equal(M.table1_beside_paper(stale), out)


def test_variants_beside_paper_and_closest():
    offsets = {"DBCV (hdbscan)": 0.2, "DBCV (length ties)": 0.05,
               "DBCV (squared, DISCO repo)": 0.5, "DCSI (R)": 0.1,
               "DCSI (paper definition)": -0.3, "DCSI (squared, DISCO repo)": None}
    assert set(offsets) == set(INDEX_VARIANTS)
    scores = {d: {name: None if off is None else M.TABLE1[name.split(" ")[0]][d] + off
                  for name, off in offsets.items()} for d in (2, 8)}
    variants = M.variants_beside_paper(scores)
    assert len(variants) == 2 * len(offsets)
    assert variants["abs. difference"].isna().sum() == 2
    best = M.closest_variants(variants)
    assert best.loc["DBCV", "variant"] == "DBCV (length ties)"
    assert best.loc["DCSI", "variant"] == "DCSI (R)"
    assert best.loc["DCSI", "abs. difference"] == pytest.approx(0.1)
