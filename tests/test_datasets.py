"""Tests of mnistnd.datasets: build, reuse, load round trip, export, bad inputs."""

from __future__ import annotations

import gzip
import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from mnistnd import datasets


def _synthetic(seed=0, n_train=160, n_test=50, p=30):
    rng = np.random.default_rng(seed)
    protos = rng.random((3, p)) > 0.5

    def draw(n):
        y = rng.integers(0, 3, n)
        X = np.where(rng.random((n, p)) < 0.9, protos[y], ~protos[y]).astype(np.float32)
        return X, y

    return (*draw(n_train), *draw(n_test))


KW = dict(epochs=2, batch_size=32, patience=None, seed=0, device="cpu", progress=False,
          num_threads=1)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("art")
    data = _synthetic()
    table = datasets.build([2, 3], artifacts_dir=folder, data=data, **KW)
    return folder, data, table


def test_build_and_load_round_trip(built):
    folder, (X_tr, y_tr, X_te, y_te), table = built
    assert table["latent_dim"].tolist() == [2, 3] and not table["reused"].any()
    assert table["beta"].tolist() == [4.0, 8 / 3]
    adata = datasets.load_mnistnd(3, "artifacts", folder)
    assert adata.shape == (50, 3) and adata.X.dtype == np.float32
    np.testing.assert_array_equal(adata.obs["digit"].to_numpy(), y_te)
    # the stored embedding is the deterministic encoding by the saved (best) model
    model = datasets.load_model(3, folder)
    import torch

    np.testing.assert_allclose(adata.X, model.encode(torch.from_numpy(X_te)).numpy(), rtol=1e-5,
                               atol=1e-6)
    uns = adata.uns
    assert uns["config"]["latent_dim"] == 3 and uns["config"]["epochs"] == 2
    assert uns["data_source"]["source"] == "custom"
    assert {"torch", "numpy", "anndata"} <= set(uns["versions"])
    assert 0 <= uns["best_epoch"] < 2 and uns["seconds"] > 0
    history = datasets.load_history(3, "artifacts", folder)
    assert list(history.columns[:2]) == ["epoch", "train_loss"] and len(history) == 2
    assert uns["final_losses"]["val_loss"] == pytest.approx(
        history["val_loss"].iloc[uns["best_epoch"]])
    assert datasets.available_dims(folder) == [2, 3]
    assert datasets.summary(artifacts_dir=folder)["latent_dim"].tolist() == [2, 3]
    # no checkpoint is left behind once finished
    assert not list((folder / "mnistnd" / "runs").glob("*/checkpoint.pt"))


def test_unchanged_config_reuses_changed_config_retrains(built):
    folder, data, _ = built
    before = datasets.load_mnistnd(2, "artifacts", folder)
    again = datasets.build([2], artifacts_dir=folder, data=data, **KW)
    assert again["reused"].tolist() == [True]
    changed = datasets.build([2], artifacts_dir=folder, data=data, **{**KW, "epochs": 1})
    assert changed["reused"].tolist() == [False]
    after = datasets.load_mnistnd(2, "artifacts", folder)
    assert after.uns["config_hash"] != before.uns["config_hash"]
    assert after.uns["epochs_run"] == 1
    with pytest.raises(ValueError, match="different configuration.*epochs: built with 1"):
        datasets.load_mnistnd(2, "artifacts", folder, expected_config={"epochs": 2})
    assert datasets.load_mnistnd(2, "artifacts", folder, expected_config={"epochs": 1}).n_obs == 50
    # rebuild the 2-epoch dataset that the other tests of this module expect
    datasets.build([2], artifacts_dir=folder, data=data, **KW)


def test_two_builds_with_the_same_seed_are_identical(tmp_path):
    data = _synthetic(n_train=80, n_test=20)
    for name in ("a", "b"):
        datasets.build([2], artifacts_dir=tmp_path / name, data=data, **{**KW, "epochs": 1})
    a = datasets.load_mnistnd(2, "artifacts", tmp_path / "a")
    b = datasets.load_mnistnd(2, "artifacts", tmp_path / "b")
    np.testing.assert_array_equal(a.X, b.X)


def test_parallel_build_equals_serial_build(built, tmp_path):
    folder, data, table = built
    par = datasets.build([3, 2], artifacts_dir=tmp_path, data=data, **{**KW, "n_jobs": 2})
    assert par["latent_dim"].tolist() == [3, 2] and not par["reused"].any()
    for d in (2, 3):  # same weights, so the same embedding, as one model at a time
        np.testing.assert_array_equal(datasets.load_mnistnd(d, "artifacts", tmp_path).X,
                                      datasets.load_mnistnd(d, "artifacts", folder).X)
    assert set(table["latent_dim"]) == {2, 3}


def test_incompatible_checkpoint_is_discarded(tmp_path):
    import torch

    data = _synthetic(n_train=80, n_test=20)
    kw = {**KW, "epochs": 1}
    datasets.build([2], artifacts_dir=tmp_path / "ref", data=data, **kw)
    run_dir = next((tmp_path / "ref" / "mnistnd" / "runs").iterdir())
    # plant a foreign checkpoint where a fresh build of the same config will look
    target = tmp_path / "new" / "mnistnd" / "runs" / run_dir.name
    target.mkdir(parents=True)
    torch.save({"version": 1, "fingerprint": "other"}, target / "checkpoint.pt")
    with pytest.warns(UserWarning, match="incompatible checkpoint"):
        datasets.build([2], artifacts_dir=tmp_path / "new", data=data, **kw)
    np.testing.assert_array_equal(datasets.load_mnistnd(2, "artifacts", tmp_path / "new").X,
                                  datasets.load_mnistnd(2, "artifacts", tmp_path / "ref").X)


def test_missing_dim_names_the_chapter(built):
    folder, _, _ = built
    with pytest.raises(FileNotFoundError, match=r"notebooks/mvae_training\.md.*latent_dims"):
        datasets.load_mnistnd(16, "artifacts", folder)


def test_export_writes_files_and_manifest(built, tmp_path):
    folder, _, _ = built
    written = datasets.export(artifacts_dir=folder, out_dir=tmp_path / "out", latent_dims=[2, 3])
    names = sorted(p.name for p in written)
    assert names == sorted(["mnist_2d.h5ad", "mnist_2d.csv.gz", "mnist_3d.h5ad",
                            "mnist_3d.csv.gz", "manifest.json"])
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    for entry in manifest["datasets"]:
        data = (tmp_path / "out" / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert entry["bytes"] == len(data)
    with gzip.open(tmp_path / "out" / "mnist_3d.csv.gz", "rt") as fh:
        table = pd.read_csv(fh)
    adata = datasets.load_mnistnd(3, "artifacts", folder)
    assert list(table.columns) == ["z0", "z1", "z2", "digit"]
    np.testing.assert_allclose(table[["z0", "z1", "z2"]].to_numpy(), adata.X, rtol=1e-6)
    # gzip without timestamp: exporting again gives identical bytes
    again = datasets.export(artifacts_dir=folder, out_dir=tmp_path / "out2", latent_dims=[3])
    assert again[1].read_bytes() == (tmp_path / "out" / "mnist_3d.csv.gz").read_bytes()
    with pytest.raises(FileNotFoundError, match="mvae_training"):
        datasets.export(artifacts_dir=tmp_path / "empty")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"latent_dims": []}, ValueError, "latent_dims must not be empty"),
        ({"latent_dims": [0]}, ValueError, r"latent_dims\[0\]"),
        ({"latent_dims": [2.5]}, TypeError, r"latent_dims\[0\]"),
        ({"latent_dims": [2, 2]}, ValueError, "repeated"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"epochs": 0}, ValueError, "epochs"),
        ({"source": "web"}, ValueError, "source"),
        ({"n_jobs": 0}, ValueError, "n_jobs"),
        ({"num_threads": 0}, ValueError, "num_threads"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, error, match):
    args = {"latent_dims": [2], "artifacts_dir": tmp_path, "data": _synthetic(), **KW, **kwargs}
    with pytest.raises(error, match=match):
        datasets.build(**args)
    assert not list(tmp_path.rglob("*.h5ad"))


def test_subset_larger_than_data_means_all(tmp_path):
    data = _synthetic(n_train=60, n_test=20)
    with pytest.warns(UserWarning, match="n_train=500 exceeds the 60 training images"):
        table = datasets.build([2], artifacts_dir=tmp_path, data=data, n_train=500, n_test=20,
                               **{**KW, "epochs": 1})
    assert table["n_train"].tolist() == [60] and table["n_test"].tolist() == [20]


def test_bad_pixels(tmp_path):
    X_tr, y_tr, X_te, y_te = _synthetic()
    bad = X_tr.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="X_train contains 1 NaN"):
        datasets.build([2], artifacts_dir=tmp_path, data=(bad, y_tr, X_te, y_te), **KW)
    bad = X_te * 255
    with pytest.raises(ValueError, match=r"X_test: pixel values must lie in \[0, 1\]"):
        datasets.build([2], artifacts_dir=tmp_path, data=(X_tr, y_tr, bad, y_te), **KW)
    assert not list(tmp_path.rglob("*.h5ad"))


@pytest.mark.realdata
def test_real_mnist_subset(shared_data_dir, tmp_path):
    table = datasets.build([2], artifacts_dir=tmp_path, source="full", n_train=300, n_test=200,
                           **{**KW, "epochs": 1})
    assert table["source"].tolist() == ["full"]
    adata = datasets.load_mnistnd(2, "artifacts", tmp_path, expected_config={"source": "full"})
    assert adata.n_obs == 200 and set(adata.obs["digit"].unique()) <= set(range(10))
    info = json.loads(adata.uns["data_source"]["json"])
    assert any(f["name"].startswith("t10k") for f in info["files"])


@pytest.mark.slow
@pytest.mark.realdata
def test_chapter_runs_under_smoke_and_writes_dims_2_and_64(shared_data_dir, tmp_path):
    from mnistnd.book import run_notebook

    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    out = run_notebook(root / "notebooks" / "mvae_training.md", profile="smoke",
                       artifacts_dir=tmp_path, progress_bar=False)
    assert out.exists()
    folder = tmp_path / "smoke" if (tmp_path / "smoke").is_dir() else tmp_path
    assert {2, 64} <= set(datasets.available_dims(folder))
    assert datasets.load_mnistnd(64, "artifacts", folder).n_vars == 64


def test_encoded_images_pairs_rows_or_refuses_other_images():
    import anndata

    from mnistnd.datasets import encoded_images

    y = np.array([3, 1, 4, 1, 5, 9])
    X = np.arange(12, dtype=np.float32).reshape(6, 2)
    obs = pd.DataFrame({"test_index": [4, 0], "digit": [5, 3]})
    ad = anndata.AnnData(np.zeros((2, 2), np.float32), obs=obs)
    images, digits = encoded_images(ad, X, y)
    np.testing.assert_array_equal(images, X[[4, 0]])
    np.testing.assert_array_equal(digits, [5, 3])
    assert encoded_images(ad, X[:3], y[:3]) is None  # index beyond these images
    assert encoded_images(ad, X, y[::-1]) is None  # digits disagree: other images
