"""Figures of the m-VAE training chapter (paper 000: Fig. 1B, Fig. 1C, Fig. 4).

Each function takes training histories (``{d: DataFrame}`` as returned by
:func:`mnistnd.datasets.load_history`) or arrays and returns the :class:`~matplotlib.figure.Figure`.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

__all__ = ["loss_curves", "loss_ratio", "loss_components", "reconstructions"]


def _dim_colors(dims):
    cmap = plt.get_cmap("viridis")
    return {d: cmap(i / max(len(dims) - 1, 1)) for i, d in enumerate(dims)}


def loss_curves(
    histories: Mapping[int, pd.DataFrame], best_epochs: Mapping[int, int] | None = None
):
    """Training and validation total loss per epoch, one panel per latent dimension.

    Parameters
    ----------
    histories
        ``{d: history}`` with columns ``epoch``, ``train_loss``, ``val_loss``.
    best_epochs
        Optional ``{d: best epoch}``; marked with a vertical line (the restored weights).
    """
    dims = sorted(histories)
    ncols = min(3, len(dims))
    nrows = int(np.ceil(len(dims) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.6 * nrows), squeeze=False)
    for ax, d in zip(axes.flat, dims, strict=False):
        h = histories[d]
        ax.plot(h["epoch"], h["train_loss"], label="train", color="C0")
        if "val_loss" in h:
            ax.plot(h["epoch"], h["val_loss"], label="validation", color="C1")
        if best_epochs is not None and d in best_epochs:
            ax.axvline(best_epochs[d], color="0.4", ls=":", lw=1, label="best epoch")
        ax.set_title(f"d = {d}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("total loss (nats / image)")
    for ax in list(axes.flat)[len(dims):]:
        ax.set_visible(False)
    axes.flat[0].legend()
    fig.tight_layout()
    return fig


def loss_ratio(histories: Mapping[int, pd.DataFrame], split: str = "val"):
    """Fig. 1B: total loss divided by the (β-weighted) Gaussian KL term, per epoch and dimension.

    Parameters
    ----------
    histories
        ``{d: history}`` with columns ``{split}_loss`` and ``{split}_kl``.
    split
        ``"val"`` or ``"train"``.
    """
    dims = sorted(histories)
    colors = _dim_colors(dims)
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for d in dims:
        h = histories[d]
        ax.plot(h["epoch"], h[f"{split}_loss"] / h[f"{split}_kl"], color=colors[d],
                marker="o", ms=3, label=f"d = {d}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("total loss / KL loss")
    ax.set_yscale("log")
    ax.legend(title="latent dim", ncol=2)
    fig.tight_layout()
    return fig


_COMPONENTS = (
    ("reconstruction", "reconstruction (BCE, nats)"),
    ("gaussian", "Gaussian KL (unweighted, nats)"),
    ("categorical", "categorical KL to uniform (nats)"),
)


def loss_components(histories: Mapping[int, pd.DataFrame], split: str = "val"):
    """Fig. 4: reconstruction, Gaussian KL and categorical loss per epoch, lines by dimension."""
    dims = sorted(histories)
    colors = _dim_colors(dims)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    for ax, (term, label) in zip(axes, _COMPONENTS, strict=True):
        for d in dims:
            h = histories[d]
            ax.plot(h["epoch"], h[f"{split}_{term}"], color=colors[d], marker="o", ms=3,
                    label=f"d = {d}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
    axes[1].set_yscale("log")
    axes[2].legend(title="latent dim", ncol=2, loc="center right")
    for ax, letter in zip(axes, "ABC", strict=True):
        ax.set_title(letter, loc="left", fontweight="bold")
    fig.tight_layout()
    return fig


def reconstructions(images: np.ndarray, recs: Mapping[int, np.ndarray], side: int = 28):
    """Fig. 1C: original test images (top row) and their reconstruction at each dimension.

    Parameters
    ----------
    images
        ``(n, side * side)`` originals in [0, 1].
    recs
        ``{d: (n, side * side)}`` reconstructions.
    side
        Image side length in pixels.
    """
    dims = sorted(recs)
    n = images.shape[0]
    rows = [("input", images)] + [(f"d = {d}", recs[d]) for d in dims]
    fig, axes = plt.subplots(len(rows), n, figsize=(0.9 * n + 0.8, 0.9 * len(rows)),
                             squeeze=False)
    for r, (label, arr) in enumerate(rows):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(np.asarray(arr[c]).reshape(side, side), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            for spine in ax.spines.values():
                spine.set_visible(False)
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center")
    for c in range(n):
        axes[-1, c].set_xlabel(f"#{c + 1}")
    fig.supxlabel("test image")
    fig.supylabel("latent dimension of the model", x=0.0)
    fig.tight_layout()
    return fig
