import numpy as np
import pytest

from recourse_bench import registry
from recourse_bench.api import DataError
from recourse_bench.datasets import german


@pytest.fixture(scope="module")
def german_splits():
    return registry.get("dataset", "german")().load(7)


def test_german_shape_range_and_labels(german_splits):
    s = german_splits
    assert s.X_train.shape == (700, s.schema.n_features)
    assert s.X_test.shape == (300, s.schema.n_features)
    assert s.X_train.min() >= 0 and s.X_train.max() <= 1
    assert s.X_test.min() >= 0 and s.X_test.max() <= 1
    assert set(np.unique(s.y_train)) == {0, 1}
    assert s.y_train.mean() == pytest.approx(0.7, abs=0.01)  # stratified: 700 good, 300 bad


def test_german_schema_groups_immutables_and_directions(german_splits):
    schema = german_splits.schema
    for group in schema.groups:
        block = german_splits.X_train[:, list(group)]
        np.testing.assert_array_equal(block.sum(axis=1), 1.0)
    immutable = {
        f.split("=")[0] for f, i in zip(schema.features, schema.immutable, strict=True) if i
    }
    assert immutable == {"personal_status_sex", "foreign_worker"}
    assert schema.direction[schema.features.index("age")] == 1
    step = schema.steps[schema.features.index("installment_rate")]
    assert step == pytest.approx(1 / 3)  # installment rate takes the integers 1..4


def test_german_round_trips_to_raw_units(german_splits):
    raw = german_splits.encoder.inverse_transform(german_splits.X_train)
    assert set(raw["savings"]) <= set(german.CATEGORIES["savings"].values())
    assert raw["age"].between(19, 75).all()
    again = german_splits.encoder.transform(raw)
    np.testing.assert_allclose(again, german_splits.X_train, atol=1e-12)


def test_german_split_depends_on_seed_only():
    dataset = registry.get("dataset", "german")()
    np.testing.assert_array_equal(dataset.load(1).X_train, dataset.load(1).X_train)
    assert not np.array_equal(dataset.load(1).X_train, dataset.load(2).X_train)


def test_corrupted_embedded_file_is_detected(monkeypatch):
    from dataclasses import replace

    monkeypatch.setattr(german, "GERMAN_DATA", replace(german.GERMAN_DATA, sha256="0" * 64))
    monkeypatch.setattr("recourse_bench.datasets._tabular._FRAMES", {})
    with pytest.raises(DataError, match="expected 0000000000000000"):
        registry.get("dataset", "german")().load(0)


def test_gaussian_oracle_is_the_bayes_classifier():
    splits = registry.get("dataset", "synthetic-gaussians")(n_samples=4000, n_features=3).load(0)
    oracle = splits.oracle
    assert oracle.linear
    w = oracle.coef_
    # the boundary is symmetric in the features: the scaled weights are proportional to the spans
    assert np.all(w > 0)
    accuracy = (oracle.predict(splits.X_test) == splits.y_test).mean()
    # Bayes accuracy for separation 3 is Phi(1.5) = 0.933
    assert accuracy == pytest.approx(0.933, abs=0.03)
    trained = registry.get("model", "logreg")().fit(splits.X_train, splits.y_train, seed=0)
    cosine = trained.coef_ @ w / np.linalg.norm(trained.coef_) / np.linalg.norm(w)
    assert cosine > 0.99


def test_splits_reject_nan():
    s = registry.get("dataset", "synthetic-gaussians")(n_samples=100).load(0)
    X = s.X_train.copy()
    X[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        type(s)(X, s.y_train, s.X_test, s.y_test, s.schema, name="broken")


@pytest.mark.parametrize("name", ["synthetic-gaussians", "synthetic-moons", "synthetic-drift"])
def test_synthetic_oracles_are_calibrated(name):
    """The oracle's probabilities match the frequency of the labels the generator drew."""
    splits = registry.get("dataset", name)(n_samples=20000).load(3)
    X = np.vstack([splits.X_train, splits.X_test])
    y = np.concatenate([splits.y_train, splits.y_test])
    p = splits.oracle.predict_proba(X)[:, 1]
    bins = np.digitize(p, np.linspace(0, 1, 11)[1:-1])
    for b in np.unique(bins):
        members = bins == b
        n, expected = int(members.sum()), float(p[members].mean())
        if n >= 200:  # within 4 binomial standard errors (plus the bin's width effect)
            tolerance = 4 * np.sqrt(expected * (1 - expected) / n) + 0.01
            assert y[members].mean() == pytest.approx(expected, abs=tolerance)


def test_drift_moves_only_the_concept():
    dataset = registry.get("dataset", "synthetic-drift")(n_samples=5000, drift=0.8)
    splits = dataset.load(0)
    X_future, y_future = splits.future
    np.testing.assert_allclose(X_future.mean(axis=0), splits.X_train.mean(axis=0), atol=0.03)
    base_oracle, drifted = splits.oracle, dataset.oracle(splits, drifted=True)
    assert (drifted.predict(X_future) == y_future).mean() > 0.9
    assert (base_oracle.predict(X_future) == y_future).mean() < 0.85
    no_drift = registry.get("dataset", "synthetic-drift")(n_samples=5000, drift=0.0)
    same = no_drift.load(0)
    assert (same.oracle.predict(same.future[0]) == same.future[1]).mean() > 0.9
