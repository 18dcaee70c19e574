"""File helpers shared by all modules: atomic writes and checksums.

Every artifact goes through :func:`atomic_write`, so an interrupted run never leaves a
half-written file under its final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object], *,
                 fsync: bool = False) -> Path:
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
    return path


def file_sha256(path: str | os.PathLike) -> str:
    """Return the hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
