import doctest
import sys

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


# ------------------------------------------------------------ oracle-validity and plausibility-lof
def naive_oracle_validity(factuals, recourses, oracle):
    """One factual at a time: a recourse counts if it exists and the oracle accepts it."""
    accepted = [
        not np.isnan(row).any() and int(oracle.predict(row[None, :])[0]) == 1 for row in recourses
    ]
    return sum(accepted) / len(factuals)


def naive_lof_inliers(reference, queries, k=5, threshold=1.5):
    """Breunig et al.'s local outlier factor, written out; inlier where LOF <= 1.5.

    1.5 is scikit-learn's threshold for ``contamination="auto"``; a zero mean reachability
    distance gets 1e-10 added, as in scikit-learn.
    """
    reference = np.asarray(reference, dtype=float)

    def neighbours(point, exclude=None):
        distances = np.sqrt(((reference - point) ** 2).sum(axis=1))
        if exclude is not None:
            distances[exclude] = np.inf
        order = np.argsort(distances, kind="stable")[:k]
        return order, distances[order]

    k_distance = np.array([neighbours(o, exclude=i)[1][-1] for i, o in enumerate(reference)])

    def lrd(point, exclude=None):
        order, distances = neighbours(point, exclude)
        reach = np.maximum(distances, k_distance[order])
        return 1.0 / (reach.mean() + 1e-10), order

    density = np.array([lrd(o, exclude=i)[0] for i, o in enumerate(reference)])
    inliers = []
    for q in queries:
        own, order = lrd(q)
        inliers.append(density[order].mean() / own <= threshold)
    return np.array(inliers)


@pytest.fixture
def oracle_context(context):
    """Recourses near the data, one far away and one not found; the Gaussians' Bayes oracle."""
    recourses = np.array([[0.6, 0.6], [0.3, 0.8], [np.nan, np.nan], [3.0, 3.0], [0.9, 0.1]])
    factuals = np.zeros_like(recourses)
    return EvalContext(factuals, recourses, context.model, context.splits)


def test_oracle_validity_matches_a_naive_loop(oracle_context):
    splits = oracle_context.splits
    assert splits.oracle is not None
    result = metric("oracle-validity")(oracle_context)
    expected = naive_oracle_validity(
        oracle_context.factuals, oracle_context.recourses, splits.oracle
    )
    assert (result.value, result.n) == (pytest.approx(expected), 5)
    # the oracle, not the model, decides
    always = EvalContext(**{**vars(oracle_context), "model": linear_classifier(np.zeros(2), 1e6)})
    assert metric("oracle-validity")(always) == result


def test_oracle_validity_without_oracle_does_not_apply(oracle_context):
    from dataclasses import replace

    from recourse_bench.api import NotApplicable

    no_oracle = replace(oracle_context.splits, oracle=None)
    with pytest.raises(NotApplicable, match="has no oracle; use labels: gold"):
        metric("oracle-validity")(EvalContext(**{**vars(oracle_context), "splits": no_oracle}))


def test_plausibility_lof_matches_a_naive_lof_on_oracle_accepted_points(oracle_context):
    splits = oracle_context.splits
    reference = splits.X_train[splits.oracle.predict(splits.X_train) == 1]
    found = oracle_context.found
    inliers = naive_lof_inliers(reference, oracle_context.recourses[found])
    assert not inliers[2]  # the far point
    result = metric("plausibility-lof")(oracle_context)
    assert (result.value, result.n) == (pytest.approx(inliers.mean()), 4)


def test_plausibility_lof_without_oracle_uses_the_favourable_training_points(oracle_context):
    from dataclasses import replace

    splits = replace(oracle_context.splits, oracle=None)
    reference = splits.X_train[splits.y_train == 1]
    queries = oracle_context.recourses[oracle_context.found]
    expected = naive_lof_inliers(reference, queries).mean()
    result = metric("plausibility-lof")(EvalContext(**{**vars(oracle_context), "splits": splits}))
    assert (result.value, result.n) == (pytest.approx(expected), 4)


def test_plausibility_lof_is_nan_without_recourse(oracle_context):
    nothing = np.full_like(oracle_context.recourses, np.nan)
    result = metric("plausibility-lof")(
        EvalContext(**{**vars(oracle_context), "recourses": nothing})
    )
    assert np.isnan(result.value) and result.n == 0


def test_genre_score_is_gold_validity_plus_lof_minus_cost_per_column(oracle_context):
    """The GenRe paper's score, from the naive oracle validity, naive LOF and a direct cost."""
    splits = oracle_context.splits
    factuals, recourses = oracle_context.factuals, oracle_context.recourses
    found = oracle_context.found
    validity = naive_oracle_validity(factuals, recourses, splits.oracle)
    reference = splits.X_train[splits.oracle.predict(splits.X_train) == 1]
    lof = naive_lof_inliers(reference, recourses[found]).mean()
    cost = np.abs(recourses[found] - factuals[found]).sum(axis=1).mean()
    result = metric("genre-score")(oracle_context)
    assert result.value == pytest.approx(validity + lof - cost / 2)
    assert result.n == 5
    nothing = EvalContext(**{**vars(oracle_context), "recourses": np.full_like(recourses, np.nan)})
    assert np.isnan(metric("genre-score")(nothing).value)


def test_plausibility_lof_subsamples_a_large_reference_deterministically(monkeypatch, context):
    from recourse_bench.metrics import oracle

    full = oracle.lof_reference(context.splits)
    monkeypatch.setattr(oracle, "LOF_MAX_REFERENCE", 20)
    sample = oracle.lof_reference(context.splits)
    assert sample.shape == (20, full.shape[1])
    np.testing.assert_array_equal(sample, oracle.lof_reference(context.splits))
    rows = {tuple(row) for row in full}
    assert all(tuple(row) in rows for row in sample)
    assert len({tuple(row) for row in sample}) == 20  # without replacement


def test_oracle_metrics_declare_their_metadata():
    for name in ("oracle-validity", "plausibility-lof"):
        m = metric(name)
        assert (m.stage, m.higher_is_better, m.bounds) == ("static", True, (0.0, 1.0))


def test_the_lof_is_fitted_once_per_training_data(oracle_context):
    from dataclasses import replace

    from recourse_bench.metrics.oracle import fitted_lof

    splits = oracle_context.splits
    assert fitted_lof(splits) is fitted_lof(replace(splits))  # same data, another object
    other = replace(splits, X_train=splits.X_train[::-1].copy())
    assert fitted_lof(other) is not fitted_lof(splits)


def test_the_lof_cache_tells_two_oracles_on_the_same_data_apart(oracle_context):
    from dataclasses import replace

    from recourse_bench.metrics.oracle import fitted_lof
    from recourse_bench.models import linear_classifier

    splits = oracle_context.splits
    other = replace(splits, oracle=linear_classifier(np.array([-1.0, 0.0]), 0.5))
    assert fitted_lof(other) is not fitted_lof(splits)
    assert fitted_lof(other) is fitted_lof(replace(other))


@pytest.mark.parametrize("name", registry.available("metric"))
def test_metric_docstring_examples_run(name):
    """The examples in each metric's docstring (doctest cannot find them on a Metric object)."""
    func = registry.get("metric", name).func
    globs = dict(vars(sys.modules[func.__module__]))
    for test in doctest.DocTestFinder().find(func, name, globs=globs):
        assert doctest.DocTestRunner().run(test).failed == 0
