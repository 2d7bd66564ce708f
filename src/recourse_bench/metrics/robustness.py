"""Update metrics: computed once per updated model."""

from __future__ import annotations

from ..api import EvalContext, MetricValue, share
from ._define import metric


@metric("invalidation-rate", stage="update", higher_is_better=False)
def invalidation_rate(ctx: EvalContext) -> MetricValue:
    """Among recourses the base model accepts, the share the updated model rejects.

    ``n`` is that denominator: the number of recourses valid before the update (NaN when 0).
    """
    valid_before = ctx.accepted_by(ctx.model)
    return share(~ctx.accepted_by(ctx.updated), of=valid_before)
