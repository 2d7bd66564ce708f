"""GenRe: fitting the pair model on Adult and German, and sampling 1,000 factuals x 10 candidates.

Run with ``python -m pytest benchmarks/perf/test_perf_genre.py`` (the data folder must hold
nothing: Adult and German are embedded). The deployed model is the GenRe paper's MLP (10-10-10).
Fitting is timed once (one round: it takes minutes on Adult) on one torch thread, as the harness
runs it; sampling reuses the fitted Adult model. Each benchmark also checks what it timed.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recourse_bench import registry

N_FACTUALS = 1000
FITTED: dict[str, object] = {}


@pytest.fixture(autouse=True)
def one_thread():
    """The harness runs one torch thread per worker."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def deployed(name):
    splits = registry.get("dataset", name)().load(0)
    model = registry.get("model", "mlp")(hidden=[10, 10, 10])
    model = model.fit(splits.X_train, splits.y_train, seed=0)
    rejected = splits.X_test[model.predict(splits.X_test) == 0]
    return splits, model, rejected[:N_FACTUALS]


@pytest.fixture(scope="module")
def adult():
    return deployed("adult")


@pytest.fixture(scope="module")
def german():
    return deployed("german")


def fit_genre(splits, model):
    return registry.get("method", "genre")(random_state=0, progress=False).fit(model, splits)


def test_genre_fit_on_adult(benchmark, adult):
    splits, model, _ = adult
    method = benchmark.pedantic(fit_genre, args=(splits, model), rounds=1, iterations=1)
    benchmark.extra_info["steps"] = method.history_.steps[-1]
    assert method.history_.best_step > 0
    FITTED["genre"] = method


def test_genre_fit_on_german(benchmark, german):
    splits, model, factuals = german
    method = benchmark.pedantic(fit_genre, args=(splits, model), rounds=1, iterations=1)
    benchmark.extra_info["steps"] = method.history_.steps[-1]
    recourses = method.generate(factuals)
    assert (~np.isnan(recourses).any(axis=1)).mean() >= 0.5


def test_genre_sampling_1000_factuals_10_candidates(benchmark, adult):
    splits, model, factuals = adult
    assert len(factuals) == N_FACTUALS
    method = FITTED.get("genre") or fit_genre(splits, model)
    recourses = benchmark.pedantic(method.generate, args=(factuals,), rounds=3, iterations=1)
    found = ~np.isnan(recourses).any(axis=1)
    benchmark.extra_info["validity"] = float(found.mean())
    benchmark.extra_info["cost_l1"] = float(np.abs(recourses - factuals)[found].sum(axis=1).mean())
    assert found.mean() >= 0.9
    assert not splits.schema.violations(recourses[found], factuals[found]).any()
