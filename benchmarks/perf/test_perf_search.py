"""Per-step time of the projected Adam search (``methods/_search.py``) through Wachter.

Run with ``python -m pytest benchmarks/perf/test_perf_search.py``. Wachter searches the first
1,000 rejected Adult test rows of the default MLP (seed 0) for exactly ``STEPS`` Adam steps
(one round, no early stop, no line search), on one torch thread as in the harness. The mean
milliseconds per step are recorded in ``extra_info["ms_per_step"]`` (compare with ReLax's
compiled step: ``benchmarks/perf/compare_relax.py``), with the validity and mean L1 cost; the
test checks that every recourse found is accepted and feasible, not a time (a shared machine
would make that flaky).
"""

from __future__ import annotations

import numpy as np
import pytest

from recourse_bench import registry

N_FACTUALS = 1000
STEPS = 100


@pytest.fixture(scope="module")
def adult_mlp():
    splits = registry.get("dataset", "adult")().load(0)
    model = registry.get("model", "mlp")().fit(splits.X_train, splits.y_train, seed=0)
    rejected = splits.X_test[model.predict(splits.X_test) == 0]
    assert len(rejected) >= N_FACTUALS
    return splits, model, rejected[:N_FACTUALS]


def test_wachter_search_step(benchmark, adult_mlp):
    splits, model, X = adult_mlp
    params = {"n_rounds": 1, "steps": STEPS, "tol": 0.0, "shrink_steps": 0}
    method = registry.get("method", "wachter")(**params).fit(model, splits)
    cfs = benchmark.pedantic(method.generate, args=(X,), rounds=5, warmup_rounds=1)
    found = ~np.isnan(cfs).any(axis=1)
    valid = found.copy()
    valid[found] = model.predict(cfs[found]) == 1
    benchmark.extra_info["ms_per_step"] = 1e3 * benchmark.stats.stats.mean / STEPS
    benchmark.extra_info["validity"] = float(valid.mean())
    benchmark.extra_info["l1"] = float(np.abs(cfs[valid] - X[valid]).sum(axis=1).mean())
    assert valid.mean() >= 0.9
    assert (model.predict(cfs[found]) == 1).all()
    broken = splits.schema.broken_constraints(cfs[found], X[found])
    assert not any(cells.any() for cells in broken.values())
