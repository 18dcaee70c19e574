"""Benchmark: our Student-t mixture EM against studenttmixture, same data, same init, one process.

Run with ``.venv/bin/python tests/benchmarks/bench_tmm.py [--n 10000] [--dims 64] [--seeds 1]``.
Prints, for each case, both fit times, their ratio (target: ours >= 10x faster), the mean
log-likelihood per point of both fits, the ARI between their labels (target: >= 0.99), the
ARI of ours with the generating labels, the iteration count, and the mean share of
(point, component) pairs ours computed (the rest were proved negligible). Both run single-threaded
(threadpoolctl), as in the benchmark's joblib workers.

Data: ten heavy-tailed clusters (Gaussian blobs plus Student-t(3) noise), the shape of an
MNIST-Nd embedding (10,000 x d), unless ``--mnistnd ARTIFACTS_DIR`` points at built datasets.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_limits

from mnistnd._tmm import StudentTMixture


def _data(n, dim, seed, artifacts):
    if artifacts:
        from mnistnd.datasets import load_mnistnd

        adata = load_mnistnd(dim, artifacts)
        X, y = np.asarray(adata.X, dtype=np.float64), adata.obs["digit"].to_numpy()
        keep = np.random.default_rng(seed).permutation(X.shape[0])[:n]
        return X[keep], y[keep]
    X, y = make_blobs(n, n_features=dim, centers=10, cluster_std=4.0, random_state=seed)
    return X + 0.5 * np.random.default_rng(seed).standard_t(3, X.shape), y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--dims", type=int, nargs="+", default=[64])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--mnistnd", default=None, help="artifacts folder with MNIST-Nd")
    args = parser.parse_args()
    from studenttmixture import EMStudentMixture

    print(
        f"{'dim':>4} {'seed':>4} {'lib s':>8} {'ours s':>8} {'ratio':>6} {'iters':>5} "
        f"{'lib LL':>12} {'ours LL':>12} {'ARI(lib,ours)':>13} {'ARI truth':>9} {'pairs':>5}"
    )
    ratios = []
    with threadpool_limits(1):
        for dim in args.dims:
            for seed in range(args.seeds):
                X, y = _data(args.n, dim, seed, args.mnistnd)
                lib = EMStudentMixture(
                    n_components=10, fixed_df=False, init_type="k++", random_state=seed, tol=1e-5
                )
                init = lib.kplusplus_initialization(X, seed)  # same centres for both
                t0 = time.perf_counter()
                lib.fit(X)
                t_lib = time.perf_counter() - t0
                t0 = time.perf_counter()
                ours = StudentTMixture(10, means_init=init).fit(X)
                t_ours = time.perf_counter() - t0
                a, b = lib.predict(X), ours.predict(X)
                ratios.append(t_lib / t_ours)
                print(
                    f"{dim:>4} {seed:>4} {t_lib:8.2f} {t_ours:8.2f} {t_lib / t_ours:6.2f} "
                    f"{ours.n_iter_:>5} {lib.score(X):12.6f} {ours.score(X):12.6f} "
                    f"{adjusted_rand_score(a, b):13.4f} {adjusted_rand_score(y, b):9.3f} "
                    f"{np.mean(ours._exact_fraction):5.2f}"
                )
    print(
        f"speed-up (lib time / ours): median {np.median(ratios):.2f}x, min {min(ratios):.2f}x "
        "(target >= 10x)"
    )


if __name__ == "__main__":
    main()
