"""The MNIST-Nd datasets: build (train + encode), load and export (h5ad/CSV, clustbench).

One mixture VAE (:class:`mnistnd.models.MixtureVAE`, ``beta = 8 / d``) is trained per latent
dimension ``d`` on the MNIST training split with :func:`mnistnd.training.fit`; the test split is
then encoded **deterministically** (mean of ``q(z|x,y)`` at the most probable component ``y``).

Layout inside the artifacts folder (:func:`mnistnd.settings.artifacts_dir`)::

    mnistnd/mnist_{d}d.h5ad          the dataset: X = embedding (n_test x d), obs["digit"],
                                     obs["component"], uns = config, data source, versions,
                                     best epoch, final losses, seconds, history
    mnistnd/runs/d{d}-{hash}/        model.pt (best weights), history.csv, config.json
                                     (checkpoint.pt while training; removed once finished)

``{hash}`` is a hash of the full training configuration: a changed parameter trains a new model,
an unchanged one reuses the saved dataset. The chapter ``notebooks/mvae_training.md`` builds them;
later chapters read them with :func:`load_mnistnd`.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import platform
import textwrap
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mnistnd import settings
from mnistnd._checks import check_choice, check_int, check_int_list, check_matrix, check_n_jobs
from mnistnd._io import atomic_write, file_sha256, intact

__all__ = [
    "PAPER_DIMS",
    "build",
    "SOURCES",
    "load_mnistnd",
    "load_many",
    "load_model",
    "load_history",
    "available_dims",
    "summary",
    "export",
    "export_clustbench",
    "dataset_path",
    "encoded_images",
]

#: The six latent dimensions of the paper.
PAPER_DIMS = (2, 4, 8, 16, 32, 64)
_SUBDIR = "mnistnd"
_FORMAT = 1  # bump when the training recipe changes in a way the config does not capture
_CHAPTER = "notebooks/mvae_training.md"


def _folder(artifacts_dir) -> Path:
    return settings.artifacts_dir(artifacts_dir) / _SUBDIR


def encoded_images(adata, X_test, y_test):
    """Return the MNIST test images a dataset encodes (its row order), or ``None`` if not these.

    A dataset's ``obs["test_index"]`` indexes the MNIST test set it was made from (the full
    one for the release). Test images from another source (the bundled sample) are a different
    set: then the indices fall outside it or the digits disagree, and ``None`` is returned, so a
    caller never pairs embeddings with the wrong images.

    Returns
    -------
    tuple of numpy.ndarray or None
        ``(images, digits)`` of the dataset's rows.
    """
    index = adata.obs["test_index"].to_numpy()
    y_test = np.asarray(y_test)
    if index.size == 0 or index.max() >= len(y_test):
        return None
    if not np.array_equal(y_test[index], adata.obs["digit"].to_numpy()):
        return None
    return np.asarray(X_test)[index], y_test[index]


def dataset_path(d: int, artifacts_dir=None) -> Path:
    """Return the path of ``mnist_{d}d.h5ad`` in the artifacts folder (it may not exist)."""
    return _folder(artifacts_dir) / f"mnist_{check_int('d', d, minimum=1)}d.h5ad"


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("mnistnd", "torch", "numpy", "pandas", "anndata", "scikit-learn", "h5py"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _check_pixels(name: str, X) -> np.ndarray:
    X = check_matrix(name, X, dtype=np.float32)
    lo, hi = float(X.min()), float(X.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"{name}: pixel values must lie in [0, 1], found range [{lo}, {hi}]")
    return X


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text))


def _write_gzip(path: Path, text: str) -> None:
    """Write ``text`` gzip-compressed, atomically.

    The gzip header gets neither a timestamp nor a file name, so equal text gives equal bytes.
    """
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb",
                                                   mtime=0) as gz:
            gz.write(text.encode())

    atomic_write(path, write)


def _load_data(source, data, n_train, n_test, seed):
    """Return train/test arrays and a description of where they came from."""
    if data is not None:
        if not isinstance(data, (tuple, list)) or len(data) != 4:
            raise ValueError("data must be a tuple (X_train, y_train, X_test, y_test)")
        X_tr, y_tr, X_te, y_te = data
        info = {"source": "custom", "note": "arrays passed to mnistnd.datasets.build(data=...)"}
    else:
        from mnistnd import data as mdata

        X_tr, y_tr = mdata.load_mnist("train", source)
        X_te, y_te = mdata.load_mnist("test", source)
        used = mdata.resolve_source("mnist", source)
        info = mdata.source_info("mnist", used)
    X_tr, X_te = _check_pixels("X_train", X_tr), _check_pixels("X_test", X_te)
    from mnistnd._checks import check_labels

    y_tr, y_te = check_labels("y_train", y_tr, len(X_tr)), check_labels("y_test", y_te, len(X_te))
    if X_tr.shape[1] != X_te.shape[1]:
        raise ValueError(f"X_train has {X_tr.shape[1]} features but X_test {X_te.shape[1]}")
    rng = np.random.default_rng(seed)
    # a subset larger than the data (e.g. the bundled sample under source="auto") means "all"
    if n_train is not None and n_train >= len(X_tr):
        if n_train > len(X_tr):
            warnings.warn(f"n_train={n_train} exceeds the {len(X_tr)} training images of source "
                          f"{info['source']!r}: using all of them", stacklevel=3)
        n_train = None
    if n_train is not None:
        keep = np.sort(rng.choice(len(X_tr), n_train, replace=False))
        X_tr, y_tr = X_tr[keep], y_tr[keep]
    test_index = np.arange(len(X_te))
    if n_test is not None and n_test >= len(X_te):
        if n_test > len(X_te):
            warnings.warn(f"n_test={n_test} exceeds the {len(X_te)} test images of source "
                          f"{info['source']!r}: using all of them", stacklevel=3)
        n_test = None
    if n_test is not None:
        test_index = np.sort(rng.choice(len(X_te), n_test, replace=False))
        X_te, y_te = X_te[test_index], y_te[test_index]
    digest = hashlib.sha256()
    for a in (X_tr, y_tr, X_te, y_te):
        digest.update(np.ascontiguousarray(a).tobytes())
    return X_tr, y_tr, X_te, y_te, test_index, info, digest.hexdigest()[:16]


def build(
    latent_dims: Sequence[int] = PAPER_DIMS,
    *,
    epochs: int = 100,
    batch_size: int = 64,
    patience: int | None = 10,
    n_train: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
    device: str = "auto",
    artifacts_dir: str | os.PathLike | None = None,
    source: str = "auto",
    progress: bool = True,
    lr: float = 1e-3,
    min_delta: float = 1e-4,
    val_fraction: float = 0.1,
    num_threads: int | None = None,
    n_jobs: int = 1,
    data: tuple | None = None,
) -> pd.DataFrame:
    """Train one m-VAE per latent dimension and save the encoded test split as AnnData.

    Parameters
    ----------
    latent_dims
        Latent dimensions ``d`` (positive, distinct); the paper's are ``(2, 4, 8, 16, 32, 64)``.
    epochs, batch_size, patience, lr, min_delta, val_fraction
        Training settings passed to :func:`mnistnd.training.fit` (paper: 100, 64, 10, 1e-3,
        1e-4; the validation set is ``val_fraction`` of the training images).
    n_train
        Train on a seeded random subset of this many training images; ``None``: all. A value
        larger than the data available (e.g. the bundled sample) means all, with a warning.
    n_test
        Encode a seeded random subset of this many test images; ``None``: all (10,000); capped
        like ``n_train``.
    seed
        Seed of the subsets, the initial weights and the training run.
    device
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``.
    artifacts_dir
        Artifacts folder (see :func:`mnistnd.settings.artifacts_dir`).
    source
        MNIST source for :func:`mnistnd.data.load_mnist`: ``"auto"``, ``"full"``, ``"bundled"``.
    progress
        Show progress bars (one per model over epochs; with ``n_jobs > 1`` one over models).
    num_threads
        Torch CPU threads during training (``None``: torch's default, or 1 per worker when
        ``n_jobs > 1``).
    n_jobs
        Models trained at once, in separate processes (:func:`mnistnd._parallel.run_tasks`;
        ``-1``: one per core). On a CPU, one single-threaded model per core trains faster than
        one model on all cores: the matrix products of batch 64 are too small to share well
        (``tests/benchmarks/bench_mvae_training.py``). The weights are the same as with
        ``n_jobs=1`` and the same ``num_threads``.
    data
        Optional ``(X_train, y_train, X_test, y_test)`` arrays used instead of MNIST (pixels in
        [0, 1]); recorded as source ``"custom"``.

    Returns
    -------
    pandas.DataFrame
        One row per dimension (see :func:`summary`) plus ``reused`` (True when a saved dataset of
        the same configuration was kept).
    """
    from mnistnd._parallel import run_tasks
    from mnistnd.models.mixture_vae import default_beta
    from mnistnd.training import resolve_device

    dims = check_int_list("latent_dims", list(latent_dims), minimum=1)
    if len(set(dims)) != len(dims):
        raise ValueError(f"latent_dims has repeated values: {dims}")
    epochs = check_int("epochs", epochs, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    if patience is not None:
        patience = check_int("patience", patience, minimum=1)
    if n_train is not None:
        n_train = check_int("n_train", n_train, minimum=2)
    if n_test is not None:
        n_test = check_int("n_test", n_test, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    if num_threads is not None:
        num_threads = check_int("num_threads", num_threads, minimum=1)
    n_jobs = check_n_jobs(n_jobs)
    check_choice("source", source, ("auto", "full", "bundled"))
    dev = resolve_device(device)
    folder = settings.ensure_writable_dir(_folder(artifacts_dir), "artifacts_dir")
    X_tr, y_tr, X_te, y_te, test_index, info, data_hash = _load_data(
        source, data, n_train, n_test, seed
    )
    versions = _versions()
    parallel = n_jobs != 1
    fit_kwargs = dict(val_fraction=val_fraction, epochs=epochs, batch_size=batch_size, lr=lr,
                      patience=patience, min_delta=min_delta, seed=seed, device=dev,
                      progress=progress and not parallel,
                      num_threads=num_threads or (1 if parallel else None))
    rows: dict[int, dict] = {}
    tasks = []
    for d in dims:
        model_kwargs = {"n_latent": d, "n_input": int(X_tr.shape[1])}
        config = {
            "format": _FORMAT, "latent_dim": d, "beta": default_beta(d), "epochs": epochs,
            "batch_size": batch_size, "patience": patience, "min_delta": min_delta, "lr": lr,
            "val_fraction": val_fraction, "n_train": int(len(X_tr)), "n_test": int(len(X_te)),
            "seed": seed, "source": info["source"], "data_hash": data_hash,
            "model": "MixtureVAE", "model_kwargs": model_kwargs,
        }
        key = _hash(config)
        path = folder / f"mnist_{d}d.h5ad"
        if intact(path) and _read_uns_hash(path) == key:
            rows[d] = {**_summary_row(load_mnistnd(d, "artifacts", artifacts_dir)), "reused": True}
            continue
        run_dir = settings.ensure_writable_dir(folder / "runs" / f"d{d}-{key}", "artifacts_dir")
        _write_text(run_dir / "config.json", json.dumps(config, indent=2, sort_keys=True))
        tasks.append((config, key, str(folder), str(run_dir)))
    if tasks:
        common = dict(train=X_tr, test=(X_te, y_te, test_index), info=info, versions=versions,
                      fit_kwargs=fit_kwargs)
        # n_jobs=1 stays out of run_tasks, which would pin torch to one thread (num_threads=None
        # means torch's default here)
        trained = run_tasks(_train_one, tasks, n_jobs=n_jobs, kwargs=common, progress=progress,
                            desc="m-VAE models") if parallel else [
            _train_one(*task, **common) for task in tasks]
        for (config, *_), row in zip(tasks, trained, strict=True):
            rows[config["latent_dim"]] = {**row, "reused": False}
    return pd.DataFrame([rows[d] for d in dims])


def _train_one(config: dict, key: str, folder: str, run_dir: str, *, train, test, info,
               versions, fit_kwargs) -> dict:
    """Train, encode and save the model of one latent dimension; return its summary row.

    Module-level so that :func:`build` can run it in worker processes.
    """
    import torch

    from mnistnd.models import MixtureVAE
    from mnistnd.training import CheckpointMismatchError, fit

    X_te, y_te, test_index = test
    folder, run_dir = Path(folder), Path(run_dir)
    d, model_kwargs, seed = config["latent_dim"], config["model_kwargs"], config["seed"]
    dev = torch.device(fit_kwargs["device"])
    torch.manual_seed(seed)
    model = MixtureVAE(**model_kwargs)
    t0 = time.perf_counter()
    try:
        history = fit(model, train, checkpoint_dir=run_dir, **fit_kwargs)
    except CheckpointMismatchError:
        # a checkpoint left by an older version of the code: start this model afresh
        warnings.warn(f"discarding an incompatible checkpoint in {run_dir}", stacklevel=2)
        (run_dir / "checkpoint.pt").unlink()
        torch.manual_seed(seed)
        model = MixtureVAE(**model_kwargs)
        history = fit(model, train, checkpoint_dir=run_dir, **fit_kwargs)
    seconds = float(history["seconds"].sum()) if history.attrs["resumed_at"] else (
        time.perf_counter() - t0)
    embedding = _encode(model, X_te, dev)
    best = history.attrs["best_epoch"]
    final = {k: float(v) for k, v in history.iloc[best].items()
             if k.startswith(("train_", "val_"))}
    atomic_write(run_dir / "model.pt", lambda p: torch.save(
        {"model_kwargs": model_kwargs,
         "state_dict": {k: v.cpu() for k, v in model.state_dict().items()}}, p))
    atomic_write(run_dir / "history.csv", lambda p: history.to_csv(p, index=False))
    uns = {
        "config": _uns_safe(config), "config_hash": key, "dataset": f"MNIST-{d}d",
        "data_source": {"source": info["source"], "note": str(info.get("note", "")),
                        "json": json.dumps(info, sort_keys=True, default=str)},
        "versions": versions, "best_epoch": int(best), "epochs_run": int(len(history)),
        "stopped_early": bool(history.attrs["stopped_early"]),
        "final_losses": final, "seconds": seconds, "device": str(dev),
        "run_dir": str(run_dir.relative_to(folder)),
        "history": {c: history[c].to_numpy() for c in history.columns},
        "history_columns": np.asarray(history.columns, dtype=str),
    }
    adata = _make_anndata(embedding, y_te, test_index, model, X_te, dev, uns)
    atomic_write(folder / f"mnist_{d}d.h5ad", lambda p: adata.write_h5ad(p), checksum=True)
    with contextlib.suppress(OSError):
        (run_dir / "checkpoint.pt").unlink()
    return _summary_row(adata)


def _uns_safe(config: Mapping) -> dict:
    """Config as h5ad-storable values (None -> 'None')."""
    out = {}
    for k, v in config.items():
        if isinstance(v, Mapping):
            out[k] = _uns_safe(v)
        else:
            out[k] = "None" if v is None else v
    return out


def _encode(model, X, dev, batch: int = 2048) -> np.ndarray:
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        # a copy: in build(n_jobs>1) workers the arrays are read-only memory maps
        for lo in range(0, len(X), batch):
            out.append(model.encode(torch.tensor(X[lo:lo + batch]).to(dev)).cpu().numpy())
    return np.concatenate(out).astype(np.float32)


def _make_anndata(embedding, digits, test_index, model, X_te, dev, uns):
    import anndata
    import torch

    with torch.no_grad():
        comp = []
        for lo in range(0, len(X_te), 2048):
            x = torch.tensor(X_te[lo:lo + 2048]).to(dev)
            comp.append(model.component_probabilities(x).argmax(-1).cpu().numpy())
    d = embedding.shape[1]
    obs = pd.DataFrame({"digit": digits.astype(np.int64),
                        "component": np.concatenate(comp).astype(np.int64),
                        "test_index": test_index.astype(np.int64)},
                       index=[f"test_{i}" for i in test_index])
    var = pd.DataFrame(index=[f"z{j}" for j in range(d)])
    return anndata.AnnData(X=embedding, obs=obs, var=var, uns=uns)


def _read_uns_hash(path: Path) -> str | None:
    import h5py

    try:
        with h5py.File(path, "r") as fh:
            value = fh["uns"]["config_hash"][()]
    except (OSError, KeyError):
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def available_dims(artifacts_dir=None) -> list[int]:
    """Return the latent dimensions whose dataset exists in the artifacts folder (sorted)."""
    folder = _folder(artifacts_dir)
    dims = []
    for p in folder.glob("mnist_*d.h5ad"):
        stem = p.name[len("mnist_"):-len("d.h5ad")]
        if stem.isdigit():
            dims.append(int(stem))
    return sorted(dims)


def _missing(d: int, artifacts_dir) -> FileNotFoundError:
    have = available_dims(artifacts_dir)
    return FileNotFoundError(
        f"MNIST-{d}d is not in {_folder(artifacts_dir)} (available: {have or 'none'}). It is made "
        f"by the chapter {_CHAPTER}: run `mnistnd run {_CHAPTER} --profile <profile> "
        f"-p latent_dims {d}` (or mnistnd.datasets.build(latent_dims=[{d}], ...))."
    )


SOURCES = ("auto", "release", "artifacts")


def _resolve_source(d: int, source: str, artifacts_dir) -> str:
    """``"auto"``: this profile's own dataset when it trained one, else the release."""
    check_choice("source", source, SOURCES)
    if source != "auto":
        return source
    return "artifacts" if dataset_path(d, artifacts_dir).exists() else "release"


def load_many(latent_dims: Sequence[int], source: str = "auto", artifacts_dir=None) -> dict:
    """Load the MNIST-Nd datasets of several dimensions (see :func:`load_mnistnd`).

    Parameters
    ----------
    latent_dims
        Dimensions to load (non-empty, positive, distinct), e.g. ``[2, 4, 8, 16, 32, 64]``.
    source
        ``"auto"``, ``"release"`` or ``"artifacts"``, as in :func:`load_mnistnd`.
    artifacts_dir
        Artifacts folder holding trained datasets.

    Returns
    -------
    dict of int to anndata.AnnData
        One dataset per dimension, in the order given.

    Raises
    ------
    FileNotFoundError
        If a dataset is missing; the message names the chapter that builds it.
    """
    check_choice("source", source, SOURCES)
    dims = check_int_list("latent_dims", list(latent_dims), minimum=1)
    if len(set(dims)) != len(dims):
        raise ValueError(f"latent_dims must be distinct (repeated values in {dims})")
    return {d: load_mnistnd(d, source, artifacts_dir) for d in dims}


def load_mnistnd(d: int, source: str = "auto", artifacts_dir=None, *,
                 expected_config: Mapping | None = None):
    """Load the MNIST-Nd dataset of latent dimension ``d``.

    Parameters
    ----------
    d
        Latent dimension (2, 4, 8, 16, 32 or 64 in the paper).
    source
        Where the dataset comes from:

        * ``"release"``: the datasets shipped with the package
          (:mod:`mnistnd.release`, *MNIST-Nd as reproduced by this compendium*), checked
          against their manifest; nothing needs to be trained;
        * ``"artifacts"``: a dataset trained by :func:`build` (the m-VAE chapter) in
          ``artifacts_dir``;
        * ``"auto"``: ``"artifacts"`` when ``artifacts_dir`` holds a trained dataset of
          dimension ``d``, otherwise ``"release"``.
    artifacts_dir
        Artifacts folder (see :func:`mnistnd.settings.artifacts_dir`).
    expected_config
        Optional settings the dataset must have been built with (keys of ``uns["config"]``,
        e.g. ``{"epochs": 100, "source": "full"}``); a mismatch raises ``ValueError``.

    Returns
    -------
    anndata.AnnData
        ``X`` = embedding ``(n_test, d)`` float32, ``obs["digit"]`` (true label, never used in
        training), ``obs["component"]`` (most probable mixture component),
        ``obs["test_index"]`` (row of the MNIST test split), ``uns`` = config and training
        record (and ``uns["release"]`` for the release).

    Raises
    ------
    ValueError
        For an unknown ``source``, a dimension the release lacks, or a configuration that
        differs from ``expected_config``.
    FileNotFoundError
        If ``source="artifacts"`` and the dataset has not been built; the message names the
        chapter and command that make it.
    mnistnd.release.ReleaseError
        If a release file is missing or fails its sha256 check.
    """
    import anndata

    d = check_int("d", d, minimum=1)
    if _resolve_source(d, source, artifacts_dir) == "release":
        from mnistnd import release

        adata = release.load(d)
        where = f"release {release.VERSION}"
    else:
        path = dataset_path(d, artifacts_dir)
        if not path.exists():
            raise _missing(d, artifacts_dir)
        if not intact(path):
            raise ValueError(f"{path}: content differs from the sha256 recorded when it was "
                             f"written (damaged); rebuild it with `mnistnd run {_CHAPTER}`")
        adata = anndata.read_h5ad(path)
        where = str(path.parent)
    if expected_config:
        stored = adata.uns.get("config", {})
        diff = {k: (stored.get(k, "<absent>"), v) for k, v in expected_config.items()
                if _norm(stored.get(k, "<absent>")) != _norm(v)}
        if diff:
            details = ", ".join(f"{k}: built with {a!r}, requested {b!r}"
                                for k, (a, b) in diff.items())
            raise ValueError(
                f"MNIST-{d}d in {where} was built under a different configuration "
                f"({details}); rebuild it with `mnistnd run {_CHAPTER}` and those parameters"
            )
    return adata


def _norm(v):
    if v is None:
        return "None"
    if isinstance(v, np.generic):
        return v.item()
    return v


def load_model(d: int, artifacts_dir=None, device: str = "cpu"):
    """Return the trained m-VAE (best weights, eval mode) behind the dataset of dimension ``d``."""
    import torch

    from mnistnd.models import MixtureVAE

    adata = load_mnistnd(d, "artifacts", artifacts_dir)
    path = _folder(artifacts_dir) / adata.uns["run_dir"] / "model.pt"
    if not path.exists():
        raise FileNotFoundError(f"model weights of MNIST-{d}d missing: {path}; rebuild with "
                                f"`mnistnd run {_CHAPTER}`")
    saved = torch.load(path, map_location=device, weights_only=True)
    model = MixtureVAE(**saved["model_kwargs"])
    model.load_state_dict(saved["state_dict"])
    return model.to(device).eval()


def load_history(d: int, source: str = "auto", artifacts_dir=None) -> pd.DataFrame:
    """Return the training history (one row per epoch) of the m-VAE of dimension ``d``.

    ``source`` and ``artifacts_dir`` are as in :func:`load_mnistnd`.
    """
    adata = load_mnistnd(d, source, artifacts_dir)
    columns = [str(c) for c in adata.uns["history_columns"]]
    return pd.DataFrame({c: np.asarray(adata.uns["history"][c]) for c in columns})


def _summary_row(adata) -> dict:
    uns = adata.uns
    cfg = uns["config"]
    return {"latent_dim": int(cfg["latent_dim"]), "beta": float(cfg["beta"]),
            "best_epoch": int(uns["best_epoch"]), "epochs_run": int(uns["epochs_run"]),
            "stopped_early": bool(uns["stopped_early"]), "seconds": float(uns["seconds"]),
            **{k: float(v) for k, v in uns["final_losses"].items()},
            "source": str(uns["data_source"]["source"]), "n_train": int(cfg["n_train"]),
            "n_test": int(adata.n_obs), "device": str(uns["device"])}


def summary(latent_dims: Sequence[int] | None = None, artifacts_dir=None) -> pd.DataFrame:
    """Table of the built datasets: best epoch, epochs run, seconds, losses at the best epoch.

    Parameters
    ----------
    latent_dims
        Dimensions to include; ``None``: all available.
    artifacts_dir
        Artifacts folder.

    Returns
    -------
    pandas.DataFrame
        One row per dimension: ``latent_dim``, ``beta``, ``best_epoch``, ``epochs_run``,
        ``stopped_early``, ``seconds``, ``train_*``/``val_*`` loss terms at the best epoch,
        ``source``, ``n_train``, ``n_test``, ``device``.
    """
    dims = available_dims(artifacts_dir) if latent_dims is None else check_int_list(
        "latent_dims", list(latent_dims), minimum=1)
    return pd.DataFrame([_summary_row(load_mnistnd(d, "artifacts", artifacts_dir))
                         for d in dims])


def export(artifacts_dir=None, out_dir=None, latent_dims: Sequence[int] | None = None) -> list:
    """Write the datasets as ``.h5ad`` and ``.csv.gz`` with a ``manifest.json`` of sha256 sums.

    Parameters
    ----------
    artifacts_dir
        Artifacts folder holding the built datasets.
    out_dir
        Output folder (created); default ``<artifacts>/export``.
    latent_dims
        Dimensions to export; ``None``: all available (an error when none are).

    Returns
    -------
    list of pathlib.Path
        The files written, the manifest last. The CSV has columns ``z0 ... z{d-1}``, ``digit``
        and is gzip-compressed without a timestamp, so identical data give identical bytes.
    """
    dims = available_dims(artifacts_dir) if latent_dims is None else check_int_list(
        "latent_dims", list(latent_dims), minimum=1)
    if not dims:
        raise FileNotFoundError(
            f"no MNIST-Nd datasets in {_folder(artifacts_dir)}; build them with "
            f"`mnistnd run {_CHAPTER}`")
    adatas = {d: load_mnistnd(d, "artifacts", artifacts_dir) for d in dims}  # all, then write
    out = settings.ensure_writable_dir(
        settings.artifacts_dir(artifacts_dir) / "export" if out_dir is None else out_dir,
        "out_dir")
    written, entries = [], []
    for d, adata in adatas.items():
        h5 = out / f"mnist_{d}d.h5ad"
        atomic_write(h5, lambda p, a=adata: a.write_h5ad(p))
        table = pd.DataFrame(adata.X, columns=list(adata.var_names))
        table["digit"] = adata.obs["digit"].to_numpy()
        csv = out / f"mnist_{d}d.csv.gz"
        _write_gzip(csv, table.to_csv(index=False, float_format="%.7g"))
        for f in (h5, csv):
            entries.append({"file": f.name, "latent_dim": d, "bytes": f.stat().st_size,
                            "sha256": file_sha256(f), "n_samples": int(adata.n_obs),
                            "config_hash": str(adata.uns["config_hash"]),
                            "source": str(adata.uns["data_source"]["source"])})
            written.append(f)
    manifest = out / "manifest.json"
    _write_text(manifest, json.dumps({"datasets": entries}, indent=2))
    written.append(manifest)
    return written


_DIGITS = 10
_BATTERY_README = """\
MNIST-Nd (Turishcheva et al. 2024, arXiv:2410.16124): the MNIST test images embedded by
mixture VAEs with latent spaces of d dimensions, written by the mnistnd package with
`mnistnd export --format clustbench`. Dataset mnist_{d}d is the embedding of dimension d;
its .txt file says which models made it (the package's release, or a profile's own
training), how many points it has and how its labels map to digits.
"""


def _clustbench_dims(latent_dims, source: str, artifacts_dir) -> list[int]:
    """Check the dimensions to export against those ``source`` can provide."""
    from mnistnd import release

    check_choice("source", source, SOURCES)
    have = set(release.dims()) if source != "artifacts" else set()
    if source != "release":
        have |= set(available_dims(artifacts_dir))
    if latent_dims is None:
        if not have:
            raise FileNotFoundError(
                f"no MNIST-Nd datasets in {_folder(artifacts_dir)}; build them with "
                f"`mnistnd run {_CHAPTER}` or export the release (source='release')")
        return sorted(have)
    dims = check_int_list("latent_dims", list(latent_dims), minimum=1)
    if len(set(dims)) != len(dims):
        raise ValueError(f"latent_dims must be distinct (repeated values in {dims})")
    unknown = [d for d in dims if d not in have]
    if unknown:
        hint = f"; build them with `mnistnd run {_CHAPTER}`" if source == "artifacts" else ""
        raise ValueError(f"latent_dims: no dataset of dimension {unknown} from "
                         f"source={source!r} (available: {sorted(have) or 'none'}){hint}")
    return dims


def _check_battery(battery) -> str:
    """Return ``battery`` if it is one folder name that clustbench lists (not '.'-hidden)."""
    import re

    if not isinstance(battery, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", battery):
        raise ValueError(f"battery must be a folder name of letters, digits, '_', '.' or '-' "
                         f"(not starting with '.' or '-'), got {battery!r}")
    return battery


def _clustbench_description(adata) -> str:
    """Return the ``<name>.txt`` of one dataset: what it is, where it comes from, its labels."""
    d, n = int(adata.n_vars), int(adata.n_obs)
    if "release" in adata.uns:
        origin = (f"{adata.uns['release']['name']} (the mnistnd package): the m-VAE of this "
                  "dimension trained once at the paper's settings; not the MNIST-Nd authors' "
                  "own files, which are not public")
    else:
        cfg = adata.uns["config"]
        origin = (f"MNIST-Nd trained by this compendium's m-VAE chapter, not its release "
                  f"(configuration hash {adata.uns['config_hash']}, {cfg['epochs']} epochs, "
                  f"{cfg['n_train']} training images)")
    return (
        f"MNIST-{d}d: {n} MNIST test images embedded in {d} dimensions by a mixture VAE\n"
        f"(beta = 8/d), each image as the mean of q(z|x,y) at its most probable component.\n"
        f"\n"
        f"{textwrap.fill(f'Dataset: {origin}.', width=88)}\n"
        f"Dimension: {d}\n"
        f"Points: {n} (rows in the order of the MNIST test file)\n"
        f"Reference labels (labels0): the true digit plus one, 1 = digit 0, ..., 10 = digit 9;\n"
        f"there are no noise points (label 0 is not used). The digits were never used in "
        f"training.\n"
        f"\n"
        f"Written by `mnistnd export --format clustbench`.\n"
        f"Cite: Turishcheva P., Hansel L., Ritzert M., Weis M.A., Ecker A.S., MNIST-Nd: a set "
        f"of\nnaturalistic datasets to benchmark clustering across dimensions, 2024, "
        f"arXiv:2410.16124.\n"
    )


def export_clustbench(
    out_dir: str | os.PathLike,
    latent_dims: Sequence[int] | None = None,
    *,
    source: str = "release",
    artifacts_dir: str | os.PathLike | None = None,
    battery: str = "mnistnd",
) -> list[Path]:
    """Write the MNIST-Nd datasets as a clustbench battery (``clustering-benchmarks``).

    The battery is the folder ``out_dir/battery``; ``clustbench.load_dataset(battery,
    "mnist_16d", path=out_dir)`` reads a dataset back. Per dimension ``d`` it holds, following
    clustbench's file format:

    * ``mnist_{d}d.data.gz``: the embedding, one point per line, ``d`` space-separated values
      with nine significant digits (the float32 values are read back exactly);
    * ``mnist_{d}d.labels0.gz``: one integer per line, the digit plus one (clustbench keeps
      label 0 for noise, which MNIST-Nd has none of);
    * ``mnist_{d}d.txt``: the description clustbench returns (what the dataset is, which
      models made it, dimension, number of points, label mapping, citation);

    and ``README.txt``, the battery's description (by which ``clustbench.get_battery_names``
    finds it). Every file is written atomically and gzip without a timestamp: the same data
    give the same bytes.

    Parameters
    ----------
    out_dir
        Folder of the benchmark suite; the battery folder is made inside it.
    latent_dims
        Dimensions to export; ``None``: all that ``source`` provides (the release's six for
        ``"release"``).
    source
        ``"release"``, ``"artifacts"`` or ``"auto"``, as in :func:`load_mnistnd`.
    artifacts_dir
        Artifacts folder holding trained datasets (``source`` ``"artifacts"`` or ``"auto"``).
    battery
        Name of the battery folder.

    Returns
    -------
    list of pathlib.Path
        The files written: data, labels and description per dimension, then ``README.txt``.

    Raises
    ------
    ValueError
        For an unknown ``source``, a dimension ``source`` lacks, a bad ``battery``, or a
        dataset in which some digit has no point (clustbench labels must be ``1 ... K``, all
        used).
    NotADirectoryError
        If ``out_dir`` or the battery folder exists as a file.
    FileNotFoundError
        If ``latent_dims`` is ``None`` and ``source`` has no datasets.
    """
    battery = _check_battery(battery)
    root = Path(out_dir).expanduser()
    for path, name in ((root, "out_dir"), (root / battery, "battery")):
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(f"{name}: {str(path)!r} exists and is not a directory")
    dims = _clustbench_dims(latent_dims, source, artifacts_dir)
    adatas = {d: load_mnistnd(d, source, artifacts_dir) for d in dims}  # all, then write
    for d, adata in adatas.items():
        found, wanted = set(np.unique(adata.obs["digit"]).tolist()), set(range(_DIGITS))
        if found != wanted:
            raise ValueError(f"MNIST-{d}d: its digits must be 0 ... 9, each at least once "
                             f"(clustbench labels 1 ... 10, all used); missing "
                             f"{sorted(wanted - found)}, other values {sorted(found - wanted)}")
    out = settings.ensure_writable_dir(root / battery, "out_dir")
    written = [p for d, adata in adatas.items() for p in _write_clustbench(out, d, adata)]
    _write_text(out / "README.txt", _BATTERY_README)
    return [*written, out / "README.txt"]


def _write_clustbench(out: Path, d: int, adata) -> list[Path]:
    """Write one dataset's data, labels and description into the battery folder ``out``."""
    name = f"mnist_{d}d"
    data = io.StringIO()
    np.savetxt(data, np.asarray(adata.X, dtype=np.float32), fmt="%.9g", delimiter=" ")
    _write_gzip(out / f"{name}.data.gz", data.getvalue())
    labels = adata.obs["digit"].to_numpy().astype(np.int64) + 1
    _write_gzip(out / f"{name}.labels0.gz", "".join(f"{k}\n" for k in labels))
    _write_text(out / f"{name}.txt", _clustbench_description(adata))
    return [out / f"{name}.data.gz", out / f"{name}.labels0.gz", out / f"{name}.txt"]
