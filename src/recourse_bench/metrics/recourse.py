"""Static metrics: computed once per recourse set, against the base model.

In a run every metric sees only the feasible recourses (``EvalContext.recourses``): a recourse
that breaks a constraint of the schema counts as not found for coverage, validity, cost and
plausibility alike, and :func:`violations` counts how many there were.
"""

from __future__ import annotations

import numpy as np

from ..api import EvalContext, MetricValue, share
from ._define import metric


@metric("coverage", stage="static", higher_is_better=True)
def coverage(ctx: EvalContext) -> MetricValue:
    """Share of factuals for which the method returned a feasible recourse (n = factuals).

    A recourse that breaks a constraint (see ``violations``) counts as not found.

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

    ``n`` is the number of factuals; a factual without a feasible recourse counts as invalid.
    """
    return share(ctx.accepted_by(ctx.model))


@metric("cost-l1", stage="static", higher_is_better=False, bounds=(0.0, float("inf")))
def cost_l1(ctx: EvalContext) -> MetricValue:
    """Mean L1 distance in model space between factual and recourse (n = feasible recourses)."""
    found = ctx.found
    n = int(found.sum())
    if not n:
        return MetricValue(float("nan"), 0)
    distance = np.abs(ctx.recourses[found] - ctx.factuals[found]).sum(axis=1)
    return MetricValue(float(distance.mean()), n)


@metric("violations", stage="static", higher_is_better=False)
def violations(ctx: EvalContext) -> MetricValue:
    """Share of the recourses returned that break a constraint of the schema (n = returned).

    The constraints are those of :meth:`~recourse_bench.api.Schema.broken_constraints`: an
    immutable feature changed, a direction reversed, a bound left, a one-hot group broken, an
    integer off its grid (tolerance 1e-6 in model space). Every other metric counts such a
    recourse as not found. The note (the row's ``reason``) names the first broken constraint,
    with its factual and feature, and counts the recourses per kind. NaN with ``n`` 0 when the
    method returned no recourse. The harness computes it in every run.

    >>> import numpy as np
    >>> from recourse_bench.api import EvalContext, Schema, Splits
    >>> schema = Schema(("age", "income"), ("continuous",) * 2, (True, False), (0, 0),
    ...                 (0.0, 0.0), (1.0, 1.0), (0.0, 0.0))
    >>> splits = Splits(np.zeros((1, 2)), np.zeros(1), np.zeros((1, 2)), np.zeros(1), schema)
    >>> factuals = np.array([[0.2, 0.1], [0.3, 0.1], [0.4, 0.1]])
    >>> returned = np.array([[0.5, 0.9], [0.3, 0.8], [np.nan, np.nan]])
    >>> value = violations(EvalContext(factuals, returned, None, splits))
    >>> value
    MetricValue(value=0.5, n=2)
    >>> value.note
    'immutable: factual 0 changes age 0.2 -> 0.5; 1 of 2 recourses break a constraint (immutable 1)'
    """
    returned = ctx.returned_recourses
    returned_rows = ~np.isnan(returned).any(axis=1)
    n = int(returned_rows.sum())
    if not n:
        return MetricValue(float("nan"), 0)
    schema = ctx.splits.schema
    broken = schema.broken_constraints(returned, ctx.factuals)
    per_row = {kind: cells.any(axis=1) for kind, cells in broken.items()}
    bad = np.logical_or.reduce(list(per_row.values()))
    if not bad.any():
        return MetricValue(0.0, n)
    row = int(np.flatnonzero(bad)[0])
    kind = next(kind for kind, rows in per_row.items() if rows[row])
    column = int(np.flatnonzero(broken[kind][row])[0])
    before, after = ctx.factuals[row, column], returned[row, column]
    counts = ", ".join(f"{k} {int(rows.sum())}" for k, rows in per_row.items() if rows.any())
    note = (
        f"{kind}: factual {row} changes {schema.features[column]} {before:.3g} -> {after:.3g}; "
        f"{int(bad.sum())} of {n} recourses break a constraint ({counts})"
    )
    return MetricValue(float(bad.sum()) / n, n, note)
