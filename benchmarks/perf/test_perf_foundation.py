"""Timing suites for the first slice: run with ``python -m pytest benchmarks/perf``.

Each benchmark also asserts the quality of what it timed, so a faster but broken change fails.
"""

import numpy as np
import pytest

from recourse_bench import load_config, registry, run_benchmark


@pytest.fixture(scope="module", params=["logreg", "mlp"])
def german(request):
    splits = registry.get("dataset", "german")().load(0)
    model = registry.get("model", request.param)().fit(splits.X_train, splits.y_train, seed=0)
    factuals = splits.X_test[model.predict(splits.X_test) == 0][:100]
    return splits, model, factuals


def test_wachter_generate_100_german_factuals(benchmark, german):
    splits, model, factuals = german
    method = registry.get("method", "wachter")().fit(model, splits)
    recourses = benchmark(method.generate, factuals)
    assert (model.predict(recourses[~np.isnan(recourses).any(axis=1)]) == 1).all()
    assert (~np.isnan(recourses).any(axis=1)).mean() >= 0.9


def test_retrain_seed_10_models_on_german(benchmark, german):
    splits, model, _ = german
    trainer = registry.get("model", "mlp" if not model.linear else "logreg")()
    shift = registry.get("shift", "retrain-seed")(n_models=10)
    updates = benchmark.pedantic(
        shift.updates, args=(splits, trainer, model, 0), rounds=3, iterations=1
    )
    assert len(updates) == 10


def test_quick_benchmark_served_from_cache(benchmark, tmp_path_factory):
    from pathlib import Path

    config = load_config(Path(__file__).resolve().parents[1] / "quick.yaml")
    out = tmp_path_factory.mktemp("quick") / "run"
    run_benchmark(config, out, progress=False)  # cold: fills the cache
    result = benchmark.pedantic(
        run_benchmark, args=(config, out), kwargs={"progress": False}, rounds=3, iterations=1
    )
    assert all(s["cached"] == s["units"] for s in result.metadata["stages"].values())
