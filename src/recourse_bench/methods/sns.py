"""SNS (Stable Neighbour Search): move a counterfactual to a nearby point of high, flat confidence.

Black, Wang and Fredrikson (ICLR 2022), "Consistent Counterfactuals for Deep Models"
(arXiv:2110.03109). Reference code read: zifanw/consistency@f8c605e,
``code/consistency/attack_utils.py`` (``batch_sns_search``, ``linear_integral``, ``update_delta``,
``unit_vector``, ``l2_norm``) and ``code/consistency/attack_methods.py``
(``StableNeighborSearch``).

SNS post-processes a counterfactual x'_0 that the model already accepts: it looks, within an L2
ball of radius eps around x'_0, for a point where the favourable-class probability h is high all
along the ray from the origin, a proxy the paper ties to the counterfactual staying valid when the
model is retrained. The objective of a row is the Riemann sum (the authors' ``linear_integral``)

    J(x') = sum_{t=1..n} h((t / n) x'),   n = ``n_interpolations``,

taken along the straight line from the all-zero baseline to x'. The baseline is the authors' and
we keep it for faithfulness, but it makes J depend on where the origin lies: in our [0, 1] model
space the origin is the point with every feature at its minimum (and no one-hot level set), so
J rewards a high h on the segment between that corner and x', not only near x'. Immutable
coordinates are scaled along the ray too (they only receive no step).

Algorithm (batched over all factuals, one tensor computation per step):

1. base counterfactuals x'_0: the ``base`` method (Wachter by default, :mod:`.wachter`, with its
   default parameters; or Growing Spheres) for all rows; rows where it finds none stay NaN;
2. start from x'_0 plus Gaussian jitter of standard deviation ``noise_std`` on the coordinates
   each row may change (drawn from a ``torch.Generator`` seeded by ``random_state``), projected
   onto the feasible set;
3. ``sns_nb_iters`` times, for all rows together: compute the gradient of J per row, keep its
   mutable coordinates (those the per-row box of ``schema.bounds_for`` lets move), step
   x' += ``sns_eps_iter`` * g / ||g||_2 (a row with a zero gradient stays), project onto the L2
   ball of radius ``sns_eps`` around x'_0 (scale the offset by min(1, eps / ||x' - x'_0||)), then
   onto the feasible set (:class:`._search.FeasibleSet`: one-hot groups onto their simplex,
   then the box, which holds bounds, directions and immutables; since x'_0 lies in both convex
   sets, the result stays in the ball); snap the iterate (``schema.snap``: round one-hot groups
   and integers) and, where the model still accepts it and the rounding left it inside the
   ball, make it the row's current answer: each row keeps its LAST accepted iterate, as the
   authors do (not the one with the highest J);
4. a row with no accepted iterate keeps x'_0. The answers are snapped once more and re-checked:
   a row the model rejects (probability of class 1 < 0.5) is returned as NaN.

With a logistic model h = sigma(w.x + b), grad J is a positive multiple of w everywhere, so each
step moves exactly ``sns_eps_iter`` * w / ||w|| and, without jitter or clipping, after K steps
x' = x'_0 + min(K * eta, eps) w / ||w|| (the tests check this).

Hyperparameters and defaults (the authors' ``StableNeighborSearch``): ``sns_eps=0.3`` (radius
eps of the L2 ball), ``sns_nb_iters=100`` (steps), ``sns_eps_iter=1e-3`` (L2 step length eta),
``n_interpolations=20`` (n); ``noise_std=1e-3`` (the ``stddev`` of ``batch_sns_search``); the
norm p = 2 (their default; the L-infinity sign step is not offered); ``base="wachter"``;
``random_state=None``. With eta = 1e-3 and 100 steps a row moves at most 0.1 in L2, so the
default radius 0.3 binds only for larger step budgets. Cost: every step evaluates the model and
its gradient at n points per row; for 1,000 German factuals on the default MLP (one thread, a
shared machine) the 100 steps took about 8 s on top of Wachter's 8 s.

Differences from the authors' code:

- the base counterfactuals come from our Wachter (or Growing Spheres) rather than their
  IterativeSearch / PGDsL2 generators, so that SNS starts from the same baseline as T-Rex;
- steps touch only the coordinates the row may change and every iterate is projected onto the
  schema's box and one-hot simplices (theirs clip every feature to one global [0, 1] range); the
  jitter also covers only those coordinates;
- acceptance is checked on the snapped iterate (one-hot groups and integers rounded: the point
  the user would get), theirs on the continuous one; the output is then always feasible. A
  snapped iterate is also kept only if it lies in the eps-ball (rounding an integer column to a
  coarse grid can carry it out), so ||x' - x'_0||_2 <= eps holds for every returned recourse;
- the gradient is normalised exactly (g / ||g||, a zero gradient gives no step); theirs divides by
  ||g|| + 1e-7, which shortens the steps where h saturates and ||g|| is tiny;
- the objective is the favourable-class probability sigma(logit) of our binary models instead of
  the softmax output of the counterfactual's class (the same thing for two classes), and the
  per-row gradient of the sum over rows replaces that of their batch mean (equal after
  normalisation); J is computed in chunks of rows so that memory stays bounded;
- the jitter is drawn from ``random_state`` (theirs is unseeded) for all rows of a call at once,
  so a row's result depends on its position in the batch (hence not ``batch_invariant``);
- a row whose final answer the model rejects returns NaN instead of the rejected point.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from .. import registry
from ..api import Classifier, Interval, MethodTags, Options, RecourseMethod, Splits
from ..models._torch import as_tensor
from ..registry import register
from ..seeding import generator_for
from ._search import FeasibleSet, accepts

BASES = ("wachter", "growing-spheres")
_BALL_SLACK = 1e-9  # rounding allowance of the L2 ball test on snapped iterates
_CHUNK_ELEMENTS = 2**22  # interpolated input elements per chunk (32 MiB of float64 inputs)


def ray_objective(
    model: Classifier, z: torch.Tensor, n_interpolations: int, *, grad: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """SNS objective J(z) = sum_{t=1..n} h((t/n) z) of every row, and optionally its gradient.

    Parameters
    ----------
    model : Classifier
        Differentiable classifier (``logits`` on tensors); h = sigmoid(logits).
    z : tensor (n_rows, d)
        Points.
    n_interpolations : int
        Number n of points on the ray from the zero baseline to ``z``.
    grad : bool
        Also return dJ/dz (n_rows, d).

    Returns
    -------
    J : tensor (n_rows,)
        Between 0 and ``n_interpolations``.
    gradient : tensor (n_rows, d) or None
    """
    n, d = z.shape
    scales = torch.arange(1, n_interpolations + 1, dtype=z.dtype) / n_interpolations
    values = torch.empty(n, dtype=z.dtype)
    gradient = torch.zeros_like(z) if grad else None
    size = max(1, _CHUNK_ELEMENTS // max(1, n_interpolations * d))
    for start in range(0, n, size):
        part = slice(start, start + size)
        zc = z[part].detach().clone().requires_grad_(grad)
        with torch.set_grad_enabled(grad):
            ray = scales[:, None, None] * zc[None, :, :]  # (n_interpolations, rows, d)
            h = torch.sigmoid(model.logits(ray.reshape(-1, d))).reshape(n_interpolations, -1)
            total = h.sum(dim=0)
            if gradient is not None:
                (gradient[part],) = torch.autograd.grad(total.sum(), zc)
        values[part] = total.detach()
    return values, gradient


def ray_stability(model: Classifier, X: np.ndarray, n_interpolations: int = 20) -> np.ndarray:
    """Mean favourable-class probability along the ray from the origin to each row: J / n.

    Rows with NaN give NaN.
    """
    X = np.asarray(X, dtype=float)
    out = np.full(len(X), np.nan)
    rows = ~np.isnan(X).any(axis=1)
    if rows.any():
        values, _ = ray_objective(model, as_tensor(X[rows]), int(n_interpolations))
        out[rows] = values.numpy() / n_interpolations
    return out


@register("method", "sns")
class StableNeighbourSearch(RecourseMethod):
    """A base counterfactual moved by normalised gradient ascent on the ray-integrated confidence.

    Parameters
    ----------
    sns_eps : float, default 0.3
        Radius of the L2 ball around the base counterfactual that the search stays in
        (authors' value).
    sns_nb_iters : int, default 100
        Gradient steps (authors' value; 0 returns the base counterfactuals, snapped).
    sns_eps_iter : float, default 1e-3
        L2 length of each normalised gradient step (authors' value).
    n_interpolations : int, default 20
        Points n of the Riemann sum along the ray from the zero baseline (authors' value).
    noise_std : float, default 1e-3
        Standard deviation of the Gaussian jitter added to the base counterfactual before the
        search (authors' value; 0 disables it).
    base : {"wachter", "growing-spheres"}, default "wachter"
        Registered method that gives the base counterfactuals (built with its defaults and
        this ``random_state``).
    random_state : int or None, default None
        Seeds the jitter (and the base method).

    Notes
    -----
    ``generate`` returns NaN rows where the base method finds no counterfactual or the model
    rejects the final recourse.
    """

    uses = (("method", "wachter"), ("method", "growing-spheres"))  # the possible bases
    tags = MethodTags(requires_differentiable=True, stochastic=True)
    _test_params: ClassVar[dict[str, Any]] = {"sns_nb_iters": 20, "sns_eps_iter": 5e-3}

    parameter_constraints = {
        "sns_eps": (Interval("float", low=0),),
        "sns_nb_iters": (Interval("int", low=0),),
        "sns_eps_iter": (Interval("float", low=0, open_low=True),),
        "n_interpolations": (Interval("int", low=1),),
        "noise_std": (Interval("float", low=0),),
        "base": (Options(BASES),),
        "random_state": (Interval("int"), None),
    }

    def __init__(
        self,
        sns_eps: float = 0.3,
        sns_nb_iters: int = 100,
        sns_eps_iter: float = 1e-3,
        n_interpolations: int = 20,
        noise_std: float = 1e-3,
        base: str = "wachter",
        random_state: int | None = None,
    ):
        self.sns_eps = sns_eps
        self.sns_nb_iters = sns_nb_iters
        self.sns_eps_iter = sns_eps_iter
        self.n_interpolations = n_interpolations
        self.noise_std = noise_std
        self.base = base
        self.random_state = random_state

    def fit(self, model: Classifier, splits: Splits) -> StableNeighbourSearch:
        """Attach the model and fit the base method on the same model and data."""
        super().fit(model, splits)
        base = registry.get("method", self.base)(random_state=self.random_state)
        self.base_ = base.fit(model, splits)
        return self

    def generate(self, X: np.ndarray) -> np.ndarray:
        """Recourses for all rows of ``X`` (NaN rows where none was found)."""
        self.check_fitted()
        X = self.check_factuals(X)
        schema, model = self.schema_, self.model_
        result = np.full_like(X, np.nan)
        base = self.base_.generate(X)
        rows = np.flatnonzero(~np.isnan(base).any(axis=1))
        if len(rows) == 0:
            return result

        x, centre = X[rows], as_tensor(base[rows])
        feasible = FeasibleSet(schema, x)
        free = feasible.free.to(centre.dtype)  # coordinates each row may change
        generator = generator_for(self.random_state)
        jitter = torch.randn(centre.shape, generator=generator, dtype=centre.dtype)
        z = centre + jitter * float(self.noise_std) * free
        feasible.project_(z)
        best = centre.clone()  # per row, the last snapped iterate the model accepts
        for _ in range(int(self.sns_nb_iters)):
            _, grad = ray_objective(model, z, int(self.n_interpolations), grad=True)
            assert grad is not None
            grad = grad * free
            norm = grad.norm(dim=1, keepdim=True)
            z = z + float(self.sns_eps_iter) * torch.where(norm > 0, grad / norm, 0.0)
            offset = z - centre
            length = offset.norm(dim=1, keepdim=True).clamp_min(1e-300)
            z = centre + offset * torch.clamp(float(self.sns_eps) / length, max=1.0)
            feasible.project_(z)  # convex sets holding the centre: z stays in the ball
            snapped = schema.snap(z.numpy(), x)
            inside = np.linalg.norm(snapped - base[rows], axis=1) <= self.sns_eps + _BALL_SLACK
            kept = accepts(model, snapped) & inside
            best[torch.as_tensor(kept)] = as_tensor(snapped[kept])

        candidates = schema.snap(best.numpy(), x)
        candidates[~accepts(model, candidates)] = np.nan
        result[rows] = candidates
        return result
