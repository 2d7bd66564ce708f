"""Update metrics: computed once per updated model."""

from __future__ import annotations

import numpy as np

from ..api import EvalContext, MetricValue, share
from ._define import metric


@metric("invalidation-rate", stage="update", higher_is_better=False)
def invalidation_rate(ctx: EvalContext) -> MetricValue:
    """Among recourses the base model accepts, the share the updated model rejects.

    ``n`` is that denominator: the number of recourses valid before the update (NaN when 0).
    """
    valid_before = ctx.accepted_by(ctx.model)
    return share(~ctx.accepted_by(ctx.updated), of=valid_before)


@metric("validity-after-update", stage="update", higher_is_better=True)
def validity_after_update(ctx: EvalContext) -> MetricValue:
    """Share of all factuals whose recourse the updated model accepts (n = factuals)."""
    return share(ctx.accepted_by(ctx.updated))


@metric("worst-case-validity", stage="shift", higher_is_better=True)
def worst_case_validity(ctx: EvalContext) -> MetricValue:
    """Share of factuals whose recourse every one of the K updated models accepts (n = factuals).

    >>> import numpy as np
    >>> from recourse_bench.api import EvalContext
    >>> from recourse_bench.models import linear_classifier
    >>> accept_x0 = linear_classifier(np.array([1.0]), -0.5)  # accepts x >= 0.5
    >>> strict = linear_classifier(np.array([1.0]), -0.8)  # accepts x >= 0.8
    >>> ctx = EvalContext(np.zeros((2, 1)), np.array([[0.6], [0.9]]), accept_x0, None,
    ...                   updated_models=(accept_x0, strict))
    >>> worst_case_validity(ctx)
    MetricValue(value=0.5, n=2)
    """
    accepted = np.ones(len(ctx.recourses), dtype=bool)
    for model in ctx.updated_models:
        accepted &= ctx.accepted_by(model)
    return share(accepted & ctx.found)
