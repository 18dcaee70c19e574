"""Benchmark of the PBMC chapter: estimate the quick profile's run time from measured parts.

Run on demand: ``MNISTND_DATA_DIR=... .venv/bin/python tests/benchmarks/bench_pbmc.py``.
Measures, in this one run, preprocessing + labelling, seconds per training epoch of each model
(on the quick profile's gene count) and one t-SNE + k-means evaluation, then prints the
predicted chapter time for the quick profile against its 8-minute target.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from mnistnd import data, pbmc, profiles

TARGET_S = 8 * 60


def main() -> None:
    torch.set_num_threads(2)
    params = {"epochs": 30, "n_seeds": 2, "n_top_genes": 2000, "tsne_iter": 500}
    params.update(profiles.profile_parameters("pbmc_autoencoders", "quick"))
    t0 = time.perf_counter()
    raw = data.load_pbmc3k("full")
    pp = pbmc.preprocess(raw)
    ann = pbmc.annotate(pp)
    t_prep = time.perf_counter() - t0
    X = pbmc.model_input(pp, params["n_top_genes"])
    labels = ann.labels.to_numpy()
    res = pbmc.run_experiment(X, labels, epochs=2, seeds=[0], num_threads=2, progress=False,
                              tsne_iter=params["tsne_iter"])
    per_epoch = res.times.set_index("model")["seconds_per_epoch"]
    t1 = time.perf_counter()
    latent = res.embeddings[("Autoencoder", 0)]["latent"]
    pbmc.evaluate_embedding(latent, labels, tsne_iter=params["tsne_iter"])
    t_eval = time.perf_counter() - t1
    runs = len(pbmc.MODEL_NAMES) * params["n_seeds"]
    train = float(np.sum(per_epoch) * params["epochs"] * params["n_seeds"])
    total = t_prep + train + runs * t_eval
    print(f"preprocess + annotate: {t_prep:.1f} s")
    for model, s in per_epoch.items():
        print(f"{model}: {s:.2f} s/epoch on {X.shape[1]} genes")
    print(f"t-SNE + k-means per latent space: {t_eval:.1f} s")
    print(f"predicted quick chapter: {total:.0f} s (target {TARGET_S} s, "
          f"ratio {total / TARGET_S:.2f})")


if __name__ == "__main__":
    main()
