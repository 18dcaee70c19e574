"""MNIST-Nd: mixture-VAE embeddings of MNIST as clustering benchmarks.

The package does all the work of the compendium: data loading (:mod:`mnistnd.data`), models
(:mod:`mnistnd.models`) and their training loop (:mod:`mnistnd.training`), the MNIST-Nd datasets
(:mod:`mnistnd.datasets`), the clustering benchmark (:mod:`mnistnd.clustering`,
:mod:`mnistnd.metrics`), cluster validity indices (:mod:`mnistnd.validity`), figures
(:mod:`mnistnd.plotting`) and the book pipeline (:mod:`mnistnd.book`, ``mnistnd`` CLI).

Submodules are imported on first use so that ``import mnistnd`` stays cheap (no torch, no scanpy).
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "book",
    "cli",
    "clustering",
    "data",
    "datasets",
    "metrics",
    "models",
    "plotting",
    "profiles",
    "settings",
    "training",
    "validity",
)


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_SUBMODULES])
