"""Torch models of the compendium, each a ``torch.nn.Module`` following the model protocol.

Protocol (see ``CONTRIBUTING.md``): ``loss(*batch) -> dict`` of scalar loss terms by name with
``"loss"`` the total that is minimised; optionally ``on_epoch_start(epoch)`` and a deterministic
``encode(x)``. :func:`mnistnd.training.fit` trains any such model.

Models are imported lazily by name, so that a missing or broken sibling module never breaks the
others (and ``import mnistnd.models`` does not import every model family):

========================  ===========================================
name                      module
========================  ===========================================
``MixtureVAE``            :mod:`mnistnd.models.mixture_vae`
``Autoencoder``           :mod:`mnistnd.models.autoencoders`
``BetaVAE``               :mod:`mnistnd.models.autoencoders`
``BetaVSC``               :mod:`mnistnd.models.autoencoders`
``MoESimVAE``             :mod:`mnistnd.models.moe_sim_vae`
``VaDE``                  :mod:`mnistnd.models.vade`
========================  ===========================================

Shared layers and distributions live in :mod:`mnistnd.models._blocks`.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "MixtureVAE": "mixture_vae",
    "Autoencoder": "autoencoders",
    "BetaVAE": "autoencoders",
    "BetaVSC": "autoencoders",
    "MoESimVAE": "moe_sim_vae",
    "VaDE": "vade",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_EXPORTS])
