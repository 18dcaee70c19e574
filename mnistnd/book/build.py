"""Build the HTML book: run the chapters of ``_toc.yml`` in order, stage, call Jupyter Book.

All sources are staged first, into a folder unique to the build (so pages, toc and config edited
while the chapters run cannot disagree with them): ``_config.yml`` as :func:`staged_config` makes
it, ``_toc.yml``, the pages of ``book/`` with the generated tables (``book/_generated/``), the
release files the datasets page links, and, once they ran, the executed chapters with papermill's
``injected-parameters`` cell tagged ``remove-cell`` (:func:`hide_injected_parameters`). The
profile's MNIST-Nd datasets go to ``_extra/downloads/mnistnd`` (``html_extra_path``), and the
small extension :mod:`mnistnd.book._sphinx` points launch links at the chapter sources: the HTML
is never edited after Sphinx wrote it. ``jupyter-book build -W --keep-going --all`` renders the
stage into another unique folder, which then replaces the output folder in one rename. The whole
build holds the profile folder's lock (:func:`mnistnd.book.execute.profile_lock`).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

from mnistnd import settings
from mnistnd.book import pages
from mnistnd.book.execute import (
    artifacts_folder,
    check_timeout,
    execute,
    prepare,
    profile_lock,
)
from mnistnd.book.toc import CHAPTER_DIR, find_book_root, is_chapter, parse_toc, source_of
from mnistnd.profiles import check_profile

__all__ = ["REPOSITORY_URL_ENV", "build_book", "hide_injected_parameters", "repository_url",
           "staged_config"]

#: Environment variable read by :func:`build_book`: the published repository.
REPOSITORY_URL_ENV = "MNISTND_REPOSITORY_URL"
_HOSTS = ("github", "gitlab", "bitbucket")
_REPOSITORY_BUTTONS = ("use_repository_button", "use_issues_button", "use_edit_page_button")
#: Where the profile's datasets are offered, relative to the HTML root (book/datasets.md links it).
DOWNLOADS_DIR = "downloads/mnistnd"
GENERATED = "book/_generated"


def repository_url(url: str | None = None) -> str | None:
    """Return the published repository's URL, checked; ``None`` when the book has none.

    ``url=None`` reads ``$MNISTND_REPOSITORY_URL``; an empty string means no repository. The
    form is ``https://<github|gitlab|bitbucket host>/<owner>/<name>`` (a trailing ``/`` or
    ``.git`` is dropped), which the theme splits into owner and name for its links.

    Raises
    ------
    ValueError
        Naming the environment variable, when the URL has another form.
    """
    text = os.environ.get(REPOSITORY_URL_ENV, "") if url is None else url
    if not isinstance(text, str):
        raise TypeError(f"repository_url: expected a string, got {type(text).__name__}")
    if not text.strip():
        return None
    parts = urllib.parse.urlsplit(text.strip())
    path = [p for p in parts.path.split("/") if p]
    if (parts.scheme != "https" or parts.query or parts.fragment or len(path) != 2
            or not any(host in parts.netloc.lower() for host in _HOSTS)):
        raise ValueError(f"repository_url (${REPOSITORY_URL_ENV}): expected https://github.com/"
                         f"<owner>/<name> (or a GitLab or Bitbucket repository), got {text!r}")
    return f"https://{parts.netloc}/{path[0]}/{path[1].removesuffix('.git')}"


def _section(config: dict, key: str) -> dict:
    value = config.get(key) or {}
    if not isinstance(value, dict):
        raise ValueError(f"_config.yml: {key!r} must be a mapping, got {value!r}")
    config[key] = value
    return value


def staged_config(content: bytes | str, url: str | None) -> bytes:
    """``_config.yml`` as the book is built from it.

    With ``url`` the repository button and the launch buttons ``_config.yml`` enables stay;
    without, ``repository.url`` is empty, the repository buttons and Thebe are off and every
    launch service URL is empty, so no page links to a repository that does not exist. The
    book's Sphinx extension and the folder of extra files (:data:`DOWNLOADS_DIR`) are added.
    """
    import yaml

    config = yaml.safe_load(content)
    if not isinstance(config, dict):
        raise ValueError("_config.yml: expected a mapping of Jupyter Book settings")
    repository, html, launch, sphinx = (_section(config, key) for key in
                                        ("repository", "html", "launch_buttons", "sphinx"))
    repository["url"] = url or ""
    if url is None:
        html.update(dict.fromkeys(_REPOSITORY_BUTTONS, False))
        launch.update({key: "" for key in launch if key.endswith("_url")}, thebe=False)
    sphinx["extra_extensions"] = [*(sphinx.get("extra_extensions") or []), "mnistnd.book._sphinx"]
    _section(sphinx, "config")["html_extra_path"] = ["_extra"]
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True).encode("utf-8")


def hide_injected_parameters(nb):
    """Copy of an executed notebook whose ``injected-parameters`` cell is tagged ``remove-cell``.

    That cell holds the values the run received, among them ``artifacts_dir``, a folder of the
    machine that built the book; MyST-NB leaves a ``remove-cell`` cell out of the HTML. The
    executed notebook itself is not changed (it is the record of the run).
    """
    staged = copy.deepcopy(nb)
    for cell in staged.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell["metadata"]["tags"] = [*tags, "remove-cell"]
    return staged


def portable_outputs(nb, names: dict[str, str]):
    """Replace folders of the building machine everywhere in a staged notebook, except images.

    Chapters print where they wrote their results (``<artifacts>/<profile>/...``); the published
    copy names those folders by ``names`` (``{absolute folder: shown name}``, the longest first),
    while the executed notebook keeps them as the record of the run. Strings in cell sources,
    outputs and metadata are rewritten; image data is left alone. Injected parameters whose
    value is an absolute folder become ``None`` (the chapter's own default for such values), and
    papermill's metadata (its copy of the parameters and of the input and output paths) is
    dropped, so a downloaded notebook names no folder of the machine that built the book.
    """
    order = sorted(names, key=len, reverse=True)

    def fix(value, key=""):
        if isinstance(value, str):
            for folder in order:
                value = value.replace(folder, names[folder])
            return value
        if isinstance(value, list):
            return [fix(v) for v in value]
        if isinstance(value, dict):
            return {k: v if k.startswith("image/") else fix(v, k) for k, v in value.items()}
        return value

    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            cell["source"] = _ABSOLUTE_ASSIGNMENT.sub(r"\1 = None", cell["source"])
    import nbformat

    nb.metadata = nbformat.from_dict(fix(dict(nb.metadata)))
    nb.cells = [nbformat.from_dict(fix(dict(cell))) for cell in nb.cells]
    return nb


#: ``name = "/absolute/folder"`` on a line of its own (papermill's injected values)
_ABSOLUTE_ASSIGNMENT = re.compile(r"""^(\w+) = (["'])/[^"'\n]*\2[ \t]*$""", re.M)


def _stage_sources(root: Path, stage: Path, entries: list[str], snapshot: dict) -> None:
    """Copy what Jupyter Book renders, except the executed chapters, into ``stage``."""
    from mnistnd import release

    for name, content in snapshot.items():
        (stage / name).write_bytes(content)
    skip = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "_generated")
    if (root / "book").is_dir():
        shutil.copytree(root / "book", stage / "book", ignore=skip)
    release.check_all()  # book/datasets.md links each release file ({download} role)
    shutil.copytree(release.release_dir(), stage / "book" / "release" / release.VERSION)
    if (root / CHAPTER_DIR).is_dir():  # images referenced by markdown cells
        shutil.copytree(root / CHAPTER_DIR, stage / CHAPTER_DIR, ignore=shutil.ignore_patterns(
            "*.md", "*.ipynb", "*.py", ".ipynb_checkpoints", "__pycache__"))
    for entry in entries:
        source = source_of(root, entry)
        if not is_chapter(entry) and not (stage / source.relative_to(root)).exists():
            (stage / source.relative_to(root)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, stage / source.relative_to(root))


def _stage_outputs(stage: Path, folder: Path, stems: list[str], profile: str,
                   root: Path) -> None:
    """Add the executed chapters, generated tables and downloadable datasets to ``stage``."""
    import nbformat

    from mnistnd import datasets

    generated = stage / GENERATED
    generated.mkdir(parents=True, exist_ok=True)
    (generated / "times.inc").write_text(pages.times_table(folder, profile, root), "utf-8")
    (generated / "provenance.inc").write_text(pages.provenance_markdown(folder, profile, root),
                                              "utf-8")
    names = {str(folder): f"<artifacts>/{profile}", str(root): "<repository>",
             str(settings.data_dir().resolve()): f"${settings.DATA_ENV}", str(Path.home()): "~"}
    for stem in stems:
        nb = nbformat.read(folder / CHAPTER_DIR / f"{stem}.ipynb", as_version=4)
        nbformat.write(portable_outputs(hide_injected_parameters(nb), names),
                       stage / CHAPTER_DIR / f"{stem}.ipynb")
    downloads = stage / "_extra" / DOWNLOADS_DIR
    downloads.mkdir(parents=True)
    entries = []
    if datasets.available_dims(folder):
        datasets.export(artifacts_dir=folder, out_dir=downloads)
        entries = json.loads((downloads / "manifest.json").read_text("utf-8"))["datasets"]
    (downloads / "index.html").write_text(pages.downloads_index(entries, profile), "utf-8")


def _jupyter_book(stage: Path, out_parent: Path, log: Path) -> Path:
    """Render ``stage`` into ``<out_parent>/_build/html``; RuntimeError with the warnings."""
    package_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build",
           str(stage), "--path-output", str(out_parent), "-W", "--keep-going", "--all",
           "--builder", "html"]
    proc = subprocess.run(cmd, cwd=str(stage), capture_output=True, text=True, env=env)
    text = proc.stdout + "\n" + proc.stderr
    from mnistnd._io import atomic_write

    atomic_write(log, lambda p: p.write_text(text, encoding="utf-8"))
    html = out_parent / "_build" / "html"
    if proc.returncode != 0 or not (html / "index.html").is_file():
        shown = [ln for ln in text.splitlines() if "WARNING" in ln or "ERROR" in ln][:30]
        raise RuntimeError(f"jupyter-book build -W failed (exit {proc.returncode}); full log: "
                           f"{log}\n" + "\n".join(shown or text.strip().splitlines()[-40:]))
    return html


def replace_dir(new: Path, target: Path) -> None:
    """Move the folder ``new`` to ``target``, which is swapped in one rename.

    Leftovers of builds killed during a swap (``.<name>.<pid>.*`` of dead processes) are removed.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.*.*"):
        pid = stale.name.split(".")[-2]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    tmp, old = (target.with_name(f".{target.name}.{os.getpid()}.{s}") for s in ("tmp", "old"))
    try:
        os.replace(new, tmp)
    except OSError:  # another file system
        shutil.copytree(new, tmp)
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _plan(root: Path, chapters, repository) -> tuple[dict, list[str], list[str], list[str]]:
    """Read config and toc once; return the snapshot, entries, all and selected chapters."""
    if not (root / "_toc.yml").is_file() or not (root / "_config.yml").is_file():
        raise FileNotFoundError(f"book_root: {str(root)!r} has no _toc.yml and _config.yml")
    snapshot = {name: (root / name).read_bytes() for name in ("_config.yml", "_toc.yml")}
    snapshot["_config.yml"] = staged_config(snapshot["_config.yml"], repository_url(repository))
    entries = parse_toc(snapshot["_toc.yml"], root / "_toc.yml")
    missing = [e for e in entries if source_of(root, e) is None]
    if missing:
        raise FileNotFoundError(f"_toc.yml lists files that do not exist in {root}: {missing}")
    stems = [e.split("/", 1)[1] for e in entries if is_chapter(e)]
    chapters = [chapters] if isinstance(chapters, str) else chapters
    unknown = [c for c in chapters or [] if c not in stems]
    if unknown:
        raise ValueError(f"chapters: {unknown} not in _toc.yml; chapters: {stems}")
    return snapshot, entries, stems, [s for s in stems if chapters is None or s in chapters]


def build_book(profile: str = "quick", artifacts_dir: str | os.PathLike | None = None,
               output_dir: str | os.PathLike | None = None, chapters: list[str] | None = None,
               *, book_root: str | os.PathLike | None = None, timeout: float | None = None,
               progress_bar: bool = True, repository: str | None = None) -> Path:
    """Execute the chapters of ``_toc.yml`` in order and build the HTML book (``-W``).

    Parameters
    ----------
    profile
        ``"smoke"``, ``"quick"`` (default) or ``"paper"``.
    artifacts_dir
        Artifacts root (default ``$MNISTND_ARTIFACTS_DIR`` or ``_runs``); chapters run in
        ``<root>/<profile>``.
    output_dir
        Folder that receives the HTML (replaced as a whole); default ``<book root>/_build/html``.
    chapters
        Stems of the chapters to execute; ``None``: all. The others reuse their executed copies.
    book_root
        Folder with ``_toc.yml``, ``_config.yml``, ``book/`` and ``notebooks/`` (default: found
        from the working directory, :func:`mnistnd.book.toc.find_book_root`).
    timeout
        Per-cell time limit in seconds for every chapter.
    progress_bar
        Show progress bars.
    repository
        URL of the published repository (default ``$MNISTND_REPOSITORY_URL``; ``""``: none).

    Returns
    -------
    pathlib.Path
        The HTML folder (open ``index.html``).

    Raises
    ------
    ValueError, FileNotFoundError, PermissionError
        Bad input, before any chapter runs.
    ChapterError
        A chapter failed (named, with its cell); the previous HTML is left as it was.
    RuntimeError
        ``jupyter-book build -W`` failed (warnings are errors); the message holds the warnings.
    """
    check_profile(profile)
    timeout = check_timeout(timeout)
    root = Path(book_root).resolve() if book_root is not None else find_book_root()
    snapshot, entries, stems, to_run = _plan(root, chapters, repository)
    out = Path(output_dir).expanduser().resolve() if output_dir else root / "_build" / "html"
    settings.ensure_writable_dir(out.parent, "output_dir")
    folder = artifacts_folder(artifacts_dir, profile)
    prepared = [prepare(source_of(root, f"{CHAPTER_DIR}/{s}"), None, profile) for s in to_run]
    with profile_lock(folder):
        stale = [s for s in stems if s not in to_run
                 and not (folder / CHAPTER_DIR / f"{s}.ipynb").is_file()]
        if stale:
            raise FileNotFoundError(f"chapters: {stale} have no executed copy in "
                                    f"{folder / CHAPTER_DIR}; run them too")
        stage = Path(tempfile.mkdtemp(dir=folder, prefix=".tmp-book-"))
        rendered = Path(tempfile.mkdtemp(dir=folder, prefix=".tmp-html-"))
        try:
            _stage_sources(root, stage, entries, snapshot)
            _run_all(prepared, profile, folder, timeout, progress_bar)
            _stage_outputs(stage, folder, stems, profile, root)
            replace_dir(_jupyter_book(stage, rendered, folder / "jupyter-book.log"), out)
            replace_dir(stage, folder / "_book")
        finally:
            for tmp in (stage, rendered):
                shutil.rmtree(tmp, ignore_errors=True)
    return out


def _run_all(prepared: list, profile: str, folder: Path, timeout, progress_bar: bool) -> None:
    from tqdm.auto import tqdm

    with tqdm(prepared, desc=f"book ({profile})", unit="chapter",
              disable=not progress_bar) as bar:
        for chapter in bar:
            bar.set_postfix_str(chapter.stem)
            execute(chapter, profile, folder, timeout=timeout, progress_bar=progress_bar)
