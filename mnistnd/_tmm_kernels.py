"""Compiled loops of the Student-t mixture EM (:mod:`mnistnd._tmm`).

Each function makes one pass over data that numpy would need several passes (and temporary
arrays) for: gathering rows, the matrix product and the row norms happen on one block of rows
while it is in cache; the per-pair bookkeeping of the E-step (bounds, candidates,
responsibilities, the M-step's and degrees-of-freedom sums) is one loop over the pairs.
The matrix products stay with BLAS: the triangular products and inverses are scipy's BLAS and
LAPACK (:mod:`scipy.linalg.cython_blas`, ``cython_lapack``: the libraries numba's ``np.dot``
calls too), reached by symbol name so that numba can cache the functions that call them (a
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


def _fortran(module, name, n_args):
    """Return scipy's Fortran routine ``module.name`` (all arguments pointers) for numba."""
    symbol = f"mnistnd_{name}"
    llvm.add_symbol(symbol, get_cython_function_address(f"scipy.linalg.cython_{module}", name))
    return types.ExternalFunction(symbol, types.void(*([types.voidptr] * n_args)))


_dtrmm = _fortran("blas", "dtrmm", 11)
_strmm = _fortran("blas", "strmm", 11)
_dtrtri = _fortran("lapack", "dtrtri", 6)
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
    for b in range(blocks.shape[0]):
        for r in range(blocks[b, 0], blocks[b, 0] + blocks[b, 1]):
            wr = w[r]
            if wr == 0.0:  # not kept, or superseded
                continue
            x = X[rec_point[r]]
            root = math.sqrt(wr)
            for c in range(dim):
                y = x[c] - loc[c]
                s1[c] += wr * y
                Y[count, c] = root * y
            count += 1
    return count
