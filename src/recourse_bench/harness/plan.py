"""What a run computes, unit by unit, and the checks that it can run at all.

A run has three waves of units (:class:`Task`): the base models with their factuals, the updated
models of every shift, and every method's recourses. :func:`base_tasks`, :func:`update_tasks` and
:func:`recourse_tasks` build them from a config, so that the runner and ``run --dry-run`` plan the
same units. :func:`check_data_files` finds, before any work, a data file that is missing or fails
its sha256, which would otherwise stop the run in the middle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..api import DataError
from ..config import BenchmarkConfig, ComponentSpec
from ..datasets import _files as files
from ..store import Failure

STAGES = ("base", "updates", "recourse")
"""The kinds of unit, in the order the waves run."""


@dataclass(frozen=True, order=True)
class BaseKey:
    """A base model of the matrix: a (dataset, model, seed)."""

    dataset: ComponentSpec
    model: ComponentSpec
    seed: int


@dataclass(frozen=True, order=True)
class ShiftKey:
    """The updated models of one shift on a base model."""

    base: BaseKey
    shift: ComponentSpec


@dataclass(frozen=True)
class Task:
    """One unit of work: a base model, a shift's updates, or a method's recourses."""

    stage: str  # "base", "updates" or "recourse"
    seed: int
    dataset: ComponentSpec
    model: ComponentSpec
    method: ComponentSpec | None = None
    shift: ComponentSpec | None = None
    shifts: tuple[ComponentSpec, ...] = ()
    # a recourse unit's shifts without updated models, with why
    failed: tuple[tuple[ComponentSpec, Failure], ...] = ()

    def describe(self) -> str:
        """A short human description for error messages."""
        parts = [self.dataset.name, self.model.name]
        parts += [spec.name for spec in (self.method, self.shift) if spec is not None]
        return f"{self.stage} {'/'.join(parts)} seed {self.seed}"

    @property
    def component(self) -> ComponentSpec | None:
        """The method (recourse) or shift (updates) that the unit runs; None for a base model."""
        return self.method if self.stage == "recourse" else self.shift

    @property
    def base(self) -> BaseKey:
        """The base model the unit builds on (or builds)."""
        return BaseKey(self.dataset, self.model, self.seed)


def base_keys(config: BenchmarkConfig) -> list[BaseKey]:
    """Every (dataset, model, seed) of the matrix, in the config's order."""
    return [BaseKey(d, m, s) for d in config.datasets for m in config.models for s in config.seeds]


def base_tasks(config: BenchmarkConfig) -> list[Task]:
    """The first wave: one base model (with its factuals) per (dataset, model, seed)."""
    return [Task("base", b.seed, b.dataset, b.model) for b in base_keys(config)]


def update_tasks(
    config: BenchmarkConfig, base_failed: Mapping[BaseKey, Failure] | None = None
) -> list[Task]:
    """The second wave: the updated models of every shift, on base models that exist."""
    base_failed = base_failed or {}
    return [
        Task("updates", b.seed, b.dataset, b.model, shift=shift)
        for b in base_keys(config)
        if b not in base_failed
        for shift in config.shifts
    ]


def recourse_tasks(
    config: BenchmarkConfig,
    base_failed: Mapping[BaseKey, Failure] | None = None,
    shift_failed: Mapping[ShiftKey, Failure] | None = None,
) -> list[Task]:
    """The third wave: every method's recourses, scored under the shifts that have models.

    A shift in ``shift_failed`` has no updated models; the unit records its failure instead
    of scoring under it.
    """
    base_failed, shift_failed = base_failed or {}, shift_failed or {}
    tasks = []
    for b in base_keys(config):
        if b in base_failed:
            continue
        failed = tuple(
            (shift, shift_failed[ShiftKey(b, shift)])
            for shift in config.shifts
            if ShiftKey(b, shift) in shift_failed
        )
        tasks += [
            Task(
                "recourse", b.seed, b.dataset, b.model, method, shifts=config.shifts, failed=failed
            )
            for method in config.methods
        ]
    return tasks


def check_data_files(config: BenchmarkConfig) -> None:
    """Raise the first :class:`DataError` a data file of the config would raise in the run.

    Every file a dataset reads must be present (embedded, in the data folder or in the download
    cache) and match its pinned sha256; the future split's files too where a shift reads it.
    Nothing is downloaded: a missing file's error says how to fetch it.
    """
    future = any(spec.build().reads_future() for spec in config.shifts)
    with files.data_dir(config.data_dir):
        for spec in config.datasets:
            for file in spec.build().data_files(future=future):
                state, _ = files.status(file)
                if state == "missing":
                    raise DataError(f"dataset {spec.name}: {files.missing_message(file)}")
                if state != "ok":
                    raise DataError(f"dataset {spec.name}: {state}")
