"""The student edition of the book: chapters without solutions, with check cells.

Chapters state their exercises with ``{exercise}`` directives and their solutions with
``{solution}`` (text only) or the gated pair ``{solution-start}`` / ``{solution-end}``, which may
enclose code cells (sphinx-exercise). :func:`student_notebook` turns one chapter into a notebook
for students:

* every solution is removed: the ``{solution}`` blocks, and everything from a
  ``{solution-start}`` to its ``{solution-end}``, code cells included;
* every ``{exercise}`` becomes plain markdown (``**Exercise <label>.**`` and its text), since
  Jupyter does not render Sphinx directives;
* after each exercise with a computable answer (:data:`mnistnd.exercises.EXERCISES`) comes a
  code cell that checks ``answer`` with :func:`mnistnd.exercises.check`, tagged
  ``exercise-check`` and with ``metadata.mnistnd_exercise`` = the label (read back by
  :func:`mnistnd.exercises.grade`).

:func:`write_edition` writes the chapters (``.ipynb`` or MyST ``.md``) and a README into a new
folder; ``mnistnd classroom`` is its command line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from mnistnd import exercises

__all__ = ["CHECK_TAG", "strip_solutions", "student_notebook", "write_edition"]

#: Tag of the check cells of the student edition.
CHECK_TAG = "exercise-check"
_FORMATS = ("ipynb", "md")
_FENCE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[A-Za-z0-9_-]+)\}\s*(?P<arg>.*)$")
_SOLUTION_DIRECTIVES = ("solution", "solution-start", "solution-end")

_README = """# Student edition: {n} chapters

Each notebook is a chapter of the MNIST-Nd compendium with the solutions of its exercises
removed. Run a chapter from top to bottom first (the exercises use its variables), for example

    mnistnd run {example} --profile smoke

or open it in Jupyter and run all cells. An exercise with a computable answer is followed by a
check cell: replace `answer = None` by your answer and run the cell; it says whether the
answer is correct, or gives a hint. The other exercises ask for an explanation in a markdown
cell.

Checkable exercises: {labels}.
"""


@dataclass
class _State:
    """Whether the cells being read lie between a solution-start and its solution-end."""

    in_solution: bool = False


def _block(lines: list[str], start: int, fence: str) -> tuple[list[str], int]:
    """Lines of a directive body from ``start`` to its closing fence, and the index after it."""
    for i in range(start, len(lines)):
        if lines[i].strip() == fence:
            return lines[start:i], i + 1
    raise ValueError(f"directive opened with {fence!r} is never closed")


def _exercise_markdown(body: list[str]) -> tuple[str, str]:
    """``(label, markdown)`` of an ``{exercise}`` body: options dropped, a bold title added."""
    label, i = "", 0
    while i < len(body) and body[i].startswith(":"):
        match = re.match(r":label:\s*(\S+)", body[i])
        label = match.group(1) if match else label
        i += 1
    text = "\n".join(body[i:]).strip("\n")
    return label, f"**Exercise {label}.**\n\n{text}" if label else f"**Exercise.**\n\n{text}"


def _split_markdown(source: str, state: _State) -> list[tuple[str, str]]:
    """Markdown without solutions, as ``("md", text)`` pieces and ``("exercise", label)`` marks."""
    out: list[tuple[str, str]] = []
    kept: list[str] = []
    lines = source.split("\n")
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i].strip())
        if not match:
            if not state.in_solution:
                kept.append(lines[i])
            i += 1
            continue
        name = match["name"]
        body, after = _block(lines, i + 1, match["fence"])
        if name == "solution-end":
            state.in_solution = False
        elif name == "solution-start":
            state.in_solution = True
        elif name == "exercise" and not state.in_solution:
            label, text = _exercise_markdown(body)
            kept.append(text)
            out += [("md", "\n".join(kept)), ("exercise", label)]
            kept = []
        elif name not in _SOLUTION_DIRECTIVES and not state.in_solution:
            kept += lines[i:after]
        i = after
    out.append(("md", "\n".join(kept)))
    return out


def _check_cell(label: str):
    import nbformat

    ex = exercises.EXERCISES[label]
    source = (f"# Exercise {label}: replace None by your answer ({ex.answer}), then run the "
              f"cell.\nfrom mnistnd import exercises\n\nanswer = None\n"
              f"{exercises.check_call(label)}")
    return nbformat.v4.new_code_cell(source, metadata={"tags": [CHECK_TAG],
                                                       "mnistnd_exercise": label})


def strip_solutions(nb, *, check_cells: bool = True):
    """Return a copy of ``nb`` without solutions, with plain exercises and check cells.

    Parameters
    ----------
    nb : nbformat.NotebookNode
        A chapter read with jupytext (MyST markdown cells keep their directives).
    check_cells : bool, default True
        Add a check cell after every exercise registered in :mod:`mnistnd.exercises`.

    Returns
    -------
    nbformat.NotebookNode
        The student's notebook (outputs of the kept code cells are cleared).

    Raises
    ------
    ValueError
        A directive is never closed, or a ``{solution-start}`` has no ``{solution-end}``.
    """
    import copy

    import nbformat

    state, cells = _State(), []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            if not state.in_solution:
                kept = copy.deepcopy(cell)
                if kept.cell_type == "code":
                    kept.outputs, kept.execution_count = [], None
                cells.append(kept)
            continue
        for kind, value in _split_markdown(cell.source, state):
            if kind == "md" and value.strip():
                cells.append(nbformat.v4.new_markdown_cell(value.strip("\n")))
            elif kind == "exercise" and check_cells and value in exercises.EXERCISES:
                cells.append(_check_cell(value))
    if state.in_solution:
        raise ValueError("a {solution-start} block has no {solution-end}")
    out = copy.deepcopy(nb)
    out.cells = cells
    return out


def student_notebook(path: str | os.PathLike):
    """Read a chapter (MyST ``.md``) and return its student version (:func:`strip_solutions`)."""
    import jupytext

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"chapter: {str(path)!r} does not exist")
    nb = jupytext.read(path, fmt="md:myst")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return strip_solutions(nb)


def _chapters(root: Path, chapters) -> list[Path]:
    """Chapter sources in toc order; unknown names raise before anything is written."""
    from mnistnd.book import toc_chapters

    known = [s for s in toc_chapters(root) if (root / "notebooks" / f"{s}.md").is_file()]
    if chapters is None:
        chosen = known
    else:
        names = [Path(str(c)).stem for c in chapters]
        unknown = [c for c in names if c not in known]
        if unknown or not names:
            raise ValueError(f"chapters: unknown {unknown or '(none given)'}; choose from "
                             f"{', '.join(known)}")
        chosen = [s for s in known if s in names]
    return [root / "notebooks" / f"{s}.md" for s in chosen]


def _check_out(out: Path) -> None:
    if out.exists():
        if not out.is_dir():
            raise NotADirectoryError(f"out: {str(out)!r} exists and is not a directory")
        if any(out.iterdir()):
            raise FileExistsError(f"out: {str(out)!r} is not empty; give a new or empty folder")


def write_edition(out: str | os.PathLike, chapters=None, *, fmt: str = "ipynb",
                  book_root: str | os.PathLike | None = None) -> list[Path]:
    """Write the student edition of the chapters into the new folder ``out``.

    Parameters
    ----------
    out : path
        Output folder; must not exist yet or be empty.
    chapters : list of str, optional
        Chapter names (``data``) or sources (``notebooks/data.md``); default every chapter of
        ``_toc.yml``.
    fmt : {"ipynb", "md"}
        Notebook format of the written chapters (``md``: jupytext MyST markdown).
    book_root : path, optional
        Repository root (default: found from the working directory).

    Returns
    -------
    list of pathlib.Path
        The chapters written, in toc order, then ``README.md``.

    Raises
    ------
    ValueError, FileExistsError, NotADirectoryError
        Unknown chapter or format, or an output folder that exists and is not empty; checked
        before anything is written.
    """
    import jupytext

    from mnistnd.book import find_book_root

    if fmt not in _FORMATS:
        raise ValueError(f"fmt: {fmt!r} is not one of {_FORMATS}")
    root = Path(book_root) if book_root is not None else find_book_root()
    sources = _chapters(root, chapters)
    out = Path(out).expanduser()
    _check_out(out)
    editions = {src.stem: student_notebook(src) for src in sources}  # all parsed before writing
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, nb in editions.items():
        path = out / f"{stem}.{fmt}"
        jupytext.write(nb, path, fmt="ipynb" if fmt == "ipynb" else "md:myst")
        written.append(path)
    checkable = [lab for stem in editions for lab in exercises.labels(stem)]
    readme = out / "README.md"
    readme.write_text(_README.format(n=len(editions), example=written[0].name if written else "",
                                     labels=", ".join(checkable) or "none"), encoding="utf-8")
    return [*written, readme]
