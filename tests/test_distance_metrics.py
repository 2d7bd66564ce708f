"""The metrics of metrics/distance.py (sparsity, distance-l2, ynn) against naive loops."""

from __future__ import annotations

import doctest
import math
import sys

import numpy as np
import pytest

from recourse_bench import registry
from recourse_bench.api import EvalContext, Schema, Splits
from recourse_bench.metrics import distance
from recourse_bench.metrics.distance import distance_l2, sparsity, ynn
from recourse_bench.models import linear_classifier
from recourse_bench.testing import check_component, toy_problem

NAMES = ("sparsity", "distance-l2", "ynn")


@pytest.fixture(scope="module")
def toy_context():
    """Toy factuals with recourses that change features, categories, nothing, or are missing."""
    problem = toy_problem(0, "logreg")
    factuals = problem.factuals
    rng = np.random.default_rng(0)
    recourses = factuals.copy()
    recourses[:, 0] = np.clip(recourses[:, 0] + rng.choice([0.0, 0.3, 5e-7], len(factuals)), 0, 1)
    recourses[::3, 2] = np.round(np.clip(recourses[::3, 2] + 0.1, 0, 1), 1)
    switch = np.arange(len(factuals)) % 4 == 1
    recourses[np.ix_(switch, [4, 5, 6])] = recourses[np.ix_(switch, [5, 6, 4])]  # a new category
    recourses[-5:] = np.nan
    ctx = EvalContext.feasible_only(factuals, recourses, problem.model, problem.splits)
    assert ctx.found.sum() == len(factuals) - 5
    return ctx


def naive_sparsity(ctx):
    """Changed features per found recourse, one loop per row and feature."""
    schema = ctx.splits.schema
    features = [list(g) for g in schema.groups]
    grouped = {j for g in schema.groups for j in g}
    features += [[j] for j in range(schema.n_features) if j not in grouped]
    counts = []
    for x, r in zip(ctx.factuals, ctx.recourses, strict=True):
        if np.isnan(r).any():
            continue
        counts.append(sum(any(abs(r[j] - x[j]) > 1e-6 for j in f) for f in features))
    return sum(counts) / len(counts), len(counts)


def naive_l2(ctx):
    norms = [
        math.sqrt(sum((a - b) ** 2 for a, b in zip(x, r, strict=True)))
        for x, r in zip(ctx.factuals, ctx.recourses, strict=True)
        if not np.isnan(r).any()
    ]
    return sum(norms) / len(norms), len(norms)


def naive_ynn(ctx, y=5):
    """CARLA's loop: 1 - 1/(N y) sum over recourses and their y nearest rows of |1 - label|."""
    data = np.vstack([ctx.splits.X_train, ctx.splits.X_test])
    recourses = [r for r in ctx.recourses if not np.isnan(r).any()]
    different = 0
    for r in recourses:
        nearest = sorted(range(len(data)), key=lambda i: math.dist(r, data[i]))[:y]
        for i in nearest:
            different += abs(1 - int(ctx.model.predict(data[i : i + 1])[0]))
    return 1 - different / (len(recourses) * y), len(recourses)


def test_sparsity_matches_a_loop_and_counts_a_category_once(toy_context):
    value, n = naive_sparsity(toy_context)
    found = sparsity(toy_context)
    assert (found.value, found.n) == pytest.approx((value, n))
    assert 0 < found.value < 3
    # a change of category alone is one feature, not two columns
    x = toy_context.factuals[:1]
    r = x.copy()
    r[0, 4:7] = x[0, [5, 6, 4]]
    single = EvalContext(x, r, toy_context.model, toy_context.splits)
    assert sparsity(single).value == 1.0


def test_sparsity_ignores_changes_below_the_tolerance(toy_context):
    x = toy_context.factuals[:2]
    r = x.copy()
    r[0, 0] += 5e-7
    r[1, 0] += 2e-6
    counts = sparsity(EvalContext(x, r, toy_context.model, toy_context.splits))
    assert counts.value == 0.5


def test_distance_l2_matches_a_loop(toy_context):
    value, n = naive_l2(toy_context)
    found = distance_l2(toy_context)
    assert found.n == n
    assert found.value == pytest.approx(value, rel=1e-12)


@pytest.fixture(scope="module")
def twenty_points():
    """20 data rows (12 train, 8 test), a linear model and 6 recourses, one of them missing."""
    schema = Schema(
        ("a", "b"), ("continuous",) * 2, (False,) * 2, (0, 0), (0.0,) * 2, (1.0,) * 2, (0.0,) * 2
    )
    rng = np.random.default_rng(4)
    X = rng.uniform(size=(20, 2))
    splits = Splits(X[:12], np.zeros(12), X[12:], np.zeros(8), schema)
    model = linear_classifier(np.array([4.0, 2.0]), -3.0)
    recourses = rng.uniform(size=(6, 2))
    recourses[2] = np.nan
    return EvalContext(np.zeros((6, 2)), recourses, model, splits)


def test_ynn_matches_carlas_brute_force_loop(twenty_points):
    value, n = naive_ynn(twenty_points)
    found = ynn(twenty_points)
    assert found.n == n == 5
    assert found.value == pytest.approx(value, rel=1e-12)
    assert 0 < found.value < 1  # the example mixes labels


def test_ynn_on_the_toy_problem_matches_the_loop(toy_context):
    value, n = naive_ynn(toy_context)
    assert (ynn(toy_context).value, ynn(toy_context).n) == pytest.approx((value, n))


def test_ynn_searches_the_test_rows_too_as_carla_does():
    schema = Schema(("a",), ("continuous",), (False,), (0,), (0.0,), (1.0,), (0.0,))
    train = np.linspace(0.0, 0.1, 10)[:, None]  # far from the recourse, rejected
    test = np.full((5, 1), 0.9)  # on the recourse, accepted
    splits = Splits(train, np.zeros(10), test, np.ones(5), schema)
    model = linear_classifier(np.array([10.0]), -5.0)
    ctx = EvalContext(np.zeros((1, 1)), np.array([[0.9]]), model, splits)
    assert ynn(ctx).value == 1.0


@pytest.mark.parametrize("name", NAMES)
def test_no_recourse_found_gives_nan_with_n_zero(toy_context, name):
    empty = EvalContext(
        toy_context.factuals,
        np.full_like(toy_context.factuals, np.nan),
        toy_context.model,
        toy_context.splits,
    )
    value = registry.get("metric", name)(empty)
    assert math.isnan(value.value) and value.n == 0


def test_an_infeasible_recourse_counts_as_not_found(toy_context):
    factuals = toy_context.factuals[:2]
    returned = factuals.copy()
    returned[:, 0] = np.clip(returned[:, 0] + 0.2, 0, 1)
    returned[1, 3] = 1 - returned[1, 3]  # an immutable feature changed
    ctx = EvalContext.feasible_only(factuals, returned, toy_context.model, toy_context.splits)
    for name in NAMES:
        assert registry.get("metric", name)(ctx).n == 1


@pytest.mark.parametrize("name", NAMES)
def test_metric_passes_the_metric_kit(name):
    check_component(registry.get("metric", name))


@pytest.mark.parametrize("name", NAMES)
def test_registered_with_metadata_and_runnable_examples(name):
    metric = registry.get("metric", name)
    assert metric.stage == "static"
    assert metric.higher_is_better == (name == "ynn")
    assert metric.func.__module__ == distance.__name__
    globs = dict(vars(sys.modules[metric.func.__module__]))
    for test in doctest.DocTestFinder().find(metric.func, name, globs=globs):
        assert doctest.DocTestRunner().run(test).failed == 0


# ----------------------------------------------------------------------------------- diversity
def naive_diversity(factuals, sets, model):
    """Per factual: the mean L1 distance over pairs of accepted members; mean over factuals."""
    per_row = []
    for members in sets:
        kept = [m for m in members if not np.isnan(m).any() and model.predict(m[None])[0] == 1]
        pairs = [(a, b) for i, a in enumerate(kept) for b in kept[i + 1 :]]
        if pairs:
            per_row.append(sum(np.abs(a - b).sum() for a, b in pairs) / len(pairs))
    return (sum(per_row) / len(per_row) if per_row else math.nan), len(per_row)


def test_diversity_matches_a_loop_over_pairs():
    rng = np.random.default_rng(1)
    factuals = rng.uniform(size=(12, 3))
    sets = rng.uniform(size=(12, 4, 3))
    sets[rng.uniform(size=(12, 4)) < 0.3] = np.nan  # members the method does not offer
    model = linear_classifier(np.array([1.0, 1.0, 0.0]), -0.8)  # rejects some members too
    ctx = EvalContext(factuals, sets[:, 0], model, None, sets=sets)
    value, n = naive_diversity(factuals, sets, model)
    got = distance.diversity(ctx)
    assert got.n == n and 0 < n < 12
    assert got.value == pytest.approx(value)


def test_diversity_drops_infeasible_members_and_needs_two():
    problem = toy_problem(0, "logreg")
    X = problem.factuals[:2]
    sets = np.repeat(X[:, None, :], 3, axis=1)
    sets[:, 1, 0] = np.clip(X[:, 0] + 0.5, 0, 1)
    sets[:, 2, 3] = 1 - X[:, 3]  # changes the immutable "fixed": infeasible
    accept_all = linear_classifier(np.zeros(X.shape[1]), 5.0)
    ctx = EvalContext.feasible_only(X, X, accept_all, problem.splits, sets=sets)
    assert np.isnan(ctx.sets[:, 2]).all()
    got = distance.diversity(ctx)
    assert got.n == 2
    assert got.value == pytest.approx(np.abs(sets[:, 1, 0] - X[:, 0]).mean())
    alone = EvalContext(X, X, accept_all, problem.splits, sets=sets[:, :1])
    assert math.isnan(distance.diversity(alone).value) and distance.diversity(alone).n == 0


def test_diversity_is_skipped_for_a_method_with_one_recourse(toy_context):
    from recourse_bench.api import NotApplicable

    with pytest.raises(NotApplicable, match="several counterfactuals per factual"):
        distance.diversity(toy_context)


def test_recourse_sets_contract():
    from recourse_bench.api import ContractError, check_recourse_sets

    X = np.zeros((3, 2))
    assert check_recourse_sets(None, X) is None
    assert check_recourse_sets(np.zeros((3, 2, 2)), X).shape == (3, 2, 2)
    for bad, message in [
        ([[[0.0, 0.0]]], "float array"),
        (np.zeros((3, 2), dtype=float), r"shape \(3, k, 2\)"),
        (np.zeros((2, 2, 2)), r"shape \(3, k, 2\)"),
        (np.array([[[0.0, np.nan]]] * 3), "all finite or all NaN"),
    ]:
        with pytest.raises(ContractError, match=message):
            check_recourse_sets(bad, X)


def test_a_run_scores_dices_sets_and_skips_single_recourse_methods(tmp_path, run_cli, write_config):
    from recourse_bench.store import read_results

    config = {
        "name": "diverse",
        "seeds": 1,
        "n_factuals": 8,
        "datasets": [{"name": "synthetic-gaussians", "params": {"n_samples": 300}}],
        "models": ["logreg"],
        "methods": [
            {"name": "dice", "params": {"k": 3, "min_iter": 100, "max_iter": 300}},
            "wachter",
        ],
        "shifts": [{"name": "retrain-seed", "params": {"n_models": 1}}],
        "metrics": ["validity", "diversity"],
    }
    code, _, err = run_cli("run", write_config(config), "--out", tmp_path / "run", "-q")
    assert code == 0, err
    rows = read_results(tmp_path / "run")
    rows = rows[rows["metric"] == "diversity"]
    dice = rows[rows["method"] == "dice"].iloc[0]
    assert dice["status"] == "ok" and dice["value"] > 0 and dice["n"] > 0
    wachter = rows[rows["method"] == "wachter"].iloc[0]
    assert wachter["status"] == "skipped" and "several counterfactuals" in wachter["reason"]
