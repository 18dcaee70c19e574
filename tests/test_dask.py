"""The clustering benchmark on a real Dask cluster (and Ray when installed) equals a local run.

:func:`mnistnd._parallel.run_tasks` hands its tasks to whatever joblib backend the caller chose;
these tests start a two-process Dask cluster on the loopback interface and check that
:func:`mnistnd.clustering.benchmark` returns the same table there as in this process.
"""

from __future__ import annotations

import importlib

import joblib
import pandas as pd
import pytest
from sklearn.datasets import make_blobs

from mnistnd import clustering

distributed = pytest.importorskip("distributed")

# fit time is the one column that depends on where a fit ran, not on what it computed
_TIMING = ["seconds"]
_ORDER = ["dim", "method", "experiment", "metric", "seed", "pair"]
_KW = dict(methods=["kmeans", "gmm"], seeds=[0, 1], progress=False, use_cache=False)


def _datasets():
    """Two small datasets of the same 300 points (the benchmark's subsets need equal sizes)."""
    data = {}
    for dim in (2, 8):
        X, y = make_blobs(n_samples=300, n_features=dim, centers=4, cluster_std=1.5,
                          random_state=dim)
        data[dim] = (X, y)
    return data


def _comparable(table):
    return table.drop(columns=_TIMING).sort_values(_ORDER).reset_index(drop=True)


@pytest.fixture(scope="module")
def local_table(tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    return clustering.benchmark(_datasets(), n_clusters=4, n_jobs=1, artifacts_dir=out, **_KW)


@pytest.fixture(scope="module")
def dask_client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_benchmark_on_dask_cluster_equals_local_run(dask_client, local_table, tmp_path):
    with joblib.parallel_config(backend="dask"):
        table = clustering.benchmark(_datasets(), n_clusters=4, n_jobs=-1,
                                     artifacts_dir=tmp_path, **_KW)
    # the fits ran in the worker processes: a worker that ran one has run the warm-up there
    warmed = dask_client.run(lambda: len(importlib.import_module("mnistnd._parallel")._WARMED))
    assert len(warmed) == 2 and sum(warmed.values()) >= 1
    assert len(table) == len(local_table) > 0
    assert table["seconds"].notna().sum() == local_table["seconds"].notna().sum()
    assert str(tmp_path) in table.attrs["path"]
    # exact: the same fits on the same data give the same labels and scores
    pd.testing.assert_frame_equal(_comparable(table), _comparable(local_table),
                                  check_exact=True)


def _chapter_dask_block() -> str:
    """The Dask code of the clustering chapter's scale-out section, as the reader sees it."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "notebooks" / "clustering_benchmark.md")
    blocks = re.findall(r"```python\n(.*?)```", text.read_text(), flags=re.S)
    (block,) = [b for b in blocks if "dask.distributed" in b]
    return block


def test_chapter_dask_block_equals_local_run(tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTND_ARTIFACTS_DIR", str(tmp_path))
    namespace = {"clustering": clustering, "sets": _datasets(), "methods": ["kmeans", "gmm"],
                 "n_seeds": 2, "n_clusters": 4}
    exec(compile(_chapter_dask_block(), "clustering_benchmark.md (Dask)", "exec"), namespace)
    local = clustering.benchmark(_datasets(), methods=["kmeans", "gmm"], seeds=range(2),
                                 n_clusters=4, n_jobs=1, use_cache=False, progress=False)
    assert namespace["client"].status == "closed"
    pd.testing.assert_frame_equal(_comparable(namespace["table"]), _comparable(local),
                                  check_exact=True)


def test_benchmark_on_ray_equals_local_run(local_table, tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    from ray.util.joblib import register_ray

    # a local Ray on the loopback interface: no usage report, no probe for the node's address
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    register_ray()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             _node_ip_address="127.0.0.1")
    try:
        with joblib.parallel_config(backend="ray"):
            table = clustering.benchmark(_datasets(), n_clusters=4, n_jobs=2,
                                         artifacts_dir=tmp_path, **_KW)
    finally:
        ray.shutdown()
    pd.testing.assert_frame_equal(_comparable(table), _comparable(local_table),
                                  check_exact=True)
