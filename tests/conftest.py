"""Test-wide settings: no network, real data only through ``MNISTND_DATA_DIR``; the smoke book."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import pytest
from smoke_book import Build, build_smoke_book

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


class NetworkAccessError(RuntimeError):
    """Raised when a test tries to reach a non-loopback address."""


def _guard(address):
    host = address[0] if isinstance(address, tuple) else None
    if host is None:  # AF_UNIX and friends stay local
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        if host == "localhost":
            return
    raise NetworkAccessError(f"tests must not touch the network (tried to connect to {address!r})")


def _connect(self, address):
    _guard(address)
    return _real_connect(self, address)


def _connect_ex(self, address):
    _guard(address)
    return _real_connect_ex(self, address)


def pytest_configure(config):
    socket.socket.connect = _connect
    socket.socket.connect_ex = _connect_ex


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The real-data folder (``$MNISTND_DATA_DIR``); skip the test when it is absent."""
    env = os.environ.get("MNISTND_DATA_DIR")
    if not env or not (Path(env) / "mnist").is_dir():
        pytest.skip("real data not available: set MNISTND_DATA_DIR to a folder like shared/data")
    return Path(env)


@pytest.fixture
def artifacts(tmp_path, monkeypatch) -> Path:
    """A private artifacts folder for the test (also exported as MNISTND_ARTIFACTS_DIR)."""
    path = tmp_path / "runs"
    monkeypatch.setenv("MNISTND_ARTIFACTS_DIR", str(path))
    return path


@pytest.fixture(scope="session")
def book(tmp_path_factory) -> Build:
    """The whole book built once under the ``smoke`` profile (see :mod:`smoke_book`)."""
    return build_smoke_book(tmp_path_factory.mktemp("book"))
