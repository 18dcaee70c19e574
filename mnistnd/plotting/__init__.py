"""Figures of the compendium: one function per paper figure, one submodule per chapter.

Call :func:`set_style` once at the top of a chapter: it applies the compendium's one seaborn
theme (:data:`THEME`); no notebook and no figure function sets rcParams or a theme itself.
Submodules (``mnistnd.plotting.data``, ``mnistnd.plotting.mvae`` ...) hold the figure functions;
each returns the :class:`matplotlib.figure.Figure` it drew, with labelled axes. Statistical
figures are drawn by seaborn from long-form (tidy) tables: :func:`long_history` turns training
histories into one and :func:`history_lines` draws it; :func:`heatmap` draws every annotated
matrix.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

#: Ten distinguishable colours for digits and clusters (tab10), shared by all chapters.
DIGIT_COLORS = tuple(mpl.colormaps["tab10"].colors)

#: The one theme of the book (arguments of :func:`seaborn.set_theme`). The palette is tab10 so
#: that seaborn's default colours are the :data:`DIGIT_COLORS` used for digits and clusters.
THEME = {
    "context": "notebook",
    "style": "whitegrid",
    "palette": "tab10",
    "font_scale": 0.85,
    "rc": {
        "figure.dpi": 100,
        "savefig.dpi": 150,
        "figure.figsize": (6.4, 4.0),
        "axes.spines.top": False,
        "axes.spines.right": False,
        "grid.alpha": 0.5,
        "legend.frameon": False,
        "image.cmap": "viridis",
    },
}


def set_style() -> None:
    """Apply the compendium's seaborn theme :data:`THEME` (idempotent)."""
    sns.set_theme(**THEME)


def panels(n: int, ncols: int, size: tuple[float, float]):
    """Make a figure with ``n`` axes on a grid of at most ``ncols`` columns; spare axes hidden.

    Parameters
    ----------
    n : int
        Number of panels drawn.
    ncols : int
        Most panels per row.
    size : (float, float)
        Width and height of one panel in inches.

    Returns
    -------
    fig : matplotlib.figure.Figure
    axes : list of matplotlib.axes.Axes
        The ``n`` visible axes, row by row.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1 panel, got {n}")
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, grid = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows),
                             squeeze=False)
    for ax in grid.flat[n:]:
        ax.set_visible(False)
    return fig, list(grid.flat[:n])


def long_history(
    histories: Mapping,
    keys: str | tuple[str, ...],
    columns: Mapping[str, str],
    *,
    var_name: str = "term",
    epoch_offset: int = 0,
) -> pd.DataFrame:
    """Stack training histories into one long-form table (one row per run, epoch and term).

    Parameters
    ----------
    histories : mapping
        Run key -> history DataFrame with an ``epoch`` column (e.g. ``{d: history}`` or
        ``{(model, seed): history}``).
    keys : str or tuple of str
        Column name(s) the run key is written to (a tuple key needs a tuple of names).
    columns : mapping
        History column -> the name of the term in the output; columns a history lacks are
        skipped for that history.
    var_name : str
        Name of the output column holding the term.
    epoch_offset : int
        Added to ``epoch`` (1 numbers the first epoch 1).

    Returns
    -------
    pandas.DataFrame
        Columns ``*keys``, ``epoch``, ``var_name``, ``value``; terms in the order of ``columns``.
    """
    keys = (keys,) if isinstance(keys, str) else tuple(keys)
    parts = []
    for key, hist in histories.items():
        key = key if isinstance(key, tuple) else (key,)
        if len(key) != len(keys):
            raise ValueError(f"keys names {len(keys)} column(s) but history key {key!r} has "
                             f"{len(key)} part(s)")
        present = [c for c in columns if c in hist]
        part = hist[["epoch", *present]].melt(id_vars="epoch", var_name=var_name)
        part[var_name] = part[var_name].map(columns)
        parts.append(part.assign(**dict(zip(keys, key, strict=True))))
    if not parts:
        raise ValueError("histories is empty: there is no run to plot")
    out = pd.concat(parts, ignore_index=True)
    out["epoch"] = out["epoch"] + epoch_offset
    out[var_name] = pd.Categorical(out[var_name], categories=list(dict.fromkeys(
        columns.values())))
    return out[[*keys, "epoch", var_name, "value"]]


def epoch_axis(ax) -> None:
    """Label the x axis "epoch" and tick it at whole epochs only."""
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def history_lines(data: pd.DataFrame, ax, *, hue: str, **kwargs):
    """Draw one line per ``hue`` level of a :func:`long_history` table against the epoch.

    Small dots mark the epochs, so that a run of a single epoch still shows. ``kwargs`` go to
    :func:`seaborn.lineplot` (``hue_order``, ``palette``, ``legend``...).
    """
    kwargs = {"marker": "o", "markersize": 3, "markeredgewidth": 0, **kwargs}
    sns.lineplot(data=data, x="epoch", y="value", hue=hue, ax=ax, **kwargs)
    epoch_axis(ax)
    return ax


def heatmap(frame: pd.DataFrame, ax, *, annot=True, fmt: str = ".2f",
            cbar_label: str | None = None, **kwargs):
    """Annotated heat map of a matrix (rows: index, columns: columns) with square cells.

    Parameters
    ----------
    frame : pandas.DataFrame
        The values drawn; its index and columns label the ticks. NaN cells stay blank.
    ax : matplotlib.axes.Axes
        Axes drawn into.
    annot : bool or array-like
        ``True`` writes each value with ``fmt``; an array of strings (then pass ``fmt=""``)
        writes those texts instead (an empty string writes nothing).
    fmt : str
        Format of the values written.
    cbar_label : str, optional
        Label of the colour bar; ``None`` draws no colour bar.
    **kwargs
        Passed to :func:`seaborn.heatmap` (``cmap``, ``vmin``, ``vmax``, ``annot_kws``,
        ``square`` (default ``True``)...).

    Returns
    -------
    matplotlib.axes.Axes
    """
    frame = pd.DataFrame(frame)
    if isinstance(annot, np.ndarray | list) and np.shape(annot) != frame.shape:
        raise ValueError(f"annot must have the shape of frame {frame.shape}, "
                         f"got {np.shape(annot)}")
    kwargs.setdefault("square", True)
    sns.heatmap(frame.astype(float), ax=ax, annot=annot, fmt=fmt,
                cbar=cbar_label is not None,
                cbar_kws={"label": cbar_label} if cbar_label is not None else None, **kwargs)
    ax.tick_params(axis="y", rotation=0)
    return ax


def __getattr__(name):
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as err:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from err
