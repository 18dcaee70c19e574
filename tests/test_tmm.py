"""Tests of mnistnd._tmm: equality with studenttmixture, recovery, input checks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from mnistnd._tmm import StudentTMixture, kmeans_plusplus


def _heavy_tailed_blobs(n=600, dim=4, centers=3, seed=0):
    X, y = make_blobs(n, n_features=dim, centers=centers, cluster_std=1.5, random_state=seed)
    X = X + 0.3 * np.random.default_rng(seed).standard_t(3, X.shape)
    return X, y


@pytest.mark.parametrize(("fixed_df", "dim"), [(False, 4), (True, 4), (False, 24)])
def test_equals_studenttmixture(fixed_df, dim):
    """Same start, same fit; dim 24 goes through the float32 screening (tmm._TIER_MIN_DIM)."""
    studenttmixture = pytest.importorskip("studenttmixture")
    X, _ = _heavy_tailed_blobs(n=1500 if dim > 4 else 600, dim=dim)
    lib = studenttmixture.EMStudentMixture(
        n_components=3, fixed_df=fixed_df, init_type="k++", random_state=0, tol=1e-5
    )
    init = lib.kplusplus_initialization(X, 0)  # the library's own k++ centres
    lib.fit(X)
    ours = StudentTMixture(3, fixed_df=fixed_df, means_init=init).fit(X)
    assert ours.converged_
    assert ours.score(X) == pytest.approx(lib.score(X), abs=1e-8)
    assert np.array_equal(ours.predict(X), lib.predict(X))
    assert np.allclose(ours.df_, lib.df_, rtol=1e-6)
    assert np.allclose(ours.location_, lib.location_, atol=1e-7)
    assert np.allclose(ours.scale_, np.moveaxis(lib.scale_, -1, 0), atol=1e-7)
    assert np.allclose(ours.weights_, lib.mix_weights_, atol=1e-9)


def test_recovers_blobs_and_estimates_df():
    rng = np.random.default_rng(1)
    # component 0 heavy-tailed (df 3), component 1 Gaussian-like
    a = rng.standard_t(3, size=(1500, 2)) + np.array([-8.0, 0.0])
    b = rng.standard_normal((1500, 2)) + np.array([8.0, 0.0])
    X = np.vstack([a, b])
    y = np.repeat([0, 1], 1500)
    m = StudentTMixture(2, random_state=0).fit(X)
    assert adjusted_rand_score(y, m.predict(X)) > 0.99
    df_a = m.df_[m.predict(a[:1])[0]]
    df_b = m.df_[m.predict(b[:1])[0]]
    assert 1.5 < df_a < 6 and df_b > 15  # heavy tails found where they are
    proba = m.predict_proba(X)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert m.score(X) == pytest.approx(m.score_samples(X).mean())


def test_same_seed_same_fit_and_kmeanspp():
    X, _ = _heavy_tailed_blobs(seed=2)
    m = StudentTMixture(3, random_state=5).fit(X)
    # the fit's working arrays are dropped: the model keeps what predict and diagnostics read
    private = {k for k in vars(m) if k.startswith("_")}
    assert private == {"_center", "_loc_c", "_exact_fraction", "_double_fraction"}
    a = StudentTMixture(3, random_state=5).fit_predict(X)
    b = StudentTMixture(3, random_state=5).fit_predict(X)
    assert np.array_equal(a, b)
    c = kmeans_plusplus(X, 3, 0)
    assert c.shape == (3, X.shape[1])
    assert all(any(np.array_equal(row, x) for x in X) for row in c)  # centres are data points
    assert len({tuple(r) for r in c}) == 3


def test_bad_input():
    X, _ = _heavy_tailed_blobs()
    with pytest.raises(ValueError, match="means_init must have shape"):
        StudentTMixture(3, means_init=np.zeros((2, 4))).fit(X)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="X contains 1 NaN"):
        StudentTMixture(3).fit(Xn)
    with pytest.raises(ValueError, match="df must be >"):
        StudentTMixture(3, df=0.0).fit(X)
    with pytest.raises(ValueError, match="precision"):
        StudentTMixture(3, precision="half").fit(X)
    with pytest.raises(RuntimeError, match="not fitted"):
        StudentTMixture(3).predict(X)
    m = StudentTMixture(3).fit(X)
    with pytest.raises(ValueError, match="fitted on 4"):
        m.predict(X[:, :2])


def test_tiers_change_nothing(monkeypatch):
    """Skipped pairs and float32 screening give the fit of every pair in float64.

    Same iterations, labels and log-likelihood (to 1e-12); the parameters agree to ~1e-8
    relative: the responsibilities dropped are below exp(-20) = 2e-9.
    """
    import mnistnd._tmm as tmm

    # 24 dimensions: float32 screening is used from tmm._TIER_MIN_DIM on
    assert tmm._TIER_MIN_DIM <= 24
    X, _ = make_blobs(3000, n_features=24, centers=6, cluster_std=2.5, random_state=3)
    X = X + 0.3 * np.random.default_rng(3).standard_t(3, X.shape)
    fast = StudentTMixture(6, random_state=1).fit(X)
    # pairs were skipped and some screened in float32 (otherwise this test would prove nothing)
    assert min(fast._exact_fraction[5:]) < 0.5
    assert np.mean(fast._double_fraction[5:]) < np.mean(fast._exact_fraction[5:]) - 0.002
    monkeypatch.setattr(tmm, "_MARGIN", np.inf)
    monkeypatch.setattr(tmm, "_HEAVY", np.inf)
    full = StudentTMixture(6, random_state=1).fit(X)
    assert min(full._exact_fraction) == 1.0
    assert min(full._double_fraction) == 1.0
    assert fast.n_iter_ == full.n_iter_
    assert fast.lower_bound_ == pytest.approx(full.lower_bound_, rel=1e-12)
    assert np.array_equal(fast.predict(X), full.predict(X))
    # degrees of freedom in the hundreds sit where the df equation is flat: a relative 1e-12
    # in its sums moves them by ~1e-8
    assert np.allclose(fast.df_, full.df_, rtol=1e-7)
    assert np.abs(fast.scale_ - full.scale_).max() <= 1e-7 * np.abs(full.scale_).max()
    assert np.abs(fast.location_ - full.location_).max() <= 1e-7 * np.abs(full.location_).max()


def test_candidate_bounds_are_lower_bounds():
    """The float32 error bound of a whitened row holds: |z| >= lo for the exact distance."""
    X, _ = make_blobs(2000, n_features=16, centers=4, cluster_std=3.0, random_state=5)
    X = X * 1e3 + 5e4  # large offsets make float32 rounding matter
    m = StudentTMixture(4, random_state=0, max_iter=3).fit(X)
    Xc = X - m._center
    exact = m._sq_mahalanobis(Xc, m._loc_c, m.scale_cholesky_)  # float64, shape (n, K)
    m._prepare(Xc, 4)
    m._set_whitening(m._loc_c, m.scale_cholesky_, m.weights_, m.df_)
    sel, n_sel = np.empty((4, Xc.shape[0]), np.int64), np.zeros(4, np.int64)
    for k in range(4):
        m._whiten(sel, n_sel, np.arange(4) == k, True, "light")
        point, d32 = m._records("light", ("point", "maha"))
        lo = m._lower[k].copy()
        assert np.array_equal(point, np.arange(Xc.shape[0]))
        assert np.all(lo <= np.sqrt(exact[:, k]))
        assert np.allclose(d32, exact[:, k], rtol=1e-3)  # float32 values, not garbage
        # a gathered subset in float64, in a given order: records follow the rows
        idx = np.random.default_rng(k).permutation(Xc.shape[0])[:700]
        sel[k, :700], n_sel[k] = idx, 700
        m._whiten(sel, n_sel, np.zeros(4, bool), False, "primary")
        n_sel[k] = 0
        point, comp, d64 = m._records("primary", ("point", "comp", "maha"))
        assert np.array_equal(point, idx) and np.all(comp == k)
        assert np.allclose(d64, exact[idx, k], rtol=1e-10)
        assert np.all(m._lower[k, idx] <= np.sqrt(exact[idx, k]))
        assert m._primary[k, idx].all() and m._primary[k].sum() == idx.size
        m._set_whitening(m._loc_c, m.scale_cholesky_, m.weights_, m.df_)  # reset the rows


def test_single_precision_products_agree_with_double():
    X, _ = make_blobs(3000, n_features=12, centers=5, cluster_std=1.5, random_state=4)
    X = X + 0.3 * np.random.default_rng(4).standard_t(3, X.shape)
    double = StudentTMixture(5, random_state=2).fit(X)
    single = StudentTMixture(5, random_state=2, precision="single").fit(X)
    assert single.converged_
    assert single.score(X) == pytest.approx(double.score(X), abs=1e-4)
    assert adjusted_rand_score(double.predict(X), single.predict(X)) > 0.99
    assert np.allclose(single.df_, double.df_, rtol=1e-2)


def test_compiled_pair_loops_match_numpy():
    """The E-step's compiled loops against plain numpy on random pairs (some not computed)."""
    from mnistnd import _tmm_kernels as kernels

    rng = np.random.default_rng(0)
    n_comp, n, dim, margin, heavy_gap = 5, 400, 7.0, 30.0, 20.0
    lp = rng.normal(-10.0, 15.0, (n_comp, n))
    lp[rng.random((n_comp, n)) < 0.4] = -np.inf
    lp[rng.integers(n_comp, size=n), np.arange(n)] = -3.0  # every point has a computed pair
    maha = rng.gamma(3.0, 4.0, (n_comp, n))
    computed = np.isfinite(lp)
    primary = computed & (rng.random((n_comp, n)) < 0.5)
    # light rows: the other computed pairs, plus superseded copies of some primary pairs and
    # rows of no point (-1), which must all be ignored
    light = (computed & ~primary) | (primary & (rng.random((n_comp, n)) < 0.3))

    def records(mask, extra=0):
        k, i = np.nonzero(mask)
        order = rng.permutation(k.size)
        k, i = k[order], i[order]
        junk = rng.normal(size=extra)
        point = np.concatenate([i, np.full(extra, -1)])
        return [point, np.concatenate([k, np.zeros(extra, np.int64)]),
                np.concatenate([lp[k, i], junk]), np.concatenate([maha[k, i], junk])]  # fmt: skip

    rec_p, rec_l = records(primary), records(light, extra=7)
    df = rng.uniform(2.0, 30.0, n_comp)
    w_p, w_l = np.empty(rec_p[0].size), np.empty(rec_l[0].size)
    heavy = np.empty((n_comp, n), np.int64)
    n_heavy, sums = np.zeros(n_comp, np.int64), np.empty((3, n_comp))
    best_comp = np.full(n, -1)
    bound, kept, n_computed = kernels.responsibilities(
        *rec_p, *rec_l, primary, df, dim, margin, heavy_gap, w_p, w_l, heavy, n_heavy, sums,
        best_comp,
    )  # fmt: skip
    top = lp.max(axis=0)
    gap = lp - top
    keep = computed & (gap >= -margin)
    r = np.where(keep, np.exp(gap), 0.0)
    total = r.sum(axis=0)
    r /= total
    u = np.where(keep, (df[:, None] + dim) / (df[:, None] + maha), 0.0)
    assert bound == pytest.approx(np.mean(np.log(total) + top), rel=1e-13)
    assert (kept, n_computed) == (keep.sum(), computed.sum())
    assert np.array_equal(best_comp, np.argmax(lp, axis=0))
    assert np.allclose(sums[0], r.sum(axis=1), rtol=1e-12)
    assert np.allclose(sums[1], (r * u).sum(axis=1), rtol=1e-12)
    dfterm = np.where(keep, r * (np.log(np.where(keep, u, 1.0)) - u), 0.0).sum(axis=1)
    assert np.allclose(sums[2], dfterm, rtol=1e-12)
    point, comp = rec_p[0], rec_p[1]
    assert np.allclose(w_p, (r * u)[comp, point], rtol=1e-13)
    point, comp = rec_l[0], rec_l[1]
    live = (point >= 0) & ~primary[comp, np.maximum(point, 0)]
    assert np.allclose(w_l[live], (r * u)[comp[live], point[live]], rtol=1e-13)
    assert np.all(w_l[~live] == 0.0)
    for k in range(n_comp):
        assert sorted(heavy[k, : n_heavy[k]]) == list(np.flatnonzero(gap[k] >= -heavy_gap))

    # candidates: exactly the pairs not computed whose bound cannot prove them > margin below
    lower = rng.gamma(2.0, 3.0, (n_comp, n))
    shrink, shift = rng.uniform(0.8, 1.0, n_comp), rng.uniform(0.0, 0.5, n_comp)
    const, half, inv_df = rng.normal(-20.0, 5.0, n_comp), 0.5 * (df + dim), 1.0 / df
    cand, n_cand = np.empty((n_comp, n), np.int64), np.zeros(n_comp, np.int64)
    new_lower = lower.copy()
    kernels.candidates(
        new_lower, shrink, shift, top, primary, const, half, inv_df, margin, cand, n_cand
    )
    lo = np.maximum(lower * shrink[:, None] - shift[:, None], 0.0)
    test = const[:, None] - half[:, None] * np.log1p(lo**2 * inv_df[:, None])
    want = ~primary & (test >= top - margin)
    assert np.allclose(new_lower[~primary], lo[~primary])
    assert np.all(new_lower[primary] == lower[primary])
    for k in range(n_comp):
        assert np.array_equal(cand[k, : n_cand[k]], np.flatnonzero(want[k]))


@pytest.mark.parametrize("step", [1e-4, 1e-2, 0.1, 1.0])
def test_shrink_bounds_the_smallest_singular_value(step):
    """The carried bounds shrink by a factor that never exceeds s_min(L_new^{-1} L_old)."""
    rng = np.random.default_rng(int(step * 1e4))
    dim, n_comp = 20, 6
    base = rng.standard_normal((n_comp, dim, dim))
    chol_old = np.linalg.cholesky(base @ base.transpose(0, 2, 1) + dim * np.eye(dim))
    noise = np.tril(rng.standard_normal((n_comp, dim, dim))) * step
    chol = chol_old @ (np.eye(dim) + noise)
    chol *= np.sign(np.diagonal(chol, axis1=1, axis2=2))[:, None, :]  # a valid Cholesky factor
    inv = StudentTMixture._whitening(chol)
    shrink = StudentTMixture._shrink(inv, chol_old)
    exact = np.linalg.svd(inv @ chol_old, compute_uv=False)[:, -1]
    assert np.all(shrink <= exact)
    assert np.all(shrink >= 0.9 * exact) or step >= 1.0  # tight when the factors are close


def test_compiled_inverses_and_weighted_rows_match_numpy():
    """The compiled triangular inverses and the M-step's weighted rows against numpy."""
    from mnistnd import _tmm_kernels as kernels

    rng = np.random.default_rng(1)
    n_comp, dim, n = 3, 9, 50
    base = rng.standard_normal((n_comp, dim, dim))
    chol = np.linalg.cholesky(base @ base.transpose(0, 2, 1) + dim * np.eye(dim))
    inv, inv32 = np.empty_like(chol), np.zeros(chol.shape, np.float32)
    norms = kernels.triangular_inverses(chol, inv, inv32)
    assert np.allclose(inv @ chol, np.eye(dim), atol=1e-12)
    assert np.all(np.triu(inv, 1) == 0.0)
    assert np.array_equal(inv32, inv.astype(np.float32))
    assert np.allclose(norms, np.linalg.norm(inv, axis=(1, 2)), rtol=1e-13)
    with pytest.raises(ValueError, match="singular"):
        bad = chol.copy()
        bad[1, 4, 4] = 0.0
        kernels.triangular_inverses(bad, inv, inv32)
    # records of two ranges, some of weight 0 (not kept): Y^T Y is the weighted scatter
    X = rng.standard_normal((n, dim))
    point = rng.integers(0, n, 30)
    w = np.where(rng.random(30) < 0.3, 0.0, rng.random(30))
    loc, s1 = rng.standard_normal(dim), np.zeros(dim)
    blocks = np.array([[0, 12], [20, 10]])
    Y = np.empty((n, dim))
    count = kernels.weighted_rows(X, point, w, blocks, loc, Y, 0, s1)
    rows = np.r_[0:12, 20:30]
    rows = rows[w[rows] > 0]
    y = X[point[rows]] - loc
    assert count == rows.size
    assert np.allclose(Y[:count].T @ Y[:count], (w[rows, None] * y).T @ y, rtol=1e-12)
    assert np.allclose(s1, (w[rows, None] * y).sum(axis=0), rtol=1e-12)


def test_compiled_m_step_algebra_matches_numpy():
    """Scales, factors and the shrink products of compiled code against numpy's."""
    from mnistnd import _tmm_kernels as kernels

    rng = np.random.default_rng(2)
    n_comp, dim = 4, 11
    Y = rng.standard_normal((n_comp, 40, dim))
    w = rng.random((n_comp, 40))
    scatter = np.einsum("kn,kni,knj->kij", w, Y, Y)
    s1, ru_sum = np.einsum("kn,kni->ki", w, Y), w.sum(axis=1)
    loc_old = rng.standard_normal((n_comp, dim))
    loc, chol = np.empty_like(loc_old), np.empty_like(scatter)
    scale = scatter.copy()
    kernels.scale_factors(scale, s1, ru_sum, 1e-6, loc_old, loc, chol)
    mean = s1 / ru_sum[:, None]
    want = np.einsum("kn,kni,knj->kij", w, Y - mean[:, None], Y - mean[:, None])
    want = want / ru_sum[:, None, None] + 1e-6 * np.eye(dim)
    assert np.allclose(loc, loc_old + mean, rtol=1e-14)
    assert np.allclose(scale, want, rtol=1e-11)
    assert np.array_equal(scale, scale.transpose(0, 2, 1))
    assert np.allclose(chol, np.linalg.cholesky(want), rtol=1e-10)
    with pytest.raises(np.linalg.LinAlgError):  # a scale that is not positive definite
        kernels.scale_factors(-scatter, s1, ru_sum, 0.0, loc_old, loc, chol)
    # the shrink's products: A = inv chol_old (triangular), A^T A and |D^4|_F, D = A^T A - I
    inv = StudentTMixture._whitening(chol)
    chol_old = chol @ (np.eye(dim) + 0.05 * np.tril(rng.standard_normal((n_comp, dim, dim))))
    gram, change = np.empty_like(chol), np.empty_like(chol)
    norm4 = kernels.shrink_spread(
        inv, chol_old, gram, change, np.empty((dim, dim)), np.empty((dim, dim))
    )
    A = inv @ chol_old
    dev = A.transpose(0, 2, 1) @ A - np.eye(dim)
    assert np.allclose(change, A, rtol=1e-13, atol=1e-15)
    assert np.allclose(gram, dev + np.eye(dim), rtol=1e-13, atol=1e-15)
    assert np.allclose(norm4, np.linalg.norm(np.linalg.matrix_power(dev, 4), axis=(1, 2)))


def test_degrees_of_freedom_equal_scipy_newton():
    """The compiled df update is studenttmixture's: scipy's Newton-Halley per component."""
    from scipy.optimize import newton
    from scipy.special import digamma, polygamma, zeta

    from mnistnd import _tmm_kernels as kernels

    # the Hurwitz zeta of the derivatives, against scipy's
    a = np.concatenate([np.geomspace(0.01, 1e6, 500), np.linspace(0.5, 40.0, 500)])
    for s in (2.0, 3.0):
        ours = np.array([kernels._hurwitz_zeta(s, x) for x in a])
        assert np.allclose(ours, zeta(s, a), rtol=5e-15, atol=0.0)
    assert np.isnan(kernels._hurwitz_zeta(2.0, -1.5))  # outside v > 0: a failed step
    rng = np.random.default_rng(3)
    for dim in (2, 16, 64):
        df = rng.uniform(1.5, 300.0, 12)
        sums = np.empty((3, 12))
        sums[0] = rng.uniform(5.0, 2000.0, 12)
        sums[2] = -sums[0] * rng.uniform(1.0005, 1.2, 12)  # mean(log u - u) <= -1
        half = 0.5 * (df + dim)
        const = 1.0 + sums[2] / sums[0] + digamma(half) - np.log(half)
        want = []
        for k in range(12):
            root = newton(
                lambda v, c: c - digamma(0.5 * v) + np.log(0.5 * max(v, 1e-9)), df[k],
                fprime=lambda v, c: -0.5 * polygamma(1, 0.5 * v) + 1 / v,
                fprime2=lambda v, c: -0.25 * polygamma(2, 0.5 * v) - 1 / v**2,
                args=(const[k],), maxiter=1000, tol=1e-3, disp=False,
            )  # fmt: skip
            want.append(max(root, 1.0))
        got = kernels.degrees_of_freedom(sums, df, float(dim), 1e-3, 1000)
        assert np.allclose(got, want, rtol=1e-11)
        assert np.all(np.abs(got - df) > 0)  # the roots moved: the test is not the start


def test_renumbering_points_changes_nothing(monkeypatch):
    """Sorting the points by component (iterations 2, 4, 8, ...) only reorders the sums."""
    X, _ = make_blobs(2500, n_features=24, centers=5, cluster_std=2.0, random_state=7)
    X = X + 0.3 * np.random.default_rng(7).standard_t(3, X.shape)
    calls = []
    original = StudentTMixture._reorder

    def counted(self, *args):
        calls.append(1)
        original(self, *args)

    monkeypatch.setattr(StudentTMixture, "_reorder", counted)
    sorted_fit = StudentTMixture(5, random_state=3).fit(X)
    assert len(calls) >= 3  # iterations 2, 4 and 8 at least
    monkeypatch.setattr(StudentTMixture, "_reorder", lambda self, *args: None)
    plain = StudentTMixture(5, random_state=3).fit(X)
    assert sorted_fit.n_iter_ == plain.n_iter_
    assert sorted_fit.lower_bound_ == pytest.approx(plain.lower_bound_, rel=1e-12)
    assert np.array_equal(sorted_fit.predict(X), plain.predict(X))
    assert np.allclose(sorted_fit.location_, plain.location_, rtol=1e-9, atol=1e-9)
    # the renumbering itself: every per-point array follows its point
    monkeypatch.setattr(StudentTMixture, "_reorder", original)
    rng = np.random.default_rng(0)
    m = StudentTMixture(5)
    m._prepare(X, 5)
    m._lower[:] = rng.random(m._lower.shape)
    x, xnorm, lower = m._X.copy(), m._xnorm.copy(), m._lower.copy()
    best = rng.integers(0, 5, X.shape[0])
    heavy, n_heavy = np.zeros((5, X.shape[0]), np.int64), np.array([0, 7, 3, 0, 11])
    for k in range(5):
        heavy[k, : n_heavy[k]] = rng.choice(X.shape[0], n_heavy[k], replace=False)
    old_heavy = heavy.copy()
    m._reorder(heavy, n_heavy, best)
    order = np.argsort(best, kind="stable")
    assert np.array_equal(m._X, x[order]) and np.array_equal(m._xnorm, xnorm[order])
    assert np.array_equal(m._lower, lower[:, order])
    assert np.all(np.diff(best[order]) >= 0)
    for k in range(5):
        new = heavy[k, : n_heavy[k]]
        assert np.all(np.diff(new) > 0)  # ascending, for the gathers
        assert sorted(order[new]) == sorted(old_heavy[k, : n_heavy[k]])


def test_fit_runs_on_one_blas_thread_and_restores_the_setting(monkeypatch):
    """The EM pins BLAS to one thread (its blocks are too small for threads to pay), then
    gives the caller's setting back."""
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads():
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    seen = []
    plain_em = StudentTMixture._plain_em

    def spy(self, state):
        seen.append(blas_threads())
        return plain_em(self, state)

    monkeypatch.setattr(StudentTMixture, "_plain_em", spy)
    X, _ = _heavy_tailed_blobs()
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        StudentTMixture(3).fit(X)
        assert blas_threads() == before
    assert seen and all(n == 1 for n in seen[0])
