"""Markdown tables for the terminal and ``report.md``, from a report's :class:`ReportData`.

The numbers are those of :mod:`recourse_bench.reports.data`: an update metric is first averaged
over the K updated models within a seed; every metric is then summarised over seeds by its mean
and a 95 % percentile-bootstrap interval, computed once per report.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from .data import CELL, PREFERRED_ORDER, ROW, ReportData, as_report_data

SUMMARY_METRICS = ("invalidation-rate", "validity", "cost-l1", "violations")
"""The columns of the terminal summary, where measured."""


def _format(mean: float, low: float, high: float) -> str:
    if math.isnan(mean):
        return "n/a"
    if math.isnan(low) or low == high:
        return f"{mean:.3f}"
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def invalidation_table(data: pd.DataFrame | ReportData) -> pd.DataFrame:
    """One row per dataset x model x method x shift; a column per metric ("mean [95 % CI]").

    Static metrics (validity, coverage, cost) are the same on every shift row of a cell. Cells
    that were skipped or failed show their status and reason.
    """
    data = as_report_data(data)
    results, summary = data.results, data.summary
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


def compatibility_matrix(results: pd.DataFrame) -> pd.DataFrame:
    """Which method ran on which dataset and model, and why not where it did not.

    One row per method, one column per "dataset / model"; a cell is ``ran`` where every row of
    the method there is ``ok``, ``ran (N rows error)`` (or timeout) where some failed, and
    ``skipped: reason`` (or ``error: reason``) where none is ``ok``, the first reason shortened.
    Methods not run on a dataset and model at all (absent from the results) show ``-``.
    """
    if results.empty:
        return pd.DataFrame()
    frame = results.assign(where=results["dataset_label"] + " / " + results["model_label"])
    columns = list(dict.fromkeys(frame["where"]))
    cells = {}
    for (method, where), group in frame.groupby(["method_label", "where"], sort=False):
        cells[(method, where)] = _compatibility(group)
    methods = list(dict.fromkeys(frame["method_label"]))
    table = pd.DataFrame(
        [[cells.get((m, w), "-") for w in columns] for m in methods], columns=columns
    )
    table.insert(0, "method", methods)
    return table


def _compatibility(group: pd.DataFrame) -> str:
    status = group["status"]
    bad = group[status != "ok"]
    if bad.empty:
        return "ran"
    if (status == "ok").any():
        counts = bad["status"].value_counts()
        return "ran (" + ", ".join(f"{n} rows {s}" for s, n in counts.items()) + ")"
    first = bad.iloc[0]
    reason = "" if pd.isna(first["reason"]) else " ".join(str(first["reason"]).split())
    reason = reason if len(reason) <= 120 else reason[:117] + "..."
    return f"{first['status']}: {reason}" if reason else str(first["status"])


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


def markdown_report(data: pd.DataFrame | ReportData) -> str:
    """The Markdown report: the invalidation table with a legend, and the time table.

    The time table (each method's fit and generation time) comes from the run metadata's
    ``recourse_timings`` held by the report data.
    """
    data = as_report_data(data)
    title, timings = data.title, data.timings
    table = invalidation_table(data)
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


def terminal_summary(data: pd.DataFrame | ReportData) -> str:
    """A few lines for the terminal: per method, each headline metric averaged over all cells.

    A cell's value is its mean over seeds (update metrics first averaged over the updated
    models); the summary averages those over every (dataset, model, shift) cell the method has,
    so it reads "how does this method do across the study". ``not ok`` counts the method's rows
    that were skipped, failed or timed out. The full tables stay in ``report.md``.
    """
    data = as_report_data(data)
    results, summary, title = data.results, data.summary, data.title
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
    keys = ["dataset_label", "model_label", "shift_label"]
    shifted = results.dropna(subset=["shift_label"])
    if shifted.empty:  # only static metrics: a cell is a (dataset, model)
        keys, shifted = keys[:2], results
    n_cells = shifted[keys].dropna().drop_duplicates().shape[0]
    head = (
        f"{title}: {len(methods)} method(s); each value is the mean over {n_cells} "
        f"({', '.join(k.removesuffix('_label') for k in keys)}) cells of the per-cell mean "
        "over seeds."
    )
    return f"{head}\n\n{to_markdown(table)}"
