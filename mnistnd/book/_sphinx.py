"""Sphinx extension staged with the book (``sphinx.extra_extensions`` of the staged config).

The theme builds each chapter's launch links (Binder, JupyterHub) from the file the page was
rendered from: the executed ``.ipynb``, a build product that is not in the repository. The
repository holds the jupytext ``.md`` (which Jupyter opens as a notebook), so the links are
pointed there in the page context, before the page is written.
"""

from __future__ import annotations


def _launch_sources(app, pagename, templatename, context, doctree) -> None:
    built, source = f"{pagename}.ipynb", f"{pagename}.md"

    def fix(items) -> None:
        for item in items or []:
            if isinstance(item, dict):
                url = item.get("url")
                if isinstance(url, str) and "urlpath=" in url and url.endswith(built):
                    item["url"] = url[: -len(built)] + source
                fix(item.get("buttons"))

    if pagename.startswith("notebooks/"):
        fix(context.get("header_buttons"))


def setup(app) -> dict:
    """Register the launch-link fix after the theme's own launch buttons (priority 501)."""
    app.connect("html-page-context", _launch_sources, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
