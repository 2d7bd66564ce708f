"""The ``metric`` decorator: wraps a pure function with its metadata and registers it."""

from __future__ import annotations

from collections.abc import Callable

from ..api import EvalContext, Metric, MetricValue, Stage
from ..registry import register


def metric(
    name: str,
    *,
    stage: Stage,
    higher_is_better: bool,
    bounds: tuple[float, float] = (0.0, 1.0),
) -> Callable[[Callable[[EvalContext], MetricValue]], Metric]:
    """Register ``func(ctx) -> MetricValue`` as a metric named ``name``."""

    def wrap(func: Callable[[EvalContext], MetricValue]) -> Metric:
        return register("metric")(Metric(name, func, stage, higher_is_better, bounds))

    return wrap
