"""Tests of mnistnd.clustering: every method on blobs, determinism, benchmark table and cache."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs

from mnistnd import clustering, metrics
from mnistnd.clustering import benchmark, cluster

FAST = ["kmeans", "gmm", "tmm", "hdbscan", "agglomerative"]
OPTIONS = {"hdbscan": {"min_cluster_size": 20}}


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(400, n_features=5, centers=4, cluster_std=0.4, random_state=0)
    return X, y


def test_registry_lists_paper_and_extra_methods():
    assert {"kmeans", "gmm", "tmm", "leiden"} <= {
        m for m, s in clustering.METHODS.items() if s.in_paper
    }
    assert not clustering.METHODS["hdbscan"].in_paper
    assert not clustering.METHODS["agglomerative"].in_paper


@pytest.mark.parametrize("method", FAST)
def test_recovers_separated_blobs(blobs, method):
    X, y = blobs
    labels = cluster(X, method, n_clusters=4, seed=0, **OPTIONS.get(method, {}))
    assert labels.shape == y.shape and labels.dtype == np.int64
    assert metrics.adjusted_rand(y, labels) > 0.95
    assert clustering.n_clusters_found(labels) == 4


@pytest.mark.slow
def test_leiden_recovers_blobs_and_counts(blobs):
    X, y = blobs
    labels = cluster(X, "leiden", seed=0)
    assert metrics.adjusted_rand(y, labels) > 0.95
    assert clustering.n_clusters_found(labels) == 4
    assert np.array_equal(labels, cluster(X, "leiden", seed=0))
    # a higher resolution gives more, smaller communities
    fine = cluster(X, "leiden", seed=0, resolution=5.0)
    assert clustering.n_clusters_found(fine) > 4


@pytest.mark.parametrize("method", ["kmeans", "gmm", "tmm"])
def test_same_seed_same_partition(method):
    X, _ = make_blobs(300, n_features=3, centers=6, cluster_std=2.0, random_state=1)
    a = cluster(X, method, n_clusters=6, seed=3)
    assert np.array_equal(a, cluster(X, method, n_clusters=6, seed=3))


def test_gmm_covariance_type_is_passed(blobs):
    X, y = blobs
    labels = cluster(X, "gmm", n_clusters=4, seed=0, covariance_type="diag")
    assert metrics.adjusted_rand(y, labels) > 0.95
    with pytest.raises(ValueError, match="covariance_type"):
        cluster(X, "gmm", n_clusters=4, covariance_type="nonsense")


def test_register_one_entry(blobs):
    X, _ = blobs
    clustering.register("first_feature_sign", _sign_method, description="test only")
    try:
        labels = cluster(X, "first_feature_sign", n_clusters=2)
        assert set(labels.tolist()) <= {0, 1}
    finally:
        del clustering.METHODS["first_feature_sign"]


def _sign_method(X, n_clusters, seed):
    return (X[:, 0] > np.median(X[:, 0])).astype(int)


def test_cluster_bad_input(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match=r"not one of the known methods \['agglomerative'"):
        cluster(X, "dbscan")
    with pytest.raises(ValueError, match="n_clusters must be >= 2"):
        cluster(X, "kmeans", n_clusters=1)
    with pytest.raises(ValueError, match="n_clusters must be <= 400"):
        cluster(X, "kmeans", n_clusters=401)
    bad = X.copy()
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="X contains 1 NaN or infinite"):
        cluster(bad, "kmeans")
    with pytest.raises(ValueError, match="2-D"):
        cluster(X[:, 0], "kmeans")


def _datasets():
    X, y = make_blobs(200, n_features=4, centers=3, cluster_std=0.5, random_state=0)
    return {2: (X[:, :2], y), 4: (X, y)}


def test_benchmark_schema_values_and_cache(tmp_path):
    data = _datasets()
    kw = dict(
        methods=["kmeans", "gmm"],
        seeds=[0, 1, 2],
        n_clusters=3,
        artifacts_dir=tmp_path,
        progress=False,
    )
    table = benchmark(data, **kw)
    assert list(table.columns) == list(clustering.COLUMNS)
    assert set(table["experiment"]) == {"truth", "stability", "bootstrap"}
    truth = table[table.experiment == "truth"]
    # 2 dims x 2 methods x 3 seeds x 6 scores
    assert len(truth) == 2 * 2 * 3 * len(metrics.SCORES)
    assert set(truth.metric) == set(metrics.SCORES)
    stab = table[table.experiment == "stability"]
    assert len(stab) == 2 * 2 * 3 and set(stab.pair) == {"0-1", "0-2", "1-2"}
    boot = table[table.experiment == "bootstrap"]
    assert len(boot) == 2 * 2 * 3 * 3
    ari = truth[truth.metric == "ARI"]
    assert (ari.value > 0.95).all() and (ari.n_clusters_found == 3).all()
    assert (truth.seconds > 0).all()
    # cached: same inputs -> the same file is read back, no refit
    path = table.attrs["path"]
    again = benchmark(data, **kw)
    assert again.attrs["path"] == path
    pd.testing.assert_frame_equal(again, table, check_dtype=False)
    # changed inputs -> another file
    other = benchmark(data, **{**kw, "seeds": [0, 1]})
    assert other.attrs["path"] != path


@pytest.mark.slow
def test_benchmark_parallel_matches_serial(tmp_path):
    data = _datasets()
    kw = dict(
        methods=["kmeans", "tmm"],
        seeds=[0, 1],
        n_clusters=3,
        progress=False,
        use_cache=False,
        experiments=["truth"],
    )
    serial = benchmark(data, n_jobs=1, artifacts_dir=tmp_path / "a", **kw)
    parallel = benchmark(data, n_jobs=2, artifacts_dir=tmp_path / "b", **kw)
    pd.testing.assert_series_equal(serial.value, parallel.value)


def test_benchmark_subsample_is_shared_across_dims(tmp_path):
    table = benchmark(
        _datasets(),
        methods=["kmeans"],
        seeds=[0, 1],
        n_clusters=3,
        n_points=50,
        experiments=["truth"],
        artifacts_dir=tmp_path,
        progress=False,
    )
    assert len(table) == 2 * 2 * len(metrics.SCORES)


def test_benchmark_bad_input_before_work(tmp_path):
    data = _datasets()
    kw = dict(n_clusters=3, artifacts_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="datasets must not be empty"):
        benchmark({}, **kw)
    with pytest.raises(ValueError, match="known methods"):
        benchmark(data, methods=["kmeans", "spectral"], **kw)
    with pytest.raises(ValueError, match="stability experiment needs at least two seeds"):
        benchmark(data, methods=["kmeans"], seeds=[0], **kw)
    X, y = data[4]
    with pytest.raises(ValueError, match=r"labels have shape \(199,\) but X has 200"):
        benchmark({4: (X, y[:-1])}, methods=["kmeans"], **kw)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"datasets\[4\].X contains 1 NaN"):
        benchmark({4: (bad, y)}, methods=["kmeans"], **kw)
    with pytest.raises(ValueError, match="n_clusters=500 exceeds"):
        benchmark(data, methods=["kmeans"], **{**kw, "n_clusters": 500})
    with pytest.raises(ValueError, match="experiments"):
        benchmark(data, methods=["kmeans"], experiments=["truth", "robustness"], **kw)
    assert not any(tmp_path.rglob("*.csv"))  # nothing written
