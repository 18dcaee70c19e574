"""The whole book, built once under the ``smoke`` profile, then checked chapter by chapter.

The chapters are read from ``_toc.yml`` at collection time, so a chapter added to the toc is
tested without touching this file. The build is the session fixture ``book`` (``conftest.py``,
made by :mod:`smoke_book`), shared with the browser test.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
from pathlib import Path

import nbformat
import pytest
from smoke_book import Build, real_data_dir
from test_api_page import documented_fields

from mnistnd.book import (
    BANNER_TITLE,
    read_timings,
    toc_chapters,
    toc_files,
)

ROOT = Path(__file__).resolve().parent.parent
ENTRIES = toc_files(ROOT)
CHAPTERS = toc_chapters(ROOT)

pytestmark = pytest.mark.slow

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
        assert float(rows[stem]["peak_rss_mb"]) > 0, "peak memory of the kernel"
    assert set(rows) >= {s for s in CHAPTERS if (book.folder / "notebooks" / f"{s}.ipynb")
                         .is_file()}


def test_data_chapter_shows_its_source(book):
    if "data" not in CHAPTERS:
        pytest.skip("chapter 'data' is not in the toc")
    _require_chapter(book, "data")
    if book.error is not None:
        pytest.fail(f"no HTML: the build failed:\n{book.error}")
    expected = "full" if real_data_dir() else "bundled"
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

    folder = book.html / "downloads" / "mnistnd"
    entries = json.loads((folder / "manifest.json").read_text())["datasets"]
    dims = {e["latent_dim"] for e in entries}
    assert {2, 64} <= dims  # the smoke m-VAE chapter writes these two
    for e in entries:
        assert hashlib.sha256((folder / e["file"]).read_bytes()).hexdigest() == e["sha256"]
        assert e["file"] in (folder / "index.html").read_text()
    page = (book.html / "book" / "datasets.html").read_text(encoding="utf-8")
    assert "../downloads/mnistnd/index.html" in page


def _machine_paths(book: Build) -> set[str]:
    """Folders of the machine that built the book: artifacts, data, checkout and home."""
    folders = {book.artifacts, book.data_dir, ROOT, Path.home()}
    return {str(p) for f in folders for p in (f, f.resolve()) if len(p.parts) > 2}


def _downloadable_notebooks(html: Path) -> dict[str, Path]:
    """The ``.ipynb`` files the chapter pages link (the theme's download button), by link."""
    found = {}
    for stem in CHAPTERS:
        page = html / "notebooks" / f"{stem}.html"
        for href in re.findall(r'href="([^"#?]+\.ipynb)"', page.read_text(encoding="utf-8")):
            target = (page.parent / href).resolve()
            if target.is_relative_to(html.resolve()):
                found[f"{stem}: {href}"] = target
    return found


def test_chapters_offer_their_notebook_for_download(book):
    notebooks = _downloadable_notebooks(book.require_html())
    offered = {link.split(":")[0] for link in notebooks}
    assert offered == set(CHAPTERS), f"no .ipynb download on {set(CHAPTERS) - offered}"
    assert all(path.is_file() for path in notebooks.values()), "download links a missing file"


def test_downloadable_notebooks_carry_no_injected_path(book):
    leaks = {}
    for link, path in _downloadable_notebooks(book.require_html()).items():
        nb = nbformat.read(path, as_version=4)
        injected = [c.source for c in nb.cells
                    if "injected-parameters" in c.metadata.get("tags", [])]
        texts = [*injected, json.dumps(nb.metadata)]
        found = [p for p in _machine_paths(book) if any(p in s for s in texts)]
        if found:
            leaks[link] = found
    assert not leaks, f"machine paths in the injected cell or metadata: {leaks}"


def test_downloadable_notebooks_carry_no_machine_path(book):
    leaks = {}
    for link, path in _downloadable_notebooks(book.require_html()).items():
        text = path.read_text(encoding="utf-8")
        found = [p for p in _machine_paths(book) if p in text]
        if found:
            leaks[link] = found
    assert not leaks, f"machine paths in downloadable notebooks: {leaks}"


def _figure_numbers(page: Path) -> list[tuple[str, int]]:
    """(chapter, figure) of each figure caption of a page: "Fig. 3.2" is ("3", 2)."""
    found = re.findall(r'<span class="caption-number">Fig\. ([0-9A-Z]+)\.([0-9]+)\s*</span>',
                       page.read_text(encoding="utf-8"))
    return [(chapter, int(k)) for chapter, k in found]


def test_figures_numbered_per_chapter(book):
    html = book.require_html()
    prefixes = {}
    for stem in CHAPTERS:
        numbers = _figure_numbers(html / "notebooks" / f"{stem}.html")
        n_figures = len(_figure_cells(nbformat.read(_require_chapter(book, stem), as_version=4)))
        assert len(numbers) >= n_figures, f"{stem}: figures without a 'Fig. <chapter>.<k>' number"
        if not numbers:
            continue
        assert [k for _, k in numbers] == list(range(1, len(numbers) + 1)), stem
        assert len({c for c, _ in numbers}) == 1, f"{stem}: one chapter number"
        prefixes[stem] = numbers[0][0]
    assert prefixes, "no numbered figure in the book"
    assert len(set(prefixes.values())) == len(prefixes), f"chapter numbers repeat: {prefixes}"


def _built_html(book: Build) -> list[Path]:
    if book.error is not None:
        pytest.fail(f"no HTML: the build failed:\n{book.error}")
    return sorted(book.html.rglob("*.html"))


def test_no_page_shows_a_folder_of_the_build_machine(book):
    """Pages name data by checksum and ``$MNISTND_DATA_DIR``, never by a local folder."""
    import tempfile

    data = os.environ.get("MNISTND_DATA_DIR")
    forbidden = {str(ROOT), str(book.artifacts.parent), str(Path.home()) + "/",
                 str(Path(tempfile.gettempdir()) / "pytest-of-"),
                 str(Path(tempfile.gettempdir()) / "mnistnd-")}
    forbidden |= {str(Path(data).resolve()), data} if data else set()
    found = {}
    for page in _built_html(book):
        text = page.read_text(encoding="utf-8")
        hits = sorted(f for f in forbidden if f in text)
        if hits:
            found[str(page.relative_to(book.html))] = hits
    assert not found, f"absolute paths of the build machine in the HTML: {found}"


def test_provenance_page(book):
    pages = {p.relative_to(book.html).as_posix(): p for p in _built_html(book)}
    text = pages["book/provenance.html"].read_text(encoding="utf-8")
    for stem in CHAPTERS:
        if (book.folder / "notebooks" / f"{stem}.ipynb").is_file():
            assert re.search(rf"<td[^>]*>(<p>)?{stem}(</p>)?</td>", text), f"{stem} missing"
    assert "MiB" in text and "numpy" in text and "smoke" in text
    from mnistnd import release

    for name, entry in release.manifest()["files"].items():
        assert entry["sha256"] in text, f"release file {name} without its sha256"
    assert re.search(r"Commit <code[^>]*><span[^>]*>[0-9a-f]{40}|Commit <code[^>]*>[0-9a-f]{40}",
                     text), "git commit missing"
    reproduce = pages["book/reproduce.html"].read_text(encoding="utf-8")
    assert "peak memory" in reproduce and "MiB" in reproduce


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
