import numpy as np
import pytest

from recourse_bench.reports.data import bootstrap_interval, summarise
from recourse_bench.reports.tables import invalidation_table
from recourse_bench.store import COLUMNS, to_frame


def _rows(severities=(0.5, 2.0, 10.0)):
    rows = []
    base = dict.fromkeys(COLUMNS, "x")
    base.update(dataset_label="d", model_label="m", method_label="w", status="ok", reason="")
    for seed in (0, 1, 2):
        rows.append(
            {
                **base,
                "shift": None,
                "shift_label": None,
                "severity": np.nan,
                "seed": seed,
                "draw": None,
                "metric": "validity",
                "value": 1.0,
                "n": 10,
            }
        )
        for severity in severities:
            label = f"cov(severity={severity})"
            for draw, value in enumerate((0.1 * seed, 0.1 * seed + 0.2)):
                rows.append(
                    {
                        **base,
                        "shift": "cov",
                        "shift_label": label,
                        "severity": severity,
                        "seed": seed,
                        "draw": draw,
                        "metric": "invalidation-rate",
                        "value": value + severity / 100,
                        "n": 10,
                    }
                )
    return to_frame(rows)


def test_update_metrics_average_draws_within_seed_then_seeds():
    summary = summarise(_rows())
    row = summary[
        (summary["metric"] == "invalidation-rate") & (summary["shift_label"] == "cov(severity=2.0)")
    ].iloc[0]
    # per seed: mean(0.1 s, 0.1 s + 0.2) + 0.02 = 0.1 s + 0.12; over seeds 0, 1, 2: 0.22
    assert row["mean"] == pytest.approx(0.22)
    assert row["n_seeds"] == 3
    assert row["low"] <= row["mean"] <= row["high"]


def test_sweeps_are_ordered_by_severity_not_by_text():
    table = invalidation_table(_rows())
    assert list(table["shift"]) == ["cov(severity=0.5)", "cov(severity=2.0)", "cov(severity=10.0)"]
    assert (table["validity"] == "1.000").all()


def test_bootstrap_interval_edge_cases():
    assert bootstrap_interval(np.array([0.3])) == (0.3, 0.3)
    assert bootstrap_interval(np.array([0.2, 0.2, 0.2])) == pytest.approx((0.2, 0.2))
    low, high = bootstrap_interval(np.array([0.1, 0.2, 0.3, 0.4]))
    assert 0.1 <= low < 0.25 < high <= 0.4
    assert bootstrap_interval(np.array([0.1, 0.2, 0.3, 0.4])) == (low, high)  # reproducible
    assert all(np.isnan(bootstrap_interval(np.array([np.nan]))))


def test_timing_table_takes_medians_over_seeds_and_time_per_recourse():
    from recourse_bench.reports.tables import timing_table

    timings = [
        {"dataset": "d", "model": "m", "method": "a", "seed": s, "factuals": 100,
         "fit_seconds": fit, "generate_seconds": gen}
        for s, fit, gen in ((0, 1.0, 0.2), (1, 3.0, 0.4), (2, 2.0, 0.3))
    ] + [{"dataset": "d", "model": "m", "method": "b", "seed": 0, "factuals": 0,
          "fit_seconds": 0.0, "generate_seconds": 0.0}]  # fmt: skip
    table = timing_table(timings)
    assert table.to_dict("records") == [
        {"dataset": "d", "model": "m", "method": "a", "fit s": "2.000", "generate s": "0.300",
         "ms per recourse": "3.00", "seeds": 3}
    ]  # fmt: skip
