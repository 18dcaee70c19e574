"""Tests of mnistnd.clustering: every method on blobs, determinism, benchmark table and cache."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs
from threadpoolctl import threadpool_info

from mnistnd import clustering, metrics
from mnistnd._parallel import run_tasks
from mnistnd.clustering import benchmark, cluster
from mnistnd.datasets import load_many

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


@pytest.mark.parametrize(("method", "estimator"), [
    ("kmeans", "sklearn.cluster.KMeans"), ("gmm", "sklearn.mixture.GaussianMixture")])  # fmt: skip
def test_sklearn_methods_run_on_one_thread(blobs, method, estimator, monkeypatch):
    """Called directly (not in a pinned worker), k-means and the GMM still fit on one BLAS and
    OpenMP thread, and the caller's thread settings are back afterwards."""
    import importlib

    from threadpoolctl import threadpool_limits

    module, name = estimator.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    fit_predict, seen = cls.fit_predict, []

    def spy(self, X, y=None):
        seen.append([pool["num_threads"] for pool in threadpool_info()])
        return fit_predict(self, X, y)

    monkeypatch.setattr(cls, "fit_predict", spy)
    with threadpool_limits(limits=2):
        before = [pool["num_threads"] for pool in threadpool_info()]
        cluster(blobs[0], method, n_clusters=4)
        assert [pool["num_threads"] for pool in threadpool_info()] == before
    assert seen and all(n == 1 for n in seen[0])


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


@pytest.mark.slow
def test_leiden_above_scanpy_exact_threshold():
    """Above 4,096 points scanpy switches to approximate pynndescent neighbours, whose sparse
    output crashed scanpy 1.11 under SciPy 1.17; ours asks for exact neighbours at any size."""
    X, y = make_blobs(5000, n_features=8, centers=5, cluster_std=0.5, random_state=2)
    labels = cluster(X, "leiden", seed=0)
    assert metrics.adjusted_rand(y, labels) > 0.95


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


def _warning_method(X, n_clusters, seed):
    import warnings

    warnings.warn("did not converge (test)", UserWarning, stacklevel=1)
    return (X[:, 0] > np.median(X[:, 0])).astype(int)


def test_benchmark_reports_fit_warnings_once_with_counts(blobs, tmp_path):
    X, y = blobs
    clustering.register("warns", _warning_method, description="test only")
    try:
        with pytest.warns(UserWarning, match=r"warns: 3 of 3 fits warned: did not converge") as w:
            benchmark({2: (X, y)}, methods=["warns", "kmeans"], seeds=[0, 1, 2], n_jobs=1,
                      experiments=["truth"], artifacts_dir=tmp_path, progress=False)
        assert sum("fits warned" in str(r.message) for r in w) == 1  # one summary, k-means silent
    finally:
        del clustering.METHODS["warns"]


def test_leiden_graph_is_shared_by_seeds_without_changing_labels(blobs):
    X, _ = blobs
    clustering._GRAPHS.clear()
    cached = [cluster(X, "leiden", seed=s) for s in range(3)]
    assert len(clustering._GRAPHS) == 1  # one graph for the three seeds
    fresh = []
    for s in range(3):
        clustering._GRAPHS.clear()
        fresh.append(cluster(X, "leiden", seed=s))
    assert all(np.array_equal(a, b) for a, b in zip(cached, fresh, strict=True))
    other = cluster(X, "leiden", seed=0, n_neighbors=5)  # another graph, not the cached one
    assert len(clustering._GRAPHS) == 2 and other.shape == cached[0].shape


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


def test_benchmark_cache_expires_with_the_method_code(tmp_path, monkeypatch):
    kw = dict(methods=["kmeans"], seeds=[0, 1], n_clusters=3, artifacts_dir=tmp_path,
              progress=False, experiments=["truth"])
    path = benchmark(_datasets(), **kw).attrs["path"]
    monkeypatch.setattr(clustering, "_method_code", lambda: "edited")
    assert benchmark(_datasets(), **kw).attrs["path"] != path


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


def _fake_table(leiden_high=0.8, others_high=0.5, n_seeds=6):
    """A benchmark-shaped table where Leiden keeps its score with d and the others decay."""
    rng = np.random.default_rng(0)
    rows = []
    for dim in (2, 64):
        for i, m in enumerate(("kmeans", "gmm", "tmm", "leiden")):
            # distinct levels per method (no ties), so every score ranks the methods alike
            base = 0.8 + 0.03 * i if dim == 2 else (leiden_high if m == "leiden" else others_high)
            base += 0.0 if dim == 2 or m in ("leiden", "tmm") else 0.03 * i
            if m == "tmm" and dim == 64:
                base += 0.1  # TMM decays less than k-means and GMM
            for s in range(n_seeds):
                for metric in metrics.SCORES:
                    v = base + 0.002 * rng.standard_normal()
                    rows.append((dim, m, s, "truth", metric, v, 10, 0.1, ""))
                rows.append((dim, m, s, "stability", "ARI", base, 10, np.nan, f"{s}-x"))
                for pair in ("0-1", "0-2", "1-2"):
                    b = base - (0.05 if (m == "leiden" and dim == 64) else 0.0)
                    rows.append((dim, m, s, "bootstrap", "ARI", b, 10, 0.1, pair))
    return pd.DataFrame(rows, columns=list(clustering.COLUMNS))


def test_summarize_and_bootstrap_ci():
    table = _fake_table()
    s = clustering.summarize(table, "truth", "ARI")
    assert len(s) == 8 and (s.n == 6).all()
    leiden64 = s[(s.dim == 64) & (s.method == "leiden")]["mean"].item()
    assert leiden64 == pytest.approx(0.8, abs=0.02)
    ci = clustering.bootstrap_ci(table, "truth", "ARI", n_boot=500)
    assert ((ci["low"] <= ci["mean"]) & (ci["mean"] <= ci["high"])).all()
    assert ((ci["high"] - ci["low"]) < 0.05).all()
    with pytest.raises(ValueError, match="no rows"):
        clustering.summarize(table, "truth", "ACC")


def test_paired_tests_detect_a_real_difference():
    table = _fake_table()
    out = clustering.paired_tests(table, "leiden", "truth", "ARI")
    at64 = out[out.dim == 64].set_index("method")
    assert (at64.mean_diff > 0.2).all() and (at64.wins == 6).all()
    assert (at64.p_ttest < 1e-3).all()
    assert np.allclose(at64.p_wilcoxon, 2 / 2**6)  # exact test, all 6 pairs agree
    at2 = out[out.dim == 2]
    assert (at2.p_holm > 0.05).all()  # no real difference at d = 2
    assert (out.p_holm >= out.p_wilcoxon).all()
    with pytest.raises(ValueError, match="reference='spectral'"):
        clustering.paired_tests(table, "spectral")


def test_paper_claims_follow_the_numbers():
    from mnistnd.papers.mnist_nd import benchmark_claims

    good = benchmark_claims(_fake_table())
    assert good.agrees.tolist() == [True, True, True, True, True, True]
    # Leiden decays as much as the others: the Fig 3A/3B/"outperforms" claims must fail
    bad = benchmark_claims(_fake_table(leiden_high=0.4))
    by_claim = dict(zip(bad.claim, bad.agrees, strict=True))
    assert by_claim[good.claim[0]] is False and by_claim[good.claim[4]] is False
    only_truth = benchmark_claims(_fake_table().query("experiment == 'truth'"))
    assert only_truth.agrees.isna().sum() == 3  # stability and bootstrap claims not testable
    one_dim = benchmark_claims(_fake_table().query("dim == 64"))
    assert one_dim.agrees.tolist() == [None, None, None, None, True, True]
    assert one_dim.ours.tolist()[:4] == ["not run"] * 4


def test_benchmark_accepts_anndata(tmp_path):
    ad = pytest.importorskip("anndata")
    X, y = make_blobs(150, n_features=3, centers=3, cluster_std=0.4, random_state=0)
    a = ad.AnnData(X.astype(np.float32))
    a.obs["digit"] = pd.Categorical(y.astype(str))
    table = benchmark(
        {3: a},
        methods=["kmeans"],
        seeds=[0, 1],
        n_clusters=3,
        artifacts_dir=tmp_path,
        progress=False,
    )
    assert table[(table.experiment == "truth") & (table.metric == "ARI")].value.min() > 0.95
    del a.obs["digit"]
    with pytest.raises(ValueError, match="no obs\\['digit'\\]"):
        benchmark({3: a}, methods=["kmeans"], seeds=[0, 1], artifacts_dir=tmp_path)


# --------------------------------------------------------------------------- mnistnd._parallel


def _blas_threads(x):
    return x, max((p["num_threads"] for p in threadpool_info()), default=1)


def _pow(a, b, *, offset=0):
    return a**b + offset


def test_run_tasks_order_kwargs_and_single_thread():
    assert run_tasks(_pow, [(2, 3), (3, 2)], kwargs={"offset": 1}, progress=False) == [9, 10]
    out = run_tasks(_blas_threads, [1, 2, 3], n_jobs=1, progress=False)
    assert [x for x, _ in out] == [1, 2, 3]
    assert all(n == 1 for _, n in out)  # BLAS limited to one thread inside tasks


def _record_pid(path):
    import os

    with open(path, "a") as fh:
        fh.write(f"{os.getpid()}\n")


def _pid(x):
    import os

    return os.getpid()


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_run_tasks_warmup_runs_once_per_process(tmp_path, n_jobs):
    log = tmp_path / "warm.txt"
    pids = run_tasks(_pid, list(range(8)), n_jobs=n_jobs, progress=False,
                     warmup=(_record_pid, (str(log),)))
    warmed = log.read_text().split()
    assert sorted(warmed) == sorted(set(warmed))  # never twice in one process
    assert set(pids) <= {int(p) for p in warmed}  # every process that ran a task warmed first
    run_tasks(_pid, [0], n_jobs=1, progress=False, warmup=(_record_pid, (str(log),)))
    assert len(log.read_text().split()) == len(warmed) + (n_jobs > 1)  # this process: once
    with pytest.raises(TypeError, match="warmup"):
        run_tasks(_pid, [0], warmup=_record_pid)


def test_run_tasks_uses_caller_backend():
    with joblib.parallel_config(backend="threading"):
        out = run_tasks(_blas_threads, list(range(4)), n_jobs=2, progress=False)
    assert [x for x, _ in out] == [0, 1, 2, 3]


def test_run_tasks_bad_input():
    with pytest.raises(ValueError, match="n_jobs"):
        run_tasks(_pow, [(1, 1)], n_jobs=0)
    with pytest.raises(TypeError, match="func must be callable"):
        run_tasks(3, [(1, 1)])
    with pytest.raises(TypeError, match="tasks"):
        run_tasks(_pow, 5)


def test_load_datasets_checks_dims(tmp_path):
    with pytest.raises(ValueError, match="latent_dims must not be empty"):
        load_many([], "artifacts", tmp_path)
    with pytest.raises(ValueError, match="distinct"):
        load_many([2, 2], "artifacts", tmp_path)
    with pytest.raises(FileNotFoundError, match="MNIST-2d"):
        load_many([2], "artifacts", tmp_path)
