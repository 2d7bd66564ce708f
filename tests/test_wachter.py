import numpy as np
import pytest

from recourse_bench import NotFittedError, registry
from recourse_bench.api import ConfigError

from .conftest import assert_recourse_contract


@pytest.fixture(scope="module")
def gaussians():
    splits = registry.get("dataset", "synthetic-gaussians")(n_features=5, n_samples=1000).load(1)
    model = registry.get("model", "logreg")().fit(splits.X_train, splits.y_train, seed=3)
    return splits, model


@pytest.fixture(scope="module")
def german():
    splits = registry.get("dataset", "german")().load(0)
    model = registry.get("model", "mlp")().fit(splits.X_train, splits.y_train, seed=0)
    factuals = splits.X_test[model.predict(splits.X_test) == 0][:40]
    return splits, model, factuals


def test_l2_recourse_on_logistic_model_matches_the_projection_distance(gaussians):
    splits, model = gaussians
    w, b = model.coef_, model.intercept_
    factuals = splits.X_test[model.predict(splits.X_test) == 0]
    scores = factuals @ w + b
    projection = factuals - np.outer(scores / (w @ w), w)
    distance = np.abs(scores) / np.linalg.norm(w)
    # the oracle holds where the projection stays in the box and the factual is not on the boundary
    testable = ((projection >= 0) & (projection <= 1)).all(axis=1) & (distance >= 0.05)
    assert testable.sum() >= 50

    recourses = registry.get("method", "wachter")(cost="l2").fit(model, splits).generate(factuals)
    found = np.linalg.norm(recourses - factuals, axis=1)
    relative_error = np.abs(found[testable] / distance[testable] - 1)
    assert relative_error.max() <= 0.02, relative_error.max()
    assert (model.predict(recourses) == 1).all()


def test_recourses_respect_immutables_bounds_and_one_hot_groups(german):
    splits, model, factuals = german
    recourses = registry.get("method", "wachter")().fit(model, splits).generate(factuals)
    assert_recourse_contract(splits.schema, model, factuals, recourses, 0.9)


def test_rows_that_cannot_flip_return_nan(gaussians):
    splits, model = gaussians
    factuals = splits.X_test[model.predict(splits.X_test) == 0][:5]
    method = registry.get("method", "wachter")(n_rounds=1, steps=1, lr=1e-6, shrink_steps=0)
    recourses = method.fit(model, splits).generate(factuals)
    assert np.isnan(recourses).all()


def test_generate_before_fit_raises_not_fitted():
    with pytest.raises(NotFittedError, match="fit"):
        registry.get("method", "wachter")().generate(np.zeros((2, 3)))


def test_invalid_cost_is_rejected():
    with pytest.raises(ConfigError, match="cost must be one of l1, l2"):
        registry.get("method", "wachter")(cost="l3").validate_params()


def test_label_shows_changed_parameters_only():
    method = registry.get("method", "wachter")
    assert method().label == "wachter"
    assert method(lam=1.0).label == "wachter(lam=1.0)"
