"""Clustering methods behind one call, and the MNIST-Nd clustering benchmark (paper 000, §3).

:func:`cluster` runs one method of the registry :data:`METHODS` on a data matrix::

    labels = cluster(X, "tmm", n_clusters=10, seed=3)

The paper's four methods (k-means, GMM, TMM, Leiden) and two more, clearly marked as beyond the
paper (HDBSCAN, Ward agglomerative). Adding a method is one call to :func:`register`.

:func:`benchmark` runs methods x seeds x datasets (one dataset per latent dimension) through
joblib (:func:`mnistnd._parallel.run_tasks`) and returns a tidy table with three experiments:

* ``truth``: scores of every partition against the reference labels (ARI, FMI, homogeneity,
  completeness, NMI, accuracy), Fig 3A and App C Fig 5;
* ``stability``: ARI between the partitions of every pair of seeds, Fig 3B;
* ``bootstrap``: for each seed, the method is fitted separately on three 60 % subsets
  (:func:`mnistnd.metrics.bootstrap_splits`, the same subsets for every dimension) and the
  ARI between two subsets' partitions is taken on the 40 % of points they share, Fig 3C.

The table is saved as CSV in the artifacts folder under a name derived from a hash of all
inputs (data, methods, seeds, options), and read back instead of recomputed when it exists.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import warnings
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from mnistnd import metrics as _metrics
from mnistnd._checks import check_choice, check_int, check_matrix, check_n_jobs
from mnistnd._io import atomic_write, code_digest, intact
from mnistnd._parallel import run_tasks
from mnistnd.settings import artifacts_dir as _artifacts_dir
from mnistnd.settings import ensure_writable_dir

__all__ = [
    "COLUMNS",
    "EXPERIMENTS",
    "METHODS",
    "Method",
    "benchmark",
    "bootstrap_ci",
    "cluster",
    "dimension_trend",
    "n_clusters_found",
    "paired_tests",
    "register",
    "summarize",
]

#: Bump when the benchmark's computation changes, so cached tables are not reused.
_CACHE_VERSION = 5  # 2: TMM float32 light pairs, 30-nat margin; 3: 20-nat margin, compiled;
# 4: TMM distances by triangular products, M-step from the data (same labels, other rounding);
# 5: TMM scales, factors and degrees of freedom in compiled code (same again)

#: Columns of the table returned by :func:`benchmark`, in order.
COLUMNS = (
    "dim",
    "method",
    "seed",
    "experiment",
    "metric",
    "value",
    "n_clusters_found",
    "seconds",
    "pair",
)

#: Experiments of :func:`benchmark`.
EXPERIMENTS = ("truth", "stability", "bootstrap")


@dataclass(frozen=True)
class Method:
    """A clustering method of the registry.

    Attributes
    ----------
    name : str
        Registry key.
    func : callable
        ``func(X, n_clusters, seed, **options) -> labels`` (1-D integer array; ``-1`` = noise).
    uses_n_clusters : bool
        Whether the method takes the number of clusters (Leiden and HDBSCAN find it).
    in_paper : bool
        Whether paper 000 benchmarks it (the others are extensions of this compendium).
    description : str
        One line for tables and the book.
    defaults : dict
        Default options (documented values of ``**options``).
    single_thread : bool
        Run ``func`` with BLAS and OpenMP pools limited to one thread (threadpoolctl; the
        caller's setting is restored after), for methods whose threads cost more than they
        give on data of this size.
    """

    name: str
    func: Callable
    uses_n_clusters: bool
    in_paper: bool
    description: str
    defaults: dict = field(default_factory=dict)
    single_thread: bool = False


#: The registry: name -> :class:`Method`.
METHODS: dict[str, Method] = {}


def register(
    name: str,
    func: Callable,
    *,
    uses_n_clusters: bool = True,
    in_paper: bool = False,
    description: str = "",
    defaults: Mapping | None = None,
    single_thread: bool = False,
) -> Method:
    """Add a clustering method to :data:`METHODS` (one call per method).

    Parameters
    ----------
    name : str
        Name used in :func:`cluster` and in the result tables.
    func : callable
        Module-level function ``func(X, n_clusters, seed, **options) -> labels`` (must be
        picklable to run in worker processes).
    uses_n_clusters, in_paper, description, defaults, single_thread
        See :class:`Method`.

    Returns
    -------
    Method
        The registered entry.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    method = Method(
        name, func, uses_n_clusters, in_paper, description, dict(defaults or {}), single_thread
    )
    METHODS[name] = method
    return method


# --------------------------------------------------------------------------- the methods
def _kmeans(X, n_clusters, seed, **options):
    from sklearn.cluster import KMeans

    # scikit-learn defaults otherwise, as the authors used them
    return KMeans(n_clusters=n_clusters, random_state=seed, **options).fit_predict(X)


def _gmm(X, n_clusters, seed, covariance_type="full", init_params="k-means++", **options):
    from sklearn.mixture import GaussianMixture

    model = GaussianMixture(
        n_components=n_clusters,
        covariance_type=covariance_type,
        init_params=init_params,
        random_state=seed,
        **options,
    )
    return model.fit_predict(X)


def _tmm(X, n_clusters, seed, **options):
    from mnistnd.tmm import StudentTMixture

    return StudentTMixture(n_clusters, random_state=seed, **options).fit_predict(X)


#: Neighbour graphs of the latest Leiden inputs in this process. The exact kNN graph does not
#: depend on the seed and is about 70 % of a Leiden fit, so a benchmark's seeds share one.
_GRAPHS: OrderedDict = OrderedDict()
_GRAPHS_KEPT = 4


def _neighbour_graph(X: np.ndarray, n_neighbors: int):
    """AnnData of ``X`` with scanpy's exact ``n_neighbors`` graph, cached per process."""
    import anndata as ad
    import scanpy as sc

    X = np.ascontiguousarray(X, dtype=np.float32)
    key = (hashlib.sha1(X).hexdigest(), X.shape, n_neighbors)
    if key in _GRAPHS:
        _GRAPHS.move_to_end(key)
    else:
        adata = ad.AnnData(X)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            # exact (brute-force) neighbours at every size: scanpy's default above 4,096 points,
            # pynndescent, is approximate and its sparse output breaks scanpy 1.11 on SciPy 1.17
            sc.pp.neighbors(adata, n_neighbors=n_neighbors, use_rep="X", transformer="sklearn")
        _GRAPHS[key] = adata
        while len(_GRAPHS) > _GRAPHS_KEPT:
            _GRAPHS.popitem(last=False)
    return _GRAPHS[key].copy()  # leiden writes into obs/uns: keep the cached one clean


def _leiden(X, n_clusters, seed, resolution=1.0, n_neighbors=15, **options):
    import scanpy as sc

    adata = _neighbour_graph(X, n_neighbors)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        sc.tl.leiden(
            adata,
            resolution=resolution,
            flavor="igraph",
            n_iterations=2,
            directed=False,
            random_state=seed,
            **options,
        )
    return adata.obs["leiden"].astype(int).to_numpy()


def _hdbscan(X, n_clusters, seed, min_cluster_size=100, **options):
    from sklearn.cluster import HDBSCAN

    options.setdefault("copy", True)  # explicit: scikit-learn changes the default in 1.10
    return HDBSCAN(min_cluster_size=min_cluster_size, **options).fit_predict(X)


def _agglomerative(X, n_clusters, seed, linkage="ward", **options):
    from sklearn.cluster import AgglomerativeClustering

    return AgglomerativeClustering(n_clusters=n_clusters, linkage=linkage, **options).fit_predict(X)


# single_thread for k-means and the GMM however they are called (the benchmark's workers are
# pinned anyway): on 10,000 x 64 with 2 cores, threads made the GMM 1.6x slower (18.1-19.5 s
# against 10.7-12.0 s) and k-means 1.7x (0.13-0.15 s against 0.08 s); Ward's linkage gains a
# little from them (5.7-6.7 s against 6.5-7.2 s); the TMM pins its own BLAS (mnistnd.tmm)
register(
    "kmeans",
    _kmeans,
    in_paper=True,
    description="k-means (scikit-learn defaults: k-means++ init, Lloyd)",
    single_thread=True,
)
register(
    "gmm",
    _gmm,
    in_paper=True,
    description="Gaussian mixture, full covariance, k-means++ init (scikit-learn)",
    defaults={"covariance_type": "full", "init_params": "k-means++"},
    single_thread=True,
)
register(
    "tmm",
    _tmm,
    in_paper=True,
    description="Student-t mixture, full scale, df per component estimated, k-means++ init, "
    "tol 1e-5 (mnistnd.tmm)",
    defaults={"tol": 1e-5, "df": 4.0, "fixed_df": False, "reg_covar": 1e-6},
)
register(
    "leiden",
    _leiden,
    uses_n_clusters=False,
    in_paper=True,
    description="Leiden on scanpy's 15-NN graph of X (igraph, 2 iterations, undirected)",
    defaults={"resolution": 1.0, "n_neighbors": 15},
)
register(
    "hdbscan",
    _hdbscan,
    uses_n_clusters=False,
    description="HDBSCAN (scikit-learn), min_cluster_size 100; beyond the paper",
    defaults={"min_cluster_size": 100},
)
register(
    "agglomerative",
    _agglomerative,
    description="Ward agglomerative clustering (scikit-learn); beyond the paper",
    defaults={"linkage": "ward"},
)


def _check_method(method) -> Method:
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of the known methods {sorted(METHODS)}")
    return METHODS[method]


def n_clusters_found(labels) -> int:
    """Count the clusters in a partition, not counting HDBSCAN's noise label ``-1``."""
    labels = np.asarray(labels)
    return int(np.unique(labels[labels >= 0]).shape[0])


def cluster(X, method: str, n_clusters: int = 10, seed: int = 0, **options) -> np.ndarray:
    """Cluster the rows of ``X`` with one method of :data:`METHODS`.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Data (finite values).
    method : str
        ``"kmeans"``, ``"gmm"``, ``"tmm"``, ``"leiden"`` (paper 000) or ``"hdbscan"``,
        ``"agglomerative"`` (beyond the paper), or any name added with :func:`register`.
    n_clusters : int
        Number of clusters (2 .. n_samples). Ignored by methods that find the number themselves
        (Leiden, HDBSCAN): use :func:`n_clusters_found` on the result.
    seed : int
        Random seed (initialisation of k-means, GMM, TMM; Leiden's random state).
    **options
        Method options, e.g. ``covariance_type="diag"`` (gmm), ``resolution=0.5`` (leiden),
        ``fixed_df=True`` (tmm), ``min_cluster_size=50`` (hdbscan).

    Returns
    -------
    numpy.ndarray of int64, shape (n_samples,)
        Cluster labels (``-1``: noise, HDBSCAN only).
    """
    spec = _check_method(method)
    X = check_matrix("X", X, min_samples=2)
    n_clusters = check_int("n_clusters", n_clusters, minimum=2, maximum=X.shape[0])
    seed = check_int("seed", seed, minimum=0)
    with threadpool_limits(limits=1) if spec.single_thread else contextlib.nullcontext():
        labels = spec.func(X, n_clusters, seed, **options)
    return np.asarray(labels, dtype=np.int64)


# --------------------------------------------------------------------------- benchmark


def _fit_task(X, method, n_clusters, seed, options):
    """One fit, timed, with the warnings it raised (runs in a worker).

    Warnings are returned rather than printed: worker processes would print one per fit.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        labels = cluster(X, method, n_clusters=n_clusters, seed=seed, **options)
        seconds = time.perf_counter() - start
    return labels, seconds, sorted({(w.category, str(w.message)) for w in caught}, key=str)


def _warm_up(methods: tuple) -> None:
    """Run each method once on a tiny problem, so imports and JIT compilation happen first.

    Run once per worker before its first task (:func:`mnistnd._parallel.run_tasks`).
    """
    X = np.random.default_rng(0).normal(size=(200, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method in methods:
            cluster(X, method, n_clusters=2, seed=0)


def _report_warnings(results: Mapping) -> None:
    """Emit one warning per method and message, with how many fits raised it."""
    fits = Counter(key[1] for key in results)
    raised = Counter(
        (key[1], category, message) for key, (*_, caught) in results.items()
        for category, message in caught
    )
    for (method, category, message), n in sorted(raised.items(), key=str):
        warnings.warn(
            f"{method}: {n} of {fits[method]} fits warned: {message}", category, stacklevel=3
        )


def _as_dataset(key, data, label_key: str):
    """Return ``(X, labels)`` from an AnnData or an ``(X, labels)`` pair, checked."""
    if hasattr(data, "obs") and hasattr(data, "X"):
        if label_key not in data.obs:
            raise ValueError(f"datasets[{key!r}] has no obs[{label_key!r}] with reference labels")
        X, labels = data.X, data.obs[label_key].to_numpy()
    else:
        try:
            X, labels = data
        except (TypeError, ValueError) as err:
            raise TypeError(f"datasets[{key!r}] must be an AnnData or an (X, labels) pair") from err
    X = check_matrix(f"datasets[{key!r}].X", X, min_samples=5)
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != X.shape[0]:
        raise ValueError(
            f"datasets[{key!r}]: labels have shape {labels.shape} but X has {X.shape[0]} samples"
        )
    return X, labels


def _method_code() -> str:
    """Digest of the code that fits the methods: a cached table expires when it changes."""
    import sys

    from mnistnd import tmm

    return code_digest(sys.modules[__name__], tmm)


def _digest(*arrays, meta) -> str:
    h = hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode())
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes() if a.dtype.kind != "O" else a.astype(str).tobytes())
    return h.hexdigest()


def benchmark(
    datasets: Mapping,
    methods: Sequence[str] = ("kmeans", "gmm", "tmm", "leiden"),
    seeds: Sequence[int] = tuple(range(10)),
    n_jobs: int = 1,
    *,
    n_clusters: int = 10,
    experiments: Sequence[str] = EXPERIMENTS,
    n_points: int | None = None,
    subsample_seed: int = 0,
    bootstrap_seed: int | None = 0,
    method_options: Mapping[str, Mapping] | None = None,
    label_key: str = "digit",
    artifacts_dir: str | os.PathLike | None = None,
    profile: str = "quick",
    use_cache: bool = True,
    progress: bool = True,
) -> pd.DataFrame:
    """Benchmark clustering methods across datasets (e.g. the six MNIST-Nd dimensions).

    Parameters
    ----------
    datasets : mapping
        ``{dim: AnnData}`` (reference labels in ``obs[label_key]``) or ``{dim: (X, labels)}``.
        All datasets must hold the same points in the same order when ``n_points`` or the
        bootstrap is used (true for MNIST-Nd), so that subsets are identical across dims.
    methods : sequence of str
        Names in :data:`METHODS`.
    seeds : sequence of int
        Random seeds; at least two for the ``stability`` experiment (paper: 10).
    n_jobs : int
        Parallel workers (joblib; ``-1``: all cores); a backend set by the caller with
        :func:`joblib.parallel_config` (Dask, Ray) is honoured.
    n_clusters : int
        Number of clusters for the methods that take it (paper: 10).
    experiments : sequence of str
        Subset of :data:`EXPERIMENTS`.
    n_points : int, optional
        Use a random subset of this many points (the same for every dataset; seed
        ``subsample_seed``); all points by default.
    subsample_seed : int
        Seed of that subset.
    bootstrap_seed : int or None
        Seed of :func:`mnistnd.metrics.bootstrap_splits` (``None``: the authors' fixed ranges).
    method_options : mapping, optional
        ``{method: {option: value}}`` passed to :func:`cluster`.
    label_key : str
        Column of ``obs`` with the reference labels (AnnData input).
    artifacts_dir, profile : optional
        Where the CSV goes: ``<artifacts>/clustering/benchmark_<hash>.csv``
        (:func:`mnistnd.settings.artifacts_dir`).
    use_cache : bool
        Read the CSV instead of recomputing when it exists for the same inputs.
    progress : bool
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        Tidy table with :data:`COLUMNS`: ``dim``, ``method``, ``seed``, ``experiment``
        (``truth``/``stability``/``bootstrap``), ``metric`` (``ARI``, ``FMI``, ``homogeneity``,
        ``completeness``, ``NMI``, ``accuracy``; stability and bootstrap: ``ARI``), ``value``,
        ``n_clusters_found`` (mean of the two partitions for pairs), ``seconds`` (fit time;
        mean of the two fits for pairs, empty for stability), and ``pair``: which partitions an
        ARI compares (``"3-7"``: seeds 3 and 7; ``"0-1"``: bootstrap subsets 0 and 1; empty for
        ``truth``). For pairs ``seed`` is the first seed of the pair (stability) or the seed of
        all three fits (bootstrap). ``df.attrs["path"]`` is the CSV file.
    """
    # ---- check everything before any work
    if not isinstance(datasets, Mapping):
        raise TypeError("datasets must be a mapping {dim: AnnData or (X, labels)}")
    if len(datasets) == 0:
        raise ValueError("datasets must not be empty (no latent dimensions given)")
    if isinstance(methods, str):
        methods = [methods]
    methods = list(methods)
    if not methods:
        raise ValueError("methods must not be empty")
    for m in methods:
        _check_method(m)
    experiments = list(experiments)
    if not experiments:
        raise ValueError("experiments must not be empty")
    for e in experiments:
        check_choice("experiments", e, EXPERIMENTS)
    if isinstance(seeds, (int, np.integer)):
        raise TypeError("seeds must be a sequence of integers, e.g. range(10)")
    seeds = [check_int(f"seeds[{i}]", s, minimum=0) for i, s in enumerate(seeds)]
    if not seeds:
        raise ValueError("seeds must not be empty")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds}")
    if "stability" in experiments and len(seeds) < 2:
        raise ValueError(f"the stability experiment needs at least two seeds, got seeds={seeds}")
    n_jobs = check_n_jobs(n_jobs)
    options = {m: dict((method_options or {}).get(m, {})) for m in methods}
    unknown = set(method_options or {}) - set(methods)
    if unknown:
        raise ValueError(f"method_options names methods not in methods: {sorted(unknown)}")
    data = {dim: _as_dataset(dim, d, label_key) for dim, d in datasets.items()}
    sizes = {X.shape[0] for X, _ in data.values()}
    if len(sizes) != 1 and (n_points is not None or "bootstrap" in experiments):
        raise ValueError(
            f"datasets have different numbers of points {sorted(sizes)}; subsets must be the "
            "same across dimensions"
        )
    n_total = min(sizes)
    if n_points is not None:
        n_points = check_int("n_points", n_points, minimum=5, maximum=n_total)
        keep = np.sort(np.random.default_rng(subsample_seed).permutation(n_total)[:n_points])
        data = {dim: (X[keep], y[keep]) for dim, (X, y) in data.items()}
    n_clusters = check_int("n_clusters", n_clusters, minimum=2)
    smallest = min(X.shape[0] for X, _ in data.values())
    splits = None
    if "bootstrap" in experiments:
        splits = _metrics.bootstrap_splits(smallest, seed=bootstrap_seed)
        smallest = splits.subsets[0].shape[0]
    if any(METHODS[m].uses_n_clusters for m in methods) and n_clusters > smallest:
        raise ValueError(f"n_clusters={n_clusters} exceeds the number of points ({smallest})")

    # ---- cache
    meta = {
        "version": _CACHE_VERSION,
        "methods": methods,
        "seeds": seeds,
        "n_clusters": n_clusters,
        "experiments": experiments,
        "bootstrap_seed": bootstrap_seed,
        "options": options,
        "dims": [str(d) for d in data],
        "code": _method_code(),
    }
    digest = _digest(*[a for pair in data.values() for a in pair], meta=meta)
    out_dir = _artifacts_dir(artifacts_dir, profile) / "clustering"
    path = out_dir / f"benchmark_{digest[:16]}.csv"
    if use_cache and intact(path):
        table = pd.read_csv(path, keep_default_na=False, na_values=[""])
        table["pair"] = table["pair"].fillna("").astype(str)
        table.attrs["path"] = str(path)
        return table
    ensure_writable_dir(out_dir, "artifacts_dir")

    # ---- fits: (dim, method, seed, part) with part -1 = all points, 0..2 = bootstrap subsets
    keys, tasks = [], []
    parts = ([-1] if {"truth", "stability"} & set(experiments) else []) + (
        [0, 1, 2] if splits is not None else []
    )
    for dim, (X, _) in data.items():
        for m in methods:
            for s in seeds:
                for part in parts:
                    Xp = X if part < 0 else X[splits.subsets[part]]
                    keys.append((dim, m, s, part))
                    tasks.append((Xp, m, n_clusters, s, options[m]))
    # largest fits first (cost ~ n d^2 for the mixtures): no worker idles at the end while
    # another finishes a 64-d fit; results are keyed, so the order changes nothing else
    cost = [t[0].shape[0] * t[0].shape[1] ** 2 for t in tasks]
    order = sorted(range(len(tasks)), key=lambda i: -cost[i])
    keys, tasks = [keys[i] for i in order], [tasks[i] for i in order]
    results = dict(
        zip(
            keys,
            run_tasks(
                _fit_task,
                tasks,
                n_jobs=n_jobs,
                desc="clustering fits",
                progress=progress,
                warmup=(_warm_up, (tuple(methods),)),
            ),
            strict=True,
        )
    )
    _report_warnings(results)

    # ---- scores
    rows = []
    for dim, (_, y) in data.items():
        for m in methods:
            if "truth" in experiments:
                for s in seeds:
                    labels, sec, _ = results[(dim, m, s, -1)]
                    for name, value in _metrics.score_all(y, labels).items():
                        rows.append(
                            (dim, m, s, "truth", name, value, n_clusters_found(labels), sec, "")
                        )
            if "stability" in experiments:
                for a, b in combinations(seeds, 2):
                    la, lb = results[(dim, m, a, -1)][0], results[(dim, m, b, -1)][0]
                    value = float(_metrics.pairwise_stability([la, lb])[0])
                    found = 0.5 * (n_clusters_found(la) + n_clusters_found(lb))
                    rows.append((dim, m, a, "stability", "ARI", value, found, np.nan, f"{a}-{b}"))
            if splits is not None:
                for s in seeds:
                    fits = [results[(dim, m, s, k)] for k in range(3)]
                    aris = _metrics.bootstrap_ari([f[0] for f in fits], splits)
                    for (i, j), value in zip(combinations(range(3), 2), aris, strict=True):
                        found = 0.5 * (n_clusters_found(fits[i][0]) + n_clusters_found(fits[j][0]))
                        sec = 0.5 * (fits[i][1] + fits[j][1])
                        rows.append(
                            (dim, m, s, "bootstrap", "ARI", float(value), found, sec, f"{i}-{j}")
                        )
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    atomic_write(path, lambda p: table.to_csv(p, index=False), checksum=True)
    table.attrs["path"] = str(path)
    return table


# --------------------------------------------------------------------------- analysis of a table
def _select(table: pd.DataFrame, experiment: str, metric: str) -> pd.DataFrame:
    check_choice("experiment", experiment, EXPERIMENTS)
    missing = set(COLUMNS) - set(table.columns)
    if missing:
        raise ValueError(f"table lacks the benchmark columns {sorted(missing)}")
    sub = table[(table["experiment"] == experiment) & (table["metric"] == metric)]
    if sub.empty:
        raise ValueError(f"table has no rows with experiment={experiment!r} and metric={metric!r}")
    return sub


def summarize(table: pd.DataFrame, experiment: str = "truth", metric: str = "ARI") -> pd.DataFrame:
    """Mean, standard deviation and count of one score per dimension and method.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`benchmark`.
    experiment, metric : str
        Which rows (e.g. ``"stability"``, ``"ARI"``).

    Returns
    -------
    pandas.DataFrame
        Columns ``dim``, ``method``, ``mean``, ``sd`` (over seeds or pairs; ``ddof=1``), ``n``,
        ``n_clusters_found`` (mean).
    """
    sub = _select(table, experiment, metric)
    out = sub.groupby(["dim", "method"], sort=True).agg(
        mean=("value", "mean"),
        sd=("value", "std"),
        n=("value", "size"),
        n_clusters_found=("n_clusters_found", "mean"),
    )
    return out.reset_index()


def bootstrap_ci(
    table: pd.DataFrame,
    experiment: str = "truth",
    metric: str = "ARI",
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Percentile bootstrap confidence interval of the mean score, per dimension and method.

    The values of one (dim, method) cell (one per seed, or per pair of seeds / subsets) are
    resampled with replacement ``n_boot`` times. Pairs of seeds share seeds, so for the
    ``stability`` experiment the interval is optimistic (the values are not independent).

    Returns
    -------
    pandas.DataFrame
        Columns ``dim``, ``method``, ``mean``, ``low``, ``high``, ``n``.
    """
    n_boot = check_int("n_boot", n_boot, minimum=100)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    sub = _select(table, experiment, metric)
    rng = np.random.default_rng(seed)
    rows = []
    for (dim, method), grp in sub.groupby(["dim", "method"], sort=True):
        v = grp["value"].to_numpy(dtype=float)
        means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)
        low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
        rows.append((dim, method, v.mean(), low, high, v.size))
    return pd.DataFrame(rows, columns=["dim", "method", "mean", "low", "high", "n"])


def paired_tests(
    table: pd.DataFrame,
    reference: str = "leiden",
    experiment: str = "truth",
    metric: str = "ARI",
) -> pd.DataFrame:
    """Paired comparison of ``reference`` with every other method, per dimension.

    Values are paired by seed (``truth``), by pair of seeds (``stability``) or by seed and pair
    of subsets (``bootstrap``). For each dimension and method: the mean difference
    ``reference - method``, the two-sided Wilcoxon signed-rank test and the paired t-test, and
    Holm-adjusted Wilcoxon p-values over all comparisons of the table. With 10 seeds the smallest
    possible exact Wilcoxon p-value is 2/1024 ~ 0.002; with 2 seeds no test can reject.

    Returns
    -------
    pandas.DataFrame
        Columns ``dim``, ``method``, ``n``, ``mean_diff``, ``wins`` (pairs where the reference is
        higher), ``p_wilcoxon``, ``p_ttest``, ``p_holm``.
    """
    from scipy import stats

    sub = _select(table, experiment, metric)
    if reference not in set(sub["method"]):
        raise ValueError(f"reference={reference!r} has no rows; methods: {sorted(set(sub.method))}")
    key = ["seed", "pair"]
    rows = []
    for dim, grp in sub.groupby("dim", sort=True):
        ref = grp[grp["method"] == reference].set_index(key)["value"]
        for method in sorted(set(grp["method"]) - {reference}):
            other = grp[grp["method"] == method].set_index(key)["value"]
            a, b = ref.align(other, join="inner")
            diff = (a - b).to_numpy(dtype=float)
            n = diff.size
            if n >= 2 and np.any(diff != 0):
                p_w = float(stats.wilcoxon(diff).pvalue)
                p_t = float(stats.ttest_1samp(diff, 0.0).pvalue) if np.std(diff) > 0 else 0.0
            else:
                p_w = p_t = 1.0
            rows.append(
                (dim, method, n, diff.mean() if n else np.nan, int((diff > 0).sum()), p_w, p_t)
            )
    out = pd.DataFrame(
        rows, columns=["dim", "method", "n", "mean_diff", "wins", "p_wilcoxon", "p_ttest"]
    )
    # Holm step-down adjustment over every comparison in the table
    order = np.argsort(out["p_wilcoxon"].to_numpy())
    m = len(out)
    adj = np.empty(m)
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * out["p_wilcoxon"].iloc[idx]))
        adj[idx] = running
    out["p_holm"] = adj
    return out


def dimension_trend(
    table: pd.DataFrame, experiment: str = "truth", metric: str = "ARI"
) -> pd.DataFrame:
    """Change of the mean score from the smallest to the largest dimension, per method.

    Returns
    -------
    pandas.DataFrame
        Index ``method``; columns ``low_dim``, ``high_dim``, ``at_low``, ``at_high``,
        ``change`` (``at_high - at_low``; negative = the score decays with d).
    """
    summary = summarize(table, experiment, metric)
    lo, hi = summary["dim"].min(), summary["dim"].max()
    wide = summary.pivot(index="method", columns="dim", values="mean")
    out = pd.DataFrame({"low_dim": lo, "high_dim": hi, "at_low": wide[lo], "at_high": wide[hi]})
    out["change"] = out["at_high"] - out["at_low"]
    return out
