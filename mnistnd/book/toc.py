"""The book's table of contents and what each chapter reads from other chapters."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CHAPTER_DIR", "INPUTS", "find_book_root", "toc_chapters", "toc_files"]

CHAPTER_DIR = "notebooks"

#: The one declaration of what chapters read from each other: ``{chapter: {upstream: switch}}``.
#: The chapter reads the MNIST-Nd datasets the upstream chapter writes into the profile's
#: artifacts folder when its parameter ``switch`` is ``"artifacts"``; with ``"release"`` or
#: ``"auto"`` it reads the release shipped with the package when the artifacts are absent, and
#: needs no upstream run. Chapters not listed read only raw data (``mnistnd.data``).
INPUTS: dict[str, dict[str, str]] = {
    chapter: {"mvae_training": "mnistnd_source"}
    for chapter in ("embedding_properties", "clustering_benchmark", "moe_sim_vae",
                    "appendix_cvi", "appendix_density_peaks")
}


def find_book_root(start: str | os.PathLike | None = None) -> Path:
    """Return the folder holding ``_toc.yml`` and ``_config.yml``.

    Searches ``start`` (default: the working directory) and its parents, then the folder above
    the installed package (an editable install of the repository).

    Raises
    ------
    FileNotFoundError
        If no such folder exists (naming the parameter ``book_root``).
    """
    here = Path(start or Path.cwd()).resolve()
    for folder in [here, *here.parents, Path(__file__).resolve().parents[2]]:
        if (folder / "_toc.yml").is_file() and (folder / "_config.yml").is_file():
            return folder
    raise FileNotFoundError(f"book_root: no folder with _toc.yml and _config.yml at or above "
                            f"{str(here)!r}; run from the repository or pass book_root")


def parse_toc(content: bytes | str, where: Path) -> list[str]:
    """Files of a jb-book toc (root first, in toc order), without extension."""
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
        name = name.removesuffix(ext)
    return name


def toc_files(book_root: str | os.PathLike | None = None) -> list[str]:
    """All files of ``_toc.yml`` (root first), in toc order, without extension."""
    root = Path(book_root) if book_root is not None else find_book_root()
    return parse_toc((root / "_toc.yml").read_bytes(), root / "_toc.yml")


def is_chapter(entry: str) -> bool:
    """Whether a toc entry is an executed chapter (``notebooks/<stem>``)."""
    return entry.startswith(f"{CHAPTER_DIR}/") and entry.count("/") == 1


def toc_chapters(book_root: str | os.PathLike | None = None) -> list[str]:
    """Stems of the toc entries that are executed chapters, in order."""
    return [f.split("/", 1)[1] for f in toc_files(book_root) if is_chapter(f)]


def source_of(root: Path, entry: str) -> Path | None:
    """Return the source file of a toc entry (``.md``, ``.ipynb``, ``.rst``), or ``None``."""
    for ext in (".md", ".ipynb") if is_chapter(entry) else (".md", ".ipynb", ".rst"):
        if (root / f"{entry}{ext}").is_file():
            return root / f"{entry}{ext}"
    return None


def chapter_source(name: str, book_root: str | os.PathLike | None = None) -> Path:
    """Return the source of a chapter given as a path or a name (``data``)."""
    path = Path(name)
    if path.suffix or path.is_file():
        return path
    try:
        candidate = find_book_root(book_root) / CHAPTER_DIR / f"{name}.md"
    except FileNotFoundError:
        return path
    if candidate.is_file():
        return candidate
    try:
        known = ", ".join(toc_chapters(candidate.parents[1]))
    except (OSError, ValueError):
        known = "?"
    raise FileNotFoundError(f"notebook: no chapter {name!r} (no {candidate}); chapters: {known}")
