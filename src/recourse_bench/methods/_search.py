"""Batched building blocks for gradient-based recourse search (shared by the gradient methods).

Every function works on a whole (n, d) batch of candidates at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch.nn import functional as F

from ..api import Classifier, Schema
from ..models._torch import as_tensor

COSTS = ("l1", "l2")


def distance(delta: torch.Tensor, cost: str) -> torch.Tensor:
    """Per-row L1 or L2 norm of ``delta`` (the L2 norm smoothed at 0 so its gradient exists)."""
    if cost == "l1":
        return delta.abs().sum(dim=1)
    return torch.sqrt((delta**2).sum(dim=1) + 1e-12)


def validity_loss(logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the favourable class given its log-odds: ``-log sigma(logits)``."""
    return F.softplus(-logits)


def project_simplex(V: torch.Tensor) -> torch.Tensor:
    """Euclidean projection of every vector along the last axis of ``V`` onto the simplex.

    The threshold ``theta`` with ``sum(max(v - theta, 0)) = 1`` is the largest of the partial
    thresholds ``(sum of the j largest entries - 1) / j`` (they rise up to the size of the
    support and fall after it), so no gather by the support size is needed: one sort, one
    cumulative sum and one maximum. A sort-free variant (pairwise comparisons, O(k^2)) and
    Michelot's fixed-point iteration were measured slower on CPU for Adult's groups (widths
    5 to 14): 2-4x and 3-7x the time of this sort.
    """
    k = V.shape[-1]
    sorted_v, _ = torch.sort(V, dim=-1, descending=True)
    partial = sorted_v.cumsum(dim=-1).sub_(1.0).div_(torch.arange(1, k + 1, dtype=V.dtype))
    theta = partial.amax(dim=-1, keepdim=True)
    return (V - theta).clamp_(min=0.0)


def _simplex_blocks(groups: list[list[int]]) -> tuple[list[tuple[int, int, int]], list[list[int]]]:
    """Split one-hot groups into contiguous blocks and scattered groups.

    Returns ``(blocks, scattered)``: each block ``(start, count, width)`` covers ``count``
    adjacent groups of equal ``width`` whose columns are ``start .. start + count * width - 1``
    in order, so that it is projected through a (n, count, width) view of the candidates,
    without a gather or scatter; a group whose columns are not contiguous and ascending is
    left in ``scattered`` (projected through an index).
    """
    blocks: list[tuple[int, int, int]] = []
    scattered: list[list[int]] = []
    for g in groups:
        if list(g) != list(range(g[0], g[0] + len(g))):
            scattered.append(list(g))
        elif blocks and blocks[-1][2] == len(g) and blocks[-1][0] + blocks[-1][1] * len(g) == g[0]:
            start, count, width = blocks[-1]
            blocks[-1] = (start, count + 1, width)
        else:
            blocks.append((g[0], 1, len(g)))
    return blocks, scattered


class FeasibleSet:
    """The per-row box and one-hot groups that candidates are projected onto during a search.

    Parameters
    ----------
    schema : Schema
        Bounds, directions, immutables and one-hot groups.
    X : ndarray (n, d)
        The factuals (they set the per-row box).
    """

    def __init__(self, schema: Schema, X: np.ndarray):
        lo, hi = schema.bounds_for(X)
        self.lower, self.upper = as_tensor(lo), as_tensor(hi)
        self.groups = [list(g) for g in schema.groups]
        self.free = self.lower < self.upper  # coordinates a gradient step may move
        self._blocks, self._scattered = _simplex_blocks(self.groups)

    def project_(self, Z: torch.Tensor) -> None:
        """Project candidates in place: one-hot groups onto the simplex, then into the box."""
        with torch.no_grad():
            for start, count, width in self._blocks:
                columns = slice(start, start + count * width)
                Z[:, columns] = project_simplex(Z[:, columns].unflatten(1, (count, width))).flatten(
                    1
                )
            for group in self._scattered:
                Z[:, group] = project_simplex(Z[:, group])
            torch.clamp(Z, self.lower, self.upper, out=Z)

    def subset(self, rows: torch.Tensor) -> FeasibleSet:
        """The feasible set of the rows ``rows`` only (an index or a boolean mask)."""
        part = object.__new__(FeasibleSet)
        part.__dict__.update(self.__dict__)
        part.lower, part.upper, part.free = self.lower[rows], self.upper[rows], self.free[rows]
        return part


def adam_search(
    start: torch.Tensor,
    objective: Callable[[torch.Tensor], torch.Tensor],
    feasible: FeasibleSet,
    *,
    steps: int,
    lr: float,
    finished: Callable[[torch.Tensor], torch.Tensor] | None = None,
    tol: float = 0.0,
    check_every: int = 10,
    polish_steps: int = 0,
) -> torch.Tensor:
    """Projected Adam on a batch of candidates, each row stopping on its own.

    Gradients are enabled inside even when the caller runs under ``torch.no_grad()``.

    Parameters
    ----------
    start : tensor (n, d)
        Initial candidates (not modified).
    objective : callable
        Maps candidates ``z`` (n, d) to the per-row loss (n,); rows are independent.
    feasible : FeasibleSet
        Box and one-hot groups; frozen coordinates never receive a gradient and every step is
        projected back.
    steps, lr : int, float
        Step budget and Adam learning rate.
    finished : callable, optional
        Maps ``z`` to a bool tensor (n,): rows that reached their goal stop moving.
    tol : float
        A row also stops when its loss changed by less than ``tol`` since the last check
        (0 disables this rule).
    check_every : int
        Steps between two checks of ``finished`` and ``tol``.
    polish_steps : int
        Projected-gradient steps with a per-row Armijo step size after Adam, for the rows that
        did not stop on ``finished`` (0 disables it). Adam's near-sign steps followed by a
        Euclidean projection stall on the faces of the simplex of a one-hot group; plain
        projected gradient steps, each accepted only where it lowers the loss enough, go on
        from there.

    Returns
    -------
    tensor (n, d)
        The candidates, detached.
    """
    with torch.enable_grad():
        z, reached = _adam_steps(start, objective, feasible, steps, lr, finished, tol, check_every)
        if polish_steps > 0 and not reached.all():
            z[~reached] = _polish(z[~reached], objective, feasible, ~reached, polish_steps, lr)
        return z


def _polish(
    z: torch.Tensor,
    objective: Callable[[torch.Tensor], torch.Tensor],
    feasible: FeasibleSet,
    rows: torch.Tensor,
    steps: int,
    step_size: float,
) -> torch.Tensor:
    """Projected gradient descent with a per-row Armijo step size, on the rows ``rows``.

    ``objective`` sees the full batch: the rows not polished keep their values (zeros). When
    every row is polished the batch is the candidates themselves (no copy).
    """
    every = bool(rows.all())
    full = torch.zeros(len(rows), z.shape[1], dtype=z.dtype)
    t = torch.full((len(z),), float(step_size), dtype=z.dtype)
    free = feasible.free[rows].to(z.dtype)
    part_set = feasible.subset(rows)

    def loss_of(part: torch.Tensor) -> torch.Tensor:
        if every:
            return objective(part)
        batch = full.clone()
        batch[rows] = part
        return objective(batch)[rows]

    for _ in range(int(steps)):
        current = z.detach().requires_grad_(True)
        loss = loss_of(current)
        (gradient,) = torch.autograd.grad(loss.sum(), current)
        with torch.no_grad():
            candidate = z - t[:, None] * gradient * free
            part_set.project_(candidate)
            new_loss = loss_of(candidate)
            moved = ((candidate - z) ** 2).sum(dim=1)
            better = new_loss <= loss.detach() - 1e-4 * moved / t
            z = torch.where(better[:, None], candidate, z)
            t = torch.where(better, t * 1.5, t / 2)
    return z


ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


def _adam_steps(
    start: torch.Tensor,
    objective: Callable[[torch.Tensor], torch.Tensor],
    feasible: FeasibleSet,
    steps: int,
    lr: float,
    finished: Callable[[torch.Tensor], torch.Tensor] | None,
    tol: float,
    check_every: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Projected Adam, with torch's update rule (``torch.optim.Adam`` defaults) written out.

    Written out rather than ``torch.optim.Adam`` so that a step is a handful of in-place
    operations on preallocated tensors: the gradient mask (free coordinates of moving rows)
    is built at each check only, and a row that stops has its first moment zeroed, so that
    its later updates are exactly 0 and it stays where it stopped without a copy per step.
    """
    n = start.shape[0]
    beta1, beta2 = ADAM_BETAS
    moving = torch.ones(n, dtype=torch.bool)
    reached = torch.zeros(n, dtype=torch.bool)
    z = start.detach().clone()
    exp_avg, exp_avg_sq, denom = torch.zeros_like(z), torch.zeros_like(z), torch.empty_like(z)
    mask = feasible.free.to(z.dtype)
    last_loss = torch.full((n,), float("inf"), dtype=start.dtype)
    for step in range(int(steps)):
        z.requires_grad_(True)
        loss = objective(z)
        if step % check_every == 0:
            with torch.no_grad():
                done = (loss - last_loss).abs() < tol
                if finished is not None:
                    goal = finished(z) & moving
                    reached |= goal
                    done |= goal
                if done.any():
                    moving &= ~done
                    mask = (feasible.free & moving[:, None]).to(z.dtype)
                    exp_avg.mul_(moving[:, None])  # a stopped row never moves again
                last_loss = loss.detach()
            if not moving.any():
                z = z.detach()
                break
        (gradient,) = torch.autograd.grad(loss.sum(), z)
        z = z.detach()
        with torch.no_grad():
            gradient.mul_(mask)
            t = step + 1
            exp_avg.lerp_(gradient, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(gradient, gradient, value=1 - beta2)
            torch.sqrt(exp_avg_sq, out=denom).div_(math.sqrt(1 - beta2**t)).add_(ADAM_EPS)
            z.addcdiv_(exp_avg, denom, value=-lr / (1 - beta1**t))
            feasible.project_(z)
    return z.detach(), reached


def accepts(model: Classifier, X: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Rows of ``X`` whose favourable-class probability reaches ``threshold`` (False for NaN)."""
    ok = np.zeros(len(X), dtype=bool)
    rows = ~np.isnan(X).any(axis=1)
    if rows.any():
        ok[rows] = model.predict_proba(X[rows])[:, 1] >= threshold
    return ok


def shrink_to_boundary(
    X: np.ndarray,
    X_cf: np.ndarray,
    is_valid: Callable[[np.ndarray], np.ndarray],
    schema: Schema,
    n_steps: int = 30,
) -> np.ndarray:
    """Move each valid recourse back towards its factual as far as it stays valid.

    A batched bisection over t in [0, 1] on x + t (x_cf - x): the cost of every recourse shrinks
    by the factor t it ends at, and validity is kept (the t = 1 end is always valid). Candidates
    are snapped with ``schema`` before each check. Rows of NaN stay NaN.
    """
    found = ~np.isnan(X_cf).any(axis=1)
    if not found.any() or n_steps <= 0:
        return X_cf
    x, direction = X[found], X_cf[found] - X[found]
    low, high = np.zeros(len(x)), np.ones(len(x))
    for _ in range(n_steps):
        mid = (low + high) / 2
        valid = is_valid(schema.snap(x + mid[:, None] * direction, x))
        high = np.where(valid, mid, high)
        low = np.where(valid, low, mid)
    out = X_cf.copy()
    out[found] = schema.snap(x + high[:, None] * direction, x)
    return out
