"""Nearest positive neighbour: the closest accepted training point that the factual may reach.

A data-point baseline (ALGORITHMS.md, "Nearest positive neighbour"): recourses are real training
points, so they are always plausible. FACE (Poyiadzi et al. 2020, "FACE: feasible and
actionable counterfactual explanations", AIES) refines the idea with density-weighted paths.

Algorithm (batched over chunks of factuals, one tensor computation per chunk):

1. ``fit``: keep the training points ``C`` of the pool that lie inside the schema's global bounds:
   with ``pool="accepted"`` those the model accepts (probability of the favourable class >= 0.5),
   with ``pool="gold"`` those whose training label is 1 (with ``labels: gold``, the label drawn
   from the gold labeller): the GenRe authors' "NNR" baseline, which does not look at the model;
2. ``generate``: for every factual x and candidate c, c is admissible if it equals x on every
   immutable feature and lies in x's per-row box (``schema.bounds_for``: bounds and directions,
   e.g. age may only increase); the recourse is the admissible candidate with the smallest cost
   c(x, c) (L1 by default, or L2). Ties (within 1e-9 of the smallest cost) go to the candidate
   that comes first in the training data. A factual with no admissible candidate gets a row of
   NaN ("no recourse found"). Exact equality on the immutables means that a continuous
   immutable feature (or many immutables on little data, as in Student) leaves few or no
   admissible candidates: coverage then drops, which the results show rather than hide.

Hyperparameters and defaults: ``pool="accepted"``, ``cost="l1"``, ``random_state=None`` (unused:
the method is deterministic; accepted so that every method has the parameter).

Difference from the GenRe authors' NNR (``recourse/nnr.py`` of their code): they take the nearest
positive training point over all of them; here a candidate must also share the factual's immutable
features and lie in its box, as for every method of this benchmark (a recourse that changes an
immutable feature is not feasible, and the harness would count it as not found).

Implementation notes: distances come from ``torch.cdist`` on a (chunk, n_candidates) matrix
(never a (chunk, n_candidates, d) tensor), with chunks of factuals sized so that one float64
distance matrix stays below about 32 MB. The immutable features are compared through one integer
key per distinct immutable profile, and the box only over the columns where a row's box is
tighter than the global bounds (the directed columns), each as one (chunk, n_candidates) mask.
"""

from __future__ import annotations

import numpy as np
import torch

from ..api import Classifier, Interval, MethodTags, Options, RecourseMethod, Splits
from ..registry import register
from ._search import COSTS, accepts

POOLS = ("accepted", "gold")
TIE_TOLERANCE = 1e-9
CHUNK_BYTES = 32 * 2**20  # one (chunk, n_candidates) float64 distance matrix at most


@register("method", "nearest-neighbour")
class NearestNeighbour(RecourseMethod):
    """The closest training point of the pool (accepted, or labelled 1) the factual may reach.

    Parameters
    ----------
    pool : {"accepted", "gold"}, default "accepted"
        The candidates: training points the model accepts, or training points labelled 1 (with
        ``labels: gold``, the gold-positive points: the GenRe paper's NNR).
    cost : {"l1", "l2"}, default "l1"
        Distance in model space that ranks the candidates.
    random_state : int or None, default None
        Unused: the method is deterministic. Accepted so that every method has the parameter.

    Attributes
    ----------
    candidates_ : ndarray (m, d)
        Training points of the pool (in training order), set by :meth:`fit`.

    Notes
    -----
    Rows without an admissible candidate (no training point of the pool shares the factual's
    immutable features inside its box) are returned as NaN. The recourses are training points,
    so they are not snapped; they satisfy ``schema.violations`` by construction.
    """

    tags = MethodTags(trains=True, batch_invariant=True)

    parameter_constraints = {
        "pool": (Options(POOLS),),
        "cost": (Options(COSTS),),
        "random_state": (Interval("int"), None),
    }

    def __init__(self, pool: str = "accepted", cost: str = "l1", random_state: int | None = None):
        self.pool = pool
        self.cost = cost
        self.random_state = random_state

    def fit(self, model: Classifier, splits: Splits) -> NearestNeighbour:
        """Store the training points of the pool: accepted by ``model``, or labelled 1."""
        super().fit(model, splits)
        X = np.asarray(splits.X_train, dtype=float)
        schema = splits.schema
        inside = ((X >= schema.lower_array) & (X <= schema.upper_array)).all(axis=1)
        if self.pool == "accepted":
            member = accepts(model, X)
        else:
            member = np.asarray(splits.y_train) == 1
        self.candidates_ = X[member & inside].copy()
        return self

    def generate(self, X: np.ndarray) -> np.ndarray:
        """Recourses for all rows of ``X`` (NaN rows where no candidate is admissible)."""
        self.check_fitted()
        X = self.check_factuals(X)
        candidates = self.candidates_
        result = np.full_like(X, np.nan)
        if len(X) == 0 or len(candidates) == 0:
            return result
        schema = self.schema_
        lo, hi = schema.bounds_for(X)

        # one integer key per distinct immutable profile: equal keys <=> equal immutables
        immutable = ~schema.mutable_mask
        profiles = np.concatenate([X[:, immutable], candidates[:, immutable]])
        _, keys = np.unique(profiles, axis=0, return_inverse=True)
        keys = keys.reshape(-1)
        key_x, key_c = torch.as_tensor(keys[: len(X)]), torch.as_tensor(keys[len(X) :])
        # mutable columns whose box is tighter than the global bounds for some row (directions)
        tight = schema.mutable_mask & (
            (lo > schema.lower_array).any(axis=0) | (hi < schema.upper_array).any(axis=0)
        )
        tight_cols = np.flatnonzero(tight)

        C = torch.as_tensor(candidates)
        p = 1.0 if self.cost == "l1" else 2.0
        chunk = max(1, CHUNK_BYTES // (8 * len(candidates)))
        for start in range(0, len(X), chunk):
            rows = slice(start, start + chunk)
            x = torch.as_tensor(X[rows])
            allowed = key_x[rows, None] == key_c[None, :]
            for j in tight_cols:
                column = C[None, :, j]
                allowed &= (column >= torch.as_tensor(lo[rows, j, None])) & (
                    column <= torch.as_tensor(hi[rows, j, None])
                )
            distance = torch.cdist(x, C, p=p, compute_mode="donot_use_mm_for_euclid_dist")
            distance.masked_fill_(~allowed, torch.inf)
            best = distance.min(dim=1).values
            # first candidate (training order) within the tie tolerance of the smallest cost
            winner = (distance <= best[:, None] + TIE_TOLERANCE).to(torch.uint8).argmax(dim=1)
            found = torch.isfinite(best).numpy()
            block = result[rows]
            block[found] = candidates[winner.numpy()[found]]
            result[rows] = block
        return result
