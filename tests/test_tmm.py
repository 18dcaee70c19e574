"""Behaviour of mnistnd.tmm.StudentTMixture: pruned against full EM, against studenttmixture,
scikit-learn's estimator checks, recovery of a known mixture, input checks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score
from sklearn.utils.estimator_checks import parametrize_with_checks

import mnistnd.tmm as tmm
from mnistnd.tmm import StudentTMixture


def _heavy_tailed_blobs(n=600, dim=4, centers=3, seed=0, std=1.5):
    X, y = make_blobs(n, n_features=dim, centers=centers, cluster_std=std, random_state=seed)
    return X + 0.3 * np.random.default_rng(seed).standard_t(3, X.shape), y


def _count_pairs(monkeypatch):
    """Count the (point, component) distances the fits compute."""
    counted = []

    def counting(sq_maha, X, loc, chol, pairs=None):
        counted.append(sq_maha.size if pairs is None else int(pairs.sum()))
        return fill(sq_maha, X, loc, chol, pairs)

    fill = tmm._fill_pairs
    monkeypatch.setattr(tmm, "_fill_pairs", counting)
    return counted


@pytest.mark.parametrize(
    ("dim", "centers", "seed", "std"),
    [(4, 5, 0, 0.8), (8, 6, 1, 2.0), (24, 6, 2, 2.0), (16, 8, 3, 2.0)],
)
def test_pruned_equals_full(dim, centers, seed, std, monkeypatch):
    """Same labels and log-likelihood; the pruned fit computes far fewer pairs."""
    X, _ = _heavy_tailed_blobs(n=2000, dim=dim, centers=centers, seed=seed, std=std)
    counted = _count_pairs(monkeypatch)
    full = StudentTMixture(centers, random_state=seed, algorithm="full").fit(X)
    full_pairs = sum(counted)
    counted.clear()
    pruned = StudentTMixture(centers, random_state=seed).fit(X)
    assert full_pairs == X.shape[0] * centers * (full.n_iter_ + 1)  # + 1: the final labels
    assert sum(counted) < 0.6 * full_pairs  # otherwise this test would prove nothing
    assert pruned.n_iter_ == full.n_iter_
    assert pruned.lower_bound_ == pytest.approx(full.lower_bound_, rel=1e-8)
    assert pruned.score(X) == pytest.approx(full.score(X), rel=1e-8)
    assert np.array_equal(pruned.labels_, full.labels_)
    scale = np.abs(full.location_).max()
    assert np.abs(pruned.location_ - full.location_).max() <= 1e-6 * scale


@pytest.mark.parametrize("algorithm", ["full", "pruned"])
@pytest.mark.parametrize(("fixed_df", "dim"), [(False, 4), (True, 4), (False, 24)])
def test_equals_studenttmixture(fixed_df, dim, algorithm):
    """From the library's own k-means++ start: the library's fit."""
    studenttmixture = pytest.importorskip("studenttmixture")
    X, _ = _heavy_tailed_blobs(n=1500 if dim > 4 else 600, dim=dim)
    lib = studenttmixture.EMStudentMixture(
        n_components=3, fixed_df=fixed_df, init_type="k++", random_state=0, tol=1e-5
    )
    init = lib.kplusplus_initialization(X, 0)
    lib.fit(X)
    ours = StudentTMixture(3, fixed_df=fixed_df, means_init=init, algorithm=algorithm).fit(X)
    assert ours.converged_
    assert ours.score(X) == pytest.approx(lib.score(X), rel=1e-10)
    assert np.array_equal(ours.predict(X), lib.predict(X))
    # the pruned fit drops responsibilities below exp(-20): parameters move by ~1e-8 relative,
    # degrees of freedom more where the likelihood is flat in them
    tight = algorithm == "full"
    assert np.allclose(ours.df_, lib.df_, rtol=1e-8 if tight else 1e-4)
    assert np.allclose(ours.location_, lib.location_, atol=1e-10 if tight else 1e-6)
    assert np.allclose(ours.scale_, np.moveaxis(lib.scale_, -1, 0), atol=1e-10 if tight else 1e-6)
    assert np.allclose(ours.weights_, lib.mix_weights_, atol=1e-12 if tight else 1e-8)


# Every check passes. scikit-learn skips one by itself: check_array_api_input runs only with
# SCIPY_ARRAY_API=1, and this estimator is numpy-only (it converts its input to float64 arrays).
@parametrize_with_checks([StudentTMixture(), StudentTMixture(algorithm="full")])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_recovers_heavy_tails():
    rng = np.random.default_rng(1)
    # component 0 heavy-tailed (df 3), component 1 Gaussian-like
    a = rng.standard_t(3, size=(1500, 2)) + np.array([-8.0, 0.0])
    b = rng.standard_normal((1500, 2)) + np.array([8.0, 0.0])
    X = np.vstack([a, b])
    m = StudentTMixture(2, random_state=0).fit(X)
    assert adjusted_rand_score(np.repeat([0, 1], 1500), m.labels_) > 0.99
    df_a, df_b = m.df_[m.predict(a[:1])[0]], m.df_[m.predict(b[:1])[0]]
    assert 1.5 < df_a < 6 and df_b > 15
    assert np.allclose(m.predict_proba(X).sum(axis=1), 1.0)
    assert m.score(X) == pytest.approx(m.score_samples(X).mean())
    assert np.array_equal(m.labels_, m.predict(X))
    assert np.allclose(m.scale_, m.scale_cholesky_ @ m.scale_cholesky_.transpose(0, 2, 1))


def test_random_state():
    X, _ = _heavy_tailed_blobs(seed=2)
    a = StudentTMixture(3, random_state=5).fit_predict(X)
    assert np.array_equal(a, StudentTMixture(3, random_state=5).fit_predict(X))
    rs = StudentTMixture(3, random_state=np.random.RandomState(5)).fit_predict(X)
    assert np.array_equal(a, rs)  # an int seeds a RandomState, as in scikit-learn
    assert StudentTMixture(3).fit(X).converged_  # None: fresh randomness


def test_max_iter_reached_warns():
    X, _ = _heavy_tailed_blobs(seed=4)
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        m = StudentTMixture(3, max_iter=2, random_state=0).fit(X)
    assert not m.converged_ and m.n_iter_ == 2


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"n_components": 0}, ValueError, "n_components must be >= 1"),
        ({"n_components": 2.5}, TypeError, "n_components must be an integer"),
        ({"n_components": 700}, ValueError, "n_components=700 exceeds the 600 samples"),
        ({"tol": 0.0}, ValueError, "tol must be > 0"),
        ({"reg_covar": -1.0}, ValueError, "reg_covar must be >= 0"),
        ({"max_iter": 0}, ValueError, "max_iter must be >= 1"),
        ({"df": 0.0}, ValueError, "df must be > 0"),
        ({"fixed_df": "yes"}, TypeError, "fixed_df must be True or False"),
        ({"algorithm": "fast"}, ValueError, r"algorithm='fast' is not one of \['pruned'"),
        ({"random_state": "seed"}, ValueError, "random_state must be None, an int"),
        ({"means_init": np.zeros((2, 4))}, ValueError, r"means_init must have shape .*\(3, 4\)"),
    ],
)
def test_bad_parameters(params, error, match):
    X, _ = _heavy_tailed_blobs()
    with pytest.raises(error, match=match):
        StudentTMixture(**{"n_components": 3, **params}).fit(X)


def test_bad_data():
    X, _ = _heavy_tailed_blobs()
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        StudentTMixture(3).fit(bad)
    with pytest.raises(ValueError, match="not fitted"):
        StudentTMixture(3).predict(X)
    m = StudentTMixture(3, random_state=0).fit(X)
    with pytest.raises(ValueError, match="expecting 4 features"):
        m.predict(X[:, :2])
