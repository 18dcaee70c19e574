"""Figures of the m-VAE training chapter (MNIST-Nd paper: Fig. 1B, Fig. 1C, Fig. 4).

Each function takes training histories (``{d: DataFrame}`` as returned by
:func:`mnistnd.datasets.load_history`) or arrays and returns the :class:`~matplotlib.figure.Figure`.
The curves are :func:`seaborn.lineplot` of the long-form table :func:`mnistnd.plotting.long_history`
makes of the histories; epochs are numbered as in the histories (from 0), like ``best_epoch``.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from mnistnd.plotting import history_lines, long_history, panels

__all__ = ["loss_curves", "loss_ratio", "loss_components", "reconstructions"]


def _by_dimension(data: pd.DataFrame, ax, legend: bool):
    """One line per latent dimension (viridis, every dimension in the legend)."""
    history_lines(data, ax, hue="d", palette="viridis", legend="full" if legend else False)
    if legend:
        sns.move_legend(ax, "best", title="latent dim", ncol=2)


def loss_curves(
    histories: Mapping[int, pd.DataFrame], best_epochs: Mapping[int, int] | None = None
):
    """Training and validation total loss per epoch, one panel per latent dimension.

    Parameters
    ----------
    histories
        ``{d: history}`` with columns ``epoch``, ``train_loss``, ``val_loss``.
    best_epochs
        Optional ``{d: best epoch}``; marked with a dotted vertical line (the restored weights).
    """
    long = long_history(histories, "d", {"train_loss": "train", "val_loss": "validation"},
                        var_name="split")
    dims = sorted(histories)
    fig, axes = panels(len(dims), 3, (3.4, 2.6))
    for i, (ax, d) in enumerate(zip(axes, dims, strict=True)):
        history_lines(long[long["d"] == d], ax, hue="split", legend=i == 0)
        if best_epochs is not None and d in best_epochs:
            ax.axvline(best_epochs[d], color="0.4", ls=":", lw=1, label="best epoch")
        ax.set_title(f"d = {d}")
        ax.set_ylabel("total loss (nats / image)")
    if best_epochs is not None:  # the legend again, now with the best-epoch line
        axes[0].legend()
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
    if split not in ("val", "train"):
        raise ValueError(f"split must be 'val' or 'train', got {split!r}")
    ratios = {d: h.assign(ratio=h[f"{split}_loss"] / h[f"{split}_kl"])
              for d, h in histories.items()}
    long = long_history(ratios, "d", {"ratio": "ratio"})
    fig, (ax,) = panels(1, 1, (5.5, 3.6))
    _by_dimension(long, ax, legend=True)
    ax.set_ylabel("total loss / KL loss")
    ax.set_yscale("log")
    fig.tight_layout()
    return fig


_COMPONENTS = {
    "reconstruction": "reconstruction (BCE, nats)",
    "gaussian": "Gaussian KL (unweighted, nats)",
    "categorical": "categorical KL to uniform (nats)",
}


def loss_components(histories: Mapping[int, pd.DataFrame], split: str = "val"):
    """Fig. 4: reconstruction, Gaussian KL and categorical loss per epoch, lines by dimension."""
    if split not in ("val", "train"):
        raise ValueError(f"split must be 'val' or 'train', got {split!r}")
    long = long_history(histories, "d", {f"{split}_{t}": t for t in _COMPONENTS})
    fig, axes = panels(len(_COMPONENTS), 3, (3.7, 3.4))
    for ax, letter, (term, label) in zip(axes, "ABC", _COMPONENTS.items(), strict=True):
        _by_dimension(long[long["term"] == term], ax, legend=term == "categorical")
        ax.set_ylabel(label)
        ax.set_title(letter, loc="left", fontweight="bold")
    axes[1].set_yscale("log")
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
