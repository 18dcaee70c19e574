"""What the book shows about itself: data banners, the times table, provenance, downloads.

Everything here is generated text (MyST markdown, or a stand-alone HTML index): pages are never
edited after Sphinx has written them. Nothing shown carries a folder of the building machine:
data files are named relative to ``$MNISTND_DATA_DIR`` (:func:`mnistnd.settings.portable_path`).
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
from html import escape
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from mnistnd import settings
from mnistnd.book.execute import read_timings
from mnistnd.book.toc import CHAPTER_DIR

__all__ = ["BANNER_TITLE", "provenance_markdown", "source_banner", "source_banner_markdown",
           "times_table"]

BANNER_TITLE = "Data source"
#: Key of the output metadata under which a banner records its data files (read back by the
#: provenance page from the executed chapters).
BANNER_METADATA = "mnistnd_data_sources"
PACKAGES = ("mnistnd", "numpy", "scipy", "scikit-learn", "pandas", "torch", "anndata", "scanpy",
            "openTSNE", "matplotlib", "papermill", "jupyter-book", "sphinx")
_ABSOLUTE = re.compile(r"'(/[^']+)'")


def _portable(text: str) -> str:
    """``text`` with quoted absolute paths and the home folder replaced by portable names."""
    text = _ABSOLUTE.sub(lambda m: settings.portable_path(m.group(1)), text)
    return text.replace(str(Path.home()), "~")


def _slim(info: dict) -> dict:
    files = [{k: f[k] for k in ("name", "bytes", "sha256") if k in f}
             for f in info.get("files") or []]
    return {"dataset": info["dataset"], "source": info["source"], "files": files}


def source_banner_markdown(*infos: dict) -> str:
    """MyST markdown of the data-source banner shown at the top of a chapter.

    Parameters
    ----------
    *infos
        Dicts from :func:`mnistnd.data.source_info` (``dataset``, ``source``, ``requested``,
        ``files`` with ``name``/``sha256``/``bytes``, ``note``).

    Returns
    -------
    str
        An admonition per source (a warning when a bundled sample replaces the full data): the
        note and a table of the files (by name) and their sha256.
    """
    if not infos:
        raise ValueError("infos: give at least one source_info dict")
    blocks = []
    for info in infos:
        if not isinstance(info, dict) or not {"dataset", "source"} <= set(info):
            raise TypeError(f"infos: expected dicts from mnistnd.data.source_info, got {info!r}")
        bundled = info["source"] not in ("full", "release")
        warning = (" **A bundled sample is not the full dataset: numbers differ from the "
                   "paper's.**" if bundled else "")
        lines = [f":::{{admonition}} {BANNER_TITLE}: {info['dataset']} ({info['source']})",
                 f":class: {'warning' if bundled else 'note'}", "",
                 _portable(f"{info.get('note', '')} Requested "
                           f"`source={info.get('requested', info['source'])!r}`.{warning}"), ""]
        files = _slim(info)["files"]
        if files:
            lines += ["| file | bytes | sha256 |", "|---|---:|---|"]
            lines += [f"| `{f['name']}` | {f['bytes']:,} | `{f['sha256']}` |" for f in files]
        blocks.append("\n".join([*lines, ":::"]))
    return "\n\n".join(blocks)


class _Banner:
    """Markdown display object that also records the data files in the output's metadata."""

    def __init__(self, infos):
        self.text = source_banner_markdown(*infos)
        self.meta = {BANNER_METADATA: [_slim(i) for i in infos]}

    def _repr_markdown_(self):
        return self.text, self.meta


def source_banner(*infos: dict):
    """Display object of :func:`source_banner_markdown` (end a notebook cell with it)."""
    return _Banner(infos)


def _title(root: Path, stem: str) -> str:
    with contextlib.suppress(OSError):
        for line in (root / CHAPTER_DIR / f"{stem}.md").read_text("utf-8").splitlines():
            if line.startswith("# "):
                return line[2:].strip()
    return stem


def _release_rows() -> list[str]:
    with contextlib.suppress(Exception):
        from mnistnd import release

        meta = release.manifest()
        per_model = ", ".join(f"d = {d}: {m['seconds'] / 60:.0f}"
                              for d, m in sorted(meta["models"].items(), key=lambda i: int(i[0])))
        return [f"| m-VAE training of the release, `mnistnd release build` (two models at a "
                f"time; minutes per model: {per_model}) | paper settings | finished | "
                f"{meta['training_wall_seconds'] / 60:.0f} min | |"]
    return []


def times_table(folder: str | Path, profile: str, root: Path | None = None) -> str:
    """Markdown table of this build's chapter times and peak memory, and the release's training.

    Chapter rows come from ``<folder>/timings.csv``; peak memory is that of the kernel's process
    tree. The release row comes from the release manifest.
    """
    from mnistnd.book.toc import find_book_root

    root = root or find_book_root()
    lines = ["| step | profile | status | wall time | peak memory |", "|---|---|---|---:|---:|"]
    rows = read_timings(folder)
    for row in rows:
        memory = f"{float(row['peak_rss_mb']):,.0f} MiB" if row.get("peak_rss_mb") else ""
        lines.append(f"| {_title(root, row['chapter'])} | `{row['profile']}` | {row['status']} "
                     f"| {float(row['seconds']) / 60:.1f} min | {memory} |")
    total = sum(float(r["seconds"]) for r in rows)
    lines.append(f"| **all chapters of this build** | `{profile}` | | **{total / 60:.1f} min** | |")
    return "\n".join([*lines, *_release_rows()]) + "\n"


def _git(root: Path, *args: str) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=30)
        if done.returncode == 0:
            return done.stdout.strip()
    return ""


def _data_rows(folder: Path) -> list[str]:
    """One row per data file a chapter's banner recorded (from the executed notebooks)."""
    import nbformat

    rows = []
    for row in read_timings(folder):
        path = folder / CHAPTER_DIR / f"{row['chapter']}.ipynb"
        if not path.is_file():
            continue
        seen = [meta for cell in nbformat.read(path, as_version=4).cells
                for out in cell.get("outputs", [])
                for meta in out.get("metadata", {}).get("text/markdown", {})
                .get(BANNER_METADATA, [])]
        rows += [f"| {row['chapter']} | {s['dataset']} | {s['source']} | `{f['name']}` | "
                 f"{f['bytes']:,} | `{f['sha256']}` |" for s in seen for f in s["files"]]
    return rows


def provenance_markdown(folder: Path, profile: str, root: Path) -> str:
    """Return the generated provenance markdown: code, packages, parameters, data, release."""
    commit = _git(root, "rev-parse", "HEAD") or "unknown (not a git checkout)"
    dirty = " with uncommitted changes" if _git(root, "status", "--porcelain") else ""
    lines = ["## Code", "", f"Commit `{commit}`{dirty}; profile `{profile}`.", "",
             "| package | version |", "|---|---|"]
    for name in PACKAGES:
        with contextlib.suppress(PackageNotFoundError):
            lines.append(f"| {name} | {version(name)} |")
    lines += ["", "## Chapters", "", "Parameters as the chapter received them (the runner's "
              "`artifacts_dir` left out); wall time and peak memory of the kernel.", "",
              "| chapter | status | wall time | peak memory | parameters |",
              "|---|---|---:|---:|---|"]
    for row in read_timings(folder):
        params = ", ".join(f"`{k}={v!r}`" for k, v in json.loads(row["parameters"]).items())
        memory = f"{float(row['peak_rss_mb']):,.0f} MiB" if row.get("peak_rss_mb") else ""
        lines.append(f"| {row['chapter']} | {row['status']} | {float(row['seconds']):.1f} s | "
                     f"{memory} | {params} |")
    lines += ["", "## Data", "", "| chapter | dataset | source | file | bytes | sha256 |",
              "|---|---|---|---|---:|---|", *_data_rows(folder), ""]
    return "\n".join(lines + _release_markdown()) + "\n"


def _release_markdown() -> list[str]:
    from mnistnd import release

    try:
        meta = release.manifest()
    except Exception as err:  # noqa: BLE001 - the page says why
        return ["## MNIST-Nd release", "", f"No release manifest: {err}"]
    training = ", ".join(f"`{k}={v!r}`" for k, v in meta.get("training", {}).items())
    lines = ["## MNIST-Nd release", "", f"{meta['name']} (`mnistnd.release`, version "
             f"`{meta['version']}`). Training settings: {training}.", "",
             "| file | bytes | sha256 |", "|---|---:|---|"]
    lines += [f"| `{name}` | {f['bytes']:,} | `{f['sha256']}` |"
              for name, f in sorted(meta["files"].items())]
    return lines


def downloads_index(entries: list[dict], profile: str) -> str:
    """Stand-alone HTML index of the exported MNIST-Nd datasets (``entries`` of the manifest)."""
    if entries:
        rows = "".join(f"<tr><td><a href='{escape(e['file'])}'>{escape(e['file'])}</a></td>"
                       f"<td>{e['latent_dim']}</td><td>{e['n_samples']}</td>"
                       f"<td>{e['bytes']:,}</td><td><code>{escape(e['sha256'])}</code></td></tr>"
                       for e in entries)
        body = (f"<p>Profile <b>{escape(profile)}</b>: every file, its latent dimension, number "
                "of test images, size in bytes and sha256 (also in <a href='manifest.json'>"
                "manifest.json</a>).</p><table><tr><th>file</th><th>d</th><th>samples</th>"
                f"<th>bytes</th><th>sha256</th></tr>{rows}</table>")
    else:
        body = ("<p>This build holds no MNIST-Nd datasets: they are written by the chapter "
                "<code>notebooks/mvae_training.md</code> (<code>mnistnd run mvae_training</code>)."
                "</p>")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>MNIST-Nd datasets: "
            f"downloads</title></head><body><h1>MNIST-Nd datasets</h1>{body}<p><a href="
            "'../../book/datasets.html'>What the files contain</a></p></body></html>")
