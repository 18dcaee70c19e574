"""Compiled loops of the Student-t mixture EM (:mod:`mnistnd._tmm`).

Each function makes one pass over data that numpy would need several passes (and temporary
arrays) for: gathering rows, the matrix product and the row norms happen on one block of rows
while it is in cache; the per-pair bookkeeping of the E-step (bounds, candidates,
responsibilities, the M-step's and degrees-of-freedom sums) is one loop over the pairs. The
small per-iteration algebra (the shrink factors' products, the scales and their Cholesky
factors, the degrees-of-freedom equations) is compiled too, with triangular and symmetric
products where numpy's batched ``@`` computes full ones: measured in 10,000 x 64 fits, 2.2 ms
per iteration as numpy calls, 1.5 ms compiled (0.4 of it the exact eigenvalues that the
shrink factor needs in early iterations, still numpy's).
The matrix products stay with BLAS: the triangular products and inverses are scipy's BLAS and
LAPACK (:mod:`scipy.linalg.cython_blas`, ``cython_lapack``: the libraries numba's ``np.dot``
calls too), and the digamma function is scipy's own C function
(:mod:`scipy.special.cython_special`, bit for bit what :func:`scipy.special.digamma` returns),
all reached by symbol name so that numba can cache the functions that call them (a
ctypes pointer would make them uncachable: recompiled in every process). The M-step's
rank-k updates are numpy's, called from Python on a gathered buffer (numpy's OpenBLAS
``dsyrk`` ran ~15 % faster here on these shapes than scipy's called per 256-row block from
compiled code; measured in the fit, the M-step took 3-4 % less time this way).

Each computed (point, component) pair has a record: ``point`` (-1: superseded), ``comp``,
``lp`` (log density plus log weight) and ``maha`` (squared distance). The (K, n) arrays are
the carried distance bounds ``lower`` and the flags ``primary`` (pair computed at the heavy
precision this iteration).
"""

from __future__ import annotations

import math
import sys

import llvmlite.binding as llvm
import numba as nb
import numpy as np
from numba import types
from numba.extending import get_cython_function_address

# Rows per block: the gathered rows, whitened in place (256 x 64 doubles), stay in L2.
BLOCK = 256


def _external(module, name, signature):
    """Return the C function ``name`` of scipy's Cython module ``module`` for numba.

    Registered by symbol name (not as a ctypes pointer), so that the callers stay cachable.
    """
    symbol = f"mnistnd_{name}"
    llvm.add_symbol(symbol, get_cython_function_address(module, name))
    return types.ExternalFunction(symbol, signature)


def _fortran(module, name, n_args):
    """Return scipy's Fortran routine ``module.name`` (all arguments pointers) for numba."""
    return _external(f"scipy.linalg.cython_{module}", name, types.void(*([types.voidptr] * n_args)))


_dtrmm = _fortran("blas", "dtrmm", 11)
_strmm = _fortran("blas", "strmm", 11)
_dsyrk = _fortran("blas", "dsyrk", 10)
_dtrtri = _fortran("lapack", "dtrtri", 6)
# scipy.special.digamma's own C function (float64 version; its second argument is unused)
_digamma = _external(
    "scipy.special.cython_special", "__pyx_fuse_1psi", types.double(types.double, types.intc)
)
# Fortran character arguments
_L, _N, _T, _U = (np.array([ord(c)], np.uint8) for c in "LNTU")  # fmt: skip


@nb.njit(cache=True, nogil=True)
def _whiten_in_place(inv, Y, rows):
    """``Y[r] = inv @ Y[r]`` for the first ``rows`` rows (``inv`` lower triangular, C order).

    In Fortran order ``Y[:rows]`` is the (D, rows) matrix ``B`` and ``inv`` the upper
    triangular ``inv^T``: ``B := op(A) B`` with ``op`` the transpose (``?trmm``, D^2 flops
    per row, half of a general product's). ``inv`` and ``Y`` are both float64 or both
    float32.
    """
    size = np.array([Y.shape[1], rows], np.int32)
    one = np.ones(1, Y.dtype)
    args = (_L.ctypes, _U.ctypes, _T.ctypes, _N.ctypes, size[0:].ctypes, size[1:].ctypes)
    if Y.itemsize == 4:  # float32
        _strmm(*args, one.ctypes, inv.ctypes, size[0:].ctypes, Y.ctypes, size[0:].ctypes)
    else:
        _dtrmm(*args, one.ctypes, inv.ctypes, size[0:].ctypes, Y.ctypes, size[0:].ctypes)


@nb.njit(cache=True, nogil=True)
def triangular_inverses(chol, inv, inv32):
    """``inv[k] = chol[k]^{-1}`` (lower triangular, C order; LAPACK ``dtrtri``) and a float32 copy.

    In Fortran order ``chol[k]`` is its upper triangular transpose, whose inverse is
    ``inv[k]``'s transpose; the strict upper triangles (zero in ``chol``) stay zero in both
    outputs. Returns the Frobenius norm of every inverse. Raises if a factor is singular.
    """
    n_comp, dim = chol.shape[0], chol.shape[1]
    size = np.array([dim], np.int32)
    info = np.zeros(1, np.int32)
    norms = np.empty(n_comp)
    inv[:] = chol
    for k in range(n_comp):
        _dtrtri(_U.ctypes, _N.ctypes, size.ctypes, inv[k].ctypes, size.ctypes, info.ctypes)
        if info[0] != 0:
            raise ValueError("singular Cholesky factor")
        acc = 0.0
        for i in range(dim):
            for j in range(dim):
                acc += inv[k, i, j] ** 2
                inv32[k, i, j] = inv[k, i, j]
        norms[k] = math.sqrt(acc)
    return norms


@nb.njit(cache=True, nogil=True)
def _symmetric_square(a, out):
    """``out = a^T a`` for a (D, D) C-order ``a`` (BLAS ``dsyrk``), both triangles filled.

    In Fortran order ``a`` is ``a^T``: ``dsyrk`` with ``trans = N`` gives ``a^T a``, whose
    upper triangle in Fortran order is the lower one in C order.
    """
    dim = a.shape[0]
    size = np.array([dim], np.int32)
    one, zero = np.ones(1), np.zeros(1)
    _dsyrk(_U.ctypes, _N.ctypes, size.ctypes, size.ctypes, one.ctypes, a.ctypes, size.ctypes,
           zero.ctypes, out.ctypes, size.ctypes)  # fmt: skip
    for i in range(dim):
        for j in range(i + 1, dim):
            out[i, j] = out[j, i]


@nb.njit(cache=True, nogil=True)
def shrink_spread(inv, chol_old, gram, change, dev, dev2):
    """``|D^4|_F`` with ``D = A^T A - I``, ``A = inv[k] chol_old[k]``, for every component ``k``.

    ``A`` (a product of lower triangular factors, so lower triangular) by one ``dtrmm`` into
    ``change[k]``, ``gram[k] = A^T A`` and the squares ``D^2 = D^T D``, ``D^4 = (D^2)^T D^2``
    by ``dsyrk`` (``D`` is symmetric): the products numpy's batched ``@`` would compute in
    full, in about half the flops. ``dev``, ``dev2`` are (D, D) scratch.
    """
    n_comp, dim = inv.shape[0], inv.shape[1]
    size = np.array([dim], np.int32)
    one = np.ones(1)
    norms = np.empty(n_comp)
    for k in range(n_comp):
        a = change[k]
        a[:] = inv[k]
        # in Fortran order a is inv^T and chol_old[k] is chol_old^T (upper): a := chol_old^T a,
        # i.e. (inv chol_old)^T, so a in C order is A
        _dtrmm(_L.ctypes, _U.ctypes, _N.ctypes, _N.ctypes, size.ctypes, size.ctypes,
               one.ctypes, chol_old[k].ctypes, size.ctypes, a.ctypes, size.ctypes)  # fmt: skip
        _symmetric_square(a, gram[k])
        dev[:] = gram[k]
        for i in range(dim):
            dev[i, i] -= 1.0
        _symmetric_square(dev, dev2)
        _symmetric_square(dev2, dev)
        acc = 0.0
        for i in range(dim):
            for j in range(dim):
                acc += dev[i, j] ** 2
        norms[k] = math.sqrt(acc)
    return norms


# fast-math without "ninf"/"nnan" (a margin may be inf): reassociation lets sums vectorise
_FAST = {"arcp", "contract", "nsz", "reassoc"}
_LN2 = math.log(2.0)
_HIGH_WORD = int(sys.byteorder == "little")  # index of a float64's high 32 bits in a view


@nb.njit(cache=True, nogil=True, fastmath=_FAST)
def _sum_squares(z):
    # in the row's precision, in any order: the float32 bound allows for a float32 sum
    acc = z[0] * z[0]
    for c in range(1, z.shape[0]):
        acc += z[c] * z[c]
    return acc


@nb.njit(cache=True, nogil=True)
def whiten_rows(
    X, idx, all_rows, inv, loc, out, rec_point, rec_comp, rec_lp, rec_maha, k, lower, primary,
    mark_primary, skip_primary, const, half, inv_df, g32, inv_norm, xnorm, loc_norm,
):  # fmt: skip
    """Whitened rows ``z = L^{-1} (x - m)`` of component ``k``, with distances and bounds.

    Rows ``idx`` of ``X`` (all rows when ``all_rows``) are gathered block by block as
    ``x - m`` (computed in float64, stored in ``out``'s precision; ``out`` is scratch of
    ``BLOCK`` rows, in cache) and multiplied in place by the triangular ``inv = L^{-1}``
    (same precision as ``out``). Their records (``rec_*``, one per row, in order) get the
    point, ``k``, the log density plus log weight and ``|z|^2``; ``lower[i]`` (row ``k``
    of the bounds) gets a lower bound on the exact ``|z|``, and ``primary[i]`` is set when
    ``mark_primary``. With ``skip_primary``, pairs already computed at the heavy precision
    keep their record (this row's is marked superseded).

    ``g32 > 0``: float32, and the bound allows ``|z_exact - z| <= g32 |L^{-1}|_F |x - m|``
    (``inv_norm = |L^{-1}|_F``; ``|x - m| <= |x| + |m|``, ``xnorm`` and ``loc_norm``) and a
    float32 sum of squares: with ``u = 2^-24``, rounding ``x - m`` and ``L^{-1}`` to float32
    costs ``u`` each and a triangular dot product of length ``<= D`` at most
    ``D u / (1 - D u)``, each times ``|L^{-1}|_F |x - m|``, so ``g32 = (D + 3) u`` (with 1 %
    to spare) covers them. ``g32 == 0``: float64, the bound
    allows a relative 1e-12.
    """
    n_rows = X.shape[0] if all_rows else idx.shape[0]
    dim = X.shape[1]
    for s in range(0, n_rows, BLOCK):
        e = min(s + BLOCK, n_rows)
        m = e - s
        for j in range(m):
            row = s + j if all_rows else idx[s + j]
            for c in range(dim):
                out[j, c] = X[row, c] - loc[c]
        _whiten_in_place(inv, out, m)
        for j in range(m):
            i = s + j if all_rows else idx[s + j]
            r = s + j
            if skip_primary and primary[i]:
                rec_point[r] = -1
                continue
            d = np.float64(_sum_squares(out[j]))
            root = math.sqrt(d)
            if g32 > 0.0:  # |x - m| <= |x| + |m|
                lo = root * (1.0 - g32) - g32 * inv_norm * (xnorm[i] + loc_norm)
            else:
                lo = root * (1.0 - 1e-12)  # float64 rounding, with a wide safety factor
            lower[i] = max(lo, 0.0)
            rec_point[r] = i
            rec_comp[r] = k
            rec_maha[r] = d
            rec_lp[r] = const - half * math.log(1.0 + d * inv_df)
            if mark_primary:
                primary[i] = True


@nb.njit(cache=True, nogil=True)
def whiten_pass(
    X, sel, n_sel, every, inv, loc, out, start, rec_point, rec_comp, rec_lp, rec_maha, lower,
    primary, mark_primary, skip_primary, const, half, inv_df, g32, inv_norm, xnorm, loc_norm,
    block_start, block_rows,
):  # fmt: skip
    """:func:`whiten_rows` for every component, its records appended from row ``start``.

    Component ``k`` computes the points ``sel[k, :n_sel[k]]``, or all points when
    ``every[k]``; its records are rows ``block_start[k]:block_start[k] + block_rows[k]``.
    The per-component arguments (``inv``, ``loc``, ``lower``, ``primary``, ``const``,
    ``half``, ``inv_df``, ``inv_norm``, ``loc_norm``) are indexed by ``k``. Returns the end of the
    records written.
    """
    n = X.shape[0]
    pos = start
    for k in range(inv.shape[0]):
        rows = n if every[k] else n_sel[k]
        block_start[k], block_rows[k] = pos, rows
        if rows == 0:
            continue
        e = pos + rows
        whiten_rows(
            X, sel[k, : n_sel[k]], every[k], inv[k], loc[k], out, rec_point[pos:e],
            rec_comp[pos:e], rec_lp[pos:e], rec_maha[pos:e], k, lower[k], primary[k],
            mark_primary, skip_primary, const[k], half[k], inv_df[k], g32, inv_norm[k], xnorm,
            loc_norm[k],
        )  # fmt: skip
        pos = e
    return pos


@nb.njit(cache=True, nogil=True)
def live_rows(rec_point, rec_comp, primary, heavy_rows):
    """Flag the rows that stand for their pair.

    A row does unless it was superseded (point -1) or, for light rows (``heavy_rows=False``),
    its pair was recomputed at the heavy precision since (``primary``).
    """
    live = np.empty(rec_point.shape[0], np.bool_)
    for r in range(rec_point.shape[0]):
        i = rec_point[r]
        live[r] = i >= 0 and (heavy_rows or not primary[rec_comp[r], i])
    return live


@nb.njit(cache=True, nogil=True)
def best_per_point(rec_point, rec_lp, live, top):
    """``top[i] = max(top[i], lp)`` over the live rows of one buffer."""
    for r in range(rec_point.shape[0]):
        if live[r]:
            top[rec_point[r]] = max(top[rec_point[r]], rec_lp[r])


@nb.njit(cache=True, nogil=True, fastmath=_FAST)
def _screen(lower, primary, best, const, half, inv_df, shrink, shift, margin, mask, y, y_bits):
    # branch-free, so that the loops vectorise (a log per pair would not: no vector log here)
    for i in range(lower.shape[0]):
        lo = max(lower[i] * shrink - shift, 0.0)
        lower[i] = lower[i] if primary[i] else lo
        y[i] = 1.0 + lo * lo * inv_df
    # log2(y) >= hi 2^-20 - 1023 with hi the high 32 bits of y (exponent and leading mantissa
    # bits: log2(1 + m) >= m on [0, 1), truncation only lowers it; at most 0.087 low), so a
    # pair this rejects is negligible; the exact test on the survivors is in candidates
    for i in range(lower.shape[0]):
        log_y = (np.float64(y_bits[2 * i + _HIGH_WORD]) * 2.0**-20 - 1023.0) * _LN2
        mask[i] = (const - half * log_y >= best[i] - margin) & ~primary[i]


@nb.njit(cache=True, nogil=True)
def candidates(lower, shrink, shift, best, primary, const, half, inv_df, margin, cand, n_cand):
    """Carry the distance bounds to the new parameters and list the pairs still to compute.

    For every pair not computed yet: ``lower = max(shrink * lower - shift, 0)`` (a lower bound
    on the new distance); the pair is a candidate unless its log density at that bound is more
    than ``margin`` nats below ``best`` (its point's best computed pair). Candidates of
    component ``k`` are ``cand[k, :n_cand[k]]`` (ascending).
    """
    n_comp, n = lower.shape
    mask = np.empty(n, np.bool_)
    y = np.empty(n)
    y_bits = y.view(np.uint32)  # the high word of y[i] is y_bits[2 i + _HIGH_WORD]
    for k in range(n_comp):
        c, h, v = const[k], half[k], inv_df[k]
        _screen(lower[k], primary[k], best, c, h, v, shrink[k], shift[k], margin, mask, y, y_bits)
        count = 0
        for i in range(n):
            if mask[i] and c - h * math.log(1.0 + lower[k, i] ** 2 * v) >= best[i] - margin:
                cand[k, count] = i
                count += 1
        n_cand[k] = count


@nb.njit(cache=True, nogil=True)
def promotions(rec_point, rec_comp, rec_lp, primary, top, heavy_gap, cand, n_cand):
    """List the pairs of the light rows within ``heavy_gap`` of their point's ``top``."""
    n_cand[:] = 0
    for r in range(rec_point.shape[0]):
        i = rec_point[r]
        if i < 0:
            continue
        k = rec_comp[r]
        if not primary[k, i] and rec_lp[r] >= top[i] - heavy_gap:
            cand[k, n_cand[k]] = i
            n_cand[k] += 1


@nb.njit(cache=True, nogil=True)
def _accumulate(rec_point, rec_lp, live, top, margin, total):
    for r in range(rec_point.shape[0]):
        if live[r]:
            gap = rec_lp[r] - top[rec_point[r]]
            if gap >= -margin:
                total[rec_point[r]] += math.exp(gap)


@nb.njit(cache=True, nogil=True)
def _weigh(
    rec_point, rec_comp, rec_lp, rec_maha, live, top, total, df, dim, margin, heavy_gap,
    w, heavy, n_heavy, sums, best_comp,
):  # fmt: skip
    kept = 0
    for r in range(rec_point.shape[0]):
        w[r] = 0.0
        if not live[r]:
            continue
        i, k = rec_point[r], rec_comp[r]
        gap = rec_lp[r] - top[i]
        if gap == 0.0:
            best_comp[i] = k
        if gap >= -heavy_gap:
            heavy[k, n_heavy[k]] = i
            n_heavy[k] += 1
        if gap < -margin:
            continue
        kept += 1
        resp = math.exp(gap) / total[i]
        u = (df[k] + dim) / (df[k] + rec_maha[r])
        ru = resp * u
        sums[0, k] += resp
        sums[1, k] += ru
        sums[2, k] += resp * (math.log(u) - u)
        w[r] = ru
    return kept


@nb.njit(cache=True, nogil=True)
def responsibilities(
    p_point, p_comp, p_lp, p_maha, l_point, l_comp, l_lp, l_maha, primary, df, dim, margin,
    heavy_gap, w_primary, w_light, heavy, n_heavy, sums, best_comp,
):  # fmt: skip
    """Responsibilities and expected precisions of the computed pairs, and EM's sums of them.

    ``p_*``: records of the heavy rows, ``l_*``: of the light rows (a light row whose pair
    was recomputed at the heavy precision is skipped). A pair more than ``margin`` nats
    below its point's best gets responsibility 0. Writes each row's M-step weight ``r u``
    (0 for rows not kept) into ``w_primary`` / ``w_light``, the pairs within ``heavy_gap``
    of their best into ``heavy[k, :n_heavy[k]]`` and, per component, ``sums[0] = sum r``,
    ``sums[1] = sum r u``, ``sums[2] = sum r (log u - u)``, and each point's most probable
    component into ``best_comp``. Returns the mean log-likelihood and the numbers of kept
    and of computed pairs.
    """
    n = primary.shape[1]
    sums[:] = 0.0
    n_heavy[:] = 0
    p_live = live_rows(p_point, p_comp, primary, True)
    l_live = live_rows(l_point, l_comp, primary, False)
    top = np.full(n, -np.inf)
    best_per_point(p_point, p_lp, p_live, top)
    best_per_point(l_point, l_lp, l_live, top)
    total = np.zeros(n)
    _accumulate(p_point, p_lp, p_live, top, margin, total)
    _accumulate(l_point, l_lp, l_live, top, margin, total)
    kept = _weigh(p_point, p_comp, p_lp, p_maha, p_live, top, total, df, dim, margin,
                  heavy_gap, w_primary, heavy, n_heavy, sums, best_comp)  # fmt: skip
    kept += _weigh(l_point, l_comp, l_lp, l_maha, l_live, top, total, df, dim, margin,
                   heavy_gap, w_light, heavy, n_heavy, sums, best_comp)  # fmt: skip
    total_ll = 0.0
    for i in range(n):
        total_ll += math.log(total[i]) + top[i]
    return total_ll / n, kept, np.count_nonzero(p_live) + np.count_nonzero(l_live)


@nb.njit(cache=True, nogil=True, fastmath=_FAST)
def weighted_rows(X, rec_point, w, blocks, loc, Y, count, s1):
    """Append ``sqrt(w) (x - loc)`` for the records in ``blocks`` of weight > 0.

    ``blocks`` holds (start, rows) ranges of records of one component. Rows go to ``Y``
    from row ``count`` (returns the new count), so that ``Y^T Y`` is the weighted scatter
    about ``loc``; ``s1 += w (x - loc)`` in float64. ``x`` is the row of ``X`` of the
    record's point.
    """
    dim = loc.shape[0]
    acc = np.zeros(dim)  # a local sum: s1 might alias Y, which would stop the loop vectorising
    for b in range(blocks.shape[0]):
        for r in range(blocks[b, 0], blocks[b, 0] + blocks[b, 1]):
            wr = w[r]
            if wr == 0.0:  # not kept, or superseded
                continue
            x, y = X[rec_point[r]], Y[count]
            root = math.sqrt(wr)
            for c in range(dim):
                v = x[c] - loc[c]
                acc[c] += wr * v
                y[c] = root * v
            count += 1
    s1 += acc
    return count


@nb.njit(cache=True, nogil=True)
def scale_factors(scatter, s1, ru_sum, reg_covar, loc_old, loc, chol):
    """Set the M-step's locations, scales and Cholesky factors from its weighted sums.

    For each component ``k``: ``scatter[k] = sum w y y^T``, ``s1[k] = sum w y`` with
    ``y = x - loc_old[k]``, ``ru_sum[k] = sum w`` (plus ``10 eps``). Sets ``c = s1 / ru_sum``,
    ``loc = loc_old + c``, overwrites ``scatter[k]`` with the scale
    ``(sum w (x - loc)(x - loc)^T) / (ru_sum + 10 eps)`` made exactly symmetric, plus
    ``reg_covar`` on the diagonal, and writes its lower Cholesky factor into ``chol[k]``.
    """
    n_comp, dim = s1.shape
    eps10 = 10 * np.finfo(np.float64).eps
    for k in range(n_comp):
        sk, scale = s1[k], scatter[k]
        c = sk / ru_sum[k]
        loc[k] = loc_old[k] + c
        denom = ru_sum[k] + eps10
        for i in range(dim):
            for j in range(dim):
                scale[i, j] = (scale[i, j] - sk[i] * c[j]) / denom
        for i in range(dim):  # exact symmetry for the factorisation
            for j in range(i):
                scale[i, j] = scale[j, i] = 0.5 * (scale[i, j] + scale[j, i])
            scale[i, i] += reg_covar
        chol[k] = np.linalg.cholesky(scale)


# B_2j / (2j)! for j = 1..7 (Bernoulli numbers), for the Euler-Maclaurin tail of zeta
_BERNOULLI = (1 / 12, -1 / 720, 1 / 30240, -1 / 1209600, 1 / 47900160, -691 / 1307674368000,
              1 / 74724249600)  # fmt: skip


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _hurwitz_zeta(s, a):
    """``zeta(s, a) = sum_{n >= 0} (a + n)^-s`` for ``s > 1`` (what scipy's ``zeta(s, a)`` is).

    The first terms are summed until ``a + n >= 16``, the rest by Euler-Maclaurin:
    ``a^(1-s) / (s - 1) + a^-s / 2 + sum_j B_2j / (2j)! s (s + 1) ... (s + 2j - 2)
    a^(-s-2j+1)``, whose next term is below 1e-17 relative for ``s = 2, 3``. NaN for
    ``a <= 0``, where :func:`degrees_of_freedom` needs no value: a Halley step that took
    ``v`` to zero or below counts as failed, and the component keeps its last positive
    ``v`` (scipy would go on iterating on the negative values).
    """
    if not a > 0.0:
        return np.nan
    total = 0.0
    while a < 16.0:
        total += a**-s
        a += 1.0
    tail = a ** (1.0 - s) / (s - 1.0) + 0.5 * a**-s
    term = s * a ** (-s - 1.0)
    for j in range(len(_BERNOULLI)):
        tail += _BERNOULLI[j] * term
        term *= (s + 2 * j + 1) * (s + 2 * j + 2) / (a * a)
    return total + tail


@nb.njit(cache=True, nogil=True, error_model="numpy")
def degrees_of_freedom(sums, df, dim, tol, max_iter):
    """Return the M-step's degrees of freedom: the root ``v'`` of each component's equation.

    ``c - digamma(v'/2) + log(v'/2) = 0`` with ``c = 1 + sums[2] / sums[0] +
    digamma((v + D)/2) - log((v + D)/2)`` (``v = df``, ``sums`` from
    :func:`responsibilities`), by Halley's method from ``v`` with the step rule and the
    absolute stopping tolerance ``tol`` of :func:`scipy.optimize.newton` given ``fprime2``
    (the derivatives ``polygamma(1, .) = zeta(2, .)`` and ``polygamma(2, .) = -2 zeta(3, .)``).
    A component whose iteration breaks down (a non-finite step, a zero derivative) keeps its
    last value; results are clipped at 1.
    """
    out = np.empty_like(df)
    for k in range(df.shape[0]):
        half = 0.5 * (df[k] + dim)
        const = 1.0 + sums[2, k] / sums[0, k] + _digamma(half, 0) - math.log(half)
        x = df[k]
        for _ in range(max_iter):
            f = const - _digamma(0.5 * x, 0) + math.log(0.5 * max(x, 1e-9))
            d1 = -0.5 * _hurwitz_zeta(2.0, 0.5 * x) + 1.0 / x
            d2 = 0.5 * _hurwitz_zeta(3.0, 0.5 * x) - 1.0 / x**2
            step = f / d1
            adj = step * d2 / d1 / 2.0
            if abs(adj) < 1.0:
                step = step / (1.0 - adj)
            new = x - step
            bad = not math.isfinite(new) or d1 == 0.0
            if bad:
                new = x
            done = bad or abs(new - x) <= tol
            x = new
            if done:
                break
        out[k] = max(x, 1.0)
    return out
