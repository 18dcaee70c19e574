"""Figures of the PBMC3k autoencoder chapter (the okunator course report).

Every function returns the :class:`matplotlib.figure.Figure` it drew, with labelled axes.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mnistnd.plotting import heatmap, history_lines, long_history, panels

__all__ = ["qc_violins", "tsne_panels", "score_heatmaps", "loss_curves", "spike_histogram",
           "cell_type_colors"]


def cell_type_colors(names) -> dict[str, tuple]:
    """One colour per cell type (sorted names; tab10, then tab20 when there are more)."""
    names = sorted({str(n) for n in names})
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    return {n: cmap(i % cmap.N) for i, n in enumerate(names)}


def qc_violins(qc: pd.DataFrame, *, min_genes: int = 200, max_genes: int = 2500,
               max_pct_mito: float = 5.0):
    """Violin plots of genes per cell, counts per cell and mitochondrial share, with thresholds.

    Parameters
    ----------
    qc
        Table with ``n_genes``, ``total_counts``, ``pct_mito`` and ``passes_qc`` (one row per
        cell before QC; ``uns["pbmc_qc"]`` of :func:`mnistnd.pbmc.preprocess`).
    min_genes, max_genes, max_pct_mito
        The QC thresholds, drawn as dashed lines.
    """
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
    spec = [("n_genes", "genes detected per cell", (min_genes, max_genes)),
            ("total_counts", "UMI counts per cell", ()),
            ("pct_mito", "mitochondrial counts (%)", (max_pct_mito,))]
    rng = np.random.default_rng(0)
    for ax, (col, label, lines) in zip(axes, spec, strict=True):
        values = qc[col].to_numpy(dtype=float)
        ax.violinplot(values, showextrema=False)
        jitter = 1 + rng.uniform(-0.12, 0.12, size=values.size)
        ok = qc["passes_qc"].to_numpy(dtype=bool)
        ax.scatter(jitter[ok], values[ok], s=2, alpha=0.4, color="0.3", label="kept")
        ax.scatter(jitter[~ok], values[~ok], s=6, color="tab:red", label="removed")
        for y in lines:
            ax.axhline(y, ls="--", color="tab:red", lw=1)
        ax.set_xticks([])
        ax.set_ylabel(label)
        ax.set_xlabel(f"{len(values)} cells")
    axes[0].legend(loc="upper right", markerscale=3)
    fig.tight_layout()
    return fig


def tsne_panels(embeddings: dict, labels, models, seed: int = 0):
    """Per model: 2-D t-SNE coloured by cell type (left) and by k-means cluster (right).

    The report's FIG1-3. ``embeddings`` is :attr:`mnistnd.pbmc.ExperimentResult.embeddings`.
    """
    labels = np.asarray(labels).astype(str)
    colors = cell_type_colors(labels)
    models = [m for m in models if (m, seed) in embeddings]
    fig, axes = plt.subplots(len(models), 2, figsize=(10, 4.2 * len(models)), squeeze=False)
    for row, model in zip(axes, models, strict=True):
        emb = embeddings[(model, seed)]
        xy = emb["tsne"]
        for name, color in colors.items():
            sel = labels == name
            row[0].scatter(xy[sel, 0], xy[sel, 1], s=3, color=color, label=name)
        row[0].set_title(f"{model}: cell types")
        pred = emb["kmeans_tsne"]
        row[1].scatter(xy[:, 0], xy[:, 1], s=3, c=pred, cmap="tab10")
        for k in np.unique(pred):
            cx, cy = xy[pred == k].mean(axis=0)
            row[1].scatter(cx, cy, s=150, color="red", alpha=0.5)
        row[1].set_title(f"{model}: k-means (k={len(np.unique(pred))}) on the t-SNE")
        for ax in row:
            ax.set_xlabel("t-SNE 1")
            ax.set_ylabel("t-SNE 2")
    axes[0, 0].legend(loc="best", fontsize=7, markerscale=3, ncol=2)
    fig.tight_layout()
    return fig


def score_heatmaps(summary: pd.DataFrame, paper: pd.DataFrame | None = None,
                   title: str = "ours"):
    """Heatmap of mean ± sd scores (ours) beside the report's heatmap (FIG4).

    Parameters
    ----------
    summary
        :func:`mnistnd.pbmc.summarise_scores` output.
    paper
        The report's scores (models x metrics), or ``None`` to draw ours only. Models the
        report did not run stay blank.
    title
        Title of our panel.
    """
    from mnistnd.pbmc import SCORE_NAMES

    metrics = list(SCORE_NAMES)
    mean = pd.DataFrame({m: summary[(m, "mean")] for m in metrics})
    sd = pd.DataFrame({m: summary[(m, "sd")] for m in metrics})
    ours = (mean.map("{:.2f}".format) + "\n±" + sd.map("{:.2f}".format)).where(mean.notna(), "")
    panel_specs = [(title, mean, ours.to_numpy())]
    if paper is not None:
        panel_specs.append(("report", paper.reindex(mean.index)[metrics], True))
    fig, axes = panels(len(panel_specs), len(panel_specs), (4.8, 3.2))
    for i, (ax, (name, values, annot)) in enumerate(zip(axes, panel_specs, strict=True)):
        last = i == len(panel_specs) - 1
        heatmap(values, ax, annot=annot, fmt="" if annot is not True else ".2f", vmin=0,
                vmax=1, cmap="viridis", annot_kws={"fontsize": 8}, square=False,
                cbar_label="score" if last else None)
        ax.set_xlabel("score")
        ax.set_ylabel("model")
        ax.set_title(name)
    fig.tight_layout()
    return fig


def loss_curves(histories: dict):
    """Training loss per epoch for every (model, seed) run, one panel per model (log scale).

    ``histories`` maps ``(model, seed)`` to a history of :func:`mnistnd.training.fit` with a
    ``train_loss`` column; epochs are shown from 1.
    """
    long = long_history(histories, ("model", "seed"), {"train_loss": "training loss"},
                        epoch_offset=1)
    long["seed"] = "seed " + long["seed"].astype(str)
    models = list(dict.fromkeys(m for m, _ in histories))
    fig, axes = panels(len(models), len(models), (4.0, 3.2))
    for i, (ax, model) in enumerate(zip(axes, models, strict=True)):
        history_lines(long[long["model"] == model], ax, hue="seed",
                      hue_order=sorted(set(long["seed"])), legend=i == 0)
        ax.set_yscale("log")
        ax.set_ylabel("training loss per cell")
        ax.set_title(model)
    fig.tight_layout()
    return fig


def spike_histogram(spikes: np.ndarray, threshold: float = 0.5):
    """Histogram of the VSC slab probabilities γ over all cells and latent dimensions."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.hist(np.asarray(spikes).ravel(), bins=40, range=(0, 1), color="tab:blue")
    ax.axvline(threshold, ls="--", color="tab:red", lw=1, label=f"γ = {threshold}")
    ax.set_xlabel("slab probability γ (cell x latent dimension)")
    ax.set_ylabel("count")
    ax.legend()
    fig.tight_layout()
    return fig
