"""Figures and tables of the chapter "The data" (MNIST as loaded by :mod:`mnistnd.data`).

Each figure function returns the :class:`matplotlib.figure.Figure` it drew, with labelled axes;
the table functions return :class:`pandas.DataFrame` objects shown beside the figures.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mnistnd._checks import check_int, check_labels, check_matrix
from mnistnd.plotting import DIGIT_COLORS

__all__ = [
    "class_count_table",
    "class_counts",
    "digit_grid",
    "intensity_histogram",
    "mean_images",
    "pixel_summary",
]

N_DIGITS = 10
SIDE = 28
#: Images per digit (0-9) in the canonical MNIST files: the numbers a full-data build must match.
MNIST_COUNTS = {
    "train": (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    "test": (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
}


def _images(name: str, X) -> np.ndarray:
    X = check_matrix(name, X, dtype=np.float32)
    if X.shape[1] != SIDE * SIDE:
        raise ValueError(f"{name} must have {SIDE * SIDE} columns (28x28 pixels), got {X.shape[1]}")
    return X


def _digits(name: str, y, n_samples: int) -> np.ndarray:
    """Labels checked as digits 0-9 (anything else would be dropped or miscounted)."""
    y = check_labels(name, y, n_samples)
    if y.size and (y.min() < 0 or y.max() >= N_DIGITS):
        raise ValueError(f"{name} must hold digit labels 0-9, got range [{y.min()}, {y.max()}]")
    return y


def _split_dict(name: str, splits: dict) -> dict:
    if not isinstance(splits, dict) or not splits:
        raise TypeError(f"{name} must be a non-empty dict {{split_name: (X, y)}}")
    out = {}
    for split, pair in splits.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"{name}[{split!r}] must be a pair (X, y)")
        X = _images(f"{name}[{split!r}] X", pair[0])
        out[split] = (X, _digits(f"{name}[{split!r}] y", pair[1], X.shape[0]))
    return out


def digit_grid(X, y, n_per_digit: int = 8, *, seed: int = 0, title: str | None = None) -> Figure:
    """Draw ``n_per_digit`` randomly chosen images of each digit, one row per digit.

    Parameters
    ----------
    X
        Images, ``(n_samples, 784)`` with values in ``[0, 1]``.
    y
        Digit labels ``(n_samples,)``.
    n_per_digit
        Images per row (at most the size of the rarest digit).
    seed
        Seed of the random choice of images.
    title
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        A 10 x ``n_per_digit`` grid; rows are labelled by digit, columns by sample number.
    """
    X = _images("X", X)
    y = _digits("y", y, X.shape[0])
    n_per_digit = check_int("n_per_digit", n_per_digit, minimum=1, maximum=50)
    seed = check_int("seed", seed, minimum=0)
    counts = np.bincount(y, minlength=N_DIGITS)
    if counts.size != N_DIGITS or counts.min() < n_per_digit:
        raise ValueError(
            f"n_per_digit={n_per_digit} exceeds the images of the rarest digit ({counts.min()})"
        )
    rng = np.random.default_rng(seed)
    size = 0.62
    fig = Figure(figsize=(max(3.0, size * n_per_digit + 0.8), size * N_DIGITS + 0.6))
    axes = fig.subplots(N_DIGITS, n_per_digit, squeeze=False)
    for digit in range(N_DIGITS):
        chosen = np.sort(rng.choice(np.flatnonzero(y == digit), n_per_digit, replace=False))
        for col, idx in enumerate(chosen):
            ax = axes[digit, col]
            ax.imshow(X[idx].reshape(SIDE, SIDE), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            for spine in ax.spines.values():
                spine.set_visible(False)
            if col == 0:
                ax.set_ylabel(str(digit), rotation=0, labelpad=10, va="center",
                              color=DIGIT_COLORS[digit], fontweight="bold")
            if digit == N_DIGITS - 1:
                ax.set_xlabel(str(col + 1), fontsize=8)
    fig.supylabel("digit (label)")
    fig.supxlabel("random sample")
    if title:
        fig.suptitle(title)
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return fig


def class_count_table(splits: dict, canonical: bool = False) -> pd.DataFrame:
    """Count images per digit for each split.

    Parameters
    ----------
    splits
        ``{split_name: (X, y)}``.
    canonical
        Add, for the splits ``"train"`` and ``"test"``, a column with the counts of the canonical
        MNIST files (:data:`MNIST_COUNTS`) to compare with.

    Returns
    -------
    pandas.DataFrame
        Index ``digit`` 0-9 plus a ``total`` row; per split a count column, a share column
        (percent of the split) and, with ``canonical``, a ``<split> canonical`` column.
    """
    splits = _split_dict("splits", splits)
    table = {}
    for split, (_, y) in splits.items():
        counts = np.bincount(y, minlength=N_DIGITS)
        table[f"{split} images"] = np.append(counts, counts.sum())
        table[f"{split} %"] = np.round(np.append(100 * counts / counts.sum(), 100.0), 2)
        if canonical and split in MNIST_COUNTS:
            reference = np.asarray(MNIST_COUNTS[split])
            table[f"{split} canonical"] = np.append(reference, reference.sum())
    index = pd.Index([*map(str, range(N_DIGITS)), "total"], name="digit")
    return pd.DataFrame(table, index=index)


def class_counts(splits: dict) -> Figure:
    """Bar chart of the number of images per digit, one group of bars per split.

    Parameters
    ----------
    splits
        ``{split_name: (X, y)}``.

    Returns
    -------
    matplotlib.figure.Figure
        Share of each digit in each split (percent), so that splits of different sizes compare.
    """
    table = class_count_table(splits)
    names = [c[: -len(" %")] for c in table.columns if c.endswith(" %")]
    fig = Figure(figsize=(6.4, 3.4))
    ax = fig.subplots()
    width = 0.8 / len(names)
    x = np.arange(N_DIGITS)
    for i, split in enumerate(names):
        ax.bar(x + (i - (len(names) - 1) / 2) * width, table[f"{split} %"].iloc[:N_DIGITS],
               width=width, label=f"{split} (n={int(table[f'{split} images'].iloc[-1]):,})",
               color=DIGIT_COLORS[i], alpha=0.85)
    ax.axhline(100 / N_DIGITS, color="0.3", lw=1, ls="--", label="uniform (10%)")
    ax.set_xticks(x)
    ax.set_xlabel("digit")
    ax.set_ylabel("share of the split's images (%)")
    ax.set_ylim(0, table[[f"{s} %" for s in names]].iloc[:N_DIGITS].to_numpy().max() * 1.35)
    ax.legend(loc="upper center", ncols=len(names) + 1)
    fig.tight_layout()
    return fig


def mean_images(X, y) -> Figure:
    """Mean image of each digit and of all digits (pixel intensity averaged over images).

    Parameters
    ----------
    X
        Images, ``(n_samples, 784)`` in ``[0, 1]``.
    y
        Digit labels.

    Returns
    -------
    matplotlib.figure.Figure
        Eleven panels on a shared colour scale, with a colour bar labelled "mean intensity".
    """
    X = _images("X", X)
    y = _digits("y", y, X.shape[0])
    means = [X[y == d].mean(axis=0) if np.any(y == d) else np.zeros(SIDE * SIDE)
             for d in range(N_DIGITS)]
    means.append(X.mean(axis=0))
    vmax = float(max(m.max() for m in means))
    n_cols = 6
    fig = Figure(figsize=(8.0, 3.6))
    axes = fig.subplots(2, n_cols).ravel()
    for i, (ax, image) in enumerate(zip(axes, means, strict=False)):
        shown = ax.imshow(image.reshape(SIDE, SIDE), cmap="magma", vmin=0, vmax=vmax)
        ax.set_title(f"digit {i}" if i < N_DIGITS else "all digits", fontsize=9)
        ax.set_xticks([0, SIDE - 1])
        ax.set_yticks([0, SIDE - 1])
        ax.tick_params(labelsize=7, length=2)
        ax.grid(False)
        if i >= n_cols or i + n_cols >= len(means):
            ax.set_xlabel("x (pixel)", fontsize=8)
        if i % n_cols == 0:
            ax.set_ylabel("y (pixel)", fontsize=8)
    for ax in axes[len(means):]:
        ax.set_visible(False)
    bar = fig.colorbar(shown, ax=list(axes), fraction=0.025, pad=0.02)
    bar.set_label("mean intensity", fontsize=9)
    return fig


def pixel_summary(splits: dict) -> pd.DataFrame:
    """Pixel statistics per split.

    Parameters
    ----------
    splits
        ``{split_name: (X, y)}``.

    Returns
    -------
    pandas.DataFrame
        One column per split, one row per statistic: images, mean and standard deviation of the
        intensity, fraction of pixels that are exactly 0 and exactly 1, mean number of non-zero
        pixels per image, and the fraction of the 784 pixel positions that are 0 in every image
        of the split.
    """
    splits = _split_dict("splits", splits)
    rows = {}
    for split, (X, _) in splits.items():
        nonzero = X > 0
        rows[split] = {
            "images": X.shape[0],
            "mean intensity": float(X.mean(dtype=np.float64)),
            "std intensity": float(X.std(dtype=np.float64)),
            "fraction of zero pixels": float(1 - nonzero.mean()),
            "fraction of saturated pixels (=1)": float((X >= 1).mean()),
            "non-zero pixels per image": float(nonzero.sum(axis=1).mean()),
            "always-zero pixel positions": float((~nonzero.any(axis=0)).mean()),
        }
    return pd.DataFrame(rows).rename_axis("statistic")


def intensity_histogram(splits: dict, n_bins: int = 50) -> Figure:
    """Histogram of pixel intensities per split, with the zero pixels shown separately.

    Parameters
    ----------
    splits
        ``{split_name: (X, y)}``.
    n_bins
        Bins over ``(0, 1]``.

    Returns
    -------
    matplotlib.figure.Figure
        Left: share of zero vs non-zero pixels. Right: density of the non-zero intensities
        (log scale), one line per split.
    """
    splits = _split_dict("splits", splits)
    n_bins = check_int("n_bins", n_bins, minimum=2, maximum=256)
    fig = Figure(figsize=(8.5, 3.2))
    ax_zero, ax_hist = fig.subplots(1, 2, width_ratios=[1, 3])
    edges = np.linspace(0, 1, n_bins + 1)
    width = 0.8 / len(splits)
    for i, (split, (X, _)) in enumerate(splits.items()):
        values = X.ravel()
        zero = float(np.mean(values == 0))
        color = DIGIT_COLORS[i]
        ax_zero.bar(np.array([0, 1]) + (i - (len(splits) - 1) / 2) * width, [zero, 1 - zero],
                    width=width, color=color, alpha=0.85, label=split)
        counts, _ = np.histogram(values[values > 0], bins=edges, density=True)
        ax_hist.step(edges[:-1], counts, where="post", color=color, label=split)
    ax_zero.set_xticks([0, 1], ["= 0", "> 0"])
    ax_zero.set_xlabel("pixel intensity")
    ax_zero.set_ylabel("fraction of pixels")
    ax_zero.set_ylim(0, 1)
    ax_hist.set_yscale("log")
    ax_hist.set_xlabel("pixel intensity (non-zero pixels)")
    ax_hist.set_ylabel("density")
    ax_hist.legend(loc="upper center")
    fig.tight_layout()
    return fig
