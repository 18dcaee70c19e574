"""The MNIST-Nd release: the six datasets shipped inside the package, checked and versioned.

The release is *MNIST-Nd as reproduced by this compendium*: six m-VAEs trained once at the
paper's settings (all 60,000 training images with a 10 % validation split, batch 64, up to 100
epochs, patience 10, minimum improvement 1e-4, ``beta = 8 / d``, seed 0) and the 10,000 MNIST
test images encoded by each. It is not the MNIST-Nd authors' files, which are not public.

Layout of ``mnistnd/release/<version>/``::

    mnist_{d}d.npz        embedding (10,000 x d, float32), digit, component, test_index
    history.csv           one row per (latent_dim, epoch): the training record of every model
    reconstructions.npz   ``images`` (one test image per digit) and ``d{d}`` reconstructions
    manifest.json         sha256 and size of every file, the full training configuration, the
                          code commit, package versions, MNIST checksums and, per model, the
                          seconds of training, the best epoch and the epochs run

Every read checks the file against the manifest first (:func:`check_file`); a release written
under another manifest format is refused rather than guessed at. :func:`build` regenerates the
release from scratch and is the record of how it was made; :func:`verify` retrains the first
epochs of some models and checks that the history equals the shipped one bit for bit.
"""

from __future__ import annotations

import copy
import functools
import io
import json
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mnistnd._checks import check_int, check_int_list
from mnistnd._io import atomic_write, file_sha256

__all__ = [
    "VERSION",
    "NAME",
    "TRAINING",
    "ReleaseError",
    "release_dir",
    "manifest",
    "dims",
    "check_file",
    "check_all",
    "load",
    "load_history",
    "load_reconstructions",
    "summary",
    "source_info",
    "build",
    "verify",
]

#: Version of the release the package loads by default.
VERSION = "v1"
#: How the release is named wherever it is shown.
NAME = "MNIST-Nd as reproduced by this compendium, release v1"
#: Version of the manifest's layout; a release of another format is refused.
MANIFEST_FORMAT = 1
#: Training settings of the release (the paper's); passed to :func:`mnistnd.datasets.build`.
TRAINING = {
    "latent_dims": [2, 4, 8, 16, 32, 64], "epochs": 100, "batch_size": 64, "patience": 10,
    "min_delta": 1e-4, "lr": 1e-3, "val_fraction": 0.1, "n_train": None, "n_test": None,
    "seed": 0, "source": "full", "num_threads": 1, "device": "cpu",
}
_MANIFEST = "manifest.json"
_HISTORY = "history.csv"
_RECONSTRUCTIONS = "reconstructions.npz"
# history columns that record the machine rather than the computation
_TIMING_COLUMNS = ("seconds",)


class ReleaseError(ValueError):
    """A release file is missing, altered, or of a format this package cannot read."""


def release_dir(version: str = VERSION) -> Path:
    """Return the folder of a release inside the installed package (it may not exist)."""
    if not isinstance(version, str) or not version or "/" in version or version.startswith("."):
        raise ValueError(f"version must be a release name such as {VERSION!r}, got {version!r}")
    return Path(__file__).resolve().parent / "release" / version


def _dataset_name(d: int) -> str:
    return f"mnist_{d}d.npz"


def manifest(version: str = VERSION) -> dict:
    """Read and check the manifest of a release.

    Parameters
    ----------
    version
        Release folder name (default :data:`VERSION`).

    Returns
    -------
    dict
        The manifest: ``format``, ``name``, ``files`` (name to ``sha256`` and ``bytes``),
        ``training`` (configuration), ``models`` (per latent dimension), ``code``,
        ``versions``, ``data``.

    Raises
    ------
    ReleaseError
        If the manifest is missing, unreadable, or of another format.
    """
    return _read_manifest(release_dir(version) / _MANIFEST, f"release {version!r}")


def _read_manifest(path: Path, label: str) -> dict:
    if not path.is_file():
        raise ReleaseError(f"{label}: manifest file {str(path)!r} is missing; "
                           "reinstall the package or rebuild with `mnistnd release build`")
    stat = path.stat()
    # parsed once per file version; every caller gets its own copy to change at will
    return copy.deepcopy(_parse_manifest(str(path), stat.st_mtime_ns, stat.st_size, label))


@functools.lru_cache(maxsize=16)
def _parse_manifest(path: str, _mtime_ns: int, _size: int, label: str) -> dict:
    try:
        content = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ReleaseError(f"{label}: manifest file {str(path)!r} is not "
                           f"readable JSON ({err})") from err
    fmt = content.get("format") if isinstance(content, dict) else None
    if fmt != MANIFEST_FORMAT:
        raise ReleaseError(
            f"{label}: manifest {str(path)!r} has format {fmt!r}; this version of "
            f"mnistnd reads format {MANIFEST_FORMAT} only (install the matching mnistnd, or "
            "rebuild the release with `mnistnd release build`)")
    return content


def dims(version: str = VERSION) -> list[int]:
    """Return the latent dimensions a release holds (sorted)."""
    return sorted(int(d) for d in manifest(version)["models"])


def check_file(name: str, version: str = VERSION) -> Path:
    """Return the path of a release file after checking it against the manifest.

    Raises
    ------
    ReleaseError
        If the manifest does not list ``name``, the file is missing, or its sha256 differs.
    """
    return _checked(release_dir(version), manifest(version)["files"], name,
                    f"release {version!r}")


def _checked(folder: Path, entries: dict, name: str, label: str) -> Path:
    if name not in entries:
        raise ReleaseError(f"{label}: file {name!r} is not in the manifest "
                           f"(listed: {', '.join(sorted(entries))})")
    path = folder / name
    if not path.is_file():
        raise ReleaseError(f"{label}: file {str(path)!r} is missing; reinstall "
                           "the package or rebuild with `mnistnd release build`")
    digest = file_sha256(path)
    if digest != entries[name]["sha256"]:
        raise ReleaseError(
            f"{label}: file {str(path)!r} fails its sha256 check (manifest "
            f"{entries[name]['sha256'][:12]}..., file {digest[:12]}...); it was altered or "
            "damaged: reinstall the package or rebuild with `mnistnd release build`")
    return path


def check_all(version: str = VERSION) -> dict[str, str]:
    """Check every file of a release against its manifest; return name to sha256."""
    return {name: file_sha256(check_file(name, version)) for name in manifest(version)["files"]}


def _check_dim(d, version: str) -> int:
    d = check_int("d", d, minimum=1)
    have = dims(version)
    if d not in have:
        raise ValueError(f"d: release {version!r} has latent dimensions {have}, not {d}")
    return d


def load(d: int, version: str = VERSION):
    """Load the dataset of dimension ``d`` from the release as AnnData (as trained ones are).

    Parameters
    ----------
    d
        Latent dimension; one of :func:`dims`.
    version
        Release folder name.

    Returns
    -------
    anndata.AnnData
        ``X`` embedding ``(10000, d)`` float32; ``obs`` ``digit``, ``component``,
        ``test_index``; ``uns`` ``release`` (name, version), ``config``, ``best_epoch``,
        ``epochs_run``, ``seconds``, ``history`` and ``history_columns``.

    Raises
    ------
    ValueError
        If the release has no dataset of dimension ``d``.
    ReleaseError
        If a file is missing or fails its check.
    """
    import anndata

    d = _check_dim(d, version)
    meta = manifest(version)
    with np.load(check_file(_dataset_name(d), version)) as npz:
        arrays = {k: npz[k] for k in npz.files}
    index = arrays["test_index"].astype(np.int64)
    obs = pd.DataFrame({"digit": arrays["digit"].astype(np.int64),
                        "component": arrays["component"].astype(np.int64),
                        "test_index": index}, index=[f"test_{i}" for i in index])
    var = pd.DataFrame(index=[f"z{j}" for j in range(d)])
    history = load_history(d, version)
    model = meta["models"][str(d)]
    uns = {"release": {"name": meta["name"], "version": version},
           "config": {**_config_for_uns(meta["training"]), "latent_dim": d,
                      "beta": model["beta"]},
           "dataset": f"MNIST-{d}d", "best_epoch": model["best_epoch"],
           "epochs_run": model["epochs_run"], "stopped_early": model["stopped_early"],
           "seconds": model["seconds"], "final_losses": model["final_losses"],
           "data_source": {"source": "release", "note": NAME,
                           "json": json.dumps(source_info(version), sort_keys=True)},
           "device": model["device"],
           "history": {c: history[c].to_numpy() for c in history.columns},
           "history_columns": np.asarray(history.columns, dtype=str)}
    return anndata.AnnData(X=arrays["embedding"].astype(np.float32), obs=obs, var=var, uns=uns)


def source_info(version: str = VERSION) -> dict:
    """Describe the release for chapter banners, in the form of :func:`mnistnd.data.source_info`.

    Returns
    -------
    dict
        ``dataset``, ``source`` (``"release"``), ``requested``, ``files`` (name, bytes and
        sha256 of every release file, from the manifest) and ``note`` (what the release is and
        which MNIST files it was trained on).
    """
    meta = manifest(version)
    commit = (meta.get("code") or {}).get("commit") or "unknown"
    mnist = ", ".join(f"{f['name']} (sha256 {f['sha256'][:12]}...)" for f in meta["data"]["files"])
    return {
        "dataset": "MNIST-Nd", "source": "release", "requested": "release",
        "files": [{"name": n, "bytes": e["bytes"], "sha256": e["sha256"]}
                  for n, e in sorted(meta["files"].items())],
        "note": f"{meta['name']}: six m-VAEs trained at the paper's settings by `mnistnd "
                f"release build` (code {commit[:10]}) on {meta['data']['source']} MNIST "
                f"({mnist}); files checked against the release manifest.",
    }


def _config_for_uns(training: dict) -> dict:
    return {k: "None" if v is None else v for k, v in training.items() if k != "latent_dims"}


def load_history(d: int, version: str = VERSION) -> pd.DataFrame:
    """Return the per-epoch training history of the release's model of dimension ``d``."""
    d = _check_dim(d, version)
    # "round_trip": the text written by to_csv is read back to the same float64, bit for bit
    table = pd.read_csv(check_file(_HISTORY, version), float_precision="round_trip")
    out = table[table["latent_dim"] == d].drop(columns="latent_dim").reset_index(drop=True)
    return out


def load_reconstructions(version: str = VERSION) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Return the example test images (one per digit) and each model's reconstructions.

    Returns
    -------
    images : numpy.ndarray of shape (10, 784)
        Test images, pixels in [0, 1]; row ``k`` is the first test image of digit ``k``.
    reconstructions : dict of int to numpy.ndarray of shape (10, 784)
        Bernoulli means of the model of each latent dimension.
    """
    with np.load(check_file(_RECONSTRUCTIONS, version)) as npz:
        images = npz["images"]
        recs = {int(k[1:]): npz[k] for k in npz.files if k.startswith("d")}
    return images, dict(sorted(recs.items()))


def summary(version: str = VERSION) -> pd.DataFrame:
    """One row per model: dimension, beta, best epoch, epochs run, seconds, best-epoch losses."""
    rows = []
    for d, model in sorted(manifest(version)["models"].items(), key=lambda kv: int(kv[0])):
        rows.append({"latent_dim": int(d), "beta": model["beta"],
                     "best_epoch": model["best_epoch"], "epochs_run": model["epochs_run"],
                     "stopped_early": model["stopped_early"], "seconds": model["seconds"],
                     **model["final_losses"]})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Making and checking a release
# --------------------------------------------------------------------------------------------
def _git_commit() -> dict:
    root = Path(__file__).resolve().parent.parent

    def git(*args):
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                             check=False)
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no", "--", "mnistnd")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("mnistnd", "torch", "numpy", "scipy", "pandas", "anndata"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _savez(path: Path, arrays: dict) -> None:
    """Compressed ``.npz`` whose bytes depend on the arrays only (fixed zip timestamps)."""
    import zipfile

    def write(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for key, value in arrays.items():
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.ascontiguousarray(value), allow_pickle=False)
                info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, buf.getvalue())

    atomic_write(path, write)


def _package_model(d: int, adata, hist: pd.DataFrame, out: Path) -> dict:
    """Write the arrays of the dataset of dimension ``d`` into ``out``; return its entry."""
    _savez(out / _dataset_name(d), {
        "embedding": np.asarray(adata.X, dtype=np.float32),
        "digit": adata.obs["digit"].to_numpy().astype(np.uint8),
        "component": adata.obs["component"].to_numpy().astype(np.uint8),
        "test_index": adata.obs["test_index"].to_numpy().astype(np.int32)})
    uns = adata.uns
    return {"beta": float(uns["config"]["beta"]), "best_epoch": int(uns["best_epoch"]),
            "epochs_run": int(uns["epochs_run"]), "stopped_early": bool(uns["stopped_early"]),
            "seconds": float(uns["seconds"]), "device": str(uns["device"]),
            "final_losses": {k: float(v) for k, v in uns["final_losses"].items()},
            "n_test": int(adata.n_obs), "history_rows": int(len(hist)),
            "config_hash": str(uns["config_hash"])}


def _reconstructions(latent_dims, artifacts_dir) -> dict[str, np.ndarray]:
    import torch

    from mnistnd import data, datasets

    X_test, y_test = data.load_mnist("test", TRAINING["source"])
    index = np.array([int(np.flatnonzero(y_test == k)[0]) for k in range(10)])
    images = X_test[index]
    out = {"images": images.astype(np.float32), "test_index": index.astype(np.int32)}
    for d in latent_dims:
        model = datasets.load_model(d, artifacts_dir)
        with torch.no_grad():
            out[f"d{d}"] = model.reconstruct(torch.from_numpy(images)).numpy().astype(np.float32)
    return out


def _wall_seconds(artifacts_dir, latent_dims) -> float:
    """Seconds from the first model's start to the last model's end.

    A run folder's ``config.json`` is written when its model starts training and ``model.pt``
    when it ends; a resumed build keeps both, so this is the wall time of the training however
    many times it was interrupted (interruptions included).
    """
    from mnistnd import datasets

    starts, ends = [], []
    for d in latent_dims:
        adata = datasets.load_mnistnd(d, "artifacts", artifacts_dir)
        run = datasets.dataset_path(d, artifacts_dir).parent / str(adata.uns["run_dir"])
        starts.append((run / "config.json").stat().st_mtime)
        ends.append((run / "model.pt").stat().st_mtime)
    return float(max(ends) - min(starts))


def build(artifacts_dir, out_dir=None, *, n_jobs: int = 2, progress: bool = True) -> dict:
    """Train the release's models (or reuse finished ones) and write the release.

    Training goes through :func:`mnistnd.datasets.build` with :data:`TRAINING` into
    ``artifacts_dir``; it resumes from checkpoints and reuses finished models, so an
    interrupted build continues where it stopped. The release is then written into
    ``out_dir`` (default: the package's own :func:`release_dir`), the manifest last.

    Parameters
    ----------
    artifacts_dir
        Folder for the training runs (for example ``_runs/paper``).
    out_dir
        Release folder to write.
    n_jobs
        Models trained at once, one process each on one thread.
    progress
        Show progress bars.

    Returns
    -------
    dict
        The manifest written.
    """
    from mnistnd import data, datasets

    out = Path(release_dir() if out_dir is None else out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in TRAINING.items() if k != "latent_dims"}
    table = datasets.build(TRAINING["latent_dims"], artifacts_dir=artifacts_dir, n_jobs=n_jobs,
                           progress=progress, **settings)
    models, histories = {}, []
    for d in TRAINING["latent_dims"]:
        adata = datasets.load_mnistnd(d, source="artifacts", artifacts_dir=artifacts_dir)
        hist = pd.DataFrame({c: np.asarray(adata.uns["history"][c])
                             for c in map(str, adata.uns["history_columns"])})
        models[str(d)] = _package_model(d, adata, hist, out)
        histories.append(hist.assign(latent_dim=d)[["latent_dim", *hist.columns]])
    atomic_write(out / _HISTORY, lambda p: pd.concat(histories).to_csv(p, index=False))
    _savez(out / _RECONSTRUCTIONS, _reconstructions(TRAINING["latent_dims"], artifacts_dir))
    info = data.source_info("mnist", TRAINING["source"])
    files = sorted(p.name for p in out.iterdir() if p.is_file() and p.name != _MANIFEST
                   and not p.name.startswith("."))
    content = {
        "format": MANIFEST_FORMAT, "name": NAME, "version": out.name,
        "description": "Test-set embeddings of six m-VAEs (latent dimensions 2-64) trained on "
                       "MNIST at the settings of Turishcheva et al. 2024; made by "
                       "`mnistnd release build`.",
        "files": {f: {"sha256": file_sha256(out / f), "bytes": (out / f).stat().st_size}
                  for f in files},
        "training": TRAINING, "models": models,
        "training_seconds_total": float(table["seconds"].sum()),
        "training_wall_seconds": _wall_seconds(artifacts_dir, TRAINING["latent_dims"]),
        "code": _git_commit(), "versions": _versions(),
        "data": {"dataset": "mnist", "source": info["source"],
                 "files": [{k: f[k] for k in ("name", "bytes", "sha256")}
                           for f in info["files"]]},
    }
    atomic_write(out / _MANIFEST, lambda p: p.write_text(json.dumps(content, indent=2) + "\n"))
    return content


def verify(latent_dims: Sequence[int] = (2,), epochs: int = 1, *, artifacts_dir=None,
           version: str = VERSION, progress: bool = False) -> pd.DataFrame:
    """Retrain the first ``epochs`` epochs of some release models; compare histories exactly.

    The training loop seeds every epoch from ``(seed, epoch)`` alone (see
    :mod:`mnistnd.training`), so the first epochs of a shorter run are the first epochs of the
    release's run, bit for bit, on the same software and CPU kind.

    Parameters
    ----------
    latent_dims
        Dimensions to retrain (each must be in the release).
    epochs
        Epochs to retrain and compare, at least 1 and at most the epochs the release ran.
    artifacts_dir
        Scratch folder for the retraining (default: a temporary folder, removed afterwards).
    version
        Release to compare with.
    progress
        Show progress bars.

    Returns
    -------
    pandas.DataFrame
        One row per (latent dimension, epoch, loss column): ``released``, ``retrained`` and
        ``equal`` (bitwise equality of the two float64 values). Timing columns are left out.
    """
    import tempfile

    from mnistnd import datasets

    wanted = check_int_list("latent_dims", list(latent_dims), minimum=1)
    epochs = check_int("epochs", epochs, minimum=1)
    for d in wanted:
        _check_dim(d, version)
        ran = manifest(version)["models"][str(d)]["epochs_run"]
        if epochs > ran:
            raise ValueError(f"epochs: the release's model of d = {d} ran {ran} epochs; "
                             f"cannot compare {epochs}")
    training = manifest(version)["training"]
    settings = {k: v for k, v in training.items() if k not in ("latent_dims", "epochs")}
    with tempfile.TemporaryDirectory(prefix="mnistnd-verify-") as tmp:
        folder = tmp if artifacts_dir is None else artifacts_dir
        datasets.build(wanted, epochs=epochs, artifacts_dir=folder, n_jobs=1,
                       progress=progress, **settings)
        rows = []
        for d in wanted:
            ours = datasets.load_history(d, "artifacts", folder)
            theirs = load_history(d, version).iloc[:epochs]
            for col in ours.columns:
                if col in _TIMING_COLUMNS or col == "epoch":
                    continue
                for e in range(epochs):
                    a, b = float(theirs[col].iloc[e]), float(ours[col].iloc[e])
                    rows.append({"latent_dim": d, "epoch": e, "column": col, "released": a,
                                 "retrained": b, "equal": a == b or (a != a and b != b)})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Result tables of the other papers' paper-profile runs
# --------------------------------------------------------------------------------------------
#: Studies whose paper-profile result tables the release can hold, each in its own folder
#: ``<version>/<study>/`` with a manifest of the same format as the datasets'.
STUDIES = ("moe_sim_vae", "pbmc_autoencoders")


def _check_study(study) -> str:
    if study not in STUDIES:
        raise ValueError(f"study={study!r} is unknown; known studies: {', '.join(STUDIES)}")
    return study


def has_results(study: str, version: str = VERSION, folder=None) -> bool:
    """Whether the release holds the result tables of ``study`` (a manifest exists)."""
    return (_study_dir(study, version, folder) / _MANIFEST).is_file()


def _study_dir(study: str, version: str, folder) -> Path:
    _check_study(study)
    return Path(folder) if folder is not None else release_dir(version) / study


def write_results(study: str, tables: dict[str, pd.DataFrame], provenance: dict,
                  out_dir=None) -> Path:
    """Write a study's result tables as CSV and a manifest with their sha256 and provenance.

    Parameters
    ----------
    study
        One of :data:`STUDIES`.
    tables
        Table name to DataFrame; each becomes ``<name>.csv`` (index not written).
    provenance
        Settings, seconds and anything else that says how the tables were made; the code commit
        and package versions are added.
    out_dir
        Folder to write into; default the package's release folder for the study.

    Returns
    -------
    pathlib.Path
        The folder written.
    """
    folder = _study_dir(study, VERSION, out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, table in sorted(tables.items()):
        path = folder / f"{name}.csv"
        atomic_write(path, lambda tmp, t=table: t.to_csv(tmp, index=False))
        files[path.name] = {"sha256": file_sha256(path), "bytes": path.stat().st_size}
    content = {"format": MANIFEST_FORMAT, "name": f"{study} results, {NAME}", "study": study,
               "files": files, "provenance": provenance, "code": _git_commit(),
               "versions": _versions()}
    atomic_write(folder / _MANIFEST, lambda tmp: Path(tmp).write_text(
        json.dumps(content, indent=2, sort_keys=True, default=str) + "\n"))
    return folder


def load_results(study: str, version: str = VERSION, folder=None) -> dict:
    """Read a study's result tables after checking each against its manifest.

    Parameters
    ----------
    study
        One of :data:`STUDIES`.
    version
        Release folder name.
    folder
        Read the study from this folder instead (as written by :func:`write_results`).

    Returns
    -------
    dict
        Table name to DataFrame, plus ``"manifest"`` (the study's manifest).

    Raises
    ------
    ReleaseError
        If the study has no results in the release, or a file is missing or fails its check.
    """
    folder = _study_dir(study, version, folder)
    label = f"release {version!r}, study {study!r}"
    if not has_results(study, version, folder):
        raise ReleaseError(f"{label}: no results in the release (no "
                           f"{str(folder / _MANIFEST)!r})")
    meta = _read_manifest(folder / _MANIFEST, label)
    out = {name[:-4]: pd.read_csv(_checked(folder, meta["files"], name, label),
                                  float_precision="round_trip")
           for name in meta["files"]}
    return {**out, "manifest": meta}
