"""The MNIST-Nd release shipped in the package: manifest, loading, bad input, bitwise verify."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from mnistnd import datasets, release
from mnistnd.release import ReleaseError

PAPER_DIMS = [2, 4, 8, 16, 32, 64]


@pytest.fixture
def copy(tmp_path, monkeypatch):
    """A copy of the shipped release that a test may damage; the package reads the copy."""
    dest = tmp_path / "release" / release.VERSION
    shutil.copytree(release.release_dir(), dest)
    monkeypatch.setattr(release, "release_dir", lambda version=release.VERSION: dest.parent
                        / version)
    return dest


def test_manifest_lists_every_file_with_its_hash():
    meta = release.manifest()
    folder = release.release_dir()
    on_disk = {p.name for p in folder.iterdir() if p.is_file()} - {"manifest.json"}
    assert set(meta["files"]) == on_disk
    assert release.check_all() == {n: e["sha256"] for n, e in meta["files"].items()}
    assert sum(e["bytes"] for e in meta["files"].values()) <= 10 * 2**20
    assert meta["name"] == release.NAME and "reproduced by this compendium" in meta["name"]
    assert meta["training"]["epochs"] == 100 and meta["training"]["batch_size"] == 64
    assert meta["training"]["patience"] == 10 and meta["training"]["min_delta"] == 1e-4
    assert meta["training"]["n_train"] is None and meta["training"]["seed"] == 0
    assert len(meta["code"]["commit"]) == 40
    assert {f["name"] for f in meta["data"]["files"]} >= {"t10k-images-idx3-ubyte.gz"}
    for d in PAPER_DIMS:
        model = meta["models"][str(d)]
        assert model["beta"] == pytest.approx(8 / d)
        assert 0 <= model["best_epoch"] < model["epochs_run"] <= 100
        assert model["seconds"] > 0


@pytest.mark.parametrize("d", PAPER_DIMS)
def test_release_datasets_have_the_documented_layout(d):
    adata = datasets.load_mnistnd(d, source="release")
    assert adata.shape == (10000, d) and adata.X.dtype == np.float32
    assert np.isfinite(adata.X).all()
    assert adata.obs["digit"].value_counts().sort_index().tolist() == [
        980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # the MNIST test split
    np.testing.assert_array_equal(adata.obs["test_index"], np.arange(10000))
    assert set(adata.obs["component"]) <= set(range(10))
    assert adata.uns["release"]["name"] == release.NAME
    history = release.load_history(d)
    assert len(history) == adata.uns["epochs_run"]
    best = adata.uns["best_epoch"]
    assert history["val_loss"].iloc[best] == pytest.approx(history["val_loss"].min())


def test_reconstructions_one_per_digit():
    images, recs = release.load_reconstructions()
    assert images.shape == (10, 784) and sorted(recs) == PAPER_DIMS
    for rec in recs.values():
        assert rec.shape == (10, 784) and 0 <= rec.min() and rec.max() <= 1
    # a bigger latent space reconstructs the examples at least as well as d = 2
    err = {d: float(np.mean((r - images) ** 2)) for d, r in recs.items()}
    assert err[64] < err[2]


def test_load_from_a_clean_environment(tmp_path):
    """Right after install: no artifacts folder anywhere, no data folder, nothing written."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MNISTND_ARTIFACTS_DIR", "MNISTND_DATA_DIR")}
    code = ("from mnistnd.datasets import load_mnistnd; a = load_mnistnd(16); "
            "print(a.shape, a.uns['release']['version'])")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["(10000,", "16)", release.VERSION]
    assert list(tmp_path.iterdir()) == []


def test_auto_prefers_a_profiles_own_datasets(tmp_path):
    folder = tmp_path / "quick"
    assert datasets.load_mnistnd(2, "auto", folder).uns["release"]["version"] == release.VERSION
    rng = np.random.default_rng(0)
    X = rng.random((80, 784), dtype=np.float32)
    y = np.arange(80) % 10
    datasets.build([2], epochs=1, n_train=None, artifacts_dir=folder, progress=False,
                   data=(X, y, X[:30], y[:30]))
    assert datasets.load_mnistnd(2, "auto", folder).n_obs == 30
    assert datasets.load_mnistnd(2, "release", folder).n_obs == 10000
    assert datasets.load_mnistnd(4, "auto", folder).n_obs == 10000  # not trained here


def test_bad_source_and_dimension():
    with pytest.raises(ValueError, match=r"source='paper' is not one of \['auto', 'release'"):
        datasets.load_mnistnd(2, "paper")
    with pytest.raises(ValueError, match=r"d: release 'v1' has latent dimensions \[2, 4"):
        datasets.load_mnistnd(3, "release")
    with pytest.raises(ValueError, match="source="):
        datasets.load_many([2], "/tmp/somewhere")


def test_missing_file_is_named(copy):
    (copy / "mnist_8d.npz").unlink()
    with pytest.raises(ReleaseError, match=r"mnist_8d\.npz.* is missing"):
        release.load(8)
    assert release.load(4).n_vars == 4  # the others still load


def test_altered_file_fails_its_hash(copy):
    path = copy / "history.csv"
    path.write_text(path.read_text().replace("0.", "1.", 1))
    with pytest.raises(ReleaseError, match=r"history\.csv.* fails its sha256 check"):
        release.load_history(2)
    with pytest.raises(ReleaseError, match="sha256"):
        datasets.load_mnistnd(2, "release")


def test_other_manifest_format_is_refused(copy):
    meta = json.loads((copy / "manifest.json").read_text())
    meta["format"] = 99
    (copy / "manifest.json").write_text(json.dumps(meta))
    with pytest.raises(ReleaseError, match=r"manifest.*format 99.*reads format 1"):
        release.load(2)


def test_unknown_file_and_missing_manifest(copy):
    with pytest.raises(ReleaseError, match="not in the manifest"):
        release.check_file("weights.pt")
    (copy / "manifest.json").unlink()
    with pytest.raises(ReleaseError, match=r"manifest file .* is missing"):
        release.dims()


def test_verify_checks_arguments_before_training():
    with pytest.raises(ValueError, match="d: release"):
        release.verify([3])
    with pytest.raises(ValueError, match="epochs: the release's model of d = 2 ran"):
        release.verify([2], epochs=1000)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        release.verify([2], epochs=0)


@pytest.mark.realdata
def test_release_verify_one_epoch_bit_for_bit(shared_data_dir):
    """`mnistnd release verify --dims 2 --epochs 1` retrains epoch 0 and matches exactly."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "mnistnd.cli", "release", "verify", "--dims",
                          "2", "--epochs", "1"], capture_output=True, text=True, env=env,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert "bit for bit" in out.stdout and "identical" in out.stdout


def test_manifest_is_a_fresh_copy_each_call():
    first = release.manifest()
    first["files"].clear()
    assert release.manifest()["files"], "a caller's change must not reach the next caller"
