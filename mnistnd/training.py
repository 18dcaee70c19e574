"""The one training loop of the compendium: :func:`fit`.

Any ``torch.nn.Module`` that follows the model protocol (``loss(*batch) -> dict`` of named scalar
terms with ``"loss"`` the total; optional ``on_epoch_start(epoch)``) is trained by :func:`fit`:
mini-batch Adam, seeded and bitwise reproducible on the CPU, early stopping on a validation loss
with the best weights restored, an atomic checkpoint after every epoch from which an interrupted
run resumes to exactly the uninterrupted result, a tqdm bar over epochs, and a history DataFrame.

How reproducibility and resumption work
---------------------------------------
Before epoch ``e`` the loop seeds torch's global generator (and the shuffling generator) with a
seed derived from ``(seed, e)`` alone. Every random draw of epoch ``e`` (batch order, sampling
noise inside the model, the validation pass) therefore depends only on the weights and optimizer
state at the start of the epoch, which the checkpoint stores. A run resumed after epoch ``k`` thus
continues exactly like the uninterrupted one. The checkpoint also stores a fingerprint of the data,
the initial weights and the hyperparameters; resuming from a checkpoint of a different run is an
error rather than a silent mix.

Speed
-----
The data are moved to the device once as whole tensors; each epoch draws one index permutation
and slices batches with ``index_select`` (no DataLoader, no per-sample Python). Loss terms are
accumulated on the device and read back once per epoch (no per-step host synchronisation). Adam
uses torch's fused kernel where available (``foreach`` otherwise).
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from mnistnd._checks import check_float, check_int
from mnistnd._io import atomic_write
from mnistnd.settings import ensure_writable_dir

__all__ = ["fit", "resolve_device", "epoch_seed", "CheckpointMismatchError", "CHECKPOINT_NAME"]

#: File name of the checkpoint inside ``checkpoint_dir``.
CHECKPOINT_NAME = "checkpoint.pt"
_CHECKPOINT_VERSION = 1


class CheckpointMismatchError(ValueError):
    """``checkpoint_dir`` holds the checkpoint of a different run (data, weights or settings)."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Return the torch device for ``device``: ``"auto"`` is CUDA when available, else the CPU.

    Parameters
    ----------
    device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or a ``torch.device``.

    Returns
    -------
    torch.device
    """
    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        if device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            dev = torch.device(device)
        except RuntimeError as err:
            raise ValueError(f"device={device!r} is not a valid torch device ({err})") from err
    else:
        raise TypeError(f"device must be a string or torch.device, got {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} requested but CUDA is not available")
    return dev


def epoch_seed(seed: int, epoch: int) -> int:
    """Return the seed used for epoch ``epoch`` of a run with seed ``seed`` (a 63-bit integer)."""
    digest = hashlib.sha256(f"mnistnd.fit:{seed}:{epoch}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _as_arrays(name: str, X) -> list[np.ndarray]:
    """Validate ``X`` (one array or a tuple/list of arrays with equal rows) as numpy arrays."""
    arrays = list(X) if isinstance(X, (tuple, list)) else [X]
    if not arrays:
        raise ValueError(f"{name} must hold at least one array")
    out = []
    for i, a in enumerate(arrays):
        label = name if len(arrays) == 1 else f"{name}[{i}]"
        if isinstance(a, torch.Tensor):
            a = a.detach().cpu().numpy()
        a = np.asarray(a)
        if a.ndim < 1:
            raise ValueError(f"{label} must have a sample axis, got a scalar")
        if a.dtype == bool:
            a = a.astype(np.float32)
        if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
            raise TypeError(f"{label} must hold real numbers, got dtype {a.dtype}")
        if np.issubdtype(a.dtype, np.floating):
            a = np.ascontiguousarray(a, dtype=np.float32)
            if not np.all(np.isfinite(a)):
                bad = int(np.count_nonzero(~np.isfinite(a)))
                raise ValueError(f"{label} contains {bad} NaN or infinite value(s)")
        else:
            a = np.ascontiguousarray(a, dtype=np.int64)
        out.append(a)
    n = out[0].shape[0]
    for i, a in enumerate(out[1:], start=1):
        if a.shape[0] != n:
            raise ValueError(
                f"{name}[{i}] has {a.shape[0]} rows but {name}[0] has {n}: all arrays of "
                f"{name} must have the same number of samples"
            )
    if n == 0:
        raise ValueError(f"{name} has no samples")
    return out


def _hash_arrays(arrays: Sequence[np.ndarray]) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def _hash_state(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for key, value in model.state_dict().items():
        h.update(key.encode())
        raw = value.detach().cpu().contiguous().reshape(-1)
        h.update(str((raw.dtype, tuple(value.shape))).encode())
        h.update(raw.view(torch.uint8).numpy().tobytes())  # any dtype, bf16 included
    return h.hexdigest()


def _atomic_torch_save(obj, path: Path) -> None:
    """Write ``obj`` to ``path`` atomically and flushed to disk (a checkpoint survives a kill)."""
    atomic_write(path, lambda p: torch.save(obj, p), fsync=True)


def _make_optimizer(params, lr: float, weight_decay: float, device: torch.device):
    # The fused kernel is one launch for all parameters (CPU and CUDA in recent torch);
    # fall back to the multi-tensor `foreach` implementation where it is unavailable.
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, foreach=True)


def _state_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def fit(
    model: torch.nn.Module,
    X,
    *,
    X_val=None,
    val_fraction: float = 0.1,
    epochs: int = 100,
    batch_size: int = 64,
    lr: float = 1e-3,
    patience: int | None = 10,
    min_delta: float = 1e-4,
    seed: int = 0,
    device: str | torch.device = "auto",
    checkpoint_dir: str | os.PathLike | None = None,
    progress: bool = True,
    restore_best: bool = True,
    weight_decay: float = 0.0,
    eval_batch_size: int = 1024,
    num_threads: int | None = None,
    callback: Callable[[int, dict], None] | None = None,
) -> pd.DataFrame:
    """Train ``model`` with mini-batch Adam; early stopping, checkpoints, progress bar.

    Parameters
    ----------
    model
        Module with ``loss(*batch) -> dict[str, Tensor]`` (scalar batch means; ``"loss"`` is the
        total minimised) and optionally ``on_epoch_start(epoch)``. Trained in place and moved to
        ``device``.
    X
        Training data: one array ``(n_samples, ...)`` or a tuple of arrays with the same number
        of rows; each batch is passed as ``model.loss(*batch)``. Floating arrays become float32,
        integer arrays int64; NaN or infinite values are refused.
    X_val
        Validation data of the same form. ``None``: hold out ``val_fraction`` of ``X`` (seeded).
    val_fraction
        Fraction of ``X`` held out for validation when ``X_val`` is None, in [0, 1). With 0 and no
        ``X_val``, early stopping monitors the training loss.
    epochs
        Maximum number of epochs (>= 1).
    batch_size
        Samples per optimisation step (>= 1); the last batch of an epoch may be smaller.
    lr, weight_decay
        Adam learning rate (> 0) and L2 weight decay (>= 0).
    patience
        Stop after this many epochs without an improvement of the monitored loss by more than
        ``min_delta``; ``None`` never stops early.
    min_delta
        Minimum decrease of the monitored loss that counts as an improvement (>= 0).
    seed
        Seed of the validation split, the batch order and every random draw during training.
    device
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` ...
    checkpoint_dir
        Folder for the checkpoint written atomically after every epoch. If it already holds a
        checkpoint of the same run (same data, initial weights and settings), training resumes
        from it; a finished run returns at once with its best weights loaded.
    progress
        Show a tqdm bar over epochs with the epoch's loss terms.
    restore_best
        Load the weights of the best epoch (lowest monitored loss) at the end.
    eval_batch_size
        Batch size of the validation pass (no gradients, so it may be larger).
    num_threads
        ``torch.set_num_threads`` during training (restored afterwards); ``None`` leaves it.
        Results are bitwise reproducible for a fixed thread count.
    callback
        Called as ``callback(epoch, row)`` after each epoch's checkpoint is written (``row`` is the
        history row). An exception raised there aborts training, like an interruption.

    Returns
    -------
    pandas.DataFrame
        One row per epoch: ``epoch`` (0-based), ``train_<term>`` and ``val_<term>`` for every
        loss term, ``seconds`` (wall time of the epoch). ``attrs`` holds ``best_epoch``,
        ``best_value``, ``monitor``, ``stopped_early``, ``n_train``, ``n_val``, ``device`` and
        ``resumed_at`` (epoch a resumed run started from, else ``None``).

    Raises
    ------
    ValueError, TypeError
        On invalid arguments or data (checked before any training).
    CheckpointMismatchError
        If ``checkpoint_dir`` holds the checkpoint of a different run.
    FloatingPointError
        When the training loss becomes NaN or infinite.
    """
    # ---- validate everything before any work ------------------------------------------------
    if not isinstance(model, torch.nn.Module) or not callable(getattr(model, "loss", None)):
        raise TypeError("model must be a torch.nn.Module with a loss(*batch) method")
    epochs = check_int("epochs", epochs, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    eval_batch_size = check_int("eval_batch_size", eval_batch_size, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    lr = check_float("lr", lr, minimum=0.0, open_low=True)
    weight_decay = check_float("weight_decay", weight_decay, minimum=0.0)
    min_delta = check_float("min_delta", min_delta, minimum=0.0)
    val_fraction = check_float("val_fraction", val_fraction, minimum=0.0, maximum=1.0,
                               open_high=True)
    if patience is not None:
        patience = check_int("patience", patience, minimum=1)
    if num_threads is not None:
        num_threads = check_int("num_threads", num_threads, minimum=1)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {callback!r}")
    dev = resolve_device(device)
    train_arrays = _as_arrays("X", X)
    n_total = train_arrays[0].shape[0]
    if X_val is not None:
        val_arrays = _as_arrays("X_val", X_val)
        if len(val_arrays) != len(train_arrays):
            raise ValueError(
                f"X_val holds {len(val_arrays)} arrays but X holds {len(train_arrays)}"
            )
        for i, (a, b) in enumerate(zip(train_arrays, val_arrays, strict=True)):
            if a.shape[1:] != b.shape[1:]:
                raise ValueError(f"X_val[{i}] has sample shape {b.shape[1:]}, X has {a.shape[1:]}")
    elif val_fraction > 0:
        n_val = int(round(val_fraction * n_total))
        if n_val < 1 or n_val >= n_total:
            raise ValueError(
                f"val_fraction={val_fraction} of {n_total} samples leaves no validation or no "
                "training samples; pass X_val or change val_fraction"
            )
        order = np.random.default_rng(seed).permutation(n_total)
        val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
        val_arrays = [a[val_idx] for a in train_arrays]
        train_arrays = [a[train_idx] for a in train_arrays]
    else:
        val_arrays = None
    ckpt_path = None
    if checkpoint_dir is not None:
        ckpt_path = ensure_writable_dir(checkpoint_dir, "checkpoint_dir") / CHECKPOINT_NAME

    settings = dict(epochs=epochs, batch_size=batch_size, lr=lr, patience=patience,
                    min_delta=min_delta, seed=seed, restore_best=restore_best,
                    weight_decay=weight_decay, eval_batch_size=eval_batch_size)
    fingerprint = hashlib.sha256(
        repr((type(model).__qualname__, _hash_state(model), _hash_arrays(train_arrays),
              None if val_arrays is None else _hash_arrays(val_arrays),
              sorted(settings.items()))).encode()
    ).hexdigest()

    old_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        return _train(model, train_arrays, val_arrays, dev, ckpt_path, fingerprint, settings,
                      progress, callback)
    finally:
        if num_threads is not None:
            torch.set_num_threads(old_threads)


def _train(model, train_arrays, val_arrays, dev, ckpt_path, fingerprint, settings, progress,
           callback) -> pd.DataFrame:
    epochs, batch_size = settings["epochs"], settings["batch_size"]
    patience, min_delta = settings["patience"], settings["min_delta"]
    model.to(dev)
    train = [torch.from_numpy(a).to(dev) for a in train_arrays]
    val = None if val_arrays is None else [torch.from_numpy(a).to(dev) for a in val_arrays]
    n_train = train[0].shape[0]
    optimizer = _make_optimizer(model.parameters(), settings["lr"], settings["weight_decay"], dev)
    monitor = "val_loss" if val is not None else "train_loss"

    rows: list[dict] = []
    best_state = _state_copy(model)
    best_epoch, best_value, bad_epochs, start, done = -1, math.inf, 0, 0, False
    resumed_at = None
    if ckpt_path is not None and ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=dev, weights_only=False)
        if ckpt.get("version") != _CHECKPOINT_VERSION or ckpt.get("fingerprint") != fingerprint:
            raise CheckpointMismatchError(
                f"checkpoint_dir holds a checkpoint of a different run ({ckpt_path}): its data, "
                "initial weights or settings differ from this call's. Delete it or pass another "
                "checkpoint_dir."
            )
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        best_state, best_epoch = ckpt["best_state"], ckpt["best_epoch"]
        best_value, bad_epochs = ckpt["best_value"], ckpt["bad_epochs"]
        rows, start, done = ckpt["history"], ckpt["epoch"], ckpt["done"]
        resumed_at = start

    keys: list[str] | None = None
    bar = tqdm(total=epochs, initial=start, desc=f"fit {type(model).__name__}", unit="epoch",
               disable=not progress or done, leave=True)
    shuffle = torch.Generator(device="cpu")
    try:
        epoch = start
        while not done and epoch < epochs:
            t0 = time.perf_counter()
            seed_e = epoch_seed(settings["seed"], epoch)
            torch.manual_seed(seed_e)
            shuffle.manual_seed(seed_e)
            if hasattr(model, "on_epoch_start"):
                model.on_epoch_start(epoch)
            model.train()
            perm = torch.randperm(n_train, generator=shuffle).to(dev)
            sums = None
            for lo in range(0, n_train, batch_size):
                idx = perm[lo:lo + batch_size]
                terms = model.loss(*(t.index_select(0, idx) for t in train))
                if keys is None:
                    keys = _term_keys(model, terms)
                optimizer.zero_grad(set_to_none=True)
                terms["loss"].backward()
                optimizer.step()
                step = torch.stack([terms[k].detach() for k in keys]) * idx.shape[0]
                sums = step if sums is None else sums + step
            train_means = (sums / n_train).cpu().tolist()  # the one host sync of the epoch
            row = {"epoch": epoch}
            row.update({f"train_{k}": v for k, v in zip(keys, train_means, strict=True)})
            if not math.isfinite(row["train_loss"]):
                raise FloatingPointError(
                    f"training loss became {row['train_loss']} in epoch {epoch}; "
                    "lower lr or check the data"
                )
            if val is not None:
                val_means = _evaluate(model, val, keys, settings["eval_batch_size"])
                row.update({f"val_{k}": v for k, v in zip(keys, val_means, strict=True)})
            row["seconds"] = time.perf_counter() - t0
            rows.append(row)
            value = row[monitor]
            if value < best_value - min_delta:
                best_value, best_epoch, bad_epochs = value, epoch, 0
                best_state = _state_copy(model)
            else:
                bad_epochs += 1
            epoch += 1
            done = epoch >= epochs or (patience is not None and bad_epochs >= patience)
            if ckpt_path is not None:
                _atomic_torch_save(
                    {"version": _CHECKPOINT_VERSION, "fingerprint": fingerprint, "epoch": epoch,
                     "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "best_state": best_state, "best_epoch": best_epoch,
                     "best_value": best_value, "bad_epochs": bad_epochs, "history": rows,
                     "done": done},
                    ckpt_path,
                )
            bar.update(1)
            bar.set_postfix({k: f"{v:.4g}" for k, v in row.items()
                             if k.startswith(("train_", "val_"))}, refresh=False)
            if callback is not None:
                callback(row["epoch"], dict(row))
    finally:
        bar.close()

    if settings["restore_best"] and best_epoch >= 0:
        model.load_state_dict(best_state)
    model.eval()
    history = pd.DataFrame(rows)
    history.attrs.update(
        best_epoch=int(best_epoch), best_value=float(best_value), monitor=monitor,
        stopped_early=bool(len(rows) < epochs), n_train=int(n_train),
        n_val=0 if val is None else int(val[0].shape[0]), device=str(dev), resumed_at=resumed_at,
    )
    return history


def _term_keys(model, terms) -> list[str]:
    if not isinstance(terms, dict) or "loss" not in terms:
        raise KeyError(f"{type(model).__name__}.loss must return a dict with the key 'loss'")
    return ["loss", *[k for k in terms if k != "loss"]]


@torch.no_grad()
def _evaluate(model, tensors, keys, eval_batch_size) -> list[float]:
    model.eval()
    n = tensors[0].shape[0]
    sums = None
    for lo in range(0, n, eval_batch_size):
        batch = [t[lo:lo + eval_batch_size] for t in tensors]
        terms = model.loss(*batch)
        step = torch.stack([terms[k].detach() for k in keys]) * batch[0].shape[0]
        sums = step if sums is None else sums + step
    model.train()
    return (sums / n).cpu().tolist()
