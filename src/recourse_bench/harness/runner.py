"""The runner: executes a benchmark matrix in waves, in parallel, with per-cell error isolation.

Wave 1 (method independent, each unit computed once and cached): base models with their factuals,
then the updated models of every shift. Wave 2: per (dataset, model, method, seed), the method's
recourses (cached), evaluated with the static metrics once and the update metrics once per
updated model of every shift. A unit that raises becomes ``error`` rows carrying its message; every
other unit continues. Results are sorted, so they are identical at any ``-j``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from joblib import Parallel, delayed

from .. import registry, store
from ..api import ConfigError, DataError, EvalContext, Metric, NotApplicable, RecourseBenchError
from ..config import BenchmarkConfig, ComponentSpec, Limits, plan
from ..provenance import environment
from .backends import Backend, activate, parallel_options
from .estimates import Progress, UnitTimes, expected_seconds, fill_unknown, format_seconds, unit_key
from .isolation import Isolated, check_limits, children, exit_with_parent, isolates, run_isolated
from .plan import STAGES, Task, base_tasks, recourse_tasks, update_tasks
from .stages import Recourse, Stages, fit_base, fit_recourse, fit_updates, in_cache, memory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """What every task needs besides its own specs (sent to the workers)."""

    cache_dir: str
    base_seed: int
    n_factuals: int
    metrics: tuple[str, ...]
    plugin_files: tuple[str, ...] = ()
    data_dir: str | None = None
    limits: Limits = field(default_factory=Limits)
    isolate: bool = False  # run uncached units in a forked child (see .isolation.isolates)
    main_pid: int = field(default_factory=os.getpid)  # the run's main process

    @property
    def stages(self) -> Stages:
        """Cached access to the stages."""
        return Stages(self.cache_dir, self.base_seed, self.n_factuals, self.data_dir)


@dataclass
class Outcome:
    """What a task returns: rows (for recourse tasks), an error message, whether it was cached."""

    task: Task
    rows: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    status: str = "ok"  # "error" or "timeout" when ``error`` is set
    fatal: RecourseBenchError | None = None  # a bad input (data, config): the run stops
    skipped: str | None = None  # a shift that does not apply (NotApplicable), with why
    cached: bool = False
    seconds: float = 0.0
    timing: dict[str, Any] | None = None  # a recourse task's fit and generate seconds


@dataclass
class RunResult:
    """The results of a run and where they were written."""

    results: pd.DataFrame
    out_dir: Path | None
    metadata: dict[str, Any]

    @property
    def n_failed(self) -> int:
        """Rows with status ``error`` or ``timeout``."""
        return int(self.results["status"].isin(["error", "timeout"]).sum())


# ------------------------------------------------------------------------------- task execution
@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Torch on one thread for the whole run, restored after.

    Results then do not depend on the worker count, and workers do not compete for cores. It is
    set once per process, never per task, since the setting is process-wide (the threads of the
    threading backend share it).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_task(task: Task, settings: Settings) -> Outcome:
    """Execute one task; any failure becomes ``Outcome.error`` (the cell's first error line).

    A task whose results are not all cached runs in a forked child under the run's limits
    (see :mod:`.isolation`): a hang, a crash or a runaway allocation costs only its own cells.
    """
    for path in settings.plugin_files:
        registry.load_plugin_file(path)
    if torch.get_num_threads() != 1:  # a fresh worker process
        torch.set_num_threads(1)
    exit_with_parent(settings.main_pid)  # a worker of this machine's pool ends with the run
    start = time.perf_counter()
    cached = _is_cached(task, settings)
    if cached or not settings.isolate or threading.current_thread() is not threading.main_thread():
        outcome = _run_here(task, settings)
    else:
        isolated = run_isolated(partial(_run_here, task, settings), settings.limits)
        outcome = isolated.value if isolated.status == "ok" else _failed(task, isolated)
    outcome.cached = cached
    outcome.seconds = time.perf_counter() - start
    return outcome


def _run_here(task: Task, settings: Settings) -> Outcome:
    """Execute a task in this process, turning its exceptions into the outcome's error."""
    outcome = Outcome(task)
    try:
        for path in settings.plugin_files:  # a child forked before the run named them
            registry.load_plugin_file(path)
        _execute(task, settings, outcome)
    except NotApplicable as exc:
        outcome.skipped = str(exc)
        if task.stage == "recourse":  # the cell's rows say why, for every shift
            outcome.rows = [
                _row(task, shift, status="skipped", reason=outcome.skipped) for shift in task.shifts
            ]
    except Exception as exc:
        log.debug("task %s failed:\n%s", task.describe(), traceback.format_exc())
        if isinstance(exc, DataError | ConfigError):  # the user's input: the run stops
            kind = DataError if isinstance(exc, DataError) else ConfigError  # plain, picklable
            outcome.fatal = kind("; ".join(str(exc).splitlines()))
        _fail(outcome, "error", f"{type(exc).__name__}: {exc}".splitlines()[0])
    return outcome


def _failed(task: Task, isolated: Isolated) -> Outcome:
    """The outcome of a task whose child process timed out or died."""
    reason = isolated.reason
    if isolated.status == "timeout":
        reason += " (raise `timeout` in the config, or --timeout)"
    log.debug("task %s: %s", task.describe(), reason)
    outcome = Outcome(task)
    _fail(outcome, isolated.status, reason)
    return outcome


def _fail(outcome: Outcome, status: str, reason: str) -> None:
    """Mark an outcome failed (``error`` or ``timeout``); a recourse task's rows say why."""
    outcome.error = reason
    outcome.status = status
    task = outcome.task
    if task.stage == "recourse":  # the cell's rows say why, for every shift
        outcome.rows = [_row(task, shift, status=status, reason=reason) for shift in task.shifts]


def _is_cached(task: Task, settings: Settings) -> bool:
    """Whether every result of a task is already in the cache (it then runs in its worker)."""
    stages = settings.stages
    if task.stage == "base":
        return stages.is_cached(fit_base, task.seed, task.dataset, task.model)
    if task.stage == "updates":
        return stages.is_cached(fit_updates, task.seed, task.dataset, task.model, task.shift)
    specs = (task.dataset, task.model, task.method)
    key = EvaluationKey.of(task, settings)
    return stages.is_cached(fit_recourse, task.seed, *specs) and in_cache(
        _evaluation(settings), key, settings, None
    )


def _evaluation(settings: Settings):
    """The cached evaluation stage of the run's cache folder."""
    return memory(settings.cache_dir).cache(evaluate_rows, ignore=["settings", "recourse"])


def _execute(task: Task, settings: Settings, outcome: Outcome) -> None:
    stages = settings.stages
    if task.stage == "base":
        stages.base(task.seed, task.dataset, task.model)
    elif task.stage == "updates":
        stages.updates(task.seed, task.dataset, task.model, task.shift)
    else:
        recourse = stages.recourse(task.seed, task.dataset, task.model, task.method)
        outcome.rows = _evaluation(settings)(EvaluationKey.of(task, settings), settings, recourse)
        outcome.timing = _timing(task, recourse)


@dataclass(frozen=True)
class EvaluationKey:
    """What a recourse task's rows depend on: the key their cache entry is stored under.

    That is the task (its specs, seed and failed shifts), the metrics with their code versions,
    the shifts' code versions, and the code of the runner and everything it uses. A run resumed
    after a crash therefore recomputes nothing that finished, and editing a metric re-evaluates
    with that metric's new code.
    """

    task: Task
    base_seed: int
    n_factuals: int
    metrics: tuple[tuple[str, str], ...]
    shift_versions: tuple[str, ...]
    runner_version: str

    @classmethod
    def of(cls, task: Task, settings: Settings) -> EvaluationKey:
        """The key of a recourse task under the run's settings."""
        metrics = tuple(
            (name, registry.code_version(registry.get("metric", name).func))
            for name in settings.metrics
        )
        return cls(
            task=task,
            base_seed=settings.base_seed,
            n_factuals=settings.n_factuals,
            metrics=metrics,
            shift_versions=tuple(spec.code_version() for spec in task.shifts),
            runner_version=registry.code_version(sys.modules[__name__]),
        )


def evaluate_rows(
    key: EvaluationKey, settings: Settings, recourse: Recourse
) -> list[dict[str, Any]]:
    """The rows of a recourse task: its recourses under every metric and shift.

    ``recourse`` is the task's cached recourse stage, determined by ``key``; it is not hashed.
    """
    return _evaluate(key.task, settings, recourse)


def _timing(task: Task, recourse: Recourse) -> dict[str, Any]:
    """How long the method took to fit and to generate, as measured when it was computed.

    Kept out of the results table (times differ between runs, the numbers must not) and
    written to the run metadata instead.
    """
    assert task.method is not None
    n = 0 if recourse.recourses is None else len(recourse.recourses)
    return {
        "dataset": task.dataset.label,
        "model": task.model.label,
        "method": task.method.label,
        "seed": task.seed,
        "factuals": n,
        "fit_seconds": round(recourse.fit_seconds, 4),
        "generate_seconds": round(recourse.generate_seconds, 4),
    }


def _evaluate(task: Task, settings: Settings, recourse: Recourse) -> list[dict[str, Any]]:
    """The metrics of one (dataset, model, method, seed)'s recourses under every shift."""
    stages = settings.stages
    if recourse.skip_reason is not None:
        return [
            _row(task, shift, status="skipped", reason=recourse.skip_reason)
            for shift in task.shifts
        ]
    splits = stages.splits(task.seed, task.dataset)
    base = stages.base(task.seed, task.dataset, task.model)
    factuals = splits.X_test[base.factual_index]
    context = EvalContext.feasible_only(factuals, recourse.recourses, base.classifier, splits)
    metrics: list[Metric] = [registry.get("metric", name) for name in settings.metrics]
    rows = [_measure(task, None, m, context) for m in metrics if m.stage == "static"]
    failed = {shift: (status, reason) for shift, status, reason in task.failed}
    update_metrics = [m for m in metrics if m.stage == "update"]
    shift_metrics = [m for m in metrics if m.stage == "shift"]
    for shift in task.shifts:
        if shift in failed:
            status, reason = failed[shift]
            rows.append(_row(task, shift, status=status, reason=reason))
            continue
        updated_models = stages.updates(task.seed, task.dataset, task.model, shift)
        for draw, updated in enumerate(updated_models):
            updated_context = replace(context, updated=updated)
            rows += [_measure(task, shift, m, updated_context, draw) for m in update_metrics]
        whole_shift = replace(context, updated_models=tuple(updated_models))
        rows += [_measure(task, shift, m, whole_shift) for m in shift_metrics]
    return rows


def _measure(
    task: Task,
    shift: ComponentSpec | None,
    metric: Metric,
    context: EvalContext,
    draw: int | None = None,
) -> dict[str, Any]:
    """One metric's row; a metric that does not apply here is a ``skipped`` row with the reason."""
    try:
        measured = metric(context)
    except NotApplicable as exc:
        return _row(task, shift, metric=metric.name, draw=draw, status="skipped", reason=str(exc))
    return _row(task, shift, metric=metric.name, measured=measured, draw=draw, reason=measured.note)


def _row(
    task: Task,
    shift: ComponentSpec | None,
    *,
    metric: str | None = None,
    measured: Any = None,
    draw: int | None = None,
    status: str = "ok",
    reason: str = "",
) -> dict[str, Any]:
    method = task.method
    assert method is not None
    shift_instance = shift.build() if shift is not None else None  # for its severity
    return {
        "dataset": task.dataset.name,
        "dataset_label": task.dataset.label,
        "model": task.model.name,
        "model_label": task.model.label,
        "method": method.name,
        "method_label": method.label,
        "shift": shift.name if shift is not None else None,
        "shift_label": shift.label if shift is not None else None,
        "severity": shift_instance.severity_value if shift_instance is not None else float("nan"),
        "seed": task.seed,
        "draw": draw,
        "metric": metric,
        "value": measured.value if measured is not None else float("nan"),
        "n": measured.n if measured is not None else None,
        "status": status,
        "reason": reason,
        "dataset_params": task.dataset.params_json,
        "model_params": task.model.params_json,
        "method_params": method.params_json,
        "shift_params": shift.params_json if shift is not None else "{}",
    }


# ------------------------------------------------------------------------------------- the run
def plugin_records(paths: Iterable[str]) -> list[dict[str, str]]:
    """Each plugin file's resolved path and sha256 (what the run metadata records)."""
    return [
        {
            "path": str(Path(path).resolve()),
            "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
        }
        for path in paths
    ]


def run_identity(config: BenchmarkConfig, plugin_files: Iterable[str | Path]) -> dict[str, Any]:
    """What a run folder's results depend on: the effective config and the plugin files.

    Two runs of the same identity may share a run folder (a rerun, a resumed run); a run of
    another identity is refused unless it replaces the folder (``--force``). A plugin file counts
    by its path, not its content: editing a plugin and rerunning updates the same study.
    """
    return {
        "config": config.identity(),
        "plugins": sorted(str(Path(p).resolve()) for p in plugin_files),
    }


def default_cache_dir(out_dir: Path) -> Path:
    """The default cache: a ``.recourse-bench-cache`` folder beside the run folder."""
    return out_dir.resolve().parent / ".recourse-bench-cache"


def run_benchmark(
    config: BenchmarkConfig,
    out_dir: str | Path | None = None,
    *,
    n_jobs: int | None = None,
    backend: str = "loky",
    scheduler: str | None = None,
    cache_dir: str | Path | None = None,
    plugin_files: Iterable[str | Path] = (),
    progress: bool = True,
    invocation: Mapping[str, Any] | None = None,
) -> RunResult:
    """Run the whole matrix; with ``out_dir``, write ``results.parquet`` and ``run.json``.

    Parameters
    ----------
    config : BenchmarkConfig
        The validated matrix.
    out_dir : path, optional
        Run folder for the results; nothing is written when None.
    n_jobs : int, optional
        Parallel workers (``-j``); -1 uses every core. None: one worker with a local backend,
        every core for a local cluster, every worker of a remote one.
    backend : {"loky", "threading", "sequential", "dask", "ray"}
        Where units run (see :mod:`.backends`); the numbers are the same on every backend.
    scheduler : str, optional
        Address of a Dask scheduler (or Ray cluster) to run on; without it ``dask`` and
        ``ray`` start a local cluster.
    cache_dir : path, optional
        Cache folder; defaults to ``.recourse-bench-cache`` beside ``out_dir`` (or in the current
        folder when there is no ``out_dir``).
    plugin_files : paths
        Local plugin files to load in every worker.
    progress : bool
        Show a progress bar (units done / total, time left) on stderr.
    invocation : mapping, optional
        How the run was asked for (config file, command-line overrides), recorded in the
        metadata beside the effective config.
    """
    started = time.time()
    where = Backend(backend, n_jobs, scheduler)
    check_limits(config.limits, where.name)
    out = Path(out_dir) if out_dir is not None else None
    if cache_dir is None:
        cache_dir = default_cache_dir(out) if out is not None else Path(".recourse-bench-cache")
    settings = _settings(config, cache_dir, plugin_files, where)
    Path(settings.cache_dir).mkdir(parents=True, exist_ok=True)
    times = UnitTimes(settings.cache_dir)
    planned = [*base_tasks(config), *update_tasks(config), *recourse_tasks(config)]
    cached = {unit_key(task): _is_cached(task, settings) for task in planned}
    expected = fill_unknown(expected_seconds(planned, times, cached))
    outcomes: list[Outcome] = []
    shared = [settings.cache_dir, *settings.plugin_files]
    bar = Progress(expected, config.name, disable=not progress)
    with bar, _one_torch_thread(), activate(where, shared), children():
        base_failed = _wave(base_tasks(config), settings, bar, outcomes, times, "base models")
        bar.drop(t for t in update_tasks(config) if (t.dataset, t.model, t.seed) in base_failed)
        updates = update_tasks(config, base_failed)
        shift_failed = _wave(updates, settings, bar, outcomes, times, "updated models")
        methods = recourse_tasks(config, base_failed, shift_failed)
        bar.drop(t for t in recourse_tasks(config) if (t.dataset, t.model, t.seed) in base_failed)
        _wave(methods, settings, bar, outcomes, times, "recourse")
    rows = [row for outcome in outcomes for row in outcome.rows]
    rows += _base_failure_rows(config, base_failed)
    results = store.to_frame(rows)
    metadata = _metadata(config, settings, outcomes, where, started, invocation)
    if out is not None:
        store.write_results(results, out, metadata)
    return RunResult(results, out, metadata)


def _settings(
    config: BenchmarkConfig,
    cache_dir: str | Path,
    plugin_files: Iterable[str | Path],
    where: Backend,
) -> Settings:
    return Settings(
        cache_dir=str(Path(cache_dir).resolve()),
        base_seed=config.seed,
        n_factuals=config.n_factuals,
        metrics=config.metrics,
        plugin_files=tuple(str(Path(p).resolve()) for p in plugin_files),
        data_dir=config.data_dir,
        limits=config.limits,
        isolate=isolates(where.name, config.limits),
    )


def plan_summary(
    config: BenchmarkConfig, cache_dir: str | Path, plugin_files: Iterable[str | Path] = ()
) -> str:
    """What a run would compute, per stage, with what is cached and the time it should take.

    The estimates come from the unit times measured by earlier runs with the same cache folder
    (see :mod:`.estimates`); a stage with units nobody measured says so.
    """
    settings = _settings(config, cache_dir, plugin_files, Backend("sequential"))
    times = UnitTimes(settings.cache_dir)
    waves = {"base": base_tasks(config), "updates": update_tasks(config)}
    waves["recourse"] = recourse_tasks(config)
    nouns = {"base": "base models", "updates": "updated-model sets", "recourse": "recourse units"}
    lines, total, unknown = [], 0.0, 0
    for stage in STAGES:
        tasks = waves[stage]
        cached = (
            {unit_key(t): _is_cached(t, settings) for t in tasks}
            if Path(cache_dir).is_dir()
            else {}
        )
        expected = expected_seconds(tasks, times, cached)
        n_cached = sum(cached.values())
        known = [s for s in expected.values() if s is not None]
        missing = len(expected) - len(known)
        seconds = sum(known)
        total += seconds
        unknown += missing
        estimate = f"about {format_seconds(seconds)} of unit time"
        if missing:
            estimate = f"cannot estimate {missing} unit(s) never measured in this cache" + (
                f"; the others about {format_seconds(seconds)}" if known else ""
            )
        detail = _stage_detail(config, stage)
        lines.append(f"  {nouns[stage]}: {len(tasks)} ({detail}), {n_cached} cached; {estimate}")
    head = (
        f"{config.name}: {len(plan(config))} cells; {len(config.seeds)} seed(s), at most "
        f"{config.n_factuals} factuals per cell; cache {settings.cache_dir}"
    )
    if unknown:
        foot = "the estimate is incomplete: a run measures its units and later dry runs use them"
    else:
        foot = (
            f"estimated {format_seconds(total)} of unit time in all (about that / -j of wall time)"
        )
    return "\n".join(
        [head, *lines, foot, "the config, data files and backend are ready; nothing was run"]
    )


def _stage_detail(config: BenchmarkConfig, stage: str) -> str:
    sizes = f"{len(config.datasets)} dataset(s) x {len(config.models)} model(s)"
    if stage == "updates":
        sizes += f" x {len(config.shifts)} shift(s)"
    if stage == "recourse":
        sizes += f" x {len(config.methods)} method(s)"
    return f"{sizes} x {len(config.seeds)} seed(s)"


def _wave(
    tasks: list[Task],
    settings: Settings,
    bar: Progress,
    outcomes: list[Outcome],
    times: UnitTimes,
    what: str,
) -> dict[tuple, tuple[str, str]]:
    """Run tasks in parallel; return the keys of those without a result: (status, reason)."""
    failed: dict[tuple, tuple[str, str]] = {}
    if not tasks:
        return failed
    bar.stage(what)
    results = Parallel(**parallel_options())(delayed(run_task)(task, settings) for task in tasks)
    measured = []
    for outcome in results:
        outcomes.append(outcome)
        bar.done(outcome.task)
        task = outcome.task
        if not outcome.cached and outcome.error is None:
            measured.append((task, outcome.seconds))
        if outcome.error is None and outcome.skipped is None:
            continue
        if outcome.error is not None and outcome.fatal is None:  # a fatal one stops the run
            log.warning("%s %s: %s", task.describe(), outcome.status, outcome.error)
        key = (task.dataset, task.model, task.seed)
        key = (*key, task.shift) if task.stage == "updates" else key
        if outcome.error is not None:
            failed[key] = (outcome.status, outcome.error)
        else:
            failed[key] = ("skipped", str(outcome.skipped))
    times.record(measured)
    _stop_on_bad_input(outcomes)
    return failed


def _stop_on_bad_input(outcomes: list[Outcome]) -> None:
    """Raise the first input error (a bad data file, a config value a plugin refused).

    Such an error is the user's to fix and would fail every unit that reads the same input, so
    the run stops after the wave that found it; every finished unit is cached.
    """
    fatal = [o for o in outcomes if o.fatal is not None]
    if fatal:
        first = min(fatal, key=lambda o: o.task.describe())
        assert first.fatal is not None
        raise type(first.fatal)(f"{first.fatal} ({first.task.describe()})") from None


def _base_failure_rows(
    config: BenchmarkConfig, base_failed: dict[tuple, tuple[str, str]]
) -> list[dict]:
    rows = []
    for (dataset, model, seed), (status, message) in base_failed.items():
        for method in config.methods:
            task = Task("recourse", seed, dataset, model, method=method)
            reason = f"base model {'timed out' if status == 'timeout' else 'failed'}: {message}"
            rows += [_row(task, shift, status=status, reason=reason) for shift in config.shifts]
    return rows


def _metadata(
    config: BenchmarkConfig,
    settings: Settings,
    outcomes: list[Outcome],
    where: Backend,
    started: float,
    invocation: Mapping[str, Any] | None,
) -> dict[str, Any]:
    per_stage: dict[str, dict[str, float]] = {}
    for outcome in outcomes:
        stats = per_stage.setdefault(outcome.task.stage, {"units": 0, "cached": 0, "seconds": 0.0})
        stats["units"] += 1
        stats["cached"] += int(outcome.cached)
        stats["seconds"] += outcome.seconds
    plugins = plugin_records(settings.plugin_files)
    return {
        "config": config.to_dict(),
        "config_name": config.name,
        "identity": run_identity(config, settings.plugin_files),
        "invocation": dict(invocation or {}),
        **where.describe(),
        "cache_dir": settings.cache_dir,
        "plugins": plugins,
        "stages": per_stage,
        "recourse_timings": [o.timing for o in outcomes if o.timing is not None],
        **settings.limits.describe(),
        "isolated": settings.isolate,
        "failed_units": [
            {"unit": o.task.describe(), "status": o.status, "error": o.error}
            for o in outcomes
            if o.error is not None
        ],
        "wall_seconds": round(time.time() - started, 3),
        **environment(),
    }
