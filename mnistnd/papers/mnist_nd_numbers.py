"""The MNIST-Nd paper's reported numbers, and the tolerances with which we read them.

Every constant under "the paper's numbers" is what the paper reports, with the figure or table
it comes from, never one of ours. The tolerances below them are ours: how close a value must be
to an approximate one, or what a qualitative statement ("similar", "around zero") is taken to
mean. :mod:`mnistnd.papers.mnist_nd` re-exports them all.
"""

from __future__ import annotations

import pandas as pd

# --------------------------------------------------------------------------------------------
# The paper's numbers
# --------------------------------------------------------------------------------------------
#: The m-VAE of latent dimension d is trained with ``beta = BETA_SCALE / d`` (§2: "inversely
#: proportional to the dimensionality"; the factor is that of the authors' code).
BETA_SCALE = 8.0
#: Components of the m-VAE's mixture prior (§2), as many as there are digits: also the number of
#: density modes the decision graphs are compared with (Fig. 2B-C, App. E).
N_COMPONENTS = 10
#: MNIST test images encoded into each MNIST-Nd dataset (§2).
N_TEST = 10_000
#: Cross-validated random-forest accuracy, "~90%" at every dimension (§2, Fig. 1D).
RF_ACCURACY = 0.90
#: Table 1 (App. D): validity index -> {latent dimension: value} for the digit labels.
TABLE1 = {
    "DISCO": {2: -0.05, 4: -0.10, 8: -0.02, 16: -0.01, 32: -0.02, 64: -0.02},
    "DBCV": {2: -1.0, 4: -0.92, 8: -0.77, 16: -0.65, 32: -0.63, 64: -0.56},
    "DCSI": {2: 0.16, 4: 0.35, 8: 0.48, 16: 0.46, 32: 0.46, 64: 0.44},
    "S_Dbw": {2: 0.87, 4: 0.78, 8: 0.68, 16: 0.81, 32: 0.86, 64: 0.88},
}

# --------------------------------------------------------------------------------------------
# Our tolerances for the paper's approximate and qualitative statements
# --------------------------------------------------------------------------------------------
#: "Similar across dimensions" (Fig. 1B): largest over smallest total/KL ratio at most this.
RATIO_SPREAD = 2.0
#: Largest accepted distance to :data:`RF_ACCURACY` at any dimension (read off a figure).
RF_TOLERANCE = 0.05
#: Largest accepted distance of a mean DISCO score to its value in :data:`TABLE1`.
DISCO_TOLERANCE = 0.05
#: Upper edge of "around zero" for a DISCO score (§2: "the majority of points ... are scored
#: around zero or below").
DISCO_NEAR_ZERO = 0.1
#: Largest latent dimension read as low: the paper calls d = 2 and 4 "too shallow" (Fig. 4C) and
#: contrasts them with "the 8-64 dimensional embeddings" (App. D).
LOW_D_MAX = 4


def low_high(table: pd.DataFrame, column: str, dim: str = "latent_dim"):
    """``column`` at the low (``dim <= LOW_D_MAX``) and at the high dimensions, NaN dropped.

    Returns
    -------
    low, high : pandas.Series of float
    """
    values = table[[dim, column]].dropna()
    low = values[dim] <= LOW_D_MAX
    return values.loc[low, column].astype(float), values.loc[~low, column].astype(float)
