"""The whole book, built once under the ``smoke`` profile, then checked chapter by chapter.

The chapters are read from ``_toc.yml`` at collection time, so a chapter added to the toc is
tested without touching this file. The kernels that run the chapters get the same no-network
guard as the tests (through a ``sitecustomize`` module on ``PYTHONPATH``). When
``MNISTND_DATA_DIR`` does not hold the real files it points at an empty folder, so
``source="auto"`` falls back to the bundled data, as on a machine without data and network.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
from test_api_page import documented_fields

from mnistnd.book import (
    BANNER_TITLE,
    ChapterError,
    build_book,
    read_timings,
    toc_chapters,
    toc_files,
)

ROOT = Path(__file__).resolve().parent.parent
ENTRIES = toc_files(ROOT)
CHAPTERS = toc_chapters(ROOT)

pytestmark = pytest.mark.slow

KERNEL_GUARD = textwrap.dedent(
    '''
    """No network for notebook kernels started by the tests (loopback stays allowed)."""
    import ipaddress
    import socket

    _connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex


    def _allowed(address):
        host = address[0] if isinstance(address, tuple) else None
        if host is None or host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False


    def _guarded(self, address):
        if not _allowed(address):
            raise ConnectionRefusedError(f"network disabled in tests: {address!r}")
        return _connect(self, address)


    def _guarded_ex(self, address):
        if not _allowed(address):
            raise ConnectionRefusedError(f"network disabled in tests: {address!r}")
        return _connect_ex(self, address)


    socket.socket.connect, socket.socket.connect_ex = _guarded, _guarded_ex
    '''
)


def _real_data_dir() -> Path | None:
    env = os.environ.get("MNISTND_DATA_DIR")
    return Path(env) if env and (Path(env) / "mnist").is_dir() else None


@dataclass
class Build:
    artifacts: Path
    html: Path
    error: Exception | None = None
    failed_chapter: str | None = None
    notes: list = field(default_factory=list)

    @property
    def folder(self) -> Path:
        return self.artifacts / "smoke"


@pytest.fixture(scope="session")
def book(tmp_path_factory) -> Build:
    base = tmp_path_factory.mktemp("book")
    guard = base / "kernel_guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(KERNEL_GUARD)
    result = Build(artifacts=base / "runs", html=base / "html")
    with pytest.MonkeyPatch.context() as mp:
        path = os.environ.get("PYTHONPATH")
        mp.setenv("PYTHONPATH", str(guard) + (os.pathsep + path if path else ""))
        mp.setenv("MNISTND_ARTIFACTS_DIR", str(result.artifacts))
        if not _real_data_dir():  # an empty data folder: `auto` must fall back to bundled
            mp.setenv("MNISTND_DATA_DIR", str(base / "no_data"))
        try:
            build_book(profile="smoke", artifacts_dir=result.artifacts, output_dir=result.html,
                       book_root=ROOT, progress_bar=False)
        except ChapterError as err:
            result.error, result.failed_chapter = err, err.chapter
        except Exception as err:  # noqa: BLE001 - reported by the tests below
            result.error = err
    return result


def _require_chapter(book: Build, stem: str) -> Path:
    executed = book.folder / "notebooks" / f"{stem}.ipynb"
    if book.failed_chapter == stem:
        pytest.fail(f"chapter {stem!r} failed under the smoke profile:\n{book.error}")
    if not executed.is_file():
        pytest.fail(f"chapter {stem!r} was not executed; the build stopped with:\n{book.error}")
    return executed


def test_book_built(book):
    if book.error is not None:
        pytest.fail(f"mnistnd book --profile smoke failed:\n{book.error}")
    assert (book.html / "index.html").is_file()


@pytest.mark.parametrize("entry", ENTRIES)
def test_page_has_html(book, entry):
    if book.error is not None:
        pytest.fail(f"no HTML: the build failed:\n{book.error}")
    page = book.html / f"{entry}.html"
    assert page.is_file(), f"{page} missing"
    assert "<h1" in page.read_text(encoding="utf-8"), f"{entry}: page has no title"


def _figure_cells(nb) -> list:
    return [c for c in nb.cells
            if c.cell_type == "code" and "figure" in c.get("metadata", {}).get("mystnb", {})]


@pytest.mark.parametrize("stem", CHAPTERS)
def test_chapter_executed_without_errors(book, stem):
    nb = nbformat.read(_require_chapter(book, stem), as_version=4)
    errors = [(i, out.get("ename"), out.get("evalue")) for i, cell in enumerate(nb.cells)
              for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert not errors, f"{stem}: error outputs {errors}"
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "profile = \"smoke\"" in injected[0].source
    for cell in _figure_cells(nb):
        kinds = {k for out in cell.get("outputs", []) for k in out.get("data", {})}
        caption = cell.metadata["mystnb"]["figure"].get("caption", "")
        assert caption.strip(), f"{stem}: figure without caption: {cell.source[:60]!r}"
        assert "image/png" in kinds, (
            f"{stem}: figure cell {cell.source[:60]!r} produced no PNG (outputs: {kinds}); "
            "return the Figure as the cell's last expression"
        )


@pytest.mark.parametrize("stem", CHAPTERS)
def test_chapter_figures_in_html(book, stem):
    nb = nbformat.read(_require_chapter(book, stem), as_version=4)
    n_figures = len(_figure_cells(nb))
    if book.error is not None:
        pytest.fail(f"no HTML: the build failed:\n{book.error}")
    html = (book.html / "notebooks" / f"{stem}.html").read_text(encoding="utf-8")
    images = re.findall(r'<img[^>]+src="([^"]+\.png)"', html)
    assert len(images) >= n_figures, f"{stem}: {n_figures} figure cells, {len(images)} PNGs"
    for src in images:
        assert (book.html / "notebooks" / src).resolve().is_file(), f"{stem}: {src} missing"
    assert html.count("<figcaption") >= n_figures, f"{stem}: captions missing in the HTML"
    assert f"tree/notebooks/{stem}.ipynb" not in html, "launch link points at a build product"


def test_timings_recorded(book):
    rows = {r["chapter"]: r for r in read_timings(book.folder)}
    for stem in CHAPTERS:
        if book.failed_chapter == stem or stem not in rows:
            continue
        assert rows[stem]["status"] == "ok"
        assert float(rows[stem]["seconds"]) > 0
    assert set(rows) >= {s for s in CHAPTERS if (book.folder / "notebooks" / f"{s}.ipynb")
                         .is_file()}


def test_data_chapter_shows_its_source(book):
    if "data" not in CHAPTERS:
        pytest.skip("chapter 'data' is not in the toc")
    _require_chapter(book, "data")
    if book.error is not None:
        pytest.fail(f"no HTML: the build failed:\n{book.error}")
    expected = "full" if _real_data_dir() else "bundled"
    html = (book.html / "notebooks" / "data.html").read_text(encoding="utf-8")
    assert f"{BANNER_TITLE}: mnist ({expected})" in html
    assert re.search(r"[0-9a-f]{64}", html), "no sha256 checksum shown"


def test_intro_map_links_every_chapter_of_the_toc():
    intro = (ROOT / "book" / "intro.md").read_text(encoding="utf-8")
    linked = {("book/" + t if "/" not in t else t.removeprefix("../"))
              for t in re.findall(r"\{doc\}`([^`<]+)`", intro)}
    assert linked <= set(ENTRIES), f"intro links pages not in _toc.yml: {linked - set(ENTRIES)}"
    missing = [e for e in ENTRIES if e.startswith("notebooks/") and e not in linked]
    assert not missing, f"book/intro.md's map does not link {missing}: turn their lines into links"


def test_datasets_offered_for_download(book):
    """The build exports the smoke datasets next to the HTML; the manifest's sha256 are right."""
    if book.error is not None:
        pytest.fail(f"no HTML: the build failed:\n{book.error}")
    import hashlib
    import json

    folder = book.html / "downloads" / "mnistnd"
    entries = json.loads((folder / "manifest.json").read_text())["datasets"]
    dims = {e["latent_dim"] for e in entries}
    assert {2, 64} <= dims  # the smoke m-VAE chapter writes these two
    for e in entries:
        assert hashlib.sha256((folder / e["file"]).read_bytes()).hexdigest() == e["sha256"]
        assert e["file"] in (folder / "index.html").read_text()
    page = (book.html / "book" / "datasets.html").read_text(encoding="utf-8")
    assert "../downloads/mnistnd/index.html" in page


@pytest.mark.parametrize(("fullname", "sections"), [
    ("mnistnd.datasets.load_mnistnd", {"Parameters", "Returns", "Raises"}),
    ("mnistnd.release.load", {"Parameters", "Returns", "Raises"}),
    ("mnistnd.models.MixtureVAE", {"Parameters"}),
])
def test_api_page_documents_parameters(book, fullname, sections):
    """book/api.md renders the numpydoc sections: every parameter of the signature, in order."""
    if book.error is not None:
        pytest.fail(f"no HTML: the build failed:\n{book.error}")
    html = (book.html / "book" / "api.html").read_text(encoding="utf-8")
    fields = documented_fields(html, fullname)
    assert fields, f"{fullname} is not documented on the API page"
    assert sections <= set(fields), f"{fullname}: sections {sorted(fields)}"
    module, name = fullname.rsplit(".", 1)
    signature = inspect.signature(getattr(importlib.import_module(module), name))
    assert fields["Parameters"] == list(signature.parameters)
