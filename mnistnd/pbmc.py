"""PBMC3k for the autoencoder chapter (paper 004): preprocessing, cell-type labels, evaluation.

The pipeline follows the Seurat tutorial the report used, written with scanpy:

* :func:`preprocess` -- genes seen in >= 3 cells (13,714 genes), cells with
  200 < genes < 2,500 and a mitochondrial share < 5 % (2,638 cells), counts normalised to
  10,000 per cell + ``log1p``, every gene scaled to zero mean and unit variance (clipped at
  10, Seurat's ``ScaleData`` default), as the report fed all genes to its models.
* :func:`annotate` -- our own nine cell types: PCA on the 2,000 most variable genes (Seurat's
  ``vst``, i.e. scanpy's ``seurat_v3`` flavour), a shared-nearest-neighbour graph on 10 PCs
  (Seurat's ``FindNeighbors``), Leiden at the lowest resolution of a fixed grid that yields nine
  clusters, clusters named from canonical marker genes by a one-to-one assignment
  (see :func:`name_clusters`).
* :func:`labelled_cells` -- the data preprocessed for its source and labelled with
  :func:`annotate` (raw counts) or ``bulk_labels`` (bundled sample), never with the optional
  ``pbmc3k_celltypes.csv``; :func:`counts_layout` says where in a data folder the counts are.
* :func:`preprocess_bundled` -- the documented fallback: scanpy's bundled ``pbmc68k_reduced``
  holds log-normalised values only (no counts), so QC and normalisation cannot be redone; its
  values are scaled and its ``bulk_labels`` used as cell types.
* :func:`run_experiment` -- trains the three autoencoders (:mod:`mnistnd.models.autoencoders`)
  with :func:`mnistnd.training.fit` over several seeds, embeds each latent space with t-SNE
  (perplexity 40), clusters with k-means (k = number of cell types) on the 2-D t-SNE (as the
  report did) and on the latent space itself, and scores NMI/ARI/homogeneity/completeness.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ._checks import check_choice, check_float, check_int
from ._io import atomic_write

__all__ = [
    "MARKERS",
    "MODEL_NAMES",
    "PAPER_SCORES",
    "PAPER_TRAINING_MINUTES",
    "PAPER_TYPES_DETECTED",
    "SCORE_NAMES",
    "REFERENCE_COLUMNS",
    "Annotation",
    "ExperimentResult",
    "LabelledCells",
    "annotate",
    "build_model",
    "cell_types",
    "compare_runs",
    "counts_layout",
    "encode",
    "evaluate_embedding",
    "has_counts",
    "kmeans_scores",
    "labelled_cells",
    "model_input",
    "name_clusters",
    "preprocess",
    "preprocess_bundled",
    "reference_agreement",
    "run_experiment",
    "save_results",
    "subsample_cells",
    "types_detected",
    "detection_table",
    "detection_summary",
    "summarise_scores",
    "training_time_table",
    "tsne",
    "vsc_sparsity",
]

#: Canonical marker genes of the nine Seurat-tutorial cell types (names as in
#: ``pbmc3k_celltypes.csv``, column ``seurat_annotations``).
MARKERS: dict[str, tuple[str, ...]] = {
    "Naive CD4 T": ("IL7R", "CCR7"),
    "Memory CD4 T": ("IL7R", "S100A4"),
    "CD14+ Mono": ("CD14", "LYZ"),
    "B": ("MS4A1",),
    "CD8 T": ("CD8A",),
    "FCGR3A+ Mono": ("FCGR3A", "MS4A7"),
    "NK": ("GNLY", "NKG7"),
    "DC": ("FCER1A", "CST3"),
    "Platelet": ("PPBP",),
}

#: The three models of the report, by the names used in result tables.
MODEL_NAMES = ("Autoencoder", "BetaVAE", "BetaVSC")

#: Score names of the report's heatmap (FIG4), in its order.
SCORE_NAMES = ("NMI", "ARI", "HOM", "COM")

#: The report's scores (k-means with k = 9 on the 2-D t-SNE of each latent space, one run),
#: printed in its "Performance assessment" notebook and shown in its FIG4 heatmap.
PAPER_SCORES = pd.DataFrame(
    {
        "NMI": [0.7209, 0.6092, 0.6456],
        "ARI": [0.5798, 0.4404, 0.4653],
        "HOM": [0.7704, 0.6543, 0.6921],
        "COM": [0.6745, 0.5673, 0.6021],
    },
    index=pd.Index(list(MODEL_NAMES), name="model"),
)

#: The report's training times for 200 epochs on a laptop CPU (Intel Core i7, 8th gen), in
#: minutes (low, high): autoencoder 3-5, the variational models 17-25 (VSC "typically over 20").
PAPER_TRAINING_MINUTES = pd.DataFrame(
    {"low": [3.0, 17.0, 20.0], "high": [5.0, 25.0, 25.0]},
    index=pd.Index(list(MODEL_NAMES), name="model"),
)

#: Resolutions tried, in order, by :func:`annotate` (the first giving ``n_clusters`` wins).
RESOLUTION_GRID = tuple(np.round(np.arange(0.05, 3.0001, 0.05), 2).tolist())


# --------------------------------------------------------------------------------------------
# preprocessing


def has_counts(adata) -> bool:
    """Return True when ``adata.X`` holds raw counts (non-negative integers)."""
    import scipy.sparse as sp

    X = adata.X
    values = X.data if sp.issparse(X) else np.asarray(X).ravel()
    if values.size == 0:
        return False
    # a sample suffices to tell counts from normalised or scaled values; all is cheap anyway
    return bool(np.all(values >= 0) and np.all(values == np.round(values)))


def _require_counts(adata, name: str = "adata") -> None:
    if not has_counts(adata):
        raise ValueError(
            f"{name}.X must hold raw UMI counts (non-negative integers), but it holds "
            "normalised or scaled values. Quality control and normalisation need counts; the "
            "bundled pbmc68k_reduced has log-normalised values only: use "
            "mnistnd.pbmc.preprocess_bundled for it."
        )


def _check_anndata(adata, name: str = "adata") -> None:
    import anndata as ad

    if not isinstance(adata, ad.AnnData):
        raise TypeError(f"{name} must be an AnnData, got {type(adata).__name__}")
    if adata.n_obs < 2 or adata.n_vars < 2:
        raise ValueError(f"{name} must have at least 2 cells and 2 genes, got {adata.shape}")


def _rank_genes(adata, layer: str = "counts") -> pd.Series:
    """Seurat-v3 (``vst``) normalised variance of every gene, from raw counts."""
    import scanpy as sc

    try:
        import skmisc  # noqa: F401  (scanpy's seurat_v3 flavour needs its loess)
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "ranking genes like Seurat's vst needs the package scikit-misc "
            "(pip install scikit-misc)"
        ) from err
    try:
        table = sc.pp.highly_variable_genes(
            adata, flavor="seurat_v3", n_top_genes=min(2000, adata.n_vars), layer=layer,
            inplace=False,
        )
        values = np.asarray(table["variances_norm"], dtype=float)
    except ValueError as err:  # loess fails on degenerate (e.g. tiny synthetic) data
        import warnings

        warnings.warn(f"vst gene ranking failed ({err}); ranking genes by their count "
                      "variance-to-mean ratio instead", RuntimeWarning, stacklevel=3)
        X = adata.layers[layer]
        mean = np.asarray(X.mean(axis=0)).ravel()
        sq = np.asarray(X.multiply(X).mean(axis=0)).ravel() if hasattr(X, "multiply") else (
            np.asarray(X) ** 2).mean(axis=0)
        values = (sq - mean**2) / np.maximum(mean, 1e-12)
    return pd.Series(values, index=adata.var_names)


def preprocess(
    adata,
    *,
    min_cells: int = 3,
    min_genes: int = 200,
    max_genes: int = 2500,
    max_pct_mito: float = 5.0,
    target_sum: float = 1e4,
    max_value: float | None = 10.0,
    n_top_genes: int | None = None,
):
    """Seurat-tutorial quality control, normalisation and scaling of raw PBMC counts.

    Parameters
    ----------
    adata
        Raw UMI counts (cells x genes), e.g. ``mnistnd.data.load_pbmc3k("full")``; not modified.
    min_cells
        Keep genes detected in at least this many cells (Seurat's ``min.cells``).
    min_genes, max_genes
        Keep cells with ``min_genes < detected genes < max_genes`` (strict, as the tutorial).
    max_pct_mito
        Keep cells whose share of counts on ``MT-`` genes is below this percentage.
    target_sum
        Counts per cell after normalisation (then ``log1p``).
    max_value
        Clip scaled values at this magnitude (Seurat's ``ScaleData`` uses 10); ``None`` keeps
        them unclipped.
    n_top_genes
        Keep only this many most variable genes (Seurat's ``vst`` ranking on counts) in the
        returned object; ``None`` keeps all genes, as the report did.

    Returns
    -------
    anndata.AnnData
        Cells passing QC; ``X`` dense ``float32`` scaled log-expression (the models' input);
        ``layers["counts"]`` and ``layers["lognorm"]`` (sparse); ``obs`` with ``n_genes``,
        ``total_counts``, ``pct_mito`` (and ``cell_type`` if the input had it); ``var`` with
        ``n_cells``, ``mito``, ``vst_variance`` and ``highly_variable`` (top 2,000 by
        ``vst_variance``); ``uns["pbmc"]`` with the cell and gene counts before and after QC.

    Raises
    ------
    TypeError, ValueError
        Bad parameters, or ``adata.X`` without counts (checked before any work).
    """
    import anndata as ad
    import scanpy as sc
    import scipy.sparse as sp

    _check_anndata(adata)
    min_cells = check_int("min_cells", min_cells, minimum=1)
    min_genes = check_int("min_genes", min_genes, minimum=0)
    max_genes = check_int("max_genes", max_genes, minimum=min_genes + 2)
    max_pct_mito = check_float("max_pct_mito", max_pct_mito, minimum=0.0, maximum=100.0,
                               open_low=True)
    target_sum = check_float("target_sum", target_sum, minimum=0.0, open_low=True)
    if max_value is not None:
        max_value = check_float("max_value", max_value, minimum=0.0, open_low=True)
    if n_top_genes is not None:
        n_top_genes = check_int("n_top_genes", n_top_genes, minimum=2)
    _require_counts(adata)

    counts = sp.csr_matrix(adata.X, dtype=np.float32)
    n_cells_raw, n_genes_raw = counts.shape
    detected_in = np.asarray((counts > 0).sum(axis=0)).ravel()
    genes = detected_in >= min_cells
    counts = counts[:, genes]
    var = adata.var.loc[genes].copy()
    var["n_cells"] = detected_in[genes]
    var["mito"] = var.index.str.upper().str.startswith("MT-")

    n_genes = np.asarray((counts > 0).sum(axis=1)).ravel()
    total = np.asarray(counts.sum(axis=1)).ravel()
    mito = np.asarray(counts[:, var["mito"].to_numpy()].sum(axis=1)).ravel()
    pct_mito = 100.0 * mito / np.maximum(total, 1.0)
    obs = adata.obs.copy()
    obs["n_genes"] = n_genes
    obs["total_counts"] = total
    obs["pct_mito"] = pct_mito
    cells = (n_genes > min_genes) & (n_genes < max_genes) & (pct_mito < max_pct_mito)
    if cells.sum() < 2:
        raise ValueError(
            f"only {int(cells.sum())} cells pass QC ({min_genes} < genes < {max_genes}, "
            f"mito < {max_pct_mito}%): check the thresholds"
        )
    qc_obs = obs.copy()
    qc_obs["passes_qc"] = cells
    out = ad.AnnData(X=counts[cells].copy(), obs=obs.loc[cells].copy(), var=var)
    out.layers["counts"] = out.X.copy()
    out.var["vst_variance"] = _rank_genes(out, layer="counts")
    top = out.var["vst_variance"].rank(ascending=False, method="first") <= min(2000, out.n_vars)
    out.var["highly_variable"] = top.to_numpy()

    sc.pp.normalize_total(out, target_sum=target_sum)
    sc.pp.log1p(out)
    out.layers["lognorm"] = sp.csr_matrix(out.X, dtype=np.float32)
    out.uns["pbmc"] = {
        "source": "full",
        "n_cells_raw": int(n_cells_raw),
        "n_genes_raw": int(n_genes_raw),
        "n_cells": int(out.n_obs),
        "n_genes_all": int(out.n_vars),
        "min_cells": min_cells,
        "min_genes": min_genes,
        "max_genes": max_genes,
        "max_pct_mito": max_pct_mito,
        "target_sum": target_sum,
        "max_value": max_value,
    }
    out.uns["pbmc_qc"] = qc_obs[["n_genes", "total_counts", "pct_mito", "passes_qc"]]
    if n_top_genes is not None and n_top_genes < out.n_vars:
        keep = out.var["vst_variance"].rank(ascending=False, method="first") <= n_top_genes
        out = out[:, keep.to_numpy()].copy()
    out.uns["pbmc"]["n_genes"] = int(out.n_vars)
    out.X = _scale(out.layers["lognorm"], max_value)
    return out


def _scale(X, max_value: float | None) -> np.ndarray:
    """Zero mean, unit variance per gene (ddof=1, like Seurat and scanpy), then clip."""
    X = np.asarray(X.todense() if hasattr(X, "todense") else X, dtype=np.float64)
    mean = X.mean(axis=0)
    sd = X.std(axis=0, ddof=1)
    sd[sd == 0] = 1.0  # constant genes stay at 0
    Z = (X - mean) / sd
    if max_value is not None:
        np.clip(Z, -max_value, max_value, out=Z)
    return Z.astype(np.float32)


def preprocess_bundled(adata, *, label_key: str = "bulk_labels", max_value: float | None = 10.0):
    """Prepare scanpy's bundled ``pbmc68k_reduced`` (no counts): the documented fallback.

    ``pbmc68k_reduced`` (700 cells x 765 genes) ships log-normalised values only, so the QC and
    normalisation of :func:`preprocess` cannot be redone; this scales its log-normalised values
    per gene and takes the cell types from its ``bulk_labels`` column (10 classes).

    Parameters
    ----------
    adata
        ``mnistnd.data.load_pbmc3k("bundled")`` (``X`` or ``layers["lognorm"]`` log-normalised)
        or ``scanpy.datasets.pbmc68k_reduced()`` (then ``.raw`` holds them).
    label_key
        ``obs`` column with the cell types.
    max_value
        Clip scaled values at this magnitude (``None``: no clipping).

    Returns
    -------
    anndata.AnnData
        ``X`` dense ``float32`` scaled values, ``layers["lognorm"]``, ``obs["cell_type"]``
        (categorical) and ``uns["pbmc"]`` with ``source="bundled"``.

    Raises
    ------
    KeyError
        If ``label_key`` is not an ``obs`` column.
    """
    import anndata as ad
    import scipy.sparse as sp

    _check_anndata(adata)
    if not isinstance(label_key, str) or label_key not in adata.obs:
        raise KeyError(
            f"label_key={label_key!r} is not a column of adata.obs "
            f"(columns: {list(adata.obs.columns)})"
        )
    if max_value is not None:
        max_value = check_float("max_value", max_value, minimum=0.0, open_low=True)
    if "lognorm" in adata.layers:
        lognorm, var = adata.layers["lognorm"], adata.var
    elif adata.raw is not None:
        lognorm, var = adata.raw.X, adata.raw.var
    else:
        lognorm, var = adata.X, adata.var
    lognorm = sp.csr_matrix(lognorm, dtype=np.float32)
    if lognorm.data.size and lognorm.data.min() < 0:
        raise ValueError("adata holds scaled values (negative entries) and no log-normalised "
                         "layers['lognorm'] or .raw to start from")
    obs = pd.DataFrame(index=adata.obs_names.copy())
    obs["cell_type"] = pd.Categorical(adata.obs[label_key].astype(str))
    out = ad.AnnData(X=_scale(lognorm, max_value), obs=obs, var=pd.DataFrame(index=var.index))
    out.layers["lognorm"] = lognorm
    out.uns["pbmc"] = {
        "source": "bundled",
        "n_cells_raw": int(adata.n_obs),
        "n_genes_raw": int(lognorm.shape[1]),
        "n_cells": int(out.n_obs),
        "n_genes_all": int(out.n_vars),
        "n_genes": int(out.n_vars),
        "label_key": label_key,
        "max_value": max_value,
    }
    # the sample was QC-filtered upstream but keeps its per-cell QC values: show the same table
    # (every cell passed; percent_mito is a fraction there)
    qc_cols = {"n_genes", "n_counts", "percent_mito"}
    if qc_cols <= set(adata.obs.columns):
        out.uns["pbmc_qc"] = pd.DataFrame({
            "n_genes": adata.obs["n_genes"].to_numpy(dtype=float),
            "total_counts": adata.obs["n_counts"].to_numpy(dtype=float),
            "pct_mito": 100.0 * adata.obs["percent_mito"].to_numpy(dtype=float),
            "passes_qc": np.ones(adata.n_obs, dtype=bool),
        }, index=adata.obs_names.copy())
    return out


def model_input(adata, n_top_genes: int | None = None) -> np.ndarray:
    """Return the models' input matrix: scaled expression of all genes or the most variable ones.

    Parameters
    ----------
    adata
        Output of :func:`preprocess` or :func:`preprocess_bundled`.
    n_top_genes
        Keep this many genes with the largest ``var["vst_variance"]`` (all genes when ``None``,
        or when the data has no such ranking, as the bundled data).

    Returns
    -------
    numpy.ndarray
        ``float32`` array (cells x genes).
    """
    if n_top_genes is not None:
        n_top_genes = check_int("n_top_genes", n_top_genes, minimum=2)
    X = np.asarray(adata.X, dtype=np.float32)
    if n_top_genes is None or n_top_genes >= adata.n_vars or "vst_variance" not in adata.var:
        return X
    keep = adata.var["vst_variance"].rank(ascending=False, method="first") <= n_top_genes
    return np.ascontiguousarray(X[:, keep.to_numpy()])


def subsample_cells(n_obs: int, n_cells: int | None, seed: int = 0) -> np.ndarray:
    """Sorted random row indices: ``n_cells`` of ``n_obs`` (all rows when ``None`` or larger).

    Used by quick runs to shrink the experiment; the chapter's numbers use all cells.
    """
    n_obs = check_int("n_obs", n_obs, minimum=1)
    if n_cells is None or n_cells >= n_obs:
        return np.arange(n_obs)
    n_cells = check_int("n_cells", n_cells, minimum=10)
    return np.sort(np.random.default_rng(seed).choice(n_obs, size=n_cells, replace=False))


# --------------------------------------------------------------------------------------------
# our own cell-type labels


@dataclass
class Annotation:
    """Result of :func:`annotate`.

    Attributes
    ----------
    labels
        Cell type per cell (categorical ``Series`` indexed like ``adata.obs``).
    clusters
        Leiden cluster per cell (int array).
    resolution
        Leiden resolution used (the first in the grid giving ``n_clusters`` clusters).
    scores
        Marker score of every cluster (rows) for every cell type (columns).
    assignment
        Cell type given to each cluster.
    tried
        Number of clusters found at each resolution tried, in order.
    """

    labels: pd.Series
    clusters: np.ndarray
    resolution: float
    scores: pd.DataFrame
    assignment: dict[int, str]
    tried: dict[float, int] = field(default_factory=dict)


def _snn_graph(X: np.ndarray, n_neighbors: int, prune: float):
    """Shared-nearest-neighbour graph like Seurat's ``FindNeighbors``.

    Each cell's ``n_neighbors`` nearest neighbours (itself included) in ``X``; an edge between
    two cells weighs the Jaccard index of their neighbour sets, edges below ``prune`` dropped.
    """
    import scipy.sparse as sp
    from sklearn.neighbors import NearestNeighbors

    n = X.shape[0]
    k = min(n_neighbors, n)
    index = NearestNeighbors(n_neighbors=k).fit(X).kneighbors(X, return_distance=False)
    member = sp.csr_matrix(
        (np.ones(n * k), (np.repeat(np.arange(n), k), index.ravel())), shape=(n, n)
    )
    shared = (member @ member.T).tocoo()
    jaccard = shared.data / (2 * k - shared.data)
    keep = (jaccard >= prune) & (shared.row != shared.col)
    return sp.csr_matrix(
        (jaccard[keep], (shared.row[keep], shared.col[keep])), shape=(n, n)
    )


def name_clusters(lognorm, clusters, markers: dict[str, tuple[str, ...]] = MARKERS,
                  gene_names=None) -> tuple[dict[int, str], pd.DataFrame]:
    """Name clusters after marker genes, one cell type per cluster.

    The rule: (1) mean log-normalised expression of every marker gene in every cluster;
    (2) each gene's cluster means standardised across clusters (z-scores), so that a gene
    counts by how much more it is expressed in a cluster than in the others; (3) a cluster's
    score for a cell type is the mean z-score of that type's markers; (4) clusters and cell
    types are matched one to one so that the summed score is largest (Hungarian algorithm).
    Overlapping markers (IL7R in both CD4 T types, CST3 in monocytes and DC) are thereby
    resolved by the markers that differ (CCR7 vs S100A4, FCER1A).

    Parameters
    ----------
    lognorm
        Log-normalised expression (cells x genes), dense or sparse.
    clusters
        Cluster label per cell; there must be exactly as many clusters as cell types.
    markers
        Cell type -> marker genes.
    gene_names
        Names of the columns of ``lognorm``.

    Returns
    -------
    assignment : dict
        Cluster label -> cell type.
    scores : pandas.DataFrame
        Score of every cluster (rows) for every cell type (columns).
    """
    from scipy.optimize import linear_sum_assignment

    clusters = np.asarray(clusters)
    ids = np.unique(clusters)
    if len(ids) != len(markers):
        raise ValueError(
            f"clusters has {len(ids)} clusters but markers names {len(markers)} cell types; "
            "they must match one to one"
        )
    gene_names = pd.Index(gene_names)
    needed = sorted({g for genes in markers.values() for g in genes})
    missing = [g for g in needed if g not in gene_names]
    if missing:
        raise KeyError(f"marker genes missing from the data: {missing}")
    cols = gene_names.get_indexer(needed)
    sub = lognorm[:, cols]
    sub = np.asarray(sub.todense() if hasattr(sub, "todense") else sub, dtype=np.float64)
    means = pd.DataFrame([sub[clusters == c].mean(axis=0) for c in ids], index=ids,
                         columns=needed)
    sd = means.std(axis=0, ddof=0).replace(0.0, 1.0)
    z = (means - means.mean(axis=0)) / sd
    scores = pd.DataFrame({t: z[list(g)].mean(axis=1) for t, g in markers.items()})
    scores.index.name = "cluster"
    rows, cols_ = linear_sum_assignment(-scores.to_numpy())
    assignment = {int(ids[r]): scores.columns[c] for r, c in zip(rows, cols_, strict=True)}
    return assignment, scores


def annotate(
    adata,
    *,
    n_clusters: int = 9,
    n_pcs: int = 10,
    n_neighbors: int = 20,
    prune: float = 1 / 15,
    n_hvg: int = 2000,
    markers: dict[str, tuple[str, ...]] = MARKERS,
    resolutions=RESOLUTION_GRID,
    seed: int = 0,
) -> Annotation:
    """Our own cell-type labels: PCA, SNN graph, Leiden with nine clusters, marker names.

    Follows the Seurat tutorial: the ``n_hvg`` most variable genes (``vst`` on counts), scaled,
    PCA, a shared-nearest-neighbour graph on ``n_pcs`` components (``n_neighbors`` neighbours,
    Jaccard weights below ``prune`` dropped), Leiden clustering. The resolutions are tried in
    the given order and the first that yields exactly ``n_clusters`` clusters is used
    (deterministic: fixed grid and seed). Clusters are named by :func:`name_clusters`.

    Parameters
    ----------
    adata
        Output of :func:`preprocess` (needs ``layers["lognorm"]`` and ``var["vst_variance"]``).
    n_clusters
        Number of clusters wanted; must equal the number of cell types in ``markers``.
    n_pcs, n_neighbors, prune
        PCA components, neighbours and the SNN pruning threshold (Seurat's defaults 10, 20,
        1/15).
    n_hvg
        Genes used for the PCA.
    markers
        Cell type -> marker genes (:data:`MARKERS`).
    resolutions
        Leiden resolutions to try, in order.
    seed
        Seed of the PCA and of Leiden.

    Returns
    -------
    Annotation
        Labels, clusters, the resolution used and the marker scores.

    Raises
    ------
    ValueError
        If no resolution yields ``n_clusters`` clusters, or on bad parameters.
    """
    import scanpy as sc
    from sklearn.decomposition import PCA

    _check_anndata(adata)
    n_clusters = check_int("n_clusters", n_clusters, minimum=2)
    n_pcs = check_int("n_pcs", n_pcs, minimum=2)
    n_neighbors = check_int("n_neighbors", n_neighbors, minimum=2)
    prune = check_float("prune", prune, minimum=0.0, maximum=1.0, open_high=True)
    n_hvg = check_int("n_hvg", n_hvg, minimum=n_pcs)
    seed = check_int("seed", seed, minimum=0)
    if n_clusters != len(markers):
        raise ValueError(f"n_clusters={n_clusters} must equal the number of cell types in "
                         f"markers ({len(markers)})")
    for key in ("lognorm",):
        if key not in adata.layers:
            raise KeyError(f"adata.layers[{key!r}] is missing: pass the output of preprocess()")
    if "vst_variance" not in adata.var:
        raise KeyError("adata.var['vst_variance'] is missing: pass the output of preprocess()")
    resolutions = [check_float("resolutions[]", r, minimum=0.0, open_low=True)
                   for r in resolutions]

    keep = (adata.var["vst_variance"].rank(ascending=False, method="first")
            <= min(n_hvg, adata.n_vars)).to_numpy()
    Z = _scale(adata.layers["lognorm"][:, keep], 10.0)
    pcs = PCA(n_components=min(n_pcs, *Z.shape), svd_solver="arpack",
              random_state=seed).fit_transform(Z)
    graph = _snn_graph(pcs, n_neighbors, prune)
    tmp = sc.AnnData(X=np.zeros((adata.n_obs, 1), dtype=np.float32))
    tried: dict[float, int] = {}
    for res in resolutions:
        sc.tl.leiden(tmp, resolution=res, adjacency=graph, flavor="igraph", n_iterations=2,
                     directed=False, random_state=seed)
        labels = tmp.obs["leiden"].astype(int).to_numpy()
        tried[res] = int(len(np.unique(labels)))
        if tried[res] == n_clusters:
            break
    else:
        raise ValueError(
            f"no resolution in {resolutions[0]}..{resolutions[-1]} gives {n_clusters} Leiden "
            f"clusters (found {sorted(set(tried.values()))})"
        )
    assignment, scores = name_clusters(adata.layers["lognorm"], labels, markers,
                                       gene_names=adata.var_names)
    names = pd.Series(
        pd.Categorical([assignment[c] for c in labels], categories=list(markers)),
        index=adata.obs_names, name="cell_type",
    )
    return Annotation(labels=names, clusters=labels, resolution=float(res), scores=scores,
                      assignment=assignment, tried=tried)


def reference_agreement(labels: pd.Series, reference: pd.DataFrame | pd.Series,
                        column: str = "seurat_annotations") -> dict:
    """Agreement of our labels with a reference labelling (e.g. the Seurat tutorial's).

    Parameters
    ----------
    labels
        Our labels, indexed by cell barcode.
    reference
        Table indexed by barcode holding ``column`` (or a Series).
    column
        Column of ``reference`` with the reference labels.

    Returns
    -------
    dict
        ``ari``, ``nmi``, ``n_cells`` (cells in both, with a reference label), ``accuracy``
        (share of cells with the same name) and ``crosstab`` (DataFrame).

    Raises
    ------
    KeyError
        If ``column`` is missing or no cell is shared.
    """
    from .metrics import adjusted_rand, nmi

    if isinstance(reference, pd.DataFrame):
        if column not in reference.columns:
            raise KeyError(f"column={column!r} is not in the reference table "
                           f"(columns: {list(reference.columns)})")
        reference = reference[column]
    ref = reference.reindex(labels.index)
    ok = ref.notna().to_numpy()
    if not ok.any():
        raise KeyError("labels and reference share no cell barcode")
    ours, theirs = labels[ok].astype(str), ref[ok].astype(str)
    return {
        "ari": adjusted_rand(theirs.to_numpy(), ours.to_numpy()),
        "nmi": nmi(theirs.to_numpy(), ours.to_numpy()),
        "accuracy": float(np.mean(ours.to_numpy() == theirs.to_numpy())),
        "n_cells": int(ok.sum()),
        "crosstab": pd.crosstab(theirs.rename("reference"), ours.rename("ours")),
    }


# --------------------------------------------------------------------------------------------
# data and labels for the chapters

#: ``obs`` columns that :func:`mnistnd.data.load_pbmc3k` fills from the optional
#: ``pbmc3k_celltypes.csv``; :func:`labelled_cells` drops them, so only our labels remain.
REFERENCE_COLUMNS = ("cell_type", "louvain_reference")


def _no_counts_message(folder: Path) -> str:
    from .data import _PBMC_H5AD, _PBMC_MTX

    return (
        f"the PBMC3k data folder {str(folder)!r} holds no raw counts: expected "
        f"{_PBMC_H5AD!r} or the extracted 10x folder '{_PBMC_MTX.as_posix()}/' (matrix.mtx or "
        "matrix.mtx.gz, genes.tsv, barcodes.tsv) in it. Put one of them there (the folder is "
        "'pbmc3k/' in $MNISTND_DATA_DIR), or let mnistnd.data.load_pbmc3k download them (needs "
        "network); pbmc3k_celltypes.csv is optional and holds no counts"
    )


def counts_layout(folder=None) -> tuple[str, Path]:
    """Locate the raw PBMC3k counts in a data folder, without reading or downloading anything.

    The accepted layouts are those of :func:`mnistnd.data.load_pbmc3k` (the rule is its own,
    not repeated here): ``pbmc3k_raw.h5ad`` or the extracted 10x folder
    ``filtered_gene_bc_matrices/hg19/``. The optional ``pbmc3k_celltypes.csv`` holds no counts
    and is neither needed nor enough.

    Parameters
    ----------
    folder
        The PBMC3k folder; ``None`` means ``pbmc3k/`` in the data directory
        (``$MNISTND_DATA_DIR``).

    Returns
    -------
    kind : str
        ``"h5ad"`` or ``"10x"`` (the h5ad first when both are there: it reads faster).
    path : pathlib.Path
        The file or folder holding the counts.

    Raises
    ------
    FileNotFoundError
        If neither layout is there; the message names the folder and both layouts.
    """
    from . import data

    folder = data._pbmc_dir() if folder is None else Path(folder).expanduser()
    found = data._pbmc_candidates(folder)
    if not found:
        raise FileNotFoundError(_no_counts_message(folder))
    return found[0]


@dataclass
class LabelledCells:
    """Output of :func:`labelled_cells`.

    Attributes
    ----------
    adata
        Preprocessed cells (:func:`preprocess` or :func:`preprocess_bundled`);
        ``obs["cell_type"]`` holds ``labels``.
    labels
        Cell type per cell (strings, indexed like ``adata.obs``).
    label_source
        Where the labels come from, in words (for the page).
    annotation
        The :class:`Annotation` behind ``labels`` (``None`` for the bundled sample).
    """

    adata: object
    labels: pd.Series
    label_source: str
    annotation: Annotation | None = None


def labelled_cells(source: str = "auto") -> LabelledCells:
    """PBMC cells preprocessed for their source, with the cell types the chapters score against.

    Raw counts (``source`` resolves to ``"full"``): :func:`preprocess`, then our own labels
    from :func:`annotate` with its default settings, so that every chapter scores against the
    same labels. Cell types that :func:`mnistnd.data.load_pbmc3k` took from the optional
    ``pbmc3k_celltypes.csv`` (:data:`REFERENCE_COLUMNS`) are dropped: a fresh download has no
    such table, and the labels must not depend on whether it lies beside the counts. Bundled
    sample (no counts): :func:`preprocess_bundled` and its ``bulk_labels``, the only labels it
    has.

    Parameters
    ----------
    source
        ``"auto"``, ``"full"`` or ``"bundled"``, as :func:`mnistnd.data.load_pbmc3k`.

    Returns
    -------
    LabelledCells

    Raises
    ------
    ValueError
        Unknown ``source``, before anything is read.
    FileNotFoundError
        ``source="full"`` and the data folder holds no counts that could be read or downloaded;
        the message names the folder and the expected files, and nothing is preprocessed.
    """
    from . import data

    check_choice("source", source, ("auto", "full", "bundled"))
    try:
        raw = data.load_pbmc3k(source)
    except data.DataError as err:
        try:
            counts_layout()
        except FileNotFoundError as missing:
            raise FileNotFoundError(f"{missing} ({err})") from err
        raise  # counts are there but bad: the loader's message says why
    if raw.uns["mnistnd"]["source"] != "full":
        pp = preprocess_bundled(raw, label_key="bulk_labels")
        return LabelledCells(pp, cell_types(pp), "bulk_labels of scanpy's bundled pbmc68k_reduced")
    pp = preprocess(raw)
    ann = annotate(pp)
    pp.obs = pp.obs.drop(columns=[c for c in REFERENCE_COLUMNS if c in pp.obs])
    pp.obs["cell_type"] = ann.labels
    source_text = f"ours: mnistnd.pbmc.annotate, Leiden resolution {ann.resolution:g}"
    return LabelledCells(pp, ann.labels.astype(str), source_text, ann)


# --------------------------------------------------------------------------------------------
# evaluation of latent spaces


def cell_types(adata, key: str = "cell_type") -> pd.Series:
    """Return ``obs[key]`` as strings; a clear error when it is missing or incomplete."""
    if not isinstance(key, str) or key not in adata.obs:
        raise KeyError(f"label column {key!r} is not in adata.obs "
                       f"(columns: {list(adata.obs.columns)})")
    labels = adata.obs[key]
    if labels.isna().any():
        raise ValueError(f"label column {key!r} has {int(labels.isna().sum())} missing labels")
    return labels.astype(str)


def tsne(Z, *, perplexity: float = 40.0, seed: int = 0, n_jobs: int = 1,
         n_iter: int = 500) -> np.ndarray:
    """2-D t-SNE of ``Z`` with openTSNE (PCA initialisation, as openTSNE's default).

    Parameters
    ----------
    Z
        Points (n x d).
    perplexity
        t-SNE perplexity (the report used 40); lowered to ``(n - 1) / 3`` for tiny inputs.
    seed
        Random state.
    n_jobs
        Threads used by openTSNE.
    n_iter
        Iterations of the main optimisation phase (after ``min(250, n_iter)``
        early-exaggeration ones; 500 and 250 are openTSNE's defaults).

    Returns
    -------
    numpy.ndarray
        ``(n, 2)`` float64 embedding.
    """
    from openTSNE import TSNE

    from ._checks import check_matrix

    Z = check_matrix("Z", Z, min_samples=4)
    perplexity = check_float("perplexity", perplexity, minimum=0.0, open_low=True)
    perplexity = min(perplexity, (Z.shape[0] - 1) / 3.0)
    n_iter = check_int("n_iter", n_iter, minimum=1)
    model = TSNE(n_components=2, perplexity=perplexity, random_state=seed, n_jobs=n_jobs,
                 n_iter=n_iter, early_exaggeration_iter=min(250, n_iter), verbose=False,
                 neighbors="exact" if Z.shape[0] <= 10_000 else "auto")
    return np.asarray(model.fit(Z), dtype=np.float64)


def types_detected(labels, clusters) -> int:
    """Count the cell types that are the majority type of at least one cluster.

    This is the report's reading of its k-means partitions ("k-means detects 7/9 cell types"):
    a type counts as detected when some cluster is mostly made of it.

    Parameters
    ----------
    labels
        Cell type per cell.
    clusters
        Cluster per cell.

    Returns
    -------
    int
    """
    table = pd.crosstab(np.asarray(clusters), np.asarray(labels))
    return int(table.idxmax(axis=1).nunique())


def detection_table(embeddings: dict, labels) -> pd.DataFrame:
    """Cell types detected by k-means (:func:`types_detected`) per model, seed and space.

    Parameters
    ----------
    embeddings
        ``{(model, seed): {"kmeans_tsne": ..., "kmeans_latent": ...}}`` as in
        :class:`ExperimentResult`.
    labels
        Cell type per cell.

    Returns
    -------
    pandas.DataFrame
        ``model``, ``seed``, ``space``, ``detected`` and ``n_types``.
    """
    n_types = int(pd.Series(np.asarray(labels)).nunique())
    spaces = {"kmeans_tsne": "t-SNE 2-D", "kmeans_latent": "latent"}
    rows = [{"model": m, "seed": int(s), "space": space,
             "detected": types_detected(labels, arrays[key]), "n_types": n_types}
            for (m, s), arrays in embeddings.items() for key, space in spaces.items()]
    return pd.DataFrame(rows)


#: Cell types the report says k-means "partly detected" on each model's t-SNE (of nine; the
#: report gives no count for the plain autoencoder).
PAPER_TYPES_DETECTED = {"BetaVAE": 7, "BetaVSC": 7}


def detection_summary(runs: dict[str, pd.DataFrame], space: str = "t-SNE 2-D") -> pd.DataFrame:
    """Cell types detected per model (range over seeds) for several runs, beside the report.

    Parameters
    ----------
    runs
        Run name to a :func:`detection_table`.
    space
        ``"t-SNE 2-D"`` (the report's reading) or ``"latent"``.

    Returns
    -------
    pandas.DataFrame
        Index ``model``; one column per run (``"5-7"``, or ``"6"`` when every seed agrees) and
        ``report`` (:data:`PAPER_TYPES_DETECTED`, NaN where the report gives no count).
    """
    check_choice("space", space, ("t-SNE 2-D", "latent"))

    def span(v):
        return f"{v.min()}-{v.max()}" if v.min() != v.max() else str(v.min())

    out = pd.DataFrame({name: table[table["space"] == space].groupby("model")["detected"]
                        .agg(span) for name, table in runs.items()})
    out["report"] = pd.Series(PAPER_TYPES_DETECTED).reindex(out.index)
    return out


def compare_runs(runs: dict[str, pd.DataFrame], space: str = "t-SNE 2-D") -> pd.DataFrame:
    """Mean scores of several runs side by side, with the report's values.

    Parameters
    ----------
    runs
        Run name (e.g. ``"this build"``, ``"release"``) to a tidy score table
        (:attr:`ExperimentResult.scores`).
    space
        ``"t-SNE 2-D"`` (the report's setting) or ``"latent"``.

    Returns
    -------
    pandas.DataFrame
        Index ``model``; columns ``(metric, run)`` holding ``mean ± sd (n seeds)`` as numbers in
        ``(metric, run)`` and ``(metric, run + " sd")``, then ``(metric, "report")``.
    """
    cols = {}
    summaries = {name: summarise_scores(table, space) for name, table in runs.items()}
    for metric in SCORE_NAMES:
        for name, summary in summaries.items():
            cols[(metric, name)] = summary[(metric, "mean")]
            cols[(metric, f"{name} sd")] = summary[(metric, "sd")]
        cols[(metric, "report")] = next(iter(summaries.values()))[(metric, "paper")]
    return pd.DataFrame(cols)


def kmeans_scores(Z, labels, *, n_clusters: int | None = None, seed: int = 0,
                  n_init: int = 10) -> tuple[dict[str, float], np.ndarray]:
    """k-means on ``Z`` scored against ``labels`` with NMI, ARI, homogeneity, completeness.

    Parameters
    ----------
    Z
        Points (n x d).
    labels
        Reference cell types (n,).
    n_clusters
        k; the number of distinct labels by default (as the report did).
    seed, n_init
        k-means random state and restarts (the report used 100 on the 2-D t-SNE).

    Returns
    -------
    scores : dict
        ``{"NMI", "ARI", "HOM", "COM"}``.
    predicted : numpy.ndarray
        k-means labels.
    """
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    from . import metrics
    from ._checks import check_matrix

    Z = check_matrix("Z", Z, min_samples=2)
    labels = np.asarray(labels)
    if labels.shape != (Z.shape[0],):
        raise ValueError(f"labels has shape {labels.shape}, expected ({Z.shape[0]},)")
    k = len(np.unique(labels)) if n_clusters is None else check_int("n_clusters", n_clusters,
                                                                    minimum=2)
    n_init = check_int("n_init", n_init, minimum=1)
    # one OpenMP thread: on small inputs sklearn's threads cost far more than they save, and
    # on a busy machine they spin (330 restarts on 400 points: 67 s before, < 1.5 s after)
    with threadpool_limits(limits=1):
        pred = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(Z)
    scores = {
        "NMI": metrics.nmi(labels, pred),
        "ARI": metrics.adjusted_rand(labels, pred),
        "HOM": metrics.homogeneity(labels, pred),
        "COM": metrics.completeness(labels, pred),
    }
    return scores, pred


def evaluate_embedding(latent, labels, *, seed: int = 0, perplexity: float = 40.0,
                       n_init_tsne: int = 100, n_init_latent: int = 10,
                       tsne_iter: int = 500, n_jobs: int = 1) -> dict:
    """t-SNE of a latent space and k-means scores on the t-SNE (report) and on the latent space.

    Returns
    -------
    dict
        ``tsne`` (n x 2), ``kmeans_tsne`` and ``kmeans_latent`` (labels), ``scores`` (list of
        ``{"space", "metric", "value"}`` rows).
    """
    embedded = tsne(latent, perplexity=perplexity, seed=seed, n_jobs=n_jobs, n_iter=tsne_iter)
    rows = []
    s_tsne, pred_tsne = kmeans_scores(embedded, labels, seed=seed, n_init=n_init_tsne)
    s_lat, pred_lat = kmeans_scores(latent, labels, seed=seed, n_init=n_init_latent)
    for space, scores in (("t-SNE 2-D", s_tsne), ("latent", s_lat)):
        rows += [{"space": space, "metric": m, "value": v} for m, v in scores.items()]
    return {"tsne": embedded, "kmeans_tsne": pred_tsne, "kmeans_latent": pred_lat,
            "scores": rows}


def vsc_sparsity(model, X, *, threshold: float = 0.5, batch_size: int = 1024,
                 seed: int = 0, return_spikes: bool = False):
    """How sparse the codes of a trained :class:`~mnistnd.models.BetaVSC` are.

    Returns
    -------
    dict
        ``mean_spike`` (mean slab probability γ), ``active_fraction`` (share of cell x
        dimension pairs with γ > ``threshold``), ``active_dims_mean`` (active dimensions per
        cell), ``zero_fraction`` (share of sampled code entries with ``|z| < 0.01``),
        ``dims_never_active`` (dimensions inactive in every cell).
    spikes : numpy.ndarray
        Only with ``return_spikes``: γ of every cell and dimension.
    """
    import torch

    threshold = check_float("threshold", threshold, minimum=0.0, maximum=1.0)
    device = next(model.parameters()).device
    spikes, samples = [], []
    gen_state = torch.get_rng_state()
    torch.manual_seed(seed)
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(X), batch_size):
                x = torch.as_tensor(np.asarray(X[start:start + batch_size], dtype=np.float32),
                                    device=device)
                mu, logvar, spike = model.posterior(x)
                spikes.append(spike.cpu().numpy())
                samples.append(model._sample(mu, logvar, spike).cpu().numpy())
    finally:
        torch.set_rng_state(gen_state)
    spike = np.concatenate(spikes)
    z = np.concatenate(samples)
    active = spike > threshold
    summary = {
        "mean_spike": float(spike.mean()),
        "active_fraction": float(active.mean()),
        "active_dims_mean": float(active.sum(axis=1).mean()),
        "zero_fraction": float(np.mean(np.abs(z) < 0.01)),
        "dims_never_active": int(np.sum(~active.any(axis=0))),
    }
    return (summary, spike) if return_spikes else summary


def encode(model, X, *, batch_size: int = 1024) -> np.ndarray:
    """Deterministic codes ``model.encode(x)`` of all rows of ``X``."""
    import torch

    device = next(model.parameters()).device
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(X), batch_size):
            x = torch.as_tensor(np.asarray(X[start:start + batch_size], dtype=np.float32),
                                device=device)
            out.append(model.encode(x).cpu().numpy())
    return np.concatenate(out).astype(np.float64)


def build_model(name: str, n_input: int, *, latent_dim: int = 6, beta: float = 2.0):
    """Instantiate one of :data:`MODEL_NAMES` (β is ignored by the plain autoencoder)."""
    from . import models

    check_choice("model", name, MODEL_NAMES)
    if name == "Autoencoder":
        return models.Autoencoder(n_input, latent_dim)
    return getattr(models, name)(n_input, latent_dim, beta=beta)


@dataclass
class ExperimentResult:
    """Output of :func:`run_experiment`.

    Attributes
    ----------
    scores
        Tidy table: ``model``, ``seed``, ``space`` (``"t-SNE 2-D"`` or ``"latent"``),
        ``metric`` (NMI/ARI/HOM/COM), ``value``.
    times
        ``model``, ``seed``, ``epochs``, ``seconds`` (training), ``seconds_per_epoch``,
        ``final_loss``, ``device``.
    sparsity
        VSC code sparsity per seed (empty when BetaVSC was not trained).
    embeddings
        ``{(model, seed): {"latent", "tsne", "kmeans_tsne", "kmeans_latent"}}``.
    histories
        ``{(model, seed): history DataFrame}`` from :func:`mnistnd.training.fit`.
    labels
        Reference labels used for scoring.
    """

    scores: pd.DataFrame
    times: pd.DataFrame
    sparsity: pd.DataFrame
    embeddings: dict
    histories: dict
    labels: np.ndarray


def run_experiment(
    X,
    labels,
    *,
    models=MODEL_NAMES,
    epochs: int = 200,
    latent_dim: int = 6,
    beta: float = 2.0,
    seeds=(0,),
    batch_size: int = 256,
    lr: float = 1e-3,
    device: str = "auto",
    perplexity: float = 40.0,
    n_init_tsne: int = 100,
    n_init_latent: int = 10,
    tsne_iter: int = 500,
    num_threads: int | None = None,
    progress: bool = True,
) -> ExperimentResult:
    """Train each model for each seed, embed, cluster and score (the report's experiment).

    Every model trains for exactly ``epochs`` epochs on all cells (no validation split, no
    early stopping: the report's protocol) with Adam.

    Parameters
    ----------
    X
        Model input (cells x genes), e.g. :func:`model_input`.
    labels
        Cell type per cell.
    models
        Names from :data:`MODEL_NAMES`.
    epochs, batch_size, lr
        Training settings (report: 200, 256, 1e-3).
    latent_dim
        Latent size (>= 1; report: 6).
    beta
        KL weight of the β-VAE and β-VSC (>= 0; report: 2).
    seeds
        Seeds; each seeds the weights, the training, the t-SNE and k-means.
    device
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    perplexity, tsne_iter
        t-SNE settings.
    n_init_tsne, n_init_latent
        k-means restarts on the 2-D t-SNE (report: 100) and on the latent space.
    num_threads
        Torch threads during training (``None`` leaves the setting).
    progress
        Show progress bars.

    Returns
    -------
    ExperimentResult
    """
    import torch
    from tqdm.auto import tqdm

    from ._checks import check_int_list, check_matrix
    from .training import fit

    X = check_matrix("X", X, min_samples=4, dtype=np.float32)
    labels = np.asarray(labels).astype(str)
    if labels.shape != (X.shape[0],):
        raise ValueError(f"labels has shape {labels.shape}, expected ({X.shape[0]},)")
    if isinstance(models, str):
        models = [models]
    models = [check_choice("models[]", m, MODEL_NAMES) for m in models]
    if not models:
        raise ValueError("models must name at least one model")
    epochs = check_int("epochs", epochs, minimum=1)
    latent_dim = check_int("latent_dim", latent_dim, minimum=1)
    beta = check_float("beta", beta, minimum=0.0)
    seeds = check_int_list("seeds", list(seeds), minimum=0)
    batch_size = check_int("batch_size", batch_size, minimum=1)

    score_rows, time_rows, sparse_rows = [], [], []
    embeddings, histories = {}, {}
    runs = [(m, s) for m in models for s in seeds]
    # one throwaway optimiser step: torch's one-time start-up (imports on the first Adam step,
    # several seconds) must not be timed as the first model's training
    warm = build_model(models[0], X.shape[1], latent_dim=latent_dim, beta=beta)
    opt = torch.optim.Adam(warm.parameters(), lr=lr)
    warm.loss(torch.from_numpy(X[:8]))["loss"].backward()
    opt.step()
    del warm, opt
    for name, seed in tqdm(runs, desc="models x seeds", disable=not progress):
        torch.manual_seed(seed)
        model = build_model(name, X.shape[1], latent_dim=latent_dim, beta=beta)
        start = time.perf_counter()
        history = fit(model, X, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                      device=device, val_fraction=0.0, patience=None, restore_best=False,
                      progress=progress, num_threads=num_threads)
        seconds = time.perf_counter() - start
        latent = encode(model, X)
        evaluation = evaluate_embedding(latent, labels, seed=seed, perplexity=perplexity,
                                        n_init_tsne=n_init_tsne, n_init_latent=n_init_latent,
                                        tsne_iter=tsne_iter)
        score_rows += [{"model": name, "seed": seed, **row} for row in evaluation["scores"]]
        time_rows.append({"model": name, "seed": seed, "epochs": epochs, "seconds": seconds,
                          "seconds_per_epoch": seconds / epochs,
                          "final_loss": float(history["train_loss"].iloc[-1]),
                          "device": str(history.attrs.get("device", device))})
        embeddings[(name, seed)] = {"latent": latent, **{k: evaluation[k] for k in
                                    ("tsne", "kmeans_tsne", "kmeans_latent")}}
        if name == "BetaVSC":
            summary, spikes = vsc_sparsity(model, X, seed=seed, return_spikes=True)
            sparse_rows.append({"seed": seed, **summary})
            embeddings[(name, seed)]["spike"] = spikes
        histories[(name, seed)] = history
    return ExperimentResult(
        scores=pd.DataFrame(score_rows), times=pd.DataFrame(time_rows),
        sparsity=pd.DataFrame(sparse_rows), embeddings=embeddings, histories=histories,
        labels=labels,
    )


def summarise_scores(scores: pd.DataFrame, space: str = "t-SNE 2-D") -> pd.DataFrame:
    """Mean and standard deviation over seeds of each model's scores in one space.

    Returns
    -------
    pandas.DataFrame
        Index ``model``; columns ``(metric, "mean")``, ``(metric, "sd")``, ``(metric,
        "paper")`` for NMI/ARI/HOM/COM (paper values only for the t-SNE space), ``n_seeds``.
    """
    check_choice("space", space, ("t-SNE 2-D", "latent"))
    sub = scores[scores["space"] == space]
    if sub.empty:
        raise ValueError(f"scores has no rows for space={space!r}")
    agg = sub.groupby(["model", "metric"])["value"].agg(["mean", "std", "count"])
    models = [m for m in MODEL_NAMES if m in set(sub["model"])]
    cols = {}
    for metric in SCORE_NAMES:
        part = agg.xs(metric, level="metric").reindex(models)
        cols[(metric, "mean")] = part["mean"]
        cols[(metric, "sd")] = part["std"].fillna(0.0)
        paper = PAPER_SCORES[metric].reindex(models) if space == "t-SNE 2-D" else np.nan
        cols[(metric, "paper")] = paper
    out = pd.DataFrame(cols)
    out["n_seeds"] = agg.xs("NMI", level="metric")["count"].reindex(models).astype(int)
    out.index.name = "model"
    return out


def training_time_table(times: pd.DataFrame, paper_epochs: int = 200) -> pd.DataFrame:
    """Our training times beside the report's (minutes for 200 epochs on a laptop CPU).

    Ours are extrapolated linearly to ``paper_epochs`` from the measured seconds per epoch.
    """
    g = times.groupby("model")
    out = pd.DataFrame({
        "epochs": g["epochs"].first(),
        "seconds (mean)": g["seconds"].mean(),
        "seconds per epoch": g["seconds_per_epoch"].mean(),
        f"minutes for {paper_epochs} epochs (ours, extrapolated)":
            g["seconds_per_epoch"].mean() * paper_epochs / 60.0,
    })
    out = out.reindex([m for m in MODEL_NAMES if m in out.index])
    paper = PAPER_TRAINING_MINUTES.reindex(out.index)
    out["paper minutes (200 epochs)"] = [f"{lo:g}-{hi:g}" for lo, hi in
                                         zip(paper["low"], paper["high"], strict=True)]
    return out


def save_results(result: ExperimentResult, folder) -> Path:
    """Write the score, time and sparsity tables and the embeddings, each atomically.

    Returns
    -------
    pathlib.Path
        The folder.
    """
    from .settings import ensure_writable_dir

    folder = ensure_writable_dir(folder, "folder")

    for name in ("scores", "times", "sparsity"):
        table = getattr(result, name)
        atomic_write(folder / f"{name}.csv", lambda p, t=table: t.to_csv(p, index=False))
    arrays = {f"{m}__{s}__{k}": v for (m, s), d in result.embeddings.items()
              for k, v in d.items()}
    arrays["labels"] = result.labels

    def write_npz(p):
        with open(p, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    atomic_write(folder / "embeddings.npz", write_npz)
    atomic_write(folder / "manifest.json", lambda p: Path(p).write_text(json.dumps(
        {"models": sorted({m for m, _ in result.embeddings}),
         "seeds": sorted({int(s) for _, s in result.embeddings})}, indent=2)))
    return folder
