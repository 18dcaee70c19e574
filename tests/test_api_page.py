"""The API reference page (``book/api.md``): which modules it documents, checked without a build.

The page names every module in an ``automodule`` directive (autodoc then documents its
``__all__``) and lists them in one ``autosummary`` table. These tests catch what would
otherwise surface only in the slow book build: a module that was renamed or moved (autodoc's
import error fails ``jupyter-book build -W``), a public module the page forgets, or an
``__all__`` naming something the module lacks. The rendered page is checked in
``tests/test_book.py`` on the smoke book; :func:`documented_fields` reads it.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import mnistnd

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "book" / "api.md"
#: top-level modules that are tooling of the book and the command line, not the library
TOOLING = {"book", "cli", "profiles", "moe_paper", "pbmc_paper", "classroom", "exercises"}


def automodules(text: str) -> list[str]:
    """Module names of the page's ``.. automodule::`` directives, in page order."""
    return re.findall(r"^\.\. automodule:: ([\w.]+)\s*$", text, flags=re.MULTILINE)


def autosummary_entries(text: str) -> list[str]:
    """Names listed in the page's ``.. autosummary::`` directives."""
    names = []
    for block in re.findall(r"^\.\. autosummary::\n((?:[ \t]*(?:\S.*)?\n)+?)```", text,
                            flags=re.MULTILINE):
        names += [ln.strip() for ln in block.splitlines()
                  if ln.strip() and not ln.strip().startswith(":")]
    return names


def documented_fields(html: str, fullname: str) -> dict[str, list[str]]:
    """Field lists of the object ``fullname`` on a page built by Sphinx.

    Returns ``{field: [names in bold]}``, e.g. ``{"Parameters": ["d", "version"], "Returns":
    [], "Raises": ["ValueError"]}``; empty when the page does not describe the object.
    """
    start = html.find(f'<dt class="sig sig-object py" id="{fullname}">')
    if start < 0:
        return {}
    end = html.find('<dt class="sig sig-object py"', start + 1)
    entry = html[start:end if end > 0 else len(html)]
    parts = re.split(r'<dt class="field-(?:odd|even)">([^<]+)<span class="colon">', entry)
    return {field: re.findall(r"<strong>([^<]+)</strong>", body.split("</dd>", 1)[0])
            for field, body in zip(parts[1::2], parts[2::2], strict=True)}


@pytest.fixture(scope="module")
def page() -> str:
    return PAGE.read_text(encoding="utf-8")


def test_every_documented_module_imports(page):
    names = automodules(page)
    assert names, "book/api.md has no automodule directive"
    for name in names:
        module = importlib.import_module(name)
        missing = [n for n in getattr(module, "__all__", ()) if not hasattr(module, n)]
        assert not missing, f"{name}.__all__ names what the module lacks: {missing}"


def test_autosummary_lists_the_sections(page):
    documented = set(automodules(page))
    listed = autosummary_entries(page)
    assert len(listed) == len(set(listed)), "a module listed twice in the autosummary table"
    assert set(listed) <= documented, (
        f"listed in the table but without a section: {set(listed) - documented}")
    top_level = {n for n in documented if n.count(".") == 1}
    assert top_level <= set(listed), (
        f"documented but missing from the table: {top_level - set(listed)}")


def test_every_public_module_is_documented(page):
    documented = set(automodules(page))
    public = {f"mnistnd.{m.name}" for m in pkgutil.iter_modules(mnistnd.__path__)
              if not m.name.startswith("_") and m.name not in TOOLING}
    missing = sorted(public - documented)
    assert not missing, (f"public modules missing from book/api.md: {missing}; add an "
                         "automodule section (or name them in TOOLING here if they are not "
                         "part of the library)")
    assert not documented & {f"mnistnd.{m}" for m in TOOLING}, "tooling on the API page"


def test_documented_fields_reads_sphinx_field_lists():
    html = ('<dl class="py function"><dt class="sig sig-object py" id="pkg.f">f</dt><dd>'
            '<dl class="field-list simple"><dt class="field-odd">Parameters<span class="colon">'
            ':</span></dt><dd class="field-odd"><ul class="simple"><li><p><strong>x</strong> '
            '(<em>int</em>) – x.</p></li><li><p><strong>**kwargs</strong> – more.</p></li>'
            '</ul></dd><dt class="field-even">Returns<span class="colon">:</span></dt>'
            '<dd class="field-even"><p>a <strong>b</strong></p></dd></dl></dd></dl>'
            '<dl class="py function"><dt class="sig sig-object py" id="pkg.g">g</dt><dd>'
            '<dl class="field-list simple"><dt class="field-odd">Raises<span class="colon">:'
            '</span></dt><dd class="field-odd"><p><strong>E</strong></p></dd></dl></dd></dl>')
    assert documented_fields(html, "pkg.f") == {"Parameters": ["x", "**kwargs"],
                                                "Returns": ["b"]}
    assert documented_fields(html, "pkg.g") == {"Raises": ["E"]}
    assert documented_fields(html, "pkg.h") == {}
