"""The ``smoke`` build of the whole book, made once per test session (fixture ``book``).

The kernels that run the chapters get the same no-network guard as the tests (through a
``sitecustomize`` module on ``PYTHONPATH``). When ``MNISTND_DATA_DIR`` does not hold the real
files it points at an empty folder, so ``source="auto"`` falls back to the bundled data, as on a
machine without data and network. A failed build is recorded, not raised: each test that needs
the build reports the error itself.
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from mnistnd.book import ChapterError, build_book

ROOT = Path(__file__).resolve().parent.parent

KERNEL_GUARD = textwrap.dedent(
    '''
    """No network for notebook kernels started by the tests (loopback stays allowed)."""
    import ipaddress
    import socket

    _connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex


    def _allowed(address):
        host = address[0] if isinstance(address, tuple) else None
        if host is None or host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False


    def _guarded(self, address):
        if not _allowed(address):
            raise ConnectionRefusedError(f"network disabled in tests: {address!r}")
        return _connect(self, address)


    def _guarded_ex(self, address):
        if not _allowed(address):
            raise ConnectionRefusedError(f"network disabled in tests: {address!r}")
        return _connect_ex(self, address)


    socket.socket.connect, socket.socket.connect_ex = _guarded, _guarded_ex
    '''
)


def real_data_dir() -> Path | None:
    """``$MNISTND_DATA_DIR`` when it holds the real MNIST files, else ``None``."""
    env = os.environ.get("MNISTND_DATA_DIR")
    return Path(env) if env and (Path(env) / "mnist").is_dir() else None


@dataclass
class Build:
    """Where the smoke build went, and the error that stopped it (``None``: it completed)."""

    artifacts: Path
    html: Path
    data_dir: Path
    error: Exception | None = None
    failed_chapter: str | None = None

    @property
    def folder(self) -> Path:
        return self.artifacts / "smoke"

    def require_html(self) -> Path:
        """The HTML folder; fails the calling test when the build did not complete."""
        if self.error is not None:
            pytest.fail(f"no HTML: the build failed:\n{self.error}")
        return self.html


def build_smoke_book(base: Path) -> Build:
    """Run ``build_book(profile="smoke")`` on the repository's book into ``base``."""
    guard = base / "kernel_guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(KERNEL_GUARD)
    data_dir = real_data_dir() or base / "no_data"
    result = Build(artifacts=base / "runs", html=base / "html", data_dir=data_dir)
    with pytest.MonkeyPatch.context() as mp:
        path = os.environ.get("PYTHONPATH")
        mp.setenv("PYTHONPATH", str(guard) + (os.pathsep + path if path else ""))
        mp.setenv("MNISTND_ARTIFACTS_DIR", str(result.artifacts))
        mp.setenv("MNISTND_DATA_DIR", str(data_dir))
        try:
            build_book(profile="smoke", artifacts_dir=result.artifacts, output_dir=result.html,
                       book_root=ROOT, progress_bar=False)
        except ChapterError as err:
            result.error, result.failed_chapter = err, err.chapter
        except Exception as err:  # noqa: BLE001 - reported by the tests that need the build
            result.error = err
    return result
