"""What the built HTML shows besides the chapters: parameters, mathematics, repository buttons.

The staging steps of :mod:`mnistnd.book` are checked on small objects (a notebook made with
nbformat, the book's own ``_config.yml``) without executing chapters. Two small builds follow:
``build_book`` on a one-chapter book (papermill's own injected cell), and a tiny book (a markdown
page with mathematics and a notebook with an injected cell) built with the book's staged
configuration, through the same ``jupyter-book build -W`` call as ``mnistnd book``, without and
with a repository URL.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from test_cli import HEADER

from mnistnd.book import (
    REPOSITORY_URL_ENV,
    build_book,
    hide_injected_parameters,
    repository_url,
    staged_config,
)
from mnistnd.book import build as build_module

ROOT = Path(__file__).resolve().parent.parent
URL = "https://github.com/mnistnd-example/compendium"
#: what papermill writes into the injected cell: a path of the machine that ran the chapter
MACHINE_PATH = "/home/builder/checkout/_runs/quick"


def executed_notebook() -> nbformat.NotebookNode:
    """A notebook as papermill leaves it: declared parameters, then the injected values."""
    nb = new_notebook(metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    nb.cells = [
        new_markdown_cell("# Tiny chapter\n\nInline $a^2$ in a notebook."),
        new_code_cell('artifacts_dir: str | None = None  # declared default\nn_items: int = 3',
                      metadata={"tags": ["parameters"]}),
        new_code_cell(f'# Parameters\nartifacts_dir = "{MACHINE_PATH}"\nn_items = 5\n',
                      metadata={"tags": ["injected-parameters"]}),
        new_code_cell("print(n_items)", execution_count=3,
                      outputs=[new_output("stream", name="stdout", text="5\n")]),
    ]
    return nb


def tags_of(nb) -> list[list[str]]:
    return [list(cell.get("metadata", {}).get("tags", [])) for cell in nb.cells]


# ---------------------------------------------------------------- the injected-parameters cell


def test_injected_cell_is_tagged_remove_cell_in_a_copy():
    nb = executed_notebook()
    before = nbformat.writes(nb)
    staged = hide_injected_parameters(nb)
    assert tags_of(staged) == [[], ["parameters"], ["injected-parameters", "remove-cell"], []]
    assert [c.source for c in staged.cells] == [c.source for c in nb.cells]
    assert nbformat.writes(nb) == before, "the executed notebook must stay as it was"
    assert tags_of(hide_injected_parameters(staged)) == tags_of(staged), "tag added once"


# ---------------------------------------------------------------- repository URL and buttons


def test_repository_url_from_the_environment(monkeypatch):
    monkeypatch.delenv(REPOSITORY_URL_ENV, raising=False)
    assert repository_url() is None
    monkeypatch.setenv(REPOSITORY_URL_ENV, "  ")
    assert repository_url() is None
    monkeypatch.setenv(REPOSITORY_URL_ENV, URL + ".git/")
    assert repository_url() == URL
    assert repository_url("") is None, "an explicit empty URL means no repository"


@pytest.mark.parametrize("bad", ["github.com/owner/name", "http://github.com/owner/name",
                                 "https://github.com/owner", "https://github.com/o/n/tree/main",
                                 "https://example.org/owner/name",
                                 "https://github.com/owner/name?tab=readme"])
def test_repository_url_refuses_other_forms(monkeypatch, bad):
    monkeypatch.setenv(REPOSITORY_URL_ENV, bad)
    with pytest.raises(ValueError, match=REPOSITORY_URL_ENV):
        repository_url()


def book_config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))


def test_config_has_no_placeholder_repository():
    text = (ROOT / "_config.yml").read_text(encoding="utf-8")
    assert "REPLACE" not in text
    assert "url" not in (book_config().get("repository") or {})


def test_staged_config_without_repository_turns_the_buttons_off():
    staged = yaml.safe_load(staged_config((ROOT / "_config.yml").read_bytes(), None))
    assert staged["repository"]["url"] == "", "left out, Jupyter Book fills in its own repo"
    assert not any(staged["html"][k] for k in ("use_repository_button", "use_issues_button",
                                               "use_edit_page_button"))
    launch = staged["launch_buttons"]
    assert launch["thebe"] is False
    assert all(v == "" for k, v in launch.items() if k.endswith("_url"))
    sphinx, written = staged["sphinx"], book_config()["sphinx"]
    assert sphinx["extra_extensions"] == [*written["extra_extensions"], "mnistnd.book._sphinx"]
    assert sphinx["config"].pop("html_extra_path") == ["_extra"]
    assert sphinx["config"] == written["config"], "the rest is staged as written"


def test_staged_config_with_repository_enables_the_buttons():
    staged = yaml.safe_load(staged_config((ROOT / "_config.yml").read_bytes(), URL))
    assert staged["repository"]["url"] == URL
    assert staged["html"]["use_repository_button"] is True
    assert staged["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert staged["launch_buttons"]["thebe"] is True


def test_staged_config_of_a_minimal_config():
    staged = yaml.safe_load(staged_config("title: tiny\nhtml:\n", None))
    assert staged["title"] == "tiny"
    assert staged["repository"] == {"url": ""} and staged["launch_buttons"] == {"thebe": False}
    assert staged["sphinx"] == {"extra_extensions": ["mnistnd.book._sphinx"],
                                "config": {"html_extra_path": ["_extra"]}}


class _Staged(Exception):
    """Raised by the stand-in for the staging step once build_book has reached it."""


@pytest.mark.parametrize("env", [None, URL])
def test_build_book_stages_the_config_of_the_environment(tmp_path, monkeypatch, env):
    root = tmp_path / "book"
    root.mkdir()
    shutil.copy(ROOT / "_config.yml", root / "_config.yml")
    (root / "_toc.yml").write_text("format: jb-book\nroot: index\n")
    (root / "index.md").write_text("# Index\n")
    if env is None:
        monkeypatch.delenv(REPOSITORY_URL_ENV, raising=False)
    else:
        monkeypatch.setenv(REPOSITORY_URL_ENV, env)
    seen = {}

    def stage_sources(root, stage, entries, snapshot):
        seen.update(yaml.safe_load(snapshot["_config.yml"]))
        raise _Staged

    monkeypatch.setattr(build_module, "_stage_sources", stage_sources)
    with pytest.raises(_Staged):
        build_book(book_root=root, artifacts_dir=tmp_path / "runs",
                   output_dir=tmp_path / "html", progress_bar=False)
    assert seen["repository"]["url"] == (env or "")
    assert seen["html"]["use_repository_button"] is (env is not None)
    assert seen["launch_buttons"]["thebe"] is (env is not None)


def test_build_book_refuses_a_bad_repository_url_before_running(tmp_path, monkeypatch):
    monkeypatch.setenv(REPOSITORY_URL_ENV, "https://example.org/not/a/forge/repo")
    with pytest.raises(ValueError, match=REPOSITORY_URL_ENV):
        build_book(book_root=ROOT, artifacts_dir=tmp_path / "runs", progress_bar=False)
    assert not (tmp_path / "runs").exists()


CHAPTER = HEADER + """```{code-cell} ipython3
:tags: [parameters]

artifacts_dir: str | None = None  # declared default
profile: str = "quick"  # injected
```

```{code-cell} ipython3
print("done")
print(f"written to {artifacts_dir}/tiny.csv")
```
"""


def test_build_book_leaves_the_artifacts_path_out_of_the_page(tmp_path, monkeypatch):
    monkeypatch.delenv(REPOSITORY_URL_ENV, raising=False)
    root = tmp_path / "book"
    (root / "notebooks").mkdir(parents=True)
    (root / "_config.yml").write_text("title: tiny\nexecute:\n  execute_notebooks: 'off'\n")
    (root / "_toc.yml").write_text(
        "format: jb-book\nroot: index\nchapters:\n  - file: notebooks/tiny\n")
    (root / "index.md").write_text("# Index\n")
    (root / "notebooks" / "tiny.md").write_text(CHAPTER)
    html = build_book(profile="smoke", book_root=root, artifacts_dir=tmp_path / "runs",
                      output_dir=tmp_path / "html", progress_bar=False)

    folder = (tmp_path / "runs" / "smoke").resolve()
    executed = nbformat.read(folder / "notebooks" / "tiny.ipynb", as_version=4)
    injected = [t for t in tags_of(executed) if "injected-parameters" in t]
    assert injected == [["injected-parameters"]], "the record of the run is not changed"
    staged = nbformat.read(folder / "_book" / "notebooks" / "tiny.ipynb", as_version=4)
    assert ["injected-parameters", "remove-cell"] in tags_of(staged)
    page = (html / "notebooks" / "tiny.html").read_text(encoding="utf-8")
    assert str(folder) not in page
    assert "declared default" in page and "done" in page
    assert "written to &lt;artifacts&gt;/smoke/tiny.csv" in page, "printed folders are portable"


# ---------------------------------------------------------------- a tiny book, built


class _Links(HTMLParser):
    """``src`` of every ``<script>`` and ``href`` of every ``<a>`` of a page."""

    def __init__(self):
        super().__init__()
        self.scripts: list[str] = []
        self.anchors: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.scripts.append(attrs["src"])
        if tag == "a" and attrs.get("href"):
            self.anchors.append(attrs["href"])


def links(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module", params=[None, URL], ids=["no-repository", "repository"])
def tiny_book(request, tmp_path_factory) -> tuple[Path, str | None]:
    """HTML of a one-page book with one notebook, built like ``mnistnd book`` builds."""
    base = tmp_path_factory.mktemp("tiny_book")
    stage = base / "_book"
    (stage / "book").mkdir(parents=True)
    (stage / "notebooks").mkdir()
    (stage / "_extra").mkdir()
    (stage / "_config.yml").write_bytes(
        staged_config((ROOT / "_config.yml").read_bytes(), request.param))
    shutil.copy(ROOT / "book" / "references.bib", stage / "book" / "references.bib")
    (stage / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nchapters:\n  - file: notebooks/tiny\n")
    (stage / "book" / "intro.md").write_text(
        "# Intro\n\nInline $x^2$ and displayed\n\n$$\\int f$$\n", encoding="utf-8")
    nbformat.write(hide_injected_parameters(executed_notebook()),
                   stage / "notebooks" / "tiny.ipynb")
    start = time.perf_counter()
    html = build_module._jupyter_book(stage, base / "out", base / "jupyter-book.log")
    assert time.perf_counter() - start < 60, "the tiny book must build in under a minute"
    return html, request.param


def test_mathematics_from_files_shipped_with_the_html(tiny_book):
    html, _ = tiny_book
    for page in ("book/intro.html", "notebooks/tiny.html"):
        scripts = links(html / page).scripts
        remote = [s for s in scripts if urlsplit(s).scheme or s.startswith("//")]
        assert remote == [], f"{page}: scripts loaded from the network"
        mathjax = [s for s in scripts if "mathjax" in s.lower()]
        assert len(mathjax) == 1, f"{page}: one MathJax script expected, got {mathjax}"
        assert "/_static/mathjax/" in f"/{mathjax[0]}"
        assert ((html / page).parent / mathjax[0]).resolve().is_file()
        assert "cdn.jsdelivr" not in (html / page).read_text(encoding="utf-8")


def test_injected_parameters_not_in_the_html(tiny_book):
    html, _ = tiny_book
    page = (html / "notebooks" / "tiny.html").read_text(encoding="utf-8")
    assert MACHINE_PATH not in page
    assert "declared default" in page, "the parameters cell stays visible"
    assert "print" in page and "n_items" in page


def test_repository_and_launch_buttons(tiny_book):
    html, url = tiny_book
    page = links(html / "notebooks" / "tiny.html").anchors
    binder = [a for a in page if "mybinder.org" in a]
    if url is None:
        assert binder == []
        assert not [a for a in page if "github.com" in a or "gitlab.com" in a], page
        assert "thebe-launch-button" not in (html / "notebooks" / "tiny.html").read_text()
    else:
        assert url in page, "repository button"
        owner_name = urlsplit(url).path.strip("/")
        assert binder and all(f"/v2/gh/{owner_name}/main" in a for a in binder), binder
        assert all(a.endswith("notebooks/tiny.md") for a in binder), "launch the source"


def test_each_script_once_and_a_colour_mode(tiny_book):
    html, _ = tiny_book
    for page in ("book/intro.html", "notebooks/tiny.html"):
        text = (html / page).read_text(encoding="utf-8")
        inline = re.findall(r"<script>(.*?)</script>", text, flags=re.S)
        assert inline and len(inline) == len(set(inline)), f"{page}: an inline script repeated"
        assert text.count("const THEBE_JS_URL") <= 1
        sources = links(html / page).scripts
        assert len(sources) == len(set(sources)), f"{page}: a script file repeated"
        assert 'localStorage.getItem("mode") || "auto"' in text, "the theme's default mode"


#: Typesets a page in node with the MathJax copy the page loads (``node typeset.js PAGE``) and
#: prints the result. The speech engine bundled in MathJax asks node for packages a browser never
#: loads and typesetting does not use; they are replaced by empty stand-ins.
TYPESET_JS = r"""
const fs = require('fs');
const path = require('path');
const Module = require('module');
const load = Module._load;
const standIns = {
  'xmldom-sre': {DOMImplementation: class { createDocument() { return {}; } },
                 DOMParser: class {}, XMLSerializer: class {}},
  'wicked-good-xpath': {install() {}},
  'commander': {},
};
Module._load = function (name, ...rest) {
  return name in standIns ? standIns[name] : load.call(this, name, ...rest);
};
const page = process.argv[2];
const html = fs.readFileSync(page, 'utf8');
const file = path.resolve(path.dirname(page),
                          html.match(/<script[^>]*src="([^"]*mathjax[^"]*\.js)"/)[1]);
const config = html.match(/window\.MathJax = (\{.*?\})<\/script>/);
global.MathJax = Object.assign(config ? JSON.parse(config[1]) : {}, {
  loader: {paths: {mathjax: path.dirname(file)}, require: require, load: ['adaptors/liteDOM']},
  startup: {document: html},
});
require(file);
MathJax.startup.promise.then(() => {
  const adaptor = MathJax.startup.adaptor;
  process.stdout.write(adaptor.outerHTML(adaptor.root(MathJax.startup.document.document)));
}).catch((err) => { console.error(String(err)); process.exit(1); });
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run MathJax")
def test_shipped_mathjax_typesets_the_page(tiny_book, tmp_path):
    html, _ = tiny_book
    script = tmp_path / "typeset.js"
    script.write_text(TYPESET_JS)
    done = subprocess.run(["node", str(script), str(html / "book" / "intro.html")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    typeset = done.stdout
    assert typeset.count("<mjx-container") == 2
    assert 'display="true"' in typeset
    assert "\\(" not in typeset and "\\[" not in typeset, "raw TeX left in the page"


# ---------------------------------------------------------------- figures numbered per chapter

#: a 1x1 PNG, the output of a figure cell
PIXEL_PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
             "AAAABJRU5ErkJggg==")


def figure_notebook(title: str, n_figures: int) -> nbformat.NotebookNode:
    """A chapter with ``n_figures`` captioned figure cells (MyST-NB ``mystnb.figure``)."""
    nb = new_notebook(metadata=executed_notebook().metadata)
    nb.cells = [new_markdown_cell(f"# {title}")]
    for k in range(n_figures):
        cell = new_code_cell("fig", execution_count=k + 1, outputs=[new_output(
            "display_data", data={"image/png": PIXEL_PNG, "text/plain": "<Figure>"})])
        cell.metadata["mystnb"] = {"figure": {"caption": f"Figure {k} of {title}",
                                              "name": f"fig-{title.lower()}-{k}"}}
        nb.cells.append(cell)
    return nb


@pytest.fixture(scope="module")
def numbered_book(tmp_path_factory) -> Path:
    """HTML of a book with the numbering of ``_toc.yml``: two numbered parts, the last lettered.

    The chapters are those of the first numbered part of the book (three notebooks with 2, 0 and
    3 figures) and of its last part (one notebook with 2 figures).
    """
    base = tmp_path_factory.mktemp("numbered_book")
    stage = base / "_book"
    (stage / "notebooks").mkdir(parents=True)
    (stage / "_extra").mkdir()  # the staged configuration's html_extra_path
    (stage / "_config.yml").write_bytes(staged_config((ROOT / "_config.yml").read_bytes(), None))
    (stage / "book").mkdir()
    shutil.copy(ROOT / "book" / "references.bib", stage / "book" / "references.bib")
    (stage / "index.md").write_text("# Index\n")
    chapters = {"one": 2, "two": 0, "three": 3, "appendix": 2}
    for stem, n in chapters.items():
        nbformat.write(figure_notebook(stem.title(), n), stage / "notebooks" / f"{stem}.ipynb")
    real = [p for p in yaml.safe_load((ROOT / "_toc.yml").read_text())["parts"]
            if p.get("numbered")]
    options = ("numbered", "style", "restart_numbering")
    parts = [{k: p[k] for k in options if k in p} for p in (real[0], real[-1])]
    parts[0]["chapters"] = [{"file": f"notebooks/{s}"} for s in ("one", "two", "three")]
    parts[1]["chapters"] = [{"file": "notebooks/appendix"}]
    for k, part in enumerate(parts):
        part["caption"] = f"Part {k}"
    (stage / "_toc.yml").write_text(yaml.safe_dump(
        {"format": "jb-book", "root": "index", "parts": parts}, sort_keys=False))
    return build_module._jupyter_book(stage, base / "out", base / "jupyter-book.log")


def figure_numbers(page: Path) -> list[str]:
    """The numbers of the figure captions of a page, in order ("3.1", "A.2")."""
    text = page.read_text(encoding="utf-8")
    return re.findall(r'<span class="caption-number">Fig\. ([0-9A-Z.]+)\s*</span>', text)


def test_numbered_parts_of_the_toc():
    parts = yaml.safe_load((ROOT / "_toc.yml").read_text())["parts"]
    chapters = [p for p in parts if any(c["file"].startswith("notebooks/") for c in p["chapters"])]
    assert chapters and all(p.get("numbered") for p in chapters), "every part with chapters"
    config = book_config()["sphinx"]["config"]
    assert config["numfig"] is True and config["numfig_secnum_depth"] == 1


def test_figures_numbered_per_chapter(numbered_book):
    pages = numbered_book / "notebooks"
    assert figure_numbers(pages / "one.html") == ["1.1", "1.2"]
    assert figure_numbers(pages / "two.html") == []
    assert figure_numbers(pages / "three.html") == ["3.1", "3.2", "3.3"], "restarts per chapter"
    assert figure_numbers(pages / "appendix.html") == ["A.1", "A.2"], "appendices lettered"


def test_portable_outputs_names_no_machine_folder():
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    from mnistnd.book.build import portable_outputs

    injected = new_code_cell('artifacts_dir = "/srv/build/_runs/quick"\nprofile = "quick"',
                             metadata={"tags": ["injected-parameters"]})
    printed = new_code_cell("print(path)", outputs=[
        new_output("stream", name="stdout", text="wrote /srv/build/_runs/quick/t.csv\n"),
        new_output("display_data", data={"text/plain": "/home/me/x", "image/png": "iVBOR"},
                   metadata={"file": "/srv/build/_runs/quick/t.csv"})])
    nb = new_notebook(cells=[injected, printed])
    nb.metadata["papermill"] = {"parameters": {"artifacts_dir": "/srv/build/_runs/quick"}}
    out = portable_outputs(nb, {"/srv/build/_runs/quick": "<artifacts>/quick",
                                "/srv/build": "<repository>", "/home/me": "~"})
    nbformat.validate(out)
    text = nbformat.writes(out)  # writable as the staged copy is written
    assert "/srv/build" not in text and "/home/me" not in text and "papermill" not in text
    assert out.cells[0]["source"] == 'artifacts_dir = None\nprofile = "quick"'
    assert out.cells[1]["outputs"][1]["data"]["image/png"] == "iVBOR"
