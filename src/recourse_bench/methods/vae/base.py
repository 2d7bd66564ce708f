"""What REVISE, CCHVAE and CRUDS have in common: a shared trained network, a latent search.

A method of this package

1. in ``fit``, obtains its trained generative model from :mod:`.shared` (trained on
   ``splits.X_train`` the first time, found in the process's cache afterwards);
2. in :meth:`LatentRecourse.search`, searches latent points for all factuals at once; a candidate
   is the *decoded* row (:func:`.model.decode_rows`: immutables copied from the factual) snapped
   with ``schema.snap`` (bounds, directions, integer grids, one-hot groups) and scored by the
   model on exactly those snapped values;
3. returns, per factual, the snapped decoded row of the latent point it kept, or NaN where the
   model rejects it. :class:`LatentSearch` also reports that latent point, so that
   ``schema.snap(decode_numpy(vae_, latent, X, mutable), X)`` gives back the recourse.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch.nn import functional as F

from ...api import Classifier, Interval, ListOf, NotApplicable, Options, RecourseMethod, Splits
from ...models._torch import as_tensor
from ...seeding import derive_seed
from .model import CSVAE, VAE, decode_numpy, decode_rows
from .shared import History, VAEConfig, trained, training_seed

#: Constraints of the network parameters every method of the package has.
VAE_CONSTRAINTS: dict[str, tuple[Any, ...]] = {
    "vae_layers": (ListOf(Interval("int", low=1), non_empty=True),),
    "vae_epochs": (Interval("int", low=1),),
    "vae_batch_size": (Interval("int", low=1),),
    "vae_lr": (Interval("float", low=0, open_low=True),),
    "progress": (Options((True, False)),),
    "random_state": (Interval("int"), None),
}

#: Constraints of the gradient searches' parameters (REVISE, CRUDS).
DESCENT_CONSTRAINTS: dict[str, tuple[Any, ...]] = {
    "lam": (Interval("float", low=0),),
    "optimizer": (Options(("adam", "rmsprop")),),
    "lr": (Interval("float", low=0, open_low=True),),
    "max_iter": (Interval("int", low=1),),
}

#: GenRe's baseline widths (genre@ed3332f ``results/exp1_config.yaml``): hidden 512, 256; latent 8.
LAYERS = (512, 256, 8)


@dataclass
class LatentSearch:
    """What a search found for each factual.

    Attributes
    ----------
    recourses : ndarray (n, d)
        The snapped decoded rows the model accepts; NaN rows where none was found.
    latent : ndarray (n, k)
        The latent point each recourse was decoded from (NaN rows where none was found).
    """

    recourses: np.ndarray
    latent: np.ndarray


class _StraightThrough(torch.autograd.Function):
    """Forward: the snapped rows; backward: the gradient passes to the raw decoded rows."""

    @staticmethod
    def forward(ctx: Any, raw: torch.Tensor, snapped: torch.Tensor) -> torch.Tensor:
        return snapped.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


def straight_through(raw: torch.Tensor, snapped: np.ndarray) -> torch.Tensor:
    """``snapped`` as a tensor whose gradient flows to ``raw`` unchanged (straight-through).

    The model then scores exactly the candidate that would be returned, while the search still
    gets a gradient for the columns that snapping rounds (one-hot groups, integers) or clips.
    """
    out: torch.Tensor = _StraightThrough.apply(raw, torch.as_tensor(snapped, dtype=raw.dtype))
    return out


class LatentRecourse(RecourseMethod):
    """Base of the methods searching the latent space of a shared, trained generative model.

    Subclasses set ``network_kind`` and implement ``_search`` (the search on checked factuals);
    REVISE and CRUDS search by :meth:`_descend`.

    Attributes
    ----------
    vae_ : VAE or CSVAE
        The trained network (shared with every method fitted on the same data and seed in this
        process; never modified).
    vae_history_ : History
        How its training went (losses per epoch, steps, seconds; the seconds of the fit that
        trained it).
    """

    network_kind: ClassVar[str] = "vae"
    random_state: int | None
    progress: bool
    vae_layers: tuple[int, ...]
    vae_epochs: int
    vae_batch_size: int
    vae_lr: float
    vae_: VAE | CSVAE
    vae_history_: History

    def vae_config(self) -> VAEConfig:
        """The network's hyperparameters (the part of the cache key the method sets).

        From the method's ``vae_*`` parameters; a method without ``vae_weight_decay`` or
        ``vae_kl_weight`` (CRUDS: the CSVAE's loss has fixed weights) leaves them at 0.
        """
        return VAEConfig(
            kind=self.network_kind,  # type: ignore[arg-type]
            layers=tuple(int(w) for w in self.vae_layers),
            epochs=int(self.vae_epochs),
            batch_size=int(self.vae_batch_size),
            lr=float(self.vae_lr),
            weight_decay=float(getattr(self, "vae_weight_decay", 0.0)),
            kl_weight=float(getattr(self, "vae_kl_weight", 0.0)),
        )

    def _search(self, X: np.ndarray) -> LatentSearch:
        """The search on checked factuals ``X`` (at least one row)."""
        raise NotImplementedError

    # ---------------------------------------------------------------------------- helpers
    def _seed(self, purpose: str) -> int:
        """A seed for the method's own randomness (fresh entropy when ``random_state`` is None)."""
        if self.random_state is None:
            return int(np.random.default_rng().integers(2**31 - 1))
        return derive_seed(self.random_state, self.name, purpose)

    def _generator(self, purpose: str) -> torch.Generator:
        return torch.Generator().manual_seed(self._seed(purpose))

    @property
    def mutable_(self) -> np.ndarray:
        """The schema's mutable mask (the columns the network reconstructs)."""
        return self.schema_.mutable_mask

    # ------------------------------------------------------------------------------- fit
    def fit(self, model: Classifier, splits: Splits) -> LatentRecourse:
        """Obtain the trained network (trained here only if this process has not yet)."""
        super().fit(model, splits)
        mutable = splits.schema.mutable_mask
        if not mutable.any():
            raise NotApplicable(f"{self.name} needs at least one mutable feature; all are fixed")
        shared = self.random_state is not None
        if shared:
            seed = training_seed(int(self.random_state), self.network_kind)  # type: ignore[arg-type]
        else:
            seed = int(np.random.default_rng().integers(2**31 - 1))
        result = trained(
            self.vae_config(),
            np.asarray(splits.X_train, dtype=float),
            np.asarray(splits.y_train),
            mutable,
            seed,
            cache=shared,
            progress=bool(self.progress),
        )
        self.vae_ = result.network
        self.vae_history_ = result.history
        return self

    # -------------------------------------------------------------------------- generate
    def generate(self, X: np.ndarray) -> np.ndarray:
        """Recourses for all rows of ``X`` (NaN rows where none was found)."""
        return self.search(X).recourses

    def search(self, X: np.ndarray) -> LatentSearch:
        """Recourses for all rows of ``X`` and the latent points they were decoded from."""
        self.check_fitted()
        X = self.check_factuals(X)
        if len(X) == 0:
            return LatentSearch(np.full_like(X, np.nan), np.full((0, self.vae_.latent_dim), np.nan))
        return self._search(X)

    def decode(self, latent: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Rows decoded from ``latent`` for factuals ``X``, before snapping (NaN latent: NaN)."""
        self.check_fitted()
        return decode_numpy(self.vae_, latent, X, self.mutable_)

    def _start(self, X: np.ndarray) -> torch.Tensor:
        """The encoder's mean of each factual's mutable columns (``z`` for the CSVAE)."""
        with torch.no_grad():
            return self.vae_.start(as_tensor(X)[:, torch.as_tensor(self.mutable_)].float())

    def _descend(
        self,
        X: np.ndarray,
        variable: torch.Tensor,
        latent_of: Callable[[torch.Tensor], torch.Tensor],
        distance: Callable[[torch.Tensor], torch.Tensor],
        optimiser: str,
    ) -> LatentSearch:
        """Gradient steps on ``variable`` for all rows at once (REVISE's and CRUDS's search).

        Each of ``self.max_iter`` steps decodes ``latent_of(variable)`` into candidates
        ``c = snap(G(latent, immutables))``, computes the loss
        ``CE(h(c), 1) + self.lam * distance(c - x)`` per row (CARLA's BCE of ``[p0, p1]``
        against ``[0, 1]``, i.e. ``softplus(-logit)``), keeps for each row the candidate ``h``
        accepts with the lowest loss so far (and its latent point), then takes one step of
        ``optimiser`` (``"adam"`` or ``"rmsprop"``, learning rate ``self.lr``) on ``variable``;
        the gradient passes the snapping straight through. No early stop, as the authors' code.
        """
        schema, net, mutable = self.schema_, self.vae_, self.mutable_
        model: Any = self.model_  # differentiable (by the tags): it has ``logits``
        x = as_tensor(X)
        lam = float(self.lam)  # type: ignore[attr-defined]
        with torch.no_grad():
            width = latent_of(variable).shape[1]
        best_loss = np.full(len(X), np.inf)
        best_rows = np.full_like(X, np.nan)
        best_latent = np.full((len(X), width), np.nan)
        step = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop}[optimiser]
        with torch.enable_grad():
            variable = variable.detach().clone().requires_grad_(True)
            optimiser_ = step([variable], lr=float(self.lr))  # type: ignore[attr-defined]
            for _ in range(int(self.max_iter)):  # type: ignore[attr-defined]
                latent = latent_of(variable)
                raw = decode_rows(net, latent, x, mutable)
                snapped = schema.snap(raw.detach().numpy(), X)
                c = straight_through(raw, snapped)
                logits = model.logits(c)
                loss = F.softplus(-logits) + lam * distance(c - x)
                with torch.no_grad():
                    current = loss.detach().numpy()
                    better = (logits.detach().numpy() >= 0) & (current < best_loss)
                    best_loss[better] = current[better]
                    best_rows[better] = snapped[better]
                    best_latent[better] = latent.detach().numpy()[better]
                optimiser_.zero_grad(set_to_none=True)
                loss.sum().backward()
                optimiser_.step()
        return self._finish(X, best_rows, best_latent)

    def _finish(self, X: np.ndarray, candidates: np.ndarray, latent: np.ndarray) -> LatentSearch:
        """Keep the candidates the model accepts (NaN elsewhere, latent too)."""
        found = ~np.isnan(candidates).any(axis=1)
        accepted = np.zeros(len(X), dtype=bool)
        if found.any():
            accepted[found] = np.asarray(self.model_.predict(candidates[found])) == 1
        recourses = np.where(accepted[:, None], candidates, np.nan)
        latent = np.where(accepted[:, None], latent, np.nan)
        return LatentSearch(recourses, latent)
