"""Tests of mnistnd.datasets.export_clustbench: the battery read back and scored by clustbench."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mnistnd import datasets, release
from mnistnd.cli import main

clustbench = pytest.importorskip("clustbench")

DIMS = [2, 8]


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    root = tmp_path_factory.mktemp("suite")
    written = datasets.export_clustbench(root, DIMS)
    return root, written


def test_files_follow_the_clustbench_layout(suite):
    root, written = suite
    names = [f"mnist_{d}d{ext}" for d in DIMS for ext in (".data.gz", ".labels0.gz", ".txt")]
    assert [p.name for p in written] == [*names, "README.txt"]
    assert all(p.parent == root / "mnistnd" and p.is_file() for p in written)
    assert sorted(q.name for q in (root / "mnistnd").iterdir()) == sorted(p.name for p in written)
    assert clustbench.get_dataset_names("mnistnd", path=root) == ["mnist_2d", "mnist_8d"]
    assert "mnistnd" in clustbench.get_battery_names(path=root)


@pytest.mark.parametrize("d", DIMS)
def test_clustbench_reads_back_the_release(suite, d):
    root, _ = suite
    adata = datasets.load_mnistnd(d, source="release")
    bench = clustbench.load_dataset("mnistnd", f"mnist_{d}d", path=root)
    assert bench.data.shape == (adata.n_obs, d) == (10_000, d)
    assert len(bench.labels) == 1 and list(bench.n_clusters) == [10]
    np.testing.assert_array_equal(bench.labels[0], adata.obs["digit"].to_numpy() + 1)
    # nine significant digits give back every float32 exactly
    raw = clustbench.load_dataset("mnistnd", f"mnist_{d}d", path=root, preprocess=False)
    np.testing.assert_array_equal(raw.data.astype(np.float32), adata.X)
    text = bench.description
    assert release.NAME in " ".join(text.split())
    assert f"Dimension: {d}\n" in text and "Points: 10000 " in text
    assert "1 = digit 0, ..., 10 = digit 9" in text


def test_kmeans_scores_between_zero_and_one_and_beats_chance(suite):
    from sklearn.cluster import KMeans

    root, _ = suite
    bench = clustbench.load_dataset("mnistnd", "mnist_8d", path=root, preprocess=False)
    km = KMeans(n_clusters=10, n_init=1, random_state=0).fit_predict(bench.data)
    chance = np.random.default_rng(0).integers(1, 11, size=len(km))
    score = clustbench.get_score(bench.labels, {10: km + 1})
    random_score = clustbench.get_score(bench.labels, {10: chance})
    assert 0.0 <= random_score < score <= 1.0


def test_exporting_twice_gives_identical_bytes(suite, tmp_path):
    root, written = suite
    again = datasets.export_clustbench(tmp_path, DIMS)
    assert [p.name for p in again] == [p.name for p in written]
    for a, b in zip(written, again, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    gz = (root / "mnistnd" / "mnist_2d.data.gz").read_bytes()
    assert gz[4:8] == b"\0\0\0\0"  # gzip header: no timestamp


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(source="web"), ValueError, "source"),
        (dict(latent_dims=[3]), ValueError, "latent_dims"),
        (dict(latent_dims=[2, 2]), ValueError, "latent_dims"),
        (dict(latent_dims=[0]), ValueError, "latent_dims"),
        (dict(latent_dims="2"), TypeError, "latent_dims"),
        (dict(battery="../up"), ValueError, "battery"),
        (dict(battery=""), ValueError, "battery"),
    ],
)
def test_bad_arguments_are_refused_before_writing(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        datasets.export_clustbench(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_out_dir_or_battery_that_is_a_file_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(NotADirectoryError, match="out_dir"):
        datasets.export_clustbench(blocker, [2])
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "mnistnd").write_text("not a folder")
    with pytest.raises(NotADirectoryError, match="battery"):
        datasets.export_clustbench(tmp_path / "suite", [2])


def _fake_artifact(folder: Path, d: int, digits) -> None:
    """A small trained-looking dataset in an artifacts folder (no training needed)."""
    import anndata
    import pandas as pd

    n = len(digits)
    X = np.random.default_rng(d).normal(size=(n, d)).astype(np.float32)
    obs = pd.DataFrame({"digit": np.asarray(digits, dtype=np.int64),
                        "test_index": np.arange(n, dtype=np.int64)},
                       index=[f"test_{i}" for i in range(n)])
    uns = {"config": {"latent_dim": d, "epochs": 2, "n_train": 100}, "config_hash": "f" * 16}
    path = datasets.dataset_path(d, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    anndata.AnnData(X=X, obs=obs, uns=uns).write_h5ad(path)


def test_auto_source_takes_trained_datasets_then_the_release(tmp_path):
    art = tmp_path / "art"
    _fake_artifact(art, 2, np.arange(30) % 10)
    written = datasets.export_clustbench(tmp_path / "suite", [2, 4], source="auto",
                                         artifacts_dir=art, battery="mine")
    mine = clustbench.load_dataset("mine", "mnist_2d", path=tmp_path / "suite")
    assert mine.data.shape == (30, 2) and list(mine.n_clusters) == [10]
    assert "not its release" in mine.description and "f" * 16 in mine.description
    from_release = clustbench.load_dataset("mine", "mnist_4d", path=tmp_path / "suite")
    assert release.NAME in " ".join(from_release.description.split())
    assert written[-1] == tmp_path / "suite" / "mine" / "README.txt"


def test_missing_digit_or_missing_datasets_are_refused(tmp_path):
    art = tmp_path / "art"
    with pytest.raises(FileNotFoundError, match="mvae_training"):
        datasets.export_clustbench(tmp_path / "out", source="artifacts", artifacts_dir=art)
    _fake_artifact(art, 2, np.arange(30) % 9)
    with pytest.raises(ValueError, match=r"missing \[9\], other values \[\]"):
        datasets.export_clustbench(tmp_path / "out", source="artifacts", artifacts_dir=art)
    with pytest.raises(ValueError, match="latent_dims"):
        datasets.export_clustbench(tmp_path / "out", [8], source="artifacts", artifacts_dir=art)
    assert not (tmp_path / "out").exists()


def test_cli_exports_the_release_battery(tmp_path, monkeypatch, capsys):
    calls = []

    def fake(out_dir, latent_dims=None, *, source, artifacts_dir, battery="mnistnd"):
        calls.append((Path(out_dir), latent_dims, source))
        folder = Path(out_dir) / battery
        return [folder / "mnist_2d.data.gz", folder / "README.txt"]

    monkeypatch.setattr(datasets, "export_clustbench", fake)
    # the release needs no artifacts folder
    argv = ["export", "--format", "clustbench", "--artifacts-dir", str(tmp_path / "none"),
            "--out", str(tmp_path / "suite")]
    assert main(argv) == 0
    assert main([*argv, "--source", "auto"]) == 0
    assert calls == [(tmp_path / "suite", None, "release"), (tmp_path / "suite", None, "auto")]
    assert "mnist_2d.data.gz" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--format", "h5ad", "--source", "release"], "--format clustbench only"),
        (["--format", "clustbench", "--source", "artifacts"], "does not exist"),
    ],
)
def test_cli_bad_export_options_exit_2(tmp_path, capsys, extra, message):
    code = main(["export", "--artifacts-dir", str(tmp_path / "none"), "--out",
                 str(tmp_path / "suite"), *extra])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "suite").exists()


def test_cli_refuses_file_as_clustbench_output(tmp_path, capsys):
    blocker = tmp_path / "out"
    blocker.write_text("a file")
    code = main(["export", "--format", "clustbench", "--artifacts-dir", str(tmp_path / "r"),
                 "--out", str(blocker)])
    assert code == 2
    assert "--out" in capsys.readouterr().err
