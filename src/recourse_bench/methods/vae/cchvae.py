"""C-CHVAE: growing spheres in the latent space of a VAE, scored by the model's predictions.

M. Pawelczyk, K. Broelemann and G. Kasneci (2020), "Learning model-agnostic counterfactual
explanations for tabular data", The Web Conference (WWW) 2020, arXiv:1910.09398. Reference code:
CARLA (commit 24db00a) ``catalog/cchvae/model.py``, whose first author is the paper's.

Only ``predict`` of the model is used: CCHVAE runs on any model (forests too).

Algorithm (batched: every factual still searching draws its samples in the same round, an
(n_active, n_search_samples, k) tensor decoded and scored in blocks):

1. ``fit``: obtain the shared VAE trained on ``splits.X_train`` (:mod:`.shared`: the same trained
   VAE as REVISE's when ``random_state`` and the ``vae_*`` parameters agree);
2. ``z0 = mu_enc(x)``; every row starts with the shell ``[low, high) = [0, step)``;
3. each round, each active row draws ``n_search_samples`` points ``z0 + r u / ||u||_p`` with
   ``u ~ N(0, I)`` and ``r ~ U[low, high)`` (a random direction and a uniform radius, as the
   authors' code: not uniform in the shell), decodes them (immutables copied from the factual),
   snaps them with ``schema.snap`` and asks the model; a row with an accepted candidate keeps
   the one of least ``L_p`` distance to ``x`` (after snapping) and stops; the others move to the
   next shell ``[high, high + step)``;
4. after ``max_iter`` rounds the rows still searching return NaN (the authors' code returns an
   unaccepted candidate, which the benchmark would count as not found anyway).

Hyperparameters (authors' defaults from CARLA; GenRe's baselines use charmlab's values):

* ``n_search_samples=300`` (CARLA 300; charmlab and GenRe 100), ``p_norm=1`` (authors 1),
  ``step=0.1`` (authors 0.1), ``max_iter=1000`` (authors 1000);
* the VAE: as REVISE's (:mod:`.revise` lists the parameters and their defaults);
* ``progress=True``, ``random_state=None``.

Differences from the authors' code:

* immutable features condition the decoder and are copied into every candidate; the latent
  perturbation never touches them (CARLA appends them to ``z0`` and perturbs them as decoder
  inputs);
* candidates are snapped with ``schema.snap`` (bounds, directions, integer grids, one-hot groups
  by argmax) before the model scores them; this replaces CARLA's clipping to [0, 1]
  (``clamp=True``) and its per-column rounding of one-hot groups;
* the target is the favourable class (CARLA: any class other than the factual's predicted one,
  the same for the rejected factuals the benchmark uses);
* the paper's heterogeneous-likelihood VAE is replaced by CARLA's plain VAE (as in every
  benchmark we know of); trained on the training split only.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from ...api import Interval, MethodTags, Options
from ...models._torch import as_tensor
from ...registry import register
from .base import LAYERS, VAE_CONSTRAINTS, LatentRecourse, LatentSearch
from .model import decode_rows

#: Sampled latent points decoded at once (bounds the memory of the decoder's activations).
BLOCK = 2**15


@register("method", "cchvae")
class CCHVAE(LatentRecourse):
    """Recourse by growing spheres in the latent space of a VAE (Pawelczyk et al. 2020).

    Parameters
    ----------
    n_search_samples : int, default 300
        Latent points drawn per active factual and round.
    p_norm : {1, 2}, default 1
        Norm of the latent directions and of the distance that picks the closest candidate.
    step : float, default 0.1
        Width of each latent shell.
    max_iter : int, default 1000
        Rounds (shells) before a factual is given up (NaN).
    vae_layers, vae_epochs, vae_batch_size, vae_lr, vae_weight_decay, vae_kl_weight
        The VAE, as for REVISE (the same defaults, so the two share one trained VAE).
    progress : bool, default True
        Show a progress bar while the VAE trains.
    random_state : int or None, default None
        Seeds the VAE (from a seed shared with REVISE) and the latent samples. None draws fresh
        entropy. All factuals of a ``generate`` call share one sampling stream, so a factual's
        recourse depends on the other rows of the batch.

    Attributes
    ----------
    vae_ : VAE
        The trained VAE (shared; never modified).
    vae_history_ : History
        Its training losses.
    """

    network_kind: ClassVar[str] = "vae"
    tags = MethodTags(trains=True, stochastic=True)
    _test_params: ClassVar[dict[str, Any]] = {
        "vae_layers": (32, 16, 4),
        "vae_epochs": 5,
        "vae_batch_size": 64,
        "n_search_samples": 50,
        "max_iter": 200,
        "progress": False,
    }

    parameter_constraints = {
        "n_search_samples": (Interval("int", low=1),),
        "p_norm": (Options((1, 2)),),
        "step": (Interval("float", low=0, open_low=True),),
        "max_iter": (Interval("int", low=1),),
        **VAE_CONSTRAINTS,
        "vae_weight_decay": (Interval("float", low=0),),
        "vae_kl_weight": (Interval("float", low=0),),
    }

    def __init__(
        self,
        n_search_samples: int = 300,
        p_norm: int = 1,
        step: float = 0.1,
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
        self.n_search_samples = n_search_samples
        self.p_norm = p_norm
        self.step = step
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
        generator = self._generator("search")
        n, n_samples, step = len(X), int(self.n_search_samples), float(self.step)
        start = self._start(X)
        low, high = np.zeros(n), np.full(n, step)
        searching = np.ones(n, dtype=bool)
        best_rows = np.full_like(X, np.nan)
        best_latent = np.full((n, start.shape[1]), np.nan)
        rows_per_block = max(1, BLOCK // n_samples)
        for _ in range(int(self.max_iter)):
            active = np.flatnonzero(searching)
            if active.size == 0:
                break
            for first in range(0, active.size, rows_per_block):
                rows = active[first : first + rows_per_block]
                found, candidates, latent = self._round(X, rows, start, low, high, generator)
                best_rows[rows[found]] = candidates[found]
                best_latent[rows[found]] = latent[found]
                searching[rows[found]] = False
            missed = searching[active]
            low[active[missed]] = high[active[missed]]
            high[active[missed]] += step
        return self._finish(X, best_rows, best_latent)

    def _round(
        self,
        X: np.ndarray,
        rows: np.ndarray,
        start: torch.Tensor,
        low: np.ndarray,
        high: np.ndarray,
        generator: torch.Generator,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One shell for ``rows``: which found an accepted candidate, the closest, its latent."""
        m, s, k = len(rows), int(self.n_search_samples), start.shape[1]
        direction = torch.randn(m, s, k, generator=generator)
        lo = torch.as_tensor(low[rows], dtype=torch.float32)[:, None]
        hi = torch.as_tensor(high[rows], dtype=torch.float32)[:, None]
        radius = torch.rand(m, s, generator=generator) * (hi - lo) + lo
        norm = torch.linalg.vector_norm(direction, ord=self.p_norm, dim=2, keepdim=True)
        latent = start[torch.as_tensor(rows)][:, None, :] + direction / norm * radius[..., None]
        latent = latent.reshape(m * s, k)
        factuals = np.repeat(X[rows], s, axis=0)
        with torch.no_grad():
            decoded = decode_rows(self.vae_, latent, as_tensor(factuals), self.mutable_)
        candidates = self.schema_.snap(decoded.numpy(), factuals)
        accepted = (np.asarray(self.model_.predict(candidates)) == 1).reshape(m, s)
        distance = np.linalg.norm(candidates - factuals, ord=self.p_norm, axis=1).reshape(m, s)
        distance = np.where(accepted, distance, np.inf)
        pick = distance.argmin(axis=1)
        chosen = np.arange(m) * s + pick
        return accepted.any(axis=1), candidates[chosen], latent.numpy()[chosen]
