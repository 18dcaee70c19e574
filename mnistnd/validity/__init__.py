"""Cluster validity indices (DISCO, DBCV, DCSI, S_Dbw) and density peaks.

Every index is a pure function ``f(X, labels, ...) -> float`` that follows its paper; the
docstrings state each definition, the parameters and how noise (label ``-1``) and degenerate
inputs are handled. DBCV and DCSI have several published implementations that give different
values; each is an option of :func:`dbcv` / :func:`dcsi`, and :func:`index_variants` computes
them all. One module per index; :mod:`mnistnd.validity._graph` holds the shared distance,
neighbour and tree helpers (scipy / scikit-learn).

References: Beer et al. 2024 (DISCO); Moulavi et al., SDM 2014 (DBCV); Gauss, Scheipl &
Herrmann 2023, arXiv:2310.12806 (DCSI); Halkidi & Vazirgiannis, ICDM 2001, and Tong & Tan 2009
(S_Dbw); Rodriguez & Laio, Science 2014 (density peaks). Each module names the public
implementations it reproduces.
"""

from mnistnd.validity.dbcv import dbcv
from mnistnd.validity.dcsi import dcsi
from mnistnd.validity.density_peaks import density_peaks, density_peaks_multi
from mnistnd.validity.disco import disco, disco_samples
from mnistnd.validity.s_dbw import s_dbw
from mnistnd.validity.table import (
    INDEX_VARIANTS,
    TABLE1_INDICES,
    index_variants,
    indices_table,
    score_all,
)

__all__ = [
    "INDEX_VARIANTS",
    "TABLE1_INDICES",
    "dbcv",
    "dcsi",
    "density_peaks",
    "density_peaks_multi",
    "disco",
    "disco_samples",
    "index_variants",
    "indices_table",
    "s_dbw",
    "score_all",
]
