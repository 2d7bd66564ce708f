r"""An example recourse method, written as a plugin: the nearest neighbour, pulled back.

Start from the closest training point the model accepts (the built-in ``nearest-neighbour``) and
move back towards the factual along the segment between them, as far as the model still accepts
the point: ``x(t) = x + t (c - x)``, with the smallest accepted ``t`` in [0, 1] found by
bisection, for all factuals at once. The recourse costs less than the neighbour's and stays on a
path towards a real accepted point.

Try it (see docs/new-method.md)::

    recourse-bench check-method --plugin examples/shrunk_neighbour.py
    recourse-bench run benchmarks/quick.yaml --plugin examples/shrunk_neighbour.py \
        --only method=shrunk-neighbour,wachter,roar --out runs/mine
"""

from __future__ import annotations

import numpy as np

from recourse_bench import MethodTags, RecourseMethod, register
from recourse_bench.api import Interval
from recourse_bench.methods.nearest_neighbour import NearestNeighbour


@register("method", "shrunk-neighbour")
class ShrunkNeighbour(RecourseMethod):
    """The nearest accepted neighbour, moved back towards the factual while still accepted.

    Parameters
    ----------
    n_steps : int, default 12
        Bisection steps on the segment (the returned point is within ``2**-n_steps`` of the
        segment's length from the boundary).
    random_state : int or None, default None
        Unused: the method is deterministic.
    """

    # it learns from the training data; each factual's recourse depends on that factual only
    tags = MethodTags(trains=True, batch_invariant=True)
    parameter_constraints = {
        "n_steps": (Interval("int", low=1),),
        "random_state": (Interval("int"), None),  # None is admitted too
    }

    def __init__(self, n_steps: int = 12, random_state: int | None = None):
        self.n_steps = n_steps
        self.random_state = random_state

    def fit(self, model, splits):
        """Fit the nearest-neighbour search on the training points the model accepts."""
        super().fit(model, splits)
        self.neighbour_ = NearestNeighbour().fit(model, splits)
        return self

    def generate(self, X: np.ndarray) -> np.ndarray:
        """Recourses for all rows of ``X`` (NaN where no accepted neighbour is reachable)."""
        self.check_fitted()
        X = self.check_factuals(X)
        target = self.neighbour_.generate(X)
        found = ~np.isnan(target).any(axis=1)
        low = np.zeros(len(X))  # rejected end of the search interval (the factual)
        high = np.ones(len(X))  # accepted end (the neighbour)
        for _ in range(int(self.n_steps)):
            middle = (low + high) / 2
            accepted = self._accepted(X, target, middle) & found
            high = np.where(accepted, middle, high)
            low = np.where(accepted, low, middle)
        result = self._point(X, target, high)
        result[~found] = np.nan
        return result

    def _point(self, X: np.ndarray, target: np.ndarray, t: np.ndarray) -> np.ndarray:
        """``x + t (c - x)`` snapped to the schema (integer grid, one-hot groups, box)."""
        moved = X + t[:, None] * (np.nan_to_num(target, nan=0.0) - X)
        return self.schema_.snap(np.where(np.isnan(target), X, moved), X)

    def _accepted(self, X: np.ndarray, target: np.ndarray, t: np.ndarray) -> np.ndarray:
        return np.asarray(self.model_.predict(self._point(X, target, t))) == 1
