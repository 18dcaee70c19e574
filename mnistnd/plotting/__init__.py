"""Figures of the compendium: one function per paper figure, one submodule per chapter.

Call :func:`set_style` once at the top of a chapter; no notebook sets rcParams itself.
Submodules (``mnistnd.plotting.data``, ``mnistnd.plotting.mvae`` ...) hold the figure functions;
each returns the :class:`matplotlib.figure.Figure` it drew, with labelled axes.
"""

from __future__ import annotations

import importlib

import matplotlib as mpl

#: Ten distinguishable colours for digits and clusters (tab10), shared by all chapters.
DIGIT_COLORS = tuple(mpl.colormaps["tab10"].colors)

_STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "figure.figsize": (6.4, 4.0),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "image.cmap": "viridis",
}


def set_style() -> None:
    """Apply the compendium's matplotlib style (idempotent)."""
    mpl.rcParams.update(_STYLE)


def __getattr__(name):
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as err:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from err
