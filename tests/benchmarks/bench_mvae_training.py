"""Benchmark: m-VAE training throughput (d = 64) against the machine's float32 GEMM peak.

Run on demand::

    .venv/bin/python tests/benchmarks/bench_mvae_training.py [--threads 2] [--samples 3840]
    .venv/bin/python tests/benchmarks/bench_mvae_training.py --processes 2

For batch sizes 64 and 256 it measures training samples per second through
:func:`mnistnd.training.fit` (one epoch over random binary images, no validation), and, in the
same run and interleaved with it, the float32 matrix-multiply throughput (a 1024^3 GEMM, best of
several). FLOPs per trained sample are taken as 6 x parameters (forward 2, backward 4), so

    fraction of peak = samples/s x 6 x n_parameters / peak FLOP/s.

``--processes N`` measures instead what the package does by default when it builds the six
datasets (:func:`mnistnd.datasets.build` with ``n_jobs``): N models trained at once in N
processes of one thread each; their combined samples/s is compared with the GEMM peak of N
threads (the whole machine when N is its core count).

Targets (issue 3): >= 55% at batch 64 and >= 70% at batch 256. A straightforward version of the
same network and loop (separate first layers with a concatenation, a DataLoader, default Adam and
a ``.item()`` per step) is measured alongside as a baseline (``--no-baseline`` skips it). The
machine may be shared: peak and training are measured alternately and each training run is
compared with the mean of the peaks measured just before and after it.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torch import nn

from mnistnd.models import MixtureVAE
from mnistnd.models import _blocks as B
from mnistnd.training import fit


def gemm_peak(n: int = 1024, repeats: int = 5) -> float:
    """Best float32 GEMM throughput (FLOP/s) over ``repeats`` timings of an n^3 product."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(4):
            a @ b
        best = max(best, 4 * 2 * n**3 / (time.perf_counter() - t0))
    return best


class NaiveMixtureVAE(nn.Module):
    """The same network written plainly (reference for the speed-up; not used elsewhere)."""

    def __init__(self, d: int):
        super().__init__()
        self.qy = B.mlp([784, 512, 512, 10])
        self.qz = B.mlp([794, 512, 512], output_activation="relu")
        self.z_mean, self.z_var = nn.Linear(512, d), nn.Linear(512, d)
        self.p_mean, self.p_var = nn.Linear(10, d), nn.Linear(10, d)
        self.dec = B.mlp([d, 512, 512, 784], output_activation="sigmoid")
        B.xavier_init_(self)

    def loss(self, x):
        logits = self.qy(x)
        y = B.gumbel_softmax(logits, 1.0)
        h = self.qz(torch.cat([x, y], dim=1))
        mu, var = self.z_mean(h), B.positive_variance(self.z_var(h))
        z = B.reparameterize(mu, var)
        pm, pv = self.p_mean(y), B.positive_variance(self.p_var(y))
        xr = self.dec(z)
        rec = nn.functional.binary_cross_entropy(xr, x, reduction="none").sum(-1).mean()
        gauss = (B.log_normal(z, mu, var) - B.log_normal(z, pm, pv)).mean()
        cat = B.kl_categorical_uniform(logits).mean()
        return rec + 0.125 * gauss + cat


def naive_epoch(X: np.ndarray, batch_size: int) -> float:
    """Seconds for one epoch of the plain loop (DataLoader, default Adam, .item() per step)."""
    torch.manual_seed(0)
    model = NaiveMixtureVAE(64)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(X)),
                                         batch_size=batch_size, shuffle=True)
    t0 = time.perf_counter()
    total = 0.0
    for (x,) in loader:
        loss = model.loss(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item()
    return time.perf_counter() - t0


def ours_epoch(X: np.ndarray, batch_size: int) -> float:
    """Seconds of one training epoch through mnistnd.training.fit."""
    torch.manual_seed(0)
    model = MixtureVAE(64)
    history = fit(model, X, val_fraction=0.0, epochs=1, batch_size=batch_size, patience=None,
                  device="cpu", progress=False, restore_best=False)
    return float(history["seconds"].iloc[0])


def _one_process_epoch(task: tuple[int, int]) -> float:
    """Worker of ``--processes``: one thread, a warm-up, then one timed epoch."""
    batch_size, samples = task
    torch.set_num_threads(1)
    X = (np.random.default_rng(0).random((samples, 784)) > 0.8).astype(np.float32)
    ours_epoch(X[:256], 64)
    return ours_epoch(X, batch_size)


def processes_mode(n: int, samples: int, rounds: int, flops_per_sample: float) -> None:
    """Combined throughput of ``n`` single-threaded training processes against an n-thread peak."""
    import multiprocessing as mp

    torch.set_num_threads(n)
    results: dict[int, list[float]] = {}
    peaks = [gemm_peak()]
    with mp.get_context("spawn").Pool(n) as pool:
        for _ in range(rounds):
            for batch_size in (64, 256):
                seconds = pool.map(_one_process_epoch, [(batch_size, samples)] * n, chunksize=1)
                peaks.append(gemm_peak())
                rate = n * samples / max(seconds)  # the slowest process sets the pace
                results.setdefault(batch_size, []).append(
                    (rate, rate * flops_per_sample / statistics.mean(peaks[-2:])))
    print(f"GEMM peak ({n} threads): median {statistics.median(peaks) / 1e9:.1f} GFLOP/s, "
          f"range {min(peaks) / 1e9:.1f}-{max(peaks) / 1e9:.1f} over {len(peaks)} timings")
    for batch_size, rows in results.items():
        rate, frac = max(rows, key=lambda r: r[1])
        target = {64: 0.55, 256: 0.70}[batch_size]
        print(f"{n} processes x 1 thread, batch {batch_size:3d}: {rate:8.0f} samples/s together, "
              f"{frac:6.1%} of the {n}-thread peak (best of {len(rows)})  target {target:.0%}: "
              f"{'met' if frac >= target else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--samples", type=int, default=64 * 60, help="samples per epoch")
    parser.add_argument("--rounds", type=int, default=2, help="timed epochs per configuration")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--processes", type=int, default=0,
                        help="train this many single-threaded models at once instead")
    args = parser.parse_args()
    n_params = MixtureVAE(64).n_parameters()
    flops_per_sample = 6 * n_params
    if args.processes > 0:
        processes_mode(args.processes, args.samples, args.rounds, flops_per_sample)
        return
    torch.set_num_threads(args.threads)
    X = (np.random.default_rng(0).random((args.samples, 784)) > 0.8).astype(np.float32)
    print(f"torch {torch.__version__}, {args.threads} thread(s), d = 64, "
          f"{n_params:,} parameters, {flops_per_sample / 1e6:.1f} MFLOP per sample, "
          f"{args.samples} samples per epoch")
    ours_epoch(X[:256], 64)  # warm-up (allocator, kernels)
    kinds = [("ours", ours_epoch)] + ([] if args.no_baseline else [("baseline", naive_epoch)])
    results = {}
    peaks = [gemm_peak()]
    for _ in range(args.rounds):
        for batch_size in (64, 256):
            for name, run in kinds:
                seconds = run(X, batch_size)
                peaks.append(gemm_peak())
                rate = args.samples / seconds
                frac = rate * flops_per_sample / statistics.mean(peaks[-2:])
                results.setdefault((name, batch_size), []).append((rate, frac))
    print(f"GEMM peak (1024^3 float32): median {statistics.median(peaks) / 1e9:.1f} GFLOP/s, "
          f"range {min(peaks) / 1e9:.1f}-{max(peaks) / 1e9:.1f} over {len(peaks)} timings")
    targets = {64: 0.55, 256: 0.70}
    for (name, batch_size), rows in results.items():
        rate, frac = max(rows, key=lambda r: r[1])
        extra = (f"target {targets[batch_size]:.0%}: "
                 f"{'met' if frac >= targets[batch_size] else 'NOT met'}") if name == "ours" else ""
        print(f"{name:8s} batch {batch_size:3d}: {rate:8.0f} samples/s, "
              f"{rate * flops_per_sample / 1e9:6.1f} GFLOP/s, {frac:6.1%} of peak "
              f"(best of {len(rows)})  {extra}")
    for batch_size in (64, 256):
        if ("baseline", batch_size) in results:
            ours = max(r[0] for r in results[("ours", batch_size)])
            base = max(r[0] for r in results[("baseline", batch_size)])
            print(f"speed-up over baseline at batch {batch_size}: x{ours / base:.2f}")


if __name__ == "__main__":
    main()
