"""The contract every built-in recourse method keeps, on German and on synthetic data.

One test parametrised over the registry (a new built-in method is covered by adding nothing): a
recourse from every method breaks no immutable, bound, direction or one-hot group, is accepted by
the model it was made for, and a gradient method is skipped with a reason on a random forest.
"""

from __future__ import annotations

import numpy as np
import pytest

from recourse_bench import registry

from .conftest import assert_recourse_contract

N_FACTUALS = 30
PROBLEMS = [
    ("german", {}, "logreg"),
    ("german", {}, "mlp"),
    ("german", {}, "forest"),
    ("synthetic-gaussians", {"n_features": 5, "n_samples": 600}, "mlp"),
    ("synthetic-gaussians", {"n_features": 5, "n_samples": 600}, "forest"),
]


def builtin_methods() -> list[str]:
    """Every method registered by the package itself (test plugins excluded)."""
    return [
        name
        for name in registry.available("method")
        if registry.get("method", name).__module__.startswith("recourse_bench.methods")
    ]


@pytest.fixture(scope="module")
def problems():
    """Splits, a trained model and rejected factuals per problem, built once."""
    built = {}
    for dataset, params, model_name in PROBLEMS:
        splits = registry.get("dataset", dataset)(**params).load(0)
        model = registry.get("model", model_name)().fit(splits.X_train, splits.y_train, seed=0)
        factuals = splits.X_test[model.predict(splits.X_test) == 0][:N_FACTUALS]
        built[dataset, model_name] = (splits, model, factuals)
    return built


def test_every_method_of_the_specification_is_registered():
    expected = {"wachter", "growing-spheres", "nearest-neighbour", "roar", "probe", "trex"}
    assert expected <= set(builtin_methods())


@pytest.mark.parametrize("problem", [f"{d}/{m}" for d, _, m in PROBLEMS])
@pytest.mark.parametrize("name", builtin_methods())
def test_recourses_keep_the_schema_and_are_accepted(problems, name, problem):
    dataset, model_name = problem.split("/")
    splits, model, factuals = problems[dataset, model_name]
    method = registry.get("method", name)(random_state=0)
    reason = method.skip_reason(model)
    if not getattr(model, "differentiable", False) and method.tags.requires_differentiable:
        assert reason and "differentiable" in reason
        return
    if reason is not None:
        pytest.fail(f"{name} refused {model_name} without declaring why in its tags: {reason}")
    before = factuals.copy()
    recourses = method.fit(model, splits).generate(factuals)
    np.testing.assert_array_equal(factuals, before)  # the input is not mutated
    found = assert_recourse_contract(splits.schema, model, factuals, recourses)
    assert found.any(), f"{name} found no recourse at all on {problem}"
