"""Figures for papers from a results frame: invalidation per shift, against severity, against cost.

Every figure function takes the long results frame (see :mod:`recourse_bench.store`) and the
report's :class:`~recourse_bench.reports.style.MethodStyles`, and returns a
:class:`matplotlib.figure.Figure`, or None when the results hold nothing it could draw. The values
drawn are those of :func:`~recourse_bench.reports.tables.summarise`: the mean over seeds (of the
mean over updated models within a seed) with a 95 % bootstrap interval; rows whose status is not
``ok`` count for nothing, and a cell without any ok value is left empty (shown as "n/a" in the
heat map). Figures are built with :class:`~matplotlib.figure.Figure` (no pyplot, no global state)
under :func:`~recourse_bench.reports.style.paper_style`, with a constrained layout.

:func:`write_figures` makes all of them and saves each as PDF and PNG (:func:`save_figure`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .style import (
    MISSING_COLOR,
    ONE_COLUMN,
    SEQUENTIAL_CMAP,
    SMALL_FONT_SIZE,
    TWO_COLUMN,
    MethodStyles,
    paper_style,
    wrap_label,
)
from .tables import higher_is_better, summarise

INVALIDATION = "invalidation-rate"
COST = "cost-l1"
PLAUSIBILITY = "plausibility-lof"
FIGURE_METRICS = (INVALIDATION, COST, PLAUSIBILITY)
"""The metrics the figures draw (the summary can be restricted to them)."""

PANEL = ["dataset_label", "model_label"]
MEAN_OVER_SHIFTS = "mean over shifts"
MAX_COLUMNS = 3
PNG_DPI = 200


# -- helpers --------------------------------------------------------------------------------------


def _higher(metric: str) -> bool:
    """:func:`higher_is_better`, counting an unregistered metric as lower-is-better."""
    return higher_is_better(metric) is True


def _direction(metric: str) -> str:
    return "higher is better" if _higher(metric) else "lower is better"


def _summary(results: pd.DataFrame, summary: pd.DataFrame | None) -> pd.DataFrame:
    """``summary`` when given, else :func:`summarise` of the rows of the figure metrics."""
    if summary is not None:
        return summary
    return summarise(results[results["metric"].isin(FIGURE_METRICS)])


def _shift_order(results: pd.DataFrame) -> pd.DataFrame:
    """One row per shift label with its family (``shift``) and ``severity``, in report order."""
    shifts = results.loc[results["shift_label"].notna(), ["shift_label", "shift", "severity"]]
    shifts = shifts.drop_duplicates("shift_label").copy()
    shifts["shift"] = shifts["shift"].fillna(shifts["shift_label"]).astype(str)
    shifts["shift_label"] = shifts["shift_label"].astype(str)
    shifts["severity"] = shifts["severity"].astype(float)
    shifts = shifts.sort_values(["shift", "severity", "shift_label"], kind="mergesort")
    return shifts.reset_index(drop=True)


def _update_means(summary: pd.DataFrame, metric: str = INVALIDATION) -> pd.DataFrame:
    """The summary rows of an update metric that have a shift and a mean."""
    rows = summary[
        (summary["metric"] == metric) & summary["shift_label"].notna() & summary["mean"].notna()
    ]
    return rows.astype({"shift_label": str, "method_label": str}).reset_index(drop=True)


def _panels(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """The sorted (dataset, model) pairs of a frame."""
    pairs = frame[PANEL].dropna().drop_duplicates()
    return sorted((str(d), str(m)) for d, m in pairs.itertuples(index=False))


def _in_panel(frame: pd.DataFrame, panel: tuple[str, str]) -> pd.DataFrame:
    return frame[(frame["dataset_label"] == panel[0]) & (frame["model_label"] == panel[1])]


def _grid(
    fig: Figure, n: int, ncols: int, *, sharex: bool = False, sharey: bool = False
) -> list[Axes]:
    """``n`` axes in rows of ``ncols``; unused slots are removed, x tick labels kept at bottoms."""
    nrows = math.ceil(n / ncols)
    grid = fig.subplots(nrows, ncols, squeeze=False, sharex=sharex, sharey=sharey)
    axes = list(grid.ravel())
    for ax in axes[n:]:
        ax.remove()
    for i, ax in enumerate(axes[:n]):
        if i + ncols >= n:  # lowest axes of its column
            ax.tick_params(labelbottom=True)
    return axes[:n]


def _is_bottom(i: int, n: int, ncols: int) -> bool:
    return i + ncols >= n


def _columns(n: int, cap: int = MAX_COLUMNS) -> int:
    """Columns for ``n`` panels: at most ``cap``, rows filled as evenly as possible."""
    return max(1, math.ceil(n / math.ceil(n / cap))) if n else 1


def _legend_columns(labels: Sequence[str], width: float) -> int:
    """How many legend columns of these labels fit in ``width`` inches."""
    if not labels:
        return 1
    longest = max(len(line) for label in labels for line in label.split("\n"))
    per_entry = 0.45 + longest * SMALL_FONT_SIZE * 0.55 / 72
    return max(1, min(len(labels), int(width // per_entry)))


def _method_legend(
    fig: Figure, styles: MethodStyles, methods: Iterable[str], extra: Sequence[Line2D] = ()
) -> None:
    """The methods' legend below the axes (outside the data area)."""
    handles = [*styles.handles(methods), *extra]
    labels = [h.get_label() for h in handles]
    ncols = _legend_columns(labels, fig.get_figwidth())
    fig.legend(handles=handles, labels=labels, loc="outside lower center", ncols=ncols)


def _errors(mean: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Non-negative error-bar lengths (2, n); a missing bound gives no whisker."""
    mean = np.asarray(mean, dtype=float)
    low = np.where(np.isnan(low), mean, low)
    high = np.where(np.isnan(high), mean, high)
    return np.vstack([np.clip(mean - low, 0, None), np.clip(high - mean, 0, None)])


def _panel_title(panel: tuple[str, str], extra: str | None = None, width: int = 34) -> str:
    title = wrap_label(f"{panel[0]} / {panel[1]}", width)
    return title if extra is None else f"{title}\n{wrap_label(extra, width)}"


def _styles(results: pd.DataFrame, styles: MethodStyles | None) -> MethodStyles:
    return MethodStyles.from_results(results) if styles is None else styles


# -- 1. invalidation per shift ---------------------------------------------------------------------


def invalidation_by_shift(
    results: pd.DataFrame,
    styles: MethodStyles | None = None,
    *,
    summary: pd.DataFrame | None = None,
) -> Figure | None:
    """Invalidation rate of each method under each shift: points with 95 % interval whiskers.

    Shifts are rows (their labels read horizontally, wrapped), methods are dodged within a row;
    one panel per dataset x model, at most three panels a row, sharing both axes.

    Parameters
    ----------
    results : pandas.DataFrame
        The results frame.
    styles : MethodStyles, optional
        The report's method styles (default: built from ``results``).
    summary : pandas.DataFrame, optional
        ``summarise(results)`` when already computed.

    Returns
    -------
    matplotlib.figure.Figure or None
        None when no ok invalidation rate exists.
    """
    styles = _styles(results, styles)
    inv = _update_means(_summary(results, summary))
    if inv.empty:
        return None
    shifts = [s for s in _shift_order(results)["shift_label"] if s in set(inv["shift_label"])]
    methods = styles.order(inv["method_label"])
    panels = _panels(inv)
    ncols = _columns(len(panels))
    nrows = math.ceil(len(panels) / ncols)
    band = max(0.26, 0.075 * len(methods))
    height = nrows * (0.45 + len(shifts) * band) + 0.35 + 0.15 * math.ceil(len(methods) / 3)
    width = TWO_COLUMN if ncols > 1 else ONE_COLUMN
    upper = float(np.nanmax(np.r_[inv["high"].to_numpy(float), inv["mean"].to_numpy(float)]))
    upper = min(1.0, upper) if upper > 0 else 0.05
    with paper_style():
        fig = Figure(figsize=(width, height), layout="constrained")
        axes = _grid(fig, len(panels), ncols, sharex=True, sharey=True)
        step = 0.8 / len(methods)
        for i, (ax, panel) in enumerate(zip(axes, panels, strict=True)):
            cells = _in_panel(inv, panel)
            for j, method in enumerate(methods):
                rows = cells[cells["method_label"] == method]
                if rows.empty:
                    continue
                y = np.array([shifts.index(s) for s in rows["shift_label"]], dtype=float)
                y += (j - (len(methods) - 1) / 2) * step
                mean = rows["mean"].to_numpy(float)
                color = styles.color(method)
                ax.errorbar(
                    mean,
                    y,
                    xerr=_errors(mean, rows["low"].to_numpy(float), rows["high"].to_numpy(float)),
                    fmt="none",
                    ecolor=color,
                    elinewidth=0.8,
                    label="_nolegend_",
                )
                ax.plot(
                    mean,
                    y,
                    linestyle="none",
                    marker=styles.marker(method),
                    color=color,
                    label=method,
                )
            for k in range(1, len(shifts)):
                ax.axhline(k - 0.5, color="#bdbdbd", linewidth=0.4)
            ax.grid(axis="y", visible=False)
            ax.set_title(_panel_title(panel))
            if _is_bottom(i, len(panels), ncols):
                ax.set_xlabel(f"invalidation rate ({_direction(INVALIDATION)})")
        axes[0].set_yticks(range(len(shifts)), [wrap_label(s, 22) for s in shifts])
        axes[0].set_ylim(len(shifts) - 0.5, -0.5)
        axes[0].set_xlim(-0.03 * upper, upper * 1.04)
        _method_legend(fig, styles, methods)
    return fig


# -- 2. invalidation against severity -------------------------------------------------------------


def invalidation_vs_severity(
    results: pd.DataFrame,
    styles: MethodStyles | None = None,
    *,
    summary: pd.DataFrame | None = None,
) -> Figure | None:
    """Invalidation rate against severity: one line (with 95 % band) per method.

    One panel per swept shift family and dataset x model; only families with more than one
    severity in a panel are drawn. Panels share the invalidation axis; each has its own
    severity axis.

    Parameters
    ----------
    results : pandas.DataFrame
        The results frame.
    styles : MethodStyles, optional
        The report's method styles (default: built from ``results``).
    summary : pandas.DataFrame, optional
        ``summarise(results)`` when already computed.

    Returns
    -------
    matplotlib.figure.Figure or None
        None when no shift was swept over more than one severity.
    """
    styles = _styles(results, styles)
    inv = _update_means(_summary(results, summary))
    shifts = _shift_order(results)
    inv = inv.merge(shifts, on="shift_label", how="inner")
    inv = inv[inv["severity"].notna()]
    counts = inv.groupby([*PANEL, "shift"])["severity"].nunique()
    swept = sorted(key for key, count in counts.items() if count > 1)
    if not swept:
        return None
    families = sorted({key[2] for key in swept})
    combos = sorted({key[:2] for key in swept})
    methods = styles.order(inv["method_label"])
    n = len(swept)
    # a full grid (a row per dataset x model, a column per family) is labelled at its margins;
    # otherwise each panel is titled with its dataset, model and family
    aligned = 1 < len(families) <= 4 and n == len(families) * len(combos)
    ncols = len(families) if aligned else _columns(n)
    nrows = math.ceil(n / ncols)
    width = TWO_COLUMN if ncols > 1 else ONE_COLUMN
    row_height = 1.25 if aligned else 1.55
    height = nrows * row_height + 0.5 + 0.15 * math.ceil(len(methods) / 3)
    with paper_style():
        fig = Figure(figsize=(width, height), layout="constrained")
        axes = _grid(fig, n, ncols, sharey=True)
        for i, (ax, (dataset, model, family)) in enumerate(zip(axes, swept, strict=True)):
            cells = inv[
                (inv["dataset_label"] == dataset)
                & (inv["model_label"] == model)
                & (inv["shift"] == family)
            ]
            for method in methods:
                rows = cells[cells["method_label"] == method].sort_values("severity")
                if rows.empty:
                    continue
                color = styles.color(method)
                x = rows["severity"].to_numpy(float)
                ax.fill_between(
                    x,
                    rows["low"].to_numpy(float),
                    rows["high"].to_numpy(float),
                    color=color,
                    alpha=0.2,
                    linewidth=0,
                    label="_nolegend_",
                )
                ax.plot(
                    x,
                    rows["mean"].to_numpy(float),
                    color=color,
                    marker=styles.marker(method),
                    label=method,
                )
            severities = np.sort(cells["severity"].unique())
            set_severity_scale(ax, severities)
            if len(severities) <= 6:
                ax.set_xticks(severities, [f"{s:g}" for s in severities])
                ax.minorticks_off()
            if aligned:
                if i < ncols:
                    ax.set_title(family)
                if i % ncols == 0:
                    ax.set_ylabel(wrap_label(f"{dataset} / {model}", 20), fontweight="bold")
            else:
                ax.set_title(_panel_title((dataset, model), family, width=30))
            if _is_bottom(i, n, ncols):
                ax.set_xlabel("severity" if aligned else f"{family} severity")
        fig.supylabel(
            f"invalidation rate ({_direction(INVALIDATION)})",
            fontsize=mpl.rcParams["axes.labelsize"],
        )
        _method_legend(fig, styles, methods)
    return fig


def set_severity_scale(ax: Axes, severities: np.ndarray) -> str:
    """A logarithmic severity axis where the severities span more than a decade.

    With a severity of 0 (no shift) among them the axis is symmetric-logarithmic, linear up to
    the smallest positive severity, so 0 keeps its place. Returns the scale set.
    """
    positive = severities[severities > 0]
    if len(positive) < 2 or positive.max() / positive.min() <= 10:
        return "linear"
    if (severities <= 0).any():
        ax.set_xscale("symlog", linthresh=float(positive.min()))
        return "symlog"
    ax.set_xscale("log")
    return "log"


# -- 3. cost against invalidation -----------------------------------------------------------------


def pareto_front(points: Sequence[Sequence[float]] | np.ndarray) -> list[int]:
    """Indices of the non-dominated points, every coordinate to be minimised.

    A point is dominated when another is no larger in every coordinate and smaller in one;
    equal points do not dominate each other (all of them are on the front). Points with a
    missing (NaN) coordinate are never on the front and dominate nothing.

    Parameters
    ----------
    points : array-like of shape (n, d)
        The points.

    Returns
    -------
    list of int
        The indices of the front, ascending.
    """
    array = np.asarray(points, dtype=float)
    if array.size == 0:
        return []
    array = array.reshape(len(array), -1)
    valid = ~np.isnan(array).any(axis=1)
    front = []
    for i in np.flatnonzero(valid):
        others = array[valid]
        no_worse = (others <= array[i]).all(axis=1)
        better = (others < array[i]).any(axis=1)
        if not (no_worse & better).any():
            front.append(int(i))
    return front


def mean_over_shifts(
    results: pd.DataFrame, metric: str = INVALIDATION, shifts: Iterable[str] | None = None
) -> pd.DataFrame:
    """An update metric averaged over shifts, summarised over seeds like :func:`summarise`.

    Within a seed the metric is averaged over the updated models of each shift, then over the
    shifts (each shift weighs the same); the mean and 95 % interval over seeds follow, by
    :func:`summarise`.

    Parameters
    ----------
    results : pandas.DataFrame
        The results frame.
    metric : str
        The update metric.
    shifts : iterable of str, optional
        Only these shift labels (default: all).

    Returns
    -------
    pandas.DataFrame
        :func:`summarise`'s columns, ``shift_label`` being ``"mean over shifts"``.
    """
    ok = results[
        (results["status"] == "ok")
        & (results["metric"] == metric)
        & results["shift_label"].notna()
        & results["value"].notna()
    ]
    if shifts is not None:
        ok = ok[ok["shift_label"].isin(list(shifts))]
    keys = [*PANEL, "method_label", "shift_label", "metric", "seed"]
    per_shift = ok.groupby(keys, sort=True)["value"].mean().reset_index()
    # each shift becomes one "draw" of a single pseudo shift: summarise then averages the shifts
    # within a seed and summarises the seeds
    per_shift = per_shift.assign(shift_label=MEAN_OVER_SHIFTS, status="ok")
    return summarise(per_shift)


def cost_vs_invalidation(
    results: pd.DataFrame,
    styles: MethodStyles | None = None,
    *,
    summary: pd.DataFrame | None = None,
    shifts: Iterable[str] | None = None,
) -> Figure | None:
    """Each method at (mean cost-l1, mean invalidation rate over shifts), with the Pareto front.

    Whiskers give the 95 % intervals on both axes. The front (cost and invalidation to be
    minimised, as the metric registry says) joins its points with a dashed line and rings them.
    Where plausibility-lof was measured, it sets the marker size (larger is more plausible).
    One panel per dataset x model.

    Parameters
    ----------
    results : pandas.DataFrame
        The results frame.
    styles : MethodStyles, optional
        The report's method styles (default: built from ``results``).
    summary : pandas.DataFrame, optional
        ``summarise(results)`` when already computed (for cost and plausibility).
    shifts : iterable of str, optional
        The shift labels to average the invalidation rate over (default: all).

    Returns
    -------
    matplotlib.figure.Figure or None
        None when no method has both a cost and an invalidation rate.
    """
    styles = _styles(results, styles)
    summary = _summary(results, summary)
    static = summary[summary["shift_label"].isna()]
    cost = static[static["metric"] == COST].set_index([*PANEL, "method_label"])
    lof = static[static["metric"] == PLAUSIBILITY].set_index([*PANEL, "method_label"])["mean"]
    inv = mean_over_shifts(results, INVALIDATION, shifts).set_index([*PANEL, "method_label"])
    columns = ["mean", "low", "high"]
    points = cost[columns].add_suffix("_x").join(inv[columns].add_suffix("_y"), how="inner")
    points = points.join(lof.rename("lof"), how="left")
    points = points[points["mean_x"].notna() & points["mean_y"].notna()].reset_index()
    if points.empty:
        return None
    points = points.astype({"method_label": str})
    has_lof = bool(points["lof"].notna().any())
    methods = styles.order(points["method_label"])
    panels = _panels(points)
    ncols = _columns(len(panels))
    nrows = math.ceil(len(panels) / ncols)
    width = TWO_COLUMN if ncols > 1 else ONE_COLUMN
    height = nrows * 2.0 + 0.5 + 0.15 * math.ceil(len(methods) / 3) + (0.25 if has_lof else 0)
    sign_x = -1.0 if _higher(COST) else 1.0
    sign_y = -1.0 if _higher(INVALIDATION) else 1.0

    def size(value: float) -> float:
        return 5.0 if math.isnan(value) else 3.0 + 6.0 * float(np.clip(value, 0, 1))

    with paper_style():
        fig = Figure(figsize=(width, height), layout="constrained")
        axes = _grid(fig, len(panels), ncols)
        for i, (ax, panel) in enumerate(zip(axes, panels, strict=True)):
            cells = _in_panel(points, panel).reset_index(drop=True)
            front = pareto_front(
                np.c_[sign_x * cells["mean_x"].to_numpy(float), sign_y * cells["mean_y"]]
            )
            if front:
                ordered = cells.loc[front].sort_values("mean_x")
                ax.plot(
                    ordered["mean_x"],
                    ordered["mean_y"],
                    linestyle="--",
                    linewidth=0.8,
                    color="0.35",
                    zorder=1,
                    label="_pareto",
                )
            for k, cell in cells.iterrows():
                method = cell["method_label"]
                color = styles.color(method)
                mean = np.array([cell["mean_x"], cell["mean_y"]], dtype=float)
                xerr = _errors(mean[:1], np.array([cell["low_x"]]), np.array([cell["high_x"]]))
                yerr = _errors(mean[1:], np.array([cell["low_y"]]), np.array([cell["high_y"]]))
                ax.errorbar(
                    mean[:1],
                    mean[1:],
                    xerr=xerr,
                    yerr=yerr,
                    fmt="none",
                    ecolor=color,
                    elinewidth=0.7,
                    zorder=2,
                    label="_nolegend_",
                )
                markersize = size(float(cell["lof"]))
                ax.plot(
                    mean[:1],
                    mean[1:],
                    linestyle="none",
                    marker=styles.marker(method),
                    markersize=markersize,
                    markeredgecolor="white",
                    markeredgewidth=0.4,
                    color=color,
                    zorder=3,
                    label=method,
                )
                if k in front:
                    ax.plot(
                        mean[:1],
                        mean[1:],
                        linestyle="none",
                        marker="o",
                        markersize=markersize + 4,
                        markerfacecolor="none",
                        markeredgecolor="0.2",
                        markeredgewidth=0.6,
                        zorder=3,
                        label="_pareto",
                    )
            ax.set_title(_panel_title(panel))
            ax.margins(0.12)
            ax.set_xlabel(f"{COST} ({_direction(COST)})")
            if i % ncols == 0:
                ax.set_ylabel(
                    f"invalidation rate, {MEAN_OVER_SHIFTS}\n({_direction(INVALIDATION)})"
                )
        front_handle = Line2D(
            [],
            [],
            linestyle="--",
            linewidth=0.8,
            color="0.35",
            marker="o",
            markerfacecolor="none",
            markeredgecolor="0.2",
            label="Pareto front",
        )
        _method_legend(fig, styles, methods, extra=[front_handle])
        if has_lof:
            sizes = [
                Line2D(
                    [],
                    [],
                    linestyle="none",
                    marker="o",
                    color="0.5",
                    markersize=size(v),
                    label=f"{v:g}",
                )
                for v in (0.0, 0.5, 1.0)
            ]
            fig.legend(
                handles=sizes,
                loc="outside upper center",
                ncols=len(sizes),
                title=f"marker size: {PLAUSIBILITY} ({_direction(PLAUSIBILITY)})",
            )
    return fig


# -- 4. heat map ----------------------------------------------------------------------------------


def invalidation_heatmap(
    results: pd.DataFrame,
    styles: MethodStyles | None = None,
    *,
    summary: pd.DataFrame | None = None,
) -> Figure | None:
    """Method x shift heat map of the mean invalidation rate (annotated, 0..1 colour scale).

    One panel per dataset x model with the methods and shifts that have rows there; a cell with
    no ok value is grey and reads "n/a". The colour map is sequential and colour-blind safe.

    Parameters
    ----------
    results : pandas.DataFrame
        The results frame.
    styles : MethodStyles, optional
        The report's method styles (sets the order of the rows; default: from ``results``).
    summary : pandas.DataFrame, optional
        ``summarise(results)`` when already computed.

    Returns
    -------
    matplotlib.figure.Figure or None
        None when no ok invalidation rate exists.
    """
    styles = _styles(results, styles)
    inv = _update_means(_summary(results, summary))
    if inv.empty:
        return None
    order = list(_shift_order(results)["shift_label"])
    shifted = results[results["shift_label"].notna() & results["method_label"].notna()]
    panels = _panels(inv)
    grids = []
    for panel in panels:
        rows = _in_panel(shifted, panel)
        methods = styles.order(rows["method_label"].astype(str))
        labels = [wrap_label(m, 28) for m in methods]
        present = set(rows["shift_label"].astype(str))
        columns = [s for s in order if s in present]
        cells = _in_panel(inv, panel).set_index(["method_label", "shift_label"])["mean"]
        matrix = np.full((len(methods), len(columns)), np.nan)
        for (method, shift), value in cells.items():
            if method in methods and shift in columns:
                matrix[methods.index(method), columns.index(shift)] = value
        grids.append((labels, columns, matrix))
    widest = max(len(g[1]) for g in grids)
    tallest = max(sum(max(0.22, 0.12 * (1 + m.count("\n"))) for m in g[0]) for g in grids)
    label_width = max(len(line) for g in grids for m in g[0] for line in m.split("\n"))
    panel_width = 0.3 + label_width * 0.055 + 0.45 * widest
    ncols = max(1, min(len(panels), MAX_COLUMNS, int((TWO_COLUMN - 0.8) // panel_width)))
    nrows = math.ceil(len(panels) / ncols)
    width = min(TWO_COLUMN, max(ONE_COLUMN, ncols * panel_width + 0.8))
    same_methods = len({tuple(g[0]) for g in grids}) == 1
    same_shifts = len({tuple(g[1]) for g in grids}) == 1
    column_labels = [wrap_label(s, 36) for s in order]  # one line mostly: rotated lines stay apart
    longest = max(len(line) for label in column_labels for line in label.split("\n"))
    label_height = 0.15 + longest * 0.055 * 0.72  # a rotated label's height
    height = nrows * (0.3 + tallest) + (1 if same_shifts else nrows) * label_height + 0.1
    cmap = mpl.colormaps[SEQUENTIAL_CMAP].with_extremes(bad=MISSING_COLOR)
    norm = Normalize(0.0, 1.0)
    fontsize = SMALL_FONT_SIZE if widest <= 8 else SMALL_FONT_SIZE - 1
    with paper_style():
        fig = Figure(figsize=(width, height), layout="constrained")
        axes = _grid(fig, len(panels), ncols)
        image = None
        for i, (ax, panel, (methods, columns, matrix)) in enumerate(
            zip(axes, panels, grids, strict=True)
        ):
            image = ax.imshow(np.ma.masked_invalid(matrix), cmap=cmap, norm=norm, aspect="auto")
            for (r, c), value in np.ndenumerate(matrix):
                if math.isnan(value):
                    text, color = "n/a", "0.4"
                else:
                    red, green, blue, _ = cmap(norm(value))
                    light = 0.299 * red + 0.587 * green + 0.114 * blue > 0.5
                    text, color = f"{value:.2f}", "black" if light else "white"
                ax.text(c, r, text, ha="center", va="center", color=color, fontsize=fontsize)
            ax.set_xticks(
                range(len(columns)),
                [column_labels[order.index(s)] for s in columns],
                rotation=45,
                ha="right",
                rotation_mode="anchor",
            )
            if same_shifts and not _is_bottom(i, len(panels), ncols):
                ax.tick_params(labelbottom=False)
            ax.set_yticks(range(len(methods)), methods)
            if same_methods and i % ncols:
                ax.tick_params(labelleft=False)
            ax.tick_params(length=0)
            ax.grid(visible=False)
            for spine in ax.spines.values():
                spine.set_visible(False)
            ax.set_title(_panel_title(panel))
        fig.colorbar(
            image,
            ax=axes,
            label=f"invalidation rate ({_direction(INVALIDATION)})",
            shrink=min(1.0, 0.5 + 0.4 * tallest),
            aspect=25,
        )
    return fig


# -- saving ---------------------------------------------------------------------------------------

FIGURES: dict[str, Callable[..., Figure | None]] = {
    "invalidation-by-shift": invalidation_by_shift,
    "invalidation-vs-severity": invalidation_vs_severity,
    "cost-vs-invalidation": cost_vs_invalidation,
    "invalidation-heatmap": invalidation_heatmap,
}
"""The figures of a report, by file name."""


def save_figure(
    fig: Figure, out_dir: str | Path, name: str, formats: Sequence[str] = ("pdf", "png")
) -> list[Path]:
    """Save ``fig`` as ``out_dir/name.<format>`` for each format (PNG at 200 dpi, tight box).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    out_dir : str or Path
        The folder (created if missing).
    name : str
        The file name without suffix.
    formats : sequence of str
        File formats matplotlib can write, e.g. ``("pdf", "png")``.

    Returns
    -------
    list of Path
        The files written, in the order of ``formats``.
    """
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    with paper_style():
        for fmt in formats:
            suffix = fmt.lower().lstrip(".")
            path = folder / f"{name}.{suffix}"
            fig.savefig(path, format=suffix, dpi=PNG_DPI, bbox_inches="tight")
            paths.append(path)
    return paths


def write_figures(
    results: pd.DataFrame,
    out_dir: str | Path,
    formats: Sequence[str] = ("pdf", "png"),
    styles: MethodStyles | None = None,
) -> dict[str, list[Path]]:
    """Make every figure of :data:`FIGURES` that has something to show, and save it.

    The results are summarised once and all figures share one :class:`MethodStyles`, built from
    every method label in ``results`` unless given.

    Parameters
    ----------
    results : pandas.DataFrame
        The results frame.
    out_dir : str or Path
        The folder to write to.
    formats : sequence of str
        File formats of each figure.
    styles : MethodStyles, optional
        The method styles (default: built from ``results``).

    Returns
    -------
    dict
        Figure name (e.g. ``"invalidation-by-shift"``) -> the paths written; figures with
        nothing to show are left out.
    """
    styles = _styles(results, styles)
    summary = _summary(results, None)
    written = {}
    for name, make in FIGURES.items():
        fig = make(results, styles, summary=summary)
        if fig is not None:
            written[name] = save_figure(fig, out_dir, name, formats)
    return written
