"""CRUDS: counterfactuals by moving only the label-relevant latent code of a CSVAE.

M. Downs, J. L. Chu, Y. Yacoby, F. Doshi-Velez and W. Pan (2020), "CRUDS: Counterfactual
Recourse Using Disentangled Subspaces", ICML 2020 Workshop on Human Interpretability in Machine
Learning. Reference code: CARLA (commit 24db00a) ``catalog/crud/library/crud.py`` and
``autoencoder/models/csvae.py`` (the PROBE fork that GenRe's baselines use is the same).

Algorithm (batched: one label code per factual, all optimised together; RMSprop acts per
coordinate, so each row follows its own trajectory):

1. ``fit``: obtain the shared CSVAE trained on ``splits.X_train`` and ``splits.y_train``
   (:mod:`.shared`: every CRUDS fit with the same ``random_state`` and ``vae_*`` parameters on
   the same splits shares one trained CSVAE). Its code ``z`` is trained to carry no label
   information and ``w`` (2-d) to carry it (:mod:`.model`, :mod:`.train`);
2. fix ``z = mu_z(x)``, the encoder's mean of the factual; draw ``w ~ U(0, 1)^2`` (as the
   authors' code: a random start, not the factual's encoding);
3. for ``max_iter`` steps: decode ``c = snap(G(z, immutables, w))`` (immutables copied from the
   factual, ``schema.snap`` as for REVISE), compute ``loss = CE(h(c), 1) + lam * ||c - x||_2^2``;
   if ``h`` accepts ``c`` and the loss is the row's lowest such loss so far, keep ``c`` and
   ``[z, w]``; one RMSprop step on ``w`` only (the gradient passes the snapping straight
   through). No early stop (as the authors' code);
4. return each row's kept ``c``, NaN where no iterate was accepted; the reported latent point is
   ``[z, w]`` (``z`` is the factual's code throughout).

Hyperparameters (authors' defaults are CARLA's):

* ``lam=0.001`` (authors 0.001), ``optimizer="rmsprop"`` (authors ``RMSprop``; ``adam`` also
  offered), ``lr=0.008`` (authors 0.008), ``max_iter=2000`` (authors 2000);
* CSVAE: ``vae_layers=(512, 256, 8)`` (GenRe's configuration; CARLA's experiment setup uses
  (16, 8)): hidden widths, then the dimension of ``z``; ``w`` has 2; ``vae_epochs`` and
  ``vae_batch_size`` (see below), ``vae_lr=1e-3`` (authors 1e-3; each of the two Adam optimisers
  uses half of it, as the authors). The loss weights are the authors' (:mod:`.train`);
* ``progress=True``, ``random_state=None``.

Budget of the CSVAE. DEFAULTS_NOTE

Differences from the authors' code:

* immutable features condition the decoder and are copied into every decoded row;
* candidates are snapped with ``schema.snap`` and the model scores the snapped row, whose
  gradient passes straight through to ``w`` (CARLA rounds each one-hot column on its own);
* the CSVAE's adversary is trained on its own cross-entropy only (:mod:`.train` explains CARLA's
  accumulated gradient); it is trained on the training split only (CARLA: training and test);
* the paper's further steps (choosing among several counterfactuals by their consistency with
  the data, and the user's choice of subspace dimensions) are not in the authors' benchmark code
  and not here either.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from ...api import MethodTags
from ...registry import register
from .base import DESCENT_CONSTRAINTS, LAYERS, VAE_CONSTRAINTS, LatentRecourse, LatentSearch
from .model import W_DIM


@register("method", "cruds")
class CRUDS(LatentRecourse):
    """Recourse by optimising the label code ``w`` of a CSVAE (Downs et al. 2020).

    Parameters
    ----------
    lam : float, default 0.001
        Weight of the squared L2 distance ``||c - x||_2^2`` against the cross-entropy.
    optimizer : {"rmsprop", "adam"}, default "rmsprop"
        Optimiser of the label codes.
    lr : float, default 0.008
        Its learning rate.
    max_iter : int, default 2000
        Optimiser steps (no early stop).
    vae_layers : list of int, default (512, 256, 8)
        Hidden widths of the CSVAE's encoders (mirrored by its decoder), then the dimension of
        ``z``.
    vae_epochs : int
        Passes over the training rows.
    vae_batch_size : int
        Rows per training step.
    vae_lr : float, default 1e-3
        Learning rate of the CSVAE (each of its two Adam optimisers uses half).
    progress : bool, default True
        Show a progress bar while the CSVAE trains.
    random_state : int or None, default None
        Seeds the CSVAE (from a seed that does not depend on the method) and the starting label
        codes. None draws fresh entropy. All factuals of a ``generate`` call share one stream,
        so a factual's recourse depends on the other rows of the batch.

    Attributes
    ----------
    vae_ : CSVAE
        The trained CSVAE (shared; never modified).
    vae_history_ : History
        Its training losses.
    """

    network_kind: ClassVar[str] = "csvae"
    tags = MethodTags(requires_differentiable=True, trains=True, stochastic=True)
    _test_params: ClassVar[dict[str, Any]] = {
        "vae_layers": (32, 16, 4),
        "vae_epochs": 5,
        "vae_batch_size": 64,
        "max_iter": 200,
        "lr": 0.05,
        "progress": False,
    }

    parameter_constraints = {
        **DESCENT_CONSTRAINTS,
        **VAE_CONSTRAINTS,
    }

    def __init__(
        self,
        lam: float = 0.001,
        optimizer: str = "rmsprop",
        lr: float = 0.008,
        max_iter: int = 2000,
        vae_layers: tuple[int, ...] = LAYERS,
        vae_epochs: int = 20,
        vae_batch_size: int = 32,
        vae_lr: float = 1e-3,
        progress: bool = True,
        random_state: int | None = None,
    ):
        self.lam = lam
        self.optimizer = optimizer
        self.lr = lr
        self.max_iter = max_iter
        self.vae_layers = vae_layers
        self.vae_epochs = vae_epochs
        self.vae_batch_size = vae_batch_size
        self.vae_lr = vae_lr
        self.progress = progress
        self.random_state = random_state

    def _search(self, X: np.ndarray) -> LatentSearch:
        z = self._start(X)
        w_start = torch.rand(len(X), W_DIM, generator=self._generator("search"))
        return self._descend(
            X,
            w_start,
            lambda w: torch.cat([z, w], dim=1),  # z stays the factual's; only w moves
            lambda gap: gap.pow(2).sum(dim=1),  # lam * L2^2
            self.optimizer,
        )
