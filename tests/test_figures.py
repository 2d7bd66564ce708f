import itertools

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection, QuadMesh
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.image import imread
from matplotlib.markers import MarkerStyle

from recourse_bench.reports import figures
from recourse_bench.reports.data import ReportData, summarise
from recourse_bench.reports.figures import (
    FIGURES,
    cost_vs_invalidation,
    invalidation_by_shift,
    invalidation_heatmap,
    invalidation_vs_severity,
    pareto_front,
    save_figure,
    set_severity_scale,
    write_figures,
)
from recourse_bench.reports.style import (
    BUILTIN_METHODS,
    COLORBLIND,
    MARKERS,
    MethodStyles,
    paper_style,
    wrap_label,
)
from recourse_bench.store import to_frame

from .results_frames import make_results, row

METHODS = ("wachter", "roar", "genre")
# cost and invalidation centres: wachter and roar are on the Pareto front, genre is dominated
VALUES = {
    (d, m, metric): v
    for d in ("german", "adult")
    for (m, metric), v in {
        ("wachter", "cost-l1"): 0.2,
        ("roar", "cost-l1"): 0.8,
        ("genre", "cost-l1"): 0.9,
        ("wachter", "invalidation-rate"): 0.6,
        ("roar", "invalidation-rate"): 0.1,
        ("genre", "invalidation-rate"): 0.7,
    }.items()
}
ALL_FIGURES = [spec.draw for spec in FIGURES.values()]


def _frame(**kwargs):
    return make_results(VALUES, methods=METHODS, seeds=3, draws=2, **kwargs)


@pytest.fixture(scope="module")
def plain():
    """One unswept shift (retrain-seed)."""
    return _frame()


@pytest.fixture(scope="module")
def sweep():
    """retrain-seed swept over three severities, plus plausibility-lof."""
    frame = _frame(severities=(0.0, 0.1, 0.2))
    lof = frame[frame["metric"] == "coverage"].assign(metric="plausibility-lof")
    return to_frame(pd.concat([frame, lof]).to_dict("records"))


@pytest.fixture(scope="module")
def partial(plain):
    """Failures: adult/genre's invalidation errored; a fourth method was skipped everywhere."""
    frame = plain.copy()
    errored = (
        (frame["dataset_label"] == "adult")
        & (frame["method_label"] == "genre")
        & (frame["metric"] == "invalidation-rate")
    )
    frame.loc[errored, ["status", "value", "reason"]] = ["error", np.nan, "boom"]
    skipped = [
        row(d, "mlp", "trex", seed, None, np.nan, shift="retrain-seed", status="skipped",
            reason="not applicable", n=0)
        for d in ("german", "adult")
        for seed in range(3)
    ]  # fmt: skip
    return to_frame([*frame.to_dict("records"), *skipped])


def _ticks(axis) -> list[str]:
    """The fixed tick labels of an axis (also where they are hidden), unwrapped."""
    formatter = axis.get_major_formatter()
    locations = axis.get_majorticklocs()
    return [formatter(loc, i).replace("\n", "") for i, loc in enumerate(locations)]


def _method_marks(fig: Figure) -> list[tuple[str, tuple[str, str]]]:
    """(method, (colour, marker)) of every mark drawn for a method: lines and scatter points."""
    marks = []
    for ax in fig.axes:
        for line in ax.get_lines():
            if not line.get_label().startswith("_"):
                marks.append((line.get_label(), (to_hex(line.get_color()), line.get_marker())))
        for points in ax.collections:
            if isinstance(points, PathCollection) and not points.get_label().startswith("_"):
                look = (to_hex(points.get_facecolor()[0]), _marker_of(points.get_paths()[0]))
                marks.append((points.get_label(), look))
    return marks


def _marker_of(path) -> str:
    """The matplotlib marker whose path ``path`` is (scatter points keep only the path)."""
    for marker in MARKERS:
        style = MarkerStyle(marker)
        vertices = style.get_path().transformed(style.get_transform()).vertices
        if vertices.shape == path.vertices.shape and np.allclose(vertices, path.vertices):
            return marker
    raise AssertionError("not a marker of the method styles")


def _cells(mesh: QuadMesh, n_rows: int) -> np.ma.MaskedArray:
    """The heat map's cell values as (rows, columns), masked where a cell has no value."""
    values = np.ma.masked_invalid(np.ma.asarray(mesh.get_array(), dtype=float))
    return values.reshape(n_rows, -1)


def _panel(ax) -> tuple[str, str]:
    dataset, model = ax.get_title().split("\n")[0].split(" / ")
    return dataset, model


# -- building ------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", ALL_FIGURES, ids=list(FIGURES))
def test_every_figure_builds_on_a_sweep(sweep, make):
    fig = make(ReportData.build(sweep))
    assert isinstance(fig, Figure)
    assert fig.get_layout_engine() is not None  # constrained layout
    fig.canvas.draw()  # lays out and renders without error


@pytest.mark.parametrize("make", ALL_FIGURES, ids=list(FIGURES))
def test_figures_build_on_partial_results(partial, make):
    fig = make(ReportData.build(partial))
    if make is invalidation_vs_severity:
        assert fig is None  # no swept shift
    else:
        assert isinstance(fig, Figure)
        fig.canvas.draw()


@pytest.mark.parametrize("make", ALL_FIGURES, ids=list(FIGURES))
def test_nothing_to_plot_gives_none(plain, make):
    failed = plain.assign(status="skipped", value=np.nan)
    assert make(failed) is None
    assert make(plain.iloc[:0]) is None


def test_severity_figure_needs_more_than_one_severity(plain):
    assert invalidation_vs_severity(plain) is None
    single = _frame(severities=(0.5,))
    assert invalidation_vs_severity(single) is None


def test_cost_figure_needs_cost(plain):
    assert cost_vs_invalidation(plain[plain["metric"] != "cost-l1"]) is None


def test_heatmap_marks_cells_without_ok_values(partial):
    fig = invalidation_heatmap(partial)
    for ax in fig.axes:
        meshes = [a for a in ax.get_children() if isinstance(a, QuadMesh)]
        if not meshes or not ax.get_title():
            continue  # the colour bar
        methods = _ticks(ax.yaxis)
        assert "trex" in methods  # skipped everywhere: a row of n/a
        data = _cells(meshes[0], len(methods))
        texts = {
            (int(t.get_position()[1]), int(t.get_position()[0])): t.get_text() for t in ax.texts
        }  # fmt: skip  (cell centres at +0.5)
        for r, method in enumerate(methods):
            missing = method == "trex" or (_panel(ax)[0] == "adult" and method == "genre")
            assert bool(np.ma.getmaskarray(data)[r, 0]) is missing
            assert (texts[(r, 0)] == "n/a") is missing


# -- consistent method styles ---------------------------------------------------------------------


def test_method_styles_are_fixed_for_builtins_and_stable_for_plugins():
    styles = MethodStyles.from_labels(["wachter", "roar", None, "genre", "roar"])
    assert styles.labels == ("wachter", "roar", "genre")  # the built-in order
    order = BUILTIN_METHODS
    assert [styles.color(m) for m in styles.labels] == [
        COLORBLIND[order.index(m) % len(COLORBLIND)] for m in styles.labels
    ]
    assert styles.order(["zz-plugin", "wachter", "aa-plugin", "genre"]) == [
        "wachter",
        "genre",
        "aa-plugin",
        "zz-plugin",
    ]
    # every built-in has its own (colour, marker)
    looks = {(styles.color(m), styles.marker(m)) for m in BUILTIN_METHODS}
    assert len(looks) == len(BUILTIN_METHODS)


def test_a_method_looks_the_same_in_reports_with_other_methods():
    alone = MethodStyles.from_labels(["my-plugin", "roar"])
    crowded = MethodStyles.from_labels(
        ["aaa", "my-plugin", "wachter", "genre", "roar", "zzz", "roar(delta=0.2)"]
    )
    for label in ("my-plugin", "roar"):
        assert (alone.color(label), alone.marker(label)) == (
            crowded.color(label),
            crowded.marker(label),
        )
    # a variant keeps its method's colour and takes another marker
    assert crowded.color("roar(delta=0.2)") == crowded.color("roar")
    assert crowded.marker("roar(delta=0.2)") != crowded.marker("roar")


@pytest.mark.parametrize("make", ALL_FIGURES[:3], ids=list(FIGURES)[:3])
def test_a_method_looks_the_same_in_every_figure_and_subset(sweep, make):
    styles = MethodStyles.from_results(sweep)
    subset = sweep[sweep["method_label"].isin(["wachter", "roar"])]
    seen = {}
    for frame in (sweep, subset):
        fig = make(ReportData.build(frame, styles=styles))
        marks = _method_marks(fig)
        assert {method for method, _ in marks} == set(frame["method_label"])
        for method, look in marks:
            assert look == (styles.color(method), styles.marker(method))
            assert seen.setdefault(method, look) == look
        legend = fig.legends[0]
        for handle, text in zip(legend.legend_handles, legend.get_texts(), strict=True):
            if text.get_text() in styles.labels:
                assert to_hex(handle.get_color()) == styles.color(text.get_text())
                assert handle.get_marker() == styles.marker(text.get_text())
    # a subset does not renumber: roar keeps its fixed colour
    assert seen["roar"][0] == COLORBLIND[BUILTIN_METHODS.index("roar")]


def test_heatmap_rows_follow_the_global_method_order(sweep):
    styles = MethodStyles.from_labels([*METHODS, "aaa-first"])
    fig = invalidation_heatmap(ReportData.build(sweep, styles=styles))
    ax = fig.axes[0]
    assert _ticks(ax.yaxis) == ["wachter", "roar", "genre"]


# -- values ---------------------------------------------------------------------------------------


def _means(frame, metric="invalidation-rate"):
    summary = summarise(frame)
    summary = summary[summary["metric"] == metric]
    return {
        (r.dataset_label, r.model_label, r.method_label, _label(r.shift_label)): r.mean
        for r in summary.itertuples()
    }


def _label(value):
    return value if isinstance(value, str) else None


def test_heatmap_cells_equal_summarise(sweep):
    means = _means(sweep)
    fig = invalidation_heatmap(sweep)
    checked = 0
    for ax in fig.axes:
        meshes = [a for a in ax.get_children() if isinstance(a, QuadMesh)]
        if not meshes or not ax.get_title():
            continue
        dataset, model = _panel(ax)
        methods = _ticks(ax.yaxis)
        shifts = _ticks(ax.xaxis)
        assert shifts == [f"retrain-seed(severity={s})" for s in (0.0, 0.1, 0.2)]
        data = _cells(meshes[0], len(methods))
        for (r, method), (c, shift) in itertools.product(enumerate(methods), enumerate(shifts)):
            assert data[r, c] == pytest.approx(means[(dataset, model, method, shift)])
            checked += 1
    assert checked == 2 * 3 * 3


def test_points_by_shift_equal_summarise(sweep):
    means = _means(sweep)
    fig = invalidation_by_shift(sweep)
    shifts = _ticks(fig.axes[0].yaxis)
    checked = 0
    for ax in fig.axes:
        dataset, model = _panel(ax)
        for line in ax.get_lines():
            method = line.get_label()
            if method.startswith("_"):
                continue
            for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True):
                shift = shifts[int(np.rint(y))]
                assert x == pytest.approx(means[(dataset, model, method, shift)])
                checked += 1
    assert checked == 2 * 3 * 3


def test_severity_curves_equal_summarise(sweep):
    means = _means(sweep)
    fig = invalidation_vs_severity(sweep)
    assert len(fig.axes) == 2  # one family, two datasets
    for ax in fig.axes:
        dataset, model = _panel(ax)
        for line in ax.get_lines():
            method = line.get_label()
            if method.startswith("_"):
                continue
            assert list(line.get_xdata()) == [0.0, 0.1, 0.2]
            expected = [means[(dataset, model, method, f"retrain-seed(severity={s})")]
                        for s in (0.0, 0.1, 0.2)]  # fmt: skip
            np.testing.assert_allclose(line.get_ydata(), expected)


def test_cost_points_and_front(sweep):
    cost = _means(sweep, "cost-l1")
    inv = sweep[(sweep["metric"] == "invalidation-rate") & (sweep["status"] == "ok")]
    # mean over draws per shift, then over shifts, within a seed; then over seeds
    per_shift = inv.groupby(["dataset_label", "method_label", "shift_label", "seed"])["value"]
    per_seed = per_shift.mean().groupby(["dataset_label", "method_label", "seed"]).mean()
    expected_y = per_seed.groupby(["dataset_label", "method_label"]).mean()
    fig = cost_vs_invalidation(sweep)
    for ax in fig.axes:
        dataset, model = _panel(ax)
        points = {}
        for marks in ax.collections:
            method = marks.get_label()
            if method.startswith("_") or not isinstance(marks, PathCollection):
                continue
            ((x, y),) = marks.get_offsets()
            assert x == pytest.approx(cost[(dataset, model, method, None)])
            assert y == pytest.approx(expected_y[(dataset, method)])
            points[method] = (x, y)
        assert set(points) == set(METHODS)
        front = [line for line in ax.get_lines() if line.get_label() == "_pareto"]
        joined = front[0]  # the dashed line through the front, by cost
        xs = sorted(points[m][0] for m in ("wachter", "roar"))
        np.testing.assert_allclose(joined.get_xdata(), xs)


def test_cost_figure_sizes_markers_by_plausibility(plain, sweep):
    with_lof = cost_vs_invalidation(sweep)
    without = cost_vs_invalidation(plain)
    assert len(with_lof.legends) == 2  # methods, and the marker-size key
    assert len(without.legends) == 1


def test_pareto_front_matches_brute_force():
    rng = np.random.default_rng(0)

    def brute(points):
        front = []
        for i, p in enumerate(points):
            dominated = any(
                all(q[k] <= p[k] for k in range(len(p))) and any(q[k] < p[k] for k in range(len(p)))
                for j, q in enumerate(points)
                if j != i
            )
            if not dominated:
                front.append(i)
        return front

    for trial in range(60):
        n = int(rng.integers(1, 15))
        dims = 2 if trial < 45 else 3
        if trial % 2:
            points = rng.integers(0, 4, size=(n, dims)).astype(float)  # many ties and duplicates
        else:
            points = rng.uniform(size=(n, dims))
        assert pareto_front(points) == brute(points.tolist())


def test_pareto_front_edge_cases():
    assert pareto_front([]) == []
    assert pareto_front([(1.0, 1.0), (1.0, 1.0)]) == [0, 1]  # equal points are both optimal
    assert pareto_front([(0.0, 1.0), (1.0, 0.0), (1.0, 1.0)]) == [0, 1]
    assert pareto_front([(np.nan, 0.0), (1.0, 1.0)]) == [1]  # a missing coordinate: ignored


# -- saving and style -----------------------------------------------------------------------------


def test_write_figures_writes_every_format(sweep, tmp_path):
    written = write_figures(sweep, tmp_path / "figs", formats=("pdf", "png"))
    assert list(written) == list(FIGURES)
    for name, paths in written.items():
        assert [p.name for p in paths] == [f"{name}.pdf", f"{name}.png"]
        assert all(p.stat().st_size > 0 for p in paths)
        assert paths[0].read_bytes().startswith(b"%PDF")
        image = imread(paths[1])
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_write_figures_skips_what_cannot_be_drawn(plain, tmp_path):
    written = write_figures(plain, tmp_path, formats=("png",))
    assert "invalidation-vs-severity" not in written
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.png" for n in written)


def test_save_figure_png_resolution(plain, tmp_path):
    fig = invalidation_heatmap(plain)
    (path,) = save_figure(fig, tmp_path, "heat", formats=(".PNG",))
    assert path.name == "heat.png"
    _height, width = imread(path).shape[:2]
    # tight bounding box at 200 dpi: about the figure's size in inches times 200, never less
    assert width > 0.6 * fig.get_figwidth() * figures.PNG_DPI


def test_paper_style_leaves_rcparams_unchanged(sweep, tmp_path):
    before = dict(mpl.rcParams)
    with paper_style():
        assert mpl.rcParams["font.size"] == 8
        assert mpl.rcParams["pdf.fonttype"] == 42
    assert dict(mpl.rcParams) == before
    write_figures(sweep, tmp_path, formats=("png",))
    assert dict(mpl.rcParams) == before


def test_figures_use_paper_fonts(plain):
    fig = invalidation_by_shift(plain)
    ax = fig.axes[0]
    assert ax.title.get_fontsize() == 8
    assert 7 <= ax.xaxis.label.get_fontsize() <= 9
    assert fig.get_figwidth() <= 7.0


def test_wrap_label_only_inserts_newlines():
    label = "genre(ffn_width=128, n_decoder_layers=4, n_heads=8, learning_rate=0.001)"
    wrapped = wrap_label(label, 24)
    assert wrapped.replace("\n", "") == label
    assert max(len(line.rstrip()) for line in wrapped.split("\n")) <= 24
    assert wrap_label("wachter") == "wachter"
    assert wrap_label("weight-perturbation(severity=0.01)", 22) == (
        "weight-perturbation\n(severity=0.01)"
    )


# -- severity axis --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severities", "scale"),
    [
        ((0.0, 0.1, 0.2), "linear"),  # within a decade
        ((0.01, 0.03, 0.1), "linear"),  # exactly a decade
        ((0.01, 0.1, 1.0), "log"),
        ((0.0, 0.01, 0.1, 1.0), "symlog"),  # 0 (no shift) keeps its place
    ],
)
def test_the_severity_axis_is_logarithmic_beyond_a_decade(severities, scale):
    fig = invalidation_vs_severity(_frame(severities=severities))
    ax = fig.axes[0]
    assert ax.get_xscale() == scale
    assert set_severity_scale(Figure().add_subplot(), np.array(severities)) == scale


@pytest.fixture(autouse=True)
def close_figures():
    """seaborn's FacetGrid makes its figures through pyplot: close them after each test."""
    yield
    plt.close("all")
