"""Static metrics: computed once per recourse set, against the base model."""

from __future__ import annotations

import numpy as np

from ..api import EvalContext, MetricValue, share
from ._define import metric


@metric("coverage", stage="static", higher_is_better=True)
def coverage(ctx: EvalContext) -> MetricValue:
    """Share of factuals for which the method returned a recourse (n = factuals).

    >>> import numpy as np
    >>> from recourse_bench.api import EvalContext
    >>> ctx = EvalContext(np.zeros((2, 1)), np.array([[1.0], [np.nan]]), None, None)
    >>> coverage(ctx)
    MetricValue(value=0.5, n=2)
    """
    return share(ctx.found)


@metric("validity", stage="static", higher_is_better=True)
def validity(ctx: EvalContext) -> MetricValue:
    """Share of factuals whose recourse the base model accepts.

    ``n`` is the number of factuals; a factual without recourse counts as invalid.
    """
    return share(ctx.accepted_by(ctx.model))


@metric("cost-l1", stage="static", higher_is_better=False, bounds=(0.0, float("inf")))
def cost_l1(ctx: EvalContext) -> MetricValue:
    """Mean L1 distance in model space between factual and recourse (n = recourses found)."""
    found = ctx.found
    n = int(found.sum())
    if not n:
        return MetricValue(float("nan"), 0)
    distance = np.abs(ctx.recourses[found] - ctx.factuals[found]).sum(axis=1)
    return MetricValue(float(distance.mean()), n)
