"""Cached artifacts carry a sha256: a truncated one is detected and rebuilt, never read.

One case per kind of cache a chapter reads: the MNIST-Nd datasets (``.h5ad`` written by
``mnistnd.datasets.build``), the clustering benchmark table (``.csv``) and t-SNE maps (``.npz``
of ``mnistnd.embedding``'s cache). Each is built, truncated, and asked for again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_datasets import KW, _synthetic

from mnistnd import clustering, datasets, embedding
from mnistnd._io import intact


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def only(folder: Path, pattern: str) -> Path:
    (path,) = [p for p in folder.rglob(pattern) if not p.name.startswith(".")]
    assert intact(path) and path.with_name(path.name + ".sha256").is_file()
    return path


def test_truncated_dataset_is_refused_then_rebuilt(tmp_path):
    data = _synthetic()
    datasets.build([2], artifacts_dir=tmp_path, data=data, **KW)
    path = only(tmp_path, "mnist_2d.h5ad")
    before = datasets.load_mnistnd(2, "artifacts", tmp_path).X.copy()
    truncate(path)
    assert not intact(path)
    with pytest.raises(ValueError, match="differs from the sha256.*mnistnd run"):
        datasets.load_mnistnd(2, "artifacts", tmp_path)
    table = datasets.build([2], artifacts_dir=tmp_path, data=data, **KW)
    assert table["reused"].tolist() == [False], "a damaged dataset must be rebuilt"
    assert intact(path)
    np.testing.assert_allclose(datasets.load_mnistnd(2, "artifacts", tmp_path).X, before,
                               rtol=1e-5, atol=1e-6)


def test_truncated_benchmark_table_is_recomputed(tmp_path):
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(c, 0.3, (40, 2)) for c in (0, 3, 6)])
    labels = np.repeat([0, 1, 2], 40)
    kwargs = dict(methods=["kmeans"], seeds=[0], n_clusters=3, experiments=["truth"],
                  artifacts_dir=tmp_path, progress=False)
    first = clustering.benchmark({2: (X, labels)}, **kwargs)
    path = only(tmp_path, "benchmark_*.csv")
    truncate(path)
    again = clustering.benchmark({2: (X, labels)}, **kwargs)
    assert intact(path)
    assert again["value"].tolist() == pytest.approx(first["value"].tolist())


def test_truncated_tsne_map_is_recomputed(tmp_path):
    X = np.random.default_rng(0).normal(size=(60, 5))
    kwargs = dict(n_iter=20, early_exaggeration_iter=10, perplexity=10.0, gradients="bh",
                  cache_dir=tmp_path, progress=False)
    first = embedding.tsne(X, **kwargs)
    path = only(tmp_path, "tsne-*.npz")
    truncate(path)
    again = embedding.tsne(X, **kwargs)
    assert intact(path)
    np.testing.assert_allclose(again, first)
