"""Properties of the MNIST-Nd embeddings: forest accuracy, t-SNE, DISCO map and density peaks.

These are the analyses of the MNIST-Nd paper's Fig. 1D-E, Fig. 2 and Appendix E:

* :func:`random_forest_accuracy` - stratified k-fold accuracy of a seeded random forest that
  predicts the digit from the embedding (Fig. 1D; the paper reports about 90% at every ``d``);
* :func:`tsne` - a seeded openTSNE map (PCA initialisation, FFT gradients), cached on disk per
  data content and parameters (Fig. 1E, Fig. 2A);
* :func:`disco_scores` / :func:`disco_summary` - per-point DISCO scores of the digit labels
  (:func:`mnistnd.validity.disco_samples`) and their distribution per ``d`` (Fig. 2A);
* :func:`density_peaks_sweep` / :func:`density_peaks_table` - Rodriguez & Laio's decision graphs
  (:func:`mnistnd.validity.density_peaks`) over dimensions and distance percentiles, and the
  number of clear centres by the gap rule of :func:`clear_centres` (Fig. 2B-C, Figs. 6-9).

Every expensive step takes a ``cache_dir``: results are stored there (written atomically) under a
key made of a hash of the input arrays and of the parameters, so a rerun with the same inputs
reads them back and a changed input or parameter computes anew.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mnistnd import settings
from mnistnd._checks import (
    check_choice,
    check_float,
    check_int,
    check_labels,
    check_matrix,
    check_n_jobs,
)
from mnistnd._io import atomic_write, code_digest, intact

__all__ = [
    "PAPER_PERCENTILES",
    "ForestAccuracy",
    "centre_indices",
    "clear_centres",
    "clear_centres_on_blobs",
    "clear_centres_sensitivity",
    "counting_gamma",
    "density_peaks_sweep",
    "density_peaks_table",
    "disco_scores",
    "disco_summary",
    "forest_accuracy_summary",
    "forest_accuracy_table",
    "gap_ratios",
    "random_forest_accuracy",
    "source_info",
    "subsample",
    "tsne",
    "tsne_maps",
]

#: Distance percentiles used as the density-peaks radius in the paper's Appendix E.
PAPER_PERCENTILES = (0.01, 0.1, 0.3, 0.5, 1.0, 2.0, 3.0, 5.0)
#: Default gap-rule threshold of :func:`clear_centres` (see its docstring for the reasons).
DEFAULT_MIN_RATIO = 1.5
_CACHE_FORMAT = 1  # bump when a cached quantity changes meaning


# --------------------------------------------------------------------------------------------
# on-disk cache
# --------------------------------------------------------------------------------------------
def _array_digest(h, a: np.ndarray) -> None:
    a = np.ascontiguousarray(a)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())


def _cache_key(kind: str, arrays: Sequence[np.ndarray], params: Mapping) -> str:
    """Hash of the arrays' content (dtype, shape, bytes) and of the parameters."""
    h = hashlib.sha256()
    h.update(f"{kind}:{_CACHE_FORMAT}:".encode())
    for a in arrays:
        _array_digest(h, np.asarray(a))
    h.update(json.dumps(dict(params), sort_keys=True, default=str).encode())
    return h.hexdigest()[:24]


def _cached(
    cache_dir, kind: str, arrays: Sequence[np.ndarray], params: Mapping,
    compute: Callable[[], dict[str, np.ndarray]],
) -> dict[str, np.ndarray]:
    """Return ``compute()``'s arrays, read from / written to ``cache_dir`` when it is given."""
    if cache_dir is None:
        return compute()
    folder = settings.ensure_writable_dir(cache_dir, "cache_dir")
    path = Path(folder) / f"{kind}-{_cache_key(kind, arrays, params)}.npz"
    if intact(path):
        try:
            with np.load(path, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}
        except (OSError, ValueError, EOFError):
            pass  # unreadable (e.g. foreign file): recompute and overwrite
    out = compute()
    atomic_write(path, lambda p: np.savez(p, **out), checksum=True)
    return out


def _progress(iterable, *, total=None, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=not enabled, leave=False)


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


def source_info(datasets: Mapping) -> dict:
    """Return the MNIST source record the datasets were built from (for the chapter banner).

    Parameters
    ----------
    datasets
        ``{d: AnnData}`` from :func:`mnistnd.datasets.load_many`.

    Returns
    -------
    dict
        The :func:`mnistnd.data.source_info` record stored in ``uns["data_source"]["json"]``.

    Raises
    ------
    ValueError
        If the datasets were built from different sources (e.g. full MNIST and the bundled
        sample) or carry no record.
    """
    records = {}
    for d, ad in datasets.items():
        raw = ad.uns.get("data_source", {}).get("json")
        if raw is None:
            raise ValueError(f"MNIST-{d}d carries no data-source record (uns['data_source'])")
        records[d] = json.loads(str(raw))
    sources = {r.get("source") for r in records.values()}
    if len(sources) != 1:
        raise ValueError(
            f"the datasets were built from different MNIST sources: "
            f"{ {d: r.get('source') for d, r in records.items()} }; rebuild them with one source"
        )
    return next(iter(records.values()))


def subsample(datasets: Mapping, n_points: int | None, seed: int = 0) -> dict:
    """Draw the same seeded random subset of test images from every dataset.

    All MNIST-Nd datasets encode the same test images; the subset is drawn among the images
    (``obs["test_index"]`` when present, else the row position) common to all datasets, so that
    point ``i`` of every returned array is the same image.

    Parameters
    ----------
    datasets
        ``{d: AnnData}`` with ``X`` and ``obs["digit"]`` (as from
        :func:`mnistnd.datasets.load_many`).
    n_points
        Size of the subset; ``None`` keeps every common image.
    seed
        Seed of the draw.

    Returns
    -------
    dict of int to tuple of numpy.ndarray
        ``{d: (X float64 (n_points, d), digits int64 (n_points,))}``.

    Raises
    ------
    ValueError
        If ``n_points`` exceeds the number of common images, or the datasets are empty.
    """
    if not datasets:
        raise ValueError("datasets is empty: give at least one dataset")
    seed = check_int("seed", seed, minimum=0)
    ids = {}
    for d, ad in datasets.items():
        if "test_index" in ad.obs:
            ids[d] = np.asarray(ad.obs["test_index"], dtype=np.int64)
        else:
            ids[d] = np.arange(ad.n_obs, dtype=np.int64)
    common = ids[next(iter(ids))]
    for v in ids.values():
        common = np.intersect1d(common, v)
    if n_points is None:
        chosen = common
    else:
        n_points = check_int("n_points", n_points, minimum=2)
        if n_points > common.size:
            raise ValueError(
                f"n_points={n_points} is larger than the {common.size} test images common to "
                f"the datasets; choose n_points <= {common.size}"
            )
        rng = np.random.default_rng(seed)
        chosen = np.sort(rng.choice(common, size=n_points, replace=False))
    out = {}
    for d, ad in datasets.items():
        pos = {t: i for i, t in enumerate(ids[d])}
        rows = np.fromiter((pos[t] for t in chosen), dtype=np.int64, count=chosen.size)
        X = np.asarray(ad.X, dtype=np.float64)[rows]
        out[d] = (X, np.asarray(ad.obs["digit"], dtype=np.int64)[rows])
    return out


# --------------------------------------------------------------------------------------------
# random forest (Fig. 1D)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ForestAccuracy:
    """Per-fold test accuracies of a cross-validated random forest.

    Attributes
    ----------
    scores : numpy.ndarray
        Accuracy of each fold, in fold order.
    """

    scores: np.ndarray

    @property
    def mean(self) -> float:
        """Mean accuracy over folds."""
        return float(np.mean(self.scores))

    @property
    def sd(self) -> float:
        """Sample standard deviation over folds (``ddof=1``)."""
        return float(np.std(self.scores, ddof=1)) if self.scores.size > 1 else 0.0

    def __str__(self) -> str:
        return f"{self.mean:.3f} ± {self.sd:.3f} ({self.scores.size} folds)"


def _check_forest_input(X, y, n_splits):
    X = check_matrix("X", X, min_samples=2)
    y = check_labels("y", y, X.shape[0])
    n_splits = check_int("n_splits", n_splits, minimum=2)
    classes, counts = np.unique(y, return_counts=True)
    if classes.size < 2:
        raise ValueError(
            f"y has a single class ({classes[0]}); a classifier needs at least two classes"
        )
    if counts.min() < n_splits:
        worst = classes[np.argmin(counts)]
        raise ValueError(
            f"y: class {worst} has only {counts.min()} samples, fewer than n_splits={n_splits}; "
            "stratified folds need at least n_splits samples per class (lower n_splits or use "
            "more points)"
        )
    return X, y, n_splits


def random_forest_accuracy(
    X, y, n_splits: int = 10, seed: int = 0, *, n_estimators: int = 100,
    n_jobs: int | None = None,
) -> ForestAccuracy:
    """Stratified k-fold test accuracy of a seeded random forest (the paper's Fig. 1D).

    The folds are shuffled with ``seed`` (:class:`~sklearn.model_selection.StratifiedKFold`) and
    every fold trains a :class:`~sklearn.ensemble.RandomForestClassifier` (scikit-learn's
    defaults otherwise: Gini splits, ``sqrt`` features per split, fully grown trees) seeded with
    ``seed``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Embedding.
    y : array-like of shape (n_samples,)
        Integer class labels (the digits); at least two classes, each with at least ``n_splits``
        samples.
    n_splits : int, default 10
        Number of folds (the paper: ten).
    seed : int, default 0
        Seed of the fold split and of the forest.
    n_estimators : int, default 100
        Trees per forest.
    n_jobs : int or None
        Threads used to grow the trees (``None``: one).

    Returns
    -------
    ForestAccuracy
        Per-fold accuracies, with ``mean`` and ``sd``.

    Raises
    ------
    ValueError
        For a single class, or a class with fewer than ``n_splits`` samples.
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    X, y, n_splits = _check_forest_input(X, y, n_splits)
    seed = check_int("seed", seed, minimum=0)
    n_estimators = check_int("n_estimators", n_estimators, minimum=1)
    forest = RandomForestClassifier(n_estimators=n_estimators, random_state=seed, n_jobs=n_jobs)
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    scores = cross_val_score(forest, X, y, cv=folds, scoring="accuracy")
    return ForestAccuracy(np.asarray(scores, dtype=np.float64))


def forest_accuracy_table(
    data: Mapping, *, n_splits: int = 10, seed: int = 0, n_estimators: int = 100,
    n_jobs: int | None = None, cache_dir=None, progress: bool = True,
) -> pd.DataFrame:
    """Per-fold forest accuracies for several datasets (tidy table).

    Parameters
    ----------
    data
        ``{d: (X, y)}``.
    n_splits, seed, n_estimators, n_jobs
        As in :func:`random_forest_accuracy`.
    cache_dir
        Folder of cached results (``None``: no cache).
    progress
        Show a progress bar over datasets.

    Returns
    -------
    pandas.DataFrame
        Columns ``latent_dim``, ``fold``, ``accuracy``.
    """
    if not data:
        raise ValueError("data is empty: give at least one dataset")
    for X, y in data.values():  # every input checked before the first fit
        _check_forest_input(X, y, n_splits)
    rows = []
    for d, (X, y) in _progress(data.items(), total=len(data), desc="random forest",
                               enabled=progress):
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.int64)
        params = {"n_splits": n_splits, "seed": seed, "n_estimators": n_estimators,
                  "sklearn": _version("sklearn")}
        res = _cached(cache_dir, "forest", [X, y], params, lambda X=X, y=y: {
            "scores": random_forest_accuracy(X, y, n_splits, seed, n_estimators=n_estimators,
                                             n_jobs=n_jobs).scores})
        rows += [{"latent_dim": d, "fold": i, "accuracy": float(s)}
                 for i, s in enumerate(res["scores"])]
    return pd.DataFrame(rows)


def forest_accuracy_summary(table: pd.DataFrame, paper: float | None = None) -> pd.DataFrame:
    """Mean ± sd per dimension of :func:`forest_accuracy_table`, beside a reference value.

    Parameters
    ----------
    table
        Output of :func:`forest_accuracy_table`.
    paper
        A reported accuracy to compare with (the MNIST-Nd paper's is
        :data:`mnistnd.papers.mnist_nd.RF_ACCURACY`); ``None`` adds no comparison.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``latent_dim``: ``mean``, ``sd`` (over folds, ``ddof=1``), ``n_folds``; with
        ``paper`` given also ``paper`` and ``difference`` (ours minus the paper's).
    """
    g = table.groupby("latent_dim")["accuracy"]
    out = pd.DataFrame({"mean": g.mean(), "sd": g.std(ddof=1), "n_folds": g.size()})
    if paper is not None:
        out["paper"] = check_float("paper", paper, minimum=0.0, maximum=1.0)
        out["difference"] = out["mean"] - out["paper"]
    return out


def _version(module: str) -> str:
    import importlib

    return str(getattr(importlib.import_module(module), "__version__", "?"))


# --------------------------------------------------------------------------------------------
# t-SNE (Fig. 1E, Fig. 2A)
# --------------------------------------------------------------------------------------------
def tsne(
    X, seed: int = 0, perplexity: float = 30.0, *, n_iter: int = 500,
    early_exaggeration_iter: int = 250, neighbors: str = "exact", gradients: str = "fft",
    n_jobs: int = 1, cache_dir=None, progress: bool = True,
) -> np.ndarray:
    """Two-dimensional openTSNE map of ``X``: PCA initialisation, FFT gradients, seeded, cached.

    Runs openTSNE's standard schedule (``early_exaggeration_iter`` iterations with exaggeration
    12, then ``n_iter`` without; learning rate ``n / exaggeration`` in each phase, Belkina et
    al. 2019), with FFT-accelerated gradients (Linderman et al.'s interpolation, fast for
    thousands of points) and nearest neighbours found ``"exact"``-ly by default (a ball tree:
    deterministic, and faster than Annoy for the low-dimensional MNIST-Nd embeddings at 10,000
    points).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Data; more than ``3 * perplexity`` samples.
    seed : int, default 0
        Seed of the PCA initialisation and of the optimisation.
    perplexity : float, default 30
        Perplexity of the input affinities.
    n_iter, early_exaggeration_iter : int
        Iterations of the two optimisation phases (openTSNE's defaults 500 and 250).
    neighbors : str, default "exact"
        openTSNE's nearest-neighbour method (``"exact"``, ``"annoy"``, ``"pynndescent"``,
        ``"auto"``).
    gradients : str, default "fft"
        openTSNE's negative-gradient method: ``"fft"`` (interpolation; cost grows linearly with
        the number of points, with a fixed grid cost that dominates below a few thousand
        points) or ``"bh"`` (Barnes-Hut; faster for small data, e.g. the smoke profile).
    n_jobs : int, default 1
        Threads for the neighbour search and the gradients.
    cache_dir : path-like, optional
        Folder of cached maps; a map is reused when ``X`` and every parameter above (except
        ``n_jobs`` and ``progress``) are the same.
    progress : bool, default True
        Show a progress bar over iterations.

    Returns
    -------
    numpy.ndarray of shape (n_samples, 2)
        The map.
    """
    X = check_matrix("X", X, min_samples=2)
    seed = check_int("seed", seed, minimum=0)
    perplexity = check_float("perplexity", perplexity, minimum=0.0, open_low=True)
    n_iter = check_int("n_iter", n_iter, minimum=1)
    early_exaggeration_iter = check_int("early_exaggeration_iter", early_exaggeration_iter,
                                        minimum=0)
    n_jobs = check_int("n_jobs", n_jobs, minimum=1)
    check_choice("neighbors", neighbors, ("exact", "annoy", "pynndescent", "auto"))
    check_choice("gradients", gradients, ("fft", "bh"))
    if X.shape[0] <= 3 * perplexity:
        raise ValueError(
            f"X has {X.shape[0]} samples; t-SNE with perplexity={perplexity:g} needs more than "
            f"3 * perplexity = {3 * perplexity:g} (lower perplexity or use more points)"
        )
    params = {"seed": seed, "perplexity": perplexity, "n_iter": n_iter,
              "early_exaggeration_iter": early_exaggeration_iter, "neighbors": neighbors,
              "initialization": "pca", "gradients": gradients, "openTSNE": _version("openTSNE")}

    def compute():
        import openTSNE
        from tqdm.auto import tqdm

        every = 10
        bar = tqdm(total=early_exaggeration_iter + n_iter, desc="t-SNE", disable=not progress,
                   leave=False)

        def tick(iteration, error, embedding):
            bar.update(every)
            return False

        try:
            model = openTSNE.TSNE(
                n_components=2, perplexity=perplexity, initialization="pca",
                negative_gradient_method=gradients, neighbors=neighbors, n_jobs=n_jobs,
                random_state=seed, n_iter=n_iter, early_exaggeration_iter=early_exaggeration_iter,
                callbacks=tick, callbacks_every_iters=every, verbose=False,
            )
            Y = np.asarray(model.fit(X), dtype=np.float64)
        finally:
            bar.close()
        return {"embedding": Y}

    return _cached(cache_dir, "tsne", [X], params, compute)["embedding"]


def tsne_maps(data: Mapping, seed: int = 0, perplexity: float = 30.0, *, progress: bool = True,
              **kwargs) -> dict:
    """:func:`tsne` of every dataset, with a progress bar over datasets.

    Parameters
    ----------
    data
        ``{d: X}`` or ``{d: (X, labels)}`` (labels are ignored).
    seed, perplexity
        As in :func:`tsne`.
    progress
        Show progress bars (over datasets and over iterations).
    **kwargs
        Other arguments of :func:`tsne` (``n_iter``, ``n_jobs``, ``cache_dir`` ...).

    Returns
    -------
    dict of int to numpy.ndarray
        ``{d: (n, 2) map}``.
    """
    if not data:
        raise ValueError("data is empty: give at least one dataset")
    arrays = {d: (v[0] if isinstance(v, tuple) else v) for d, v in data.items()}
    out = {}
    for d, X in _progress(arrays.items(), total=len(arrays), desc="t-SNE maps",
                          enabled=progress):
        out[d] = tsne(X, seed, perplexity, progress=progress, **kwargs)
    return out


# --------------------------------------------------------------------------------------------
# DISCO (Fig. 2A)
# --------------------------------------------------------------------------------------------
def disco_scores(
    data: Mapping, *, min_points: int = 5, cache_dir=None, progress: bool = True,
) -> dict:
    """Per-point DISCO scores of the digit labels, per dataset.

    Parameters
    ----------
    data
        ``{d: (X, labels)}``.
    min_points
        DISCO's neighbourhood size (see :func:`mnistnd.validity.disco_samples`).
    cache_dir
        Folder of cached results (``None``: no cache).
    progress
        Show a progress bar over datasets.

    Returns
    -------
    dict of int to numpy.ndarray
        ``{d: scores}``, one score in ``[-1, 1]`` per point.
    """
    from mnistnd import validity
    from mnistnd.validity import disco_samples

    if not data:
        raise ValueError("data is empty: give at least one dataset")
    min_points = check_int("min_points", min_points, minimum=1)
    prepared = {}
    for d, (X, y) in data.items():
        X = check_matrix(f"data[{d}] X", X, min_samples=min_points)
        prepared[d] = (X, check_labels(f"data[{d}] labels", y, X.shape[0]))
    out = {}
    for d, (X, y) in _progress(prepared.items(), total=len(prepared), desc="DISCO",
                               enabled=progress):
        res = _cached(cache_dir, "disco", [X, y],
                      {"min_points": min_points, "code": code_digest(validity)},
                      lambda X=X, y=y: {"scores": disco_samples(X, y, min_points=min_points)})
        out[d] = res["scores"]
    return out


def disco_summary(scores: Mapping, near_zero: float = 0.1) -> pd.DataFrame:
    """Distribution of per-point DISCO scores per dimension.

    The paper's claim (Sec. 2) is that "the majority of points ... are scored around zero or
    below"; ``frac_at_most_near_zero`` is the fraction of points with score ``<= near_zero``.

    Parameters
    ----------
    scores
        ``{d: per-point scores}`` (as from :func:`disco_scores`).
    near_zero
        Upper edge of "around zero", in ``[0, 1)``.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``latent_dim``: ``n_points``, ``mean`` (the DISCO index), ``median``, ``q10``,
        ``q25``, ``q75``, ``q90``, ``frac_negative`` (score < 0), ``frac_at_most_near_zero``.
    """
    near_zero = check_float("near_zero", near_zero, minimum=0.0, maximum=1.0, open_high=True)
    if not scores:
        raise ValueError("scores is empty")
    rows = []
    for d, s in scores.items():
        s = np.asarray(s, dtype=np.float64)
        if s.ndim != 1 or s.size == 0:
            raise ValueError(f"scores[{d}] must be a non-empty 1-D array, got shape {s.shape}")
        q = np.quantile(s, [0.1, 0.25, 0.5, 0.75, 0.9])
        rows.append({"latent_dim": d, "n_points": s.size, "mean": s.mean(), "median": q[2],
                     "q10": q[0], "q25": q[1], "q75": q[3], "q90": q[4],
                     "frac_negative": float(np.mean(s < 0)),
                     "frac_at_most_near_zero": float(np.mean(s <= near_zero))})
    return pd.DataFrame(rows).set_index("latent_dim")


# --------------------------------------------------------------------------------------------
# density peaks (Fig. 2B-C, Figs. 6-9)
# --------------------------------------------------------------------------------------------
def _check_rho_delta(rho, delta) -> tuple[np.ndarray, np.ndarray]:
    rho = np.asarray(rho, dtype=np.float64)
    delta = np.asarray(delta, dtype=np.float64)
    if rho.ndim != 1 or rho.shape != delta.shape:
        raise ValueError(f"rho and delta must be 1-D of equal length, got {rho.shape} and "
                         f"{delta.shape}")
    if rho.size < 2:
        raise ValueError(f"rho has {rho.size} points; density peaks need at least 2")
    if not (np.all(np.isfinite(rho)) and np.all(np.isfinite(delta))):
        raise ValueError("rho and delta must be finite")
    if np.any(rho < 0) or np.any(delta < 0):
        raise ValueError("rho and delta must be non-negative")
    return rho, delta


def counting_gamma(rho, delta) -> np.ndarray:
    """``gamma = rho * delta`` with the densest point's ``delta`` capped, for counting centres.

    By Rodriguez & Laio's convention the densest point has no denser neighbour and gets the
    largest distance to any point as its ``delta``: a distance across the whole data set, not a
    separation between density peaks. Its gamma then stands far above every other one and the
    largest gamma drop is always right after it. For counting, its ``delta`` is capped at the
    largest ``delta`` of the other points (a common convention in density-peak
    implementations), so it stands out only as far as the most isolated other peak does.

    Parameters
    ----------
    rho, delta : array-like of shape (n_samples,)
        Density and distance to the nearest denser point.

    Returns
    -------
    numpy.ndarray of shape (n_samples,)
        ``rho * delta``, with the densest point's ``delta`` replaced by
        ``min(delta, max of the other deltas)``; the densest point is the first with the largest
        ``rho``.
    """
    rho, delta = _check_rho_delta(rho, delta)
    top = int(np.argmax(rho))  # the first maximum, like the tie rule of density_peaks
    capped = delta.copy()
    capped[top] = min(delta[top], float(np.max(np.delete(delta, top))))
    return rho * capped


def gap_ratios(rho, delta, top: int = 30) -> np.ndarray:
    """Ratios ``gamma_(k) / gamma_(k+1)`` of consecutive sorted gammas among the top ``top``.

    The gammas are those of :func:`counting_gamma` (densest point's ``delta`` capped).

    Parameters
    ----------
    rho, delta : array-like of shape (n_samples,)
        Density and distance to the nearest denser point.
    top : int, default 30
        How many of the largest ``gamma = rho * delta`` to look at (the paper plots 30).

    Returns
    -------
    numpy.ndarray of shape (min(top, n_samples) - 1,)
        Entry ``k - 1`` is ``gamma_(k) / gamma_(k+1)`` (``inf`` when only the second is 0,
        1 when both are 0).
    """
    rho, delta = _check_rho_delta(rho, delta)
    top = check_int("top", top, minimum=2)
    g = np.sort(counting_gamma(rho, delta))[::-1][: min(top, rho.size)]
    num, den = g[:-1], g[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.where(num > 0, np.inf, 1.0))
    return r


def centre_indices(rho, delta, *, top: int = 30, min_ratio: float = DEFAULT_MIN_RATIO):
    """Return the indices of the clear density-peak centres (gap rule of :func:`clear_centres`).

    Returns
    -------
    numpy.ndarray of int
        Point indices, by decreasing ``gamma`` (ties by index); empty when no gap is big enough.
    """
    rho, delta = _check_rho_delta(rho, delta)
    min_ratio = check_float("min_ratio", min_ratio, minimum=1.0, open_low=True)
    r = gap_ratios(rho, delta, top)
    k = int(np.argmax(r)) + 1 if r.size and r.max() >= min_ratio else 0
    order = np.lexsort((np.arange(rho.size), -counting_gamma(rho, delta)))
    return order[:k]


def clear_centres(rho, delta, *, top: int = 30, min_ratio: float = DEFAULT_MIN_RATIO) -> int:
    """Count the clear density-peak centres: the points above the largest drop in gamma.

    Rule (a precise form of the paper's Appendix E.2: "order points by gamma decreasing and see
    how many of the first points have substantially big gaps between each other"): sort
    ``gamma = rho * delta`` decreasingly, ``g_1 >= g_2 >= ... >= g_top``, and find the largest
    ratio of consecutive values, ``g_k / g_{k+1}``. If it is at least ``min_ratio``, the ``k``
    points above that drop are the clear centres; otherwise the gammas decline without a clear
    break and the count is 0.

    Why this form. A ratio (rather than a difference) makes the rule independent of the units
    of ``rho`` and ``delta``, which change with the percentile and the dimension. The *largest*
    drop is the one that separates the centres from the bulk when centres exist: for ``k``
    well-separated blobs the drop after the ``k``-th centre is tens of times, while drops among
    the other candidates (secondary maxima inside a blob, sparse outliers) stay small. Rules
    that accept any drop above a threshold (e.g. "the last drop of at least 1.5") count those
    secondary maxima: on two or three Gaussian blobs of 150 points they reported up to 6
    centres in our checks, the largest-drop rule the true number. Only the top ``top`` (30, as
    in the paper's Figs. 8-9) are candidates, so gaps far down the list do not count.

    The densest point. By Rodriguez & Laio's convention its ``delta`` is its largest distance
    to any point, so with the raw gammas ``g_1 / g_2`` is almost always the largest drop and the
    rule would report 1 centre whatever the data (it did in all 48 decision graphs of the
    quick profile). The gammas ranked here are therefore those of :func:`counting_gamma`: the
    densest point's ``delta`` is capped at the largest ``delta`` of the other points, so it
    competes like any other peak. ``density_peaks`` still returns the uncapped ``delta``. With
    the cap, ``k`` separated blobs give ``k``; a single blob gives 1 when its density maximum
    stands out from the sparse fringe by ``min_ratio``, else 0.

    Parameters
    ----------
    rho, delta : array-like of shape (n_samples,)
        Non-negative density and distance to the nearest denser point
        (:func:`mnistnd.validity.density_peaks`).
    top : int, default 30
        How many of the largest gammas are candidates.
    min_ratio : float, default 1.5
        Smallest largest-drop ratio that counts as a clear break (> 1).

    Returns
    -------
    int
        Number of clear centres, between 0 and ``top - 1``.
    """
    return int(centre_indices(rho, delta, top=top, min_ratio=min_ratio).size)


def clear_centres_on_blobs(
    n_blobs: Sequence[int] = (1, 2, 3, 4, 5), *, draws: int = 5, n_per_blob: int = 150,
    percentiles: Sequence[float] = (1.0, 2.0, 5.0), separation: float = 20.0, seed: int = 0,
    top: int = 30, min_ratio: float = DEFAULT_MIN_RATIO,
) -> pd.DataFrame:
    """Check the clear-centre rule on data with a known answer: well-separated Gaussian blobs.

    Blob ``b`` is a standard normal cloud in the plane around one of five centres (the corners
    of a square of side ``separation`` and its middle); each draw samples all blobs anew.

    Parameters
    ----------
    n_blobs
        Numbers of blobs to try (each between 1 and 5).
    draws
        Random data sets per number of blobs.
    n_per_blob
        Points per blob.
    percentiles
        Density-peak radii to try on every data set.
    separation
        Side of the square (in units of the blobs' standard deviation).
    seed
        Seed of the draws.
    top, min_ratio
        Parameters of :func:`clear_centres`.

    Returns
    -------
    pandas.DataFrame
        One row per (blobs, draw, percentile): ``blobs``, ``draw``, ``percentile``, ``found``.
    """
    from mnistnd.validity import density_peaks

    blobs = [check_int(f"n_blobs[{i}]", k, minimum=1, maximum=5) for i, k in enumerate(n_blobs)]
    draws = check_int("draws", draws, minimum=1)
    n_per_blob = check_int("n_per_blob", n_per_blob, minimum=2)
    percentiles = _check_percentiles(percentiles)
    separation = check_float("separation", separation, minimum=0.0, open_low=True)
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    corners = separation * np.array([[0, 0], [1, 0], [0, 1], [1, 1], [0.5, 0.5]])
    rows = []
    for k in blobs:
        for draw in range(draws):
            X = np.concatenate([c + rng.normal(size=(n_per_blob, 2)) for c in corners[:k]])
            for p in percentiles:
                rho, delta, _ = density_peaks(X, p)
                rows.append({"blobs": k, "draw": draw, "percentile": p,
                             "found": clear_centres(rho, delta, top=top, min_ratio=min_ratio)})
    return pd.DataFrame(rows)


def _check_percentiles(percentiles) -> list[float]:
    if isinstance(percentiles, (str, bytes)) or not isinstance(percentiles,
                                                               (Sequence, np.ndarray)):
        raise TypeError(f"percentiles must be a sequence of numbers, got {percentiles!r}")
    if len(percentiles) == 0:
        raise ValueError("percentiles must not be empty")
    out = [check_float(f"percentiles[{i}]", p, minimum=0.0, maximum=100.0, open_low=True)
           for i, p in enumerate(percentiles)]
    if len(set(out)) != len(out):
        raise ValueError(f"percentiles has repeated values: {out}")
    return out


def _density_peaks_task(X: np.ndarray, percentiles: Sequence[float], cache_dir, code: str):
    """Return the cached decision graphs of one dataset for several percentiles (picklable).

    The percentiles not in the cache are computed together by
    :func:`mnistnd.validity.density_peaks_multi`, which shares the distance passes.
    """
    from mnistnd.validity import density_peaks_multi

    def params(p):
        return {"percentile": p, "code": code}

    missing = [p for p in percentiles if cache_dir is None or not (
        Path(cache_dir) / f"dpeaks-{_cache_key('dpeaks', [X], params(p))}.npz").exists()]
    fresh = {}

    def compute(p):
        if p not in fresh:  # first miss: every missing percentile in one shared call
            todo = missing if p in missing else [p]
            fresh.update(zip(todo, density_peaks_multi(X, todo), strict=True))
        return dict(zip(("rho", "delta", "gamma"), fresh[p], strict=True))

    out = []
    for p in percentiles:
        res = _cached(cache_dir, "dpeaks", [X], params(p), lambda p=p: compute(p))
        out.append((res["rho"], res["delta"], res["gamma"]))
    return out


def density_peaks_sweep(
    data: Mapping, percentiles: Sequence[float] = PAPER_PERCENTILES, *, cache_dir=None,
    n_jobs: int = 1, progress: bool = True,
) -> dict:
    """Decision-graph quantities for every dataset and distance percentile.

    Parameters
    ----------
    data
        ``{d: X}`` or ``{d: (X, labels)}`` (labels are ignored).
    percentiles
        Percentiles of all pairwise distances used as the radius ``d_c``, each in ``(0, 100]``.
    cache_dir
        Folder of cached results (``None``: no cache).
    n_jobs
        ``1``: one call after the other in this process (BLAS uses its own threads).
        More: that many single-threaded worker processes through
        :func:`mnistnd._parallel.run_tasks` (joblib; a Dask or Ray backend works too), which
        keeps every core busy also in the non-BLAS parts of the computation.
    progress
        Show a progress bar over datasets.

    Returns
    -------
    dict of (int, float) to tuple of numpy.ndarray
        ``{(d, percentile): (rho, delta, gamma)}``.
    """
    from mnistnd import validity
    from mnistnd._parallel import run_tasks

    if not data:
        raise ValueError("data is empty: give at least one dataset")
    percentiles = _check_percentiles(percentiles)
    arrays = {}
    for d, v in data.items():
        X = v[0] if isinstance(v, tuple) else v
        arrays[d] = check_matrix(f"data[{d}]", X, min_samples=2)
    n_jobs = check_n_jobs(n_jobs)
    if cache_dir is not None:
        cache_dir = settings.ensure_writable_dir(cache_dir, "cache_dir")
    code = code_digest(validity)
    # one task per dataset: its percentiles share the distance passes (density_peaks_multi)
    if n_jobs == 1:
        results = [_density_peaks_task(arrays[d], percentiles, cache_dir, code)
                   for d in _progress(arrays, total=len(arrays), desc="density peaks",
                                      enabled=progress)]
    else:
        results = run_tasks(_density_peaks_task,
                            [(arrays[d], percentiles, cache_dir, code) for d in arrays],
                            n_jobs=n_jobs, desc="density peaks", progress=progress)
    return {(d, p): r for d, res in zip(arrays, results, strict=True)
            for p, r in zip(percentiles, res, strict=True)}


def density_peaks_table(
    sweep: Mapping, *, top: int = 30, min_ratio: float = DEFAULT_MIN_RATIO,
) -> pd.DataFrame:
    """Clear-centre counts (gap rule of :func:`clear_centres`) per dimension and percentile.

    Parameters
    ----------
    sweep
        Output of :func:`density_peaks_sweep`.
    top, min_ratio
        Parameters of the gap rule.

    Returns
    -------
    pandas.DataFrame
        One row per ``(latent_dim, percentile)``: ``n_points``, ``n_clear_centres``,
        ``largest_ratio`` (largest consecutive-gamma ratio in the top ``top``),
        ``first_ratio`` (``g_1 / g_2``; gammas of :func:`counting_gamma`), and the
        break the rule would pick if that first drop were ignored: ``next_break`` (the ``k >= 2``
        with the largest ``g_k / g_{k+1}``) and ``next_ratio`` (that ratio).
    """
    rows = []
    for (d, p), (rho, delta, _gamma) in sweep.items():
        r = gap_ratios(rho, delta, top)
        nxt = int(np.argmax(r[1:])) + 2 if r.size > 1 else 0
        rows.append({"latent_dim": d, "percentile": p, "n_points": int(np.size(rho)),
                     "n_clear_centres": clear_centres(rho, delta, top=top, min_ratio=min_ratio),
                     "largest_ratio": float(np.max(r)), "first_ratio": float(r[0]),
                     "next_break": nxt,
                     "next_ratio": float(r[nxt - 1]) if nxt else float("nan")})
    return pd.DataFrame(rows)


def clear_centres_sensitivity(
    sweep: Mapping, tops: Sequence[int] = (10, 30, 100), *, min_ratio: float = DEFAULT_MIN_RATIO,
) -> pd.DataFrame:
    """Clear-centre counts for several candidate-list lengths (sensitivity of the rule).

    Parameters
    ----------
    sweep
        Output of :func:`density_peaks_sweep`.
    tops
        Numbers of candidates (the ``top`` of :func:`clear_centres`) to compare.
    min_ratio
        Threshold of the gap rule.

    Returns
    -------
    pandas.DataFrame
        Index ``(latent_dim, percentile)``, one column ``top=<t>`` per candidate-list length.
    """
    tops = [check_int(f"tops[{i}]", t, minimum=2) for i, t in enumerate(tops)]
    rows = []
    for (d, p), (rho, delta, _gamma) in sweep.items():
        row = {"latent_dim": d, "percentile": p}
        for t in tops:
            row[f"top={t}"] = clear_centres(rho, delta, top=t, min_ratio=min_ratio)
        rows.append(row)
    return pd.DataFrame(rows).set_index(["latent_dim", "percentile"])
