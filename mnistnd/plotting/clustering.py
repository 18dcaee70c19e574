"""Figures of the clustering-benchmark chapter (MNIST-Nd paper, Fig 3A-C, App C Fig 5) and App B.

The curves are drawn by :func:`seaborn.lineplot` straight from the tidy table of
:func:`mnistnd.clustering.benchmark` (one row per fit or pair of fits): the point is the mean of
the rows of a method and dimension and the error bar their standard deviation (``ddof=1``, as
:func:`mnistnd.clustering.summarize` reports).
"""

from __future__ import annotations

import pandas as pd
import seaborn as sns

from mnistnd.plotting import DIGIT_COLORS, heatmap, panels

__all__ = ["cluster_counts", "contingency_heatmap", "fig3", "metric_panels", "score_vs_dim"]

_TITLES = {
    "truth": "ARI with ground truth (performance)",
    "stability": "ARI across seeds (stability)",
    "bootstrap": "ARI across bootstrap subsets (robustness)",
}


def _method_styles(methods) -> pd.DataFrame:
    """Legend label, colour and dash pattern of each method (dashed: beyond the paper).

    Colours follow the order of ``methods``, so one method keeps its colour in every panel.
    """
    from mnistnd.clustering import METHODS

    rows = []
    for i, m in enumerate(methods):
        extra = m in METHODS and not METHODS[m].in_paper
        rows.append({"method": m, "label": f"{m} (beyond paper)" if extra else m,
                     "color": DIGIT_COLORS[i % len(DIGIT_COLORS)],
                     "dashes": (4, 2) if extra else ""})
    return pd.DataFrame(rows).set_index("method")


def _lines_vs_dim(rows: pd.DataFrame, y: str, styles: pd.DataFrame, ax, ylabel: str):
    """Mean ± sd of column ``y`` over the rows of each method and dimension, log2 x axis."""
    shown = styles.loc[[m for m in styles.index if m in set(rows["method"])]]
    data = rows.assign(method=rows["method"].map(styles["label"]))
    order = list(shown["label"])
    sns.lineplot(data=data, x="dim", y=y, hue="method", style="method", hue_order=order,
                 style_order=order, palette=dict(zip(order, shown["color"], strict=True)),
                 dashes=dict(zip(order, shown["dashes"], strict=True)), marker="o",
                 markersize=5, errorbar="sd", err_style="bars", err_kws={"capsize": 3}, ax=ax)
    dims = sorted(rows["dim"].unique())
    ax.set_xscale("log", base=2)
    ax.set_xticks(dims, [str(d) for d in dims])
    ax.minorticks_off()
    ax.set_xlabel("latent dimension d")
    ax.set_ylabel(ylabel)
    return ax


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
    rows = table[(table["experiment"] == experiment) & (table["metric"] == metric)]
    if rows.empty:
        raise ValueError(f"table has no rows for experiment={experiment!r}, metric={metric!r}")
    if ax is None:
        fig, (ax,) = panels(1, 1, (5.0, 3.6))
    styles = _method_styles(dict.fromkeys(table["method"]))
    _lines_vs_dim(rows, "value", styles, ax, f"{metric} (mean ± sd)")
    ax.set_title(title or (_TITLES[experiment] if metric == "ARI" else f"{metric} with truth"))
    return ax.figure


def _panel_grid(table: pd.DataFrame, specs, ncols: int, size):
    """One :func:`score_vs_dim` panel per ``(experiment, metric, title)``; legend on the first."""
    fig, axes = panels(len(specs), ncols, size)
    for i, (ax, (experiment, metric, title)) in enumerate(zip(axes, specs, strict=True)):
        score_vs_dim(table, experiment, metric, ax=ax, title=title)
        if i:
            ax.get_legend().remove()
    fig.tight_layout()
    return fig


def fig3(table: pd.DataFrame):
    """MNIST-Nd paper, Fig 3: (A) ARI with truth, (B) across seeds, (C) across bootstrap subsets.

    Panels whose experiment is absent from ``table`` are left out.
    """
    present = [e for e in ("truth", "stability", "bootstrap") if e in set(table["experiment"])]
    specs = [(e, "ARI", f"{letter}: {_TITLES[e]}")
             for letter, e in zip("ABC", present, strict=False)]
    return _panel_grid(table, specs, 3, (4.6, 3.8))


def metric_panels(table: pd.DataFrame, metrics=("FMI", "homogeneity", "completeness", "NMI")):
    """MNIST-Nd paper, App C Fig 5: other scores against the truth, one panel each."""
    specs = [("truth", m, f"{letter}: {m}") for letter, m in zip("ABCDEFGH", metrics,
                                                                  strict=False)]
    return _panel_grid(table, specs, 2, (4.8, 3.5))


def cluster_counts(table: pd.DataFrame, methods=None, *, expected: int | None = 10):
    """Plot the clusters found (mean ± sd over seeds) per dimension.

    ``methods=None`` shows the methods that choose the number of clusters (Leiden, HDBSCAN).
    """
    from mnistnd.clustering import METHODS

    sub = table[(table["experiment"] == "truth") & (table["metric"] == "ARI")]
    everything = list(dict.fromkeys(sub["method"]))
    if methods is None:  # by default the methods that choose the number of clusters themselves
        methods = [m for m in everything if m in METHODS and not METHODS[m].uses_n_clusters]
        methods = methods or everything
    unknown = sorted(set(methods) - set(everything))
    if unknown:
        raise ValueError(f"methods {unknown} are not in table (it has {everything})")
    fig, (ax,) = panels(1, 1, (5.0, 3.4))
    _lines_vs_dim(sub[sub["method"].isin(methods)], "n_clusters_found",
                  _method_styles(everything), ax, "clusters found")
    if expected is not None:
        ax.axhline(expected, color="grey", lw=1, ls=":", label=f"{expected} digits")
        ax.legend(loc="best")
    ax.set_title("Number of clusters found")
    return fig


def contingency_heatmap(table, row_name: str = "partition X", col_name: str = "partition Y"):
    """Contingency table ``n_ij`` as an annotated heat map (App B worked example)."""
    table = pd.DataFrame(table)
    fig, (ax,) = panels(1, 1, (0.6 * table.shape[1] + 2.2, 0.5 * table.shape[0] + 1.6))
    heatmap(table, ax, fmt=".0f", cmap="Blues", cbar_label="points $n_{ij}$")
    ax.set_xlabel(f"cluster j of {col_name}")
    ax.set_ylabel(f"cluster i of {row_name}")
    ax.set_title("Contingency table")
    return fig
