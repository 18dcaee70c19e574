"""Run one chapter with papermill into the profile's artifacts folder.

A chapter source ``notebooks/<stem>.md`` runs (kernel ``python3``, a scratch working directory)
into ``<root>/<profile>/notebooks/<stem>.ipynb``, where ``<root>`` is the artifacts root
(``--artifacts-dir``, ``$MNISTND_ARTIFACTS_DIR`` or ``_runs``). Any number of runs and builds may
share a root: each holds the lock of its profile folder while it works there (a second one
waits and says so on stderr), writes under a unique temporary name and moves the result into
place in one rename, so no reader ever sees a half-written notebook or table, and a run killed at
any point leaves only temporary files that the next holder of the lock removes.

A failing cell raises :class:`ChapterError` naming the chapter, the cell (its index in the source
notebook, counting markdown cells, from 0) and the exception; the executed notebook with the
traceback is kept as ``<stem>.failed.ipynb``. Wall time and peak memory of the kernel (its whole
process tree) go to ``<root>/<profile>/timings.csv``.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from mnistnd import settings
from mnistnd._checks import check_float
from mnistnd._io import atomic_write
from mnistnd.book.params import (
    _parameters_source,
    parameters_of_source,
    read_notebook,
    resolve_parameters,
)
from mnistnd.book.toc import CHAPTER_DIR, INPUTS
from mnistnd.profiles import check_profile

__all__ = ["ChapterError", "profile_lock", "read_timings", "run_notebook"]

TIMINGS_FILE = "timings.csv"
TIMING_FIELDS = ("chapter", "profile", "status", "seconds", "peak_rss_mb", "finished_utc",
                 "parameters")
_PAPERMILL_TAGS = ("injected-parameters", "papermill-error-cell-tag")
_HELD: dict[str, int] = {}


class ChapterError(RuntimeError):
    """A chapter failed while executing; the message names the chapter and the cell."""

    def __init__(self, message: str, *, chapter: str, cell_index: int | None = None,
                 notebook: Path | None = None):
        super().__init__(message)
        self.chapter, self.cell_index, self.notebook = chapter, cell_index, notebook


@contextlib.contextmanager
def profile_lock(folder: Path):
    """Hold the lock of a profile folder (re-entrant in one process; waits, saying so).

    On entry, temporary files left by runs killed in this folder (``.tmp-*``) are removed: no
    other process works in the folder while the lock is held.
    """
    key = str(folder.resolve() / ".lock")
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    with open(key, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            print(f"mnistnd: waiting for {fh.read().strip() or 'another run'} to release "
                  f"{folder} ...", file=sys.stderr, flush=True)
            fcntl.flock(fh, fcntl.LOCK_EX)
        fh.truncate(0)
        fh.write(f"process {os.getpid()} ({' '.join(sys.argv[:3])})")
        fh.flush()
        for stale in [*folder.glob(".tmp-*"), *folder.glob(f"{CHAPTER_DIR}/.tmp-*")]:
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink()
        _HELD[key] = 1
        try:
            yield
        finally:
            del _HELD[key]
            fcntl.flock(fh, fcntl.LOCK_UN)


def artifacts_folder(artifacts_dir, profile: str) -> Path:
    """``<root>/<profile>`` (made), with the root checked (parameter ``artifacts_dir``)."""
    root = settings.artifacts_root() if artifacts_dir is None else Path(artifacts_dir)
    root = root.expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"artifacts_dir: {str(root)!r} exists and is not a directory")
    if not root.parent.is_dir():
        raise FileNotFoundError(f"artifacts_dir: the parent of {str(root)!r} does not exist")
    settings.ensure_writable_dir(root, "artifacts_dir")
    folder = settings.ensure_writable_dir(root / profile, "artifacts_dir")
    settings.ensure_writable_dir(folder / CHAPTER_DIR, "artifacts_dir")
    return folder


def check_timeout(timeout):
    """``timeout`` (seconds per cell) must be ``None`` or a positive number."""
    return None if timeout is None else check_float("timeout", timeout, minimum=0, open_low=True)


def read_timings(folder: str | os.PathLike) -> list[dict]:
    """Rows of ``<folder>/timings.csv`` (one per chapter, the latest run), or ``[]``."""
    path = Path(folder) / TIMINGS_FILE
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _write_timing(folder: Path, row: dict) -> None:
    rows = [r for r in read_timings(folder) if r["chapter"] != row["chapter"]] + [row]

    def write(path: Path) -> None:
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=TIMING_FIELDS, restval="")
            writer.writeheader()
            writer.writerows({k: r.get(k, "") for k in TIMING_FIELDS} for r in rows)

    atomic_write(folder / TIMINGS_FILE, write)


class _PeakRSS(threading.Thread):
    """Polls the summed resident memory of this process's children (the kernel and its tree)."""

    def __init__(self, interval: float = 0.1):
        super().__init__(daemon=True)
        self.peak, self._interval, self._done = 0, interval, threading.Event()

    def run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._done.wait(self._interval):
            total = 0
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += child.memory_info().rss
            self.peak = max(self.peak, total)

    def stop(self) -> float:
        """Stop polling; return the peak in MiB."""
        self._done.set()
        self.join()
        return self.peak / 2**20


@dataclass
class Chapter:
    """A chapter read and its parameters resolved, ready to run."""

    path: Path
    stem: str
    nb: object
    values: dict


def prepare(path, parameters, profile: str) -> Chapter:
    """Read a chapter and check every parameter value (nothing runs)."""
    check_profile(profile)
    path = Path(path)
    nb = read_notebook(path)
    declared = parameters_of_source(_parameters_source(nb, str(path)), str(path))
    return Chapter(path, path.stem, nb, resolve_parameters(path.stem, declared, profile,
                                                           parameters))


def run_notebook(path: str | os.PathLike, parameters: dict | None = None,
                 profile: str = "quick", artifacts_dir: str | os.PathLike | None = None, *,
                 timeout: float | None = None, progress_bar: bool = True) -> Path:
    """Execute one chapter with papermill and return the executed notebook's path.

    Upstream chapters it needs (:data:`mnistnd.book.toc.INPUTS`) and that have not run under
    this profile run first, with their profile values (said on stderr).

    Parameters
    ----------
    path
        Chapter source, ``notebooks/<stem>.md`` (jupytext MyST) or an ``.ipynb``.
    parameters
        Values for parameters the notebook declares; they override the profile's values.
    profile
        ``"smoke"``, ``"quick"`` or ``"paper"`` (values from ``mnistnd/profiles.yaml``).
    artifacts_dir
        Artifacts *root*; the chapter gets ``<root>/<profile>`` as its ``artifacts_dir`` and is
        written to ``<root>/<profile>/notebooks/<stem>.ipynb``.
    timeout
        Per-cell time limit in seconds (``None``: no limit).
    progress_bar
        Show papermill's per-cell progress bar.

    Returns
    -------
    pathlib.Path
        The executed notebook.

    Raises
    ------
    ValueError, ParameterError, FileNotFoundError, PermissionError
        Bad input, before anything runs.
    ChapterError
        A cell raised (or the kernel died); the message names the chapter and the cell.
    """
    timeout = check_timeout(timeout)
    chapter = prepare(path, parameters, profile)
    folder = artifacts_folder(artifacts_dir, profile)
    with profile_lock(folder):
        return execute(chapter, profile, folder, timeout=timeout, progress_bar=progress_bar)


def missing_upstream(chapter: Chapter, folder: Path) -> list[str]:
    """Upstream chapters whose artifacts ``chapter`` reads and that have not run in ``folder``."""
    return [up for up, switch in INPUTS.get(chapter.stem, {}).items()
            if chapter.values.get(switch) == "artifacts"
            and not (folder / CHAPTER_DIR / f"{up}.ipynb").is_file()]


def execute(chapter: Chapter, profile: str, folder: Path, *, timeout=None,
            progress_bar=True) -> Path:
    """Run ``chapter`` (its missing upstream chapters first) in ``folder``; the lock is held."""
    for up in missing_upstream(chapter, folder):
        print(f"mnistnd: chapter {chapter.stem!r} reads the MNIST-Nd datasets of chapter {up!r} "
              f"(mnistnd_source='artifacts'), which has not run under profile {profile!r}: "
              f"running {up!r} first", file=sys.stderr, flush=True)
        execute(prepare(chapter.path.with_name(f"{up}.md"), None, profile), profile, folder,
                timeout=timeout, progress_bar=progress_bar)
    out_dir = folder / CHAPTER_DIR
    final, failed = out_dir / f"{chapter.stem}.ipynb", out_dir / f"{chapter.stem}.failed.ipynb"
    fd, partial = tempfile.mkstemp(dir=out_dir, prefix=f".tmp-{chapter.stem}-", suffix=".ipynb")
    os.close(fd)
    partial = Path(partial)
    start, memory = time.perf_counter(), _PeakRSS()
    memory.start()
    try:
        error = _papermill(chapter, profile, folder, partial, failed, timeout, progress_bar)
    finally:
        peak = memory.stop()
    _write_timing(folder, {
        "chapter": chapter.stem, "profile": profile, "status": "failed" if error else "ok",
        "seconds": f"{time.perf_counter() - start:.1f}", "peak_rss_mb": f"{peak:.0f}",
        "finished_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "parameters": json.dumps(chapter.values, sort_keys=True)})
    if error is not None:
        raise error
    os.replace(partial, final)
    failed.unlink(missing_ok=True)
    return final


def _papermill(chapter: Chapter, profile: str, folder: Path, partial: Path, failed: Path,
               timeout, progress_bar) -> ChapterError | None:
    """Execute into ``partial``; on failure move it to ``failed`` and return the error."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    values = {**chapter.values, "artifacts_dir": str(folder), "profile": profile}
    with tempfile.TemporaryDirectory(prefix=f"mnistnd-{chapter.stem}-",
                                     ignore_cleanup_errors=True) as scratch, _kernel_environment():
        try:
            pm.execute_notebook(chapter.nb, str(partial), parameters=values,
                                kernel_name="python3", language="python", cwd=scratch,
                                progress_bar=progress_bar, execution_timeout=timeout)
            return None
        except PapermillExecutionError as err:
            index, first = _failed_cell(partial)
            what = f"failed in cell {index} (index in the notebook from 0, counting markdown " \
                   f"cells), first line {first!r}: {err.ename}: {err.evalue}"
        except Exception as err:  # kernel death, timeout, bad kernel
            index, first = _failed_cell(partial, last_started=True)
            where = f" in cell {index} (first line {first!r})" if index is not None else ""
            what = f"did not finish{where}: {type(err).__name__}: {err}"
    with contextlib.suppress(OSError):
        os.replace(partial, failed)
    return ChapterError(f"chapter {chapter.stem!r} ({chapter.path}) {what}\n"
                        f"executed notebook with the traceback: {failed}",
                        chapter=chapter.stem, cell_index=index,
                        notebook=failed if failed.exists() else None)


def _failed_cell(path: Path, *, last_started: bool = False) -> tuple[int | None, str]:
    """Index (in the source notebook) and first line of the cell that raised.

    With ``last_started``, the last code cell papermill started (a timeout or a dead kernel
    leaves no error output).
    """
    import nbformat

    found: tuple[int | None, str] = (None, "")
    try:
        cells = nbformat.read(path, as_version=4).cells
    except Exception:  # noqa: BLE001 - nothing written yet
        return found
    cells = [c for c in cells if not set(_PAPERMILL_TAGS) & set(c.metadata.get("tags", []))]
    for index, cell in enumerate(cells):
        lines = [ln.strip() for ln in cell.source.splitlines() if ln.strip()]
        if cell.cell_type != "code":
            continue
        if any(out.get("output_type") == "error" for out in cell.get("outputs", [])):
            return index, lines[0] if lines else ""
        if last_started and cell.metadata.get("papermill", {}).get("start_time"):
            found = (index, lines[0] if lines else "")
    return found


def _quiet_papermill(record: logging.LogRecord) -> bool:
    """Drop papermill's parameter-introspection warnings (the runner has checked every name)."""
    return not record.getMessage().startswith(("Passed unknown parameter", "Unable to parse line"))


@contextlib.contextmanager
def _kernel_environment():
    # A non-interactive MPLBACKEND (e.g. Agg) makes inline figures vanish from the notebook.
    saved = os.environ.pop("MPLBACKEND", None)
    loggers = [logging.getLogger(name) for name in ("papermill", "papermill.translators")]
    for logger in loggers:
        logger.addFilter(_quiet_papermill)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(_quiet_papermill)
        if saved is not None:
            os.environ["MPLBACKEND"] = saved
