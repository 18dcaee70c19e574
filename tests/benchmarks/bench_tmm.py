"""Benchmark: our Student-t mixture EM against studenttmixture and against our previous code.

Run with ``MNISTND_DATA_DIR=... .venv/bin/python tests/benchmarks/bench_tmm.py [--dims 2 4 8
16 32 64] [--seeds 1] [--repeats 3] [--old-ref REF] [--no-library]``.

Both parts fit 10 components to the MNIST-Nd release datasets (10,000 points each), every fit
called as a user calls it (no thread settings), each pair of fits from the same start.

1. **Library** (the 64-dimensional dataset): ``studenttmixture.EMStudentMixture(10,
   fixed_df=False, init_type="k++", tol=1e-5)`` and ours from the library's own k-means++
   centres. Prints the seconds of the library, of ours (``algorithm="pruned"``, the default)
   and of our plain EM (``"full"``), the speed-ups (target: the default at least 10x faster
   than the library), the difference of the mean log-likelihoods and whether the labels are
   identical.
2. **Previous code** (every dimension of ``--dims``): the implementation at git revision
   ``--old-ref`` (``mnistnd/_tmm.py`` with its numba kernels, loaded from git into a temporary
   module) and ours, both with the clustering benchmark's options
   (``mnistnd.clustering.METHODS["tmm"].defaults``) from the previous code's k-means++
   centres for the seed. Prints both times, old / new, the difference of the mean
   log-likelihoods, whether the labels are identical, and the ARI between the previous
   code's labels and those of ``mnistnd.clustering.cluster(X, "tmm", seed=seed)``, which
   draws its k-means++ centres from a scikit-learn ``random_state`` (another start).

Ours is timed by the median of ``--repeats`` fits, interleaved with the previous code's, so
that a slow spell of a shared machine does not decide a ratio; the range is printed, and the
CPU seconds of the process beside the wall seconds (they vary less on a shared machine).
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _harness import print_load
from sklearn.metrics import adjusted_rand_score

from mnistnd import clustering, datasets
from mnistnd.tmm import StudentTMixture

N_CLUSTERS = 10
# the last revision with the previous implementation (mnistnd/_tmm.py and its numba kernels)
OLD_REF = "871ec2fdb606d9f240977ee066b8fec5c7dc2616"


def _load_previous(ref):
    """Import the previous implementation at git revision ``ref`` as a temporary module."""
    root = Path(__file__).resolve().parents[2]
    folder = Path(tempfile.mkdtemp(prefix="old_tmm_"))
    for name in ("_tmm", "_tmm_kernels"):
        source = subprocess.run(
            ["git", "-C", str(root), "show", f"{ref}:mnistnd/{name}.py"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        source = source.replace("from mnistnd import _tmm_kernels", "import old_tmm_kernels")
        (folder / f"old{name}.py").write_text(source)
    sys.path.insert(0, str(folder))
    return importlib.import_module("old_tmm")


def _timed(make, X, repeats, into=None):
    """Fit ``make()`` to ``X`` ``repeats`` times; the last model and (wall, CPU) seconds of each.

    The CPU seconds of this process (all its threads) are printed beside the wall seconds: on
    a shared machine they vary far less.
    """
    times = [] if into is None else into
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        model = make().fit(X)
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
    return model, times


def _spread(times):
    wall, cpu = np.array(times).T
    return f"{np.median(wall):6.2f} ({wall.min():.2f}-{wall.max():.2f}) {np.median(cpu):6.2f}"


def _ratio(slow, fast):
    """Ratio of the median wall seconds and of the median CPU seconds."""
    return np.median(np.array(slow), axis=0) / np.median(np.array(fast), axis=0)


def compare_library(X, seed, repeats):
    """Part 1: the library against ours, as called, from the library's k-means++ start."""
    from studenttmixture import EMStudentMixture

    lib = EMStudentMixture(
        n_components=N_CLUSTERS, fixed_df=False, init_type="k++", random_state=seed, tol=1e-5
    )
    init = lib.kplusplus_initialization(X, seed)
    _, t_lib = _timed(lambda: lib, X, 1)
    ours, t_ours = _timed(lambda: StudentTMixture(N_CLUSTERS, means_init=init), X, repeats)
    full, t_full = _timed(
        lambda: StudentTMixture(N_CLUSTERS, means_init=init, algorithm="full"), X, 1
    )
    ll = lib.score(X)
    print(
        f"{'':>4} {'wall s (range)  CPU s':>28} {'lib/this wall, CPU':>18} {'LL - lib LL':>11} "
        f"{'labels = lib':>12} {'iterations':>10}"
    )
    print(f"{'lib':>4} {_spread(t_lib):>28}")
    for name, model, times in (("ours", ours, t_ours), ("full", full, t_full)):
        same = np.array_equal(model.predict(X), lib.predict(X))
        wall, cpu = _ratio(t_lib, times)
        print(
            f"{name:>4} {_spread(times):>28} {wall:9.1f} {cpu:8.1f} "
            f"{model.score(X) - ll:11.1e} {str(same):>12} {model.n_iter_:>10}"
        )


def compare_previous(old, X, seed, repeats):
    """Part 2: the previous code against ours, same start, the clustering benchmark's options."""
    options = dict(clustering.METHODS["tmm"].defaults)
    init = old.kmeans_plusplus(X, N_CLUSTERS, seed)
    t_old, t_new = [], []
    for _ in range(repeats):  # interleaved: a slow spell hits both
        prev, _ = _timed(
            lambda: old.StudentTMixture(N_CLUSTERS, means_init=init, **options), X, 1, t_old
        )
        new, _ = _timed(
            lambda: StudentTMixture(N_CLUSTERS, means_init=init, **options), X, 1, t_new
        )
    labels = prev.predict(X)
    other_start = clustering.cluster(X, "tmm", n_clusters=N_CLUSTERS, seed=seed)
    wall, cpu = _ratio(t_old, t_new)
    return (
        f"{_spread(t_old):>28} {_spread(t_new):>28} {wall:6.2f} {cpu:6.2f} "
        f"{new.score(X) - prev.score(X):11.1e} {str(np.array_equal(new.predict(X), labels)):>7} "
        f"{new.n_iter_:>5} {prev.n_iter_:>5} {adjusted_rand_score(labels, other_start):10.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 4, 8, 16, 32, 64])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--old-ref", default=OLD_REF, help="git revision of the previous code")
    parser.add_argument("--no-library", action="store_true", help="skip part 1")
    args = parser.parse_args()
    for name in ("seeds", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    bad = sorted(set(args.dims) - set(datasets.PAPER_DIMS))
    if bad:
        parser.error(f"--dims must be among the paper's dimensions {datasets.PAPER_DIMS}")
    old = _load_previous(args.old_ref)
    data = {
        d: np.asarray(datasets.load_mnistnd(d, source="release").X, np.float64)
        for d in {*args.dims, 64}
    }
    print_load("at start")
    t0 = time.perf_counter()
    old.StudentTMixture(6, max_iter=20).fit(data[args.dims[0]][:1000])  # numba compilation
    print(f"previous code's kernels compiled or loaded in {time.perf_counter() - t0:.1f} s")
    if not args.no_library:
        print("\n1. studenttmixture and ours, 10,000 x 64, seed 0")
        compare_library(data[64], 0, args.repeats)
    print("\n2. previous code (old) and ours (new), clustering benchmark options, same start")
    print(
        f"{'dim':>4} {'seed':>4} {'old wall s (range)  CPU s':>28} "
        f"{'new wall s (range)  CPU s':>28} {'old/new wall, CPU':>13} "
        f"{'LL new-old':>11} {'labels=':>7} {'iters':>5} {'old':>5} {'ARI cluster':>10}"
    )
    for dim in args.dims:
        for seed in range(args.seeds):
            print(
                f"{dim:>4} {seed:>4} " + compare_previous(old, data[dim], seed, args.repeats),
                flush=True,
            )
    print_load("at end")


if __name__ == "__main__":
    main()
