"""REVISE: gradient descent in the latent space of a VAE towards the favourable class.

S. Joshi, O. Koyejo, W. Vijitbenjaronk, B. Kim and J. Ghosh (2019), "Towards realistic
individual recourse and actionable explanations in black-box decision making systems",
arXiv:1907.09615. Reference code: CARLA (commit 24db00a) ``catalog/revise/model.py``.

Algorithm (batched: one latent code per factual, all optimised together in one tensor; Adam
and RMSprop act per coordinate, so each row follows its own trajectory):

1. ``fit``: obtain the shared VAE trained on ``splits.X_train`` (:mod:`.shared`: REVISE and
   CCHVAE fitted with the same ``random_state`` and ``vae_*`` parameters share one trained VAE);
2. start from ``z = mu_enc(x)``, the encoder's mean of the factual's mutable features;
3. for ``max_iter`` steps: decode ``c = snap(G(z, immutables))`` (immutables copied from the
   factual, then ``schema.snap``: bounds, directions, integer grids, one-hot groups by argmax),
   compute ``loss = CE(h(c), 1) + lam * ||c - x||_1``; if ``h`` accepts ``c`` and the loss is
   the lowest such loss of the row so far, keep ``c`` and ``z``; take one optimiser step on
   ``z`` (the gradient passes the snapping straight through). There is no early stop (as the
   authors' code);
4. return each row's kept ``c`` (the accepted iterate of least loss), NaN where no iterate was
   accepted. :meth:`~.base.LatentRecourse.search` also reports the kept ``z``.

Hyperparameters (authors' defaults are CARLA's, which GenRe's baselines use too):

* ``lam=0.5`` (authors 0.5): weight of the L1 distance;
* ``optimizer="adam"`` (authors ``adam``; ``rmsprop`` also offered), ``lr=0.1`` (authors 0.1);
* ``max_iter=1000`` (CARLA 1000; charmlab's and GenRe's configurations 1500);
* VAE (see :mod:`.model` and :mod:`.train`): ``vae_layers=(512, 256, 8)`` (GenRe's configuration;
  CARLA leaves the widths to the user), ``vae_epochs`` and ``vae_batch_size`` (see below),
  ``vae_lr=1e-3`` (authors 1e-3), ``vae_weight_decay=1e-6`` (authors' ``lambda_reg``),
  ``vae_kl_weight=0.3`` (authors 0.3, annealed from 0);
* ``progress=True`` (a training progress bar), ``random_state=None``.

Budget of the VAE. CARLA trains 5 epochs at batch size 32, GenRe's baseline script 20 epochs at
batch size 32 for the real datasets. DEFAULTS_NOTE

Differences from the authors' code:

* immutable features are never changed: they condition the decoder and are copied into every
  decoded row (CARLA also appends them to ``z`` and then *optimises* them as decoder inputs);
* candidates are snapped with ``schema.snap`` (one-hot groups by argmax; CARLA rounds each
  one-hot column on its own, which can leave a group all-zero or multi-hot) and the model scores
  the snapped row, whose gradient passes straight through to ``z`` (CARLA's rounding passes no
  gradient to the categorical columns);
* the VAE is trained on the training split only (CARLA: training and test data).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ...api import Interval, MethodTags
from ...registry import register
from .base import DESCENT_CONSTRAINTS, LAYERS, VAE_CONSTRAINTS, LatentRecourse, LatentSearch


@register("method", "revise")
class Revise(LatentRecourse):
    """Recourse by gradient descent on the latent code of a VAE (Joshi et al. 2019).

    Parameters
    ----------
    lam : float, default 0.5
        Weight of the L1 distance ``||c - x||_1`` against the cross-entropy of class 1.
    optimizer : {"adam", "rmsprop"}, default "adam"
        Optimiser of the latent codes.
    lr : float, default 0.1
        Its learning rate.
    max_iter : int, default 1000
        Optimiser steps (no early stop).
    vae_layers : list of int, default (512, 256, 8)
        Hidden widths of the VAE's encoder (mirrored by the decoder), then the latent dimension.
    vae_epochs : int
        Passes over the training rows.
    vae_batch_size : int
        Rows per Adam step of the VAE.
    vae_lr : float, default 1e-3
        Adam's learning rate for the VAE.
    vae_weight_decay : float, default 1e-6
        Adam's weight decay for the VAE.
    vae_kl_weight : float, default 0.3
        Final weight of the KL term (annealed linearly from 0 over the epochs).
    progress : bool, default True
        Show a progress bar while the VAE trains (off when not writing to a terminal).
    random_state : int or None, default None
        Seeds the VAE's initial weights and training (from a seed shared with CCHVAE: see
        :mod:`.shared`); the search itself is deterministic. None draws fresh entropy (the VAE
        is then trained for this fit alone).

    Attributes
    ----------
    vae_ : VAE
        The trained VAE (shared; never modified).
    vae_history_ : History
        Its training losses.
    """

    network_kind: ClassVar[str] = "vae"
    tags = MethodTags(requires_differentiable=True, trains=True, stochastic=True)
    _test_params: ClassVar[dict[str, Any]] = {
        "vae_layers": (32, 16, 4),
        "vae_epochs": 5,
        "vae_batch_size": 64,
        "max_iter": 100,
        "progress": False,
    }

    parameter_constraints = {
        **DESCENT_CONSTRAINTS,
        **VAE_CONSTRAINTS,
        "vae_weight_decay": (Interval("float", low=0),),
        "vae_kl_weight": (Interval("float", low=0),),
    }

    def __init__(
        self,
        lam: float = 0.5,
        optimizer: str = "adam",
        lr: float = 0.1,
        max_iter: int = 1000,
        vae_layers: tuple[int, ...] = LAYERS,
        vae_epochs: int = 20,
        vae_batch_size: int = 32,
        vae_lr: float = 1e-3,
        vae_weight_decay: float = 1e-6,
        vae_kl_weight: float = 0.3,
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
        self.vae_weight_decay = vae_weight_decay
        self.vae_kl_weight = vae_kl_weight
        self.progress = progress
        self.random_state = random_state

    def _search(self, X: np.ndarray) -> LatentSearch:
        start = self._start(X)
        return self._descend(
            X, start, lambda z: z, lambda gap: gap.abs().sum(dim=1), self.optimizer
        )  # the latent code itself moves; lam * L1
