"""Tests of mnistnd.training.fit: determinism, resumption, early stopping, bad inputs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from mnistnd.models import MixtureVAE
from mnistnd.training import CHECKPOINT_NAME, fit


def _data(n=120, p=12, seed=0):
    return (np.random.default_rng(seed).random((n, p)) > 0.6).astype(np.float32)


def _model(seed=0):
    torch.manual_seed(seed)
    return MixtureVAE(n_latent=2, n_input=12, n_components=3, n_hidden=8)


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


KW = dict(epochs=5, batch_size=16, lr=1e-2, patience=None, seed=3, device="cpu",
          progress=False, num_threads=1)


def test_history_has_every_term_train_and_val():
    history = fit(_model(), _data(), **KW)
    terms = ["loss", "reconstruction", "gaussian", "kl", "categorical"]
    expected = ["epoch", *[f"train_{t}" for t in terms], *[f"val_{t}" for t in terms], "seconds"]
    assert list(history.columns) == expected
    assert history["epoch"].tolist() == list(range(5))
    assert (history["seconds"] > 0).all()
    assert history.attrs["n_train"] == 108 and history.attrs["n_val"] == 12
    # the total is the sum of its parts in every row (per-epoch means are linear)
    np.testing.assert_allclose(
        history["train_loss"],
        history["train_reconstruction"] + history["train_kl"] + history["train_categorical"],
        rtol=1e-5,
    )


def test_two_seeded_runs_are_bitwise_identical_and_other_seed_differs():
    m1, m2, m3 = _model(), _model(), _model()
    h1 = fit(m1, _data(), **KW)
    h2 = fit(m2, _data(), **KW)
    fit(m3, _data(), **{**KW, "seed": 4})
    assert _same_weights(_weights(m1), _weights(m2))
    pd.testing.assert_frame_equal(h1.drop(columns="seconds"), h2.drop(columns="seconds"))
    assert not _same_weights(_weights(m1), _weights(m3))


def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path):
    ref = _model()
    h_ref = fit(ref, _data(), **KW)

    class Interrupt(Exception):
        pass

    def stop_after_two(epoch, row):
        if epoch == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        fit(_model(), _data(), checkpoint_dir=tmp_path, callback=stop_after_two, **KW)
    assert (tmp_path / CHECKPOINT_NAME).exists()
    resumed = _model()
    h_res = fit(resumed, _data(), checkpoint_dir=tmp_path, **KW)
    assert h_res.attrs["resumed_at"] == 2
    assert _same_weights(_weights(ref), _weights(resumed))
    pd.testing.assert_frame_equal(h_ref.drop(columns="seconds"), h_res.drop(columns="seconds"))
    # a finished run returns at once with the same best weights
    again = _model()
    h_again = fit(again, _data(), checkpoint_dir=tmp_path, **KW)
    assert h_again.attrs["resumed_at"] == 5
    assert _same_weights(_weights(ref), _weights(again))


@pytest.mark.slow
def test_process_killed_mid_epoch_resumes_exactly(tmp_path):
    """SIGKILL inside an optimisation step of epoch 2, then resume in this process."""
    script = textwrap.dedent(f"""
        import os, signal, numpy as np, torch
        from mnistnd.models import MixtureVAE
        from mnistnd.training import fit
        torch.manual_seed(0)
        model = MixtureVAE(n_latent=2, n_input=12, n_components=3, n_hidden=8)
        steps = [0]
        original = model.loss
        def loss(x):
            steps[0] += 1
            if steps[0] == 17:  # 7 steps per epoch: this is inside epoch 2
                os.kill(os.getpid(), signal.SIGKILL)
            return original(x)
        model.loss = loss
        X = (np.random.default_rng(0).random((120, 12)) > 0.6).astype(np.float32)
        fit(model, X, checkpoint_dir={str(tmp_path)!r}, **{KW!r})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    ckpt = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=False)
    assert ckpt["epoch"] == 2 and not ckpt["done"]
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != CHECKPOINT_NAME]
    assert all(name.endswith(".tmp") for name in leftovers)
    resumed, ref = _model(), _model()
    h_res = fit(resumed, _data(), checkpoint_dir=tmp_path, **KW)
    h_ref = fit(ref, _data(), **KW)
    assert _same_weights(_weights(ref), _weights(resumed))
    pd.testing.assert_frame_equal(h_ref.drop(columns="seconds"), h_res.drop(columns="seconds"))


class _Climber(nn.Module):
    """Training pushes w up by ~lr per step; the validation loss is minimal at w = 0.5."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))

    def loss(self, x):
        if self.training:
            total = -self.w * x.mean()
        else:
            total = (self.w - 0.5) ** 2 + 0 * x.mean()
        return {"loss": total}


def test_early_stopping_restores_the_best_epoch():
    X = np.ones((10, 1), np.float32)
    model = _Climber()
    history = fit(model, X, X_val=X, epochs=50, batch_size=10, lr=0.1, patience=3,
                  min_delta=1e-4, seed=0, device="cpu", progress=False)
    # w after epoch e is 0.1 * (e + 1) (Adam's steps are lr for a constant gradient)
    assert history.attrs["best_epoch"] == 4
    assert len(history) == 8 and history.attrs["stopped_early"]
    assert int(history["val_loss"].idxmin()) == 4
    assert model.w.item() == pytest.approx(0.5, abs=1e-3)
    # without restoring, the last weights stay
    last = _Climber()
    fit(last, X, X_val=X, epochs=50, batch_size=10, lr=0.1, patience=3, seed=0, device="cpu",
        progress=False, restore_best=False)
    assert last.w.item() == pytest.approx(0.8, abs=1e-3)


def test_min_delta_ignores_tiny_improvements():
    X = np.ones((10, 1), np.float32)
    history = fit(_Climber(), X, X_val=X, epochs=50, batch_size=10, lr=0.1, patience=2,
                  min_delta=0.15, seed=0, device="cpu", progress=False)
    # val losses 0.16, 0.09, 0.04: neither later one improves on 0.16 by more than 0.15
    assert history.attrs["best_epoch"] == 0 and len(history) == 3


def test_tuple_data_reaches_loss_as_separate_arguments():
    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(3))
            self.seen = []

        def loss(self, x, y):
            self.seen.append((x.shape, y.dtype))
            return {"loss": ((x @ self.w - y.float()) ** 2).mean()}

    model = Pair()
    X = np.random.default_rng(0).random((20, 3))
    y = np.arange(20)
    fit(model, (X, y), val_fraction=0.0, epochs=1, batch_size=8, device="cpu", progress=False)
    assert [s[0][0] for s in model.seen] == [8, 8, 4]
    assert all(s[1] == torch.int64 for s in model.seen)


def test_nan_loss_raises():
    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(()))

        def loss(self, x):
            return {"loss": self.w * x.sum() + torch.log(torch.tensor(-1.0))}

    with pytest.raises(FloatingPointError, match="epoch 0"):
        fit(Bad(), np.ones((4, 1)), val_fraction=0.0, epochs=2, device="cpu", progress=False)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": 2.5}, TypeError, "batch_size"),
        ({"epochs": 0}, ValueError, "epochs"),
        ({"lr": -1.0}, ValueError, "lr"),
        ({"patience": 0}, ValueError, "patience"),
        ({"min_delta": -0.1}, ValueError, "min_delta"),
        ({"val_fraction": 1.0}, ValueError, "val_fraction"),
        ({"val_fraction": 0.001}, ValueError, "val_fraction"),
        ({"device": "tpu9"}, ValueError, "device"),
        ({"seed": -1}, ValueError, "seed"),
    ],
)
def test_bad_arguments_fail_before_training(kwargs, error, match):
    model = _model()
    before = _weights(model)
    with pytest.raises(error, match=match):
        fit(model, _data(), **{**KW, **kwargs})
    assert _same_weights(before, _weights(model))


def test_bad_data_is_refused():
    X = _data()
    X[3, 2] = np.nan
    with pytest.raises(ValueError, match="X contains 1 NaN"):
        fit(_model(), X, **KW)
    with pytest.raises(ValueError, match=r"X\[1\] has 5 rows"):
        fit(_model(), (_data(), np.zeros(5)), **KW)
    with pytest.raises(ValueError, match="X has no samples"):
        fit(_model(), np.zeros((0, 12), np.float32), **KW)
    with pytest.raises(TypeError, match="model"):
        fit(nn.Linear(2, 2), _data(), **KW)


def test_checkpoint_of_another_run_is_an_error(tmp_path):
    fit(_model(), _data(), checkpoint_dir=tmp_path, **{**KW, "epochs": 1})
    with pytest.raises(ValueError, match="different run"):
        fit(_model(), _data(), checkpoint_dir=tmp_path, **{**KW, "epochs": 1, "lr": 0.5})
    with pytest.raises(ValueError, match="different run"):
        fit(_model(seed=1), _data(), checkpoint_dir=tmp_path, **{**KW, "epochs": 1})


def test_num_threads_is_restored():
    before = torch.get_num_threads()
    fit(_model(), _data(), **{**KW, "epochs": 1, "num_threads": 1})
    assert torch.get_num_threads() == before
    assert os.cpu_count() >= 1
