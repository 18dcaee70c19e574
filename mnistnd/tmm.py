"""Mixture of multivariate Student-t distributions fitted by EM.

The model and the EM iteration are those of ``studenttmixture.EMStudentMixture`` (J. Parkinson's
package, a rewrite of the ``mix_T`` code the MNIST-Nd authors used) with ``fixed_df=False``:
full scale matrices, per-component degrees of freedom re-estimated in every M-step by the
library's Halley iteration on the fixed-point equation of Peel & McLachlan (2000),
``reg_covar`` added to every scale diagonal, and a stop when the mean log-likelihood per point
changes by less than ``tol``.

Two algorithms run that iteration:

* ``"full"`` computes every (point, component) pair in every E-step, as the library does.
* ``"pruned"`` (the default) gives responsibility 0 to a pair whose weighted log density is
  more than :data:`MARGIN` nats below its point's best component. Its responsibility would
  be below ``exp(-MARGIN)``, so the fit moves by about that much relative to ``"full"``.
  Most such pairs are never computed: each pair carries a lower bound on its Mahalanobis
  distance from one E-step to the next (the idea of Elkan's and Hamerly's k-means). When a
  component moves from ``(m, L)`` to ``(m', L')`` (location, Cholesky factor of the scale),
  ``|L'^-1 (x - m')| >= s |L^-1 (x - m)| - |L'^-1 (m - m')|`` with ``s`` the smallest
  singular value of ``L'^-1 L``. The bound gives an upper bound on the pair's log density;
  a pair is computed only when that upper bound comes within the margin of its point's
  best pair, which is computed first (last E-step's best component).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.linalg import solve_triangular
from scipy.special import digamma, gammaln, logsumexp, polygamma
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import kmeans_plusplus
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from mnistnd._checks import check_choice, check_float, check_int

__all__ = ["MARGIN", "StudentTMixture"]

#: Nats below a point's best component under which the ``"pruned"`` algorithm gives a pair
#: responsibility 0 (it would be below ``exp(-20)``, about 2.1e-9).
MARGIN = 20.0
# Tolerance of the degrees-of-freedom iteration: the library's (scipy.optimize.newton's tol).
_DF_TOL = 1e-3
_EPS = np.finfo(np.float64).eps
# Share of the pairs kept by an E-step above which the next computes all of them.
_DENSE = 0.5


def _log_norm(weights, chol, df, dim):
    """Log of each component's weight times its density's normalising constant, shape (K,)."""
    half_logdet = np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    return (np.log(np.clip(weights, 1e-12, None)) + gammaln(0.5 * (df + dim))
            - gammaln(0.5 * df) - 0.5 * dim * np.log(df * np.pi) - half_logdet)  # fmt: skip


def _log_density(sq_maha, log_norm, df, dim):
    """Weighted log density from squared Mahalanobis distances (``inf`` gives ``-inf``)."""
    return log_norm - 0.5 * (df + dim) * np.log1p(sq_maha / df)


def _fill_pairs(sq_maha, X, loc, chol, pairs=None):
    """Write the squared distances (K, n) of the pairs where ``pairs`` is true (None: all)."""
    for k in range(len(loc)):
        rows = slice(None) if pairs is None else pairs[k]
        Xk = X[rows]
        if len(Xk):
            z = solve_triangular(chol[k], (Xk - loc[k]).T, lower=True, check_finite=False)
            sq_maha[k, rows] = np.einsum("ij,ij->j", z, z)


def _triangular_solve(chol, B):
    """``L_k^-1 B_k`` for every component ``k`` (``chol`` (K, D, D) lower, ``B`` (K, D, m))."""
    return np.stack([solve_triangular(chol[k], B[k], lower=True) for k in range(len(chol))])


def _full_distances(X, loc, chol):
    """Squared Mahalanobis distances of all pairs, shape (K, n)."""
    sq_maha = np.empty((len(loc), len(X)))
    _fill_pairs(sq_maha, X, loc, chol)
    return sq_maha


class _PrunedDistances:
    """The E-step distances of the ``"pruned"`` algorithm, with the bounds carried between calls.

    A call returns the weighted log densities (K, n), ``-inf`` for the pairs more than
    :data:`MARGIN` below their point's best, and the squared distances (``inf`` where not
    computed). When the last call kept more than :data:`_DENSE` of the pairs, the next one
    computes them all without looking at the bounds (too few pairs could be skipped to pay
    for the bookkeeping).
    """

    def __init__(self):
        self.lower = None  # (K, n) lower bounds on the Mahalanobis distances (not squared)
        self.best = None  # (n,) each point's best component in the last call
        self.loc = self.chol = None  # the parameters the bounds refer to
        self.dense = True  # compute every pair in the next call

    def _moved_bounds(self, loc, chol):
        """Return the carried bounds, made valid for the new locations and Cholesky factors.

        The squared smallest singular value of ``A = L'^-1 L`` is the smallest eigenvalue of
        ``A^T A``, less a margin for its rounding.
        """
        change = _triangular_solve(chol, self.chol)
        gram = change.transpose(0, 2, 1) @ change
        low = np.linalg.eigvalsh(gram)[:, 0] - 1e-12 * np.linalg.norm(gram, axis=(1, 2))
        shrink = np.sqrt(np.maximum(low, 0.0))
        shift = np.linalg.norm(_triangular_solve(chol, (self.loc - loc)[..., None]), axis=(1, 2))
        return np.maximum(self.lower * shrink[:, None] - shift[:, None], 0.0)

    def __call__(self, X, loc, chol, log_norm, df):
        n, dim = X.shape
        sq_maha = np.full((len(loc), n), np.inf)
        if self.dense:
            lower = 0.0  # no bound is used: every pair is computed
            _fill_pairs(sq_maha, X, loc, chol)
        else:
            lower = self._moved_bounds(loc, chol)
            points = np.arange(n)
            first = np.zeros(sq_maha.shape, bool)
            first[self.best, points] = True  # last call's best pair of every point
            _fill_pairs(sq_maha, X, loc, chol, first)
            best = _log_density(sq_maha[self.best, points], log_norm[self.best], df[self.best], dim)
            upper = _log_density(lower**2, log_norm[:, None], df[:, None], dim)
            _fill_pairs(sq_maha, X, loc, chol, (upper >= best - MARGIN) & ~first)
        wlp = _log_density(sq_maha, log_norm[:, None], df[:, None], dim)
        wlp[wlp < wlp.max(axis=0) - MARGIN] = -np.inf
        self.dense = np.isfinite(wlp).mean() > _DENSE
        self.lower = np.where(np.isfinite(sq_maha), np.sqrt(sq_maha), lower)
        self.best, self.loc, self.chol = wlp.argmax(axis=0), loc, chol
        return wlp, sq_maha


def _responsibilities(wlp):
    """Responsibilities (K, n) and each point's log-likelihood from weighted log densities."""
    top = wlp.max(axis=0)
    with np.errstate(under="ignore"):
        resp = np.exp(wlp - top)
    total = resp.sum(axis=0)
    resp /= total
    return resp, top + np.log(total)


def _m_step(X, resp, weight, reg_covar):
    """Mixture weights, locations and Cholesky factors of the scales.

    ``weight`` (K, n) is the responsibility times the expected latent precision; pairs with
    weight 0 do not take part. As in the library, the location is the weighted mean and the
    scale the weighted scatter about it, both divided by the summed weight plus ``10 eps``.
    """
    dim = X.shape[1]
    n_comp = len(resp)
    loc, scale = np.empty((n_comp, dim)), np.empty((n_comp, dim, dim))
    total = weight.sum(axis=1) + 10 * _EPS
    for k in range(n_comp):
        keep = weight[k] > 0
        w, Xk = (weight[k], X) if keep.all() else (weight[k, keep], X[keep])
        loc[k] = w @ Xk / total[k]
        Y = (Xk - loc[k]) * np.sqrt(w)[:, None]
        scale[k] = Y.T @ Y / (total[k] + 10 * _EPS)  # the library adds 10 eps twice here
        scale[k].flat[:: dim + 1] += reg_covar
    try:
        chol = np.linalg.cholesky(scale)
    except np.linalg.LinAlgError:
        raise ValueError("a scale matrix is not positive definite; increase reg_covar") from None
    return resp.mean(axis=1), loc, chol


def _solve_df(df, dim, resp_sum, log_u_sum, max_iter):
    """Return new degrees of freedom by the library's Halley iteration, all components at once.

    Solves ``c - digamma(v / 2) + log(v / 2) = 0`` with
    ``c = 1 + log_u_sum / resp_sum + digamma((df + dim) / 2) - log((df + dim) / 2)``, from
    ``v = df``, with the steps and stopping rule of :func:`scipy.optimize.newton` given both
    derivatives (``tol=1e-3``, at most ``max_iter`` steps). A component whose iteration gives
    NaN keeps its ``df``; every result is at least 1.
    """
    half = 0.5 * (df + dim)
    with np.errstate(invalid="ignore", divide="ignore"):
        const = 1.0 + log_u_sum / resp_sum + digamma(half) - np.log(half)
    v, active = df.copy(), np.ones(df.shape, bool)
    for _ in range(max_iter):
        if not active.any():
            break
        v0, c = v[active], const[active]
        f = c - digamma(0.5 * v0) + np.log(0.5 * np.maximum(v0, 1e-9))
        f1 = -0.5 * polygamma(1, 0.5 * v0) + 1.0 / v0
        f2 = -0.25 * polygamma(2, 0.5 * v0) - 1.0 / v0**2
        with np.errstate(invalid="ignore", divide="ignore"):
            step = f / f1
            adj = step * f2 / f1 / 2
            step = np.where(np.abs(adj) < 1, step / (1.0 - adj), step)
        stuck = (f == 0) | (f1 == 0)  # scipy returns the current point
        v1 = np.where(stuck, v0, v0 - step)
        v[active] = v1
        active[active] = ~(stuck | np.isclose(v1, v0, rtol=0.0, atol=_DF_TOL) | np.isnan(v1))
    return np.maximum(np.where(np.isnan(v), df, v), 1.0)


def _weighted_log_prob(X, weights, loc, chol, df):
    """Log of weight times density of every (point, component) pair, shape (n, K)."""
    dim = X.shape[1]
    log_norm = _log_norm(weights, chol, df, dim)
    sq_maha = _full_distances(X, loc, chol)
    return _log_density(sq_maha, log_norm[:, None], df[:, None], dim).T


class StudentTMixture(ClusterMixin, BaseEstimator):
    """Finite mixture of multivariate Student-t distributions fitted by EM.

    Parameters
    ----------
    n_components : int, default=2
        Number of mixture components.
    tol : float, default=1e-5
        Stop when the mean log-likelihood per point changes by less than ``tol`` between two
        E-steps (the library's rule and default).
    reg_covar : float, default=1e-6
        Added to the diagonal of every scale matrix after each update.
    max_iter : int, default=1000
        Maximum number of EM iterations (and of steps of each degrees-of-freedom solve, as in
        the library).
    df : float, default=4.0
        Starting degrees of freedom of every component.
    fixed_df : bool, default=False
        Keep the degrees of freedom at ``df`` instead of re-estimating them.
    means_init : array-like of shape (n_components, n_features), default=None
        Initial locations; by default k-means++ seeding
        (:func:`sklearn.cluster.kmeans_plusplus` with one trial per centre) drawn from
        ``random_state``.
    random_state : int, RandomState instance or None, default=None
        Randomness of the k-means++ seeding.
    algorithm : {"pruned", "full"}, default="pruned"
        ``"full"``: every (point, component) pair in every E-step, as the library.
        ``"pruned"``: pairs more than :data:`MARGIN` nats below their point's best component
        get responsibility 0, and most of them are never computed (see the module's
        description).

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    location_ : ndarray of shape (n_components, n_features)
    scale_ : ndarray of shape (n_components, n_features, n_features)
    scale_cholesky_ : ndarray of shape (n_components, n_features, n_features)
        Lower Cholesky factors of ``scale_``.
    df_ : ndarray of shape (n_components,)
    labels_ : ndarray of shape (n_samples,)
        Most probable component of each training point under the fitted mixture.
    n_iter_ : int
        EM iterations run.
    converged_ : bool
    lower_bound_ : float
        Mean log-likelihood per point at the last E-step (the quantity whose change is
        tested against ``tol``).
    n_features_in_ : int
    """

    def __init__(self, n_components=2, *, tol=1e-5, reg_covar=1e-6, max_iter=1000, df=4.0,
                 fixed_df=False, means_init=None, random_state=None,
                 algorithm="pruned"):  # fmt: skip
        self.n_components = n_components
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.df = df
        self.fixed_df = fixed_df
        self.means_init = means_init
        self.random_state = random_state
        self.algorithm = algorithm

    def _check_params(self):
        check_int("n_components", self.n_components, minimum=1)
        check_float("tol", self.tol, minimum=0.0, open_low=True)
        check_float("reg_covar", self.reg_covar, minimum=0.0)
        check_int("max_iter", self.max_iter, minimum=1)
        check_float("df", self.df, minimum=0.0, open_low=True)
        if not isinstance(self.fixed_df, (bool, np.bool_)):
            raise TypeError(f"fixed_df must be True or False, got {self.fixed_df!r}")
        check_choice("algorithm", self.algorithm, ("pruned", "full"))
        try:
            return check_random_state(self.random_state)
        except ValueError:
            raise ValueError(
                f"random_state must be None, an int or a numpy RandomState, "
                f"got {self.random_state!r}"
            ) from None

    def _initial_locations(self, X, rng):
        if self.means_init is None:
            return kmeans_plusplus(X, self.n_components, random_state=rng, n_local_trials=1)[0]
        loc = np.array(self.means_init, dtype=np.float64)
        if loc.shape != (self.n_components, X.shape[1]):
            raise ValueError(
                f"means_init must have shape (n_components, n_features) = "
                f"{(self.n_components, X.shape[1])}, got {loc.shape}"
            )
        return loc

    def fit(self, X, y=None):
        """Fit the mixture to ``X`` of shape (n_samples, n_features) and return ``self``."""
        rng = self._check_params()
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
        n, dim = X.shape
        if self.n_components > n:
            raise ValueError(f"n_components={self.n_components} exceeds the {n} samples of X")
        loc = self._initial_locations(X, rng)
        # every component starts with the data's covariance as its scale, as in the library
        cov = np.atleast_2d(np.cov(X, rowvar=False))
        cov.flat[:: dim + 1] += self.reg_covar
        chol = np.repeat(np.linalg.cholesky(cov)[None], self.n_components, axis=0)
        weights = np.full(self.n_components, 1.0 / self.n_components)
        state = (weights, loc, chol, np.full(self.n_components, float(self.df)))
        # one BLAS thread: the products are per component, at most D columns wide; more threads
        # synchronise on every call, which costs more than they give (and stalls them on a
        # busy machine)
        with threadpool_limits(limits=1, user_api="blas"):
            state, self.n_iter_, self.converged_, self.lower_bound_ = self._em(X, *state)
            weights, loc, chol, df = state
            self.labels_ = _weighted_log_prob(X, weights, loc, chol, df).argmax(axis=1)
        if not self.converged_:
            warnings.warn(
                f"EM did not converge within max_iter={self.max_iter} iterations "
                f"(tol={self.tol}); the last iterate is kept",
                ConvergenceWarning,
                stacklevel=2,
            )
        self.weights_, self.location_, self.scale_cholesky_, self.df_ = weights, loc, chol, df
        self.scale_ = chol @ chol.transpose(0, 2, 1)
        return self

    def _em(self, X, weights, loc, chol, df):
        """EM iterations from the given state: (final state, iterations, converged, bound).

        ``u = (v + D) / (v + d)`` is the expected latent precision of a pair (degrees of freedom
        ``v``, squared distance ``d``); the M-step weighs each pair by ``r u``.
        """
        dim = X.shape[1]
        pruned = _PrunedDistances() if self.algorithm == "pruned" else None
        previous = -np.inf
        for n_iter in range(1, self.max_iter + 1):
            log_norm = _log_norm(weights, chol, df, dim)
            if pruned is None:
                sq_maha = _full_distances(X, loc, chol)
                wlp = _log_density(sq_maha, log_norm[:, None], df[:, None], dim)
            else:
                wlp, sq_maha = pruned(X, loc, chol, log_norm, df)
            resp, log_lik = _responsibilities(wlp)
            bound = log_lik.mean()
            u = (df[:, None] + dim) / (df[:, None] + sq_maha)  # 0 where not computed
            with np.errstate(divide="ignore", invalid="ignore"):
                log_u_sum = np.where(resp > 0, resp * (np.log(u) - u), 0.0).sum(axis=1)
            weights, loc, chol = _m_step(X, resp, resp * u, self.reg_covar)
            if not self.fixed_df:
                df = _solve_df(df, dim, resp.sum(axis=1), log_u_sum, self.max_iter)
            if abs(bound - previous) < self.tol:
                return (weights, loc, chol, df), n_iter, True, bound
            previous = bound
        return (weights, loc, chol, df), self.max_iter, False, bound

    def _fitted_log_prob(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return _weighted_log_prob(X, self.weights_, self.location_, self.scale_cholesky_, self.df_)

    def predict(self, X):
        """Most probable component of each point."""
        return self._fitted_log_prob(X).argmax(axis=1)

    def predict_proba(self, X):
        """Posterior probability of each component for each point, shape (n_samples, K)."""
        wlp = self._fitted_log_prob(X)
        return np.exp(wlp - logsumexp(wlp, axis=1, keepdims=True))

    def score_samples(self, X):
        """Log-likelihood of each point under the fitted mixture."""
        return logsumexp(self._fitted_log_prob(X), axis=1)

    def score(self, X, y=None):
        """Mean log-likelihood per point."""
        return float(self.score_samples(X).mean())
