"""Figures of the clustering-benchmark chapter (paper 000, Fig 3A-C, App C Fig 5) and App B."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mnistnd.plotting import DIGIT_COLORS

__all__ = ["cluster_counts", "contingency_heatmap", "fig3", "metric_panels", "score_vs_dim"]

_TITLES = {
    "truth": "ARI with ground truth (performance)",
    "stability": "ARI across seeds (stability)",
    "bootstrap": "ARI across bootstrap subsets (robustness)",
}


def _method_style(methods) -> dict:
    """Give each method a fixed colour; dashed lines for methods beyond the paper."""
    from mnistnd.clustering import METHODS

    style = {}
    for i, m in enumerate(methods):
        extra = m in METHODS and not METHODS[m].in_paper
        style[m] = {
            "color": DIGIT_COLORS[i % len(DIGIT_COLORS)],
            "linestyle": "--" if extra else "-",
            "label": f"{m} (beyond paper)" if extra else m,
        }
    return style


def score_vs_dim(
    table: pd.DataFrame,
    experiment: str = "truth",
    metric: str = "ARI",
    *,
    ax=None,
    title: str | None = None,
):
    """Mean ± sd of one score over seeds (or pairs) per method, against the latent dimension.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`mnistnd.clustering.benchmark`.
    experiment, metric : str
        Which rows to plot.
    ax : matplotlib.axes.Axes, optional
        Draw into this axes (else a new figure).
    title : str, optional
        Axes title (default: a description of the experiment).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from mnistnd.clustering import summarize

    summary = summarize(table, experiment, metric)
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.0, 3.6))
    else:
        fig = ax.figure
    methods = list(dict.fromkeys(table["method"]))
    style = _method_style(methods)
    for m in methods:
        s = summary[summary["method"] == m].sort_values("dim")
        if s.empty:
            continue
        sd = s["sd"].fillna(0.0).to_numpy()
        ax.errorbar(s["dim"], s["mean"], yerr=sd, marker="o", ms=4, capsize=3, **style[m])
    dims = sorted(summary["dim"].unique())
    ax.set_xscale("log", base=2)
    ax.set_xticks(dims, [str(d) for d in dims])
    ax.minorticks_off()
    ax.set_xlabel("latent dimension d")
    ax.set_ylabel(f"{metric} (mean ± sd)")
    ax.set_title(title or (_TITLES[experiment] if metric == "ARI" else f"{metric} with truth"))
    ax.legend(loc="best")
    return fig


def fig3(table: pd.DataFrame):
    """Paper 000, Fig 3: (A) ARI with truth, (B) across seeds, (C) across bootstrap subsets.

    Panels whose experiment is absent from ``table`` are left out.
    """
    present = [e for e in ("truth", "stability", "bootstrap") if e in set(table["experiment"])]
    fig, axes = plt.subplots(1, len(present), figsize=(4.6 * len(present), 3.8), squeeze=False)
    for letter, exp, ax in zip("ABC", present, axes[0], strict=False):
        score_vs_dim(table, exp, "ARI", ax=ax, title=f"{letter}: {_TITLES[exp]}")
        if ax is not axes[0][0]:
            ax.get_legend().remove()
    fig.tight_layout()
    return fig


def metric_panels(table: pd.DataFrame, metrics=("FMI", "homogeneity", "completeness", "NMI")):
    """Paper 000, App C Fig 5: other scores against the truth, one panel each."""
    n = len(metrics)
    cols = 2 if n > 1 else 1
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.8 * cols, 3.5 * rows), squeeze=False)
    for i, (letter, metric) in enumerate(zip("ABCDEFGH", metrics, strict=False)):
        ax = axes.flat[i]
        score_vs_dim(table, "truth", metric, ax=ax, title=f"{letter}: {metric}")
        if i:
            ax.get_legend().remove()
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def cluster_counts(table: pd.DataFrame, methods=None, *, expected: int | None = 10):
    """Plot the clusters found (mean ± sd over seeds) per dimension.

    ``methods=None`` shows the methods that choose the number of clusters (Leiden, HDBSCAN).
    """
    from mnistnd.clustering import METHODS

    sub = table[(table["experiment"] == "truth") & (table["metric"] == "ARI")]
    everything = list(dict.fromkeys(sub["method"]))
    style = _method_style(everything)
    if methods is None:  # by default the methods that choose the number of clusters themselves
        methods = [m for m in everything if m in METHODS and not METHODS[m].uses_n_clusters]
        methods = methods or everything
    methods = list(methods)
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    for m in methods:
        s = sub[sub["method"] == m].groupby("dim")["n_clusters_found"].agg(["mean", "std"])
        if s.empty:
            continue
        ax.errorbar(s.index, s["mean"], yerr=s["std"].fillna(0), marker="o", capsize=3, **style[m])
    if expected is not None:
        ax.axhline(expected, color="grey", lw=1, ls=":", label=f"{expected} digits")
    dims = sorted(sub["dim"].unique())
    ax.set_xscale("log", base=2)
    ax.set_xticks(dims, [str(d) for d in dims])
    ax.minorticks_off()
    ax.set_xlabel("latent dimension d")
    ax.set_ylabel("clusters found")
    ax.set_title("Number of clusters found")
    ax.legend(loc="best")
    return fig


def contingency_heatmap(table, row_name: str = "partition X", col_name: str = "partition Y"):
    """Contingency table ``n_ij`` as an annotated heat map (App B worked example)."""
    table = np.asarray(table)
    fig, ax = plt.subplots(figsize=(0.6 * table.shape[1] + 2.2, 0.5 * table.shape[0] + 1.6))
    im = ax.imshow(table, cmap="Blues")
    for (i, j), v in np.ndenumerate(table):
        ax.text(
            j,
            i,
            str(v),
            ha="center",
            va="center",
            color="white" if v > table.max() / 2 else "black",
        )
    ax.set_xticks(range(table.shape[1]))
    ax.set_yticks(range(table.shape[0]))
    ax.set_xlabel(f"cluster j of {col_name}")
    ax.set_ylabel(f"cluster i of {row_name}")
    ax.grid(False)
    fig.colorbar(im, ax=ax, label="points $n_{ij}$")
    ax.set_title("Contingency table")
    return fig
