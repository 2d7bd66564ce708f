"""The effect the ROAR paper reports, reproduced on the harness.

Upadhyay, Joshi and Lakkaraju (NeurIPS 2021) train on the original German credit coding and
retrain on the corrected one (5 folds): ROAR's recourses are invalidated far less often than
Wachter's, at a higher cost. ``benchmarks/roar-shifts.yaml`` measures it with 5 seeds (German,
logistic regression: 0.04 against 0.41, cost 1.59 against 0.78); this test runs 2 seeds and asks
for the same ordering with a wide margin.
"""

import pytest

from recourse_bench import load_config, run_benchmark

from .conftest import data_available

pytestmark = pytest.mark.skipif(
    not data_available(), reason="reference data folder absent (set RECOURSE_BENCH_DATA)"
)


def test_roar_is_invalidated_less_than_wachter_at_a_higher_cost(tmp_path):
    config = load_config(
        {
            "name": "roar-effect",
            "seeds": 2,
            "n_factuals": 100,
            "datasets": ["german"],
            "models": ["logreg"],
            "methods": ["wachter", {"name": "roar", "params": {"lam": "auto"}}],
            "shifts": [{"name": "natural", "params": {"n_models": 5}}],
            "metrics": ["validity", "cost-l1", "invalidation-rate"],
        }
    )
    results = run_benchmark(config, tmp_path / "run", progress=False).results
    assert (results.status == "ok").all()
    means = results.groupby(["method", "metric"]).value.mean()
    assert means["roar", "invalidation-rate"] < means["wachter", "invalidation-rate"] / 3
    assert means["roar", "cost-l1"] > means["wachter", "cost-l1"]
    assert means["roar", "validity"] >= 0.95
