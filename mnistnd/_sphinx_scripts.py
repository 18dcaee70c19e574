"""Sphinx extension of the book: every script of a page is included once.

Sphinx 7.4 registers an inline script that an extension adds once the builder exists (its file
name ``None``) and, while preparing to write, adds the registered scripts again, this time with
the file name ``""``; the two compare unequal, so the page carries the script twice. For
sphinx-thebe's ``const THEBE_JS_URL = ...`` the second copy is a ``SyntaxError`` in the browser
(a constant declared twice). Listed in ``_config.yml`` (``sphinx: extra_extensions``), this
extension drops the repeated copies from each page's scripts, keeping the first of each.
"""

from __future__ import annotations


def _key(script) -> tuple:
    """Return what makes two scripts the same: file (``None`` and ``""`` alike), attributes."""
    attributes = getattr(script, "attributes", {})
    return (getattr(script, "filename", script) or "", getattr(script, "priority", 500),
            tuple(sorted((k, str(v)) for k, v in attributes.items())))


def unique_scripts(app, pagename, templatename, context, doctree) -> None:
    """``html-page-context`` handler: remove repeated scripts from ``script_files`` in place."""
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen: set[tuple] = set()
    unique = []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app) -> dict:
    """Register the handler late, after the extensions that add scripts to the page."""
    app.connect("html-page-context", unique_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
