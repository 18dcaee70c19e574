"""Mixture of multivariate Student-t distributions fitted by EM, vectorised over components.

Same model and the same EM iteration as ``studenttmixture.EMStudentMixture`` (J. Parkinson's
package, a rewrite of the ``mix_T`` code the MNIST-Nd authors used), with
``fixed_df=False``: full scale matrices, per-component degrees of freedom re-estimated in every
M-step by Newton–Halley on the usual fixed-point equation (Peel & McLachlan 2000), ``reg_covar``
added to every scale diagonal, and stopping when the mean log-likelihood changes by less than
``tol``. The code here is our own; it runs the same iterations, each one faster, because it

* computes only the (point, component) pairs that can matter. A pair whose log density is
  more than 20 nats below its point's best component has a responsibility below 2.1e-9; it
  gets 0, which moves a point's log-likelihood by less than 5e-8 (K - 1 <= 25 such pairs)
  and, measured, the parameters by ~1e-8 relative and the mean log-likelihood by < 1e-13.
  Most such pairs are never computed: a lower bound on each pair's Mahalanobis distance is
  carried from iteration to iteration (the Elkan/Hamerly idea for k-means, here with the
  smallest singular value of ``L_new^{-1} L_old`` and the whitened shift of the location), and
  a pair is recomputed as soon as the bound no longer proves it negligible. Those candidates
  are screened with float32 products (about 2x cheaper here) under a rigorous rounding bound,
  and only the ones within 20 nats are computed again in float64, as are last iteration's
  pairs within 20 nats (every point's likely best);
* computes the distances block by block: the rows ``x - m`` of a component's pairs are
  gathered (256 at a time, in cache) and whitened in place by one triangular product with
  ``L^{-1}`` (BLAS ``?trmm``, half the flops of a general product), called from compiled
  code. The M-step gathers each component's kept rows again, scaled by ``sqrt(r u)``, for
  one symmetric rank-k update (no buffer of every pair's whitened row: see :meth:`_m_step`);
* renumbers the points by their most probable component at iterations 2, 4, 8, ..., so
  that a component's gathers read mostly consecutive rows (a quarter faster, measured);
* reuses its working arrays from one iteration to the next (a fresh megabyte-sized array costs
  as much in page faults as the product that fills it);
* runs its loops over rows and pairs compiled (numba, :mod:`mnistnd._tmm_kernels`): the
  E-step's bookkeeping (bounds, candidates, responsibilities, the M-step's sums) is one pass
  over the pairs instead of a dozen numpy passes with temporaries, and the candidate screen
  uses a vectorised lower bound on the logarithm (from the float's exponent bits) so that
  only the survivors pay for an exact ``log``;
* solves the K degrees-of-freedom equations in compiled code (Halley steps with scipy's own
  digamma) instead of calling :func:`scipy.optimize.newton` once per component.

The model is translation invariant, so centring the data changes nothing but rounding.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln, logsumexp
from threadpoolctl import threadpool_limits

from mnistnd import _tmm_kernels as _kernels
from mnistnd._checks import check_choice, check_float, check_int, check_matrix

__all__ = ["StudentTMixture", "kmeans_plusplus"]

# Pairs (point, component) more than this many nats below their point's best component get
# responsibility 0 (< 2.1e-9 in exact arithmetic). Measured on MNIST-Nd at d = 64: 20 nats
# gives the library's log-likelihood to 1e-13 and is 15 % faster than 30 (which gave ~1e-12
# and kept the parameters to 1e-11 instead of 1e-8); 40 would be bit-identical.
_MARGIN = 20.0
# Pairs within this many nats of their point's best component are computed in float64; with
# _HEAVY < _MARGIN the pairs in between would enter the fit from their float32 products.
_HEAVY = 20.0
# When more than this share of the pairs was kept in the last iteration, the next one
# computes every pair (all rows in order, no candidate lists, no bound checks).
_DENSE = 0.6
# Below this dimension a row's product costs little next to its bookkeeping: candidates are
# computed in float64 straight away, without float32 screening.
_TIER_MIN_DIM = 24
# A component with more than this share of the points to compute reads all rows in order
# instead of by index (its pairs at the heavy precision, if any, keep their values).
_ALL_ROWS = 0.7
# A component whose cheap bound on the smallest singular value of L_new^{-1} L_old is below
# this gets the exact value (an eigenvalue problem) instead.
_EXACT_SHRINK = 0.9


def kmeans_plusplus(X: np.ndarray, n_clusters: int, seed: int) -> np.ndarray:
    """Choose initial centres by k-means++ seeding (Arthur & Vassilvitskii 2007).

    The first centre is a uniformly random point; each next one is drawn with probability
    proportional to the squared distance to the nearest centre chosen so far.

    Parameters
    ----------
    X : numpy.ndarray of shape (n_samples, n_features)
        Data.
    n_clusters : int
        Number of centres.
    seed : int
        Seed of :func:`numpy.random.default_rng`.

    Returns
    -------
    numpy.ndarray of shape (n_clusters, n_features)
        The chosen points (copies of rows of ``X``).
    """
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    idx = [int(rng.integers(n))]
    d2 = np.sum((X - X[idx[0]]) ** 2, axis=1)
    for _ in range(1, n_clusters):
        total = d2.sum()
        # all remaining points coincide with a centre: fall back to a uniform draw
        nxt = int(rng.choice(n, p=d2 / total)) if total > 0 else int(rng.integers(n))
        idx.append(nxt)
        d2 = np.minimum(d2, np.sum((X - X[nxt]) ** 2, axis=1))
    return X[idx].copy()


class _Workspace:
    """Arrays reused from one EM iteration to the next.

    A fresh array of a megabyte costs about as much in page faults as the matrix product
    that fills it, so each iteration writes into the buffers of the previous one. The row
    buffers have room for every (point, component) pair, so they never grow (a grown buffer
    copies its rows); the pages of an ``np.empty`` array cost nothing until written.
    """

    def __init__(self):
        self._arrays = {}

    def dense(self, key, shape, dtype):
        """Return an uninitialised array of ``shape``, the same one on every call with ``key``."""
        a = self._arrays.get(key)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = self._arrays[key] = np.empty(shape, dtype)
        return a


class StudentTMixture:
    """Finite mixture of multivariate Student-t distributions fitted by EM.

    Scikit-learn style: ``__init__`` stores the settings, :meth:`fit` returns ``self``.

    Parameters
    ----------
    n_components : int
        Number of mixture components (at least 1).
    tol : float
        Stop when the mean log-likelihood per point changes by less than ``tol`` between two
        iterations (``studenttmixture``'s rule and default).
    reg_covar : float
        Added to the diagonal of every scale matrix after each update.
    max_iter : int
        Maximum number of EM iterations.
    df : float
        Starting degrees of freedom of every component.
    fixed_df : bool
        Keep the degrees of freedom at ``df`` (``False``: re-estimate them in every M-step).
    means_init : array-like of shape (n_components, n_features), optional
        Initial locations; default: :func:`kmeans_plusplus` with ``random_state``.
    random_state : int
        Seed of the k-means++ initialisation.
    precision : {"double", "single"}
        ``"double"``: as above (float32 only screens, every pair that enters the fit is
        computed in float64); reproduces ``studenttmixture`` to ~1e-12 in the mean
        log-likelihood. ``"single"``: every distance in float32 (the M-step's sums stay
        float64); 0.9-1.3x as fast as ``"double"`` in the last two benchmarks (six seeds
        each; 1.1-1.6x in earlier ones, when the double path was slower), and in the 30
        10,000 x 64 MNIST-Nd fits benchmarked so far its labels agreed with the
        library's to ARI 1.0000 (log-likelihood within 1.7e-7), but its ~1e-6 relative error
        in every distance can steer EM to another optimum (an earlier float32 mode once
        stopped 0.03 lower, ARI 0.96). Use it for exploration, not for reference numbers.

    Attributes
    ----------
    location_ : numpy.ndarray of shape (n_components, n_features)
    scale_ : numpy.ndarray of shape (n_components, n_features, n_features)
    scale_cholesky_ : numpy.ndarray, same shape as ``scale_`` (lower triangular)
    df_ : numpy.ndarray of shape (n_components,)
    weights_ : numpy.ndarray of shape (n_components,)
    n_iter_ : int
        EM iterations run.
    converged_ : bool
    lower_bound_ : float
        Mean log-likelihood at the last E-step (the quantity whose change is tested).

    Notes
    -----
    The E-step computes, for each point ``x`` and component ``k`` with location ``m_k``,
    Cholesky factor ``L_k`` of the scale and ``df`` ``v_k``, the squared Mahalanobis distance
    ``d = |L_k^{-1}(x - m_k)|^2``, the log density of the multivariate t, the responsibilities
    ``r`` and the expected latent precision ``u = (v_k + D) / (v_k + d)``. The M-step sets the
    weights to the mean responsibility, the location and scale to the ``r * u``-weighted mean
    and scatter (divided by the sum of ``r * u``), and ``v_k`` to the root of
    ``1 + mean_r(log u - u) + digamma((v + D)/2) - log((v + D)/2) - digamma(v'/2) + log(v'/2)``
    where ``v`` is the previous value and ``mean_r`` the responsibility-weighted average.
    """

    def __init__(
        self,
        n_components: int = 2,
        *,
        tol: float = 1e-5,
        reg_covar: float = 1e-6,
        max_iter: int = 1000,
        df: float = 4.0,
        fixed_df: bool = False,
        means_init=None,
        random_state: int = 0,
        precision: str = "double",
    ):
        self.n_components = n_components
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.df = df
        self.fixed_df = fixed_df
        self.means_init = means_init
        self.random_state = random_state
        self.precision = precision

    # per-fit working arrays (see _prepare, _set_whitening, _e_step): dropped after fit
    _WORKING = ("_X", "_xnorm", "_loc_norm", "_ws", "_lower", "_primary", "_passes",
                "_rows_used", "_row_weight", "_block_start", "_block_rows", "_inv", "_inv32",
                "_inv_norm", "_loc", "_const", "_half", "_inv_df", "_g32", "_iteration",
                "_record_buffers", "_kept_fraction")  # fmt: skip
    # the record of each whitened row (see mnistnd._tmm_kernels), in whiten_rows' order
    _RECORDS = (("point", np.int64), ("comp", np.int64), ("lp", np.float64),
                ("maha", np.float64))  # fmt: skip

    # ------------------------------------------------------------------ pieces of the EM step
    @staticmethod
    def _whitening(chol):
        """Inverse Cholesky factors ``L_k^{-1}`` (K, D, D), by LAPACK's triangular inverse."""
        inv, inv32 = np.empty(chol.shape), np.empty(chol.shape, np.float32)
        _kernels.triangular_inverses(np.ascontiguousarray(chol), inv, inv32)
        return inv

    def _sq_mahalanobis(self, X, loc, chol):
        """All squared Mahalanobis distances (n, K) in float64 with a single matrix product."""
        n_comp, dim = loc.shape
        inv = self._whitening(chol)
        # y[n, k, :] = L_k^{-1} x_n - L_k^{-1} m_k
        W = inv.transpose(2, 0, 1).reshape(dim, n_comp * dim)  # columns: rows of each L_k^{-1}
        Y = (X @ W).reshape(X.shape[0], n_comp, dim)
        Y -= np.einsum("kij,kj->ki", inv, loc)[None]
        return np.einsum("nkd,nkd->nk", Y, Y)

    def _log_density(self, maha, chol, df, dim):
        """Log density of each point under each component (n, K), without the weights."""
        const = self._log_const(chol, df, dim)
        return const[None] - 0.5 * (df + dim)[None] * np.log1p(maha / df[None])

    @staticmethod
    def _log_const(chol, df, dim):
        logdet_half = np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
        const = gammaln(0.5 * (df + dim)) - gammaln(0.5 * df) - 0.5 * dim * np.log(df * np.pi)
        return const - logdet_half

    def _whiten(self, sel, n_sel, every, single, role, skip_primary=False):
        """Compute the pairs of each component ``k`` with the points ``sel[k, :n_sel[k]]``.

        All points where ``every[k]``. One triangular product per block of gathered rows
        ``x - m_k`` with ``L_k^{-1}`` (float32 when ``single``), by one call of
        :func:`mnistnd._tmm_kernels.whiten_pass`, which appends each row's record to those
        of ``role`` (``"primary"``: the heavy precision, float64 unless
        ``precision="single"``; ``"light"``: float32): point, component, log density,
        squared distance; and sets a lower bound on each pair's exact distance (for float32
        allowing ``|z_exact - z| <= g |L^{-1}|_F (|x| + |m|)``, ``g = (D + 3) 2^-24``). With
        ``skip_primary``, pairs computed at the heavy precision keep their values.
        """
        n_comp, dim = self._loc.shape
        dtype = np.float32 if single else np.float64
        rec = self._records(role, None)
        out = self._ws.dense(("block", single), (_kernels.BLOCK, dim), dtype)
        start, block_start, block_rows = self._rows_used[role], self._block_start, self._block_rows
        self._rows_used[role] = _kernels.whiten_pass(
            self._X, sel, n_sel, every, self._inv32 if single else self._inv, self._loc, out,
            start, *rec, self._lower, self._primary, role == "primary", skip_primary,
            self._const, self._half, self._inv_df, self._g32 if single else 0.0,
            self._inv_norm, self._xnorm, self._loc_norm, block_start, block_rows,
        )  # fmt: skip
        self._passes[role].append((block_start.copy(), block_rows.copy()))

    def _prepare(self, Xc, n_comp):
        """Working copies of the centred data and the E-step's arrays (removed after ``fit``)."""
        n, dim = Xc.shape
        self._X = np.ascontiguousarray(Xc)
        self._xnorm = np.linalg.norm(self._X, axis=1)
        self._g32 = (dim + 3) * 2.0**-24 * 1.01  # float32 dot-product error factor
        self._ws = _Workspace()
        self._lower = np.empty((n_comp, n))  # carried bounds on each pair's distance
        self._primary = np.empty((n_comp, n), bool)  # pair computed at the heavy precision
        self._block_start = np.empty(n_comp, np.int64)  # rows of each component in a pass
        self._block_rows = np.empty(n_comp, np.int64)
        self._record_buffers = {
            role: {name: np.empty(n * n_comp, t) for name, t in self._RECORDS}
            for role in ("primary", "light")
        }

    def _set_whitening(self, loc, chol, weights, df):
        """Set the whitening matrices and log-density terms of every component.

        Resets the E-step's rows (nothing computed) and returns the inverse Cholesky
        factors (K, D, D).
        """
        inv = self._ws.dense("inv", chol.shape, np.float64)
        self._inv32 = self._ws.dense("inv32", chol.shape, np.float32)
        self._inv_norm = _kernels.triangular_inverses(np.ascontiguousarray(chol), inv, self._inv32)
        self._inv, self._loc = inv, np.ascontiguousarray(loc)
        self._loc_norm = np.linalg.norm(loc, axis=1)
        dim = loc.shape[1]
        self._const = self._log_const(chol, df, dim) + np.log(np.clip(weights, 1e-12, None))
        self._half = 0.5 * (df + dim)
        self._inv_df = 1.0 / df
        self._primary.fill(False)
        self._rows_used = {"primary": 0, "light": 0}
        self._passes = {"primary": [], "light": []}  # per pass: each component's rows
        return inv

    def _records(self, role, names):
        """Return the records ``names`` of the rows written so far for ``role``.

        ``names=None``: all records, whole buffers (room for every pair, so they never grow;
        the pages of an ``np.empty`` array cost nothing until written).
        """
        rec = self._record_buffers[role]
        if names is None:
            return list(rec.values())
        return [rec[name][: self._rows_used[role]] for name in names]

    def _best_per_point(self, roles, top):
        """``top[i]``: the best log density of point ``i`` over the live rows of ``roles``."""
        for role in roles:
            point, comp, lp = self._records(role, ("point", "comp", "lp"))
            live = _kernels.live_rows(point, comp, self._primary, role == "primary")
            _kernels.best_per_point(point, lp, live, top)

    @staticmethod
    def _shrink(inv, chol_old):
        """Lower bounds on the smallest singular value of ``A = L_new^{-1} L_old`` per component.

        ``s_min(A)^2 = 1 + lambda_min(D)`` with ``D = A^T A - I`` symmetric, and
        ``|lambda(D)| <= |D^4|_F^(1/4)`` (the eighth powers of the eigenvalues sum to
        ``|D^4|_F^2``): four small products (:func:`mnistnd._tmm_kernels.shrink_spread`,
        triangular and symmetric ones) give a bound within ~20 % of ``|D|_2`` in
        ``1 - s_min^2``. Where that bound is below ``_EXACT_SHRINK``, the exact value: the
        smallest eigenvalue of ``A^T A``, less its rounding.
        """
        dim = inv.shape[1]
        gram, change = np.empty(inv.shape), np.empty(inv.shape)
        norm4 = _kernels.shrink_spread(
            inv, np.ascontiguousarray(chol_old), gram, change, np.empty((dim, dim)),
            np.empty((dim, dim)),
        )  # fmt: skip
        spread = norm4**0.25 * (1.0 + 1e-9) + 1e-12
        shrink = np.sqrt(np.maximum(1.0 - spread, 0.0))
        loose = np.flatnonzero(shrink < _EXACT_SHRINK)
        if loose.size:
            g = gram[loose]
            low = np.linalg.eigvalsh(g)[:, 0] - 1e-12 * np.linalg.norm(g, axis=(1, 2))
            shrink[loose] = np.sqrt(np.maximum(low, 0.0))
        return shrink

    def _e_step(self, loc, chol, weights, df, cache):
        """Responsibilities, expected precisions and the mean log-likelihood.

        Every (point, component) pair is one of:

        * **negligible**: its weighted log density is more than ``_MARGIN`` nats below its
          point's best component, so its responsibility is below ``exp(-_MARGIN)``
          (2.1e-9); it gets responsibility 0 (``studenttmixture`` gives it that tiny
          value). Most of these are never computed: a lower bound on each pair's
          Mahalanobis distance is carried from the previous iteration, as in Elkan/Hamerly
          k-means: with new factor ``L'``, location ``m'`` and old ``L``, ``m``,
          ``|L'^{-1}(x - m')| >= s |L^{-1}(x - m)| - |L'^{-1}(m - m')|`` where ``s`` bounds
          the smallest singular value of ``L'^{-1} L`` from below (:meth:`_shrink`);
        * **light** (only when ``_HEAVY < _MARGIN``): in between, computed with float32
          products;
        * **heavy**: within ``_HEAVY`` nats of the best: computed in float64.

        Last iteration's heavy pairs are computed first, in float64 (they give every point's
        best component); then the pairs the bounds cannot rule out, in float32 (a float32
        distance carries its rounding in its lower bound, so it can prove a pair negligible);
        any of those that turn out heavy are recomputed in float64. The loops over pairs are
        compiled (:mod:`mnistnd._tmm_kernels`). Returns the per-component sums of ``r``, ``r u`` and
        ``r (log u - u)`` (responsibility ``r``, expected precision ``u``), the mean
        log-likelihood and what the next E-step needs; each computed pair's weight ``r u``
        is left with its record for :meth:`_m_step`.
        """
        n, dim = self._X.shape
        n_comp = loc.shape[0]
        single = self.precision == "single"
        tiered = not single and dim >= _TIER_MIN_DIM
        self._iteration += 1
        if cache is not None and self._iteration & (self._iteration - 1) == 0:
            self._reorder(*cache[2:])  # iterations 2, 4, 8, ...: points sorted by component
        inv = self._set_whitening(loc, chol, weights, df)
        cand = self._ws.dense("cand", (n_comp, n), np.int64)
        n_cand = np.zeros(n_comp, np.int64)
        if cache is None or self._kept_fraction > _DENSE:
            # first iteration, or most pairs mattered last time: compute every pair at the heavy
            # precision, no bounds (screening in float32 would promote most pairs anyway)
            self._whiten(cand, n_cand, np.ones(n_comp, bool), single, "primary")
        else:
            chol_old, loc_old, heavy, n_heavy, _ = cache
            shrink = self._shrink(inv, chol_old)
            shift = np.linalg.norm(np.einsum("kij,kj->ki", inv, loc_old - loc), axis=1)
            # last iteration's heavy pairs: still the likely best
            self._whiten(heavy, n_heavy, n_heavy > _ALL_ROWS * n, single, "primary")
            best = np.full(n, -np.inf)  # each point's best pair so far: the heavy rows
            self._best_per_point(("primary",), best)
            _kernels.candidates(
                self._lower, shrink, shift, best, self._primary, self._const, self._half,
                self._inv_df, _MARGIN, cand, n_cand,
            )  # fmt: skip
            every = n_cand > _ALL_ROWS * n
            if not tiered:  # candidates straight to the heavy precision
                every &= ~self._primary.any(axis=1)
                self._whiten(cand, n_cand, every, single, "primary")
            else:  # (candidates are never primary pairs: skipping those only matters for every)
                self._whiten(cand, n_cand, every, True, "light", skip_primary=True)
        if tiered:  # float32 values that turn out heavy: recompute in float64
            top = np.full(n, -np.inf)
            self._best_per_point(("primary", "light"), top)
            _kernels.promotions(
                *self._records("light", ("point", "comp", "lp")), self._primary, top, _HEAVY,
                cand, n_cand,
            )  # fmt: skip
            self._whiten(cand, n_cand, np.zeros(n_comp, bool), False, "primary")
        self._row_weight = {role: np.empty(rows) for role, rows in self._rows_used.items()}
        heavy = self._ws.dense("heavy", (n_comp, n), np.int64)
        n_heavy = np.zeros(n_comp, np.int64)
        best_comp = self._ws.dense("best_comp", (n,), np.int64)
        sums = np.empty((3, n_comp))
        names = ("point", "comp", "lp", "maha")
        bound, kept, computed = _kernels.responsibilities(
            *self._records("primary", names), *self._records("light", names), self._primary,
            df, float(dim), _MARGIN, _HEAVY, self._row_weight["primary"],
            self._row_weight["light"], heavy, n_heavy, sums, best_comp,
        )  # fmt: skip
        self._kept_fraction = kept / (n_comp * n)
        self._exact_fraction.append(computed / (n_comp * n))
        # (every pair at the heavy precision has one primary row: none is superseded)
        self._double_fraction.append(0.0 if single else self._rows_used["primary"] / (n_comp * n))
        return sums, bound, (chol, loc, heavy, n_heavy, best_comp)

    def _reorder(self, heavy, n_heavy, best_comp):
        """Renumber the points by their most probable component (stable), in place.

        A component's pairs then mostly read consecutive rows of the data instead of rows
        all over it (measured, a whitening pass over 1,330 rows per component at D = 64:
        0.31-0.33 us per row on consecutive rows, 0.41 on scattered ones). Reorders the data
        and every per-point array carried to the next iteration (distance bounds, the lists
        of heavy pairs); the fit is the same up to the order of its sums.
        """
        order = np.argsort(best_comp, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        self._X, self._lower = self._X[order], self._lower[:, order]
        self._xnorm = self._xnorm[order]
        for k in range(heavy.shape[0]):
            heavy[k, : n_heavy[k]] = np.sort(rank[heavy[k, : n_heavy[k]]])

    def _m_step(self, sums, loc_old):
        """Weights, locations, scales and their Cholesky factors from the E-step's weights.

        Only the kept pairs take part (negligible pairs have weight 0): for each component,
        the rows ``y = x - m`` of its kept points (``m`` the old location) are gathered,
        scaled by ``sqrt(w)`` (``w = r u``), into one buffer reused for every component, and
        one symmetric rank-k update gives ``S = sum w y y^T``; with ``W = sum w`` and
        ``s = sum w y``, the new location is ``m + s / W`` and the new scale
        ``(S - s s^T / W) / W``, the weighted scatter ``sum w (x - m')(x - m')^T / W`` of the
        library. (Keeping the E-step's whitened rows for this instead, as an earlier version
        did, needs a buffer for every pair: ~50 MB at 10,000 x 64 x 10, whose page faults
        made the first iteration 341 ms instead of 71; per later iteration the two were
        within the machine's noise.)
        """
        n_comp, dim = loc_old.shape
        n = self._X.shape[0]
        weights = sums[0] / n
        ru_sum = sums[1] + 10 * np.finfo(np.float64).eps
        Y = self._ws.dense("weighted", (n, dim), np.float64)
        points = {role: self._records(role, ("point",))[0] for role in self._row_weight}
        scale = np.empty((n_comp, dim, dim))
        s1 = np.zeros((n_comp, dim))
        # (start, rows) of each component's records, per role with kept pairs: (K, passes, 2)
        blocks = {
            role: np.array(self._passes[role]).transpose(2, 0, 1)  # from (passes, 2, K)
            for role, w in self._row_weight.items() if w.any()
        }  # fmt: skip
        for k in range(n_comp):  # a point has at most one kept row per component: <= n rows
            count = 0
            for role, comp_blocks in blocks.items():
                count = _kernels.weighted_rows(
                    self._X, points[role], self._row_weight[role], comp_blocks[k], loc_old[k], Y,
                    count, s1[k],
                )  # fmt: skip
            scale[k] = Y[:count].T @ Y[:count]  # numpy uses a symmetric rank-k update here
        loc, chol = np.empty_like(loc_old), np.empty_like(scale)
        _kernels.scale_factors(scale, s1, ru_sum, self.reg_covar, loc_old, loc, chol)
        return weights, loc, scale, chol

    def _update_df(self, sums, df, dim):
        return _kernels.degrees_of_freedom(sums, df, float(dim), 1e-3, self.max_iter)

    # ------------------------------------------------------------------ EM loops
    def _em_step(self, state, cache):
        """One EM iteration: mean log-likelihood at ``state``, the updated state, the bounds."""
        weights, loc, chol, df = state
        sums, bound, cache = self._e_step(loc, chol, weights, df, cache)
        weights, loc, _, chol = self._m_step(sums, state[1])
        if not self.fixed_df:
            df = self._update_df(sums, df, loc.shape[1])
        return bound, (weights, loc, chol, df), cache

    def _plain_em(self, state):
        """EM exactly as ``studenttmixture``: stop when the E-step bound changes < tol."""
        lower, bound, cache = -np.inf, -np.inf, None
        # per iteration: share of (point, component) pairs computed, and computed in float64
        self._exact_fraction, self._double_fraction = [], []
        self._iteration = 0
        for n_iter in range(1, self.max_iter + 1):
            bound, state, cache = self._em_step(state, cache)
            if abs(bound - lower) < self.tol:
                return n_iter, True, bound, state
            lower = bound
        return self.max_iter, False, bound, state

    # ------------------------------------------------------------------ public API
    def fit(self, X, y=None):
        """Fit the mixture to ``X`` (shape ``(n_samples, n_features)``) and return ``self``.

        The EM runs with one BLAS thread whatever the caller's setting (restored afterwards):
        its products are blocks of at most 256 rows, too small for threads to pay.
        """
        n_comp = check_int("n_components", self.n_components, minimum=1)
        X = check_matrix("X", X, min_samples=max(2, n_comp))
        check_float("tol", self.tol, minimum=0.0, open_low=True)
        check_float("reg_covar", self.reg_covar, minimum=0.0)
        check_int("max_iter", self.max_iter, minimum=1)
        check_float("df", self.df, minimum=0.0, open_low=True)
        check_choice("precision", self.precision, ("double", "single"))
        n, dim = X.shape
        self._center = X.mean(axis=0)
        Xc = X - self._center
        if self.means_init is None:
            loc = kmeans_plusplus(Xc, n_comp, check_int("random_state", self.random_state))
        else:
            loc = np.asarray(self.means_init, dtype=np.float64) - self._center
            if loc.shape != (n_comp, dim):
                raise ValueError(f"means_init must have shape {(n_comp, dim)}, got {loc.shape}")
        cov = np.atleast_2d(np.cov(Xc, rowvar=False))
        cov[np.arange(dim), np.arange(dim)] += self.reg_covar
        chol = np.repeat(np.linalg.cholesky(cov)[None], n_comp, axis=0)
        state = (np.full(n_comp, 1.0 / n_comp), loc, chol, np.full(n_comp, float(self.df)))
        self._prepare(Xc, n_comp)
        try:
            # one BLAS thread: the products are blocks of <= 256 rows, on which threads cost
            # more than they give (10,000 x 64 on 2 cores, measured with the general products
            # of an earlier version: 14.5 s with 2 threads, 3.6-3.9 s with 1)
            with threadpool_limits(limits=1, user_api="blas"):
                n_iter, converged, bound, state = self._plain_em(state)
        finally:
            for name in self._WORKING:
                self.__dict__.pop(name, None)  # working arrays: not part of the fitted model
        weights, loc, chol, df = state
        scale = chol @ chol.transpose(0, 2, 1)
        self.n_iter_, self.converged_, self.lower_bound_ = n_iter, converged, bound
        self.weights_, self.df_ = weights, df
        self.location_ = loc + self._center
        self.scale_, self.scale_cholesky_ = scale, chol
        self._loc_c = loc
        return self

    def _weighted_log_prob(self, X):
        if not hasattr(self, "df_"):
            raise RuntimeError("this StudentTMixture is not fitted yet; call fit first")
        X = check_matrix("X", X)
        if X.shape[1] != self.location_.shape[1]:
            raise ValueError(
                f"X has {X.shape[1]} features but the mixture was fitted on "
                f"{self.location_.shape[1]}"
            )
        Xc = X - self._center
        maha = self._sq_mahalanobis(Xc, self._loc_c, self.scale_cholesky_)
        logp = self._log_density(maha, self.scale_cholesky_, self.df_, X.shape[1])
        with np.errstate(divide="ignore"):
            return logp + np.log(self.weights_)[None]

    def predict(self, X) -> np.ndarray:
        """Most probable component of each point."""
        return np.argmax(self._weighted_log_prob(X), axis=1)

    def predict_proba(self, X) -> np.ndarray:
        """Posterior probability of each component for each point, shape (n, K)."""
        logp = self._weighted_log_prob(X)
        return np.exp(logp - logsumexp(logp, axis=1, keepdims=True))

    def score_samples(self, X) -> np.ndarray:
        """Log-likelihood of each point under the fitted mixture."""
        return logsumexp(self._weighted_log_prob(X), axis=1)

    def score(self, X, y=None) -> float:
        """Mean log-likelihood per point."""
        return float(self.score_samples(X).mean())

    def fit_predict(self, X, y=None) -> np.ndarray:
        """Fit and return the most probable component of each training point."""
        return self.fit(X).predict(X)
