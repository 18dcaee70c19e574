"""Benchmark: the four validity indices on one 10,000 x 64 dataset, ours vs the public references.

Run with ``.venv/bin/python tests/benchmarks/bench_validity.py [--n 10000] [--dim 64]``.
Every measurement runs in a fresh subprocess limited to 2 BLAS/OpenMP threads; the time is wall
clock of the call, the memory is the child's peak resident set size (``ru_maxrss``, which
includes the interpreter, numpy and the data). Targets: our four indices together <= 5 s and
each <= 1 GB peak. References run when installed: DISCO (``clustpy``, the DISCO authors' code),
hdbscan's ``validity_index`` (DBCV; our default reproduces it, so the values agree),
``s_dbw.S_Dbw`` (package default); DCSI has no Python reference package (the authors publish R
code), so it is reported without a ratio. Every index runs with its defaults.
"""

from __future__ import annotations

import argparse
import json
import sys

from _harness import make_blobs, print_load, run_child

TARGET_TOTAL_S = 5.0
TARGET_PEAK_MB = 1024.0

CASES = {
    "disco": ("mnistnd.validity", "disco", {}),
    "dbcv": ("mnistnd.validity", "dbcv", {}),
    "dcsi": ("mnistnd.validity", "dcsi", {}),
    "s_dbw": ("mnistnd.validity", "s_dbw", {}),
    "disco_ref": ("clustpy.metrics.internal.disco", "disco_score", {}),
    "dbcv_ref": ("hdbscan.validity", "validity_index", {}),
    "s_dbw_ref": ("s_dbw", "S_Dbw", {}),
}




def child(name: str, n: int, dim: int) -> None:
    """Run one case and print a JSON line (time, peak RSS, value)."""
    import importlib
    import resource
    import time

    from threadpoolctl import threadpool_limits

    mod, fn, kw = CASES[name]
    try:
        f = getattr(importlib.import_module(mod), fn)
    except ImportError as err:
        print(json.dumps({"name": name, "skipped": str(err)}))
        return
    X, y = make_blobs(n, dim)
    with threadpool_limits(2):
        t0 = time.perf_counter()
        value = float(f(X, y, **kw))
        seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"name": name, "seconds": seconds, "peak_mb": peak_mb, "value": value}))


def run(name: str, n: int, dim: int) -> dict:
    """Measure one index in a fresh process."""
    return run_child(__file__, name, ["--n", str(n), "--dim", str(dim)])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--child")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.n, args.dim)
        return 0
    print_load("before")
    res = {name: run(name, args.n, args.dim) for name in CASES}
    print(f"\n{args.n} x {args.dim}, 2 threads per run, peak = child ru_maxrss")
    print(f"{'index':8} {'ours s':>8} {'ours MB':>8} {'ref s':>8} {'ref MB':>8} {'speed-up':>9}"
          f"  {'ours value':>12} {'ref value':>12}")
    total = 0.0
    peak = 0.0
    for name in ("disco", "dbcv", "dcsi", "s_dbw"):
        o, r = res[name], res.get(f"{name}_ref", {"skipped": "no Python reference"})
        if "skipped" in o:
            print(f"{name:8} ours failed: {o['skipped']}")
            return 1
        total += o["seconds"]
        peak = max(peak, o["peak_mb"])
        if "skipped" in r:
            print(f"{name:8} {o['seconds']:8.2f} {o['peak_mb']:8.0f} {'-':>8} {'-':>8} {'-':>9}"
                  f"  {o['value']:12.5f}  ({r['skipped']})")
        else:
            print(f"{name:8} {o['seconds']:8.2f} {o['peak_mb']:8.0f} {r['seconds']:8.2f} "
                  f"{r['peak_mb']:8.0f} {r['seconds'] / o['seconds']:8.1f}x"
                  f"  {o['value']:12.5f} {r['value']:12.5f}")
    ok = total <= TARGET_TOTAL_S and peak <= TARGET_PEAK_MB
    print(f"\nours together: {total:.2f} s (target <= {TARGET_TOTAL_S} s), "
          f"largest peak {peak:.0f} MB (target <= {TARGET_PEAK_MB:.0f} MB): "
          f"{'MET' if ok else 'NOT MET'}")
    print_load("after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
