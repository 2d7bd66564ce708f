"""Paper tables: one metric, methods as rows, datasets (x models x shifts) as column groups.

Every cell is the metric's mean over seeds with the half-width of its 95 % percentile-bootstrap
interval (``mean ± (high - low) / 2``; a plain mean for a single seed), as computed by
:func:`recourse_bench.reports.tables.summarise`: an update metric is first averaged over the
updated models of each seed. The best value of each column is marked (bold) according to the
metric's ``higher_is_better``, comparing the rounded values that are printed, so that tied printed
values are all marked. Cells without a result show ``--``; whatever is missing (skipped, failed or
undefined seeds) is counted in a note under the table, never dropped silently.

:func:`paper_table` builds a :class:`PaperTable`; :func:`to_latex` renders it as a booktabs
``table`` environment and :func:`to_markdown_table` as Markdown. :func:`paper_tables` builds the
table of every metric present in a results frame. :func:`main_table` puts several metrics side
by side, one column per metric under each dataset, the layout of most recourse papers' main
tables (a config's ``table:``).
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import pandas as pd

from .data import ReportData, as_report_data
from .tables import to_markdown

FIELDS = {"dataset": "dataset_label", "model": "model_label", "shift": "shift_label"}
MISSING = "--"
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    "±": r"$\pm$",
    "\u00d7": r"$\times$",  # multiplication sign
    "≤": r"$\leq$",
    "≥": r"$\geq$",
    "→": r"$\rightarrow$",
}


@dataclass
class PaperTable:
    """One metric's paper table, before rendering.

    Attributes
    ----------
    metric : str
        The metric shown.
    higher_is_better : bool or None
        Its direction (None when the metric is not registered: then nothing is marked best).
    columns : tuple of str
        The fields that make the column groups, outermost first (``dataset``, ``model``,
        ``shift``).
    keys : list of tuple of str
        The columns in order: one tuple of labels (one per field of ``columns``) each.
    methods : list of str
        The rows (method labels) in order.
    cells : pandas.DataFrame
        One row per (method, column): ``method``, the fields of ``columns``, ``mean``, ``low``,
        ``high``, ``half_width``, ``n_seeds``, ``text`` (the printed number, or ``--``), ``best``
        (bool) and ``marker`` (the letter of the cell's note, or "").
    notes : list of tuple of str
        ``(marker, text)`` for each kind of missing result, counted.
    caption : str
        A default caption (plain text) saying what the numbers are.
    digits : int
        Decimals printed.
    """

    metric: str
    higher_is_better: bool | None
    columns: tuple[str, ...]
    keys: list[tuple[str, ...]]
    methods: list[str]
    cells: pd.DataFrame
    notes: list[tuple[str, str]] = field(default_factory=list)
    caption: str = ""
    digits: int = 3

    def cell(self, method: str, *key: str) -> pd.Series:
        """The row of ``cells`` for ``method`` and the column ``key`` (one label per field)."""
        mask = self.cells["method"] == method
        for name, label in zip(self.columns, key, strict=True):
            mask &= self.cells[name] == label
        found = self.cells[mask]
        if len(found) != 1:
            raise KeyError(f"no cell for method {method!r} and column {key!r}")
        return found.iloc[0]


# ----------------------------------------------------------------------------------- building
def _relevant(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows that bear on ``metric``: its own, and non-ok rows that name no metric."""
    named = results["metric"] == metric
    unnamed = results["metric"].isna() & (results["status"] != "ok")
    return results[(named.fillna(False) | unnamed).astype(bool)]


def _default_columns(rows: pd.DataFrame, shifted: bool) -> tuple[str, ...]:
    """Datasets, then models and shifts where there are several (one is named in the caption)."""
    columns = ["dataset"]
    if rows["model_label"].nunique() > 1:
        columns.append("model")
    if shifted and rows["shift_label"].nunique() > 1:
        columns.append("shift")
    return tuple(columns)


def _column_keys(rows: pd.DataFrame, columns: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The columns present, in the order of the results (a sweep's shifts by severity)."""
    labels = [FIELDS[c] for c in columns]
    rows = rows.dropna(subset=labels)
    order = {}
    for name in ("dataset_label", "model_label"):
        order[name] = {v: i for i, v in enumerate(dict.fromkeys(rows[name]))}
    shifts = rows[["shift", "severity", "shift_label"]].drop_duplicates("shift_label")
    shifts = shifts.sort_values(["shift", "severity", "shift_label"], na_position="first")
    order["shift_label"] = {v: i for i, v in enumerate(shifts["shift_label"])}
    keys = {tuple(str(v) for v in k) for k in rows[labels].itertuples(index=False)}
    return sorted(keys, key=lambda k: tuple(order[n][v] for n, v in zip(labels, k, strict=True)))


def _format(mean: float, half: float, n_seeds: int, digits: int) -> str:
    if math.isnan(mean):
        return MISSING
    if n_seeds < 2 or math.isnan(half):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {half:.{digits}f}"


def _marker(i: int) -> str:
    letters = string.ascii_lowercase
    return letters[i] if i < len(letters) else letters[i // 26 - 1] + letters[i % 26]


def paper_table(
    results: pd.DataFrame,
    metric: str,
    *,
    columns: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    digits: int = 3,
    higher_is_better: bool | None = None,
    data: ReportData | None = None,
) -> PaperTable:
    """The paper table of ``metric``: methods as rows, column groups of datasets (and shifts).

    Parameters
    ----------
    results : pandas.DataFrame
        A results frame (see :mod:`recourse_bench.store`).
    metric : str
        The metric to tabulate (e.g. ``invalidation-rate``).
    columns : sequence of str, optional
        The column fields, outermost first, among ``dataset``, ``model`` and ``shift``. By
        default ``dataset``, then ``model`` when there are several, then ``shift`` for metrics
        measured under shifts. A field left out must not vary.
    methods : sequence of str, optional
        The method labels to show, in order (default: all, in the order of the results).
    digits : int
        Decimals printed; the best value of a column is chosen on the printed (rounded) means.
    higher_is_better : bool, optional
        The metric's direction; by default the one the report data know (the run metadata's,
        else the registered metric's).
    data : ReportData, optional
        The report's aggregated data, if already built (used by :func:`paper_tables`); by
        default the rows of ``metric`` are aggregated here.

    Returns
    -------
    PaperTable
        The table, for :func:`to_latex` or :func:`to_markdown_table`.

    Raises
    ------
    ValueError
        For an unknown column field, or when a field left out of ``columns`` varies.
    """
    rows = _relevant(results, metric)
    if rows.empty:
        raise ValueError(f"no results for metric {metric!r}")
    data = data if data is not None else ReportData.build(rows)
    shifted = data.is_shifted(metric)
    if not shifted:  # a static metric: rows of a failed shift say nothing about it
        rows = rows.assign(shift_label=pd.NA)
    columns = tuple(columns) if columns is not None else _default_columns(rows, shifted)
    unknown = [c for c in columns if c not in FIELDS]
    if unknown:
        raise ValueError(f"unknown column field(s) {unknown}; valid: {', '.join(FIELDS)}")
    for name, label in FIELDS.items():
        if name not in columns and rows[label].nunique() > 1:
            raise ValueError(
                f"metric {metric!r} varies over {name} ({rows[label].nunique()} values): "
                f"add {name!r} to columns"
            )
    direction = higher_is_better if higher_is_better is not None else data.higher_is_better(metric)
    summary = data.summary[data.summary["metric"] == metric]
    keys = _column_keys(rows, columns)
    shown = list(dict.fromkeys(rows["method_label"])) if methods is None else list(methods)
    infeasible = _infeasible_seeds(results, columns, keys)
    excluded = {cell for cell, _ in infeasible}
    cells = _cells(summary, columns, keys, shown, digits, direction, excluded)
    cells, notes = _annotate(rows, cells, metric, columns, shifted, infeasible)
    return PaperTable(
        metric=metric,
        higher_is_better=direction,
        columns=columns,
        keys=keys,
        methods=shown,
        cells=cells,
        notes=notes,
        caption=_caption(metric, direction, rows, shifted, columns),
        digits=digits,
    )


def _cells(
    summary: pd.DataFrame,
    columns: tuple[str, ...],
    keys: list[tuple[str, ...]],
    methods: list[str],
    digits: int,
    direction: bool | None,
    excluded: set[tuple[str, ...]] = frozenset(),  # type: ignore[assignment]
) -> pd.DataFrame:
    """The grid of methods x columns with the summary's numbers, text and best marks.

    A cell in ``excluded`` (method, *key) is never marked best: its method returned
    infeasible recourses there, so its numbers cover only part of its factuals.
    """
    labels = [FIELDS[c] for c in columns]
    found = {}
    for entry in summary.itertuples(index=False):
        record = entry._asdict()
        key = tuple(str(record[label]) for label in labels)
        found[(str(record["method_label"]), key)] = record
    records = []
    for key in keys:
        for method in methods:
            entry = found.get((method, key))
            mean = math.nan if entry is None else float(entry["mean"])
            low = math.nan if entry is None else float(entry["low"])
            high = math.nan if entry is None else float(entry["high"])
            n_seeds = 0 if entry is None or math.isnan(mean) else int(entry["n_seeds"])
            half = (high - low) / 2
            records.append(
                {
                    "method": method,
                    **dict(zip(columns, key, strict=True)),
                    "mean": mean,
                    "low": low,
                    "high": high,
                    "half_width": half,
                    "n_seeds": n_seeds,
                    "text": _format(mean, half, n_seeds, digits),
                }
            )
    names = ["method", *columns, "mean", "low", "high", "half_width", "n_seeds", "text"]
    cells = pd.DataFrame(records, columns=names)
    cells["best"] = False
    if direction is None or not columns:
        return cells
    eligible = pd.Series(
        [
            (r[0], *r[1:]) not in excluded
            for r in cells[["method", *columns]].itertuples(index=False)
        ],
        index=cells.index,
    )
    for _, group in cells.groupby(list(columns), sort=False):
        if group["mean"].notna().sum() < 2:  # nothing to compare with
            continue
        printed = group["mean"][eligible[group.index]].dropna()
        printed = printed.map(lambda v: float(f"{v:.{digits}f}"))
        if printed.empty:
            continue
        target = printed.max() if direction else printed.min()
        cells.loc[printed.index[printed == target], "best"] = True
    return cells


INFEASIBLE = (
    "violations",
    "the method returned recourses that break a constraint (see the violations table); they "
    "count as not found, and its cells are never marked best",
)


def _infeasible_seeds(
    results: pd.DataFrame, columns: tuple[str, ...], keys: list[tuple[str, ...]]
) -> list[tuple[tuple[str, ...], int]]:
    """The (cell, seed) pairs where the method returned a recourse that breaks a constraint.

    A cell is (method, *key); ``violations`` is a static metric, so it applies to every shift
    column of its dataset and model.
    """
    if "metric" not in results or not (results["metric"] == "violations").any():
        return []
    bad = results[
        (results["metric"] == "violations").fillna(False).astype(bool)
        & (results["status"] == "ok")
        & (results["value"] > 0).fillna(False).astype(bool)
    ]
    found = []
    for record in bad.itertuples(index=False):
        values = record._asdict()
        for key in keys:
            fields = dict(zip(columns, key, strict=True))
            if all(
                str(values[FIELDS[name]]) == fields[name]
                for name in ("dataset", "model")
                if name in fields
            ):
                found.append(((str(values["method_label"]), *key), int(values["seed"])))
    return found


def _annotate(
    rows: pd.DataFrame,
    cells: pd.DataFrame,
    metric: str,
    columns: tuple[str, ...],
    shifted: bool,
    infeasible: list[tuple[tuple[str, ...], int]] = (),  # type: ignore[assignment]
) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Mark every cell with a missing seed or an infeasible recourse; one counted note per kind."""
    labels = [FIELDS[c] for c in columns]
    own = rows[(rows["metric"] == metric).fillna(False).astype(bool)]
    ok = own[own["status"] == "ok"]
    ok_seeds = ok.groupby(["method_label", *labels, "seed"], dropna=False)["value"].mean()
    problems: dict[tuple[str, str], dict[str, set]] = {}
    cell_problems: dict[tuple, list[tuple[str, str]]] = {}

    def add(kind: tuple[str, str], cell: tuple, seed: int | None) -> None:
        entry = problems.setdefault(kind, {"cells": set(), "seeds": set()})
        entry["cells"].add(cell)
        if seed is not None:
            entry["seeds"].add((cell, seed))
        cell_problems.setdefault(cell, [])
        if kind not in cell_problems[cell]:
            cell_problems[cell].append(kind)

    bad = rows[rows["status"] != "ok"]
    if not shifted:  # a metric-less failure matters to a static metric only without its value
        named = (bad["metric"] == metric).fillna(False).astype(bool).to_numpy()
        units = pd.MultiIndex.from_frame(bad[["method_label", *labels, "seed"]])
        measured = units.isin(ok_seeds.index)
        bad = bad[named | ~measured]
    for record in bad.itertuples(index=False):
        values = record._asdict()
        cell = (str(values["method_label"]), *(str(values[label]) for label in labels))
        reason = str(values["reason"]) if pd.notna(values["reason"]) else ""
        add((str(values["status"]), reason), cell, int(values["seed"]))
    for cell, seed in infeasible:
        add(INFEASIBLE, cell, seed)
    for (method, *key, seed), value in ok_seeds.items():
        if math.isnan(value):
            add(("undefined", "no value (e.g. an empty denominator)"), (method, *key), seed)
    for record in cells[cells["mean"].isna()].itertuples(index=False):
        values = record._asdict()
        cell = (values["method"], *(values[c] for c in columns))
        if cell not in cell_problems:
            add(("missing", "no results"), cell, None)

    kinds = list(problems)
    markers = {kind: _marker(i) for i, kind in enumerate(kinds)}
    cells = cells.copy()
    cells["marker"] = [
        ",".join(markers[k] for k in cell_problems.get((r[0], *r[1:]), []))
        for r in cells[["method", *columns]].itertuples(index=False)
    ]
    notes = []
    for kind in kinds:
        status, reason = kind
        n_cells = len(problems[kind]["cells"])
        n_seeds = len(problems[kind]["seeds"])
        count = f"{n_cells} cell(s)" + (f", {n_seeds} seed run(s) in all" if n_seeds else "")
        notes.append((markers[kind], f"{status} in {count}: {reason}".rstrip(": ")))
    return cells, notes


def _caption(
    metric: str,
    direction: bool | None,
    rows: pd.DataFrame,
    shifted: bool,
    columns: tuple[str, ...],
) -> str:
    seeds = rows["seed"].nunique()
    better = {True: "higher is better", False: "lower is better", None: "direction unknown"}
    text = (
        f"{metric} ({better[direction]}): mean over {seeds} seed(s) ± half-width of the 95 % "
        "percentile-bootstrap interval"
    )
    if shifted:
        text += ", each seed first averaged over its updated models"
    text += ". "
    for name, label in FIELDS.items():  # a field that is not a column has a single value
        if name not in columns and rows[label].nunique() == 1:
            text += f"{name.capitalize()}: {rows[label].dropna().iloc[0]}. "
    if direction is not None:
        text += "Best per column in bold (ties: all). "
    return text + f"{MISSING}: no result."


def paper_tables(data: pd.DataFrame | ReportData, *, digits: int = 3) -> dict[str, PaperTable]:
    """The paper table of every metric present (static and update), keyed by metric name.

    Each uses the default columns of :func:`paper_table`; the aggregation is the report's.
    """
    data = as_report_data(data)
    return {
        metric: paper_table(data.results, metric, digits=digits, data=data)
        for metric in data.ordered_metrics()
    }


MAIN_TABLE = "main"
"""The name of the main table (``tables/main.tex``, ``tables/main.md``)."""


def main_table(
    data: pd.DataFrame | ReportData, metrics: Sequence[str], *, digits: int = 3
) -> PaperTable:
    """Several metrics side by side: methods as rows; per dataset (and model), one column each.

    The layout of a recourse paper's main table (e.g. the GenRe paper's cost, validity, LOF and
    score per dataset). Each metric's cells are exactly those of its own :func:`paper_table`
    (same numbers, intervals and best marks, chosen per metric and column); the notes on missing
    or infeasible results of all of them are merged, one marker per kind. A dataset whose
    parameters differ from the defaults is headed by its name alone (``adult``, not
    ``adult(labels='gold', ...)``) where that leaves no two datasets alike.

    Parameters
    ----------
    data : pandas.DataFrame or ReportData
        A results frame or the report's aggregated data.
    metrics : sequence of str
        The metrics, in the order of their columns; metrics without results are left out.
    digits : int
        Decimals printed.

    Raises
    ------
    ValueError
        When no metric has results, or a metric varies over shifts within a dataset (then the
        per-metric tables, which give each shift a column, are the ones to use).
    """
    data = as_report_data(data)
    present = [m for m in dict.fromkeys(metrics) if (data.results["metric"] == m).any()]
    if not present:
        raise ValueError(f"no results for any metric of the table ({', '.join(metrics)})")
    columns = ("dataset", "model") if data.results["model_label"].nunique() > 1 else ("dataset",)
    tables = {
        metric: paper_table(data.results, metric, columns=columns, digits=digits, data=data)
        for metric in present
    }
    order = _column_keys(data.results, columns)
    keys = [(*key, metric) for key in order for metric in present]
    methods = list(dict.fromkeys(m for table in tables.values() for m in table.methods))
    markers: dict[str, str] = {}
    parts = []
    for metric, table in tables.items():
        renamed = {m: markers.setdefault(text, _marker(len(markers))) for m, text in table.notes}
        cells = table.cells.assign(metric=metric)
        cells["marker"] = [
            ",".join(renamed[m] for m in str(marks).split(",") if m) for marks in cells["marker"]
        ]
        parts.append(cells)
    cells = _complete(pd.concat(parts, ignore_index=True), (*columns, "metric"), keys, methods)
    short = _short_dataset_labels(data.results)
    if short:  # a paper's header names the dataset, not its parameters
        cells = cells.assign(dataset=cells["dataset"].map(lambda label: short.get(label, label)))
        keys = [(short.get(key[0], key[0]), *key[1:]) for key in keys]
    return PaperTable(
        metric=MAIN_TABLE,
        higher_is_better=None,
        columns=(*columns, "metric"),
        keys=keys,
        methods=methods,
        cells=cells,
        notes=[(marker, text) for text, marker in markers.items()],
        caption=_main_caption(data, present, columns),
        digits=digits,
    )


def _short_dataset_labels(results: pd.DataFrame) -> dict[str, str]:
    """Dataset label -> dataset name, when every dataset appears with one label only."""
    pairs = results[["dataset", "dataset_label"]].dropna().drop_duplicates()
    if pairs["dataset"].duplicated().any() or pairs["dataset_label"].duplicated().any():
        return {}
    return {str(label): str(name) for name, label in pairs.itertuples(index=False)}


def _complete(
    cells: pd.DataFrame,
    columns: tuple[str, ...],
    keys: list[tuple[str, ...]],
    methods: list[str],
) -> pd.DataFrame:
    """``cells`` with a ``--`` cell for every (method, column) that has none."""
    have = {(r[0], tuple(r[1:])) for r in cells[["method", *columns]].itertuples(index=False)}
    missing = [
        {"method": method, **dict(zip(columns, key, strict=True))}
        for key in keys
        for method in methods
        if (method, key) not in have
    ]
    if not missing:
        return cells
    blank = pd.DataFrame(missing).assign(
        mean=math.nan, low=math.nan, high=math.nan, half_width=math.nan, n_seeds=0
    )
    blank = blank.assign(text=MISSING, best=False, marker="")
    return pd.concat([cells, blank[cells.columns]], ignore_index=True)


def _main_caption(data: ReportData, metrics: list[str], columns: tuple[str, ...]) -> str:
    directions = []
    for metric in metrics:
        direction = data.higher_is_better(metric)
        arrow = "" if direction is None else (" (higher is better)" if direction else " (lower)")
        directions.append(f"{metric}{arrow}")
    rows = data.results
    seeds = rows["seed"].nunique()
    text = (
        f"Methods by {' and '.join(columns)}: {', '.join(directions)}. Mean over {seeds} seed(s)"
        + (" ± half the width of the 95 % bootstrap interval" if seeds > 1 else "")
        + ". "
    )
    if "model" not in columns:
        text += f"Model: {rows['model_label'].dropna().iloc[0]}. "
    shifted = [m for m in metrics if data.is_shifted(m)]
    shifts = rows[rows["metric"].isin(shifted)]["shift_label"].dropna().unique()
    if len(shifts):
        text += f"Update metrics under: {', '.join(map(str, shifts))}. "
    return text + f"Best per metric and column in bold. {MISSING}: no result."


# ---------------------------------------------------------------------------------- rendering
def escape_latex(text: str) -> str:
    r"""``text`` with LaTeX's special characters escaped (``_ % & # { } $ ~ ^ \``, ...)."""
    return "".join(_LATEX_SPECIAL.get(c, c) for c in str(text))


def _latex_cell(record: pd.Series) -> str:
    text = str(record["text"])
    if text != MISSING:
        text = text.replace(" ± ", r" $\pm$ ")
        if record["best"]:
            text = rf"\textbf{{{text}}}"
    if record["marker"]:
        text += rf"\textsuperscript{{{record['marker']}}}"
    return text


def _grid(table: PaperTable) -> dict[tuple[str, tuple[str, ...]], pd.Series]:
    labels = list(table.columns)
    return {
        (str(r["method"]), tuple(str(r[c]) for c in labels)): r for _, r in table.cells.iterrows()
    }


def _spans(keys: list[tuple[str, ...]], level: int) -> list[tuple[str, int, int]]:
    """Runs of columns sharing the labels up to ``level``: (label, first, last), 0-based."""
    runs: list[tuple[str, int, int]] = []
    for i, key in enumerate(keys):
        if runs and keys[runs[-1][1]][: level + 1] == key[: level + 1]:
            runs[-1] = (runs[-1][0], runs[-1][1], i)
        else:
            runs.append((key[level], i, i))
    return runs


NARROW_COLUMNS = 3
"""Data columns that fit one column of a two-column paper: such a table is a plain ``table``."""

WIDE_COLUMNS = 8
"""Data columns beyond which a table with several datasets is split into one per dataset."""


def to_latex(
    table: PaperTable,
    caption: str | None = None,
    label: str | None = None,
    *,
    notes: bool = True,
    split: bool = True,
) -> str:
    r"""The table as LaTeX booktabs environments that fit the page.

    Up to :data:`NARROW_COLUMNS` data columns: one ``table`` (one column of a two-column
    paper). Up to :data:`WIDE_COLUMNS`: one ``table*`` across the page, scaled down to the text
    width where it is wider (``\resizebox``, never scaled up). More columns over several
    datasets: one ``table*`` per dataset (labels ``<label>-<dataset>``), each scaled down where
    needed. Needs ``\usepackage{booktabs}`` and, for the wide layouts, ``graphicx``.

    Parameters
    ----------
    table : PaperTable
        From :func:`paper_table`.
    caption : str, optional
        Plain text (LaTeX special characters are escaped); default ``table.caption``; "" omits
        the caption. A table split per dataset names the dataset after it.
    label : str, optional
        The ``\label`` (default ``tab:<metric>``); "" omits it.
    notes : bool
        Print the notes on missing results under the table.
    split : bool
        Split a wide table with several datasets into one environment per dataset (False: one
        ``table*``, scaled down to the text width, as a paper's main table).

    Returns
    -------
    str
        The LaTeX source, ending with a newline.
    """
    caption = table.caption if caption is None else caption
    label = f"tab:{table.metric}" if label is None else label
    datasets = list(dict.fromkeys(key[0] for key in table.keys)) if table.columns else []
    narrow = len(table.keys) <= WIDE_COLUMNS
    if not split or narrow or table.columns[:1] != ("dataset",) or len(datasets) < 2:
        return _environment(table, caption, label, notes)
    parts = []
    for dataset in datasets:
        part = _one_dataset(table, dataset)
        part_caption = f"{caption} Dataset: {dataset}." if caption else ""
        part_label = f"{label}-{_label_safe(dataset)}" if label else ""
        parts.append(_environment(part, part_caption, part_label, notes))
    return "\n".join(parts)


def _label_safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.:" else "-" for c in text)


def _one_dataset(table: PaperTable, dataset: str) -> PaperTable:
    """The columns of one dataset, with the notes its cells mark."""
    cells = table.cells[table.cells["dataset"] == dataset]
    return replace(
        table,
        keys=[key for key in table.keys if key[0] == dataset],
        cells=cells,
        notes=_notes_used(table, cells),
    )


def _notes_used(table: PaperTable, cells: pd.DataFrame) -> list[tuple[str, str]]:
    used = {m for marks in cells["marker"] for m in str(marks).split(",") if m}
    return [(m, text) for m, text in table.notes if m in used]


def split_table(table: PaperTable, field: str) -> dict[str, PaperTable]:
    """One table per value of the column field ``field`` (e.g. one per model), that level removed.

    Each keeps the columns, cells and notes of its value; a table without ``field`` among its
    columns is returned whole, under "".
    """
    if field not in table.columns:
        return {"": table}
    level = table.columns.index(field)
    parts = {}
    for value in dict.fromkeys(key[level] for key in table.keys):
        cells = table.cells[table.cells[field] == value].drop(columns=[field])
        parts[value] = replace(
            table,
            columns=tuple(c for c in table.columns if c != field),
            keys=[key[:level] + key[level + 1 :] for key in table.keys if key[level] == value],
            cells=cells,
            notes=_notes_used(table, cells),
            caption=f"{table.caption} {field.capitalize()}: {value}.",
        )
    return parts


def _environment(table: PaperTable, caption: str, label: str, notes: bool) -> str:
    """One booktabs environment: ``table`` when narrow, else a ``table*`` scaled to fit."""
    n = len(table.keys)
    wide = n > NARROW_COLUMNS
    env = "table*" if wide else "table"
    lines = [rf"\begin{{{env}}}[t]", r"\centering"]
    if caption:
        lines.append(rf"\caption{{{escape_latex(caption)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    if wide:  # scaled down to the text width where wider, never up
        lines.append(r"\resizebox{\ifdim\width>\textwidth\textwidth\else\width\fi}{!}{%")
    lines += [rf"\begin{{tabular}}{{l{'c' * n}}}", r"\toprule"]
    depth = len(table.columns)
    for level in range(depth - 1):
        runs = _spans(table.keys, level)
        heads = [rf"\multicolumn{{{b - a + 1}}}{{c}}{{{escape_latex(t)}}}" for t, a, b in runs]
        lines.append(" & ".join(["", *heads]) + r" \\")
        lines.append(" ".join(rf"\cmidrule(lr){{{a + 2}-{b + 2}}}" for _, a, b in runs))
    last = [escape_latex(key[-1]) for key in table.keys] if depth else []
    lines.append(" & ".join(["Method", *last]) + r" \\")
    lines.append(r"\midrule")
    grid = _grid(table)
    for method in table.methods:
        row = [_latex_cell(grid[(method, key)]) for key in table.keys]
        lines.append(" & ".join([escape_latex(method), *row]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if wide:
        lines.append("}")
    if notes and table.notes:
        text = "; ".join(rf"\textsuperscript{{{m}}}{escape_latex(t)}" for m, t in table.notes)
        lines += [r"\par\smallskip", rf"{{\footnotesize {text}.\par}}"]
    lines.append(rf"\end{{{env}}}")
    return "\n".join(lines) + "\n"


def to_markdown_table(table: PaperTable, caption: str | None = None) -> str:
    """The table as GitHub Markdown: best in ``**bold**``, notes as ``(a)`` under the table.

    ``caption`` (default ``table.caption``; "" omits it) is printed as a paragraph above. The
    column header joins the column fields' labels with " / ".
    """
    caption = table.caption if caption is None else caption
    grid = _grid(table)
    header = ["method", *(" / ".join(key) for key in table.keys)]
    rows = []
    for method in table.methods:
        row = [method]
        for key in table.keys:
            record = grid[(method, key)]
            text = str(record["text"])
            if record["best"] and text != MISSING:
                text = f"**{text}**"
            if record["marker"]:
                text += f" ({record['marker']})"
            row.append(text)
        rows.append(row)
    text = to_markdown(pd.DataFrame(rows, columns=header))
    if caption:
        text = f"{caption}\n\n{text}"
    if table.notes:
        text += "\n" + "\n".join(f"({m}) {t}" for m, t in table.notes) + "\n"
    return text


__all__ = [
    "MAIN_TABLE",
    "PaperTable",
    "escape_latex",
    "main_table",
    "paper_table",
    "paper_tables",
    "split_table",
    "to_latex",
    "to_markdown_table",
]
