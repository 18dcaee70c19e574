"""Figures of the embedding-properties chapter and its appendix (MNIST-Nd paper: Fig. 1D-E, 2, 6-9).

Each function takes the outputs of :mod:`mnistnd.embedding` (tables, ``{d: array}`` maps, or the
``{(d, percentile): (rho, delta, gamma)}`` sweep) and returns the
:class:`~matplotlib.figure.Figure` it drew, with labelled axes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import NullFormatter

from mnistnd.plotting import DIGIT_COLORS

__all__ = [
    "decision_graphs",
    "disco_distributions",
    "forest_accuracy",
    "top_gammas",
    "tsne_by_digit",
    "tsne_by_disco",
]


def _panels(n: int, ncols: int, size=(2.6, 2.4)):
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows),
                             squeeze=False)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return fig, axes


def forest_accuracy(table: pd.DataFrame, paper: float | None = None):
    """Fig. 1D: cross-validated random-forest accuracy per latent dimension, beside the paper's.

    Parameters
    ----------
    table
        Tidy table with columns ``latent_dim``, ``fold``, ``accuracy``
        (:func:`mnistnd.embedding.forest_accuracy_table`).
    paper
        The paper's accuracy at every dimension (:data:`mnistnd.papers.mnist_nd.RF_ACCURACY`),
        drawn as a dashed line; ``None`` leaves it out.
    """
    dims = sorted(table["latent_dim"].unique())
    pos = np.arange(len(dims))
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    rng = np.random.default_rng(0)  # jitter of the fold dots only
    for x, d in zip(pos, dims, strict=True):
        acc = table.loc[table["latent_dim"] == d, "accuracy"].to_numpy()
        ax.scatter(x + rng.uniform(-0.12, 0.12, acc.size), acc, s=10, color="0.6", zorder=2,
                   label="fold" if x == 0 else None)
        sd = acc.std(ddof=1) if acc.size > 1 else 0.0
        ax.errorbar(x, acc.mean(), yerr=sd, fmt="o", color="C0", capsize=4, zorder=3,
                    label="ours: mean ± SD" if x == 0 else None)
    if paper is not None:
        ax.axhline(paper, color="C3", ls="--", lw=1.2, label=f"paper: ~{paper:.0%}")
    ax.set_xticks(pos, [str(d) for d in dims])
    ax.set_xlabel("latent dimension d")
    ax.set_ylabel("random-forest accuracy (CV)")
    ax.set_ylim(0, 1)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def _tsne_axes(ax, d):
    ax.set_title(f"d = {d}")
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(False)


def tsne_by_digit(maps: Mapping[int, np.ndarray], digits: Mapping[int, np.ndarray],
                  ncols: int = 3, point_size: float | None = None):
    """Fig. 1E: t-SNE map of each dataset, points coloured by their digit.

    Parameters
    ----------
    maps
        ``{d: (n, 2) map}`` (:func:`mnistnd.embedding.tsne`).
    digits
        ``{d: (n,) digit labels}`` in the same point order.
    ncols
        Panels per row.
    point_size
        Marker area (default: smaller for more points).
    """
    dims = list(maps)
    fig, axes = _panels(len(dims), ncols, size=(3.0, 3.0))
    for ax, d in zip(axes.flat, dims, strict=False):
        Y, y = np.asarray(maps[d]), np.asarray(digits[d])
        colours = np.asarray(DIGIT_COLORS)[np.mod(y, len(DIGIT_COLORS))]
        size = _auto_size(len(y)) if point_size is None else point_size
        ax.scatter(Y[:, 0], Y[:, 1], c=colours, s=size, linewidths=0, rasterized=True)
        _tsne_axes(ax, d)
    handles = [plt.Line2D([], [], ls="", marker="o", color=DIGIT_COLORS[k], label=str(k))
               for k in range(10)]
    fig.legend(handles=handles, title="digit", loc="center right", frameon=False)
    fig.tight_layout(rect=(0, 0, 0.93, 1))
    return fig


def _auto_size(n: int) -> float:
    return float(np.clip(3000.0 / max(n, 1), 0.5, 8.0))


def tsne_by_disco(maps: Mapping[int, np.ndarray], scores: Mapping[int, np.ndarray],
                  ncols: int = 3, point_size: float | None = None, vlim: float | None = None):
    """Fig. 2A: t-SNE maps coloured by each point's DISCO score (blue good, red bad).

    Parameters
    ----------
    maps
        ``{d: (n, 2) map}``.
    scores
        ``{d: (n,) per-point DISCO scores}`` in the same point order, in ``[-1, 1]``.
    ncols
        Panels per row.
    point_size
        Marker area (default: smaller for more points).
    vlim
        The colour scale runs from ``-vlim`` to ``vlim`` (0 in the middle, yellow). Default: the
        98th percentile of ``|score|`` over all maps, so that small differences around 0 stay
        visible; ``1`` gives the full range of the score.
    """
    dims = list(maps)
    if vlim is None:
        allabs = np.abs(np.concatenate([np.asarray(scores[d], float) for d in dims]))
        vlim = float(max(np.quantile(allabs, 0.98), 1e-3))
    fig, axes = _panels(len(dims), ncols, size=(3.0, 3.0))
    sc = None
    for ax, d in zip(axes.flat, dims, strict=False):
        Y, s = np.asarray(maps[d]), np.asarray(scores[d])
        size = _auto_size(len(s)) if point_size is None else point_size
        order = np.argsort(np.abs(s))  # strong scores drawn last, on top
        sc = ax.scatter(Y[order, 0], Y[order, 1], c=s[order], cmap="RdYlBu", vmin=-vlim,
                        vmax=vlim, s=size, linewidths=0, rasterized=True)
        _tsne_axes(ax, d)
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    cax = fig.add_axes((0.92, 0.15, 0.015, 0.7))
    fig.colorbar(sc, cax=cax, label="per-point DISCO score")
    return fig


def disco_distributions(scores: Mapping[int, np.ndarray]):
    """Distribution of the per-point DISCO scores per latent dimension (violins and quartiles).

    Parameters
    ----------
    scores
        ``{d: (n,) per-point DISCO scores}``.
    """
    dims = list(scores)
    data = [np.asarray(scores[d], dtype=float) for d in dims]
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    parts = ax.violinplot(data, positions=np.arange(len(dims)), showextrema=False, widths=0.8)
    for body in parts["bodies"]:
        body.set_facecolor("C0")
        body.set_alpha(0.5)
    q = np.array([np.quantile(s, [0.25, 0.5, 0.75]) for s in data])
    ax.vlines(np.arange(len(dims)), q[:, 0], q[:, 2], color="k", lw=3, label="quartiles")
    ax.scatter(np.arange(len(dims)), q[:, 1], color="w", edgecolor="k", zorder=3, s=18,
               label="median")
    ax.scatter(np.arange(len(dims)), [s.mean() for s in data], marker="D", color="C3", s=18,
               zorder=3, label="mean (the DISCO index)")
    ax.axhline(0, color="0.3", lw=0.8, ls=":")
    ax.set_xticks(np.arange(len(dims)), [str(d) for d in dims])
    ax.set_xlabel("latent dimension d")
    ax.set_ylabel("per-point DISCO score")
    ax.set_ylim(-1.05, 1.05)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def _sweep_keys(sweep, dims, percentiles):
    dims = list(dict.fromkeys(d for d, _ in sweep)) if dims is None else list(dims)
    percentiles = (list(dict.fromkeys(p for _, p in sweep)) if percentiles is None
                   else list(percentiles))
    missing = [(d, p) for p in percentiles for d in dims if (d, p) not in sweep]
    if missing:
        raise KeyError(f"sweep has no results for (latent_dim, percentile) = {missing}")
    return dims, percentiles


def decision_graphs(sweep: Mapping, dims: Sequence[int] | None = None,
                    percentiles: Sequence[float] | None = None, *, top: int = 30,
                    min_ratio: float = 1.5, point_size: float = 2.0):
    """Figs. 2B-C and 6-7: decision graphs (rho vs delta), percentiles by dimensions.

    One row per percentile, one column per dimension; the clear centres of
    :func:`mnistnd.embedding.clear_centres` in red, their number in the panel title.

    Parameters
    ----------
    sweep
        ``{(d, percentile): (rho, delta, gamma)}``
        (:func:`mnistnd.embedding.density_peaks_sweep`).
    dims, percentiles
        Columns and rows to draw (default: all in ``sweep``, in its order).
    top, min_ratio
        Parameters of the clear-centre rule.
    point_size
        Marker area of ordinary points.
    """
    from mnistnd.embedding import centre_indices

    dims, percentiles = _sweep_keys(sweep, dims, percentiles)
    fig, axes = plt.subplots(len(percentiles), len(dims),
                             figsize=(2.3 * len(dims), 2.1 * len(percentiles)), squeeze=False)
    for i, p in enumerate(percentiles):
        for j, d in enumerate(dims):
            ax = axes[i, j]
            rho, delta, _ = sweep[(d, p)]
            ax.scatter(rho, delta, s=point_size, color="0.35", linewidths=0, rasterized=True)
            c = centre_indices(rho, delta, top=top, min_ratio=min_ratio)
            ax.scatter(rho[c], delta[c], s=18, color="C3", zorder=3)
            ax.set_title(f"d = {d}, p = {p:g}% ({c.size})", fontsize=9)
            ax.set_xlabel("ρ (local density)", fontsize=8)
            ax.set_ylabel("δ (dist. to denser)", fontsize=8)
            ax.tick_params(labelsize=7)
    proxy = plt.Line2D([], [], ls="", marker="o", color="C3", label="clear centre (gap rule)")
    fig.legend(handles=[proxy], loc="lower center", frameon=False)
    fig.tight_layout(rect=(0, 0.05 if len(percentiles) < 3 else 0.025, 1, 1))
    return fig


def top_gammas(sweep: Mapping, dims: Sequence[int] | None = None,
               percentiles: Sequence[float] | None = None, *, top: int = 30,
               min_ratio: float = 1.5):
    """Figs. 8-9: the ``top`` largest gamma = rho * delta by rank, percentiles by dimensions.

    One row per percentile, one column per dimension; clear centres in red, the cut of the gap
    rule as a dotted line, their number in the panel title.

    Parameters
    ----------
    sweep
        ``{(d, percentile): (rho, delta, gamma)}``.
    dims, percentiles
        Columns and rows to draw (default: all in ``sweep``).
    top, min_ratio
        Candidates shown and threshold of the clear-centre rule.
    """
    from mnistnd.embedding import clear_centres

    dims, percentiles = _sweep_keys(sweep, dims, percentiles)
    fig, axes = plt.subplots(len(percentiles), len(dims),
                             figsize=(2.3 * len(dims), 2.0 * len(percentiles)), squeeze=False)
    for i, p in enumerate(percentiles):
        for j, d in enumerate(dims):
            ax = axes[i, j]
            rho, delta, _ = sweep[(d, p)]
            g = np.sort(np.asarray(rho) * np.asarray(delta))[::-1][:top]
            k = clear_centres(rho, delta, top=top, min_ratio=min_ratio)
            ranks = np.arange(1, g.size + 1)
            ax.plot(ranks, g, "o", ms=3, color="0.35")
            ax.plot(ranks[:k], g[:k], "o", ms=4, color="C3")
            if k:
                ax.axvline(k + 0.5, color="C3", ls=":", lw=1)
            ax.set_yscale("log")
            ax.yaxis.set_minor_formatter(NullFormatter())
            ax.set_title(f"d = {d}, p = {p:g}% ({k})", fontsize=9)
            ax.set_xlabel("rank", fontsize=8)
            ax.set_ylabel("γ = ρ·δ", fontsize=8)
            ax.tick_params(which="both", labelsize=7)
    fig.tight_layout()
    return fig
