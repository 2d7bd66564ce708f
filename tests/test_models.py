import numpy as np
import pytest
import torch

from recourse_bench import registry
from recourse_bench.api import Classifier


@pytest.fixture(scope="module")
def data():
    splits = registry.get("dataset", "synthetic-gaussians")(n_samples=600).load(0)
    return splits.X_train, splits.y_train, splits.X_test, splits.y_test


@pytest.mark.parametrize(
    "trainer",
    [
        ("logreg", {"solver": "adam"}),  # Newton is seed-free: tests/test_logreg_converged.py
        ("mlp", {"batch_size": None, "n_iter_no_change": None}),
        ("mlp", {"batch_size": 64, "epochs": 30}),
        ("mlp", {}),
    ],
    ids=["logreg-adam", "mlp-full-batch", "mlp-mini-batch", "mlp-default"],
)
def test_trainers_are_seeded_accurate_and_leave_global_rng_alone(data, trainer):
    X, y, X_test, y_test = data
    name, params = trainer
    state = torch.random.get_rng_state()
    first = registry.get("model", name)(**params).fit(X, y, seed=5)
    again = registry.get("model", name)(**params).fit(X, y, seed=5)
    other = registry.get("model", name)(**params).fit(X, y, seed=6)
    assert torch.equal(state, torch.random.get_rng_state())
    assert isinstance(first, Classifier) and first.differentiable
    np.testing.assert_array_equal(first.predict_proba(X_test), again.predict_proba(X_test))
    assert not np.array_equal(first.predict_proba(X_test), other.predict_proba(X_test))
    assert (first.predict(X_test) == y_test).mean() > 0.85
    proba = first.predict_proba(X_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(first.predict(X_test), (proba[:, 1] >= 0.5).astype(int))


def test_linear_capabilities(data):
    X, y, X_test, _ = data
    logreg = registry.get("model", "logreg")().fit(X, y, seed=0)
    assert logreg.linear
    np.testing.assert_allclose(
        logreg.decision_function(X_test), X_test @ logreg.coef_ + logreg.intercept_, atol=1e-10
    )
    mlp = registry.get("model", "mlp")(epochs=5).fit(X, y, seed=0)
    assert not mlp.linear
    with pytest.raises(AttributeError, match="not a linear model"):
        _ = mlp.coef_
