"""Tests of mnistnd.metrics: hand-computed cases, invariances, bootstrap split layout."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from mnistnd import metrics

# A small hand-worked case (classes x clusters contingency):
#            c0  c1
#   class 0   2   1     |k0| = 3
#   class 1   0   2     |k1| = 2
#   class 2   0   1     |k2| = 1
#   sizes     2   4     N = 6
TRUE = np.array([0, 0, 0, 1, 1, 2])
PRED = np.array([0, 0, 1, 1, 1, 1])


def test_contingency_by_hand():
    assert metrics.contingency(TRUE, PRED).tolist() == [[2, 1], [0, 2], [0, 1]]


def test_f_measure_hand_computed():
    # weight_by="pred" (Eq. 12 as written): c0 best F = 2*2/(2+3) = 0.8 (weight 2/6);
    # c1 best F = max(2/7, 2*2/(4+2), 2/(4+1)) = 2/3 (weight 4/6)  ->  32/45
    assert metrics.f_measure(TRUE, PRED) == pytest.approx(32 / 45, abs=1e-12)
    # weight_by="true" (FlowCAP): k0 0.8 (3/6), k1 2/3 (2/6), k2 0.4 (1/6)  ->  31/45
    assert metrics.f_measure(TRUE, PRED, weight_by="true") == pytest.approx(31 / 45, abs=1e-12)


def test_f_measure_properties():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 300)
    perm = np.array([3, 0, 4, 1, 2])
    assert metrics.f_measure(y, perm[y]) == pytest.approx(1.0)  # relabelling does not matter
    assert metrics.f_measure(y, rng.integers(0, 5, 300)) < 0.5
    # swapping the roles of the labelings swaps the weighting
    z = rng.integers(0, 3, 300)
    assert metrics.f_measure(y, z) == pytest.approx(metrics.f_measure(z, y, weight_by="true"))
    with pytest.raises(ValueError, match="weight_by"):
        metrics.f_measure(y, z, weight_by="both")


def test_clustering_accuracy_hand_computed():
    # best matching c0 -> class 0 (2 points), c1 -> class 1 (2 points): 4 of 6
    assert metrics.clustering_accuracy(TRUE, PRED) == pytest.approx(4 / 6)
    # more clusters than classes: only one cluster per class counts
    assert metrics.clustering_accuracy([0, 0, 1, 1], [0, 1, 2, 3]) == pytest.approx(0.5)
    # permuted labels and string labels
    y = np.array(list("aabbbcc"))
    assert metrics.clustering_accuracy(y, [2, 2, 0, 0, 0, 1, 1]) == 1.0
    # the Hungarian matching beats a greedy one here: greedy takes c0->A (3) then c1->nothing
    t = np.array(["A"] * 3 + ["A"] * 2 + ["B"] * 2)
    p = np.array([0] * 3 + [1] * 2 + [0] * 2)
    # optimum: c0->A (3) + c1->? (B has 0 in c1) = 3, or c0->B (2) + c1->A (2) = 4
    assert metrics.clustering_accuracy(t, p) == pytest.approx(4 / 7)


def test_sklearn_wrappers_agree():
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 4, 200), rng.integers(0, 6, 200)
    assert metrics.adjusted_rand(a, b) == pytest.approx(skm.adjusted_rand_score(a, b))
    assert metrics.fowlkes_mallows(a, b) == pytest.approx(skm.fowlkes_mallows_score(a, b))
    assert metrics.homogeneity(a, b) == pytest.approx(skm.homogeneity_score(a, b))
    assert metrics.completeness(a, b) == pytest.approx(skm.completeness_score(a, b))
    assert metrics.nmi(a, b) == pytest.approx(skm.normalized_mutual_info_score(a, b))
    scores = metrics.score_all(a, b)
    assert list(scores) == list(metrics.SCORES)
    assert scores["ARI"] == pytest.approx(skm.adjusted_rand_score(a, b))


def test_ari_terms_match_sklearn_and_chance():
    rng = np.random.default_rng(2)
    a, b = rng.integers(0, 10, 2000), rng.integers(0, 10, 2000)
    terms = metrics.ari_terms(a, b)
    assert terms["ari"] == pytest.approx(skm.adjusted_rand_score(a, b))
    assert terms["rand_index"] == pytest.approx(skm.rand_score(a, b))
    # random labels: ARI near 0 but the uncorrected Rand index is high (~0.82)
    assert abs(terms["ari"]) < 0.01 and terms["rand_index"] > 0.8
    # hand case: index = C(2,2)+C(2,2) = 2; rows: C(3,2)+C(2,2)+0 = 4; cols: C(2,2)+C(4,2) = 7
    hand = metrics.ari_terms(TRUE, PRED)
    assert (hand["index"], hand["sum_rows"], hand["sum_cols"]) == (2.0, 4.0, 7.0)
    assert hand["expected"] == pytest.approx(4 * 7 / 15)
    assert hand["ari"] == pytest.approx((2 - 28 / 15) / (5.5 - 28 / 15))


def test_pairwise_stability():
    y = np.repeat(np.arange(3), 10)
    out = metrics.pairwise_stability([y, y, (y + 1) % 3, np.roll(y, 5)])
    assert out.shape == (6,)
    assert np.allclose(out[:3][:2], 1.0)  # (0,1), (0,2) identical partitions up to relabelling
    assert out[2] < 1.0  # (0,3) differs
    with pytest.raises(ValueError, match="at least two"):
        metrics.pairwise_stability([y])
    with pytest.raises(ValueError, match="same points"):
        metrics.pairwise_stability([y, y[:-1]])


@pytest.mark.parametrize("n", [10_000, 1001, 5, 37])
def test_bootstrap_splits_sizes_and_overlaps(n):
    s = metrics.bootstrap_splits(n, seed=3)
    n_unique = n // 5
    assert s.shared.shape[0] == n - 3 * n_unique
    sets = [set(sub.tolist()) for sub in s.subsets]
    for k, sub in enumerate(s.subsets):
        assert sub.shape[0] == s.shared.shape[0] + n_unique
        assert len(sets[k]) == sub.shape[0]  # no duplicates
        assert np.array_equal(sub[: s.shared.shape[0]], s.shared)  # shared points first
    shared = set(s.shared.tolist())
    for i, j in [(0, 1), (0, 2), (1, 2)]:
        assert sets[i] & sets[j] == shared
    assert set.union(*sets) == set(range(n))  # every point used
    if n == 10_000:
        assert s.shared.shape[0] == 4000 and s.subsets[0].shape[0] == 6000


def test_bootstrap_splits_seeded_and_authors_layout():
    a, b = metrics.bootstrap_splits(1000, seed=7), metrics.bootstrap_splits(1000, seed=7)
    assert all(np.array_equal(x, y) for x, y in zip(a.subsets, b.subsets, strict=True))
    c = metrics.bootstrap_splits(1000, seed=8)
    assert not np.array_equal(a.shared, c.shared)
    auth = metrics.bootstrap_splits(10_000, seed=None)
    assert np.array_equal(auth.subsets[0], np.arange(6000))
    assert np.array_equal(auth.subsets[1], np.r_[0:4000, 6000:8000])
    assert np.array_equal(auth.subsets[2], np.r_[0:4000, 8000:10000])
    with pytest.raises(ValueError, match="n must be >= 5"):
        metrics.bootstrap_splits(4)


def test_bootstrap_ari():
    n = 500
    y = np.arange(n) % 4
    s = metrics.bootstrap_splits(n, seed=0)
    perfect = [y[idx] for idx in s.subsets]
    assert np.allclose(metrics.bootstrap_ari(perfect, s), 1.0)
    rng = np.random.default_rng(0)
    noisy = [y[s.subsets[0]], y[s.subsets[1]], rng.integers(0, 4, s.subsets[2].shape[0])]
    out = metrics.bootstrap_ari(noisy, s)
    assert out[0] == pytest.approx(1.0) and out[1] < 0.1 and out[2] < 0.1
    with pytest.raises(ValueError, match="labels_by_subset\\[1\\]"):
        metrics.bootstrap_ari([perfect[0], perfect[1][:-1], perfect[2]], s)


def test_bad_input():
    with pytest.raises(ValueError, match="labels_true has 3 entries but labels_pred has 2"):
        metrics.adjusted_rand([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="labels_pred contains NaN"):
        metrics.f_measure([0, 1], [0.0, np.nan])
    with pytest.raises(ValueError, match="labels_true must be 1-D"):
        metrics.clustering_accuracy([[0, 1]], [0, 1])
    with pytest.raises(ValueError, match="names"):
        metrics.score_all([0, 1], [0, 1], names=["ARI", "nope"])
