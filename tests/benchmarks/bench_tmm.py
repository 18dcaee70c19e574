"""Benchmark: our Student-t mixture EM against studenttmixture, same data, same init, one process.

Run with ``.venv/bin/python tests/benchmarks/bench_tmm.py [--n 10000] [--dims 64] [--seeds 1]
[--repeats 3]``.
Prints, for each case, the library's fit time and ours in double precision (the default) and
with single-precision matrix products (``precision="single"``), the speed-up of each, the
mean log-likelihood per point of the library and of both of ours, the ARI between the
library's labels and ours (target: >= 0.99), the ARI of ours with the reference labels,
the iteration count, and the mean shares of (point, component) pairs ours computed (the
rest were proved negligible) and computed in float64 (the rest of those in float32).
Then, per iteration: the library's time, ours, and a floor (``_blas_floor``: the bare matrix
products for as many pairs as ours computed, nothing else) with the library's time over it,
the most that any code computing those pairs in one thread could reach.

Ours is fitted ``--repeats`` times per case (default 3, identical fits) and timed by the
median, so that a short slow spell of this shared machine (whose timings drift by 10-25 %
between runs) does not decide a ratio; the library's single fit lasts ~10x as long and
averages such spells itself. The spread of our repeats is printed.

Both run single-threaded (threadpoolctl), as in the benchmark's joblib workers. With
``--shipped``, each case is also fitted as a user calls both packages, with no thread limit
set: the library then uses every core's BLAS threads and ours pins itself to one (its
products are too small for threads to pay); the issue's "about 96 s per fit" is that setting,
so its target (ours >= 10x faster) is read there. The one-thread ratio is printed first.
Ours is timed by the median of ``--repeats`` fits there too. The summary then also gives the
library at the faster of its two settings against ours at one thread (at d = 64 here the
library's threads make it slower, at small d faster).
Our compiled loops (numba) are compiled, or loaded from numba's cache, by a small warm-up fit
before the timings; its time is printed.

Data: ten heavy-tailed clusters (Gaussian blobs plus Student-t(3) noise), the shape of an
MNIST-Nd embedding (10,000 x d), unless ``--mnistnd ARTIFACTS_DIR`` points at built datasets.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.linalg import blas
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_limits

from mnistnd._tmm import StudentTMixture


def _data(n, dim, seed, artifacts):
    if artifacts:
        from mnistnd.datasets import load_mnistnd

        # "release": the datasets shipped with the package; otherwise a trained artifacts folder
        adata = (load_mnistnd(dim, "release") if artifacts == "release"
                 else load_mnistnd(dim, "artifacts", artifacts))
        X, y = np.asarray(adata.X, dtype=np.float64), adata.obs["digit"].to_numpy()
        keep = np.random.default_rng(seed).permutation(X.shape[0])[:n]
        return X[keep], y[keep]
    X, y = make_blobs(n, n_features=dim, centers=10, cluster_std=4.0, random_state=seed)
    return X + 0.5 * np.random.default_rng(seed).standard_t(3, X.shape), y


def _blas_floor(X, n_comp, f64_rows, f32_rows, repeats=20):
    """Seconds per iteration of the bare matrix products for as many pairs as ours computed.

    ``f64_rows`` float64 and ``f32_rows`` float32 rows, spread evenly over ``n_comp``
    components: each component's rows are gathered (``np.take``), multiplied in place by a
    ``(D, D)`` triangular whitening matrix (BLAS ``?trmm``, one call per component), and its
    float64 rows go through the symmetric rank-k update of the M-step. Everything else an
    EM iteration does (subtracting the locations, bounds, log densities, responsibilities,
    the small per-component algebra) is left out, so this is a floor for our time per
    iteration, not an estimate of it.
    """
    rng = np.random.default_rng(0)
    n, dim = X.shape
    work = []
    for dtype, rows in ((np.float64, f64_rows), (np.float32, f32_rows)):
        src, per_comp = X.astype(dtype), max(int(rows) // n_comp, 1)
        inv = (np.tril(rng.standard_normal((dim, dim))) + dim * np.eye(dim)).astype(dtype)
        idx = [np.sort(rng.choice(n, per_comp, replace=False)) for _ in range(n_comp)]
        gathered = np.empty((per_comp, dim), dtype)
        trmm = blas.dtrmm if dtype == np.float64 else blas.strmm
        work.append((src, inv, idx, gathered, trmm, dtype == np.float64))

    def iteration():
        for src, inv, idx, gathered, trmm, syrk in work:
            for rows in idx:
                np.take(src, rows, axis=0, out=gathered)
                # in Fortran order gathered.T is (D, rows): whitened in place by op(inv^T) = inv
                trmm(1.0, inv.T, gathered.T, lower=0, trans_a=1, overwrite_b=1)
                if syrk:
                    gathered.T @ gathered  # noqa: B018 (the product is the work being timed)

    iteration()
    t0 = time.perf_counter()
    for _ in range(repeats):
        iteration()
    return (time.perf_counter() - t0) / repeats


def _fit_ours(X, init, precision, repeats, spreads):
    """Our fit from ``init`` and the median time of ``repeats`` identical fits (spread appended)."""
    times = []
    for _ in range(repeats):  # same fit each time: only the time differs
        t0 = time.perf_counter()
        m = StudentTMixture(10, means_init=init, precision=precision).fit(X)
        times.append(time.perf_counter() - t0)
    spreads.append(max(times) / min(times))
    return m, float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--dims", type=int, nargs="+", default=[64])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--mnistnd", default=None,
                        help="MNIST-Nd data: 'release' or an artifacts folder")
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="fits of ours per case, timed by their median (the library's takes 10x as long)",
    )
    parser.add_argument(
        "--shipped",
        action="store_true",
        help="also time both with no thread limit (as a user calls them)",
    )
    args = parser.parse_args()
    for name in ("n", "seeds", "repeats"):  # before the ~1 min of fits per case
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if not args.dims or min(args.dims) < 1:
        parser.error(f"--dims must be positive dimensions, got {args.dims}")
    from studenttmixture import EMStudentMixture

    print(
        f"{'dim':>4} {'seed':>4} {'lib s':>7} {'ours s':>7} {'x':>5} {'f32 s':>7} {'x':>5} "
        f"{'iters':>5} {'lib LL':>11} {'ours-lib':>9} {'f32-lib':>9} {'ARI':>6} {'ARIf32':>6} "
        f"{'truth':>5} {'pairs':>5} {'f64':>5}"
        + f" {'lib ms':>6} {'ours ms':>7} {'floor':>5} {'lib/fl':>6}"
        + (f" {'lib* s':>7} {'ours* s':>7} {'x*':>5} {'ARI*':>6}" if args.shipped else "")
    )
    ratios, shipped_ratios, spreads = [], [], {"double": [], "single": []}
    pinned = threadpool_limits(1)  # undone for the --shipped timings, then set again
    # compile (or load from numba's cache) our kernels for both precisions before timing:
    # a one-off cost per machine, reported here but not in the ratios
    # (separated blobs in 32 dimensions: the fit reaches the bounded, screened iterations
    # whatever --dims, and every kernel is compiled for both dtypes)
    t0 = time.perf_counter()
    warm, _ = make_blobs(600, n_features=32, centers=6, cluster_std=1.0, random_state=0)
    for precision in ("double", "single"):
        m = StudentTMixture(6, max_iter=20, precision=precision).fit(warm)
        assert min(m._exact_fraction) < 0.6, "warm-up did not reach the bounded E-step"
    print(f"kernels compiled or loaded in {time.perf_counter() - t0:.1f} s", flush=True)
    for dim in args.dims:
        for seed in range(args.seeds):
            X, y = _data(args.n, dim, seed, args.mnistnd)
            settings = dict(
                n_components=10, fixed_df=False, init_type="k++", random_state=seed, tol=1e-5
            )
            lib = EMStudentMixture(**settings)
            init = lib.kplusplus_initialization(X, seed)  # same centres for both
            t0 = time.perf_counter()
            lib.fit(X)
            t_lib = time.perf_counter() - t0
            ours, t_ours = _fit_ours(X, init, "double", args.repeats, spreads["double"])
            f32, t_f32 = _fit_ours(X, init, "single", args.repeats, spreads["single"])
            a, b, c = lib.predict(X), ours.predict(X), f32.predict(X)
            ratios.append((t_lib / t_ours, t_lib / t_f32))
            ll = lib.score(X)
            # per iteration (the library runs the same iterations as ours) and the floor:
            # the bare products for as many float64 / float32 pairs as ours computed
            pairs = 10 * X.shape[0]
            rows64 = np.mean(ours._double_fraction) * pairs
            rows32 = np.mean(ours._exact_fraction) * pairs - rows64
            floor = _blas_floor(X, 10, rows64, rows32)
            per_iter = (
                f" {t_lib / ours.n_iter_ * 1e3:6.1f} {t_ours / ours.n_iter_ * 1e3:7.1f} "
                f"{floor * 1e3:5.1f} {t_lib / ours.n_iter_ / floor:6.2f}"
            )
            shipped = ""
            if args.shipped:
                pinned.restore_original_limits()
                lib_s = EMStudentMixture(**settings)
                t0 = time.perf_counter()
                lib_s.fit(X)
                t_lib_s = time.perf_counter() - t0
                ours_s, t_ours_s = _fit_ours(X, init, "double", args.repeats, [])
                pinned = threadpool_limits(1)
                # and the library at the faster of its two settings against ours
                shipped_ratios.append((t_lib_s / t_ours_s, min(t_lib, t_lib_s) / t_ours))
                ari_s = adjusted_rand_score(lib_s.predict(X), ours_s.predict(X))
                shipped = f" {t_lib_s:7.2f} {t_ours_s:7.2f} {t_lib_s / t_ours_s:5.2f} {ari_s:6.4f}"
            print(
                f"{dim:>4} {seed:>4} {t_lib:7.2f} {t_ours:7.2f} {t_lib / t_ours:5.2f} "
                f"{t_f32:7.2f} {t_lib / t_f32:5.2f} {ours.n_iter_:>5} {ll:11.6f} "
                f"{ours.score(X) - ll:9.1e} {f32.score(X) - ll:9.1e} "
                f"{adjusted_rand_score(a, b):6.4f} {adjusted_rand_score(a, c):6.4f} "
                f"{adjusted_rand_score(y, b):5.3f} {np.mean(ours._exact_fraction):5.2f} "
                f"{np.mean(ours._double_fraction):5.2f}" + per_iter + shipped,
                flush=True,
            )
    ratios = np.array(ratios)
    for col, name in enumerate(("double", "single")):
        print(
            f"speed-up at one thread each (lib time / ours, {name}): median "
            f"{np.median(ratios[:, col]):.2f}x, min {ratios[:, col].min():.2f}x; slowest / "
            f"fastest of our {args.repeats} fits of a case: up to {max(spreads[name]):.2f}"
        )
    if shipped_ratios:
        shipped_ratios = np.array(shipped_ratios)
        names = ("as called, no thread limit (the issue's setting; target >= 10x)",
                 "library at its faster setting, ours at one thread")  # fmt: skip
        for col, name in enumerate(names):
            print(
                f"speed-up {name} (lib time / ours, double): median "
                f"{np.median(shipped_ratios[:, col]):.2f}x, min {shipped_ratios[:, col].min():.2f}x"
            )
    pinned.restore_original_limits()


if __name__ == "__main__":
    main()
