import doctest
import pickle

import numpy as np
import pytest
from sklearn.utils.class_weight import compute_sample_weight

from recourse_bench import load_config, registry, run_benchmark
from recourse_bench.api import ConfigError, DataError
from recourse_bench.datasets import _gold
from recourse_bench.datasets._encoding import encode_splits
from recourse_bench.datasets._gold import GoldLabeller, fit_gold_labeller, gold_labels
from recourse_bench.datasets._tabular import TabularDataset
from recourse_bench.metrics import oracle

from .conftest import data_available


def german(**params):
    return registry.get("dataset", "german")(**params)


@pytest.fixture(scope="module")
def german_all():
    """German's 1,000 rows in model space with their observed labels."""
    splits = german().load(0)
    X = np.concatenate([splits.X_train, splits.X_test])
    return X, np.concatenate([splits.y_train, splits.y_test])


@pytest.fixture(scope="module")
def labeller(german_all):
    return fit_gold_labeller(*german_all, seed=0)


@pytest.fixture(scope="module")
def observed_and_gold():
    return german().load(5), german(labels="gold").load(5)


def logistic_problem(n, seed):
    """Uniform features and labels from a known probability p(x) = sigmoid(8 (x0 - 0.5))."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, 3))
    p = 1 / (1 + np.exp(-8 * (X[:, 0] - 0.5)))
    return X, (rng.random(n) < p).astype(int), p


# ---------------------------------------------------------------------------------- the labeller
def test_mean_probability_is_the_base_rate_on_its_training_data(german_all, labeller):
    X, y = german_all
    assert labeller.predict_proba(X)[:, 1].mean() == pytest.approx(y.mean(), abs=0.03)


def test_probabilities_are_close_to_a_known_truth_on_new_data():
    X, y, _ = logistic_problem(3000, seed=1)
    fresh, _, truth = logistic_problem(3000, seed=2)
    p = fit_gold_labeller(X, y, seed=0).predict_proba(fresh)[:, 1]
    assert np.abs(p - truth).mean() < 0.1
    assert p.mean() == pytest.approx(truth.mean(), abs=0.03)


def test_balanced_calibration_assumes_a_balanced_prior(german_all):
    X, y = german_all
    p = fit_gold_labeller(X, y, seed=0, balanced_calibration=True).predict_proba(X)[:, 1]
    assert np.average(p, weights=compute_sample_weight("balanced", y)) == pytest.approx(
        0.5, abs=0.05
    )
    assert p.mean() < y.mean() - 0.05  # German's favourable class is the majority


def test_labeller_is_a_deterministic_classifier_for_a_seed(german_all, labeller):
    X, y = german_all
    again = fit_gold_labeller(X, y, seed=0)
    np.testing.assert_array_equal(labeller.predict_proba(X), again.predict_proba(X))
    other = fit_gold_labeller(X, y, seed=1)
    assert not np.array_equal(labeller.predict_proba(X), other.predict_proba(X))
    proba = labeller.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(labeller.predict(X), (proba[:, 1] >= 0.5).astype(int))
    assert not labeller.differentiable and not labeller.linear


def test_labeller_survives_pickling(german_all, labeller):
    X, _ = german_all
    copy = pickle.loads(pickle.dumps(labeller))
    assert isinstance(copy, GoldLabeller)
    np.testing.assert_array_equal(copy.predict_proba(X), labeller.predict_proba(X))


def test_labeller_needs_both_classes():
    X = np.random.default_rng(0).random((50, 2))
    with pytest.raises(DataError, match="labels 0 and 1"):
        fit_gold_labeller(X, np.ones(50, dtype=int), seed=0)
    with pytest.raises(DataError, match="at least 3 rows each"):
        fit_gold_labeller(X, np.r_[np.ones(48, dtype=int), 0, 0], seed=0)


class ConstantProbability:
    differentiable = linear = False

    def __init__(self, p):
        self.p = p

    def predict_proba(self, X):
        return np.column_stack([1 - np.full(len(X), self.p), np.full(len(X), self.p)])


def test_gold_labels_are_bernoulli_draws_of_the_probability():
    X = np.zeros((20_000, 1))
    draws = gold_labels(ConstantProbability(0.3), X, np.random.default_rng(0))
    assert set(np.unique(draws)) == {0, 1}
    assert draws.mean() == pytest.approx(0.3, abs=0.015)
    again = gold_labels(ConstantProbability(0.3), X, np.random.default_rng(0))
    np.testing.assert_array_equal(draws, again)
    assert gold_labels(ConstantProbability(0.0), X[:100], np.random.default_rng(1)).sum() == 0
    assert gold_labels(ConstantProbability(1.0), X[:100], np.random.default_rng(1)).all()


# ------------------------------------------------------------------------------- labels: gold
def test_gold_labels_keep_features_split_and_schema(observed_and_gold):
    observed, gold = observed_and_gold
    np.testing.assert_array_equal(gold.X_train, observed.X_train)
    np.testing.assert_array_equal(gold.X_test, observed.X_test)
    assert gold.schema == observed.schema
    assert gold.name == observed.name == "german"
    for y_gold, y_observed in ((gold.y_train, observed.y_train), (gold.y_test, observed.y_test)):
        assert y_gold.shape == y_observed.shape
        assert set(np.unique(y_gold)) == {0, 1}
        assert 0.6 < (y_gold == y_observed).mean() < 0.95  # redrawn, yet related
    assert gold.y_train.mean() == pytest.approx(0.7, abs=0.05)


def test_gold_labels_set_the_oracle_they_were_drawn_from(observed_and_gold):
    observed, gold = observed_and_gold
    assert observed.oracle is None
    assert isinstance(gold.oracle, GoldLabeller)
    p = gold.oracle.predict_proba(gold.X_train)[:, 1]
    # the drawn labels follow the oracle: rows it is sure about have its label
    assert (gold.y_train[p > 0.95] == 1).mean() > 0.9
    assert (gold.y_train[p < 0.05] == 0).mean() > 0.9


def test_gold_labels_are_deterministic_per_dataset_and_seed(observed_and_gold):
    _, gold = observed_and_gold
    again = german(labels="gold").load(5)
    np.testing.assert_array_equal(again.y_train, gold.y_train)
    np.testing.assert_array_equal(again.y_test, gold.y_test)
    np.testing.assert_array_equal(
        again.oracle.predict_proba(gold.X_test), gold.oracle.predict_proba(gold.X_test)
    )
    other = german(labels="gold").load(6)
    assert not np.array_equal(
        other.oracle.predict_proba(gold.X_test), gold.oracle.predict_proba(gold.X_test)
    )


@pytest.mark.skipif(
    not data_available(), reason="reference data folder absent (set RECOURSE_BENCH_DATA)"
)
def test_gold_labels_leave_the_future_split_observed(observed_and_gold):
    observed, gold = observed_and_gold
    X_observed, y_observed = observed.future_split()
    X_gold, y_gold = gold.future_split()
    np.testing.assert_array_equal(X_gold, X_observed)
    np.testing.assert_array_equal(y_gold, y_observed)


def test_default_labels_are_the_data_as_before(observed_and_gold):
    observed, _ = observed_and_gold
    dataset = german()
    assert dataset.labels == "observed"
    features, target = dataset.frame("base")
    before = encode_splits(features, target, dataset.columns(), 5, 0.3, "german")
    for part in ("X_train", "y_train", "X_test", "y_test"):
        np.testing.assert_array_equal(getattr(observed, part), getattr(before, part))
    explicit = german(labels="observed").load(5)
    np.testing.assert_array_equal(explicit.y_train, observed.y_train)


def test_default_labels_leave_specs_unchanged():
    def datasets(*entries):
        config = {"name": "specs", "models": ["logreg"], "methods": ["nearest-neighbour"]}
        return load_config({**config, "shifts": ["retrain-seed"], "datasets": list(entries)})

    explicit = datasets({"name": "german", "params": {"labels": "observed"}}).datasets
    assert explicit == datasets("german").datasets  # the default is dropped: same seeds, cache
    assert explicit[0].params == ()
    with pytest.raises(ConfigError, match="listed twice"):
        datasets("german", {"name": "german", "params": {"labels": "observed"}})
    gold = datasets({"name": "german", "params": {"labels": "gold"}}).datasets[0]
    assert gold.params == (("labels", "gold"),)
    assert gold.label == "german(labels='gold')"


def test_unknown_labels_are_refused_with_the_choices():
    with pytest.raises(ConfigError, match="labels must be one of observed, gold, got 'golden'"):
        german(labels="golden").load(0)
    with pytest.raises(ConfigError, match="labels must be one of observed, gold"):
        load_config(
            {
                "name": "bad",
                "datasets": [{"name": "german", "params": {"labels": "golden"}}],
                "models": ["logreg"],
                "methods": ["nearest-neighbour"],
                "shifts": ["retrain-seed"],
            }
        )


def test_every_real_dataset_offers_gold_labels():
    real = [
        name
        for name in registry.available("dataset")
        if issubclass(registry.get("dataset", name), TabularDataset)
    ]
    assert {"german", "adult", "compas", "heloc"} <= set(real)
    for name in real:
        assert registry.get("dataset", name).param_defaults()["labels"] == "observed", name


# ------------------------------------------------------------------------------------ the run
def test_gold_labels_run_end_to_end_with_both_metrics(tmp_path):
    config = load_config(
        {
            "name": "gold",
            "seeds": 1,
            "n_factuals": 20,
            "datasets": ["german", {"name": "german", "params": {"labels": "gold"}}],
            "models": [{"name": "logreg", "params": {"epochs": 20}}],
            "methods": ["nearest-neighbour"],
            "shifts": [{"name": "retrain-seed", "params": {"n_models": 1}}],
            "metrics": ["coverage", "validity", "oracle-validity", "plausibility-lof"],
        }
    )
    frame = run_benchmark(config, tmp_path / "run", progress=False).results
    no_oracle = (frame["dataset_params"] == "{}") & (frame["metric"] == "oracle-validity")
    assert (frame.loc[~no_oracle, "status"] == "ok").all()
    gold = frame[frame["dataset_params"] == '{"labels": "gold"}'].set_index("metric")
    observed = frame[frame["dataset_params"] == "{}"].set_index("metric")
    factuals = gold.loc["coverage", "n"]
    found = round(gold.loc["coverage", "value"] * factuals)
    assert 0 <= gold.loc["oracle-validity", "value"] <= 1
    assert gold.loc["oracle-validity", "n"] == factuals
    assert 0 <= gold.loc["plausibility-lof", "value"] <= 1
    assert gold.loc["plausibility-lof", "n"] == found > 0
    assert 0 <= observed.loc["plausibility-lof", "value"] <= 1
    # without an oracle, oracle-validity is a skipped row that says what to do; the rest is ok
    assert observed.loc["oracle-validity", "status"] == "skipped"
    assert "use labels: gold" in observed.loc["oracle-validity", "reason"]
    assert np.isnan(observed.loc["oracle-validity", "value"])


def test_oracle_validity_example_runs():
    parser = doctest.DocTestParser()
    test = parser.get_doctest(
        oracle.oracle_validity.func.__doc__, vars(oracle).copy(), "oracle-validity", None, 0
    )
    assert doctest.DocTestRunner().run(test).failed == 0


def test_the_documented_defaults_are_the_code_defaults():
    assert (_gold.N_ESTIMATORS, _gold.MIN_SAMPLES_LEAF, _gold.N_FOLDS) == (50, 5, 3)
    for value in ("n_estimators        50", "min_samples_leaf    5", "n_folds             3"):
        assert value in _gold.__doc__
