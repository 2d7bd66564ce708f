"""Scoring a recourse unit: its recourses under every metric and shift, as result rows.

Static metrics run once per recourse set, update metrics once per updated model of every shift,
shift metrics once per shift with all its updated models. Every metric sees only the feasible
recourses (:meth:`~recourse_bench.api.EvalContext.feasible_only`). The rows of a unit are cached
under an :class:`EvaluationKey`, which holds the keys of the entries they were computed from (the
recourses and every shift's updated models, with their code versions), the metrics' code versions
and this module's: a change to any of those re-evaluates, and nothing else does.

:func:`make_row` is the one place a result row is made, with a value or with a failure.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .. import registry
from ..api import EvalContext, Metric, MetricValue, NotApplicable
from ..config import ComponentSpec
from ..store import Failure, Row
from .plan import Task
from .stages import Recourse, StageKey, Stages, memoized


@dataclass(frozen=True)
class EvaluationKey:
    """What a recourse unit's rows depend on: the key their cache entry is stored under.

    ``recourse`` is the key of the recourses' entry (the dataset, model and method with their
    code versions, the seeds); ``updates`` has, per shift of the unit, the key of its updated
    models' entry, or the :class:`~recourse_bench.store.Failure` of a shift that has none;
    ``metrics`` pairs each metric with its code version; ``version`` is this module's.
    """

    recourse: StageKey
    updates: tuple[StageKey | Failure, ...]
    metrics: tuple[tuple[str, str], ...]
    version: str

    @classmethod
    def of(cls, task: Task, stages: Stages, metrics: tuple[str, ...]) -> EvaluationKey:
        """The key of a recourse unit's rows."""
        assert task.method is not None
        failed = dict(task.failed)
        updates = tuple(
            failed.get(shift) or stages.key(task.seed, task.dataset, task.model, shift)
            for shift in task.shifts
        )
        return cls(
            recourse=stages.key(task.seed, task.dataset, task.model, task.method),
            updates=updates,
            metrics=tuple((name, registry.component_version("metric", name)) for name in metrics),
            version=evaluation_version(),
        )


def evaluation_version() -> str:
    """The code version of the evaluation: this module and what it uses (no infrastructure)."""
    return registry.code_version(EvaluationKey)


def evaluate_rows(
    key: EvaluationKey, task: Task, stages: Stages, metrics: tuple[str, ...], recourse: Recourse
) -> list[Row]:
    """The rows of a recourse unit: its recourses under every metric and shift.

    Cached under ``key`` alone (see :func:`cached_evaluation`); ``task``, ``stages``,
    ``metrics`` and ``recourse`` are what ``key`` stands for and are not hashed.
    """
    if recourse.skip_reason is not None:
        return failure_rows(task, task.shifts, Failure("skipped", recourse.skip_reason))
    splits = stages.splits(task.seed, task.dataset)
    base = stages.base(task.seed, task.dataset, task.model)
    factuals = splits.X_test[base.factual_index]
    assert recourse.recourses is not None
    sets = getattr(recourse, "sets", None)  # absent from entries cached before it existed
    context = EvalContext.feasible_only(
        factuals, recourse.recourses, base.classifier, splits, sets=sets
    )
    by_stage: dict[str, list[Metric]] = {"static": [], "update": [], "shift": []}
    for name in metrics:
        metric = registry.get("metric", name)
        by_stage[metric.stage].append(metric)
    rows = [_measure(task, None, m, context) for m in by_stage["static"]]
    failed = dict(task.failed)
    for shift in task.shifts:
        if shift in failed:
            rows += failure_rows(task, (shift,), failed[shift])
            continue
        updated_models = stages.updates(task.seed, task.dataset, task.model, shift)
        for draw, updated in enumerate(updated_models):
            one = replace(context, updated=updated)
            rows += [_measure(task, shift, m, one, draw) for m in by_stage["update"]]
        every = replace(context, updated_models=tuple(updated_models))
        rows += [_measure(task, shift, m, every) for m in by_stage["shift"]]
    return rows


def cached_evaluation(stages: Stages):
    """:func:`evaluate_rows` through the cache folder of ``stages``, keyed by its key alone."""
    return memoized(stages.cache_dir, evaluate_rows, ["task", "stages", "metrics", "recourse"])


def _measure(
    task: Task,
    shift: ComponentSpec | None,
    metric: Metric,
    context: EvalContext,
    draw: int | None = None,
) -> Row:
    """One metric's row; a metric that does not apply here is a ``skipped`` row with the reason."""
    try:
        measured = metric(context)
    except NotApplicable as exc:
        return make_row(
            task, shift, metric=metric.name, draw=draw, failure=Failure("skipped", str(exc))
        )
    return make_row(task, shift, metric=metric.name, measured=measured, draw=draw)


def failure_rows(task: Task, shifts: tuple[ComponentSpec, ...], failure: Failure) -> list[Row]:
    """The rows of a recourse unit's cell without values: one per shift, saying why."""
    return [make_row(task, shift, failure=failure) for shift in shifts]


def make_row(
    task: Task,
    shift: ComponentSpec | None,
    *,
    metric: str | None = None,
    measured: MetricValue | None = None,
    draw: int | None = None,
    failure: Failure | None = None,
) -> Row:
    """A result row of a recourse unit: a metric's value, or a failure (status and reason)."""
    method = task.method
    assert method is not None
    severity = shift.build().severity_value if shift is not None else float("nan")
    return Row(
        dataset=task.dataset.name,
        dataset_label=task.dataset.label,
        model=task.model.name,
        model_label=task.model.label,
        method=method.name,
        method_label=method.label,
        shift=shift.name if shift is not None else None,
        shift_label=shift.label if shift is not None else None,
        severity=severity,
        seed=task.seed,
        draw=draw,
        metric=metric,
        value=measured.value if measured is not None else float("nan"),
        n=measured.n if measured is not None else None,
        status=failure.status if failure is not None else "ok",
        reason=failure.reason if failure is not None else (measured.note if measured else ""),
        dataset_params=task.dataset.params_json,
        model_params=task.model.params_json,
        method_params=method.params_json,
        shift_params=shift.params_json if shift is not None else "{}",
    )
