"""What a report shows, aggregated once and handed to every renderer.

:class:`ReportData` holds the results frame and everything derived from it that more than one
renderer needs: the per-seed values (an update metric averaged over the updated models of each
seed), the summary over seeds (mean and 95 % percentile-bootstrap interval, computed once per
report), each metric's metadata (stage, direction, bounds), the method styles and the order of
the shifts. The tables, the figures, the paired tests and the index all read it.

A metric's metadata comes from the run metadata (``run.json``'s ``metrics``, written at run time)
where it is recorded, else from the registry: a report of a run whose plugin metric is not
loaded still knows which value is best.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .style import MethodStyles

CELL = ["dataset_label", "model_label", "method_label"]
ROW = [*CELL, "shift_label"]
SUMMARY_KEYS = [*ROW, "metric"]
PREFERRED_ORDER = ("invalidation-rate", "validity", "coverage", "cost-l1", "violations")


def bootstrap_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean (the value itself for fewer than 2 values)."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return math.nan, math.nan
    if values.size < 2 or np.ptp(values) == 0:
        return float(values.mean()), float(values.mean())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = stats.bootstrap(
            (values,),
            np.mean,
            confidence_level=level,
            n_resamples=2000,
            method="percentile",
            rng=np.random.default_rng(0),
        )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def per_seed_values(results: pd.DataFrame) -> pd.DataFrame:
    """One value per (dataset, model, method, shift, metric, seed): the mean over its draws.

    Only rows with status ``ok`` count; static metrics have a null shift.
    """
    ok = results[(results["status"] == "ok") & results["metric"].notna()]
    grouped = ok.groupby([*SUMMARY_KEYS, "seed"], dropna=False, sort=True)["value"]
    return grouped.mean().reset_index()


def summarise_seeds(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Mean and 95 % interval over seeds per (dataset, model, method, shift, metric).

    Columns: the keys, ``mean``, ``low``, ``high`` and ``n_seeds``.
    """
    rows = []
    for key, group in per_seed.groupby(SUMMARY_KEYS, dropna=False, sort=True):
        values = group["value"].to_numpy()
        low, high = bootstrap_interval(values)
        rows.append((*key, float(np.mean(values)), low, high, int(group["value"].notna().sum())))
    return pd.DataFrame(rows, columns=[*SUMMARY_KEYS, "mean", "low", "high", "n_seeds"])


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and 95 % interval over seeds of every metric, per cell (and shift, for update metrics).

    Returns one row per (dataset, model, method, shift, metric) with columns ``mean``, ``low``,
    ``high`` and ``n_seeds``; static metrics have a null shift. An update metric is first
    averaged over the updated models within a seed.
    """
    return summarise_seeds(per_seed_values(results))


@dataclass(frozen=True)
class MetricInfo:
    """What a report needs to know of a metric: its stage, direction and bounds (None: unknown)."""

    stage: str | None = None
    higher_is_better: bool | None = None
    bounds: tuple[float, float] | None = None

    @property
    def direction(self) -> str:
        """``higher is better``, ``lower is better`` or ``direction unknown``."""
        return {True: "higher is better", False: "lower is better"}.get(
            self.higher_is_better, "direction unknown"
        )


def registered_info(name: str) -> MetricInfo:
    """The metadata of a registered metric, or an unknown :class:`MetricInfo`."""
    from ..api import UnknownNameError
    from ..registry import get

    try:
        metric = get("metric", name)
    except UnknownNameError:
        return MetricInfo()
    return MetricInfo(metric.stage, bool(metric.higher_is_better), tuple(metric.bounds))


def metric_infos(
    names: Any, recorded: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, MetricInfo]:
    """Per metric: the run metadata's record where there is one, else the registry's."""
    infos = {}
    for name in dict.fromkeys(str(n) for n in names):
        entry = (recorded or {}).get(name)
        if entry:
            bounds = entry.get("bounds")
            infos[name] = MetricInfo(
                entry.get("stage"),
                entry.get("higher_is_better"),
                tuple(bounds) if bounds is not None else None,  # type: ignore[arg-type]
            )
        else:
            infos[name] = registered_info(name)
    return infos


@dataclass
class ReportData:
    """A report's results with everything aggregated once (see the module docstring).

    Build it with :meth:`build`; every renderer takes it.
    """

    results: pd.DataFrame
    per_seed: pd.DataFrame
    summary: pd.DataFrame
    metrics: dict[str, MetricInfo]
    styles: MethodStyles
    title: str = "recourse-bench"
    timings: list[dict[str, Any]] = field(default_factory=list)
    table: tuple[str, ...] = ()
    provenance: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        results: pd.DataFrame,
        *,
        title: str = "recourse-bench",
        timings: list[dict[str, Any]] | None = None,
        metrics: Mapping[str, Mapping[str, Any]] | None = None,
        styles: MethodStyles | None = None,
        table: Sequence[str] = (),
        provenance: Sequence[Mapping[str, Any]] = (),
    ) -> ReportData:
        """Aggregate ``results`` once.

        Parameters
        ----------
        results : pandas.DataFrame
            A results frame (one run, or several merged).
        title : str
            The report's title.
        timings : list of dict, optional
            The run metadata's ``recourse_timings``.
        metrics : mapping, optional
            The run metadata's ``metrics`` (stage, direction, bounds per metric).
        styles : MethodStyles, optional
            The method styles (default: from every method label in ``results``).
        table : sequence of str
            The metrics of the main table (the config's ``table``), side by side per dataset;
            empty: no main table.
        provenance : sequence of mapping
            The run metadata of each run shown (config, versions, git revision, machine,
            times), for the page's provenance section.
        """
        per_seed = per_seed_values(results)
        return cls(
            results=results,
            per_seed=per_seed,
            summary=summarise_seeds(per_seed),
            metrics=metric_infos(results["metric"].dropna().unique(), metrics),
            styles=styles if styles is not None else MethodStyles.from_results(results),
            title=title,
            timings=list(timings or []),
            table=tuple(table),
            provenance=[dict(record) for record in provenance],
        )

    def info(self, metric: str) -> MetricInfo:
        """The metadata of ``metric`` (registry's where the report was built without it)."""
        if metric not in self.metrics:
            self.metrics[metric] = registered_info(metric)
        return self.metrics[metric]

    def higher_is_better(self, metric: str) -> bool | None:
        """Whether a larger value of ``metric`` is better (None when unknown)."""
        return self.info(metric).higher_is_better

    def is_shifted(self, metric: str) -> bool:
        """Whether ``metric`` is measured per shift (update and shift metrics)."""
        own = self.results[(self.results["metric"] == metric).fillna(False).astype(bool)]
        return bool(own["shift_label"].notna().any()) or self.info(metric).stage in (
            "update",
            "shift",
        )

    def ordered_metrics(self) -> list[str]:
        """The metrics present, the usual ones first."""
        present = sorted(str(m) for m in self.results["metric"].dropna().unique())
        return [m for m in PREFERRED_ORDER if m in present] + [
            m for m in present if m not in PREFERRED_ORDER
        ]

    @cached_property
    def shift_order(self) -> pd.DataFrame:
        """One row per shift label with its family (``shift``) and ``severity``, in report order."""
        results = self.results
        shifts = results.loc[results["shift_label"].notna(), ["shift_label", "shift", "severity"]]
        shifts = shifts.drop_duplicates("shift_label").copy()
        shifts["shift"] = shifts["shift"].fillna(shifts["shift_label"]).astype(str)
        shifts["shift_label"] = shifts["shift_label"].astype(str)
        shifts["severity"] = shifts["severity"].astype(float)
        shifts = shifts.sort_values(["shift", "severity", "shift_label"], kind="mergesort")
        return shifts.reset_index(drop=True)


def as_report_data(results: pd.DataFrame | ReportData, **kwargs: Any) -> ReportData:
    """``results`` aggregated (a :class:`ReportData` is returned as it is)."""
    return results if isinstance(results, ReportData) else ReportData.build(results, **kwargs)
