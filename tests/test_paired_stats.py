"""Paired Wilcoxon tests between methods and Holm's correction."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from recourse_bench.reports.stats import holm, paired_tests, wilcoxon_pair
from recourse_bench.store import to_frame

from .results_frames import make_results, row

SEEDS = range(5)
DRAWS = range(3)


def _update_rows(method: str, values: np.ndarray, metric: str = "invalidation-rate") -> list:
    """One row per (seed, draw) unit, ``values`` in unit order."""
    units = list(itertools.product(SEEDS, DRAWS))
    return [
        row("german", "mlp", method, s, metric, float(v), shift="retrain-seed", draw=d)
        for (s, d), v in zip(units, values, strict=True)
    ]


def _holm_brute_force(pvalues: np.ndarray) -> np.ndarray:
    """The smallest level at which Holm's step-down procedure rejects each hypothesis."""
    defined = [i for i, p in enumerate(pvalues) if not np.isnan(p)]
    m = len(defined)
    levels = sorted({min(1.0, (m - k) * pvalues[i]) for i in defined for k in range(m)} | {1.0})
    adjusted = np.full(len(pvalues), np.nan)
    for alpha in levels:  # increasing: the first level that rejects is the adjusted p-value
        ranked = sorted(defined, key=lambda i: pvalues[i])
        for k, i in enumerate(ranked):
            if min(1.0, (m - k) * pvalues[i]) > alpha:  # p > alpha / (m - k), without rounding
                break
            if np.isnan(adjusted[i]):
                adjusted[i] = alpha
    return adjusted


def test_holm_equals_brute_force():
    rng = np.random.default_rng(1)
    for trial in range(200):
        m = int(rng.integers(1, 9))
        p = rng.uniform(0, 0.2, m) if trial % 2 else rng.choice([0.01, 0.02, 0.04, 0.3], m)
        p[rng.uniform(size=m) < 0.2] = np.nan
        np.testing.assert_allclose(holm(p), _holm_brute_force(p), rtol=1e-12)


def test_holm_known_values_and_nans():
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    adjusted = holm([np.nan, 0.01, 0.5, np.nan])
    assert np.isnan(adjusted[[0, 3]]).all()
    np.testing.assert_allclose(adjusted[[1, 2]], [0.02, 0.5])
    assert holm([]).size == 0 and np.isnan(holm([np.nan])).all()


def test_p_values_equal_a_direct_wilcoxon_call():
    rng = np.random.default_rng(0)
    a, b, c = rng.uniform(0, 1, 15), rng.uniform(0, 1, 15), rng.uniform(0.2, 1, 15)
    results = to_frame(_update_rows("a", a) + _update_rows("b", b) + _update_rows("c", c))
    table = paired_tests(results)
    assert len(table) == 3
    for x, y, name_x, name_y in ((a, b, "a", "b"), (a, c, "a", "c"), (b, c, "b", "c")):
        found = table[(table["method_a"] == name_x) & (table["method_b"] == name_y)].iloc[0]
        direct = stats.wilcoxon(x, y)
        assert found["p_value"] == pytest.approx(direct.pvalue, rel=1e-12)
        assert found["statistic"] == direct.statistic
        assert found["median_diff"] == pytest.approx(np.median(x - y))
        assert found["n_pairs"] == 15
        assert (found["dataset"], found["model"], found["shift"]) == (
            "german", "mlp", "retrain-seed"
        )  # fmt: skip
    np.testing.assert_allclose(table["p_holm"], holm(table["p_value"].to_numpy()))


def test_pairs_use_only_the_units_both_methods_have():
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0, 1, 15), rng.uniform(0, 1, 15)
    rows_b = _update_rows("b", b)
    del rows_b[4]  # b lacks unit (seed 1, draw 1)
    rows_b[7] = {**rows_b[7], "status": "error", "reason": "boom"}  # and (seed 2, draw 1) failed
    results = to_frame(_update_rows("a", a) + rows_b)
    found = paired_tests(results).iloc[0]
    shared = np.ones(15, dtype=bool)
    shared[[4, 8]] = False  # rows_b[7], after the deletion, was unit 8
    assert found["n_pairs"] == 13
    assert found["p_value"] == pytest.approx(stats.wilcoxon(a[shared], b[shared]).pvalue)


def test_static_metrics_pair_on_seeds():
    rng = np.random.default_rng(4)
    rows = []
    for method, shift in (("a", 0.0), ("b", 0.1)):
        rows += [row("german", "mlp", method, s, "cost-l1", 1 + shift + rng.uniform(0, 0.01))
                 for s in range(8)]  # fmt: skip
    table = paired_tests(to_frame(rows))
    found = table.iloc[0]
    assert pd.isna(found["shift"]) and found["n_pairs"] == 8
    assert found["p_value"] < 0.01
    assert found["better"] == "a"  # cost: lower is better


@pytest.mark.parametrize(
    ("metric", "expected"), [("validity-after-update", "a"), ("invalidation-rate", "b")]
)
def test_a_clearly_better_method_is_flagged_in_its_metric_direction(metric, expected):
    rng = np.random.default_rng(5)
    b = rng.uniform(0.2, 0.6, 15)
    a = b + 0.2 + rng.uniform(0, 0.05, 15)  # a is higher
    noise = rng.uniform(0, 1, 15)
    results = to_frame(
        _update_rows("a", a, metric)
        + _update_rows("b", b, metric)
        + _update_rows("c", noise, metric)
    )
    table = paired_tests(results)
    found = table[(table["method_a"] == "a") & (table["method_b"] == "b")].iloc[0]
    assert found["p_holm"] < 0.05 and found["median_diff"] > 0
    assert found["better"] == expected
    assert (table.loc[table["p_holm"].isna() | (table["p_holm"] >= 0.05), "better"] == "").all()


def test_degenerate_inputs_give_nan_not_an_exception():
    same = np.linspace(0, 1, 15)
    results = to_frame(_update_rows("a", same) + _update_rows("b", same))
    found = paired_tests(results).iloc[0]
    assert np.isnan(found["p_value"]) and np.isnan(found["p_holm"])
    assert "zero" in found["note"] and found["better"] == ""
    few = to_frame(_update_rows("a", same)[:4] + _update_rows("b", same + 0.1)[:4])
    found = paired_tests(few).iloc[0]
    assert found["n_pairs"] == 4 and np.isnan(found["p_value"]) and "4 pair" in found["note"]
    median, statistic, p_value, note = wilcoxon_pair(np.array([]), np.array([]))
    assert np.isnan([median, statistic, p_value]).all() and note
    disjoint = to_frame(_update_rows("a", same)[:7] + _update_rows("b", same)[7:])
    assert paired_tests(disjoint).iloc[0]["n_pairs"] == 0
    empty = paired_tests(make_results({}, methods=("wachter",), seeds=2, draws=2))
    assert empty.empty and "p_holm" in empty.columns


def test_a_whole_results_frame():
    results = make_results({("german", "roar", "invalidation-rate"): 0.1}, seeds=3, draws=4)
    table = paired_tests(results)
    blocks = 2 * (3 + 2)  # datasets x (static metrics + update metrics)
    assert len(table) == blocks * 3  # three pairs of three methods
    update = table[table["metric"] == "invalidation-rate"]
    assert (update["n_pairs"] == 12).all()
    assert (table.loc[table["metric"] == "cost-l1", "n_pairs"] == 3).all()  # too few: NaN
    assert table.loc[table["metric"] == "cost-l1", "p_value"].isna().all()
    roar = update[(update["dataset"] == "german") & (update["method_b"] == "roar")]
    assert (roar["better"] == "roar").all()
    subset = paired_tests(results, metrics=["invalidation-rate"])
    assert set(subset["metric"]) == {"invalidation-rate"}
