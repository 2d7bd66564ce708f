import numpy as np
import pytest

from recourse_bench import registry
from recourse_bench.api import EvalContext
from recourse_bench.models import linear_classifier


@pytest.fixture
def context():
    splits = registry.get("dataset", "synthetic-gaussians")(n_samples=200).load(0)
    model = linear_classifier(np.array([1.0, 1.0]), -1.0)  # accepts x0 + x1 >= 1
    factuals = np.array([[0.1, 0.2], [0.3, 0.3], [0.0, 0.4], [0.2, 0.1]])
    recourses = np.array([[0.6, 0.6], [0.3, 0.8], [np.nan, np.nan], [0.3, 0.2]])
    return EvalContext(factuals, recourses, model, splits)


def metric(name):
    return registry.get("metric", name)


def test_static_metrics_against_hand_computed_values(context):
    assert metric("coverage")(context).value == pytest.approx(3 / 4)
    validity = metric("validity")(context)
    assert (validity.value, validity.n) == (pytest.approx(2 / 4), 4)
    cost = metric("cost-l1")(context)
    assert cost.n == 3
    assert cost.value == pytest.approx((0.9 + 0.5 + 0.2) / 3)


def test_invalidation_rate_is_zero_when_the_update_is_the_base_model(context):
    result = metric("invalidation-rate")(EvalContext(**{**vars(context), "updated": context.model}))
    assert result.value == 0.0
    assert result.n == 2  # the recourses valid under the base model


def test_invalidation_rate_is_one_when_the_update_rejects_everything(context):
    rejects_all = linear_classifier(np.zeros(2), -1e6)
    result = metric("invalidation-rate")(EvalContext(**{**vars(context), "updated": rejects_all}))
    assert (result.value, result.n) == (1.0, 2)


def test_invalidation_rate_counts_only_recourses_valid_before(context):
    stricter = linear_classifier(np.array([1.0, 1.0]), -1.15)  # rejects [0.3, 0.8] (sum 1.1)
    result = metric("invalidation-rate")(EvalContext(**{**vars(context), "updated": stricter}))
    assert (result.value, result.n) == (0.5, 2)


def test_invalidation_rate_is_nan_without_valid_recourse(context):
    none_found = EvalContext(
        context.factuals,
        np.full_like(context.factuals, np.nan),
        context.model,
        context.splits,
        updated=context.model,
    )
    result = metric("invalidation-rate")(none_found)
    assert np.isnan(result.value) and result.n == 0


def test_metrics_declare_metadata():
    for name in registry.available("metric"):
        m = registry.get("metric", name)
        assert m.stage in ("static", "update", "shift")
        assert isinstance(m.higher_is_better, bool)
        assert m.bounds[0] <= m.bounds[1]
        assert m.__doc__
