"""The book pipeline: execute chapters with papermill, then build the HTML with Jupyter Book.

Chapters are jupytext MyST-markdown sources in ``notebooks/`` with one code cell tagged
``parameters``. :func:`run_notebook` converts one to ``.ipynb`` and executes it (kernel
``python3``, a scratch working directory) into ``<root>/<profile>/notebooks/<stem>.ipynb``, where
``<root>`` is the artifacts root (``--artifacts-dir``, ``$MNISTND_ARTIFACTS_DIR`` or ``_runs``).
:func:`build_book` runs every chapter of ``_toc.yml`` in toc order and then builds the book from
the executed copies:

* a *staging* folder ``<root>/<profile>/_book/`` receives ``_config.yml``, ``_toc.yml``, the
  hand-written pages of ``book/`` and the executed notebooks under ``notebooks/``. The toc is
  copied unchanged: its entries carry no extension, so ``notebooks/data`` resolves to the executed
  ``notebooks/data.ipynb`` there (the sources, ``.md``, are not copied). Two things differ from
  the originals: ``_config.yml`` gets the repository URL and launch buttons of
  :func:`staged_config`, and papermill's ``injected-parameters`` cell of every chapter is tagged
  ``remove-cell`` (:func:`hide_injected_parameters`);
* ``jupyter-book build -W --keep-going --all`` renders the staging folder into
  ``<root>/<profile>/_build/html``, which then replaces the output folder (default
  ``<book root>/_build/html``) in one rename.

Every input is checked before any chapter runs. A failing cell raises :class:`ChapterError`
naming the chapter, the cell (its index in the source notebook, counting markdown cells, from 0)
and the exception; the executed notebook with the traceback is kept as ``<stem>.failed.ipynb``
while ``<stem>.ipynb`` is only ever the output of a complete run (written to a temporary file,
then renamed). Wall times go to ``<root>/<profile>/timings.csv``.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import csv
import io
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tokenize
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from mnistnd import settings
from mnistnd._checks import check_float
from mnistnd._io import atomic_write
from mnistnd.profiles import RESERVED, check_profile, profile_parameters

__all__ = [
    "REPOSITORY_URL_ENV",
    "ChapterError",
    "Parameter",
    "ParameterError",
    "build_book",
    "hide_injected_parameters",
    "repository_url",
    "staged_config",
    "source_banner",
    "source_banner_markdown",
    "find_book_root",
    "notebook_parameters",
    "parse_parameter",
    "check_parameter",
    "read_timings",
    "run_notebook",
    "toc_files",
    "toc_chapters",
]

CHAPTER_DIR = "notebooks"
TIMINGS_FILE = "timings.csv"
_TIMING_FIELDS = ("chapter", "profile", "status", "seconds", "finished_utc", "parameters")
_INJECTED_TAG = "injected-parameters"
_PAPERMILL_TAGS = (_INJECTED_TAG, "papermill-error-cell-tag")
#: MyST-NB leaves a cell with this tag out of the HTML (source and outputs).
_REMOVE_TAG = "remove-cell"
_NONE_WORDS = ("none", "null")
_TRUE_WORDS = ("true", "yes", "on", "1")
_FALSE_WORDS = ("false", "no", "off", "0")


class ParameterError(ValueError):
    """A parameter given to a chapter is not declared by it or has the wrong type."""


class ChapterError(RuntimeError):
    """A chapter failed while executing; the message names the chapter and the cell."""

    def __init__(self, message: str, *, chapter: str, cell_index: int | None = None,
                 notebook: Path | None = None):
        super().__init__(message)
        self.chapter = chapter
        self.cell_index = cell_index
        self.notebook = notebook


# --------------------------------------------------------------------------------------------
# parameters cell: declarations and types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    """One parameter declared in a notebook's ``parameters`` cell.

    Attributes
    ----------
    name
        Variable name.
    annotation
        Source text of the type annotation (``"list[int]"``), or ``None`` if untyped.
    default
        The default value when it is a Python literal, else the source text.
    help
        The trailing comment of the declaration.
    """

    name: str
    annotation: str | None
    default: object
    help: str = ""

    @property
    def type_spec(self) -> tuple:
        """Parsed type, e.g. ``("int",)``, ``("list", ("int",))`` or ``("optional", ...)``."""
        if self.annotation is not None:
            return _parse_annotation(self.annotation)
        return _spec_of_value(self.default)

    @property
    def type_name(self) -> str:
        """Readable name of the type (``"list[int]"``, ``"int | None"``)."""
        return _spec_name(self.type_spec)


def _parse_annotation(text: str) -> tuple:
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        return ("any",)
    return _spec_of_node(node)


def _spec_of_node(node) -> tuple:
    scalars = {"int", "float", "bool", "str"}
    if isinstance(node, ast.Constant) and node.value is None:
        return ("none",)
    name = _dotted(node)
    if name is not None:
        name = name.rsplit(".", 1)[-1]
        if name in scalars:
            return (name,)
        if name in ("list", "List"):
            return ("list", ("any",))
        return ("any",)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _union(_spec_of_node(node.left), _spec_of_node(node.right))
    if isinstance(node, ast.Subscript):
        outer = (_dotted(node.value) or "").rsplit(".", 1)[-1]
        inner = node.slice
        if outer in ("list", "List", "Sequence", "tuple", "Tuple"):
            if isinstance(inner, ast.Tuple):  # tuple[int, ...]
                elts = [e for e in inner.elts if not isinstance(e, ast.Constant)]
                inner = elts[0] if elts else None
            return ("list", _spec_of_node(inner) if inner is not None else ("any",))
        if outer == "Optional":
            return _union(_spec_of_node(inner), ("none",))
        if outer == "Union" and isinstance(inner, ast.Tuple):
            spec = _spec_of_node(inner.elts[0])
            for elt in inner.elts[1:]:
                spec = _union(spec, _spec_of_node(elt))
            return spec
    return ("any",)


def _dotted(node) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _union(a: tuple, b: tuple) -> tuple:
    if a == ("none",) and b != ("none",):
        a, b = b, a
    if b == ("none",) and a[0] not in ("none", "optional", "any"):
        return ("optional", a)
    if b == ("none",) and a[0] == "optional":
        return a
    return ("any",)


def _spec_of_value(value) -> tuple:
    for kind in (bool, int, float, str):
        if type(value) is kind:
            return (kind.__name__,)
    if isinstance(value, (list, tuple)):
        kinds = {_spec_of_value(v) for v in value}
        return ("list", kinds.pop() if len(kinds) == 1 else ("any",))
    return ("any",)


def _spec_name(spec: tuple) -> str:
    if spec[0] == "list":
        return f"list[{_spec_name(spec[1])}]" if spec[1] != ("any",) else "list"
    if spec[0] == "optional":
        return f"{_spec_name(spec[1])} | None"
    return {"none": "None", "any": "any"}.get(spec[0], spec[0])


def _comments_by_line(source: str) -> dict[int, str]:
    comments = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                comments[tok.start[0]] = tok.string.lstrip("#").strip()
    except (tokenize.TokenError, IndentationError):
        pass
    return comments


def _parameters_cell(nb, where: str):
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(
            f"notebook {where}: expected exactly one cell tagged 'parameters', found {len(cells)}"
        )
    if cells[0].cell_type != "code":
        raise ValueError(f"notebook {where}: the cell tagged 'parameters' is not a code cell")
    return cells[0]


def _parse_parameters_source(source: str, where: str) -> dict[str, Parameter]:
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        raise ValueError(f"notebook {where}: the parameters cell is not valid Python ({err})") \
            from err
    comments = _comments_by_line(source)
    params: dict[str, Parameter] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            name, annotation, value = stmt.target.id, ast.unparse(stmt.annotation), stmt.value
        elif (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
              and isinstance(stmt.targets[0], ast.Name)):
            name, annotation, value = stmt.targets[0].id, None, stmt.value
        else:
            continue
        if value is None:
            default = None
        else:
            try:
                default = ast.literal_eval(value)
            except (ValueError, SyntaxError, TypeError):
                default = ast.unparse(value)
        help_text = comments.get(stmt.end_lineno, "")
        params[name] = Parameter(name, annotation, default, help_text)
    return params


def read_notebook(path: str | os.PathLike):
    """Read a chapter source (jupytext MyST ``.md``) or an ``.ipynb`` into an nbformat notebook.

    Raises
    ------
    FileNotFoundError, ValueError
        Naming the parameter ``notebook`` when the file is missing or not a notebook.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"notebook: {str(path)!r} does not exist or is not a file")
    if not os.access(path, os.R_OK):
        raise PermissionError(f"notebook: {str(path)!r} is not readable")
    if path.suffix not in (".md", ".ipynb"):
        raise ValueError(f"notebook: {str(path)!r} must be a MyST markdown (.md) or .ipynb file")
    import jupytext

    if path.suffix == ".md":
        text = path.read_text(encoding="utf-8")
        header = text.split("\n---", 1)[0] if text.startswith("---") else ""
        if "format_name: myst" not in header:
            raise ValueError(
                f"notebook: {str(path)!r} has no jupytext MyST header "
                "(jupytext: text_representation: format_name: myst); see CONTRIBUTING.md"
            )
    try:
        nb = jupytext.read(path, fmt="md:myst" if path.suffix == ".md" else None)
    except Exception as err:  # jupytext raises many types on malformed input
        raise ValueError(f"notebook: cannot read {str(path)!r} as a notebook ({err})") from err
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


def notebook_parameters(notebook) -> dict[str, Parameter]:
    """Return the parameters declared in a notebook's ``parameters`` cell.

    The cell is parsed with Python's :mod:`ast` (papermill's own inspection misses annotations
    such as ``str | None``). Top-level assignments, annotated or not, are parameters.

    Parameters
    ----------
    notebook
        Path to the chapter source, or a notebook already read with :func:`read_notebook`.

    Returns
    -------
    dict
        ``{name: Parameter}`` in declaration order.
    """
    if isinstance(notebook, (str, os.PathLike)):
        where = str(notebook)
        notebook = read_notebook(notebook)
    else:
        where = "<notebook>"
    cell = _parameters_cell(notebook, where)
    return _parse_parameters_source(cell.source, where)


def parse_parameter(param: Parameter, text: str):
    """Parse a command-line string into a value of the parameter's declared type.

    ``int``, ``float``, ``bool`` (true/false, yes/no, on/off, 1/0), ``str``, lists
    (``"2,4,8"`` or ``"[2, 4, 8]"``) and ``X | None`` (``"None"``) are understood; a value of an
    undeclared or unsupported type is read as a Python literal, else kept as a string.

    Raises
    ------
    ParameterError
        Naming the parameter, its type and the value.
    """
    return _parse_text(param.name, param.type_spec, text)


def _parse_text(name: str, spec: tuple, text: str):
    kind = spec[0]
    raw = text.strip()

    def fail(why: str = ""):
        extra = f" ({why})" if why else ""
        raise ParameterError(f"parameter {name!r} expects {_spec_name(spec)}, got {text!r}{extra}")

    if kind == "optional":
        if raw.lower() in _NONE_WORDS:
            return None
        return _parse_text(name, spec[1], text)
    if kind == "none":
        if raw.lower() in _NONE_WORDS:
            return None
        fail()
    if kind == "str":
        return text
    if kind == "int":
        try:
            return int(raw)
        except ValueError:
            fail()
    if kind == "float":
        try:
            value = float(raw)
        except ValueError:
            fail()
        if not math.isfinite(value):
            fail("not finite")
        return value
    if kind == "bool":
        if raw.lower() in _TRUE_WORDS:
            return True
        if raw.lower() in _FALSE_WORDS:
            return False
        fail("use true or false")
    if kind == "list":
        if raw.startswith("["):
            try:
                value = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                value = None
            if isinstance(value, (list, tuple)):
                try:
                    return [_check(f"{name}[{i}]", spec[1], v, name)
                            for i, v in enumerate(value)]
                except ParameterError as err:
                    fail(str(err))
            if not raw.endswith("]"):
                fail()
            raw = raw[1:-1]
        items = [s.strip() for s in raw.split(",")] if raw.strip() else []
        if any(s == "" for s in items):
            fail("empty list element")
        values = []
        for item in items:
            try:
                values.append(_parse_text(name, spec[1], item))
            except ParameterError:
                fail(f"{item!r} is not {_spec_name(spec[1])}")
        return values
    # unsupported annotation: a Python literal if it is one, else the string itself
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return text


def check_parameter(param: Parameter, value):
    """Check a Python value against the parameter's declared type and return it normalised.

    ``int`` is accepted for ``float`` (and converted); tuples become lists.

    Raises
    ------
    ParameterError
        Naming the parameter, its type and the value.
    """
    return _check(param.name, param.type_spec, value, param.name)


def _check(label: str, spec: tuple, value, name: str):
    kind = spec[0]

    def fail():
        raise ParameterError(
            f"parameter {label!r} expects {_spec_name(spec)}, got {value!r} "
            f"({type(value).__name__})"
        )

    if kind == "any":
        return value
    if kind == "optional":
        return None if value is None else _check(label, spec[1], value, name)
    if kind == "none":
        return value if value is None else fail()
    if kind == "bool":
        return value if isinstance(value, bool) else fail()
    if kind == "int":
        return int(value) if isinstance(value, int) and not isinstance(value, bool) else fail()
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail()
        if not math.isfinite(value):
            fail()
        return float(value)
    if kind == "str":
        return value if isinstance(value, str) else fail()
    if kind == "list":
        if not isinstance(value, (list, tuple)):
            fail()
        return [_check(f"{name}[{i}]", spec[1], v, name) for i, v in enumerate(value)]
    return value


def resolve_parameters(
    stem: str, declared: dict[str, Parameter], profile: str, parameters: dict | None
) -> dict:
    """Merge profile values and explicit parameters, checking names and types.

    Returns the parameters to inject (without ``artifacts_dir`` and ``profile``).

    Raises
    ------
    ParameterError
        For a reserved name, a name the notebook does not declare (the message lists the declared
        ones) or a value of the wrong type.
    """
    if parameters is not None and not isinstance(parameters, dict):
        raise TypeError(
            f"parameters must be a dict {{name: value}}, got {type(parameters).__name__}"
        )
    merged = {}
    sources = [(f"profile {profile!r} (mnistnd/profiles.yaml)", profile_parameters(stem, profile)),
               ("parameters", dict(parameters or {}))]
    for origin, values in sources:
        for name, value in values.items():
            if name in RESERVED:
                raise ParameterError(
                    f"parameter {name!r} is set by the runner; use the "
                    f"{'--artifacts-dir' if name == 'artifacts_dir' else '--profile'} option "
                    "(or the function argument of the same name) instead"
                )
            if name not in declared:
                known = ", ".join(n for n in declared if n not in RESERVED) or "(none)"
                raise ParameterError(
                    f"parameter {name!r} (from {origin}) is not declared in the parameters cell "
                    f"of chapter {stem!r}; declared: {known}"
                )
            try:
                merged[name] = check_parameter(declared[name], value)
            except ParameterError as err:
                raise ParameterError(f"{err} (from {origin}, chapter {stem!r})") from None
    return merged


# --------------------------------------------------------------------------------------------
# running one chapter
# --------------------------------------------------------------------------------------------


def _artifacts_root(artifacts_dir) -> Path:
    root = settings.artifacts_root() if artifacts_dir is None else Path(artifacts_dir)
    root = root.expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"artifacts_dir: {str(root)!r} exists and is not a directory")
    if root.exists() and not os.access(root, os.R_OK | os.X_OK):
        raise PermissionError(f"artifacts_dir: directory {str(root)!r} is not readable")
    settings.ensure_writable_dir(root, "artifacts_dir")
    return root


def _profile_dir(root: Path, profile: str) -> Path:
    folder = settings.ensure_writable_dir(root / profile, "artifacts_dir")
    settings.ensure_writable_dir(folder / CHAPTER_DIR, "artifacts_dir")
    return folder


class _QuietPapermill(logging.Filter):
    """Drop papermill's parameter-introspection warnings.

    Papermill cannot parse ``str | None`` annotations and calls such parameters unknown, while
    :func:`resolve_parameters` has checked every name against the parameters cell already.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record but the two introspection warnings."""
        message = record.getMessage()
        return not message.startswith(("Passed unknown parameter", "Unable to parse line"))


@contextlib.contextmanager
def _kernel_environment():
    # A non-interactive MPLBACKEND (e.g. Agg) makes inline figures vanish from the notebook.
    saved = os.environ.pop("MPLBACKEND", None)
    # logger filters do not apply to records of child loggers: add it to each that warns
    loggers = [logging.getLogger(name) for name in ("papermill", "papermill.translators")]
    quiet = _QuietPapermill()
    for logger in loggers:
        logger.addFilter(quiet)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(quiet)
        if saved is not None:
            os.environ["MPLBACKEND"] = saved


def _failed_cell(nb, *, last_started: bool = False) -> tuple[int | None, str]:
    """Index (in the source notebook) and first source line of the cell that raised.

    With ``last_started``, the last code cell papermill started (a timeout or a dead kernel
    leaves no error output).
    """
    found: tuple[int | None, str] = (None, "")
    index = 0
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if any(t in tags for t in _PAPERMILL_TAGS):
            continue
        lines = [ln for ln in cell.source.splitlines() if ln.strip()]
        first = lines[0].strip() if lines else ""
        if cell.cell_type == "code":
            if any(out.get("output_type") == "error" for out in cell.get("outputs", [])):
                return index, first
            if last_started and cell.get("metadata", {}).get("papermill", {}).get("start_time"):
                found = (index, first)
        index += 1
    return found


def _write_timing(folder: Path, row: dict) -> None:
    path = folder / TIMINGS_FILE
    rows = [r for r in read_timings(folder) if r["chapter"] != row["chapter"]]
    rows.append({k: row[k] for k in _TIMING_FIELDS})

    def write(p: Path) -> None:
        with open(p, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=_TIMING_FIELDS)
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(path, write)


def read_timings(folder: str | os.PathLike) -> list[dict]:
    """Rows of ``<folder>/timings.csv`` (one per chapter, the latest run), or ``[]``."""
    path = Path(folder) / TIMINGS_FILE
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@dataclass
class _Prepared:
    path: Path
    stem: str
    nb: object
    values: dict


def _prepare(path, parameters, profile) -> _Prepared:
    check_profile(profile)
    path = Path(path)
    nb = read_notebook(path)
    declared = _parse_parameters_source(_parameters_cell(nb, str(path)).source, str(path))
    values = resolve_parameters(path.stem, declared, profile, parameters)
    return _Prepared(path, path.stem, nb, values)


def run_notebook(
    path: str | os.PathLike,
    parameters: dict | None = None,
    profile: str = "quick",
    artifacts_dir: str | os.PathLike | None = None,
    *,
    timeout: float | None = None,
    progress_bar: bool = True,
) -> Path:
    """Execute one chapter with papermill and return the executed notebook's path.

    Parameters
    ----------
    path
        Chapter source, ``notebooks/<stem>.md`` (jupytext MyST) or an ``.ipynb``.
    parameters
        Values for parameters the notebook declares; they override the profile's values.
    profile
        ``"smoke"``, ``"quick"`` or ``"paper"``; its values from ``mnistnd/profiles.yaml`` are
        applied first.
    artifacts_dir
        Artifacts *root* (default ``$MNISTND_ARTIFACTS_DIR`` or ``_runs``). The chapter gets
        ``<root>/<profile>`` (absolute) as its ``artifacts_dir`` parameter, and the executed
        notebook goes to ``<root>/<profile>/notebooks/<stem>.ipynb``.
    timeout
        Per-cell time limit in seconds (``None``: no limit).
    progress_bar
        Show papermill's per-cell progress bar.

    Returns
    -------
    pathlib.Path
        The executed notebook.

    Raises
    ------
    ValueError, ParameterError, FileNotFoundError, PermissionError
        Bad input, before anything runs.
    ChapterError
        A cell raised (or the kernel died); the message names the chapter and the cell.
    """
    timeout = _check_timeout(timeout)
    prepared = _prepare(path, parameters, profile)
    folder = _profile_dir(_artifacts_root(artifacts_dir), profile)
    return _execute(prepared, profile, folder, timeout=timeout, progress_bar=progress_bar)


def _execute(prep: _Prepared, profile: str, folder: Path, *, timeout=None,
             progress_bar=True) -> Path:
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    out_dir = folder / CHAPTER_DIR
    final = out_dir / f"{prep.stem}.ipynb"
    failed = out_dir / f"{prep.stem}.failed.ipynb"
    partial = out_dir / f".{prep.stem}.{os.getpid()}.partial.ipynb"
    values = {**prep.values, "artifacts_dir": str(folder), "profile": profile}
    timing = {"chapter": prep.stem, "profile": profile,
              "parameters": json.dumps(prep.values, sort_keys=True)}
    start = time.perf_counter()
    error: ChapterError | None = None
    with tempfile.TemporaryDirectory(prefix=f"mnistnd-{prep.stem}-",
                                     ignore_cleanup_errors=True) as scratch, _kernel_environment():
        try:
            pm.execute_notebook(
                prep.nb, str(partial), parameters=values, kernel_name="python3",
                language="python", cwd=scratch, progress_bar=progress_bar,
                execution_timeout=timeout,
            )
        except PapermillExecutionError as err:
            index, first = _failed_cell(_read_ipynb(partial)) if partial.exists() else (None, "")
            if index is None:
                index, first = err.cell_index, (err.source or "").strip().splitlines()[:1]
                first = first[0] if first else ""
            with contextlib.suppress(OSError):
                os.replace(partial, failed)
            error = ChapterError(
                f"chapter {prep.stem!r} ({prep.path}) failed in cell {index} "
                f"(index in the notebook from 0, counting markdown cells), first line "
                f"{first!r}: {err.ename}: {err.evalue}\n"
                f"executed notebook with the traceback: {failed}",
                chapter=prep.stem, cell_index=index, notebook=failed,
            )
        except Exception as err:  # kernel death, timeout, bad kernel
            index, first = None, ""
            with contextlib.suppress(Exception):
                index, first = _failed_cell(_read_ipynb(partial), last_started=True)
            with contextlib.suppress(OSError):
                os.replace(partial, failed)
            where = f" in cell {index} (first line {first!r})" if index is not None else ""
            error = ChapterError(
                f"chapter {prep.stem!r} ({prep.path}) did not finish{where}: "
                f"{type(err).__name__}: {err}",
                chapter=prep.stem, cell_index=index,
                notebook=failed if failed.exists() else None,
            )
        except BaseException:  # interrupted: leave no partial file behind
            with contextlib.suppress(OSError):
                partial.unlink()
            raise
    seconds = time.perf_counter() - start
    timing.update(seconds=f"{seconds:.1f}", status="failed" if error else "ok",
                  finished_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    _write_timing(folder, timing)
    if error is not None:
        raise error
    os.replace(partial, final)
    with contextlib.suppress(FileNotFoundError):
        failed.unlink()
    return final


def _read_ipynb(path: Path):
    import nbformat

    return nbformat.read(path, as_version=4)


def _write_ipynb(nb, path: Path) -> None:
    import nbformat

    nbformat.write(nb, path)


def hide_injected_parameters(nb):
    """Copy of an executed notebook whose papermill ``injected-parameters`` cell is not rendered.

    The cell papermill inserts after the ``parameters`` cell holds the values the run received,
    among them ``artifacts_dir``, an absolute path of the machine that built the book. The copy
    tags that cell ``remove-cell``, which MyST-NB leaves out of the HTML; the declared
    ``parameters`` cell and every other cell stay as they are. Only the copy staged for
    Jupyter Book is changed: the executed notebook in the artifacts folder keeps the cell
    untagged, as the record of the run.

    Parameters
    ----------
    nb
        An nbformat notebook (version 4), e.g. as written by papermill.

    Returns
    -------
    nbformat.NotebookNode
        A deep copy with ``remove-cell`` added (once) to the tags of each injected cell.
    """
    staged = copy.deepcopy(nb)
    for cell in staged.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if _INJECTED_TAG in tags and _REMOVE_TAG not in tags:
            cell["metadata"]["tags"] = [*tags, _REMOVE_TAG]
    return staged


# --------------------------------------------------------------------------------------------
# the whole book
# --------------------------------------------------------------------------------------------


def find_book_root(start: str | os.PathLike | None = None) -> Path:
    """Return the folder holding ``_toc.yml`` and ``_config.yml``.

    Searches ``start`` (default: the working directory) and its parents, then the folder above
    the installed package (an editable install of the repository).

    Raises
    ------
    FileNotFoundError
        If no such folder exists (naming the parameter ``book_root``).
    """
    candidates = []
    here = Path(start or Path.cwd()).resolve()
    candidates += [here, *here.parents]
    candidates.append(Path(__file__).resolve().parent.parent)
    for folder in candidates:
        if (folder / "_toc.yml").is_file() and (folder / "_config.yml").is_file():
            return folder
    raise FileNotFoundError(
        f"book_root: no folder with _toc.yml and _config.yml at or above {str(here)!r}; "
        "run from the repository or pass book_root"
    )


def toc_files(book_root: str | os.PathLike | None = None) -> list[str]:
    """All files of ``_toc.yml`` (root first), in toc order, without extension."""
    root = Path(book_root) if book_root is not None else find_book_root()
    return _parse_toc((root / "_toc.yml").read_bytes(), root / "_toc.yml")


def _parse_toc(content: bytes, where: Path) -> list[str]:
    import yaml

    toc = yaml.safe_load(content)
    if not isinstance(toc, dict) or "root" not in toc:
        raise ValueError(f"{where}: not a jb-book toc (no 'root')")
    files = [_strip_ext(toc["root"])]

    def walk(node):
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            if "glob" in node:
                raise ValueError(f"{where}: glob entries are not supported")
            if "file" in node:
                files.append(_strip_ext(node["file"]))
            for key in ("parts", "chapters", "sections"):
                walk(node.get(key))

    walk({k: v for k, v in toc.items() if k in ("parts", "chapters", "sections")})
    return files


def _strip_ext(name: str) -> str:
    name = str(name).strip("/")
    for ext in (".md", ".ipynb", ".rst"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def toc_chapters(book_root: str | os.PathLike | None = None) -> list[str]:
    """Stems of the toc entries that are executed chapters (``notebooks/<stem>``), in order."""
    return [f.split("/", 1)[1] for f in toc_files(book_root) if _is_chapter(f)]


def _is_chapter(entry: str) -> bool:
    return entry.startswith(f"{CHAPTER_DIR}/") and entry.count("/") == 1


def _check_timeout(timeout):
    """``timeout`` (seconds per cell) must be ``None`` or a positive number."""
    if timeout is None:
        return None
    return check_float("timeout", timeout, minimum=0, open_low=True)


def _source_of(root: Path, entry: str) -> Path | None:
    for ext in ((".md", ".ipynb") if _is_chapter(entry) else (".md", ".ipynb", ".rst")):
        candidate = root / f"{entry}{ext}"
        if candidate.is_file():
            return candidate
    return None


#: Environment variable read by :func:`build_book` (``mnistnd book``): the published repository.
REPOSITORY_URL_ENV = "MNISTND_REPOSITORY_URL"
#: Hosts the book theme can derive repository and launch links from (it rejects others).
_REPOSITORY_HOSTS = ("github", "gitlab", "bitbucket")
_REPOSITORY_BUTTONS = ("use_repository_button", "use_issues_button", "use_edit_page_button")


def repository_url(url: str | None = None) -> str | None:
    """Return the URL of the published repository, checked; ``None`` when the book has none.

    Parameters
    ----------
    url
        ``https://<host>/<owner>/<name>`` on GitHub, GitLab or Bitbucket (a trailing ``/`` or
        ``.git`` is dropped); ``None`` reads ``$MNISTND_REPOSITORY_URL``. An empty or blank
        string means no repository.

    Returns
    -------
    str or None
        ``https://<host>/<owner>/<name>``, the form the book theme splits into owner and name
        for its repository and Binder links.

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
            or not any(host in parts.netloc.lower() for host in _REPOSITORY_HOSTS)):
        raise ValueError(
            f"repository_url (${REPOSITORY_URL_ENV}): expected https://github.com/<owner>/<name> "
            f"(or a GitLab or Bitbucket repository), got {text!r}"
        )
    name = path[1].removesuffix(".git")
    return f"https://{parts.netloc}/{path[0]}/{name}"


def staged_config(content: bytes | str, url: str | None) -> bytes:
    """``_config.yml`` as the book is built from it, with or without the published repository.

    With ``url``, ``repository.url`` is set to it and the buttons ``_config.yml`` enables stay
    (repository button, Binder and Thebe launch buttons). Without, the staged config says so
    explicitly: ``repository.url`` is empty (left out, Jupyter Book would fill in its own
    repository), the repository buttons are off, every ``launch_buttons`` service URL is empty
    and Thebe is off, so that no page links to a repository that does not exist.

    Parameters
    ----------
    content
        The YAML text of the book's ``_config.yml``.
    url
        A URL checked by :func:`repository_url`, or ``None``.

    Returns
    -------
    bytes
        The YAML text to stage (comments are not kept).
    """
    import yaml

    config = yaml.safe_load(content)
    if not isinstance(config, dict):
        raise ValueError("_config.yml: expected a mapping of Jupyter Book settings")
    repository, html, launch = (_section(config, key)
                                for key in ("repository", "html", "launch_buttons"))
    if url is not None:
        repository["url"] = url
    else:
        repository["url"] = ""
        html.update(dict.fromkeys(_REPOSITORY_BUTTONS, False))
        launch.update({key: "" for key in launch if key.endswith("_url")}, thebe=False)
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True).encode("utf-8")


def _section(config: dict, key: str) -> dict:
    """Return the mapping ``config[key]``, made when absent or empty (``key:`` with no value)."""
    value = config.get(key) or {}
    if not isinstance(value, dict):
        raise ValueError(f"_config.yml: {key!r} must be a mapping, got {value!r}")
    config[key] = value
    return value


def _stage_sources(root: Path, folder: Path, entries: list[str],
                   snapshot: dict[str, bytes]) -> Path:
    """Copy what Jupyter Book renders, except the executed chapters, into a temporary folder.

    Done before any chapter runs, with ``_config.yml`` and ``_toc.yml`` as read at the start
    (``snapshot``), so that pages, toc and config edited while the chapters run cannot disagree
    with the chapters this build executes.
    """
    tmp = folder / f"._book.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, content in snapshot.items():
        (tmp / name).write_bytes(content)
    if (root / "book").is_dir():
        shutil.copytree(root / "book", tmp / "book",
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    _stage_release(tmp / "book")
    # static assets next to the chapter sources (images referenced by markdown cells)
    if (root / CHAPTER_DIR).is_dir():
        shutil.copytree(root / CHAPTER_DIR, tmp / CHAPTER_DIR,
                        ignore=shutil.ignore_patterns("*.md", "*.ipynb", "*.py",
                                                      ".ipynb_checkpoints", "__pycache__"))
    for entry in entries:
        if not _is_chapter(entry):
            source = _source_of(root, entry)
            target = tmp / source.relative_to(root)
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
    return tmp


def _stage_release(pages: Path) -> None:
    """Put the package's MNIST-Nd release beside the hand-written pages, checked first.

    ``book/datasets.md`` links each file with the ``{download}`` role
    (``release/<version>/<file>``), so Sphinx ships them with the HTML.
    """
    from mnistnd import release

    release.check_all()
    target = pages / "release" / release.VERSION
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(release.release_dir(), target, dirs_exist_ok=True)


#: Generated at build time beside the hand-written pages, included by ``book/reproduce.md``.
TIMES_TABLE = "book/_generated/times.inc"


def _chapter_title(stem: str) -> str:
    path = find_book_root() / CHAPTER_DIR / f"{stem}.md"
    with contextlib.suppress(OSError):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("# "):
                return line[2:].strip()
    return stem


def times_table(folder: str | os.PathLike, profile: str) -> str:
    """Markdown table of the chapter times of this build and of the release's training.

    Chapter rows come from ``<folder>/timings.csv`` (written by every chapter run); the
    release row from the release manifest (seconds of training per model, summed).
    """
    lines = ["| step | profile | status | wall time |", "|---|---|---|---:|"]
    rows = read_timings(folder)
    for row in rows:
        minutes = float(row["seconds"]) / 60
        lines.append(f"| {_chapter_title(row['chapter'])} | `{row['profile']}` | "
                     f"{row['status']} | {minutes:.1f} min |")
    total = sum(float(r["seconds"]) for r in rows)
    lines.append(f"| **all chapters of this build** | `{profile}` | | **{total / 60:.1f} min** |")
    with contextlib.suppress(Exception):
        from mnistnd import release

        meta = release.manifest()
        per_model = ", ".join(f"d = {d}: {m['seconds'] / 60:.0f}"
                              for d, m in sorted(meta["models"].items(), key=lambda kv: int(kv[0])))
        lines.append(f"| m-VAE training of the release, `mnistnd release build` (two models "
                     f"at a time; minutes per model: {per_model}) | paper settings | "
                     f"finished | {meta['training_wall_seconds'] / 60:.0f} min |")
    return "\n".join(lines) + "\n"


def _stage(tmp: Path, folder: Path, entries: list[str]) -> Path:
    """Add the executed chapters to the staged sources and move them to ``<folder>/_book``."""
    stage = folder / "_book"
    generated = tmp / TIMES_TABLE
    generated.parent.mkdir(parents=True, exist_ok=True)
    generated.write_text(times_table(folder, folder.name), encoding="utf-8")
    for entry in entries:
        if _is_chapter(entry):
            executed = folder / CHAPTER_DIR / f"{entry.split('/', 1)[1]}.ipynb"
            staged = hide_injected_parameters(_read_ipynb(executed))
            _write_ipynb(staged, tmp / f"{entry}.ipynb")
    shutil.rmtree(stage, ignore_errors=True)
    os.replace(tmp, stage)
    return stage


def _replace_dir(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` so that ``target`` is swapped in one rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    old = target.with_name(f".{target.name}.{os.getpid()}.old")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def _select_chapters(stems: list[str], chapters) -> list[str]:
    """Return the stems of ``chapters`` (all if ``None``) in toc order, refusing unknown ones."""
    if chapters is None:
        return list(stems)
    if isinstance(chapters, str):
        chapters = [chapters]
    unknown = [c for c in chapters if c not in stems]
    if unknown:
        raise ValueError(f"chapters: {unknown} not in _toc.yml; chapters: {stems}")
    return [s for s in stems if s in set(chapters)]


def _require_executed(folder: Path, reused: list[str]) -> None:
    """Refuse to build with chapters that are neither run now nor executed before."""
    stale = [s for s in reused if not (folder / CHAPTER_DIR / f"{s}.ipynb").is_file()]
    if stale:
        raise FileNotFoundError(
            f"chapters: {stale} have no executed copy in {folder / CHAPTER_DIR}; run them too"
        )


def _execute_all(prepared: list[_Prepared], profile: str, folder: Path, sources: Path, *,
                 timeout, progress_bar: bool) -> None:
    """Run the chapters in order; on any failure the staged ``sources`` are removed."""
    from tqdm.auto import tqdm

    bar = tqdm(prepared, desc=f"book ({profile})", unit="chapter", disable=not progress_bar)
    try:
        for prep in bar:
            bar.set_postfix_str(prep.stem)
            _execute(prep, profile, folder, timeout=timeout, progress_bar=progress_bar)
    except BaseException:
        shutil.rmtree(sources, ignore_errors=True)
        raise
    finally:
        bar.close()


def build_book(
    profile: str = "quick",
    artifacts_dir: str | os.PathLike | None = None,
    output_dir: str | os.PathLike | None = None,
    chapters: list[str] | None = None,
    *,
    book_root: str | os.PathLike | None = None,
    timeout: float | None = None,
    progress_bar: bool = True,
    repository: str | None = None,
) -> Path:
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
        Stems of the chapters to execute; ``None`` runs all of them. The others must have been
        executed before under the same profile (their executed copies are reused).
    book_root
        Folder with ``_toc.yml``, ``_config.yml``, ``book/`` and ``notebooks/`` (default: found
        from the working directory, see :func:`find_book_root`).
    timeout
        Per-cell time limit in seconds for every chapter.
    progress_bar
        Show progress bars.
    repository
        URL of the published repository (default ``$MNISTND_REPOSITORY_URL``; ``""``: none),
        see :func:`repository_url` and :func:`staged_config`. Without one, the book has no
        repository, Binder or Thebe buttons.

    Returns
    -------
    pathlib.Path
        The HTML folder (open ``index.html``).

    Raises
    ------
    ValueError, FileNotFoundError, PermissionError
        Bad input, before any chapter runs.
    ChapterError
        A chapter failed (named, with its cell).
    RuntimeError
        ``jupyter-book build -W`` failed (warnings are errors); the message holds its log tail.
    """
    check_profile(profile)
    timeout = _check_timeout(timeout)
    root = Path(book_root).resolve() if book_root is not None else find_book_root()
    if not (root / "_toc.yml").is_file() or not (root / "_config.yml").is_file():
        raise FileNotFoundError(f"book_root: {str(root)!r} has no _toc.yml and _config.yml")
    snapshot = {name: (root / name).read_bytes() for name in ("_config.yml", "_toc.yml")}
    snapshot["_config.yml"] = staged_config(snapshot["_config.yml"], repository_url(repository))
    entries = _parse_toc(snapshot["_toc.yml"], root / "_toc.yml")
    missing = [e for e in entries if _source_of(root, e) is None]
    if missing:
        raise FileNotFoundError(f"_toc.yml lists files that do not exist in {root}: {missing}")
    stems = [e.split("/", 1)[1] for e in entries if _is_chapter(e)]
    to_run = _select_chapters(stems, chapters)
    out = Path(output_dir).expanduser().resolve() if output_dir is not None \
        else root / "_build" / "html"
    settings.ensure_writable_dir(out.parent, "output_dir")
    folder = _profile_dir(_artifacts_root(artifacts_dir), profile)
    _require_executed(folder, [s for s in stems if s not in to_run])
    # check every chapter's parameters before the first one runs
    prepared = [_prepare(_source_of(root, f"{CHAPTER_DIR}/{s}"), None, profile) for s in to_run]
    sources = _stage_sources(root, folder, entries, snapshot)
    _execute_all(prepared, profile, folder, sources, timeout=timeout, progress_bar=progress_bar)
    stage = _stage(sources, folder, entries)
    html = _jupyter_book(stage, folder)
    _launch_sources(html, stems)
    _attach_downloads(html, folder, profile)
    _replace_dir(html, out)
    return out


#: Where the built MNIST-Nd datasets are offered for download, relative to the HTML root
#: (book/datasets.md links here).
DOWNLOADS_DIR = "downloads/mnistnd"


def _attach_downloads(html: Path, folder: Path, profile: str) -> None:
    """Export the profile's MNIST-Nd datasets into the HTML tree, with an index page.

    The files are build products of the m-VAE chapter, so they cannot be pages of the book:
    they are exported after the HTML build (``mnistnd.datasets.export``: ``.h5ad``,
    ``.csv.gz`` and ``manifest.json`` with sha256) and listed in ``index.html``. Without
    datasets the index says which chapter makes them.
    """
    from html import escape

    from mnistnd import datasets

    out = html / DOWNLOADS_DIR
    out.mkdir(parents=True, exist_ok=True)
    if datasets.available_dims(folder):
        datasets.export(artifacts_dir=folder, out_dir=out)
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["datasets"]
        rows = "".join(
            f"<tr><td><a href='{escape(e['file'])}'>{escape(e['file'])}</a></td>"
            f"<td>{e['latent_dim']}</td><td>{e['n_samples']}</td><td>{e['bytes']:,}</td>"
            f"<td><code>{escape(e['sha256'])}</code></td></tr>"
            for e in manifest
        )
        body = (f"<p>Profile <b>{escape(profile)}</b>: every file, its latent dimension, "
                "number of test images, size in bytes and sha256 "
                "(also in <a href='manifest.json'>manifest.json</a>).</p>"
                "<table><tr><th>file</th><th>d</th><th>samples</th><th>bytes</th>"
                f"<th>sha256</th></tr>{rows}</table>")
    else:
        body = ("<p>This build holds no MNIST-Nd datasets: they are written by the chapter "
                "<code>notebooks/mvae_training.md</code> (<code>mnistnd run "
                "mvae_training</code>).</p>")
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
            "<title>MNIST-Nd datasets: downloads</title></head><body>"
            f"<h1>MNIST-Nd datasets</h1>{body}"
            "<p><a href='../../book/datasets.html'>What the files contain</a></p></body></html>")
    (out / "index.html").write_text(page, encoding="utf-8")


def _launch_sources(html: Path, stems: list[str]) -> None:
    """Point Binder launch links at the chapter sources in the repository.

    The theme builds them from the file the page was rendered from, the executed ``.ipynb``,
    which is a build product and not in the repository; the source there is the jupytext
    ``.md`` (which Jupyter opens as a notebook when jupytext is installed, as it is here).
    """
    for stem in stems:
        page = html / CHAPTER_DIR / f"{stem}.html"
        if page.is_file():
            text = page.read_text(encoding="utf-8")
            fixed = text.replace(f"tree/{CHAPTER_DIR}/{stem}.ipynb",
                                 f"tree/{CHAPTER_DIR}/{stem}.md")
            if fixed != text:
                page.write_text(fixed, encoding="utf-8")


def _jupyter_book(stage: Path, folder: Path) -> Path:
    build_parent = folder
    shutil.rmtree(build_parent / "_build", ignore_errors=True)
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
           "build", str(stage), "--path-output", str(build_parent),
           "-W", "--keep-going", "--all", "--builder", "html"]
    proc = subprocess.run(cmd, cwd=str(stage), capture_output=True, text=True)
    log = folder / "jupyter-book.log"
    log.write_text(proc.stdout + "\n" + proc.stderr, encoding="utf-8")
    html = build_parent / "_build" / "html"
    if proc.returncode != 0 or not (html / "index.html").is_file():
        tail = "\n".join((proc.stdout + "\n" + proc.stderr).strip().splitlines()[-40:])
        warnings = [ln for ln in (proc.stdout + proc.stderr).splitlines()
                    if "WARNING" in ln or "ERROR" in ln]
        shown = "\n".join(warnings[:30]) if warnings else tail
        raise RuntimeError(
            f"jupyter-book build -W failed (exit {proc.returncode}); full log: {log}\n{shown}"
        )
    return html


# --------------------------------------------------------------------------------------------
# what chapters display
# --------------------------------------------------------------------------------------------

BANNER_TITLE = "Data source"


def source_banner_markdown(*infos: dict) -> str:
    """MyST markdown of the data-source banner shown at the top of a chapter.

    Parameters
    ----------
    *infos
        One or more dicts from :func:`mnistnd.data.source_info` (``dataset``, ``source``,
        ``requested``, ``files`` with ``name``/``sha256``/``bytes``, ``note``).

    Returns
    -------
    str
        An admonition (a warning when a bundled sample replaces the full data) with the note and
        a table of the files and their sha256 checksums.
    """
    if not infos:
        raise ValueError("infos: give at least one source_info dict")
    blocks = []
    for info in infos:
        if not isinstance(info, dict) or not {"dataset", "source"} <= set(info):
            raise TypeError(f"infos: expected dicts from mnistnd.data.source_info, got {info!r}")
        bundled = info["source"] not in ("full", "release")
        lines = [
            f":::{{admonition}} {BANNER_TITLE}: {info['dataset']} ({info['source']})",
            f":class: {'warning' if bundled else 'note'}",
            "",
            f"{info.get('note', '')} Requested `source={info.get('requested', info['source'])!r}`."
            + (" **A bundled sample is not the full dataset: numbers differ from the paper's.**"
               if bundled else ""),
            "",
        ]
        files = info.get("files") or []
        if files:
            lines += ["| file | bytes | sha256 |", "|---|---:|---|"]
            lines += [f"| `{f['name']}` | {f['bytes']:,} | `{f['sha256']}` |" for f in files]
        lines.append(":::")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def source_banner(*infos: dict):
    """Display object of :func:`source_banner_markdown` (end a notebook cell with it)."""
    from IPython.display import Markdown

    return Markdown(source_banner_markdown(*infos))
