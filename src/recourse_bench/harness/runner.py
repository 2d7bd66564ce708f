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
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from joblib import Parallel, delayed

from .. import registry, store
from ..config import BenchmarkConfig, plan
from ..provenance import environment
from ..store import Failure, Row
from .backends import Backend, activate, parallel_options
from .estimates import Progress, UnitTimes, expected_seconds, fill_unknown, format_seconds, unit_key
from .evaluation import failure_rows
from .isolation import check_limits, children, isolates
from .plan import STAGES, BaseKey, ShiftKey, Task, base_tasks, recourse_tasks, update_tasks
from .units import Outcome, Settings, is_cached, run_task

log = logging.getLogger(__name__)


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


# ------------------------------------------------------------------------------------- the run
def metric_metadata(names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Each metric's stage, direction and bounds, kept in the run metadata for the reports.

    A report then knows how to read a metric (which value is best) without its plugin loaded.
    """
    described = {}
    for name in names:
        metric = registry.get("metric", name)
        described[name] = {
            "stage": metric.stage,
            "higher_is_better": bool(metric.higher_is_better),
            "bounds": list(metric.bounds),
        }
    return described


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
    cached = {unit_key(task): is_cached(task, settings) for task in planned}
    expected = fill_unknown(expected_seconds(planned, times, cached))
    outcomes: list[Outcome] = []
    shared = [settings.cache_dir, *settings.plugin_files]
    bar = Progress(expected, config.name, disable=not progress)
    with bar, _one_torch_thread(), activate(where, shared), children():
        failed = _wave(base_tasks(config), settings, bar, outcomes, times, "base models")
        base_failed = {t.base: f for t, f in failed.items()}
        bar.drop(t for t in update_tasks(config) if t.base in base_failed)
        updates = update_tasks(config, base_failed)
        failed = _wave(updates, settings, bar, outcomes, times, "updated models")
        shift_failed = {ShiftKey(t.base, t.shift): f for t, f in failed.items() if t.shift}
        methods = recourse_tasks(config, base_failed, shift_failed)
        bar.drop(t for t in recourse_tasks(config) if t.base in base_failed)
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
            {unit_key(t): is_cached(t, settings) for t in tasks} if Path(cache_dir).is_dir() else {}
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
) -> dict[Task, Failure]:
    """Run units in parallel; return those without a result, with their failures."""
    failed: dict[Task, Failure] = {}
    if not tasks:
        return failed
    bar.stage(what)
    results = Parallel(**parallel_options())(delayed(run_task)(task, settings) for task in tasks)
    measured = []
    for outcome in results:
        outcomes.append(outcome)
        bar.done(outcome.task)
        failure = outcome.failure
        if not outcome.cached and (failure is None or failure.status == "skipped"):
            measured.append((outcome.task, outcome.seconds))
        if failure is None:
            continue
        if failure.status != "skipped" and outcome.fatal is None:  # a fatal one stops the run
            log.warning("%s %s: %s", outcome.task.describe(), failure.status, failure.reason)
        failed[outcome.task] = failure
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


def _base_failure_rows(config: BenchmarkConfig, base_failed: dict[BaseKey, Failure]) -> list[Row]:
    """The rows of every recourse cell whose base model failed: they say why."""
    rows = []
    for base, failure in base_failed.items():
        how = {"timeout": "timed out", "skipped": "skipped"}.get(failure.status, "failed")
        cell = Failure(failure.status, f"base model {how}: {failure.reason}")
        for method in config.methods:
            task = Task("recourse", base.seed, base.dataset, base.model, method=method)
            rows += failure_rows(task, config.shifts, cell)
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
            {"unit": o.task.describe(), "status": o.failure.status, "error": o.failure.reason}
            for o in outcomes
            if o.failure is not None and o.failure.status != "skipped"
        ],
        "metrics": metric_metadata(config.metrics),
        "wall_seconds": round(time.time() - started, 3),
        **environment(),
    }
