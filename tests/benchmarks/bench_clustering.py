"""Benchmark: time of the clustering sweep of the quick profile (target: <= 10 min on 2 cores).

Run with ``.venv/bin/python tests/benchmarks/bench_clustering.py [--n 10000] [--seeds 10]
[--n-jobs 2] [--full] [--mnistnd ARTIFACTS_DIR]``.

The chapter's sweep is: four methods (k-means, GMM, TMM, Leiden) x ``--seeds`` seeds x six
dimensions, each method fitted once on all ``--n`` points and three times on 60 % bootstrap
subsets. By default this script times **one** fit per (method, dimension) on all points and one
on a 60 % subset (single-threaded, as in the workers) and extrapolates the sweep's wall time on
``--n-jobs`` cores: ``sum(fit times x seeds) / n_jobs``. ``--full`` runs the real sweep through
:func:`mnistnd.clustering.benchmark` and reports its measured wall time instead.

Data: MNIST-Nd from ``--mnistnd`` when given, else synthetic heavy-tailed clusters of the same
shape (10 clusters, Student-t noise, ``n x d``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.datasets import make_blobs
from threadpoolctl import threadpool_limits

from mnistnd import clustering

DIMS = (2, 4, 8, 16, 32, 64)
METHODS = ("kmeans", "gmm", "tmm", "leiden")


def _data(dim, n, artifacts):
    if artifacts:
        from mnistnd.datasets import load_mnistnd

        # "release": the datasets shipped with the package; otherwise a trained artifacts folder
        adata = (load_mnistnd(dim, "release") if artifacts == "release"
                 else load_mnistnd(dim, "artifacts", artifacts))
        keep = np.sort(np.random.default_rng(0).permutation(adata.n_obs)[:n])
        return np.asarray(adata.X, dtype=np.float64)[keep], adata.obs["digit"].to_numpy()[keep]
    X, y = make_blobs(n, n_features=dim, centers=10, cluster_std=4.0, random_state=dim)
    return X + 0.5 * np.random.default_rng(dim).standard_t(3, X.shape), y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--dims", type=int, nargs="+", default=list(DIMS))
    parser.add_argument("--full", action="store_true", help="run the whole sweep")
    parser.add_argument("--mnistnd", default=None,
                        help="MNIST-Nd data: 'release' or an artifacts folder")
    args = parser.parse_args()
    sets = {d: _data(d, args.n, args.mnistnd) for d in args.dims}
    clustering.cluster(sets[args.dims[0]][0][:200], "leiden")  # numba compilation, not timed

    if args.full:
        import tempfile

        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            table = clustering.benchmark(
                sets,
                METHODS,
                range(args.seeds),
                n_jobs=args.n_jobs,
                artifacts_dir=tmp,
                use_cache=False,
            )
        wall = time.perf_counter() - start
        fits = table[(table.experiment == "truth") & (table.metric == "ARI")]
        print(fits.pivot_table(index="dim", columns="method", values="seconds").round(2))
        print(f"measured sweep: {wall / 60:.1f} min on {args.n_jobs} workers (target <= 10 min)")
        return

    total = 0.0
    sub = int(0.6 * args.n)
    print(f"{'dim':>4} {'method':>8} {'fit s':>8} {'60% fit s':>9}")
    with threadpool_limits(1):
        for d, (X, _) in sets.items():
            for m in METHODS:
                t0 = time.perf_counter()
                clustering.cluster(X, m, seed=0)
                t_full = time.perf_counter() - t0
                t0 = time.perf_counter()
                clustering.cluster(X[:sub], m, seed=0)
                t_sub = time.perf_counter() - t0
                total += args.seeds * (t_full + 3 * t_sub)
                print(f"{d:>4} {m:>8} {t_full:8.2f} {t_sub:9.2f}")
    print(
        f"extrapolated sweep (4 methods x {args.seeds} seeds x {len(args.dims)} dims, "
        f"{args.n} points, bootstrap included): {total / args.n_jobs / 60:.1f} min on "
        f"{args.n_jobs} cores (target <= 10 min)"
    )


if __name__ == "__main__":
    main()
