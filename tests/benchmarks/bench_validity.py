"""Benchmark: the four validity indices on one 10,000 x 64 dataset, ours vs the references.

Run with ``.venv/bin/python tests/benchmarks/bench_validity.py [--n 10000] [--dim 64]
[--old PATH] [--mnistnd]``; ``--mnistnd`` scores the MNIST-Nd release embedding of dimension
``--dim`` with its digit labels (needs ``MNISTND_DATA_DIR``) instead of blobs; ``--old`` names
a file of an earlier ``mnistnd.validity`` (e.g. from ``git show main:mnistnd/validity.py``)
timed beside the current one. Every measurement runs in a fresh subprocess limited to 2
BLAS/OpenMP threads; time is the wall clock of the call, memory the child's peak resident set
size (``ru_maxrss``: interpreter, numpy and data included), and its CPU seconds (less
sensitive to a loaded machine than the wall clock), all in one run, so the ratios compare like
with like. Targets: each index at least 3x faster than its reference package where one is
installed (DISCO: ``clustpy``, the DISCO authors' code; DBCV: hdbscan's ``validity_index``;
S_Dbw: ``s_dbw.S_Dbw``; DCSI has only the authors' R code) and at most 1 GB peak. Every index
runs with its defaults.
"""

from __future__ import annotations

import argparse
import json
import sys

from _harness import make_blobs, print_load, run_child

TARGET_SPEEDUP = 3.0
TARGET_PEAK_MB = 1024.0
INDICES = ("disco", "dbcv", "dcsi", "s_dbw")
REFERENCES = {
    "disco": ("clustpy.metrics.internal.disco", "disco_score"),
    "dbcv": ("hdbscan.validity", "validity_index"),
    "s_dbw": ("s_dbw", "S_Dbw"),
}


def _function(kind: str, index: str, old: str | None):
    """The function measured: ours, the reference package's, or the earlier file's."""
    import importlib
    import importlib.util

    if kind == "ref":
        mod, fn = REFERENCES[index]
        return getattr(importlib.import_module(mod), fn)
    if kind == "old":
        spec = importlib.util.spec_from_file_location("validity_old", old)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return getattr(module, index)
    return getattr(importlib.import_module("mnistnd.validity"), index)


def _data(n: int, dim: int, mnistnd: bool):
    """Blobs, or the MNIST-Nd release embedding with its digit labels."""
    if not mnistnd:
        return make_blobs(n, dim)
    import numpy as np

    from mnistnd import datasets

    ad = datasets.load_mnistnd(dim, source="release")
    return np.asarray(ad.X, dtype=float), ad.obs["digit"].to_numpy().astype(int)


def child(name: str, n: int, dim: int, old: str | None, mnistnd: bool = False) -> None:
    """Run one case ``<kind>:<index>`` and print a JSON line (time, peak RSS, value)."""
    import resource
    import time

    from threadpoolctl import threadpool_limits

    kind, index = name.split(":")
    try:
        f = _function(kind, index, old)
    except (ImportError, KeyError, OSError) as err:
        print(json.dumps({"name": name, "skipped": str(err)}))
        return
    X, y = _data(n, dim, mnistnd)
    with threadpool_limits(2):
        t0, c0 = time.perf_counter(), time.process_time()
        value = float(f(X, y))
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"name": name, "seconds": seconds, "cpu": cpu, "peak_mb": peak_mb,
                      "value": value}))


def _cell(res: dict, ours: dict) -> str:
    """``seconds (ratio to ours) [CPU ratio]`` or a dash when it is missing."""
    if "skipped" in res:
        return f"{'-':>23}"
    return (f"{res['seconds']:7.2f} ({res['seconds'] / ours['seconds']:5.1f}x) "
            f"[{res['cpu'] / ours['cpu']:4.1f}x]")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--old", help="file of an earlier mnistnd.validity to time beside ours")
    ap.add_argument("--only", nargs="+", choices=INDICES, default=list(INDICES))
    ap.add_argument("--mnistnd", action="store_true", help="MNIST-Nd release data, digits")
    ap.add_argument("--child")
    args = ap.parse_args()
    extra = (["--n", str(args.n), "--dim", str(args.dim)] + (["--old", args.old] if args.old
             else []) + (["--mnistnd"] if args.mnistnd else []))
    if args.child:
        child(args.child, args.n, args.dim, args.old, args.mnistnd)
        return 0
    print_load("before")
    kinds = ["new", "ref"] + (["old"] if args.old else [])
    res = {(k, i): run_child(__file__, f"{k}:{i}", extra) if k != "ref" or i in REFERENCES
           else {"skipped": "no Python reference"} for i in args.only for k in kinds}
    data = f"MNIST-Nd release d={args.dim}" if args.mnistnd else f"{args.n} x {args.dim} blobs"
    print(f"\n{data}, 2 threads per run, peak = child ru_maxrss; "
          "ratio = their seconds / ours (wall), [their CPU seconds / ours]")
    print(f"{'index':7} {'ours s':>7} {'ours MB':>8} {'reference s':>23} {'old s':>23}  "
          f"{'ours value':>11} {'ref value':>11}")
    ok = True
    for i in args.only:
        o, r = res[("new", i)], res[("ref", i)]
        if "skipped" in o:
            print(f"{i:7} ours failed: {o['skipped']}")
            return 1
        old = _cell(res[("old", i)], o) if args.old else f"{'-':>23}"
        ref_value = f"{r['value']:11.5f}" if "value" in r else f"({r['skipped'][:30]})"
        print(f"{i:7} {o['seconds']:7.2f} {o['peak_mb']:8.0f} {_cell(r, o)} {old}  "
              f"{o['value']:11.5f} {ref_value}")
        fast = "skipped" in r or r["seconds"] >= TARGET_SPEEDUP * o["seconds"]
        ok &= fast and o["peak_mb"] <= TARGET_PEAK_MB
    print(f"\ntargets (>= {TARGET_SPEEDUP:.0f}x faster than each reference, "
          f"<= {TARGET_PEAK_MB:.0f} MB): {'MET' if ok else 'NOT MET'}")
    print_load("after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
