"""File helpers shared by all modules: atomic writes and checksums.

Every artifact goes through :func:`atomic_write`, so an interrupted run never leaves a
half-written file under its final name. Cached artifacts that later runs reuse (datasets,
benchmark tables, t-SNE maps and other cached arrays) are written with ``checksum=True``: their
sha256 goes to ``<name>.sha256`` beside them, and :func:`intact` tells a reader whether the file
still has that content (a file truncated or overwritten by other means is then rebuilt).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object], *,
                 fsync: bool = False, checksum: bool = False) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then move it to ``path``.

    Parameters
    ----------
    path
        Final file name; its folder must exist.
    write
        Writes the content to the path it is given (which keeps ``path``'s suffix, so writers
        that add one, like ``numpy.savez``, leave the name alone).
    fsync
        Flush the file to disk before the move (checkpoints that must survive a crash).
    checksum
        Record the file's sha256 in ``<path>.sha256`` (written after the file; see
        :func:`intact`).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        if fsync:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; artifacts are ordinary files
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if checksum:
        digest = file_sha256(path)
        atomic_write(_sidecar(path), lambda p: p.write_text(f"{digest}  {path.name}\n"))
    return path


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def intact(path: str | os.PathLike) -> bool:
    """Whether a cached artifact exists and has the content recorded when it was written.

    A file without a recorded checksum (written before checksums were kept, or by a run killed
    between the file and its checksum, both complete files thanks to :func:`atomic_write`) is
    trusted and its checksum recorded now.
    """
    path = Path(path)
    if not path.is_file():
        return False
    sidecar = _sidecar(path)
    if not sidecar.is_file():
        digest = file_sha256(path)
        atomic_write(sidecar, lambda p: p.write_text(f"{digest}  {path.name}\n"))
        return True
    recorded = sidecar.read_text(encoding="utf-8").split()
    return bool(recorded) and recorded[0] == file_sha256(path)


def file_sha256(path: str | os.PathLike) -> str:
    """Return the hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def code_digest(*modules) -> str:
    """Hash of the modules' sources (every file of a package): cached results expire with them."""
    h = hashlib.sha256()
    for module in modules:
        try:
            path = Path(module.__file__)
            files = sorted(path.parent.glob("*.py")) if path.name == "__init__.py" else [path]
            for f in files:
                h.update(f.read_bytes())
        except (OSError, TypeError, AttributeError):
            h.update(b"unknown")
    return h.hexdigest()[:16]
