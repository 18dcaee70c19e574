"""Figures of the appendix on cluster validity indices (MNIST-Nd App. D, Table 1)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from mnistnd.plotting import DIGIT_COLORS

__all__ = ["toy_partitions", "toy_figure", "table1_figure"]

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


def toy_partitions(n_per: int = 150, seed: int = 0) -> tuple[np.ndarray, dict]:
    """Make a 2-D toy set (two interleaved moons and a blob) and three partitions of it.

    Parameters
    ----------
    n_per : int, default 150
        Points per group.
    seed : int, default 0
        Seed of the noise and of k-means.

    Returns
    -------
    X : numpy.ndarray of shape (3 * n_per, 2)
    partitions : dict of str to numpy.ndarray
        ``"true shapes"`` (moons and blob), ``"k-means"`` (3 ball-shaped cells that cut the
        moons) and ``"random"`` (labels shuffled).
    """
    from sklearn.cluster import KMeans
    from sklearn.datasets import make_moons

    rng = np.random.default_rng(seed)
    Xm, ym = make_moons(2 * n_per, noise=0.07, random_state=seed)
    blob = rng.normal([2.6, 1.4], 0.18, size=(n_per, 2))
    X = np.concatenate([Xm, blob])
    truth = np.concatenate([ym, np.full(n_per, 2)])
    km = KMeans(3, n_init=10, random_state=seed).fit_predict(X)
    return X, {"true shapes": truth, "k-means": km, "random": rng.permutation(truth)}


def toy_figure(X, partitions: dict, disco_points: dict, scores) -> plt.Figure:
    """Per-point DISCO maps of each partition and the four indices side by side.

    Parameters
    ----------
    X : numpy.ndarray of shape (n, 2)
        Toy data.
    partitions : dict of str to numpy.ndarray
        Labels of each partition (marker = cluster).
    disco_points : dict of str to numpy.ndarray
        Per-point DISCO scores of each partition (colour).
    scores : pandas.DataFrame
        Index values, one row per partition (index: partition name), columns DISCO, DBCV, DCSI,
        S_Dbw.

    Returns
    -------
    matplotlib.figure.Figure
    """
    names = list(partitions)
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(4.0 * (len(names) + 1), 3.8))
    sc = None
    for ax, name in zip(axes, names, strict=False):
        labels = partitions[name]
        for k, lab in enumerate(np.unique(labels)):
            sel = labels == lab
            sc = ax.scatter(X[sel, 0], X[sel, 1], c=disco_points[name][sel], cmap="RdBu",
                            vmin=-1, vmax=1, s=14, marker=_MARKERS[k % len(_MARKERS)],
                            edgecolors="none")
        ax.set_title(f"{name}: DISCO {np.mean(disco_points[name]):.2f}")
        ax.set_xlabel("x1")
        ax.set_ylabel("x2")
        ax.set_aspect("equal", adjustable="datalim")
    fig.colorbar(sc, ax=axes[: len(names)], shrink=0.8, label="per-point DISCO score")
    ax = axes[-1]
    cols = ["DISCO", "DBCV", "DCSI", "S_Dbw"]
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        vals = [scores.loc[name, c] for c in cols]
        ax.bar(np.arange(len(cols)) + (i - (len(names) - 1) / 2) * width, vals, width,
               label=name, color=DIGIT_COLORS[i])
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(np.arange(len(cols)), ["DISCO ↑", "DBCV ↑", "DCSI ↑", "S_Dbw ↓"])
    ax.set_ylabel("index value")
    ax.set_title("indices per partition")
    ax.legend()
    return fig


def table1_figure(table) -> plt.Figure:
    """Our Table 1 against the paper's, one panel per index, value against latent dimension.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`mnistnd.validity.indices_table` (columns ``d``, ``<index>``,
        ``<index> paper``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    cols = ["DISCO", "DBCV", "DCSI", "S_Dbw"]
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.3))
    d = table["d"].to_numpy()
    for ax, c in zip(axes, cols, strict=True):
        ours = table[c].astype(float).to_numpy()
        ax.plot(d, ours, "o-", label="ours", color=DIGIT_COLORS[0])
        paper = table[f"{c} paper"].astype(float).to_numpy()
        ax.plot(d, paper, "s--", label="paper", color=DIGIT_COLORS[1])
        ax.set_xscale("log", base=2)
        ax.set_xticks(d, [str(v) for v in d])
        ax.set_xlabel("latent dimension d")
        ax.set_ylabel(c + (" (lower is better)" if c == "S_Dbw" else ""))
        ax.set_title(c)
    axes[0].legend()
    fig.tight_layout()
    return fig
