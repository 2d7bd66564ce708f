"""Timing of every built-in method: 1,000 factuals on the quick config's German MLP.

Run with ``python -m pytest benchmarks/perf/test_perf_methods.py``. The factuals are the German
rows (train and test) the MLP rejects, tiled to 1,000. Each benchmark also checks what it timed:
every recourse found is accepted by the model and breaks none of the schema's constraints.
"""

from __future__ import annotations

import numpy as np
import pytest

from recourse_bench import registry

N_FACTUALS = 1000
METHODS = ["wachter", "growing-spheres", "nearest-neighbour", "roar", "probe", "trex"]


@pytest.fixture(scope="module")
def german_mlp():
    splits = registry.get("dataset", "german")().load(0)
    model = registry.get("model", "mlp")().fit(splits.X_train, splits.y_train, seed=0)
    X = np.vstack([splits.X_train, splits.X_test])
    rejected = X[model.predict(X) == 0]
    factuals = np.resize(rejected, (N_FACTUALS, X.shape[1]))
    return splits, model, factuals


@pytest.mark.parametrize("name", METHODS)
def test_generate_1000_german_factuals_on_the_mlp(benchmark, german_mlp, name):
    splits, model, factuals = german_mlp
    method = registry.get("method", name)(random_state=0).fit(model, splits)
    recourses = benchmark.pedantic(method.generate, args=(factuals,), rounds=3, iterations=1)
    found = ~np.isnan(recourses).any(axis=1)
    benchmark.extra_info["coverage"] = float(found.mean())
    benchmark.extra_info["cost_l1"] = float(np.abs(recourses - factuals)[found].sum(axis=1).mean())
    assert found.mean() >= 0.5
    assert (model.predict(recourses[found]) == 1).all()
    assert not splits.schema.violations(recourses[found], factuals[found]).any()
