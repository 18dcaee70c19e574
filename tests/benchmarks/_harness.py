"""Shared pieces of the benchmark scripts: test data and isolated child-process measurements.

Each measurement runs in a fresh Python process so that its peak memory (``ru_maxrss``) is its
own, with BLAS/OpenMP limited to two threads (the size of the machines this project targets).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def make_blobs(n: int, dim: int, seed: int = 0):
    """Ten overlapping Gaussian clusters (like an MNIST-Nd embedding), deterministic.

    Returns
    -------
    X : ndarray of shape (n, dim)
    labels : ndarray of shape (n,)
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((10, dim))
    labels = rng.integers(0, 10, n)
    return centres[labels] + 0.8 * rng.standard_normal((n, dim)), labels


def run_child(script: str, name: str, args: list[str], threads: int = 2) -> dict:
    """Run ``script --child name *args`` in a fresh process; return the last JSON line it printed.

    A child that fails returns ``{"name": name, "skipped": <last stderr line>}``.
    """
    n = str(threads)
    env = dict(os.environ, OMP_NUM_THREADS=n, OPENBLAS_NUM_THREADS=n, MKL_NUM_THREADS=n)
    out = subprocess.run(
        [sys.executable, script, "--child", name, *args],
        capture_output=True, text=True, env=env, check=False,
    )
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"name": name, "skipped": f"failed: {out.stderr.strip().splitlines()[-1:]}"}
    return json.loads(lines[-1])


def print_load(when: str) -> None:
    """Print the load average, so a reader can judge how quiet the machine was."""
    try:
        print(f"load average {when}: {os.getloadavg()}")
    except OSError:  # not available on every platform
        pass
