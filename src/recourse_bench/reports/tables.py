"""Tables from a results frame: aggregation over draws and seeds, and Markdown rendering.

Aggregation follows the benchmark specification: an update metric is first averaged over the K
updated models within a seed; then every metric is summarised over seeds by its mean and a 95 %
percentile-bootstrap confidence interval (scipy), with a fixed resampling seed so that reports are
reproducible.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

CELL = ["dataset_label", "model_label", "method_label"]
ROW = [*CELL, "shift_label"]
PREFERRED_ORDER = ("invalidation-rate", "validity", "coverage", "cost-l1", "violations")
SUMMARY_METRICS = ("invalidation-rate", "validity", "cost-l1", "violations")
"""The columns of the terminal summary, where measured."""


def registered_metric(name: str) -> Any:
    """The registered :class:`~recourse_bench.metrics.Metric` called ``name``, or None."""
    from .. import metrics as _metrics  # noqa: F401  (registers the built-in metrics)
    from ..api import UnknownNameError
    from ..registry import get

    try:
        return get("metric", name)
    except UnknownNameError:
        return None


def higher_is_better(metric: str) -> bool | None:
    """Whether a larger value of ``metric`` is better; None for a metric that is not registered."""
    found = registered_metric(metric)
    return None if found is None else bool(found.higher_is_better)


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


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and 95 % interval over seeds of every metric, per cell (and shift, for update metrics).

    Returns one row per (dataset, model, method, shift, metric) with columns ``mean``, ``low``,
    ``high`` and ``n_seeds``; static metrics have a null shift.
    """
    ok = results[(results["status"] == "ok") & results["metric"].notna()]
    keys = [*ROW, "metric"]
    per_seed = ok.groupby([*keys, "seed"], dropna=False, sort=True)["value"].mean().reset_index()
    rows = []
    for key, group in per_seed.groupby(keys, dropna=False, sort=True):
        low, high = bootstrap_interval(group["value"].to_numpy())
        rows.append(
            (*key, float(group["value"].mean()), low, high, int(group["value"].notna().sum()))
        )
    return pd.DataFrame(rows, columns=[*keys, "mean", "low", "high", "n_seeds"])


def _format(mean: float, low: float, high: float) -> str:
    if math.isnan(mean):
        return "n/a"
    if math.isnan(low) or low == high:
        return f"{mean:.3f}"
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def invalidation_table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset x model x method x shift; a column per metric ("mean [95 % CI]").

    Static metrics (validity, coverage, cost) are the same on every shift row of a cell. Cells
    that were skipped or failed show their status and reason.
    """
    summary = summarise(results)
    present = list(dict.fromkeys(summary["metric"]))
    metrics = [m for m in PREFERRED_ORDER if m in present] + sorted(
        m for m in present if m not in PREFERRED_ORDER
    )
    text = summary.assign(
        text=[_format(*v) for v in summary[["mean", "low", "high"]].itertuples(index=False)]
    )
    static = text[text["shift_label"].isna()].pivot_table(
        index=CELL, columns="metric", values="text", aggfunc="first"
    )
    update = text[text["shift_label"].notna()].pivot_table(
        index=ROW, columns="metric", values="text", aggfunc="first"
    )
    order = ["shift", "severity"]  # a sweep's rows in the order of its severities
    cells = results[results["shift_label"].notna()][ROW + order].drop_duplicates(ROW)
    table = cells.merge(update.reset_index(), on=ROW, how="left")
    table = table.merge(static.reset_index(), on=CELL, how="left")
    seeds = results[results["shift_label"].notna()].groupby(ROW)["seed"].nunique()
    table = table.merge(seeds.rename("seeds").reset_index(), on=ROW, how="left")
    notes = _problems(results)
    infeasible = _infeasible(results)
    table["note"] = [
        "; ".join(n for n in (notes.get(tuple(r), ""), infeasible.get(tuple(r[:-1]), "")) if n)
        for r in table[ROW].itertuples(index=False)
    ]
    columns = [*ROW, *[m for m in metrics if m in table.columns], "seeds", "note"]
    sort = [*CELL, *order, "shift_label"]
    table = table.sort_values(sort, kind="mergesort")[columns].reset_index(drop=True)
    table = table.fillna("")
    return table.rename(
        columns={
            "dataset_label": "dataset",
            "model_label": "model",
            "method_label": "method",
            "shift_label": "shift",
        }
    )


def _problems(results: pd.DataFrame) -> dict[tuple, str]:
    """Per row of the table, a note on seeds that were skipped or failed."""
    bad = results[results["status"] != "ok"]
    notes = {}
    for key, group in bad.groupby(ROW, dropna=False, sort=True):
        first = group.iloc[0]
        notes[key] = f"{first['status']} ({group['seed'].nunique()} seed(s)): {first['reason']}"
    return notes


def _infeasible(results: pd.DataFrame) -> dict[tuple, str]:
    """Per (dataset, model, method), a note where the method returned infeasible recourses."""
    bad = results[
        (results["metric"] == "violations").fillna(False).astype(bool)
        & (results["status"] == "ok")
        & (results["value"] > 0).fillna(False).astype(bool)
    ]
    return {
        key: f"infeasible recourses, counted as not found ({group['seed'].nunique()} seed(s)): "
        f"{group.iloc[0]['reason']}"
        for key, group in bad.groupby(CELL, sort=True)
    }


def to_markdown(table: pd.DataFrame) -> str:
    """Render a table as GitHub-flavoured Markdown (no extra dependency)."""
    header = [str(c) for c in table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines) + "\n"


def timing_table(timings: list[dict[str, Any]]) -> pd.DataFrame:
    """Fit and generation time per (dataset, model, method), as the median over seeds.

    ``timings`` is the run metadata's ``recourse_timings``: one entry per recourse cell, measured
    when the cell was computed (a cached cell keeps the time of its first computation).
    Skipped cells (no factual handled) are left out.
    """
    frame = pd.DataFrame(timings)
    columns = ["dataset", "model", "method", "fit s", "generate s", "ms per recourse", "seeds"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame = frame[frame["factuals"] > 0]
    frame = frame.assign(per_recourse=1000 * frame["generate_seconds"] / frame["factuals"])
    grouped = frame.groupby(["dataset", "model", "method"], sort=True)
    table = grouped.agg(
        fit=("fit_seconds", "median"),
        generate=("generate_seconds", "median"),
        per_recourse=("per_recourse", "median"),
        seeds=("seed", "nunique"),
    ).reset_index()
    table.columns = columns
    for column, digits in (("fit s", 3), ("generate s", 3), ("ms per recourse", 2)):
        table[column] = table[column].map(lambda v, d=digits: f"{v:.{d}f}")
    return table


def markdown_report(
    results: pd.DataFrame,
    title: str = "recourse-bench",
    timings: list[dict[str, Any]] | None = None,
) -> str:
    """The Markdown report of a run named ``title``: the invalidation table with a legend.

    With ``timings`` (the run metadata's ``recourse_timings``), a second table gives each
    method's fit and generation time.
    """
    table = invalidation_table(results)
    legend = (
        "Mean over seeds with a 95 % bootstrap interval; update metrics (invalidation-rate) are "
        "first averaged over the updated models of each seed. invalidation-rate: share of "
        "recourses valid under the base model that an updated model rejects (lower is better); "
        "validity: share of factuals whose recourse the base model accepts."
    )
    text = f"# {title}: recourse invalidation\n\n{legend}\n\n{to_markdown(table)}"
    if timings:
        text += (
            "\n\n## Time\n\nMedian over seeds of the time to fit each method and to generate "
            "recourse for the factuals (measured when the cell was first computed; one torch "
            f"thread per worker).\n\n{to_markdown(timing_table(timings))}"
        )
    return text


def terminal_summary(results: pd.DataFrame, title: str = "recourse-bench") -> str:
    """A few lines for the terminal: per method, each headline metric averaged over all cells.

    A cell's value is its mean over seeds (update metrics first averaged over the updated
    models); the summary averages those over every (dataset, model, shift) cell the method has,
    so it reads "how does this method do across the study". ``not ok`` counts the method's rows
    that were skipped, failed or timed out. The full tables stay in ``report.md``.
    """
    summary = summarise(results)
    shown = [m for m in SUMMARY_METRICS if m in set(summary["metric"])]
    per_method = summary[summary["metric"].isin(shown)].pivot_table(
        index="method_label", columns="metric", values="mean", aggfunc="mean", sort=False
    )
    methods = list(dict.fromkeys(results["method_label"].dropna()))
    bad = results[results["status"] != "ok"].groupby("method_label")["status"].size()
    rows = []
    for method in methods:
        values = per_method.loc[method] if method in per_method.index else pd.Series(dtype=float)
        cells = [
            f"{values[m]:.3f}" if m in values and pd.notna(values[m]) else "n/a" for m in shown
        ]
        rows.append([method, *cells, int(bad.get(method, 0))])
    table = pd.DataFrame(rows, columns=["method", *shown, "not ok"])
    cells = results.dropna(subset=["shift_label"])[ROW].drop_duplicates()
    head = (
        f"{title}: {len(methods)} method(s); each value is the mean over "
        f"{cells[['dataset_label', 'model_label', 'shift_label']].drop_duplicates().shape[0]} "
        "(dataset, model, shift) cells of the per-cell mean over seeds."
    )
    return f"{head}\n\n{to_markdown(table)}"
