"""Exercises: the check registry, the student edition, and the solutions under ``smoke``.

The fast tests use small synthetic inputs. The slow ones execute a few chapters under the
``smoke`` profile (their solution cells included) and require every check of those chapters to
accept the chapter's own solution; ``tests/test_book.py`` executes the other chapters with the
whole book. ``MNISTND_EXERCISE_CHAPTERS=all`` (or a comma-separated list) runs more here.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import anndata
import nbformat
import numpy as np
import pandas as pd
import pytest

from mnistnd import classroom, embedding, exercises
from mnistnd.book import read_notebook, run_notebook, toc_chapters
from mnistnd.cli import main
from mnistnd.plotting.validity import toy_partitions

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = toc_chapters(ROOT)
_EXERCISE = re.compile(r"```\{exercise\}\n:label: (\S+)")
_SOLUTION = re.compile(r"```+\{solution(?:-start)?\} (\S+)\n:class: dropdown")


def _source(stem: str) -> str:
    return (ROOT / "notebooks" / f"{stem}.md").read_text(encoding="utf-8")


# --- the exercises in the chapters ---------------------------------------------------------


@pytest.mark.parametrize("stem", CHAPTERS)
def test_every_exercise_is_labelled_numbered_and_solved(stem):
    text = _source(stem)
    found = _EXERCISE.findall(text)
    prefix = exercises.PREFIXES[stem]
    assert found, f"{stem}: no {{exercise}} directives"
    assert found == [f"{prefix}-{i}" for i in range(1, len(found) + 1)], found
    assert _SOLUTION.findall(text) == found, f"{stem}: each exercise needs one hidden solution"
    assert text.count("{solution-start}") == text.count("{solution-end}")
    assert set(exercises.labels(stem)) <= set(found)


def test_registry_chapters_and_prefixes():
    assert set(exercises.PREFIXES) == set(CHAPTERS)
    for label, ex in exercises.EXERCISES.items():
        assert label.startswith(exercises.PREFIXES[ex.chapter] + "-")
        assert ex.answer and ex.hint


# --- check() on synthetic inputs -----------------------------------------------------------


def _blobs(n: int, dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 4
    return rng.normal(size=(n, dim)) + 6.0 * np.eye(4, dim)[y], y


def _synthetic_inputs() -> dict:
    rng = np.random.default_rng(0)
    images = (rng.random((200, 784)) < 0.2).astype(np.float32)
    images[:, :30] = 0.0
    digits = np.arange(200) % 10
    X, y = _blobs(120, 5)
    ad = anndata.AnnData(X.astype(np.float32), obs=pd.DataFrame(
        {"digit": y, "component": (y + (np.arange(120) % 7 == 0)) % 4},
        index=[str(i) for i in range(120)]))
    X_toy, parts = toy_partitions(50, seed=0)  # DCSI needs > 2 * 20 points per cluster
    X_peaks, _ = _blobs(80, 3, seed=1)
    return {
        "data-2": {"X": images, "y": digits},
        "data-4": {"X": images},
        "mvae-4": {"rows": [{"latent_dim": d, "ratio": r} for d, r in ((2, 0.1), (8, 0.4),
                                                                        (64, 0.2))]},
        "embedding-2": {"data": {5: (X, y)}},
        "embedding-4": {"datasets": {5: ad}},
        "clustering-2": {"X": _blobs(200, 8)[0]},
        "ari-1": {"x_labels": np.repeat([0, 1, 2], 4), "y_labels": np.array(
            [0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2])},
        "ari-2": {},
        "cvi-2": {"X": X_toy, "labels": parts["true shapes"]},
        "dp-1": {"sweep": embedding.density_peaks_sweep({3: X_peaks}, [1.0, 5.0],
                                                        progress=False)},
        "moe-2": {"y": digits, "batch_size": 32},
        "moe-5": {"truth": digits, "clusterings": {"a": digits % 5, "b": digits}},
    }


@pytest.fixture(scope="module")
def synthetic():
    inputs = _synthetic_inputs()
    assert set(inputs) == set(exercises.EXERCISES), "give every registered exercise an input"
    return inputs


def _wrong(expected):
    """A wrong answer of the right form."""
    if isinstance(expected, str):
        return "DCSI" if expected == "DISCO" else "DISCO"
    if isinstance(expected, tuple):
        return ((expected[0] + 1) % 28, expected[1])
    if isinstance(expected, dict):
        first = next(iter(expected))
        return {**expected, first: expected[first] + 1}
    return expected + 1


@pytest.mark.parametrize("label", list(exercises.EXERCISES))
def test_check_accepts_the_reference_and_rejects_a_wrong_answer(synthetic, label):
    inputs = synthetic[label]
    expected = exercises.EXERCISES[label].reference(**inputs)
    assert exercises.check(label, expected, **inputs)
    result = exercises.check(label, _wrong(expected), **inputs)
    assert not result and "Hint:" in str(result)
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        assert f"{expected}" not in str(result)


@pytest.mark.parametrize(("label", "answer", "words"), [
    ("ari-1", [0.1, 0.2], ["expects a single number", "list of length 2"]),
    ("ari-1", "0.3", ["expects a single number", "text"]),
    ("ari-1", float("nan"), ["finite"]),
    ("data-4", 3.5, ["whole number"]),
    ("data-2", (3, 40), ["coordinates in 0 .. 27"]),
    ("data-2", "top", ["(row, column) pair"]),
    ("cvi-2", 2, ["one of", "DISCO"]),
    ("cvi-2", "DBCV", ["one of"]),
    ("embedding-4", [0.1], ["expects a dict"]),
    ("embedding-4", {7: 0.1}, ["missing [5]", "unexpected"]),
    ("embedding-4", {5: "high"}, ["a number for key 5"]),
])
def test_wrong_shape_gives_a_message_not_a_traceback(synthetic, label, answer, words):
    result = exercises.check(label, answer, **synthetic[label])
    assert not result
    for word in words:
        assert word in str(result), str(result)


def test_no_answer_yet_and_pandas_answers(synthetic):
    result = exercises.check("ari-2", None)
    assert not result and "no answer yet" in str(result)
    inputs = synthetic["embedding-4"]
    expected = exercises.EXERCISES["embedding-4"].reference(**inputs)
    assert exercises.check("embedding-4", pd.Series(expected), **inputs)
    assert exercises.check("ari-2", np.float64(exercises._rand_baseline()))
    assert exercises.check("ari-2", np.array(exercises._rand_baseline()))


def test_check_refuses_unknown_labels_and_inputs():
    with pytest.raises(ValueError, match="not a checkable exercise"):
        exercises.check("ari-99", 1.0)
    with pytest.raises(ValueError, match="missing \\['y_labels'\\]"):
        exercises.check("ari-1", 1.0, x_labels=[0, 1])
    with pytest.raises(ValueError, match="unexpected \\['z'\\]"):
        exercises.check("ari-2", 1.0, z=1)


def test_reference_follows_the_data():
    """The expected value is recomputed: other data, other answer."""
    x = np.repeat([0, 1, 2], 4)
    y = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2])
    first = exercises.EXERCISES["ari-1"].reference(x_labels=x, y_labels=y)
    second = exercises.EXERCISES["ari-1"].reference(x_labels=x, y_labels=y[::-1].copy())
    assert first != second
    assert not exercises.check("ari-1", first, x_labels=x, y_labels=y[::-1].copy())


# --- the student edition -------------------------------------------------------------------


def _solution_code(stem: str) -> list[str]:
    """Lines of code only found between a solution-start and its solution-end."""
    gated = re.compile(r"\{solution-start\}(.*?)\{solution-end\}", re.S)
    outside = gated.sub("", _source(stem))
    lines = []
    for block in gated.findall(_source(stem)):
        for cell in re.findall(r"```\{code-cell\} ipython3\n(.*?)\n```", block, re.S):
            lines += [ln.strip() for ln in cell.splitlines()
                      if len(ln.strip()) > 25 and ln.strip() not in outside]
    assert lines or "{solution-start}" not in _source(stem)
    return lines


@pytest.mark.parametrize("stem", CHAPTERS)
def test_student_notebook_has_no_solutions_and_one_check_per_checkable_exercise(stem):
    nb = classroom.student_notebook(ROOT / "notebooks" / f"{stem}.md")
    text = "\n".join(c.source for c in nb.cells)
    assert "{solution" not in text and ":class: dropdown" not in text
    checks = [c for c in nb.cells if classroom.CHECK_TAG in c.metadata.get("tags", [])]
    not_checks = "\n".join(c.source for c in nb.cells if c not in checks)
    for line in _solution_code(stem):
        assert line not in not_checks, f"{stem}: solution code left in: {line!r}"
    assert [c.metadata["mnistnd_exercise"] for c in checks] == exercises.labels(stem)
    for cell in checks:
        assert exercises.check_call(cell.metadata["mnistnd_exercise"]) in cell.source
        assert "answer = None" in cell.source
    n_exercises = len(_EXERCISE.findall(_source(stem)))
    assert text.count("**Exercise ") == n_exercises
    # everything outside the exercises is kept: same code cells as the chapter, less solutions
    chapter_code = [c for c in read_notebook(ROOT / "notebooks" / f"{stem}.md").cells
                    if c.cell_type == "code"]
    kept = [c for c in nb.cells if c.cell_type == "code" and c not in checks]
    assert [c.source for c in kept] == [c.source for c in chapter_code][:len(kept)]


def test_strip_solutions_refuses_an_open_solution():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "```{solution-start} x-1\n:class: dropdown\n```\ntext")])
    with pytest.raises(ValueError, match="no \\{solution-end\\}"):
        classroom.strip_solutions(nb)
    nb.cells[0].source = "```{exercise}\n:label: x-1\nnever closed"
    with pytest.raises(ValueError, match="never closed"):
        classroom.strip_solutions(nb)


def test_classroom_command_writes_the_edition(tmp_path, capsys):
    out = tmp_path / "student"
    assert main(["classroom", "--out", str(out), "--chapters", "appendix_ari", "data"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "appendix_ari.ipynb",
                                                      "data.ipynb"]
    nb = nbformat.read(out / "appendix_ari.ipynb", as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert [c.metadata.get("mnistnd_exercise") for c in nb.cells
            if c.metadata.get("mnistnd_exercise")] == exercises.labels("appendix_ari")
    assert "ari-1" in (out / "README.md").read_text()
    assert "student edition written" in capsys.readouterr().out


def test_classroom_markdown_format(tmp_path):
    written = classroom.write_edition(tmp_path / "md", ["appendix_ari"], fmt="md",
                                      book_root=ROOT)
    nb = read_notebook(written[0])
    assert any(classroom.CHECK_TAG in c.metadata.get("tags", []) for c in nb.cells)


def test_classroom_refuses_an_unknown_chapter(tmp_path, capsys):
    out = tmp_path / "student"
    assert main(["classroom", "--out", str(out), "--chapters", "data", "nonsense"]) == 2
    err = capsys.readouterr().err
    assert "unknown ['nonsense']" in err and "appendix_ari" in err
    assert not out.exists(), "nothing may be written on bad input"


def test_classroom_refuses_a_non_empty_or_file_output(tmp_path, capsys):
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    assert main(["classroom", "--out", str(full)]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert sorted(p.name for p in full.iterdir()) == ["notes.txt"]
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["classroom", "--out", str(afile)]) == 2
    assert "not a directory" in capsys.readouterr().err
    with pytest.raises(ValueError, match="fmt"):
        classroom.write_edition(tmp_path / "new", fmt="pdf", book_root=ROOT)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert classroom.write_edition(empty, ["appendix_ari"], book_root=ROOT)


def test_grade_reads_check_cells():
    nb = classroom.student_notebook(ROOT / "notebooks" / "appendix_ari.md")
    checks = [c for c in nb.cells if c.metadata.get("mnistnd_exercise")]
    passed = exercises.Result("ari-1", True, "")
    checks[0].outputs = [nbformat.v4.new_output(
        "execute_result", data={"text/plain": repr(passed)}, execution_count=1)]
    table = exercises.grade(nb)
    assert list(table["status"]) == ["correct", "not run"]
    failed = exercises.check("ari-2", 0.0)
    checks[1].outputs = [nbformat.v4.new_output(
        "execute_result", data={"text/plain": repr(failed)}, execution_count=2)]
    assert list(exercises.grade(nb)["status"]) == ["correct", "not correct yet"]
    checks[1].outputs = [nbformat.v4.new_output("error", ename="NameError", evalue="x",
                                                 traceback=[])]
    assert exercises.grade(nb).loc[1, "status"] == "error"


# --- the solutions, executed under smoke (slow) ---------------------------------------------


def _slow_chapters() -> list[str]:
    chosen = os.environ.get("MNISTND_EXERCISE_CHAPTERS", "")
    if chosen == "all":
        return CHAPTERS
    if chosen:
        return [c.strip() for c in chosen.split(",") if c.strip()]
    return ["appendix_ari", "appendix_density_peaks"]  # the cheapest chapters with checks


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """Kernels without network, as in test_book; no real data: an empty data folder."""
    from smoke_book import KERNEL_GUARD, real_data_dir

    base = tmp_path_factory.mktemp("exercise_runs")
    guard = base / "kernel_guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(KERNEL_GUARD)
    with pytest.MonkeyPatch.context() as mp:
        path = os.environ.get("PYTHONPATH")
        mp.setenv("PYTHONPATH", str(guard) + (os.pathsep + path if path else ""))
        if not real_data_dir():
            mp.setenv("MNISTND_DATA_DIR", str(base / "no_data"))
        yield base


@pytest.fixture(scope="module")
def smoke_runs(kernel_env):
    """Execute the chosen chapters under smoke; a failure is kept for its chapter's test."""
    runs = {}
    for stem in _slow_chapters():
        try:
            runs[stem] = run_notebook(ROOT / "notebooks" / f"{stem}.md", profile="smoke",
                                      artifacts_dir=kernel_env / "runs", progress_bar=False)
        except Exception as err:  # noqa: BLE001 - reported by the test of the chapter
            runs[stem] = err
    return runs


def _outputs(cell) -> str:
    return "".join(o.get("data", {}).get("text/plain", "") if "data" in o else o.get("text", "")
                   for o in cell.get("outputs", []))


@pytest.mark.slow
@pytest.mark.parametrize("stem", _slow_chapters())
def test_solutions_run_under_smoke_and_pass_their_checks(smoke_runs, stem):
    result = smoke_runs[stem]
    if isinstance(result, Exception):
        pytest.fail(f"{stem} failed under smoke (solutions included):\n{result}")
    nb = nbformat.read(result, as_version=4)
    text = "\n".join(_outputs(c) for c in nb.cells if c.cell_type == "code")
    for label in exercises.labels(stem):
        assert f"[{label}] correct" in text, f"{stem}: the solution of {label} fails its check"


@pytest.mark.slow
def test_student_edition_runs_and_grades(tmp_path, kernel_env):
    """A student edition with one exercise answered executes, and grade() reads it."""
    out = tmp_path / "student"
    classroom.write_edition(out, ["appendix_ari"], book_root=ROOT)
    nb = nbformat.read(out / "appendix_ari.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("mnistnd_exercise") == "ari-1")
    cell.source = cell.source.replace(
        "answer = None", "moved = Y_labels.copy()\nmoved[-1] = 0\n"
        "answer = metrics.adjusted_rand(X_labels, moved)")
    nbformat.write(nb, out / "appendix_ari.ipynb")
    executed = run_notebook(out / "appendix_ari.ipynb", profile="smoke",
                            artifacts_dir=tmp_path / "runs", progress_bar=False)
    graded = exercises.grade(executed).set_index("label")["status"]
    assert graded.to_dict() == {"ari-1": "correct", "ari-2": "not correct yet"}
