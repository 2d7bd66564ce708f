"""Figures for papers, drawn with seaborn: invalidation per shift, against severity and cost.

Every figure is a function of the report's :class:`~recourse_bench.reports.data.ReportData` that
returns a :class:`matplotlib.figure.Figure`, or None when the results hold nothing it could draw.
The panels (one per dataset x model) are a seaborn ``FacetGrid``; the marks are seaborn's
(``pointplot``, ``lineplot``, ``scatterplot``, ``heatmap``) on the per-seed values, with the
report's own 95 % percentile-bootstrap interval as the error bar, so a figure shows exactly the
means and intervals of the tables. Rows whose status is not ``ok`` count for nothing; a cell
without any ok value is left empty ("n/a" in the heat map). Each method keeps its colour and
marker (:class:`~recourse_bench.reports.style.MethodStyles`) in every figure; the paper style
(:func:`~recourse_bench.reports.style.paper_style`) sets sizes and fonts for a two-column paper.

:data:`FIGURES` is the registry of the figures (name, function, caption, metrics drawn);
:func:`write_figures` makes each and saves it as PDF and PNG (:func:`save_figure`), then closes it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .data import ReportData, as_report_data, bootstrap_interval, summarise_seeds
from .ranks import Ranking
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

INVALIDATION = "invalidation-rate"
COST = "cost-l1"
PLAUSIBILITY = "plausibility-lof"
PANEL = ["dataset_label", "model_label"]
MEAN_OVER_SHIFTS = "mean over shifts"
MAX_COLUMNS = 3
PNG_DPI = 200


# -- the scaffolding every figure shares -----------------------------------------------------------


def _interval(values: Any) -> tuple[float, float]:
    """The error bar of a mark: the report's bootstrap interval of the per-seed values."""
    return bootstrap_interval(np.asarray(values, dtype=float))


def _panel_title(dataset: str, model: str, extra: str | None = None, width: int = 34) -> str:
    title = wrap_label(f"{dataset} / {model}", width)
    return title if extra is None else f"{title}\n{wrap_label(extra, width)}"


def _with_panels(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a ``panel`` column (the dataset x model title) and string labels."""
    frame = frame.astype({"dataset_label": str, "model_label": str, "method_label": str})
    titles = [_panel_title(d, m) for d, m in frame[PANEL].itertuples(index=False)]
    return frame.assign(panel=titles)


def _panel_order(frame: pd.DataFrame) -> list[str]:
    pairs = sorted({(d, m) for d, m in frame[PANEL].itertuples(index=False)})
    return [_panel_title(d, m) for d, m in pairs]


def _columns(n: int, cap: int = MAX_COLUMNS) -> int:
    """Columns for ``n`` panels: at most ``cap``, rows filled as evenly as possible."""
    return max(1, math.ceil(n / math.ceil(n / cap))) if n else 1


def _facets(
    frame: pd.DataFrame,
    panels: list[str],
    panel_height: float,
    *,
    sharex: bool = False,
    sharey: bool = False,
    width: float | None = None,
) -> sns.FacetGrid:
    """One panel per title in ``panels``, in rows of at most three, a paper's width wide."""
    ncols = _columns(len(panels))
    width = width or (TWO_COLUMN if ncols > 1 else ONE_COLUMN)
    return _grid_of(frame, panels, ncols, panel_height, width, sharex=sharex, sharey=sharey)


def _grid_of(
    frame: pd.DataFrame,
    panels: list[str],
    ncols: int,
    panel_height: float,
    width: float,
    *,
    sharex: bool = False,
    sharey: bool = False,
) -> sns.FacetGrid:
    """A FacetGrid of ``panels`` in rows of ``ncols``; its layout is left to the figure's engine.

    FacetGrid fits a tight layout when it is built (which can complain about labels it cannot
    fit yet) and again after each ``map``; the figure's constrained layout places everything
    in the end, so the grid's own later fits are switched off.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Tight layout not applied", UserWarning)
        grid = sns.FacetGrid(
            frame,
            col="panel",
            col_order=panels,
            col_wrap=ncols if len(panels) > ncols else None,
            height=panel_height,
            aspect=width / ncols / panel_height,
            sharex=sharex,
            sharey=sharey,
            despine=False,
        )
    grid.tight_layout = lambda *args, **kwargs: grid  # type: ignore[method-assign]
    grid.set_titles("{col_name}")
    return grid


def _finish(
    grid: sns.FacetGrid,
    styles: MethodStyles,
    methods: list[str],
    extra: Sequence[Line2D] = (),
    more_height: float = 0.0,
) -> Figure:
    """Constrained layout, and the methods' legend below the panels (outside the data).

    The figure grows by the legend's height (and ``more_height``), so the panels keep theirs.
    """
    fig = grid.figure
    fig.set_figheight(fig.get_figheight() + 0.5 + 0.15 * math.ceil(len(methods) / 3) + more_height)
    fig.set_layout_engine("constrained")
    handles = [*styles.handles(methods), *extra]
    labels = [h.get_label() for h in handles]
    fig.legend(
        handles=handles,
        labels=labels,
        loc="outside lower center",
        ncols=_legend_columns(labels, fig.get_figwidth()),
    )
    return fig


def _legend_columns(labels: Sequence[str], width: float) -> int:
    """How many legend columns of these labels fit in ``width`` inches."""
    if not labels:
        return 1
    longest = max(len(line) for label in labels for line in label.split("\n"))
    per_entry = 0.45 + longest * SMALL_FONT_SIZE * 0.55 / 72
    return max(1, min(len(labels), int(width // per_entry)))


def _name_marks(ax: Axes, styles: MethodStyles, methods: Iterable[str]) -> None:
    """Label each line seaborn drew with a marker by its method (its colour and marker)."""
    by_look = {(styles.color(m), styles.marker(m)): m for m in methods}
    for line in ax.get_lines():
        look = (mpl.colors.to_hex(line.get_color()), line.get_marker())
        line.set_label(by_look.get(look, "_mark"))


def _update_values(data: ReportData, metric: str = INVALIDATION) -> pd.DataFrame:
    """The per-seed values of an update metric under the shifts, with their panel titles."""
    rows = data.per_seed
    rows = rows[(rows["metric"] == metric) & rows["shift_label"].notna() & rows["value"].notna()]
    return _with_panels(rows.astype({"shift_label": str}))


def _direction(data: ReportData, metric: str) -> str:
    return data.info(metric).direction


# -- 1. invalidation per shift ---------------------------------------------------------------------


def invalidation_by_shift(data: ReportData | pd.DataFrame) -> Figure | None:
    """Invalidation rate of each method under each shift: points with 95 % interval whiskers.

    Shifts are rows (their labels wrapped), methods are dodged within a row; one panel per
    dataset x model, at most three panels a row, sharing both axes.
    """
    data = as_report_data(data)
    values = _update_values(data)
    if values.empty:
        return None
    styles = data.styles
    shifts = [s for s in data.shift_order["shift_label"] if s in set(values["shift_label"])]
    methods = styles.order(values["method_label"])
    panels = _panel_order(values)
    band = max(0.26, 0.075 * len(methods))
    panel_height = 0.45 + len(shifts) * band
    with paper_style():
        grid = _facets(values, panels, panel_height, sharex=True, sharey=True)
        grid.map_dataframe(
            sns.pointplot,
            x="value",
            y="shift_label",
            order=shifts,
            hue="method_label",
            hue_order=methods,
            palette=styles.colors,
            markers=[styles.marker(m) for m in methods],
            linestyle="none",
            dodge=0.8 - 0.8 / len(methods) if len(methods) > 1 else False,
            errorbar=_interval,
            err_kws={"linewidth": 0.8},
            capsize=0.06,
            markersize=4,
            legend=False,
        )
        for ax in grid.axes.flat:
            _name_marks(ax, styles, methods)
            for k in range(1, len(shifts)):
                ax.axhline(k - 0.5, color="#bdbdbd", linewidth=0.4)
            ax.grid(axis="y", visible=False)
            ax.set_ylabel("")
        axes = grid.axes.flat[0]
        axes.set_yticks(range(len(shifts)), [wrap_label(s, 22) for s in shifts])
        summary = data.summary
        drawn = summary[(summary["metric"] == INVALIDATION) & summary["shift_label"].notna()]
        upper = float(np.nanmax(drawn[["mean", "high"]].to_numpy(dtype=float)))
        upper = min(1.0, upper) if upper > 0 else 0.05
        axes.set_xlim(-0.03 * upper, upper * 1.04)
        grid.set_axis_labels(f"invalidation rate ({_direction(data, INVALIDATION)})", "")
        return _finish(grid, styles, methods)


# -- 2. invalidation against severity -------------------------------------------------------------


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


def invalidation_vs_severity(data: ReportData | pd.DataFrame) -> Figure | None:
    """Invalidation rate against severity: one line (with 95 % band) per method.

    One panel per swept shift family and dataset x model; only families with more than one
    severity in a panel are drawn. Panels share the invalidation axis; each has its own
    severity axis (logarithmic where the severities span more than a decade).
    """
    data = as_report_data(data)
    values = _update_values(data).merge(
        data.shift_order, on="shift_label", how="inner", suffixes=("", "_order")
    )
    values = values[values["severity"].notna()]
    counts = values.groupby([*PANEL, "shift"])["severity"].nunique()
    swept = sorted(key for key, count in counts.items() if count > 1)
    if not swept:
        return None
    styles = data.styles
    keep = pd.MultiIndex.from_frame(values[[*PANEL, "shift"]]).isin(swept)
    values = values[keep]
    values = values.assign(
        panel=[
            _panel_title(d, m, f) for d, m, f in values[[*PANEL, "shift"]].itertuples(index=False)
        ]
    )
    panels = [_panel_title(d, m, f) for d, m, f in swept]
    methods = styles.order(values["method_label"])
    with paper_style():
        grid = _facets(values, panels, 1.55, sharey=True)
        grid.map_dataframe(
            sns.lineplot,
            x="severity",
            y="value",
            hue="method_label",
            hue_order=methods,
            palette=styles.colors,
            style="method_label",
            style_order=methods,
            markers={m: styles.marker(m) for m in methods},
            dashes=False,
            errorbar=_interval,
            err_kws={"alpha": 0.2, "linewidth": 0},
            legend=False,
        )
        ncols = _columns(len(swept))
        for i, (ax, (dataset, model, family)) in enumerate(zip(grid.axes.flat, swept, strict=True)):
            _name_marks(ax, styles, methods)
            panel = values[values["panel"] == _panel_title(dataset, model, family)]
            severities = np.sort(panel["severity"].unique())
            set_severity_scale(ax, severities)
            if len(severities) <= 6:
                ax.set_xticks(severities, [f"{s:g}" for s in severities])
                ax.minorticks_off()
            ax.set_xlabel(f"{family} severity" if i + ncols >= len(swept) else "")
            ax.set_ylabel("")
        grid.figure.supylabel(
            f"invalidation rate ({_direction(data, INVALIDATION)})",
            fontsize=mpl.rcParams["axes.labelsize"],
        )
        return _finish(grid, styles, methods)


# -- 3. cost against invalidation -----------------------------------------------------------------


def pareto_front(points: Sequence[Sequence[float]] | np.ndarray) -> list[int]:
    """Indices of the non-dominated points, every coordinate to be minimised.

    A point is dominated when another is no larger in every coordinate and smaller in one;
    equal points do not dominate each other (all of them are on the front). Points with a
    missing (NaN) coordinate are never on the front and dominate nothing.
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
    data: ReportData, metric: str = INVALIDATION, shifts: Iterable[str] | None = None
) -> pd.DataFrame:
    """An update metric averaged over shifts within each seed, summarised over seeds.

    Within a seed the metric is averaged over the updated models of each shift (the report's
    per-seed values), then over the shifts (each shift weighs the same); the mean and 95 %
    interval over seeds follow. ``shift_label`` of the result is ``"mean over shifts"``.
    """
    rows = data.per_seed
    rows = rows[(rows["metric"] == metric) & rows["shift_label"].notna() & rows["value"].notna()]
    if shifts is not None:
        rows = rows[rows["shift_label"].isin(list(shifts))]
    keys = [*PANEL, "method_label", "metric", "seed"]
    per_seed = rows.groupby(keys, sort=True)["value"].mean().reset_index()
    return summarise_seeds(per_seed.assign(shift_label=MEAN_OVER_SHIFTS))


def _cost_points(data: ReportData, shifts: Iterable[str] | None) -> pd.DataFrame:
    """Per dataset x model x method: mean cost (x), invalidation over shifts (y), LOF."""
    static = data.summary[data.summary["shift_label"].isna()]
    index = [*PANEL, "method_label"]
    cost = static[static["metric"] == COST].set_index(index)[["mean", "low", "high"]]
    lof = static[static["metric"] == PLAUSIBILITY].set_index(index)["mean"].rename("lof")
    inv = mean_over_shifts(data, INVALIDATION, shifts).set_index(index)[["mean", "low", "high"]]
    points = cost.add_suffix("_x").join(inv.add_suffix("_y"), how="inner").join(lof, how="left")
    points = points[points["mean_x"].notna() & points["mean_y"].notna()].reset_index()
    return _with_panels(points) if not points.empty else points


def _marker_size(lof: float) -> float:
    """Marker area in points^2: larger for more plausible recourses (LOF inlier share)."""
    width = 5.0 if math.isnan(lof) else 3.0 + 6.0 * float(np.clip(lof, 0, 1))
    return width**2


def cost_vs_invalidation(
    data: ReportData | pd.DataFrame, shifts: Iterable[str] | None = None
) -> Figure | None:
    """Each method at (mean cost-l1, mean invalidation rate over shifts), with the Pareto front.

    Whiskers give the 95 % intervals on both axes. The front (cost and invalidation to be
    minimised, as the metrics' directions say) joins its points with a dashed line and rings
    them. Where plausibility-lof was measured, it sets the marker size (larger is more
    plausible). One panel per dataset x model.
    """
    data = as_report_data(data)
    points = _cost_points(data, shifts)
    if points.empty:
        return None
    styles = data.styles
    methods = styles.order(points["method_label"])
    has_lof = bool(points["lof"].notna().any())
    sign = [-1.0 if data.higher_is_better(m) else 1.0 for m in (COST, INVALIDATION)]
    with paper_style():
        grid = _facets(points, _panel_order(points), 2.0)
        for ax, panel in zip(grid.axes.flat, grid.col_names, strict=True):
            cells = points[points["panel"] == panel].reset_index(drop=True)
            _draw_cost_panel(ax, cells, styles, sign)
            ax.margins(0.12)
        grid.set_axis_labels(
            f"{COST} ({_direction(data, COST)})",
            f"invalidation rate, {MEAN_OVER_SHIFTS}\n({_direction(data, INVALIDATION)})",
        )
        front_key = Line2D(
            [], [], linestyle="--", linewidth=0.8, color="0.35", marker="o",
            markerfacecolor="none", markeredgecolor="0.2", label="Pareto front",
        )  # fmt: skip
        fig = _finish(grid, styles, methods, extra=[front_key], more_height=0.25 * has_lof)
        if has_lof:
            sizes = [
                Line2D([], [], linestyle="none", marker="o", color="0.5",
                       markersize=math.sqrt(_marker_size(v)), label=f"{v:g}")
                for v in (0.0, 0.5, 1.0)
            ]  # fmt: skip
            fig.legend(
                handles=sizes,
                loc="outside upper center",
                ncols=len(sizes),
                title=f"marker size: {PLAUSIBILITY} ({_direction(data, PLAUSIBILITY)})",
            )
        return fig


def _draw_cost_panel(
    ax: Axes, cells: pd.DataFrame, styles: MethodStyles, sign: list[float]
) -> None:
    """One panel: whiskers, each method's point (seaborn), the front's line and rings."""
    xy = np.c_[sign[0] * cells["mean_x"].to_numpy(float), sign[1] * cells["mean_y"].to_numpy(float)]
    front = pareto_front(xy)
    if front:
        ordered = cells.loc[front].sort_values("mean_x")
        ax.plot(ordered["mean_x"], ordered["mean_y"], linestyle="--", linewidth=0.8,
                color="0.35", zorder=1, label="_pareto")  # fmt: skip
    for k, cell in cells.iterrows():
        method = cell["method_label"]
        x, y = float(cell["mean_x"]), float(cell["mean_y"])
        ax.errorbar(
            [x], [y],
            xerr=[[max(x - cell["low_x"], 0)], [max(cell["high_x"] - x, 0)]],
            yerr=[[max(y - cell["low_y"], 0)], [max(cell["high_y"] - y, 0)]],
            fmt="none", ecolor=styles.color(method), elinewidth=0.7, zorder=2, label="_nolegend_",
        )  # fmt: skip
        size = _marker_size(float(cell["lof"]))
        sns.scatterplot(
            x=[x], y=[y], ax=ax, color=styles.color(method), marker=styles.marker(method),
            s=size, edgecolor="white", linewidth=0.4, zorder=3, legend=False,
        )  # fmt: skip
        ax.collections[-1].set_label(method)
        if k in front:
            ax.scatter([x], [y], s=(math.sqrt(size) + 4) ** 2, facecolors="none",
                       edgecolors="0.2", linewidths=0.6, zorder=3, label="_pareto")  # fmt: skip


# -- 4. heat map ----------------------------------------------------------------------------------


def invalidation_heatmap(data: ReportData | pd.DataFrame) -> Figure | None:
    """Method x shift heat map of the mean invalidation rate (annotated, 0..1 colour scale).

    One panel per dataset x model with the methods and shifts that have rows there; a cell with
    no ok value is grey and reads "n/a". The colour map is sequential and colour-blind safe.
    """
    data = as_report_data(data)
    summary = data.summary
    means = summary[
        (summary["metric"] == INVALIDATION)
        & summary["shift_label"].notna()
        & summary["mean"].notna()
    ]
    if means.empty:
        return None
    styles = data.styles
    order = list(data.shift_order["shift_label"])
    shifted = data.results[
        data.results["shift_label"].notna() & data.results["method_label"].notna()
    ]
    matrices = _heat_matrices(_with_panels(shifted), _with_panels(means), styles, order)
    panels = list(matrices)
    widest = max(m.shape[1] for m in matrices.values())
    tallest = max(
        sum(max(0.22, 0.12 * (1 + str(r).count("\n"))) for r in m.index) for m in matrices.values()
    )
    label_width = max(
        len(line) for m in matrices.values() for r in m.index for line in str(r).split("\n")
    )
    panel_width = 0.3 + label_width * 0.055 + 0.45 * widest
    ncols = max(1, min(len(panels), MAX_COLUMNS, int((TWO_COLUMN - 0.8) // panel_width)))
    width = min(TWO_COLUMN, max(ONE_COLUMN, ncols * panel_width + 0.8))
    same_methods = len({tuple(m.index) for m in matrices.values()}) == 1
    same_shifts = len({tuple(m.columns) for m in matrices.values()}) == 1
    longest = max(len(line) for s in order for line in wrap_label(s, 36).split("\n"))
    label_height = 0.15 + longest * 0.055 * 0.72  # a rotated shift label's height
    nrows = math.ceil(len(panels) / ncols)
    height = nrows * (0.55 + tallest) + (1 if same_shifts else nrows) * label_height + 0.1
    panel_height = height / nrows
    cmap = mpl.colormaps[SEQUENTIAL_CMAP]
    frame = pd.DataFrame({"panel": panels})
    with paper_style():
        grid = _grid_of(frame, panels, ncols, panel_height, width)
        fontsize = SMALL_FONT_SIZE if widest <= 8 else SMALL_FONT_SIZE - 1
        for i, (ax, panel) in enumerate(zip(grid.axes.flat, panels, strict=True)):
            _draw_heat_panel(ax, matrices[panel], cmap, fontsize)
            if same_shifts and i + ncols < len(panels):  # shift labels under the last row only
                ax.tick_params(labelbottom=False)
            if same_methods and i % ncols:  # method labels beside the first column only
                ax.tick_params(labelleft=False)
        fig = grid.figure
        fig.set_layout_engine("constrained")
        fig.colorbar(
            ScalarMappable(Normalize(0.0, 1.0), cmap),
            ax=list(grid.axes.flat),
            label=f"invalidation rate ({_direction(data, INVALIDATION)})",
            shrink=min(1.0, 0.5 + 0.4 * tallest),
            aspect=25,
        )
    return fig


def _heat_matrices(
    shifted: pd.DataFrame, means: pd.DataFrame, styles: MethodStyles, order: list[str]
) -> dict[str, pd.DataFrame]:
    """Per panel, the methods x shifts frame of mean invalidation (NaN: no ok value)."""
    matrices = {}
    for panel in _panel_order(means):
        rows = shifted[shifted["panel"] == panel]
        methods = styles.order(rows["method_label"])
        present = set(rows["shift_label"].astype(str))
        columns = [s for s in order if s in present]
        cells = means[means["panel"] == panel].pivot_table(
            index="method_label", columns="shift_label", values="mean", aggfunc="first"
        )
        matrix = cells.reindex(index=methods, columns=columns)
        matrix.index = [wrap_label(m, 28) for m in methods]
        matrices[panel] = matrix
    return matrices


def _draw_heat_panel(ax: Axes, matrix: pd.DataFrame, cmap: Any, fontsize: float) -> None:
    """One panel: the annotated heat map (seaborn), "n/a" on cells without a value."""
    ax.set_facecolor(MISSING_COLOR)
    sns.heatmap(
        matrix.astype(float),
        ax=ax, cmap=cmap, vmin=0.0, vmax=1.0, cbar=False, annot=True, fmt=".2f",
        annot_kws={"fontsize": fontsize}, mask=matrix.isna(), xticklabels=False,
        yticklabels=list(matrix.index),
    )  # fmt: skip
    for (r, c), value in np.ndenumerate(matrix.to_numpy(dtype=float)):
        if math.isnan(value):
            ax.text(c + 0.5, r + 0.5, "n/a", ha="center", va="center", color="0.4",
                    fontsize=fontsize)  # fmt: skip
    ax.set_xticks(
        np.arange(matrix.shape[1]) + 0.5,
        [wrap_label(s, 36) for s in matrix.columns],
        rotation=45,
        ha="right",
        rotation_mode="anchor",
    )
    ax.tick_params(length=0)
    ax.set_xlabel("")
    ax.set_ylabel("")


# -- critical-difference diagram ------------------------------------------------------------------


def critical_difference_diagram(ranking: Ranking, styles: MethodStyles) -> Figure:
    """Demšar's diagram of a :class:`~recourse_bench.reports.ranks.Ranking`.

    The methods stand on the average-rank axis (rank 1, the best, on the left), the better half
    labelled on the left and the rest on the right, each in its colour; a thick bar joins each
    maximal run of methods whose average ranks differ by less than Nemenyi's critical
    difference (drawn above the axis): those are not significantly different.
    """
    names = list(ranking.mean_ranks.index)
    ranks = ranking.mean_ranks.to_numpy(dtype=float)
    k = len(names)
    cliques = ranking.cliques()
    left = (k + 1) // 2
    step, gap = 0.22, 0.14
    bars_depth = gap * (len(cliques) + 1)
    depth = bars_depth + step * max(left, k - left)
    with paper_style():
        width = ONE_COLUMN if k <= 10 else TWO_COLUMN
        fig, ax = plt.subplots(figsize=(width, 0.55 + depth))
        ax.set_xlim(0.5 - 0.35 * k, k + 0.5 + 0.35 * k)
        ax.set_ylim(-depth - 0.05, 0.45)
        ax.axis("off")
        ax.plot([1, k], [0, 0], color="black", linewidth=0.8)
        for tick in range(1, k + 1):
            ax.plot([tick, tick], [0, 0.05], color="black", linewidth=0.8)
            ax.text(tick, 0.08, str(tick), ha="center", va="bottom", fontsize=SMALL_FONT_SIZE)
        cd = ranking.critical_difference
        if math.isfinite(cd):
            ax.plot([1, 1 + cd], [0.32, 0.32], color="black", linewidth=1.0)
            for x in (1, 1 + cd):
                ax.plot([x, x], [0.29, 0.35], color="black", linewidth=1.0)
            ax.text(
                1 + cd / 2,
                0.36,
                f"CD = {cd:.2f}",
                ha="center",
                va="bottom",
                fontsize=SMALL_FONT_SIZE,
            )
        for j, clique in enumerate(cliques):
            lo, hi = ranking.mean_ranks[clique[0]], ranking.mean_ranks[clique[-1]]
            y = -gap * (j + 1)
            ax.plot(
                [lo - 0.03, hi + 0.03], [y, y], color="black", linewidth=2.2, solid_capstyle="round"
            )
        for i, (name, rank) in enumerate(zip(names, ranks, strict=True)):
            on_left = i < left
            row = i if on_left else k - 1 - i
            y = -bars_depth - step * row
            edge = 0.5 - 0.05 * k if on_left else k + 0.5 + 0.05 * k
            color = styles.color(name)
            ax.plot([rank, rank, edge], [0, y, y], color=color, linewidth=0.9)
            label = (
                f"{wrap_label(name, 30)} ({rank:.2f})"
                if on_left
                else f"({rank:.2f}) {wrap_label(name, 30)}"
            )
            ax.text(
                edge + (-0.05 if on_left else 0.05),
                y,
                label,
                color=color,
                ha="right" if on_left else "left",
                va="center",
                fontsize=SMALL_FONT_SIZE,
            )
        ax.set_title(
            f"{ranking.metric}: average rank over {ranking.n_cells} cell(s)",
            fontsize=SMALL_FONT_SIZE,
        )
    return fig


# -- the registry, saving -------------------------------------------------------------------------


@dataclass(frozen=True)
class FigureSpec:
    """A figure of the report: its file name, how to draw it, its caption and what it shows."""

    name: str
    draw: Callable[[ReportData], Figure | None]
    caption: str
    metrics: tuple[str, ...]


FIGURES: dict[str, FigureSpec] = {
    spec.name: spec
    for spec in (
        FigureSpec(
            "invalidation-by-shift",
            invalidation_by_shift,
            "Invalidation rate of each method under each shift (mean over seeds, 95 % bootstrap "
            "interval): how many recourses valid under the base model the updated models reject.",
            (INVALIDATION,),
        ),
        FigureSpec(
            "invalidation-vs-severity",
            invalidation_vs_severity,
            "Invalidation rate against the size of each swept shift, one line per method: how "
            "fast recourse breaks as the shift grows.",
            (INVALIDATION,),
        ),
        FigureSpec(
            "cost-vs-invalidation",
            cost_vs_invalidation,
            "The price of robustness: each method's L1 cost against its invalidation rate "
            "averaged over shifts, with the Pareto front of methods no other method beats on both.",
            (COST, INVALIDATION, PLAUSIBILITY),
        ),
        FigureSpec(
            "invalidation-heatmap",
            invalidation_heatmap,
            "Mean invalidation rate of every method (rows) under every shift (columns), on one "
            "0-1 colour scale.",
            (INVALIDATION,),
        ),
    )
}
"""The figures of a report by file name: add a :class:`FigureSpec` here to add a figure."""


def save_figure(
    fig: Figure, out_dir: str | Path, name: str, formats: Sequence[str] = ("pdf", "png")
) -> list[Path]:
    """Save ``fig`` as ``out_dir/name.<format>`` for each format (PNG at 200 dpi, tight box)."""
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
    data: ReportData | pd.DataFrame,
    out_dir: str | Path,
    formats: Sequence[str] = ("pdf", "png"),
) -> dict[str, list[Path]]:
    """Make every figure of :data:`FIGURES` that has something to show, save it, close it.

    Returns figure name -> the paths written; figures with nothing to show are left out.
    """
    data = as_report_data(data)
    written = {}
    for name, spec in FIGURES.items():
        fig = spec.draw(data)
        if fig is not None:
            written[name] = save_figure(fig, out_dir, name, formats)
            plt.close(fig)
    return written


def write_cd_diagrams(
    found: dict[str, Ranking],
    styles: MethodStyles,
    out_dir: str | Path,
    formats: Sequence[str] = ("pdf", "png"),
) -> dict[str, list[Path]]:
    """Save the critical-difference diagram of every ranking as ``cd-<metric>``; close each."""
    written = {}
    for metric, ranking in found.items():
        fig = critical_difference_diagram(ranking, styles)
        written[metric] = save_figure(fig, out_dir, f"cd-{metric}", formats)
        plt.close(fig)
    return written
