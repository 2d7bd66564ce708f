"""Rankings across cells: average ranks, Friedman, Nemenyi and the critical-difference diagram."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from recourse_bench.reports.data import ReportData
from recourse_bench.reports.figures import critical_difference_diagram
from recourse_bench.reports.ranks import (
    critical_difference,
    nemenyi,
    pairwise_table,
    rank_methods,
    rankings,
    ranks_table,
)
from recourse_bench.reports.report import write_report
from recourse_bench.reports.tables import compatibility_matrix
from recourse_bench.store import to_frame

from .results_frames import row

# cost-l1 (lower is better) of three methods on four datasets: the hand-ranked example.
COSTS = {
    "d1": {"a": 1.0, "b": 2.0, "c": 3.0},  # ranks a 1, b 2, c 3
    "d2": {"a": 2.0, "b": 1.0, "c": 3.0},  # a 2, b 1, c 3
    "d3": {"a": 1.0, "b": 3.0, "c": 2.0},  # a 1, b 3, c 2
    "d4": {"a": 1.0, "b": 2.0, "c": 2.0},  # a 1, b and c tied: 2.5 each
}
# average ranks by hand: a (1 + 2 + 1 + 1) / 4 = 1.25, b (2 + 1 + 3 + 2.5) / 4 = 2.125,
# c (3 + 3 + 2 + 2.5) / 4 = 2.625


def frame_of(values: dict[str, dict[str, float]], metric: str = "cost-l1", seeds: int = 2):
    rows = [
        row(dataset, "mlp", method, seed, metric, value)
        for dataset, by_method in values.items()
        for method, value in by_method.items()
        for seed in range(seeds)
    ]
    return to_frame(rows)


def test_average_ranks_match_the_hand_computed_example():
    ranking = rank_methods(ReportData.build(frame_of(COSTS)), "cost-l1")
    assert ranking is not None and ranking.n_cells == 4 and ranking.n_methods == 3
    assert ranking.mean_ranks.to_dict() == pytest.approx({"a": 1.25, "b": 2.125, "c": 2.625})
    assert list(ranking.mean_ranks.index) == ["a", "b", "c"]  # best first
    assert ranking.ranks.loc[("d4", "mlp", "")].to_dict() == {"a": 1.0, "b": 2.5, "c": 2.5}


def test_friedman_statistic_equals_scipys_and_the_textbook_formula():
    ranking = rank_methods(ReportData.build(frame_of(COSTS)), "cost-l1")
    columns = [[COSTS[d][m] for d in COSTS] for m in "abc"]
    reference = stats.friedmanchisquare(*columns)
    assert ranking.statistic == pytest.approx(reference.statistic, rel=1e-12)
    assert ranking.p_value == pytest.approx(reference.pvalue, rel=1e-12)
    # without ties, Friedman's chi2 = 12 N / (k (k + 1)) * sum_j R_j^2 - 3 N (k + 1)
    untied = {d: dict(v) for d, v in COSTS.items()}
    untied["d4"]["c"] = 2.5  # d4: a 1, b 2, c 3
    ranking = rank_methods(ReportData.build(frame_of(untied)), "cost-l1")
    n, k = 4, 3
    mean = {"a": 1.25, "b": 2.0, "c": 2.75}
    by_hand = 12 * n / (k * (k + 1)) * sum(r**2 for r in mean.values()) - 3 * n * (k + 1)
    assert by_hand == pytest.approx(4.5)
    assert ranking.statistic == pytest.approx(by_hand, rel=1e-12)


def test_a_higher_is_better_metric_ranks_the_largest_value_first():
    ranking = rank_methods(ReportData.build(frame_of(COSTS, metric="validity")), "validity")
    assert list(ranking.mean_ranks.index) == ["c", "b", "a"]
    assert ranking.mean_ranks["a"] == pytest.approx(4 - 1.25)


def test_critical_difference_is_demsars():
    """Demšar (2006), section 3.2.4: k = 4 methods on N = 14 data sets, q_0.05 = 2.569, CD 1.25."""
    expected = 2.569 * math.sqrt(4 * 5 / (6 * 14))
    assert critical_difference(4, 14) == pytest.approx(expected, abs=1e-3)
    assert critical_difference(4, 14) == pytest.approx(1.25, abs=0.005)
    # a difference of exactly CD has Nemenyi's p-value alpha
    cd = critical_difference(5, 9)
    p = nemenyi(pd.Series({"x": 1.0, "y": 1.0 + cd, "z": 3, "u": 3, "v": 3}), 9)
    assert p.loc["x", "y"] == pytest.approx(0.05, abs=1e-6)
    assert p.loc["z", "u"] == 1.0 and p.loc["x", "x"] == 1.0


def test_cells_and_methods_left_out_are_named_never_dropped_silently():
    values = {f"d{i}": {"a": 1.0 + i, "b": 2.0 + i, "c": 3.0 - i / 10} for i in range(6)}
    del values["d5"]["c"]  # one cell without c: left out of the test, and named
    values["d6"] = {"a": 1.0, "b": 2.0}
    ranking = rank_methods(ReportData.build(frame_of(values)), "cost-l1")
    assert ranking.n_cells == 5 and ranking.cells_total == 7
    assert ranking.incomplete_cells == ["d5 / mlp (no c)", "d6 / mlp (no c)"]
    assert ranking.methods_left_out == []
    # a method present in too few cells is left out of the ranking instead, and named
    rare = {f"d{i}": {"a": 1.0 + i, "b": 2.0 + i} for i in range(6)}
    rare["d0"]["c"] = 0.5
    ranking = rank_methods(ReportData.build(frame_of(rare)), "cost-l1")
    assert ranking.methods_left_out == ["c (ran in 1 of 6 cells)"]
    assert ranking.n_cells == 6 and list(ranking.mean_ranks.index) == ["a", "b"]
    table = ranks_table({"cost-l1": ranking})
    assert set(table["methods_left_out"]) == {"c (ran in 1 of 6 cells)"}


def test_cliques_join_methods_closer_than_the_critical_difference():
    values = {f"d{i}": {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0} for i in range(3)}
    ranking = rank_methods(ReportData.build(frame_of(values)), "cost-l1")
    assert ranking.critical_difference > 2.0  # 3 cells: only a and d differ
    assert ranking.cliques() == [["a", "b", "c"], ["b", "c", "d"]]
    assert ranking.pairwise.loc["a", "d"] < 0.05 < ranking.pairwise.loc["a", "c"]


def test_the_diagram_names_every_method_and_the_cd(tmp_path):
    data = ReportData.build(frame_of(COSTS))
    ranking = rank_methods(data, "cost-l1")
    fig = critical_difference_diagram(ranking, data.styles)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any(t.startswith("CD = ") for t in texts)
    for method, rank in ranking.mean_ranks.items():
        assert any(method in t and f"{rank:.2f}" in t for t in texts)


def test_the_report_writes_ranks_diagrams_and_the_compatibility_matrix(tmp_path):
    frame = frame_of(COSTS)
    skipped = row("d1", "mlp", "x", 0, None, np.nan, status="skipped", reason="needs gradients")
    results = to_frame([*frame.to_dict("records"), skipped])
    index = write_report(results, tmp_path).read_text(encoding="utf-8")
    ranks = pd.read_csv(tmp_path / "stats" / "ranks.csv")
    assert set(ranks["metric"]) == {"cost-l1"}
    assert ranks.set_index("method")["mean_rank"].to_dict() == pytest.approx(
        {"a": 1.25, "b": 2.125, "c": 2.625}
    )
    assert (tmp_path / "figures" / "cd-cost-l1.pdf").stat().st_size > 0
    assert (tmp_path / "figures" / "cd-cost-l1.png").stat().st_size > 0
    assert "## Rankings" in index and "figures/cd-cost-l1.png" in index
    pairs = pd.read_csv(tmp_path / "stats" / "nemenyi.csv")
    assert len(pairs) == 3 and set(pairs.columns) >= {"method_a", "method_b", "p_nemenyi"}
    compatibility = pd.read_csv(tmp_path / "tables" / "compatibility.csv").set_index("method")
    assert compatibility.loc["x", "d1 / mlp"] == "skipped: needs gradients"
    assert compatibility.loc["x", "d2 / mlp"] == "-"
    assert compatibility.loc["a", "d1 / mlp"] == "ran"
    assert "## Compatibility" in index and "skipped: needs gradients" in index


def test_compatibility_counts_failed_rows_of_a_cell_that_also_ran():
    frame = frame_of({"d1": {"a": 1.0}})
    failed = row("d1", "mlp", "a", 5, None, np.nan, status="error", reason="boom")
    table = compatibility_matrix(to_frame([*frame.to_dict("records"), failed]))
    assert table.set_index("method").loc["a", "d1 / mlp"] == "ran (1 rows error)"


def test_every_rankable_metric_is_ranked():
    data = ReportData.build(pd.concat([frame_of(COSTS), frame_of(COSTS, "validity")]))
    assert set(rankings(data)) == {"cost-l1", "validity"}


def test_methods_left_out_do_not_take_the_complete_methods_along():
    """Cells where only left-out methods ran do not count against the methods kept."""
    values = {f"c{i}": {"A": 1.0 + i, "B": 2.0, "C": 3.0, "D": 4.0 - i} for i in range(3)}
    values |= {"x1": {"X": 1.0}, "x2": {"X": 2.0}, "y1": {"Y": 1.0}, "y2": {"Y": 2.0}}
    ranking = rank_methods(ReportData.build(frame_of(values)), "cost-l1")
    assert sorted(ranking.mean_ranks.index) == ["A", "B", "C", "D"] and ranking.n_cells == 3
    assert ranking.methods_left_out == ["X (ran in 2 of 7 cells)", "Y (ran in 2 of 7 cells)"]
    assert sorted(ranking.incomplete_cells) == [
        f"{cell} / mlp (only methods left out ran)" for cell in ("x1", "x2", "y1", "y2")
    ]


def test_no_pair_is_called_better_without_a_friedman_rejection():
    """Two methods: no Friedman test here, so Nemenyi's small p-value names no winner."""
    values = {f"d{i}": {"a": 1.0, "b": 2.0} for i in range(10)}
    ranking = rank_methods(ReportData.build(frame_of(values)), "cost-l1")
    assert math.isnan(ranking.p_value) and ranking.pairwise.loc["a", "b"] < 0.01
    (pair,) = pairwise_table({"cost-l1": ranking}).itertuples(index=False)
    assert pair.better == "" and pair.p_nemenyi < 0.01
    three = {f"d{i}": {"a": 1.0, "b": 2.0, "c": 3.0} for i in range(10)}
    ranking = rank_methods(ReportData.build(frame_of(three)), "cost-l1")
    table = pairwise_table({"cost-l1": ranking}).set_index(["method_a", "method_b"])
    assert ranking.p_value < 0.05 and table.loc[("a", "c"), "better"] == "a"
    assert "no difference" not in ranking.sentence()
