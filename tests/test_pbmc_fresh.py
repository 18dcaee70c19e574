"""PBMC3k as a fresh download gives it: raw counts only, no table of Seurat cell types.

The chapters label the cells themselves (:func:`mnistnd.pbmc.annotate`, through
:func:`mnistnd.pbmc.labelled_cells`); the optional ``pbmc3k_celltypes.csv`` must be neither
needed nor used for their labels. Bad inputs (a data folder without counts, fewer experts than
components in the MoE cluster-number study) must fail with a clear message before any work.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from mnistnd import data, moe, pbmc

ROOT = Path(__file__).resolve().parent.parent
TABLE = "pbmc3k_celltypes.csv"
COUNTS = ("filtered_gene_bc_matrices", "pbmc3k_raw.h5ad")


def _fail(*_args, **_kwargs):
    raise AssertionError("work started although the input was refused")


@pytest.fixture
def folder_without_counts(tmp_path, monkeypatch) -> Path:
    """A data directory whose ``pbmc3k/`` holds only the optional table (no counts)."""
    folder = tmp_path / "data" / "pbmc3k"
    folder.mkdir(parents=True)
    (folder / TABLE).write_text("barcode,seurat_annotations,louvain\n")
    monkeypatch.setenv("MNISTND_DATA_DIR", str(folder.parent))
    return folder


# ------------------------------------------------------------------ a data folder without counts


def test_counts_layout_names_the_folder_and_the_expected_files(folder_without_counts):
    with pytest.raises(FileNotFoundError) as info:
        pbmc.counts_layout()
    message = str(info.value)
    assert str(folder_without_counts) in message
    assert "pbmc3k_raw.h5ad" in message and "filtered_gene_bc_matrices/hg19/" in message
    assert TABLE in message  # says that the table alone is not enough


@pytest.mark.parametrize("layout", ["h5ad", "10x", "both"])
def test_counts_layout_finds_either_layout_without_reading(tmp_path, layout):
    if layout in ("h5ad", "both"):
        (tmp_path / "pbmc3k_raw.h5ad").write_bytes(b"")  # never read: only located
    if layout in ("10x", "both"):
        mtx = tmp_path / "filtered_gene_bc_matrices" / "hg19"
        mtx.mkdir(parents=True)
        (mtx / "matrix.mtx.gz").write_bytes(b"")
    kind, path = pbmc.counts_layout(tmp_path)
    assert kind == ("10x" if layout == "10x" else "h5ad")
    assert path.exists()


def _offline(*_args, **_kwargs):
    raise OSError("no network in this test")


def test_labelled_cells_without_counts_fails_before_preprocessing(folder_without_counts,
                                                                   monkeypatch):
    monkeypatch.setattr(data, "_download", _offline)  # as offline: the download fails at once
    monkeypatch.setattr(pbmc, "preprocess", _fail)
    monkeypatch.setattr(pbmc, "annotate", _fail)
    with pytest.raises(FileNotFoundError) as info:
        pbmc.labelled_cells("full")
    message = str(info.value)
    assert str(folder_without_counts) in message
    assert "pbmc3k_raw.h5ad" in message and "filtered_gene_bc_matrices/hg19/" in message


def test_labelled_cells_refuses_an_unknown_source(monkeypatch):
    monkeypatch.setattr(data, "load_pbmc3k", _fail)
    with pytest.raises(ValueError, match="source='FULL' is not one of"):
        pbmc.labelled_cells("FULL")


def test_labelled_cells_bundled_uses_bulk_labels():
    with pytest.warns(data.DataSourceWarning):
        cells = pbmc.labelled_cells("bundled")
    assert cells.annotation is None and "bulk_labels" in cells.label_source
    assert cells.labels.nunique() == 10
    assert (cells.adata.obs["cell_type"].astype(str) == cells.labels).all()


# ------------------------------------------------------------------ MoE cluster-number study


def test_study_refuses_fewer_experts_than_components_before_training(monkeypatch):
    monkeypatch.setattr(moe, "make_gaussian_mixture", _fail)
    monkeypatch.setattr(moe, "train_moe", _fail)
    with pytest.raises(ValueError, match=r"n_experts=4 .*max\(n_components\)=5"):
        moe.cluster_number_study([2, 5], n_experts=4, progress=False)
    assert moe.check_study_sizes((2, 5), 5) == ([2, 5], 5)  # as many experts as components: ok


# ------------------------------------------------------------------ real data


@pytest.fixture
def fresh_data_dir(shared_data_dir, tmp_path, monkeypatch) -> Path:
    """The real MNIST and PBMC3k counts (symlinks), without the optional table."""
    if not all((shared_data_dir / "pbmc3k" / name).exists() for name in COUNTS):
        pytest.skip("real PBMC3k counts not available")
    folder = tmp_path / "fresh_data"
    (folder / "pbmc3k").mkdir(parents=True)
    (folder / "mnist").symlink_to(shared_data_dir / "mnist", target_is_directory=True)
    for name in COUNTS:
        (folder / "pbmc3k" / name).symlink_to(shared_data_dir / "pbmc3k" / name)
    monkeypatch.setenv("MNISTND_DATA_DIR", str(folder))
    assert not (folder / "pbmc3k" / TABLE).exists()
    return folder


@pytest.mark.slow
@pytest.mark.realdata
def test_labelled_cells_ignore_the_table_even_when_present(shared_data_dir, monkeypatch):
    if not (shared_data_dir / "pbmc3k" / TABLE).is_file():
        pytest.skip(f"{TABLE} not available: nothing to ignore")
    monkeypatch.setenv("MNISTND_DATA_DIR", str(shared_data_dir))
    cells = pbmc.labelled_cells("full")
    assert "louvain_reference" not in cells.adata.obs
    assert "mnistnd.pbmc.annotate" in cells.label_source
    assert set(cells.labels) == set(pbmc.MARKERS)
    expected = pbmc.annotate(cells.adata).labels.astype(str)
    assert (cells.labels == expected).all()
    assert (cells.adata.obs["cell_type"].astype(str) == expected).all()


def _kernel_guard(tmp_path, monkeypatch) -> None:
    """Run the chapter's kernel with the no-network guard the book tests use."""
    import os

    from smoke_book import KERNEL_GUARD

    guard = tmp_path / "kernel_guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(KERNEL_GUARD)
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(guard) + (os.pathsep + path if path else ""))


def _outputs_text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        parts += [str(v) for k, v in out.get("data", {}).items() if k.startswith("text/")]
    return "\n".join(parts)


@pytest.mark.slow
@pytest.mark.realdata
def test_moe_chapter_runs_on_a_fresh_download(fresh_data_dir, tmp_path, monkeypatch):
    from mnistnd.book import run_notebook

    assert pbmc.counts_layout(fresh_data_dir / "pbmc3k")[0] in ("h5ad", "10x")
    _kernel_guard(tmp_path, monkeypatch)
    executed = run_notebook(ROOT / "notebooks" / "moe_sim_vae.md", profile="smoke",
                            artifacts_dir=tmp_path / "runs", progress_bar=False)
    assert executed.resolve().is_relative_to((tmp_path / "runs").resolve())
    nb = nbformat.read(executed, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [out for c in code for out in c.get("outputs", []) if out.output_type == "error"]
    assert not errors, errors
    assert not any(TABLE in _outputs_text(c) for c in code), "the page lists the optional table"
    (pbmc_cell,) = [c for c in code if "pbmc.labelled_cells(source)" in c.source]
    text = _outputs_text(pbmc_cell)
    assert "cell types (ours: mnistnd.pbmc.annotate" in text, text
    assert f"{len(pbmc.MARKERS)} cell types" in text
    assert all(name in text for name in pbmc.MARKERS), text
