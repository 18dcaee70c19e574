"""Run a list of independent tasks through joblib, one BLAS/OpenMP thread per worker.

This is the one place where the package fans work out (clustering sweeps, bootstrap repeats,
validity indices). Other modules import :func:`run_tasks`::

    from mnistnd._parallel import run_tasks

    results = run_tasks(fit_one, [(X, 0), (X, 1)], n_jobs=2, desc="fits")

How it runs
-----------
* By default through joblib's ``loky`` backend (local worker processes). ``n_jobs=1`` runs in
  the calling process (no pickling, easiest to debug); ``-1`` uses every core.
* When the caller has chosen another joblib backend, that one is used, so a Dask or Ray cluster
  runs the same code without any change here::

      import joblib
      from dask.distributed import Client

      client = Client("tcp://scheduler:8786")          # or Client() for a local cluster
      with joblib.parallel_config(backend="dask"):
          table = mnistnd.clustering.benchmark(...)      # tasks run on the Dask workers

      import ray
      from ray.util.joblib import register_ray
      register_ray()
      with joblib.parallel_config(backend="ray"):
          table = mnistnd.clustering.benchmark(...)

  (``n_jobs`` is then passed on; ``-1`` lets the cluster decide.)
* Inside every task, BLAS and OpenMP pools are limited to one thread (``threadpoolctl``), so
  ``n_jobs`` processes use ``n_jobs`` cores instead of ``n_jobs x n_cores`` threads fighting
  for them. Torch's intra-op pool is limited too when torch is already imported.
* A ``tqdm`` progress bar counts finished tasks (results are returned in task order).
* ``warmup=(func, args)`` runs once in every worker process before its first task (imports,
  JIT compilation). Loky takes a worker's reference memory after its first task and restarts
  a worker whose memory later grows by 300 MB as "leaking": a worker that imports scanpy and
  compiles numba code only in its tenth task is restarted, and pays for both again.

Tasks must be picklable (module-level functions and plain data) for process backends.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import joblib
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from mnistnd._checks import check_n_jobs

__all__ = ["run_tasks"]


#: Warm-ups already run in this process, by (module, name, args).
_WARMED: set = set()


def _single_threaded(func: Callable, args: tuple, kwargs: dict, warmup=None) -> Any:
    """Call ``func(*args, **kwargs)`` with BLAS/OpenMP (and torch) limited to one thread.

    ``warmup``, a ``(function, args)`` pair, is run first if this process has not run it yet.
    """
    torch = sys.modules.get("torch")
    previous = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            if warmup is not None:
                key = (warmup[0].__module__, warmup[0].__qualname__, warmup[1])
                if key not in _WARMED:
                    warmup[0](*warmup[1])
                    _WARMED.add(key)
            return func(*args, **kwargs)
    finally:
        if torch is not None:
            torch.set_num_threads(previous)


def run_tasks(
    func: Callable,
    tasks: Sequence,
    *,
    n_jobs: int = 1,
    desc: str | None = None,
    kwargs: dict | None = None,
    progress: bool = True,
    warmup: tuple[Callable, tuple] | None = None,
) -> list:
    """Run ``func`` on every task, in parallel, and return the results in task order.

    Parameters
    ----------
    func : callable
        Module-level function (picklable). Called as ``func(*task, **kwargs)`` when a task is a
        tuple, else ``func(task, **kwargs)``.
    tasks : sequence
        The tasks; each a tuple of positional arguments or a single argument.
    n_jobs : int
        Number of workers: ``1`` runs in this process, ``-1`` uses all cores (joblib's
        convention). Passed to the caller's backend when one is set with
        :func:`joblib.parallel_config` (Dask, Ray ...), else local processes (loky).
    desc : str, optional
        Label of the progress bar.
    kwargs : dict, optional
        Keyword arguments passed to every call.
    progress : bool
        Show a tqdm progress bar.
    warmup : (callable, tuple), optional
        Module-level function and hashable arguments, run once per worker process before its
        first task (see the module notes: it keeps loky from restarting workers).

    Returns
    -------
    list
        ``[func(*task, **kwargs) for task in tasks]``, computed in parallel.
    """
    if not callable(func):
        raise TypeError(f"func must be callable, got {func!r}")
    if isinstance(tasks, (str, bytes)) or not isinstance(tasks, Iterable):
        raise TypeError("tasks must be a sequence of tasks")
    tasks = list(tasks)
    n_jobs = check_n_jobs(n_jobs)
    kwargs = dict(kwargs or {})
    if warmup is not None:
        if not (isinstance(warmup, tuple) and len(warmup) == 2 and callable(warmup[0])):
            raise TypeError(f"warmup must be a (function, args) pair, got {warmup!r}")
        warmup = (warmup[0], tuple(warmup[1]))
    calls = [(t if isinstance(t, tuple) else (t,)) for t in tasks]
    bar = tqdm(total=len(calls), desc=desc, disable=not progress or not calls)
    try:
        if n_jobs == 1 and not _user_backend():
            out = []
            for args in calls:
                out.append(_single_threaded(func, args, kwargs, warmup))
                bar.update()
            return out
        parallel = joblib.Parallel(n_jobs=n_jobs, return_as="generator")
        out = []
        for result in parallel(
            joblib.delayed(_single_threaded)(func, args, kwargs, warmup) for args in calls
        ):
            out.append(result)
            bar.update()
        return out
    finally:
        bar.close()


def _user_backend() -> bool:
    """Tell whether the caller selected a joblib backend other than the default (loky)."""
    backend, _ = joblib.parallel.get_active_backend()
    return type(backend).__name__ not in {"LokyBackend", "SequentialBackend"}
