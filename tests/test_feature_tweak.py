"""FeatureTweak: a tree by hand, brute force over every positive path, and the kit."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.tree import DecisionTreeClassifier

from recourse_bench.api import NotApplicable, Schema, Splits
from recourse_bench.methods.feature_tweak import FeatureTweak
from recourse_bench.models._sklearn import SklearnClassifier
from recourse_bench.testing import parametrize_with_checks, toy_problem, toy_splits


# ---------------------------------------------------------------------------- a tree by hand
def line(direction=0, immutable=False, upper=1.0) -> Splits:
    """One feature; a tree grown on 0.1, 0.4, 0.6, 0.9 labelled 0, 1, 0, 1."""
    schema = Schema(
        features=("a",),
        kinds=("continuous",),
        immutable=(immutable,),
        direction=(direction,),
        lower=(0.0,),
        upper=(upper,),
        steps=(0.0,),
    )
    X = np.array([[0.1], [0.4], [0.6], [0.9]])
    return Splits(X, np.array([0, 1, 0, 1]), X, np.array([0, 1, 0, 1]), schema)


def line_tree(splits):
    tree = DecisionTreeClassifier(random_state=0).fit(
        splits.X_train.astype(np.float32), splits.y_train
    )
    return SklearnClassifier(tree)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        # leaves (-inf, .25] 0, (.25, .5] 1, (.5, .75] 0, (.75, inf) 1; x = 0.62, epsilon 0.05:
        # down to 0.5 - 0.05 = 0.45 (cost 0.17) beats up to 0.75 + 0.05 = 0.80 (cost 0.18)
        ({}, 0.45),
        ({"direction": 1}, 0.80),  # may only increase
        ({"upper": 0.78}, 0.78),  # 0.80 clipped to the bound, still > 0.75: cost 0.16
        ({"immutable": True}, np.nan),
    ],
)
def test_a_single_tree_by_hand(kwargs, expected):
    splits = line(**kwargs)
    method = FeatureTweak(epsilon=0.05).fit(line_tree(splits), splits)
    got = method.generate(np.array([[0.62]]))
    np.testing.assert_allclose(got, [[expected]], atol=1e-6)


def test_an_interval_narrower_than_two_epsilons_goes_to_its_middle():
    splits = line()
    method = FeatureTweak(epsilon=0.2).fit(line_tree(splits), splits)
    # (.25, .5] is 0.25 wide: from 0.62 its tweak is the midpoint 0.375 (cost 0.245), cheaper
    # than 0.75 + 0.2 = 0.95 (cost 0.33)
    np.testing.assert_allclose(method.generate(np.array([[0.62]])), [[0.375]], atol=1e-6)


# ------------------------------------------------------------------------ brute force
def positive_boxes(tree, d):
    """(lo, hi) of every positive leaf, by recursion over the tree."""
    t, boxes = tree.tree_, []

    def walk(node, lo, hi):
        if t.children_left[node] < 0:
            if t.value[node, 0, 1] > t.value[node, 0, 0]:
                boxes.append((lo, hi))
            return
        f, cut = t.feature[node], t.threshold[node]
        walk(t.children_left[node], lo, np.where(np.arange(d) == f, np.minimum(hi, cut), hi))
        walk(t.children_right[node], np.where(np.arange(d) == f, np.maximum(lo, cut), lo), hi)

    walk(0, np.full(d, -np.inf), np.full(d, np.inf))
    return boxes


def inside(value, lo, hi):
    return lo < np.float32(value) <= hi  # the trees compare float32 values


def brute_tweak(x, lo, hi, schema, eps):
    """The epsilon-satisfactory tweak of x into the box, feature by feature; None if infeasible."""
    out = x.copy()
    grouped = {c for g in schema.groups for c in g}
    for f in range(len(x)):
        if f in grouped or inside(x[f], lo[f], hi[f]):
            continue
        rising = np.float32(x[f]) <= lo[f]
        if schema.immutable[f] or schema.direction[f] == (-1 if rising else 1):
            return None
        middle = (lo[f] + hi[f]) / 2
        want = min(lo[f] + eps, middle) if rising else max(hi[f] - eps, middle)
        if schema.steps[f] > 0:  # the grid point nearest `want` inside the interval
            n = round((schema.upper[f] - schema.lower[f]) / schema.steps[f])
            grid = [schema.lower[f] + i * schema.steps[f] for i in range(n + 1)]
            grid = [g for g in grid if inside(g, lo[f], hi[f])]
            if not grid:
                return None
            want = min(grid, key=lambda g: (abs(g - want), g))
        want = min(max(want, schema.lower[f]), schema.upper[f])
        if not inside(want, lo[f], hi[f]):
            return None
        out[f] = want
    for group in schema.groups:
        cols = list(group)
        levels = [c for c in cols if all(inside(float(k == c), lo[k], hi[k]) for k in cols)]
        if cols[int(np.argmax(x[cols]))] in levels:
            continue
        if not levels or any(schema.immutable[k] for k in cols):
            return None
        out[cols] = 0.0
        out[levels[0]] = 1.0
    return out


def brute_force(model, schema, factuals, eps, cost):
    boxes = [box for tree in model.trees for box in positive_boxes(tree, schema.n_features)]
    out = np.full_like(factuals, np.nan)
    for row, x in enumerate(factuals):
        best = np.inf
        for lo, hi in boxes:
            tweak = brute_tweak(x, lo, hi, schema, eps)
            if tweak is None or model.predict(tweak[None])[0] != 1:
                continue
            c = np.abs(tweak - x).sum() if cost == "l1" else np.sqrt(((tweak - x) ** 2).sum())
            if c < best - 1e-12:
                best, out[row] = c, tweak
    return out


def toy_forest(seed, n_estimators, max_depth):
    splits = toy_splits(seed)
    forest = RandomForestClassifier(
        n_estimators=n_estimators, max_depth=max_depth, random_state=seed
    )
    model = SklearnClassifier(forest.fit(splits.X_train.astype(np.float32), splits.y_train))
    factuals = splits.X_test[model.predict(splits.X_test) == 0][:15]
    return splits, model, factuals


def costs_of(out, factuals, cost):
    delta = out - factuals
    return np.abs(delta).sum(axis=1) if cost == "l1" else np.sqrt((delta**2).sum(axis=1))


@pytest.mark.parametrize("cost", ["l2", "l1"])
@pytest.mark.parametrize(
    ("n_estimators", "max_depth", "epsilon"),
    [(1, 5, 0.05), (3, 2, 0.1), (5, 6, 0.02)],
    ids=["single-tree", "3-stumps", "5-trees"],
)
def test_the_cheapest_accepted_tweak_equals_brute_force(n_estimators, max_depth, epsilon, cost):
    # the toy schema has an immutable feature and one-hot group, a decrease-only feature and an
    # integer grid, so every rule of the tweak is exercised
    splits, model, factuals = toy_forest(1, n_estimators, max_depth)
    method = FeatureTweak(epsilon=epsilon, cost=cost).fit(model, splits)
    got = method.generate(factuals)
    expected = brute_force(model, splits.schema, factuals, epsilon, cost)
    found = ~np.isnan(expected).any(axis=1)
    assert found.sum() >= 5
    np.testing.assert_array_equal(np.isnan(got).any(axis=1), ~found)
    np.testing.assert_allclose(
        costs_of(got, factuals, cost)[found], costs_of(expected, factuals, cost)[found], atol=1e-9
    )


def test_path_costs_are_the_costs_of_the_tweaks():
    splits, model, factuals = toy_forest(2, 4, 5)
    method = FeatureTweak(epsilon=0.05).fit(model, splits)
    leaves, costs = method.path_costs(factuals)
    assert len(leaves) == method.n_positive_paths_
    leaf, row = np.nonzero(np.isfinite(costs))
    assert len(leaf) > 50
    tweaks = method.tweak(factuals[row], leaves[leaf])
    np.testing.assert_allclose(
        costs[leaf, row], ((tweaks - factuals[row]) ** 2).sum(axis=1), atol=1e-12
    )
    assert not splits.schema.violations(tweaks, factuals[row]).any()
    copy = pickle.loads(pickle.dumps(method))  # the trees are read again after unpickling
    np.testing.assert_array_equal(copy.path_costs(factuals)[1], costs)


def test_only_tree_models_are_accepted():
    method = FeatureTweak()
    for name in ("logreg", "mlp"):
        problem = toy_problem(0, name)
        assert "tree" in method.skip_reason(problem.model)
        with pytest.raises(NotApplicable, match="tree"):
            method.fit(problem.model, problem.splits)
    assert method.skip_reason(toy_problem(0, "forest").model) is None


@parametrize_with_checks([FeatureTweak(), FeatureTweak(epsilon=0.01, cost="l1")])
def test_feature_tweak_passes_the_method_kit(method, check):
    check(method)
