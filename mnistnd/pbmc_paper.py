"""The PBMC autoencoders at the report's settings: a resumable run, one model and seed at a time.

:func:`run` trains every model of :data:`mnistnd.pbmc.MODEL_NAMES` for every seed on all 2,638
cells and all genes for 200 epochs (the report's protocol, :func:`mnistnd.pbmc.run_experiment`),
and writes each (model, seed) into its own folder ``runs/<model>-<seed>/`` with
:func:`mnistnd.pbmc.save_results`. A folder is written atomically file by file and counts as done
once its ``manifest.json`` exists (written last), so an interrupted run redoes only the pair it
was working on. :func:`collect` joins the finished pairs into one score, time and sparsity table.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mnistnd._io import atomic_write

#: The report's settings (all genes, 200 epochs, latent size 6, beta 2) over five seeds.
PAPER_SETTINGS = {"epochs": 200, "n_top_genes": None, "latent_dim": 6, "beta": 2.0,
                  "seeds": [0, 1, 2, 3, 4], "tsne_iter": 500}


def _pairs(models, seeds):
    return [(m, s) for s in seeds for m in models]


def run(workdir, *, source: str = "full", models=None, num_threads: int | None = 1,
        progress: bool = True, **overrides) -> pd.DataFrame:
    """Train and evaluate every (model, seed) pair not yet done in ``workdir``.

    Returns
    -------
    pandas.DataFrame
        The score table of all pairs (:func:`collect`).
    """
    from mnistnd import pbmc

    unknown = sorted(set(overrides) - set(PAPER_SETTINGS))
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; known: {sorted(PAPER_SETTINGS)}")
    cfg = {**PAPER_SETTINGS, **overrides}
    models = list(models or pbmc.MODEL_NAMES)
    workdir = Path(workdir)
    todo = [(m, s) for m, s in _pairs(models, cfg["seeds"])
            if not (workdir / "runs" / f"{m}-{s}" / "manifest.json").exists()]
    if todo:
        workdir.mkdir(parents=True, exist_ok=True)
        cells = pbmc.labelled_cells(source)
        X = pbmc.model_input(cells.adata, cfg["n_top_genes"])
        atomic_write(workdir / "settings.json", lambda tmp: Path(tmp).write_text(
            json.dumps({**cfg, "models": models, "n_genes": int(X.shape[1]),
                        "n_cells": int(X.shape[0]), "labels": cells.label_source}, indent=2)))
        for name, seed in todo:
            t0 = time.perf_counter()
            result = pbmc.run_experiment(
                X, cells.labels, models=[name], seeds=[seed], epochs=cfg["epochs"],
                latent_dim=cfg["latent_dim"], beta=cfg["beta"], tsne_iter=cfg["tsne_iter"],
                num_threads=num_threads, progress=progress)
            folder = pbmc.save_results(result, workdir / "runs" / f"{name}-{seed}")
            print(f"{name} seed {seed}: {time.perf_counter() - t0:.0f} s -> {folder}", flush=True)
    return collect(workdir)["scores"]


def collect(workdir) -> dict[str, pd.DataFrame]:
    """Join the finished pairs' ``scores``, ``times``, ``sparsity`` and ``detected`` tables."""
    runs = sorted(p.parent for p in (Path(workdir) / "runs").glob("*/manifest.json"))
    if not runs:
        raise FileNotFoundError(f"no finished run in {Path(workdir) / 'runs'}")
    out = {}
    for name in ("scores", "times", "sparsity"):
        parts = [pd.read_csv(r / f"{name}.csv") for r in runs
                 if (r / f"{name}.csv").stat().st_size > 1]
        out[name] = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    out["detected"] = pd.concat([_detected(r) for r in runs], ignore_index=True)
    return out


def _detected(run: Path) -> pd.DataFrame:
    """Cell types k-means detects in one finished run (:func:`mnistnd.pbmc.detection_table`)."""
    from mnistnd.pbmc import detection_table

    with np.load(run / "embeddings.npz", allow_pickle=False) as npz:
        labels = npz["labels"]
        embeddings = {}
        for key in npz.files:
            if key.count("__") == 2:
                model, seed, what = key.split("__")
                embeddings.setdefault((model, int(seed)), {})[what] = npz[key]
    return detection_table(embeddings, labels)


def publish(workdir, *, source: str | None = None, out_dir=None):
    """Write the finished pairs' tables into the release (study ``pbmc_autoencoders``).

    ``source`` is accepted for a uniform command line and not used: the tables are read back
    from ``workdir``, whose ``settings.json`` records how the data were read.
    """
    from mnistnd import release

    settings = json.loads((Path(workdir) / "settings.json").read_text())
    tables = {k: v for k, v in collect(workdir).items() if not v.empty}
    times = tables["times"]
    provenance = {"settings": settings, "training_seconds": float(times["seconds"].sum()),
                  "pairs": len(times), "what": "PBMC autoencoders at the report's settings"}
    return release.write_results("pbmc_autoencoders", tables, provenance, out_dir=out_dir)


def main(argv=None) -> None:
    """``python -m mnistnd.pbmc_paper WORKDIR [--threads N] [--publish]``: run missing pairs."""
    from mnistnd._paper_cli import main as cli

    cli(argv, __doc__.splitlines()[0], run, publish,
        "after the runs, write the tables into the release")


if __name__ == "__main__":
    main()
