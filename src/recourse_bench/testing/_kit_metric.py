"""The conformance checks of a metric plugin: a pure function of an evaluation context.

On the toy problem, with recourses that are accepted, rejected and missing, and two updated
models: the metric returns a :class:`~recourse_bench.api.MetricValue` of a float inside its
declared bounds (or NaN) and a count ``n`` >= 0; it gives the same value twice; it changes
neither the context's arrays nor the global random states; it copes with a set where no
recourse was found.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from .. import registry
from ..api import EvalContext, Metric, MetricValue, NotApplicable
from ._common import SkipCheck, checks_registry, describe_exception, fail, run_without_global_rng
from ._problem import ToyProblem

CHECKS, _check = checks_registry()


def metric_context(problem: ToyProblem, metric: Metric) -> EvalContext:
    """The toy problem's factuals with varied recourses, ready for ``metric``'s stage.

    The recourses are the nearest training points the model accepts for the first third of
    the factuals, the factuals themselves (rejected) for the second, and NaN (none found) for
    the last; ``update`` metrics see a retrained model, ``shift`` metrics two.
    """
    splits, model, factuals = problem.splits, problem.model, problem.factuals
    accepted = splits.X_train[np.asarray(model.predict(splits.X_train)) == 1]
    nearest = accepted[np.abs(factuals[:, None] - accepted[None]).sum(-1).argmin(axis=1)]
    third = len(factuals) // 3
    recourses = np.vstack(
        [nearest[:third], factuals[third : 2 * third], np.nan * factuals[2 * third :]]
    )
    context = EvalContext.feasible_only(factuals, recourses, model, splits)
    trainer = registry.get("model", problem.model_name)()
    updated = [trainer.fit(splits.X_train, splits.y_train, seed) for seed in (1, 2)]
    if metric.stage == "update":
        return replace(context, updated=updated[0])
    if metric.stage == "shift":
        return replace(context, updated_models=tuple(updated))
    return context


def _measure(metric: Metric, context: EvalContext) -> MetricValue:
    try:
        value = metric(context)
    except NotApplicable as exc:
        raise SkipCheck(f"the metric does not apply to the toy problem: {exc}") from None
    if not isinstance(value, MetricValue):
        raise fail(
            "the metric to return recourse_bench.api.MetricValue(value, n)",
            type(value).__name__,
            "return MetricValue(float(value), n) (or share(mask) for a share)",
        )
    return value


@_check
def check_value_and_count(metric: Metric, problem: ToyProblem) -> None:
    """The value is a float inside the declared bounds (or NaN); ``n`` is an int >= 0."""
    value = _measure(metric, metric_context(problem, metric))
    low, high = metric.bounds
    number = value.value
    if not isinstance(number, float | int) or isinstance(number, bool):
        raise fail("a float value", type(number).__name__, "return float(value)")
    if not math.isnan(number) and not low - 1e-9 <= number <= high + 1e-9:
        raise fail(
            f"a value within the declared bounds [{low:g}, {high:g}]",
            f"{number:g}",
            "fix the computation, or declare the bounds in @metric(..., bounds=(low, high))",
        )
    if not isinstance(value.n, int | np.integer) or value.n < 0:
        raise fail("an integer count n >= 0 (the denominator)", repr(value.n), "return n")


@_check
def check_deterministic(metric: Metric, problem: ToyProblem) -> None:
    """The same context twice gives the same value, and the global random states are unchanged."""
    context = metric_context(problem, metric)
    values: list[MetricValue] = []
    run_without_global_rng(
        lambda: values.append(_measure(metric, context)),
        "the metric",
        "draw from a generator seeded by the data (recourse_bench.seeding.numpy_rng)",
    )
    again = _measure(metric, context)
    same = values[0].value == again.value or (
        math.isnan(values[0].value) and math.isnan(again.value)
    )
    if not same or values[0].n != again.n:
        raise fail(
            "the same value for the same context",
            f"{values[0].value!r} then {again.value!r}",
            "make the metric a pure function of the context",
        )


@_check
def check_context_not_mutated(metric: Metric, problem: ToyProblem) -> None:
    """The metric leaves the factuals, the recourses and the splits' arrays unchanged."""
    context = metric_context(problem, metric)
    arrays = {
        "factuals": context.factuals,
        "recourses": context.recourses,
        "splits.X_train": context.splits.X_train,
        "splits.y_train": context.splits.y_train,
    }
    saved = {name: array.copy() for name, array in arrays.items()}
    _measure(metric, context)
    changed = [n for n, a in arrays.items() if not np.array_equal(a, saved[n], equal_nan=True)]
    if changed:
        raise fail(
            "the metric to leave its context unchanged",
            f"it changed {', '.join(changed)}",
            "compute on copies",
        )


@_check
def check_no_recourse_found(metric: Metric, problem: ToyProblem) -> None:
    """With no recourse found at all the metric still returns (NaN with n 0, or a value)."""
    context = metric_context(problem, metric)
    empty = replace(context, recourses=np.full_like(context.recourses, np.nan), returned=None)
    try:
        value = _measure(metric, empty)
    except SkipCheck:
        raise
    except Exception as exc:
        raise fail(
            "a value (NaN with n 0 is fine) when no recourse was found",
            describe_exception(exc),
            "handle an empty selection: return MetricValue(float('nan'), 0)",
        ) from exc
    if not math.isnan(value.value) and not metric.bounds[0] <= value.value <= metric.bounds[1]:
        raise fail("a value within the bounds", f"{value.value:g}", "")
