"""Tests of mnistnd.pbmc: Seurat-style preprocessing, our cell-type labels, the experiment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

anndata = pytest.importorskip("anndata")
scipy_sparse = pytest.importorskip("scipy.sparse")

from mnistnd import pbmc  # noqa: E402


# ------------------------------------------------------------------------------ helpers
def count_matrix(seed=0):
    """Synthetic counts: 40 cells x 30 genes (2 mitochondrial), with known QC outcomes."""
    rng = np.random.default_rng(seed)
    X = rng.poisson(rng.gamma(1.0, 3.0, size=(40, 30))).astype(np.float32)
    X[:, 2:20] += 1  # every cell detects at least 18 genes
    X[:, 28:] = 0  # no mitochondrial counts ...
    X[::3, 28:] = 1  # ... but a few, far below 5 %
    X[:, 0] = 0  # gene never detected: dropped with min_cells=3
    X[:2, 1] = 1  # gene in 2 cells only: dropped
    X[:, 1][2:] = 0
    X[5, 28:] = 200  # cell 5: mitochondrial share far above 5 %
    X[7, 2:] = 0  # cell 7: too few genes (keeps genes 0-1 only)
    var = pd.DataFrame(index=[f"G{i}" for i in range(28)] + ["MT-CO1", "MT-ND1"])
    obs = pd.DataFrame(index=[f"cell{i}" for i in range(40)])
    return anndata.AnnData(X=scipy_sparse.csr_matrix(X), obs=obs, var=var)


@pytest.fixture(scope="module")
def pbmc3k(shared_data_dir):
    from mnistnd import data

    raw = data.load_pbmc3k("full")
    return raw, pbmc.preprocess(raw)


# ------------------------------------------------------------------------------ preprocessing
def test_preprocess_synthetic_qc_and_scaling():
    adata = count_matrix()
    pp = pbmc.preprocess(adata, min_cells=3, min_genes=5, max_genes=100, max_pct_mito=5.0)
    assert "G0" not in pp.var_names and "G1" not in pp.var_names
    assert "cell5" not in pp.obs_names and "cell7" not in pp.obs_names
    assert pp.n_obs == 38 and pp.n_vars == 28
    assert pp.X.dtype == np.float32
    np.testing.assert_allclose(pp.X.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(pp.X.std(axis=0, ddof=1), 1, atol=1e-4)
    # log-normalised layer: expm1 sums to the target per cell
    totals = np.expm1(pp.layers["lognorm"].toarray()).sum(axis=1)
    np.testing.assert_allclose(totals, 1e4, rtol=1e-4)
    assert pp.uns["pbmc"]["n_cells_raw"] == 40
    assert int(pp.uns["pbmc_qc"]["passes_qc"].sum()) == 38
    top = pbmc.preprocess(adata, min_genes=5, max_genes=100, n_top_genes=10)
    assert top.n_vars == 10
    assert pbmc.model_input(pp, 10).shape == (38, 10)


def test_preprocess_refuses_non_counts():
    adata = count_matrix()
    adata.X = adata.X * 0.37  # normalised-looking values
    with pytest.raises(ValueError, match="raw UMI counts"):
        pbmc.preprocess(adata)
    assert not pbmc.has_counts(adata)


@pytest.mark.parametrize("kwargs,match", [
    ({"min_cells": 0}, "min_cells"),
    ({"max_pct_mito": 0.0}, "max_pct_mito"),
    ({"n_top_genes": 1}, "n_top_genes"),
    ({"min_genes": 100, "max_genes": 50}, "max_genes"),
])
def test_preprocess_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pbmc.preprocess(count_matrix(), **kwargs)


def test_bundled_path_uses_bulk_labels_and_checks_the_column():
    sc = pytest.importorskip("scanpy")
    ref = sc.datasets.pbmc68k_reduced()
    with pytest.raises(ValueError, match="raw UMI counts"):
        pbmc.preprocess(ref)  # log-normalised values only
    with pytest.raises(KeyError, match="no_such_column"):
        pbmc.preprocess_bundled(ref, label_key="no_such_column")
    pp = pbmc.preprocess_bundled(ref)
    assert pp.shape == (700, 765)
    assert pp.obs["cell_type"].nunique() == 10
    assert pp.uns["pbmc"]["source"] == "bundled"
    assert np.abs(pp.X).max() <= 10.0 + 1e-6
    qc = pp.uns["pbmc_qc"]  # the sample's stored per-cell QC values, for the QC figure
    assert list(qc.columns) == ["n_genes", "total_counts", "pct_mito", "passes_qc"]
    assert len(qc) == 700 and qc["passes_qc"].all()
    assert np.allclose(qc["pct_mito"], 100 * ref.obs["percent_mito"].to_numpy())


def test_cell_types_missing_column():
    with pytest.raises(KeyError, match="label column 'nope'"):
        pbmc.cell_types(count_matrix(), "nope")


# ------------------------------------------------------------------------------ naming rule
def test_name_clusters_one_to_one_by_markers():
    markers = {"A": ("a1", "shared"), "B": ("b1", "shared"), "C": ("c1",)}
    genes = ["a1", "b1", "c1", "shared", "other"]
    rng = np.random.default_rng(0)
    clusters = np.repeat([7, 3, 5], 20)
    X = rng.uniform(0, 0.1, size=(60, 5))
    X[clusters == 7, 0] += 2  # cluster 7 expresses a1
    X[clusters == 3, 1] += 2  # cluster 3 expresses b1
    X[clusters == 5, 2] += 2  # cluster 5 expresses c1
    X[clusters != 5, 3] += 1  # the shared marker cannot decide between A and B
    assignment, scores = pbmc.name_clusters(X, clusters, markers, gene_names=genes)
    assert assignment == {7: "A", 3: "B", 5: "C"}
    assert list(scores.columns) == ["A", "B", "C"]
    with pytest.raises(KeyError, match="missing"):
        pbmc.name_clusters(X, clusters, {"A": ("zz",), "B": ("a1",), "C": ("c1",)},
                           gene_names=genes)
    with pytest.raises(ValueError, match="one to one"):
        pbmc.name_clusters(X[:40], clusters[:40], markers, gene_names=genes)


# ------------------------------------------------------------------------------ real data
@pytest.mark.slow
def test_real_preprocessing_gives_seurat_shape(pbmc3k):
    raw, pp = pbmc3k
    assert raw.shape == (2700, 32738)
    assert pp.shape == (2638, 13714)
    assert int(pp.var["highly_variable"].sum()) == 2000
    assert np.abs(pp.X).max() <= 10.0 + 1e-6
    # the first cells of the tutorial's printout
    assert pp.obs["total_counts"].iloc[:3].tolist() == [2419.0, 4903.0, 3147.0]


@pytest.mark.slow
def test_our_labels_agree_with_seurat_annotations(pbmc3k, shared_data_dir):
    table = shared_data_dir / "pbmc3k" / "pbmc3k_celltypes.csv"
    if not table.is_file():
        pytest.skip("pbmc3k_celltypes.csv not available")
    _, pp = pbmc3k
    ann = pbmc.annotate(pp)
    assert len(set(ann.clusters)) == 9
    assert set(ann.labels.unique()) == set(pbmc.MARKERS)
    reference = pd.read_csv(table, index_col="barcode")
    agree = pbmc.reference_agreement(ann.labels, reference, "seurat_annotations")
    assert agree["n_cells"] == 2638
    assert agree["ari"] >= 0.8, agree["crosstab"]
    with pytest.raises(KeyError, match="seurat_annotations"):
        pbmc.reference_agreement(ann.labels, reference.drop(columns="seurat_annotations"))


# ------------------------------------------------------------------------------ experiment
def blobs(n=90, d=12, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(k), n // k)
    centers = rng.normal(scale=4.0, size=(k, d))
    return (centers[y] + rng.normal(size=(n, d))).astype(np.float32), np.array(list("abc"))[y]


def test_kmeans_scores_perfect_on_separated_blobs():
    X, y = blobs()
    scores, pred = pbmc.kmeans_scores(X, y, seed=0)
    assert set(scores) == {"NMI", "ARI", "HOM", "COM"}
    assert all(v == pytest.approx(1.0) for v in scores.values())
    assert len(np.unique(pred)) == 3


@pytest.mark.parametrize("kwargs,err,match", [
    ({"latent_dim": 0}, ValueError, "latent_dim"),
    ({"beta": -0.1}, ValueError, "beta"),
    ({"models": ["PCA"]}, ValueError, "models"),
    ({"epochs": 0}, ValueError, "epochs"),
])
def test_run_experiment_refuses_bad_input(kwargs, err, match):
    X, y = blobs()
    with pytest.raises(err, match=match):
        pbmc.run_experiment(X, y, progress=False, **kwargs)
    with pytest.raises(ValueError, match="labels"):
        pbmc.run_experiment(X, y[:10], progress=False)


def test_run_experiment_tables_and_saving(tmp_path):
    X, y = blobs()
    res = pbmc.run_experiment(X, y, epochs=2, latent_dim=2, seeds=[0, 1], batch_size=32,
                              device="cpu", tsne_iter=30, n_init_tsne=2, progress=False,
                              num_threads=1)
    assert len(res.scores) == 3 * 2 * 2 * 4  # models x seeds x spaces x metrics
    assert res.scores["value"].between(-1, 1).all()
    assert set(res.times["model"]) == set(pbmc.MODEL_NAMES)
    assert len(res.sparsity) == 2
    assert 0 <= res.sparsity["active_fraction"].iloc[0] <= 1
    emb = res.embeddings[("BetaVSC", 1)]
    assert emb["latent"].shape == (90, 2) and emb["tsne"].shape == (90, 2)
    assert emb["spike"].shape == (90, 2)
    summary = pbmc.summarise_scores(res.scores)
    assert summary.loc["Autoencoder", ("NMI", "paper")] == pytest.approx(0.7209, abs=1e-4)
    assert (summary["n_seeds"] == 2).all()
    assert summary[("ARI", "sd")].ge(0).all()
    times = pbmc.training_time_table(res.times)
    assert times.loc["BetaVAE", "paper minutes (200 epochs)"] == "17-25"
    folder = pbmc.save_results(res, tmp_path / "out")
    assert {p.name for p in folder.iterdir()} == {"scores.csv", "times.csv", "sparsity.csv",
                                                  "embeddings.npz", "manifest.json"}
    assert len(pd.read_csv(folder / "scores.csv")) == len(res.scores)


def test_subsample_cells():
    rows = pbmc.subsample_cells(100, 30, seed=1)
    assert len(rows) == 30 and len(set(rows)) == 30 and np.all(np.diff(rows) > 0)
    np.testing.assert_array_equal(rows, pbmc.subsample_cells(100, 30, seed=1))
    np.testing.assert_array_equal(pbmc.subsample_cells(100, None), np.arange(100))
    with pytest.raises(ValueError, match="n_cells"):
        pbmc.subsample_cells(100, 5)
