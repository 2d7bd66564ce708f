"""The distribution-shift family: bootstrap, covariate, label-shift, concept-drift, new-data,
natural. Severity 0 is the training distribution; larger severities move what they should."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from recourse_bench import registry
from recourse_bench.api import ConfigError, DataError, NotApplicable, Splits, Trainer
from recourse_bench.datasets import german, student, synthetic_drift, synthetic_gaussians
from recourse_bench.models import boosting, forest, logreg, mlp
from recourse_bench.seeding import numpy_rng
from recourse_bench.shifts import (
    bootstrap,
    concept_drift,
    covariate,
    label_shift,
    natural,
    new_data,
)

from .conftest import data_available

# imported to register them
MODULES = (german, student, synthetic_drift, synthetic_gaussians, boosting, forest, logreg, mlp)
SHIFT_MODULES = (bootstrap, concept_drift, covariate, label_shift, natural, new_data)

# a non-zero severity for each shift (natural has none)
SHIFTS = {
    "bootstrap": {"severity": 0.3},
    "covariate": {"severity": 1.0},
    "label-shift": {"severity": 0.1},
    "concept-drift": {"severity": 0.3},
    "new-data": {"severity": 0.5},
    "natural": {},
}
TRAINERS = {
    "logreg": {"epochs": 30},
    "mlp": {"epochs": 20, "hidden": [8]},
    "forest": {"n_estimators": 10},
    "boosting": {"max_iter": 10},
}
needs_data = pytest.mark.skipif(
    not data_available(), reason="reference data folder absent (set RECOURSE_BENCH_DATA)"
)


def shift(name: str, **params) -> object:
    built = registry.get("shift", name)(**{**SHIFTS[name], **params})
    built.validate_params()
    return built


def trainer(name: str = "logreg") -> Trainer:
    return registry.get("model", name)(**TRAINERS[name])


@pytest.fixture(scope="module")
def gaussians() -> Splits:
    return registry.get("dataset", "synthetic-gaussians")(n_samples=300).load(0)


@pytest.fixture(scope="module")
def german_splits() -> Splits:
    return registry.get("dataset", "german")().load(0)


@pytest.fixture(scope="module")
def drift() -> Splits:
    return registry.get("dataset", "synthetic-drift")(n_samples=400).load(0)


@pytest.fixture(scope="module")
def student_splits() -> Splits:
    if not data_available():
        pytest.skip("reference data folder absent (set RECOURSE_BENCH_DATA)")
    return registry.get("dataset", "student")().load(0)


class Recording(Trainer):
    """Records what it is trained on (and returns no model)."""

    name = "recording"

    def __init__(self):
        self.seen = []

    def fit(self, X, y, seed):
        self.seen.append((np.array(X), np.array(y), seed))
        return None


def pooled(sampler, splits: Splits, draws: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Many samples of a shift stacked into one large sample."""
    parts = [sampler.sample(splits, numpy_rng(draw)) for draw in range(draws)]
    return np.concatenate([X for X, _ in parts]), np.concatenate([y for _, y in parts])


def assert_same_distribution(X: np.ndarray, y: np.ndarray, splits: Splits) -> None:
    """Class balance and feature means within sampling error of the training split's."""
    n = len(y)
    p = splits.y_train.mean()
    assert abs(y.mean() - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-9
    se = splits.X_train.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(X.mean(axis=0) - splits.X_train.mean(axis=0)) <= 5 * se + 1e-6)


# ------------------------------------------------------------------------------- severity zero
@pytest.mark.parametrize("name", ["bootstrap", "covariate", "label-shift"])
@pytest.mark.parametrize("data", ["gaussians", "german_splits"])
def test_severity_zero_samples_the_training_distribution(name, data, request):
    splits = request.getfixturevalue(data)
    sampler = shift(name, severity=0.0)
    X, y = pooled(sampler, splits)
    assert len(y) == 40 * len(splits.y_train)
    assert_same_distribution(X, y, splits)


def test_concept_drift_at_severity_zero_keeps_the_labels(german_splits, gaussians):
    for splits in (german_splits, gaussians):
        X, y = shift("concept-drift", severity=0.0).sample(splits, numpy_rng(3))
        np.testing.assert_array_equal(X, splits.X_train)
        np.testing.assert_array_equal(y, splits.y_train)


def test_concept_drift_at_severity_zero_draws_the_base_concept_on_synthetic_drift(drift):
    sampler = shift("concept-drift", severity=0.0)
    draws = np.stack([sampler.sample(drift, numpy_rng(d))[1] for d in range(300)])
    p = drift.oracle.predict_proba(drift.X_train)[:, 1]
    # per row, the share of 1s over 300 draws is the base concept's probability
    tolerance = 5 * np.sqrt(p * (1 - p) / 300) + 0.02
    assert np.all(np.abs(draws.mean(axis=0) - p) <= tolerance)


# ------------------------------------------------------------------------- larger severities
def test_bootstrap_draws_the_fraction_and_keeps_both_classes(german_splits):
    n = len(german_splits.y_train)
    for severity in (0.0, 0.5, 0.9):
        X, y = shift("bootstrap", severity=severity).sample(german_splits, numpy_rng(0))
        assert abs(len(y) - round((1 - severity) * n)) <= 1
        assert len(X) == len(y)
        assert abs(y.mean() - german_splits.y_train.mean()) <= 1 / len(y)


def test_covariate_mean_rises_monotonically_with_severity(german_splits):
    column = german_splits.schema.features.index("duration")  # the default feature
    means = []
    for severity in (-1.0, 0.0, 0.5, 1.0, 2.0):
        sampler = shift("covariate", severity=severity)
        expected = float(sampler.weights(german_splits) @ german_splits.X_train[:, column])
        X, _ = pooled(sampler, german_splits, draws=20)
        means.append(X[:, column].mean())
        assert means[-1] == pytest.approx(expected, abs=0.02)
    assert np.all(np.diff(means) > 0.05), means


def test_covariate_named_feature_moves_only_in_its_direction(gaussians):
    low, _ = pooled(shift("covariate", severity=-2.0, feature="x1"), gaussians, draws=10)
    high, _ = pooled(shift("covariate", severity=2.0, feature="x1"), gaussians, draws=10)
    mean = gaussians.X_train[:, 1].mean()
    assert low[:, 1].mean() < mean - 0.05 < mean + 0.05 < high[:, 1].mean()


@pytest.mark.parametrize("severity", [-0.3, 0.0, 0.1, 0.2, 0.9])
def test_label_shift_moves_the_class_share_by_severity(german_splits, severity):
    X, y = shift("label-shift", severity=severity).sample(german_splits, numpy_rng(1))
    n = len(german_splits.y_train)
    assert len(y) == n == len(X)
    target = np.clip(german_splits.y_train.mean() + severity, 0.05, 0.95)
    assert abs(y.mean() - target) <= 1 / n


def test_concept_drift_flips_a_severity_share_inside_the_region_only(german_splits):
    sampler = shift("concept-drift", severity=0.3)
    column = german_splits.schema.features.index("duration")
    region = german_splits.X_train[:, column] > np.median(german_splits.X_train[:, column])
    np.testing.assert_array_equal(sampler.region(german_splits), region)
    flipped = np.stack(
        [sampler.sample(german_splits, numpy_rng(d))[1] != german_splits.y_train for d in range(20)]
    )
    inside = flipped[:, region].mean()
    assert abs(inside - 0.3) <= 4 * np.sqrt(0.3 * 0.7 / flipped[:, region].size)
    assert not flipped[:, ~region].any()


def test_concept_drift_rotates_the_synthetic_boundary_exactly(drift):
    dataset = registry.get("dataset", "synthetic-drift")(n_samples=400)
    drifted = dataset.oracle(drift, drifted=True)
    coef, intercept = drift.concept(float(dataset.drift))
    np.testing.assert_allclose(coef, drifted.coef_, rtol=1e-9)
    assert intercept == pytest.approx(drifted.intercept_, rel=1e-9)
    coef0, intercept0 = drift.concept(0.0)
    np.testing.assert_allclose(coef0, drift.oracle.coef_, rtol=1e-9)
    assert intercept0 == pytest.approx(drift.oracle.intercept_, rel=1e-9)
    # labels drawn at severity = drift follow the drifted concept better than the base one
    _, y = shift("concept-drift", severity=float(dataset.drift)).sample(drift, numpy_rng(0))
    assert np.mean(y == drifted.predict(drift.X_train)) > np.mean(
        y == drift.oracle.predict(drift.X_train)
    )


def test_new_data_trains_on_the_training_split_plus_a_share_of_the_future(drift):
    X_future, _ = drift.future_split()
    n, n_future = len(drift.y_train), len(X_future)
    for severity in (0.0, 0.5, 1.0):
        recording = Recording()
        shift("new-data", severity=severity, n_models=2).updates(drift, recording, None, 0)
        for X, _, _ in recording.seen:
            assert len(X) == n + round(severity * n_future)
            np.testing.assert_array_equal(X[:n], drift.X_train)
            added = X[n:]
            assert len(np.unique(added, axis=0)) == len(added)  # without replacement
            assert np.isin(added[:, 0], X_future[:, 0]).all()


def test_natural_leaves_out_each_of_five_folds_of_the_future(drift):
    X_future, y_future = drift.future_split()
    recording = Recording()
    shifted = shift("natural")
    assert shifted.n_models == 5 and np.isnan(shifted.severity_value)
    shifted.updates(drift, recording, None, 7)
    rows = shifted.training_rows(y_future, 7)
    assert len(recording.seen) == 5
    left_out = [np.setdiff1d(np.arange(len(y_future)), r) for r in rows]
    np.testing.assert_array_equal(np.sort(np.concatenate(left_out)), np.arange(len(y_future)))
    for (X, y, _), r in zip(recording.seen, rows, strict=True):
        np.testing.assert_array_equal(X, X_future[r])
        np.testing.assert_array_equal(y, y_future[r])
        assert abs(y.mean() - y_future.mean()) < 0.02  # stratified folds
    more = shift("natural", n_models=7).training_rows(y_future, 7)
    assert len(more) == 7
    assert all(np.array_equal(a, b) for a, b in zip(more[:5], rows, strict=True))
    assert not np.array_equal(more[5], rows[0])  # a new fold split with a new seed


# ------------------------------------------------------------------ determinism and mutation
@pytest.mark.parametrize("name", sorted(SHIFTS))
def test_same_seed_same_models_distinct_draws_and_nothing_mutated(name, drift):
    fit = trainer()
    base = fit.fit(drift.X_train, drift.y_train, 0)
    before = base.predict_proba(drift.X_test)
    arrays = [drift.X_train, drift.y_train, drift.X_test, drift.y_test, *drift.future_split()]
    copies = [a.copy() for a in arrays]
    first = shift(name, n_models=3).updates(drift, fit, base, 11)
    second = shift(name, n_models=3).updates(drift, fit, base, 11)
    other = shift(name, n_models=3).updates(drift, fit, base, 12)
    probas = [m.predict_proba(drift.X_test) for m in first]
    assert len(first) == 3
    for p, m in zip(probas, second, strict=True):
        np.testing.assert_array_equal(p, m.predict_proba(drift.X_test))
    for i in range(3):
        for j in range(i + 1, 3):
            assert not np.array_equal(probas[i], probas[j])
    assert not np.array_equal(probas[0], other[0].predict_proba(drift.X_test))
    np.testing.assert_array_equal(base.predict_proba(drift.X_test), before)
    for array, copy in zip(arrays, copies, strict=True):
        np.testing.assert_array_equal(array, copy)


@pytest.mark.parametrize("model", sorted(TRAINERS))
@pytest.mark.parametrize("name", sorted(SHIFTS))
def test_every_shift_works_for_every_trainer(name, model, drift):
    fit = trainer(model)
    base = fit.fit(drift.X_train, drift.y_train, 0)
    models = shift(name, n_models=2).updates(drift, fit, base, 5)
    assert len(models) == 2
    for m in models:
        proba = m.predict_proba(drift.X_test)
        assert proba.shape == (len(drift.X_test), 2)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)


# ----------------------------------------------------------------- future splits and errors
@pytest.mark.parametrize("name", ["natural", "new-data"])
def test_future_shifts_skip_a_dataset_without_a_future_split(name, gaussians):
    assert not gaussians.has_future
    with pytest.raises(NotApplicable, match="no future split"):
        shift(name).updates(gaussians, trainer(), None, 0)


@needs_data
@pytest.mark.parametrize("name", ["natural", "new-data"])
def test_future_shifts_work_on_student(name, student_splits):
    X_future, _ = student_splits.future_split()
    recording = Recording()
    shift(name, n_models=2).updates(student_splits, recording, None, 0)
    n = len(student_splits.y_train)
    expected = n + round(0.5 * len(X_future)) if name == "new-data" else None
    for X, y, _ in recording.seen:
        assert X.shape[1] == student_splits.schema.n_features and len(y) == len(X)
        if expected is not None:
            assert len(X) == expected
        else:
            assert abs(len(X) - 0.8 * len(X_future)) <= 1
    models = shift(name, n_models=2).updates(student_splits, trainer("forest"), None, 0)
    assert [m.predict_proba(student_splits.X_test).shape for m in models] == [
        (len(student_splits.X_test), 2)
    ] * 2


@pytest.mark.parametrize("name", ["natural", "new-data"])
def test_a_missing_future_file_raises_its_data_error(name, drift):
    def missing():
        raise DataError("the future file is missing; put it in the data folder")

    deferred = replace(drift, future=None, future_source=missing)
    with pytest.raises(DataError, match="the future file is missing"):
        shift(name).updates(deferred, trainer(), None, 0)


@pytest.mark.parametrize(
    ("name", "params", "parameter"),
    [
        ("bootstrap", {"severity": 1.0}, "severity"),
        ("bootstrap", {"severity": -0.1}, "severity"),
        ("covariate", {"severity": 11.0}, "severity"),
        ("covariate", {"severity": "high"}, "severity"),
        ("covariate", {"feature": 3}, "feature"),
        ("label-shift", {"severity": 1.0}, "severity"),
        ("concept-drift", {"severity": 1.5}, "severity"),
        ("concept-drift", {"feature": ["x0"]}, "feature"),
        ("new-data", {"severity": -0.1}, "severity"),
        ("natural", {"n_models": 0}, "n_models"),
        ("label-shift", {"n_models": 2.5}, "n_models"),
    ],
)
def test_invalid_parameters_raise_a_config_error_naming_them(name, params, parameter):
    built = registry.get("shift", name)(**params)
    with pytest.raises(ConfigError, match=parameter):
        built.validate_params()


@pytest.mark.parametrize("name", ["covariate", "concept-drift"])
def test_an_unknown_feature_names_the_valid_ones(name, gaussians):
    with pytest.raises(ConfigError, match=r"feature 'age'.*valid features: x0, x1"):
        shift(name, feature="age").sample(gaussians, numpy_rng(0))


@pytest.mark.parametrize("name", ["covariate", "concept-drift"])
def test_no_default_feature_is_not_applicable(name, gaussians):
    frozen = replace(gaussians, schema=replace(gaussians.schema, immutable=(True, True)))
    with pytest.raises(NotApplicable, match="no mutable continuous or integer feature"):
        shift(name).sample(frozen, numpy_rng(0))
    X, _ = shift(name, feature="x0").sample(frozen, numpy_rng(0))  # a named one still works
    assert X.shape[1] == 2


def test_sweep_labels_keep_one_parameter_order():
    from recourse_bench import registry

    shift = registry.get("shift", "concept-drift")
    labels = [shift(severity=s, n_models=4).label for s in (0.1, 0.2, 0.4)]  # 0.2 is the default
    assert labels == [
        "concept-drift(severity=0.1, n_models=4)",
        "concept-drift(severity=0.2, n_models=4)",
        "concept-drift(severity=0.4, n_models=4)",
    ]
