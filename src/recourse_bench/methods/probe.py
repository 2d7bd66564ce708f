"""PROBE: recourse with a chosen probability of being invalidated by a noisy implementation.

Pawelczyk, Datta, van den Heuvel, Kasneci and Lakkaraju (ICLR 2023), "Probabilistically robust
recourse: navigating the trade-offs between costs and robustness in algorithmic recourse".

A recourse x' is implemented noisily as x' + eps with eps ~ N(0, s^2 I). Its invalidation rate
IR(x') = P(h(x' + eps) = 0) is approximated, from a first-order expansion of the log-odds f, by

    IR(x') = 1 - Phi( f(x') / (s * ||grad_x f(x')||_2) ),

which is exact for a linear model (:func:`invalidation_rate_estimate`). The user only implements
changes of mutable features, so the noise and the gradient norm cover the mutable columns only
(for a dataset without immutables this is the paper's formula).

Algorithm (batched over all factuals, one tensor computation):

1. start from x' = x; minimise, per row,

       ir_weight * max(IR(x') - r, 0) + loss(h(x'), 1) + lam * ||x' - x||_1

   with projected Adam (:func:`~._search.adam_search`): immutable coordinates frozen, each step
   projected onto the per-row box (bounds, directions) and one-hot groups onto the simplex. IR is
   differentiated through the input gradient (``create_graph=True``). Every 10 steps a row stops
   once its snapped candidate is accepted (h >= 0.5) with IR <= r + eps, or when its loss has
   changed by less than ``tol``;
2. after each round of ``n_iter`` steps, snap the candidates (round one-hot groups and integers);
   rows accepted with IR <= r + eps are done; ``lam`` of the other rows is multiplied by
   ``lam_decay`` (cheaper moves are penalised less) and the search goes on, at most ``n_rounds``
   rounds;
3. line search: move each finished recourse back towards its factual as far as it stays accepted
   with IR <= r + eps (bisection), which never increases the cost.

Rows that never reach the target rate keep their last snapped candidate if the model accepts it
(a valid recourse that is less robust than asked, as in the authors' code); a row whose final
recourse the model rejects (probability of class 1 < 0.5) is returned as NaN ("no recourse found").

Hyperparameters and defaults: ``invalidation_target=0.3`` (r), ``noise_variance=0.01`` (s^2),
``ir_weight=3``, ``loss_type="bce"``, ``lam=0.1``, ``lam_decay=0.5``, ``n_rounds=20``,
``n_iter=100``, ``lr=0.02``, ``eps=0.005``, ``shrink_steps=30``, ``tol=1e-6``,
``random_state=None`` (accepted for the uniform interface; the search is deterministic).

Where we differ from the authors' code (``wachter_rip_recourse`` in the authors' CARLA fork,
MartinPawel/ProbabilisticallyRobustRecourse, which CARLA's ``probe`` follows; defaults of its
``Wachter_rip`` class: lr 0.001, lambda 0.01, n_iter 1000, MSE loss on the softmax output,
invalidation_target 0.45, inval_target_eps 0.005, noise_variance 0.01; the hinge weight 3 is a
constant of the objective; Adam with amsgrad; a 0.5-minute limit per factual):

- the target rate defaults to 0.3 instead of 0.45: 0.45 is barely below the ~0.5 of a recourse on
  the boundary; the benchmark specification names 0.05..0.3;
- cross-entropy of the favourable class instead of the squared error (``loss_type="mse"`` gives
  theirs, (1 - h(x'))^2), as the benchmark specification asks;
- lam starts at 0.1 instead of 0.01 (with 0.01 the L1 term hardly shapes the path: mean L1 cost
  1.63 against 1.51 on German with the default MLP, same coverage), and it is halved per row
  after each unfinished round; theirs subtracts 0.1 per round, which makes the cost weight
  negative after the first round (the cost is then rewarded);
- the stopping test uses the closed-form IR of the snapped candidate rather than a 10,000-draw
  Monte-Carlo estimate, so the search is deterministic; a row stops as soon as it meets the target
  (theirs finishes the round); plain Adam with lr 0.02 and 100-step rounds replaces amsgrad with
  lr 0.001, and a step budget replaces the wall-clock limit; only unfinished rows are computed;
- the noise and the gradient norm exclude immutable columns (see above); box, directions and
  one-hot groups are enforced during the search (their clamp to [0, 1] acts on a copy, so their
  search is unconstrained), and the final line search is ours.
"""

from __future__ import annotations

import numpy as np
import torch

from ..api import Classifier, Interval, MethodTags, Options, RecourseMethod
from ..models._torch import as_tensor
from ..registry import register
from ._search import FeasibleSet, accepts, adam_search, shrink_to_boundary, validity_loss

LOSSES = ("bce", "mse")
_TINY = 1e-30  # keeps the gradient norm differentiable where the gradient vanishes


def _noise_mask(mutable: np.ndarray | torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """Mutable-column mask as a float tensor broadcastable to ``like`` (all ones if None)."""
    if mutable is None:
        return torch.ones(like.shape[-1], dtype=like.dtype)
    return torch.as_tensor(np.asarray(mutable, dtype=bool)).to(like.dtype)


def invalidation_rate_torch(
    model: Classifier, z: torch.Tensor, noise_std: float, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Differentiable closed-form IR (n,) of every row of ``z``, and the log-odds (n,).

    For use inside an objective: ``z`` must require grad, and both outputs are differentiable in
    ``z`` (the input gradient is taken with ``create_graph=True``). ``mask`` (d,) or (n, d)
    selects the coordinates that receive noise.
    """
    logit = model.logits(z)
    (grad,) = torch.autograd.grad(logit.sum(), z, create_graph=True)
    spread = noise_std * torch.sqrt(((grad * mask) ** 2).sum(dim=1) + _TINY)
    return torch.special.ndtr(-logit / spread), logit  # 1 - Phi(logit / spread)


def invalidation_rate_estimate(
    model: Classifier,
    X: np.ndarray,
    noise_variance: float,
    mutable: np.ndarray | None = None,
) -> np.ndarray:
    """PROBE's closed-form invalidation rate of each row of ``X`` under Gaussian noise.

    IR(x) = 1 - Phi( f(x) / (s * ||m * grad_x f(x)||_2) ) with f the log-odds of the favourable
    class, s^2 = ``noise_variance`` and m the ``mutable`` mask: the probability that
    ``h(x + eps)`` rejects, eps ~ N(0, s^2 diag(m)), exact for a linear model and a first-order
    approximation otherwise.

    Parameters
    ----------
    model : Classifier
        A differentiable classifier (``logits`` on tensors).
    X : ndarray (n, d)
        Points (recourses) in model space; rows with NaN give NaN.
    noise_variance : float
        Variance s^2 of the implementation noise on each noisy coordinate.
    mutable : bool array (d,) or (n, d), optional
        Coordinates that receive noise (default all).

    Returns
    -------
    ndarray (n,)
        Estimated invalidation rates in [0, 1].
    """
    X = np.asarray(X, dtype=float)
    out = np.full(len(X), np.nan)
    rows = ~np.isnan(X).any(axis=1)
    if not rows.any():
        return out
    mask = None if mutable is None else np.asarray(mutable, dtype=bool)
    if mask is not None and mask.ndim == 2:
        mask = mask[rows]
    with torch.enable_grad():
        z = as_tensor(X[rows]).clone().requires_grad_(True)
        std = float(np.sqrt(noise_variance))
        ir, _ = invalidation_rate_torch(model, z, std, _noise_mask(mask, z))
    out[rows] = ir.detach().numpy()
    return out


@register("method", "probe")
class Probe(RecourseMethod):
    """Recourse whose invalidation rate under noisy implementation is at most a target.

    Parameters
    ----------
    invalidation_target : float, default 0.3
        Target invalidation rate r (authors' code: 0.45).
    noise_variance : float, default 0.01
        Variance s^2 of the Gaussian implementation noise on each mutable coordinate (authors'
        value).
    ir_weight : float, default 3.0
        Weight of the hinge max(IR - r, 0) (the authors' constant).
    loss_type : {"bce", "mse"}, default "bce"
        Validity loss: cross-entropy of the favourable class, or (1 - h(x'))^2 (authors' code).
    lam : float, default 0.1
        Initial weight of the L1 cost (authors: 0.01; see the module docstring).
    lam_decay : float, default 0.5
        Factor applied to lam of rows not done after each round.
    n_rounds : int, default 20
        Rounds of ``n_iter`` Adam steps (lam of unfinished rows is halved between rounds).
    n_iter : int, default 100
        Adam steps per round.
    lr : float, default 0.02
        Adam learning rate (model space is [0, 1]).
    eps : float, default 0.005
        A recourse is done once its IR is at most r + eps (authors' ``inval_target_eps``).
    shrink_steps : int, default 30
        Bisection steps of the final line search towards the factual (0 disables it).
    tol : float, default 1e-6
        Per-row early stop: a row stops within a round once its loss changes by less than
        ``tol`` over 10 steps (0 runs every step).
    random_state : int or None, default None
        Unused: the search is deterministic. Accepted so that every method has the parameter.

    Notes
    -----
    ``generate`` returns NaN rows where the model rejects the final recourse. Rows the model
    accepts but whose IR stayed above the target are returned as they are.
    """

    tags = MethodTags(requires_differentiable=True, batch_invariant=True)

    parameter_constraints = {
        "invalidation_target": (Interval("float", low=0, high=0.5, open_high=True),),
        "noise_variance": (Interval("float", low=0, open_low=True),),
        "ir_weight": (Interval("float", low=0),),
        "loss_type": (Options(LOSSES),),
        "lam": (Interval("float", low=0),),
        "lam_decay": (Interval("float", low=0, high=1, open_low=True),),
        "n_rounds": (Interval("int", low=1),),
        "n_iter": (Interval("int", low=1),),
        "lr": (Interval("float", low=0, open_low=True),),
        "eps": (Interval("float", low=0),),
        "shrink_steps": (Interval("int", low=0),),
        "tol": (Interval("float", low=0),),
        "random_state": (Interval("int"), None),
    }

    def __init__(
        self,
        invalidation_target: float = 0.3,
        noise_variance: float = 0.01,
        ir_weight: float = 3.0,
        loss_type: str = "bce",
        lam: float = 0.1,
        lam_decay: float = 0.5,
        n_rounds: int = 20,
        n_iter: int = 100,
        lr: float = 0.02,
        eps: float = 0.005,
        shrink_steps: int = 30,
        tol: float = 1e-6,
        random_state: int | None = None,
    ):
        self.invalidation_target = invalidation_target
        self.noise_variance = noise_variance
        self.ir_weight = ir_weight
        self.loss_type = loss_type
        self.lam = lam
        self.lam_decay = lam_decay
        self.n_rounds = n_rounds
        self.n_iter = n_iter
        self.lr = lr
        self.eps = eps
        self.shrink_steps = shrink_steps
        self.tol = tol
        self.random_state = random_state

    def _validity_loss(self, logit: torch.Tensor) -> torch.Tensor:
        if self.loss_type == "bce":
            return validity_loss(logit)  # -log h(x')
        return torch.sigmoid(-logit) ** 2  # (1 - h(x'))^2

    def generate(self, X: np.ndarray) -> np.ndarray:
        """Recourses for all rows of ``X`` (NaN rows where the model rejects the result)."""
        self.check_fitted()
        X = self.check_factuals(X)
        schema, model = self.schema_, self.model_
        mutable = schema.mutable_mask
        noise_std = float(np.sqrt(self.noise_variance))
        target = float(self.invalidation_target)

        def reached(Z: np.ndarray) -> np.ndarray:
            """Accepted by the model with IR <= r + eps (False for NaN rows)."""
            ok = accepts(model, Z)
            if ok.any():
                ir = invalidation_rate_estimate(model, Z[ok], self.noise_variance, mutable)
                ok[ok] = ir <= target + self.eps
            return ok

        mask = _noise_mask(mutable, as_tensor(X[:1]))
        Z = X.copy()  # the continuous search state of every row
        lam = np.full(len(X), float(self.lam))
        done = np.zeros(len(X), dtype=bool)
        result = np.full_like(X, np.nan)
        for _ in range(int(self.n_rounds)):
            rows = np.flatnonzero(~done)  # only unfinished rows are computed
            x, x0 = X[rows], as_tensor(X[rows])
            weight = torch.as_tensor(lam[rows])

            def objective(
                z: torch.Tensor, x0: torch.Tensor = x0, weight: torch.Tensor = weight
            ) -> torch.Tensor:
                ir, logit = invalidation_rate_torch(model, z, noise_std, mask)
                hinge = torch.clamp(ir - target, min=0.0)
                validity = self._validity_loss(logit)
                return self.ir_weight * hinge + validity + weight * (z - x0).abs().sum(dim=1)

            def finished(z: torch.Tensor, x: np.ndarray = x) -> torch.Tensor:
                return torch.as_tensor(reached(schema.snap(z.detach().numpy(), x)))

            z = adam_search(
                as_tensor(Z[rows]),
                objective,
                FeasibleSet(schema, x),
                steps=self.n_iter,
                lr=self.lr,
                finished=finished,
                tol=self.tol,
            )
            Z[rows] = z.numpy()
            candidates = schema.snap(Z[rows], x)
            newly = reached(candidates)
            result[rows[newly]] = candidates[newly]
            done[rows[newly]] = True
            lam[rows[~newly]] *= self.lam_decay
            if done.all():
                break

        # rows that missed the target keep an accepted (less robust) recourse
        rows = np.flatnonzero(~done)
        candidates = schema.snap(Z[rows], X[rows])
        fallback = accepts(model, candidates)
        result[rows[fallback]] = candidates[fallback]
        return shrink_to_boundary(X, result, reached, schema, self.shrink_steps)
