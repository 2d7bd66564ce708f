"""How long units take: measured times kept in the cache folder, estimates, and the progress bar.

Every unit a run computes (not served from the cache) has its wall time recorded in
``unit-times.json`` in the cache folder. A unit's estimate is its own last time where one was
measured, else the median of the units of its kind (the same stage, dataset, model and method or
shift, with any parameters and seed), else nothing: ``run --dry-run`` says when it cannot
estimate. A unit served from the cache counts :data:`CACHED_SECONDS`.

The progress bar weighs each unit by its estimate: its time left is the time elapsed times the
estimated seconds still to run over those already run, so a wave of quick units (base models)
does not promise an early end before a wave of slow ones (recourse methods that train). Units
without an estimate count the mean of their stage's estimated units, or
:data:`DEFAULT_SECONDS` when no unit of the stage has one.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .plan import Task
from .stages import spec_key

log = logging.getLogger(__name__)

TIMES_FILE = "unit-times.json"
CACHED_SECONDS = 0.05
"""What a unit served from the cache is expected to take."""

DEFAULT_SECONDS = {"base": 1.0, "updates": 3.0, "recourse": 3.0}
"""What a unit of each stage counts in the progress bar where nothing was measured."""


def unit_key(task: Task) -> str:
    """The identity of a unit across runs: its stage, components with parameters, and seed."""
    component = task.component
    parts = [task.stage, spec_key(task.dataset), spec_key(task.model)]
    parts += [spec_key(component) if component is not None else "", str(task.seed)]
    return "|".join(parts)


def kind_key(task: Task) -> str:
    """The kind of a unit: its stage and component names (no parameters, no seed)."""
    component = task.component
    names = [task.stage, task.dataset.name, task.model.name]
    return "|".join([*names, component.name if component is not None else ""])


class UnitTimes:
    """The measured wall times of units, read from and written to a cache folder."""

    def __init__(self, cache_dir: str | Path):
        self.path = Path(cache_dir) / TIMES_FILE
        self.units: dict[str, tuple[str, float]] = {}
        try:
            stored = json.loads(self.path.read_text(encoding="utf-8"))
            self.units = {key: (str(kind), float(s)) for key, (kind, s) in stored.items()}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.warning(
                "ignoring the unit times in %s (%s); they are measured again", self.path, exc
            )
        self._by_kind: dict[str, list[float]] | None = None

    def estimate(self, task: Task) -> float | None:
        """The expected seconds of a unit that is not cached, or None where nothing is known."""
        own = self.units.get(unit_key(task))
        if own is not None:
            return own[1]
        if self._by_kind is None:
            self._by_kind = {}
            for kind, seconds in self.units.values():
                self._by_kind.setdefault(kind, []).append(seconds)
        similar = self._by_kind.get(kind_key(task))
        return statistics.median(similar) if similar else None

    def record(self, measured: Iterable[tuple[Task, float]]) -> None:
        """Keep the times of units just computed, and write the file (atomically)."""
        added = {unit_key(task): (kind_key(task), round(s, 4)) for task, s in measured}
        if not added:
            return
        self.units.update(added)
        self._by_kind = None
        tmp = self.path.with_name(f".{TIMES_FILE}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(self.units, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:  # estimates are a convenience: never fail a run for them
            log.warning("cannot write the unit times to %s: %s", self.path, exc)
        finally:
            tmp.unlink(missing_ok=True)


def expected_seconds(
    tasks: Iterable[Task], times: UnitTimes, cached: Mapping[str, bool]
) -> dict[str, float | None]:
    """Per unit key: :data:`CACHED_SECONDS` if cached, else its estimate (None if unknown)."""
    return {
        unit_key(task): CACHED_SECONDS if cached.get(unit_key(task)) else times.estimate(task)
        for task in tasks
    }


def fill_unknown(expected: Mapping[str, float | None]) -> dict[str, float]:
    """Estimates for every unit: an unknown one counts the mean of its stage's known ones."""
    by_stage: dict[str, list[float]] = {}
    for key, seconds in expected.items():
        if seconds is not None:
            by_stage.setdefault(key.split("|", 1)[0], []).append(seconds)
    filled = {}
    for key, seconds in expected.items():
        stage = key.split("|", 1)[0]
        known = by_stage.get(stage)
        default = statistics.fmean(known) if known else DEFAULT_SECONDS.get(stage, 1.0)
        filled[key] = default if seconds is None else seconds
    return filled


def format_seconds(seconds: float) -> str:
    """``42 s``, ``3.5 min`` or ``1.2 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """A progress bar over units (done / total) whose time left weighs units by their estimates.

    Parameters
    ----------
    expected : mapping
        Unit key -> expected seconds of every unit the run plans (see :func:`fill_unknown`).
    desc : str
        The bar's label (the config's name).
    disable : bool
        No bar at all (``-q``).
    clock : callable
        The time in seconds (``time.monotonic``; a test passes its own).
    """

    def __init__(
        self,
        expected: Mapping[str, float],
        desc: str,
        disable: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.pending = dict(expected)
        self.done_seconds = 0.0
        self.clock = clock
        self.started = clock()
        self.what = ""
        self.bar = tqdm(
            total=len(self.pending),
            unit="unit",
            desc=desc,
            disable=disable,
            leave=True,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} units "
            "[{elapsed}{postfix}]",
        )

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.close()

    def stage(self, what: str) -> None:
        """Name the wave now running."""
        self.what = what
        self._show()

    def drop(self, tasks: Iterable[Task]) -> None:
        """Forget planned units that will not run (their base model or shift failed)."""
        dropped = [
            self.pending.pop(unit_key(task)) for task in tasks if unit_key(task) in self.pending
        ]
        if dropped:
            self.bar.total -= len(dropped)
            self._show()

    def done(self, task: Task) -> None:
        """Count a finished unit."""
        self.done_seconds += self.pending.pop(unit_key(task), 0.0)
        self.bar.update(1)
        self._show()

    def time_left(self) -> float | None:
        """Elapsed time x estimated seconds left / estimated seconds done (None before a unit)."""
        if self.done_seconds <= 0:
            return None
        elapsed = self.clock() - self.started
        return elapsed * sum(self.pending.values()) / self.done_seconds

    def _show(self) -> None:
        left = self.time_left()
        eta = "" if left is None else f"~{format_seconds(left)} left"
        self.bar.set_postfix_str(", ".join(p for p in (eta, self.what) if p), refresh=True)
