"""The MoE-Sim-VAE at the settings of paper 002 on MNIST: a resumable run and its result tables.

:func:`run` trains the paper's convolutional model on all 60,000 training images for about the
paper's 20,000 iterations of 128 and evaluates it on the 10,000 test images. Every stage writes
its output atomically into ``workdir`` and is skipped when that output exists, and training
checkpoints after every epoch, so an interrupted run continues where it stopped (even in another
process or session) and ends with the result of an uninterrupted one.

The stages and their files:

1. ``projection.npy``: the 2-D UMAP of the training images that the similarity matrix uses;
2. ``checkpoint/`` while training, then ``model.pt`` and ``history.csv``;
3. :func:`evaluate`: ``results.json`` (NMI, accuracy, F-measure, generation accuracy),
   ``generation_confusion.csv`` and ``mmd.csv``, plus ``provenance.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mnistnd._io import atomic_write

#: The paper's MNIST settings (paper 002, SI B.2): convolutional encoder and experts, code size
#: 68, Adam at 1e-4, batches of 128, 43 epochs of 60,000 images (about 20,000 iterations).
PAPER_SETTINGS = {
    "n_experts": 10, "code_size": 68, "architecture": "conv", "gate_depth": 3,
    "gate_width": 200, "gate_dropout": 0.5, "epochs": 43, "batch_size": 128, "lr": 1e-4,
    "knn_k": 10, "reconstruction_weight": 0.487, "clustering_weight": 0.487,
    "mixture_weight": 0.024, "depict_weight": 0.1, "projection": "umap",
}  # fmt: skip

_MODEL_ARGS = ("n_experts", "code_size", "architecture", "gate_depth", "gate_width",
               "gate_dropout", "knn_k", "reconstruction_weight", "clustering_weight",
               "mixture_weight", "depict_weight")


def settings(**overrides) -> dict:
    """Return the paper's settings with ``overrides`` applied (unknown names are refused)."""
    unknown = sorted(set(overrides) - set(PAPER_SETTINGS) - {"n_train", "seed", "n_generate"})
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; known: {sorted(PAPER_SETTINGS)}, "
                         "n_train, seed, n_generate")
    return {**PAPER_SETTINGS, "n_train": None, "seed": 0, "n_generate": 10000, **overrides}


def _training_data(cfg: dict, source: str):
    from mnistnd import data

    X, y = data.load_mnist("train", source)
    if cfg["n_train"] is not None:
        keep = np.sort(np.random.default_rng(cfg["seed"]).choice(len(X), cfg["n_train"],
                                                                 replace=False))
        X, y = X[keep], y[keep]
    return X, y


def _projection(workdir: Path, X, cfg: dict) -> np.ndarray:
    from mnistnd.moe import similarity_projection

    path = workdir / "projection.npy"
    if not path.exists():
        P = similarity_projection(X, cfg["projection"], seed=cfg["seed"])
        atomic_write(path, lambda tmp: np.save(tmp, P))
    return np.load(path)


def train(workdir, *, source: str = "auto", num_threads: int | None = 1, progress: bool = True,
          **overrides):
    """Train (or resume, or load) the paper-setting model in ``workdir``.

    Returns
    -------
    model : MoESimVAE
        In eval mode, with cluster centres over the training images.
    history : pandas.DataFrame
        Per-epoch losses.
    """
    import torch

    from mnistnd.models.moe_sim_vae import MoESimVAE
    from mnistnd.moe import train_moe

    cfg = settings(**overrides)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    X, _ = _training_data(cfg, source)
    model_path, hist_path = workdir / "model.pt", workdir / "history.csv"
    if model_path.exists() and hist_path.exists():
        model = MoESimVAE(n_input=X.shape[1], **{k: cfg[k] for k in _MODEL_ARGS})
        model.load_state_dict(torch.load(model_path, weights_only=True))
        return model.eval(), pd.read_csv(hist_path)
    P = _projection(workdir, X, cfg)
    t0 = time.perf_counter()
    model, history = train_moe(
        X, P, epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"],
        seed=cfg["seed"], val_fraction=0.0, checkpoint_dir=workdir / "checkpoint",
        progress=progress, num_threads=num_threads, **{k: cfg[k] for k in _MODEL_ARGS},
    )
    history.attrs.clear()
    atomic_write(hist_path, lambda tmp: history.to_csv(tmp, index=False))
    atomic_write(model_path, lambda tmp: torch.save(model.state_dict(), tmp))
    _write_json(workdir / "training.json",
                {"settings": cfg, "seconds_this_process": time.perf_counter() - t0})
    return model, history


def evaluate(workdir, *, source: str = "auto", **overrides) -> dict[str, pd.DataFrame]:
    """Score the trained model on the 10,000 test images; write and return the result tables.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``scores`` (NMI, accuracy, F-measure and clusters used on the test images; generation
        accuracy and gate agreement of ``n_generate`` images per expert; the classifier's
        accuracy on real test images), ``generation_confusion`` (requested x classified digit,
        rows sum to 1), ``mmd`` (MMD^2 between digits in the latent space, long form) and
        ``history``.
    """
    from mnistnd import data
    from mnistnd.moe import (
        cluster_scores,
        component_to_class,
        generation_confusion,
        mmd_matrix,
        train_digit_classifier,
    )

    cfg = settings(**overrides)
    model, history = train(workdir, source=source, **overrides)
    X_train, y_train = _training_data(cfg, source)
    X_test, y_test = data.load_mnist("test", source)
    seed = cfg["seed"]
    scores = cluster_scores(y_test, model.predict(X_test))
    classifier = train_digit_classifier(X_train, y_train, seed=seed)
    mapping = component_to_class(y_train, model.predict(X_train))
    gen = generation_confusion(model, classifier, mapping, n_per_expert=cfg["n_generate"],
                               seed=seed)
    scores.update({"generation_accuracy": gen["accuracy"],
                   "gate_agreement": gen["gate_agreement"],
                   "classifier_accuracy": float(np.mean(classifier.predict(X_test) == y_test))})
    mmd = mmd_matrix(model.transform(X_test), y_test, n_per_group=200, seed=seed)
    confusion = gen["confusion"].div(gen["confusion"].sum(axis=1), axis=0)
    tables = {
        "scores": pd.DataFrame([scores]),
        "generation_confusion": confusion.rename_axis(index="requested").reset_index()
        .rename(columns=str),
        "mmd": mmd.rename_axis(index="digit_a", columns="digit_b").stack()
        .rename("mmd2").reset_index(),
        "history": history,
    }
    for name, table in tables.items():
        atomic_write(Path(workdir) / f"{name}.csv", lambda tmp, t=table: t.to_csv(tmp, index=False))
    return tables


def publish(workdir, *, source: str = "full", out_dir=None, **overrides):
    """Evaluate the finished run and write its tables into the release (study ``moe_sim_vae``)."""
    from mnistnd import release

    cfg = settings(**overrides)
    tables = evaluate(workdir, source=source, **overrides)
    history = tables["history"]
    provenance = {"settings": cfg, "epochs_run": len(history),
                  "training_seconds": float(history["seconds"].sum()),
                  "source": source, "what": "MoE-Sim-VAE at paper 002's MNIST settings"}
    return release.write_results("moe_sim_vae", tables, provenance, out_dir=out_dir)


def _write_json(path: Path, obj) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2, default=str)))


def main(argv=None) -> None:
    """``python -m mnistnd.moe_paper WORKDIR [--threads N] [--publish]``: train (resuming)."""
    from mnistnd._paper_cli import main as cli

    cli(argv, __doc__.splitlines()[0], train, publish,
        "after training, evaluate and write the tables into the release")


if __name__ == "__main__":
    main()
