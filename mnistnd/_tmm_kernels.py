"""Compiled loops of the Student-t mixture EM (:mod:`mnistnd._tmm`).

Each function makes one pass over data that numpy would need several passes (and temporary
arrays) for: gathering rows, the matrix product and the row norms happen on one block of rows
while it is in cache; the per-pair bookkeeping of the E-step (bounds, candidates,
responsibilities, the M-step's and degrees-of-freedom sums) is one loop over the pairs.
The matrix products stay with BLAS (``np.dot`` inside numba calls it).

The (point, component) arrays are (K, n), one row per component; a pair is *computed* when its
entry of ``lp`` (log density plus log weight) is finite.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

# Rows per block: the gathered rows and their whitened copy (2 x 256 x 65 doubles) stay in L2.
_BLOCK = 256


@nb.njit(cache=True, nogil=True)
def whiten_rows(
    Xa, idx, all_rows, W, out, first, gather, lp, maha, lower, pos, primary,
    mark_primary, skip_primary, const, half, inv_df, xnorm, g32, inv_norm, off_norm,
):  # fmt: skip
    """Whitened rows ``z = [x, 1] W`` of one component, with their distances and bounds.

    Rows ``idx`` of ``Xa`` (all rows when ``all_rows``) go to ``out`` in order; for each row
    ``i`` this writes ``maha[i] = |z|^2``, ``lp[i]`` (log density plus log weight), a lower
    bound ``lower[i]`` on the exact ``|z|`` and ``pos[i] = first + row of out``, and sets
    ``primary[i]`` when ``mark_primary``. With ``skip_primary``, rows already computed at the
    higher precision keep their values. ``g32 > 0``: the products are float32 and the bound
    allows ``|z_exact - z| <= g32 (|x| |W|_F + |offset|)``; ``g32 == 0``: float64, the bound
    allows a relative 1e-12.
    """
    n_rows = Xa.shape[0] if all_rows else idx.shape[0]
    dim = W.shape[1]
    cols = Xa.shape[1]
    for s in range(0, n_rows, _BLOCK):
        e = min(s + _BLOCK, n_rows)
        m = e - s
        dst = out[s:e]
        if all_rows:
            np.dot(Xa[s:e], W, dst)
        else:
            for j in range(m):
                row = idx[s + j]
                for c in range(cols):
                    gather[j, c] = Xa[row, c]
            np.dot(gather[:m], W, dst)
        for j in range(m):
            i = s + j if all_rows else idx[s + j]
            if skip_primary and primary[i]:
                continue
            acc = 0.0
            for c in range(dim):
                v = np.float64(dst[j, c])
                acc += v * v
            root = math.sqrt(acc)
            if g32 > 0.0:
                lo = root * (1.0 - g32) - g32 * (xnorm[i] * inv_norm + off_norm)
            else:
                lo = root * (1.0 - 1e-12)  # float64 rounding, with a wide safety factor
            maha[i] = acc
            lower[i] = max(lo, 0.0)
            lp[i] = const - half * math.log(1.0 + acc * inv_df)
            pos[i] = first + s + j
            if mark_primary:
                primary[i] = True


@nb.njit(cache=True, nogil=True, inline="always")
def _best(lp, i):
    """Largest log density of point ``i`` over the components (``-inf``: none computed)."""
    best = -np.inf
    for k in range(lp.shape[0]):
        best = max(best, lp[k, i])
    return best


@nb.njit(cache=True, nogil=True)
def candidates(lower, shrink, shift, lp, primary, const, half, inv_df, margin, cand, n_cand):
    """Carry the distance bounds to the new parameters and list the pairs still to compute.

    For every pair not computed yet: ``lower = max(shrink * lower - shift, 0)`` (a lower bound
    on the new distance); the pair is a candidate unless its log density at that bound is more
    than ``margin`` nats below the point's best computed pair. Candidates of component ``k``
    are ``cand[k, :n_cand[k]]`` (ascending).
    """
    n_comp, n = lower.shape
    n_cand[:] = 0
    for i in range(n):
        threshold = _best(lp, i) - margin
        for k in range(n_comp):
            if primary[k, i]:
                continue
            lo = max(lower[k, i] * shrink[k] - shift[k], 0.0)
            lower[k, i] = lo
            q = lo * lo * inv_df[k]
            # log(1 + q) >= 2q / (2 + q): when that already proves the pair negligible,
            # the logarithm is not needed
            if const[k] - half[k] * (2.0 * q / (2.0 + q)) < threshold:
                continue
            if const[k] - half[k] * math.log(1.0 + q) < threshold:
                continue
            cand[k, n_cand[k]] = i
            n_cand[k] += 1


@nb.njit(cache=True, nogil=True)
def promotions(lp, primary, heavy_gap, cand, n_cand):
    """List the computed pairs not at the higher precision within ``heavy_gap`` of their best."""
    n_comp, n = lp.shape
    n_cand[:] = 0
    for i in range(n):
        top = _best(lp, i)
        for k in range(n_comp):
            if lp[k, i] > -np.inf and not primary[k, i] and lp[k, i] >= top - heavy_gap:
                cand[k, n_cand[k]] = i
                n_cand[k] += 1


@nb.njit(cache=True, nogil=True)
def responsibilities(
    lp, maha, primary, pos, df, dim, margin, heavy_gap, w_primary, w_light,
    heavy, n_heavy, sums,
):  # fmt: skip
    """Responsibilities and expected precisions of the computed pairs, and what EM sums of them.

    A computed pair more than ``margin`` nats below its point's best gets responsibility 0.
    Writes the M-step weight ``r u`` of each kept pair at its row (``pos``) in ``w_primary``
    or ``w_light``, the pairs within ``heavy_gap`` of their best into ``heavy[k, :n_heavy[k]]``
    and, per component, ``sums[0] = sum r``, ``sums[1] = sum r u``,
    ``sums[2] = sum r (log u - u)``. Returns the mean log-likelihood and the numbers of kept
    and of computed pairs.
    """
    n_comp, n = lp.shape
    sums[:] = 0.0
    n_heavy[:] = 0
    shifted = np.empty(n_comp)
    total_ll = 0.0
    kept = 0
    computed = 0
    for i in range(n):
        top = _best(lp, i)
        total = 0.0
        for k in range(n_comp):
            gap = lp[k, i] - top
            shifted[k] = math.exp(gap) if gap >= -margin else 0.0
            total += shifted[k]
        total_ll += math.log(total) + top
        for k in range(n_comp):
            if lp[k, i] == -np.inf:
                continue
            computed += 1
            gap = lp[k, i] - top
            if gap >= -heavy_gap:
                heavy[k, n_heavy[k]] = i
                n_heavy[k] += 1
            if gap < -margin:
                continue
            kept += 1
            r = shifted[k] / total
            u = (df[k] + dim) / (df[k] + maha[k, i])
            ru = r * u
            sums[0, k] += r
            sums[1, k] += ru
            sums[2, k] += r * (math.log(u) - u)
            if primary[k, i]:
                w_primary[pos[k, i]] = ru
            else:
                w_light[pos[k, i]] = ru
    return total_ll / n, kept, computed


@nb.njit(cache=True, nogil=True)
def scale_rows(Z, w, root):
    """``root = sqrt(w)`` and every row of ``Z`` times its ``root`` (rows of weight 0 become 0)."""
    for r in range(Z.shape[0]):
        s = math.sqrt(w[r])
        root[r] = s
        for c in range(Z.shape[1]):
            Z[r, c] *= s
