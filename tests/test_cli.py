"""The ``mnistnd`` command and the runner: bad input refused early, failures named, overrides."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from mnistnd.book import (
    ChapterError,
    Parameter,
    ParameterError,
    build_book,
    notebook_parameters,
    parse_value,
    read_timings,
    run_notebook,
)
from mnistnd.book import params as params_module
from mnistnd.cli import main

ROOT = Path(__file__).resolve().parent.parent

HEADER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A tiny chapter

"""

PARAMS = """```{code-cell} ipython3
:tags: [parameters]

n_items: int = 3  # how many items
scale: float = 0.5  # a factor
names: list[str] = ["a", "b"]  # labels
dims: list[int] = [2, 4]  # dimensions
verbose: bool = False  # chatty
device: str | None = None  # torch device
artifacts_dir: str | None = None  # injected
profile: str = "quick"  # injected
```
"""


def write_chapter(folder: Path, stem: str, body: str) -> Path:
    path = folder / f"{stem}.md"
    path.write_text(HEADER + PARAMS + "\nSome text.\n\n" + body)
    return path


ECHO = """```{code-cell} ipython3
import json
print(json.dumps({"n_items": n_items, "scale": scale, "names": names, "dims": dims,
                  "verbose": verbose, "device": device, "profile": profile,
                  "artifacts_dir": artifacts_dir}))
```
"""

FAIL = """```{code-cell} ipython3
total = n_items * 2
```

More text.

```{code-cell} ipython3
ratio = total / 0  # this cell fails
print(ratio)
```

```{code-cell} ipython3
print("never reached")
```
"""


@pytest.fixture
def chapters(tmp_path):
    folder = tmp_path / "nb"
    folder.mkdir()
    return folder


def stdout_json(executed: Path) -> dict:
    nb = nbformat.read(executed, as_version=4)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                return json.loads(out["text"])
    raise AssertionError("no stdout in the executed notebook")


# ---------------------------------------------------------------- parsing values by declared type


@pytest.mark.parametrize(
    ("annotation", "text", "expected"),
    [
        ("int", "12", 12),
        ("int", "-3", -3),
        ("float", "1e-3", 1e-3),
        ("float", "2", 2.0),
        ("bool", "true", True),
        ("bool", "No", False),
        ("str", "bundled", "bundled"),
        ("list[int]", "2,4,8", [2, 4, 8]),
        ("list[int]", "[2, 4, 8]", [2, 4, 8]),
        ("list[int]", "16", [16]),
        ("list[float]", "0.5, 1", [0.5, 1.0]),
        ("list[str]", "kmeans,gmm", ["kmeans", "gmm"]),
        ("list[str]", "[kmeans, gmm]", ["kmeans", "gmm"]),
        ("list[str]", '["kmeans", "gmm"]', ["kmeans", "gmm"]),
        ("str | None", "None", None),
        ("str | None", "cuda", "cuda"),
        ("int | None", "null", None),
        ("list[float] | None", "none", None),
        ("bool", "0", False),
        ("int | None", "7", 7),
    ],
)
def test_parse_value(annotation, text, expected):
    value = parse_value(Parameter("x", annotation, None), text)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("annotation", "text"),
    [
        ("int", "1.5"),
        ("int", "ten"),
        ("float", "fast"),
        ("float", "nan"),
        ("bool", "maybe"),
        ("list[int]", "2,x,8"),
        ("list[int]", "[2, 4.5]"),
        ("list[int]", "2,,8"),
        ("int | None", "seven"),
        ("int", "None"),
    ],
)
def test_parse_value_refuses_wrong_type(annotation, text):
    with pytest.raises(ParameterError, match="parameter 'x' got .*(expects|empty)"):
        parse_value(Parameter("x", annotation, None), text)


def test_parameters_cell_is_read_with_types(chapters):
    declared = notebook_parameters(write_chapter(chapters, "tiny", ECHO))
    assert list(declared) == ["n_items", "scale", "names", "dims", "verbose", "device",
                              "artifacts_dir", "profile"]
    assert declared["device"].type_name == "str | None"
    assert declared["dims"].type_name == "list[int]"
    assert declared["dims"].default == [2, 4]
    assert declared["n_items"].help == "how many items"


# ---------------------------------------------------------------- bad input, before any work


def test_unknown_profile(chapters, tmp_path, capsys):
    nb = write_chapter(chapters, "tiny", ECHO)
    assert main(["run", str(nb), "--profile", "fast", "--artifacts-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "profile='fast'" in err and "smoke, quick, paper" in err
    assert not (tmp_path / "fast").exists()


def test_book_unknown_profile(capsys):
    assert main(["book", "--profile", "huge"]) == 2
    assert "profile='huge'" in capsys.readouterr().err


def test_undeclared_parameter_is_refused(chapters, tmp_path, capsys):
    nb = write_chapter(chapters, "tiny", ECHO)
    code = main(["run", str(nb), "-p", "n_item", "4", "--artifacts-dir", str(tmp_path / "a")])
    assert code == 2
    err = capsys.readouterr().err
    assert "'n_item'" in err and "declared: n_items, scale, names, dims, verbose, device" in err
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("name", ["artifacts_dir", "profile"])
def test_runner_parameters_cannot_be_set_with_p(chapters, tmp_path, capsys, name):
    nb = write_chapter(chapters, "tiny", ECHO)
    assert main(["run", str(nb), "-p", name, "x", "--artifacts-dir", str(tmp_path)]) == 2
    assert f"'{name}' is set by the runner" in capsys.readouterr().err


def test_wrong_type_is_refused(chapters, tmp_path, capsys):
    nb = write_chapter(chapters, "tiny", ECHO)
    code = main(["run", str(nb), "-p", "dims", "2,four", "--artifacts-dir", str(tmp_path / "a")])
    assert code == 2
    err = capsys.readouterr().err
    assert "parameter 'dims' got" in err and "expects int" in err and "list[int]" in err
    assert not (tmp_path / "a").exists()


def test_wrong_type_from_python_is_refused(chapters, tmp_path):
    nb = write_chapter(chapters, "tiny", ECHO)
    with pytest.raises(ParameterError, match="'n_items' got 2.5: expects int"):
        run_notebook(nb, {"n_items": 2.5}, artifacts_dir=tmp_path)
    with pytest.raises(ParameterError, match="'verbose' got 1: expects bool"):
        run_notebook(nb, {"verbose": 1}, artifacts_dir=tmp_path)


def test_parameter_given_twice(chapters, tmp_path, capsys):
    nb = write_chapter(chapters, "tiny", ECHO)
    argv = ["run", str(nb), "-p", "n_items", "1", "-p", "n_items", "2",
            "--artifacts-dir", str(tmp_path)]
    assert main(argv) == 2
    assert "'n_items' is given twice" in capsys.readouterr().err


def test_unwritable_artifacts_dir(chapters, tmp_path, capsys):
    nb = write_chapter(chapters, "tiny", ECHO)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert main(["run", str(nb), "--artifacts-dir", str(blocker)]) == 2
    assert "artifacts_dir" in capsys.readouterr().err
    assert main(["run", str(nb), "--artifacts-dir", str(blocker / "below")]) == 2
    assert "artifacts_dir" in capsys.readouterr().err


def test_missing_or_foreign_notebook(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.md")]) == 2
    assert "notebook:" in capsys.readouterr().err
    plain = tmp_path / "plain.md"
    plain.write_text("# just markdown\n")
    assert main(["run", str(plain)]) == 2
    assert "jupytext MyST header" in capsys.readouterr().err


def test_export_without_datasets_says_what_to_run(tmp_path, capsys):
    code = main(["export", "--artifacts-dir", str(tmp_path / "empty"), "--out",
                 str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert "mvae_training" in err and "mnistnd book --profile quick" in err


def test_params_lists_declared_parameters(capsys):
    assert main(["params", str(ROOT / "notebooks" / "data.md")]) == 0
    out = capsys.readouterr().out
    assert "n_per_digit" in out and "int" in out and "smoke" in out


def test_chapter_can_be_named_without_path(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the book root is found through the installed package
    assert main(["params", "data"]) == 0
    assert "n_per_digit" in capsys.readouterr().out
    assert main(["params", "no_such_chapter"]) == 2
    assert "no_such_chapter" in capsys.readouterr().err


# ---------------------------------------------------------------- execution (starts a kernel)


@pytest.mark.slow
def test_failing_cell_names_chapter_and_cell(chapters, tmp_path, capsys):
    nb = write_chapter(chapters, "tiny_fail", FAIL)
    code = main(["run", str(nb), "--profile", "smoke", "--artifacts-dir", str(tmp_path / "r"),
                 "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err
    # cells of the source: 0 title, 1 parameters, 2 text, 3 `total = ...`, 4 text, 5 failing
    assert "chapter 'tiny_fail'" in err
    assert "cell 5" in err
    assert "ratio = total / 0" in err
    assert "ZeroDivisionError" in err
    out_dir = tmp_path / "r" / "smoke" / "notebooks"
    assert not (out_dir / "tiny_fail.ipynb").exists()  # no half-written success
    assert (out_dir / "tiny_fail.failed.ipynb").is_file()
    assert not list(out_dir.glob(".*partial*"))
    rows = read_timings(tmp_path / "r" / "smoke")
    assert [(r["chapter"], r["status"]) for r in rows] == [("tiny_fail", "failed")]


@pytest.mark.slow
def test_chapter_error_from_python(chapters, tmp_path):
    nb = write_chapter(chapters, "tiny_fail", FAIL)
    with pytest.raises(ChapterError) as info:
        run_notebook(nb, profile="smoke", artifacts_dir=tmp_path, progress_bar=False)
    assert info.value.chapter == "tiny_fail"
    assert info.value.cell_index == 5


@pytest.mark.slow
def test_p_override_reaches_the_notebook(chapters, tmp_path, capsys):
    nb = write_chapter(chapters, "tiny", ECHO)
    argv = ["run", str(nb), "--profile", "paper", "--artifacts-dir", str(tmp_path / "r"),
            "-p", "n_items", "11", "-p", "dims", "8,16", "-p", "names", "x,y,z",
            "-p", "verbose", "true", "-p", "device", "cpu", "-p", "scale", "2", "--no-progress"]
    assert main(argv) == 0
    executed = tmp_path / "r" / "paper" / "notebooks" / "tiny.ipynb"
    assert f"executed notebook: {executed}" in capsys.readouterr().out
    seen = stdout_json(executed)
    assert seen == {"n_items": 11, "scale": 2.0, "names": ["x", "y", "z"], "dims": [8, 16],
                    "verbose": True, "device": "cpu", "profile": "paper",
                    "artifacts_dir": str((tmp_path / "r" / "paper").resolve())}
    rows = read_timings(tmp_path / "r" / "paper")
    assert rows[0]["status"] == "ok" and float(rows[0]["seconds"]) > 0
    assert json.loads(rows[0]["parameters"])["n_items"] == 11


# ---------------------------------------------------------------- the book command


def write_book(folder: Path, chapters: dict[str, str]) -> Path:
    (folder / "book").mkdir(parents=True)
    (folder / "notebooks").mkdir()
    (folder / "_config.yml").write_text("title: tiny\nexecute:\n  execute_notebooks: 'off'\n")
    (folder / "book" / "intro.md").write_text("# Intro\n")
    lines = ["format: jb-book", "root: book/intro", "chapters:"]
    for stem, body in chapters.items():
        write_chapter(folder / "notebooks", stem, body)
        lines.append(f"  - file: notebooks/{stem}")
    (folder / "_toc.yml").write_text("\n".join(lines) + "\n")
    return folder


def test_book_refuses_unknown_chapter(tmp_path):
    root = write_book(tmp_path / "b", {"tiny": ECHO})
    with pytest.raises(ValueError, match=r"chapters: \['nope'\] not in _toc.yml"):
        build_book(chapters=["nope"], book_root=root, artifacts_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_book_refuses_missing_toc_file(tmp_path):
    root = write_book(tmp_path / "b", {"tiny": ECHO})
    (root / "notebooks" / "tiny.md").unlink()
    with pytest.raises(FileNotFoundError, match="notebooks/tiny"):
        build_book(book_root=root, artifacts_dir=tmp_path / "r")


def test_book_refuses_undeclared_profile_value_before_running(tmp_path, monkeypatch):
    root = write_book(tmp_path / "b", {"tiny": ECHO, "tiny_two": ECHO})
    monkeypatch.setattr(params_module, "profile_parameters",
                        lambda stem, profile: {"unknown_knob": 1} if stem == "tiny_two" else {})
    with pytest.raises(ParameterError, match="'unknown_knob'.*tiny_two"):
        build_book(book_root=root, artifacts_dir=tmp_path / "r", progress_bar=False)
    assert not list((tmp_path / "r").rglob("*.ipynb"))  # nothing ran


def test_book_needs_executed_copies_of_skipped_chapters(tmp_path):
    root = write_book(tmp_path / "b", {"tiny": ECHO, "tiny_two": ECHO})
    with pytest.raises(FileNotFoundError, match=r"\['tiny_two'\] have no executed copy"):
        build_book(chapters=["tiny"], book_root=root, artifacts_dir=tmp_path / "r")


@pytest.mark.slow
def test_book_stops_at_failing_chapter(tmp_path):
    root = write_book(tmp_path / "b", {"tiny": ECHO, "tiny_fail": FAIL, "tiny_after": ECHO})
    out = tmp_path / "html"
    out.mkdir()
    (out / "index.html").write_text("previous build")
    with pytest.raises(ChapterError, match="chapter 'tiny_fail'.*cell 5") as info:
        build_book(profile="smoke", book_root=root, artifacts_dir=tmp_path / "r",
                   output_dir=out, progress_bar=False)
    assert "ZeroDivisionError" in str(info.value)
    executed = tmp_path / "r" / "smoke" / "notebooks"
    assert (executed / "tiny.ipynb").is_file()
    assert not (executed / "tiny_after.ipynb").exists()
    assert (out / "index.html").read_text() == "previous build"  # old HTML left intact


@pytest.mark.slow
def test_timeout_names_chapter_and_cell(chapters, tmp_path, capsys):
    nb = write_chapter(chapters, "tiny_slow", "```{code-cell} ipython3\nimport time\n"
                       "time.sleep(30)\n```\n")
    code = main(["run", str(nb), "--timeout", "2", "--artifacts-dir", str(tmp_path / "r"),
                 "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err
    assert "chapter 'tiny_slow'" in err and "cell 3" in err and "'import time'" in err
    assert "CellTimeoutError" in err
    assert not (tmp_path / "r" / "quick" / "notebooks" / "tiny_slow.ipynb").exists()


def test_bad_timeout_is_refused(chapters, capsys):
    nb = write_chapter(chapters, "tiny", ECHO)
    assert main(["run", str(nb), "--timeout", "0"]) == 2
    assert "--timeout must be > 0" in capsys.readouterr().err


def test_export_calls_datasets_export(tmp_path, monkeypatch, capsys):
    datasets = pytest.importorskip("mnistnd.datasets")
    calls = []

    def fake_export(artifacts_dir=None, out_dir=None):
        calls.append((Path(artifacts_dir), Path(out_dir)))
        return [Path(out_dir) / "mnist_2d.h5ad"]

    monkeypatch.setattr(datasets, "export", fake_export)
    (tmp_path / "r" / "paper").mkdir(parents=True)
    code = main(["export", "--profile", "paper", "--artifacts-dir", str(tmp_path / "r"),
                 "--out", str(tmp_path / "out")])
    assert code == 0
    assert calls == [((tmp_path / "r" / "paper").resolve(), tmp_path / "out")]
    assert "mnist_2d.h5ad" in capsys.readouterr().out


def test_export_refuses_file_as_output(tmp_path, capsys):
    (tmp_path / "r" / "quick").mkdir(parents=True)
    blocker = tmp_path / "out"
    blocker.write_text("a file")
    code = main(["export", "--artifacts-dir", str(tmp_path / "r"), "--out", str(blocker)])
    assert code == 2
    assert "--out" in capsys.readouterr().err


@pytest.mark.parametrize("timeout", [0, -5])
def test_library_refuses_bad_timeout_before_running(timeout, tmp_path):
    from mnistnd.book import build_book, run_notebook

    with pytest.raises(ValueError, match="timeout"):
        run_notebook(tmp_path / "never_read.md", timeout=timeout)
    with pytest.raises(ValueError, match="timeout"):
        build_book("smoke", artifacts_dir=tmp_path, timeout=timeout)
