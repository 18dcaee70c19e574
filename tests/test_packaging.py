"""Every third-party module the package and the chapters import is declared in pyproject.toml."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _declared() -> dict[str, set[str]]:
    """Normalised distribution names per group: ``core`` and each optional extra."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"core": project["dependencies"], **project["optional-dependencies"]}
    return {g: {_norm(re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0]) for spec in specs}
            for g, specs in groups.items()}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imports(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _notebook_code(path: Path) -> str:
    blocks = re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", path.read_text(), flags=re.S)
    # drop each cell's YAML options block, its `:tag:` lines and IPython magics
    blocks = [re.sub(r"\A---\n.*?\n---\n", "", b, flags=re.S) for b in blocks]
    return "\n".join(line for b in blocks for line in b.splitlines()
                     if not line.lstrip().startswith(("%", "!", ":")))


def _third_party(names: set[str]) -> set[str]:
    return {n for n in names if n not in sys.stdlib_module_names and n != "mnistnd"}


def _missing(sources: list[str], allowed: set[str]) -> dict[str, list[str]]:
    dists = packages_distributions()
    missing = {}
    for module in sorted(_third_party(set().union(*map(_imports, sources)))):
        provided = {_norm(d) for d in dists.get(module, [])}
        if not provided & allowed:
            missing[module] = sorted(provided) or ["<not installed>"]
    return missing


#: Imports a chapter guards with ``try/except ImportError`` and says what it skips without them.
OPTIONAL_IN_CHAPTERS = {
    "clustpy": "the DISCO reference comparison is skipped (with a note) without clustpy",
}


def test_package_imports_are_declared():
    declared = _declared()
    allowed = set().union(*declared.values())  # optional imports are guarded by an extra
    sources = [p.read_text() for p in (ROOT / "mnistnd").rglob("*.py")]
    assert _missing(sources, allowed) == {}


@pytest.mark.skipif(not (ROOT / "notebooks").is_dir(), reason="no chapters in this checkout")
def test_chapter_imports_are_declared():
    declared = _declared()
    allowed = declared["core"] | declared.get("book", set()) | declared.get("dask", set())
    sources = [_notebook_code(p) for p in sorted((ROOT / "notebooks").glob("*.md"))]
    missing = _missing(sources, allowed)
    for module in OPTIONAL_IN_CHAPTERS:
        missing.pop(module, None)
    assert missing == {}


def test_one_python_requirement():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"].startswith(">=")
    ci = (ROOT / "binder" / "environment.yml")
    if ci.is_file():
        assert "python" in ci.read_text()
