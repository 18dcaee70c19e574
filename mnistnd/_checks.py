"""Input validation shared by all modules: every check names the offending parameter.

These run before any expensive work so that a bad input fails fast with a clear message.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence

import numpy as np


def check_choice(name: str, value, allowed: Iterable):
    """Raise ``ValueError`` unless ``value`` is one of ``allowed``."""
    allowed = list(allowed)
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not one of {allowed}")
    return value


def check_int(name: str, value, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as ``int`` after checking its type and bounds (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_n_jobs(n_jobs) -> int:
    """Return a joblib worker count: a positive integer, or ``-1`` for every core."""
    n_jobs = check_int("n_jobs", n_jobs)
    if n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs must be a positive integer or -1, got {n_jobs}")
    return n_jobs


def check_float(
    name: str,
    value,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    open_low: bool = False,
    open_high: bool = False,
) -> float:
    """Return ``value`` as ``float`` after checking that it is a finite real within bounds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and (value <= minimum if open_low else value < minimum):
        raise ValueError(f"{name} must be {'>' if open_low else '>='} {minimum}, got {value}")
    if maximum is not None and (value >= maximum if open_high else value > maximum):
        raise ValueError(f"{name} must be {'<' if open_high else '<='} {maximum}, got {value}")
    return value


def check_int_list(name: str, values, *, minimum: int | None = None) -> list[int]:
    """Check a non-empty sequence of integers (e.g. ``latent_dims``) and return it as a list."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise TypeError(f"{name} must be a sequence of integers, got {values!r}")
    if len(values) == 0:
        raise ValueError(f"{name} must not be empty")
    return [check_int(f"{name}[{i}]", v, minimum=minimum) for i, v in enumerate(values)]


def check_matrix(name: str, X, *, min_samples: int = 1, dtype=np.float64) -> np.ndarray:
    """Return ``X`` as a 2-D finite array of ``dtype``, with at least ``min_samples`` rows."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_samples, n_features), got shape {X.shape}")
    if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
        raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}")
    X = X.astype(dtype, copy=False)
    if not np.all(np.isfinite(X)):
        bad = int(np.count_nonzero(~np.isfinite(X)))
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s)")
    if X.shape[0] < min_samples:
        raise ValueError(f"{name} needs at least {min_samples} samples, got {X.shape[0]}")
    return X


def check_labels(name: str, labels, n_samples: int) -> np.ndarray:
    """Return ``labels`` as a 1-D integer array of length ``n_samples``."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {labels.shape}")
    if labels.shape[0] != n_samples:
        raise ValueError(f"{name} has {labels.shape[0]} entries but X has {n_samples} samples")
    if not np.issubdtype(labels.dtype, np.integer):
        if np.issubdtype(labels.dtype, np.floating) and np.all(np.isfinite(labels)) and np.all(
            labels == np.round(labels)
        ):
            labels = labels.astype(np.int64)
        else:
            raise TypeError(f"{name} must hold integer cluster labels, got dtype {labels.dtype}")
    return labels.astype(np.int64, copy=False)
