"""The book pipeline: chapters run with papermill, the HTML built with Jupyter Book.

* :mod:`~mnistnd.book.params`: the ``parameters`` cell, its typed parser and constraints;
* :mod:`~mnistnd.book.toc`: the table of contents and what chapters read from each other;
* :mod:`~mnistnd.book.execute`: one chapter, locked per profile folder, timed;
* :mod:`~mnistnd.book.build`: staging and the Jupyter Book call;
* :mod:`~mnistnd.book.pages`: banners, times table, provenance (generated markdown).
"""

from mnistnd.book.build import (
    DOWNLOADS_DIR,
    REPOSITORY_URL_ENV,
    build_book,
    hide_injected_parameters,
    repository_url,
    staged_config,
)
from mnistnd.book.execute import ChapterError, profile_lock, read_timings, run_notebook
from mnistnd.book.pages import BANNER_TITLE, source_banner, source_banner_markdown
from mnistnd.book.params import (
    Parameter,
    ParameterError,
    check_value,
    notebook_parameters,
    parse_value,
    read_notebook,
)
from mnistnd.book.toc import CHAPTER_DIR, INPUTS, find_book_root, toc_chapters, toc_files

__all__ = ["BANNER_TITLE", "CHAPTER_DIR", "DOWNLOADS_DIR", "INPUTS", "REPOSITORY_URL_ENV",
           "ChapterError", "Parameter", "ParameterError", "build_book", "check_value",
           "find_book_root", "hide_injected_parameters", "notebook_parameters", "parse_value",
           "profile_lock", "read_notebook", "read_timings", "repository_url", "run_notebook",
           "source_banner", "source_banner_markdown", "staged_config", "toc_chapters",
           "toc_files"]
