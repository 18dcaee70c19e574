"""Where the package reads data and writes artifacts.

Two folders matter:

* the **data directory** holds raw downloads, one subfolder per dataset (``mnist/``,
  ``pbmc3k/``), the layout of the compendium's ``shared/data``. It is ``$MNISTND_DATA_DIR`` when
  set, else ``pooch.os_cache("mnistnd")``.
* the **artifacts directory** holds build products (trained models, MNIST-Nd ``.h5ad`` files,
  result tables, executed notebooks), one subfolder per profile. It is the ``artifacts_dir``
  argument when given, else ``<root>/<profile>`` with root ``$MNISTND_ARTIFACTS_DIR`` or ``_runs/``
  in the working directory.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

DATA_ENV = "MNISTND_DATA_DIR"
ARTIFACTS_ENV = "MNISTND_ARTIFACTS_DIR"
DEFAULT_ARTIFACTS = "_runs"
DEFAULT_PROFILE = "quick"


def data_dir() -> Path:
    """Return the data directory (``$MNISTND_DATA_DIR`` or the user cache of ``pooch``).

    Returns
    -------
    pathlib.Path
        The folder; it may not exist yet.
    """
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("mnistnd"))


def portable_path(path: str | os.PathLike) -> str:
    """Return a path as shown to readers: ``$MNISTND_DATA_DIR/...`` inside it, else its name.

    Pages and banners never carry a folder of the machine that made them; the data folder is
    named by its variable, anything else by its last component.
    """
    path = Path(path).expanduser()
    with contextlib.suppress(ValueError, OSError):
        return f"${DATA_ENV}/{path.resolve().relative_to(data_dir().resolve()).as_posix()}"
    return path.name


def artifacts_root() -> Path:
    """Return the artifacts root: ``$MNISTND_ARTIFACTS_DIR`` or ``_runs`` (absolute)."""
    return Path(os.environ.get(ARTIFACTS_ENV) or DEFAULT_ARTIFACTS).expanduser().resolve()


def artifacts_dir(
    artifacts_dir: str | os.PathLike | None = None, profile: str = DEFAULT_PROFILE
) -> Path:
    """Resolve the folder in which a profile's artifacts live.

    Parameters
    ----------
    artifacts_dir
        Explicit folder, used as it is (the book runner passes ``<root>/<profile>``).
        ``None`` means ``artifacts_root() / profile``.
    profile
        Profile subfolder used when ``artifacts_dir`` is ``None``.

    Returns
    -------
    pathlib.Path
        Absolute path of the folder (not created here).
    """
    if artifacts_dir is None:
        return artifacts_root() / profile
    return Path(artifacts_dir).expanduser().resolve()


def ensure_writable_dir(path: str | os.PathLike, name: str) -> Path:
    """Create ``path`` if needed and check that files can be written there.

    Parameters
    ----------
    path
        Folder to check.
    name
        Parameter name used in the error message.

    Returns
    -------
    pathlib.Path
        The folder.

    Raises
    ------
    PermissionError
        If the folder cannot be created or written; the message names ``name``.
    """
    path = Path(path).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PermissionError(f"{name}: cannot create directory {str(path)!r} ({err})") from err
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"{name}: directory {str(path)!r} is not writable")
    return path
