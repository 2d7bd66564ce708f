"""One unit of work, run in a worker: a base model, a shift's updated models, or a recourse unit.

:func:`run_task` is what the parallel backends call. A unit whose results are not all cached runs
in a forked child under the run's limits (see :mod:`.isolation`): a hang, a crash or a runaway
allocation costs only its own cells. Whatever goes wrong becomes the unit's
:class:`~recourse_bench.store.Failure` (``skipped``, ``error`` or ``timeout``, with the reason),
and a recourse unit's rows say so; a bad input (a data file, a config value a plugin refused) is
also kept as ``fatal``, which stops the run after its wave.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch

from .. import registry
from ..api import ConfigError, DataError, NotApplicable, RecourseBenchError
from ..config import Limits
from ..store import Failure, Row
from .evaluation import EvaluationKey, cached_evaluation, failure_rows
from .isolation import Isolated, exit_with_parent, run_isolated
from .plan import Task
from .stages import Recourse, Stages, fit_base, fit_recourse, fit_updates, in_cache

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
    """What a unit returns: its rows (recourse units), its failure, whether it was cached."""

    task: Task
    rows: list[Row] = field(default_factory=list)
    failure: Failure | None = None
    fatal: RecourseBenchError | None = None  # a bad input (data, config): the run stops
    cached: bool = False
    seconds: float = 0.0
    timing: dict[str, Any] | None = None  # a recourse unit's fit and generate seconds

    def fail(self, failure: Failure) -> Outcome:
        """Record the unit's failure; a recourse unit's rows say why, for every shift."""
        self.failure = failure
        if self.task.stage == "recourse":
            self.rows = failure_rows(self.task, self.task.shifts, failure)
        return self


def run_task(task: Task, settings: Settings) -> Outcome:
    """Execute one unit; whatever goes wrong becomes the outcome's failure."""
    for path in settings.plugin_files:
        registry.load_plugin_file(path)
    if torch.get_num_threads() != 1:  # a fresh worker process
        torch.set_num_threads(1)
    exit_with_parent(settings.main_pid)  # a worker of this machine's pool ends with the run
    start = time.perf_counter()
    cached = is_cached(task, settings)
    if cached or not settings.isolate or threading.current_thread() is not threading.main_thread():
        outcome = _run_here(task, settings)
    else:
        isolated = run_isolated(partial(_run_here, task, settings), settings.limits)
        outcome = isolated.value if isolated.status == "ok" else _stopped(task, isolated)
    outcome.cached = cached
    outcome.seconds = time.perf_counter() - start
    return outcome


def _run_here(task: Task, settings: Settings) -> Outcome:
    """Execute a unit in this process, turning its exceptions into the outcome's failure."""
    outcome = Outcome(task)
    try:
        for path in settings.plugin_files:  # a child forked before the run named them
            registry.load_plugin_file(path)
        _execute(task, settings, outcome)
    except NotApplicable as exc:
        outcome.fail(Failure("skipped", str(exc)))
    except Exception as exc:
        log.debug("task %s failed:\n%s", task.describe(), traceback.format_exc())
        if isinstance(exc, DataError | ConfigError):  # the user's input: the run stops
            kind = DataError if isinstance(exc, DataError) else ConfigError  # plain, picklable
            outcome.fatal = kind("; ".join(str(exc).splitlines()))
        outcome.fail(Failure("error", f"{type(exc).__name__}: {exc}".splitlines()[0]))
    return outcome


def _stopped(task: Task, isolated: Isolated) -> Outcome:
    """The outcome of a unit whose child process timed out or died."""
    reason = isolated.reason
    if isolated.status == "timeout":
        reason += " (raise `timeout` in the config, or --timeout)"
    log.debug("task %s: %s", task.describe(), reason)
    return Outcome(task).fail(Failure(isolated.status, reason))


def is_cached(task: Task, settings: Settings) -> bool:
    """Whether every result of a unit is already in the cache (it then runs in its worker)."""
    stages = settings.stages
    if task.stage == "base":
        return stages.is_cached(fit_base, task.seed, task.dataset, task.model)
    if task.stage == "updates":
        return stages.is_cached(fit_updates, task.seed, task.dataset, task.model, task.shift)
    key = EvaluationKey.of(task, stages, settings.metrics)
    return stages.is_cached(fit_recourse, task.seed, task.dataset, task.model, task.method) and (
        in_cache(cached_evaluation(stages), key, None, None, None, None)
    )


def _execute(task: Task, settings: Settings, outcome: Outcome) -> None:
    stages = settings.stages
    if task.stage == "base":
        stages.base(task.seed, task.dataset, task.model)
    elif task.stage == "updates":
        stages.updates(task.seed, task.dataset, task.model, task.shift)
    else:
        recourse = stages.recourse(task.seed, task.dataset, task.model, task.method)
        key = EvaluationKey.of(task, stages, settings.metrics)
        outcome.rows = cached_evaluation(stages)(key, task, stages, settings.metrics, recourse)
        outcome.timing = _timing(task, recourse)


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
