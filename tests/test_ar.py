"""Actionable Recourse: the integer program's optimum equals brute force over the action grid.

The oracles enumerate every point of the grid (wrong-direction moves included), keep those the
schema allows and the linear model accepts, and compute each cost with their own percentile
tables (scipy's ``gaussian_kde``); the method must find an action of the least cost, by
enumeration of its reduced program or by HiGHS.
"""

import itertools

import numpy as np
import pytest
from scipy.stats import gaussian_kde

import recourse_bench.methods.ar as ar
from recourse_bench.api import ConfigError, NotApplicable, Schema, Splits
from recourse_bench.methods.ar import ActionableRecourse, column_grid, percentile_table
from recourse_bench.models import linear_classifier
from recourse_bench.testing import check_method, toy_problem

from .conftest import assert_recourse_contract

# ----------------------------------------------------------------------------- a small problem
#: c: continuous; n: integer (step 0.25) that may only increase; d: continuous that may only
#: decrease; f: immutable; g: a one-hot group of three levels.
SCHEMA = Schema(
    features=("c", "n", "d", "f", "g=a", "g=b", "g=c"),
    kinds=("continuous", "integer", "continuous", "continuous", *["categorical"] * 3),
    immutable=(False, False, False, True, False, False, False),
    direction=(0, 1, -1, 0, 0, 0, 0),
    lower=(0.0,) * 7,
    upper=(1.0,) * 7,
    steps=(0.0, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0),
    groups=((4, 5, 6),),
)
GRID = np.linspace(0.0, 1.0, 5)  # every column's grid with grid_size=4 and the schema's bounds


def draw(rng, n):
    X = np.empty((n, 7))
    X[:, 0] = rng.beta(2, 5, n)
    X[:, 1] = rng.integers(0, 5, n) / 4
    X[:, 2] = rng.beta(5, 2, n)
    X[:, 3] = rng.uniform(size=n)
    X[:, 4:] = np.eye(3)[rng.choice(3, n, p=[0.6, 0.3, 0.1])]
    return X


def small_problem(seed):
    rng = np.random.default_rng(seed)
    X_train, X_test = draw(rng, 300), draw(rng, 200)
    coef = np.array([2.0, 1.5, -2.5, 1.0, -1.0, 0.5, 2.0]) * rng.uniform(0.5, 1.5, 7)
    model = linear_classifier(coef, -2.0)
    y = np.zeros(300, dtype=int)
    y[:150] = 1
    splits = Splits(X_train, y, X_test, np.zeros(200, dtype=int), SCHEMA, name="small")
    factuals = X_test[model.predict(X_test) == 0][:12]
    return splits, model, coef, factuals


def percentile_tables(X_train):
    """The authors' percentiles: scipy's KDE on the grid, cumulated, 1e-6 buffers."""
    tables = []
    for j in range(7):
        grid = np.array([0.0, 1.0]) if j >= 4 else GRID
        density = gaussian_kde(X_train[:, j])(grid)
        cumulative = np.cumsum(density)
        tables.append((grid, (1e-6 + cumulative) / (cumulative[-1] + 2e-6)))
    return tables


def column_costs(cost, X_new, x, tables):
    """Per column, the cost of moving from ``x`` to each row of ``X_new``."""
    if cost == "l1":
        return np.abs(X_new - x)
    out = np.zeros_like(X_new)
    for j, (grid, table) in enumerate(tables):

        def q(v, grid=grid, table=table):
            return np.interp(v, grid, table, left=1e-6, right=1 - 1e-6)

        if cost == "total-log-percentile":
            out[:, j] = np.abs(np.log1p(-q(X_new[:, j])) - np.log1p(-q(x[j])))
        else:
            out[:, j] = np.abs(q(X_new[:, j]) - q(x[j]))
    return out


def objective(cost, X_new, x, tables, eps):
    costs = column_costs(cost, X_new, x, tables)
    if cost == "max-percentile":
        return costs.max(axis=1) + eps * costs.sum(axis=1)
    return costs.sum(axis=1)


def brute_force(cost, x, coef, intercept, tables, eps, margin=1e-4, max_changes=None):
    """The least objective over every grid point the schema allows and the model accepts."""
    values = [np.union1d(GRID, [x[j]]) for j in range(3)]
    levels = list(np.eye(3))
    points = np.array([[c, n, d, x[3], *g] for c, n, d, g in itertools.product(*values, levels)])
    factual = np.broadcast_to(x, points.shape)
    ok = ~SCHEMA.violations(points, factual)
    ok &= points @ coef + intercept >= margin
    if max_changes is not None:
        changed = np.abs(points - x) > 1e-12
        items = changed[:, :4].sum(axis=1) + changed[:, 4:].any(axis=1)
        ok &= items <= max_changes
    if not ok.any():
        return np.inf
    return objective(cost, points[ok], x, tables, eps).min()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("solver", ["enumerate", "highs"])
@pytest.mark.parametrize("cost", ar.COSTS)
def test_optimum_equals_brute_force_over_the_grid(cost, solver, seed, monkeypatch):
    monkeypatch.setattr(ar, "ENUMERATE_LIMIT", 2**20 if solver == "enumerate" else 0)
    splits, model, coef, factuals = small_problem(seed)
    method = ActionableRecourse(cost=cost, grid_size=4, grid_percentiles=None).fit(model, splits)
    for j in range(4):
        np.testing.assert_allclose(method.grids_[j], GRID)
    tables = percentile_tables(splits.X_train)
    for j, (_, table) in enumerate(tables):
        np.testing.assert_allclose(method.percentiles_[j], table, atol=1e-12)
    recourses = method.generate(factuals)
    assert_recourse_contract(SCHEMA, model, factuals, recourses)
    for x, x_cf, eps in zip(factuals, recourses, method.epsilon_, strict=True):
        best = brute_force(cost, x, coef, -2.0, tables, eps)
        if not np.isfinite(best):
            assert np.isnan(x_cf).all()
            continue
        assert not np.isnan(x_cf).any()
        found = objective(cost, x_cf[None], x, tables, eps)[0]
        # HiGHS's absolute gap is 1e-6; enumeration is exact
        assert found == pytest.approx(best, abs=1e-6 if solver == "highs" else 1e-12)


@pytest.mark.parametrize("cost", ["l1", "max-percentile"])
def test_max_changes_limits_the_features_changed(cost):
    splits, model, coef, factuals = small_problem(0)
    method = ActionableRecourse(cost=cost, grid_size=4, grid_percentiles=None, max_changes=1)
    recourses = method.fit(model, splits).generate(factuals)
    tables = percentile_tables(splits.X_train)
    for x, x_cf, eps in zip(factuals, recourses, method.epsilon_, strict=True):
        best = brute_force(cost, x, coef, -2.0, tables, eps, max_changes=1)
        if not np.isfinite(best):
            assert np.isnan(x_cf).all()
            continue
        changed = np.abs(x_cf - x) > 1e-12
        assert changed[:4].sum() + changed[4:].any() <= 1
        assert objective(cost, x_cf[None], x, tables, eps)[0] == pytest.approx(best, abs=1e-6)
    assert np.isnan(recourses).any(axis=1).any()  # a single feature cannot always flip


def test_infeasible_factuals_get_nan_rows_and_the_others_are_solved():
    splits, _, _, factuals = small_problem(0)
    # only the immutable f counts: no action can move the score
    stuck = linear_classifier(np.array([0, 0, 0, 1.0, 0, 0, 0]), -0.5)
    factual = factuals[:4].copy()
    factual[:2, 3] = 0.1  # rejected, and nothing can change that
    factual[2:, 3] = 0.2
    out = ActionableRecourse().fit(stuck, splits).generate(factual)
    assert np.isnan(out).all()
    # the largest raises together fall just short
    model = linear_classifier(np.array([1.0, 0, 0, 0, 0, 0, 0]), -1.0 - 1e-3)
    x = factuals[:3].copy()
    out = ActionableRecourse(grid_percentiles=None).fit(model, splits).generate(x)
    assert np.isnan(out).all()
    # mixed: one factual can reach, one cannot
    model = linear_classifier(np.array([1.0, 0, 0, 1.0, 0, 0, 0]), -1.2)
    x = factuals[:2].copy()
    x[0, 3], x[1, 3] = 0.5, 0.1
    out = ActionableRecourse(grid_percentiles=None).fit(model, splits).generate(x)
    assert not np.isnan(out[0]).any() and np.isnan(out[1]).all()
    assert model.predict(out[:1])[0] == 1


def test_an_accepted_factual_is_its_own_recourse():
    splits, model, _, _ = small_problem(0)
    accepted = splits.X_test[model.predict(splits.X_test) == 1][:5]
    out = ActionableRecourse().fit(model, splits).generate(accepted)
    np.testing.assert_array_equal(out, accepted)


def test_an_unset_group_must_take_a_level():
    splits, model, _, factuals = small_problem(1)
    x = factuals[:3].copy()
    x[:, 4:] = 0.0  # no level set: every recourse must set exactly one
    out = ActionableRecourse(grid_percentiles=None, grid_size=4).fit(model, splits).generate(x)
    found = ~np.isnan(out).any(axis=1)
    assert found.any()
    np.testing.assert_array_equal(out[found][:, 4:].sum(axis=1), 1.0)
    assert not SCHEMA.violations(out[found], x[found]).any()


# ----------------------------------------------------------------------------- larger grids
@pytest.mark.parametrize("cost", ar.COSTS)
def test_reductions_keep_the_optimum_of_the_full_program(cost, monkeypatch):
    """On the toy problem's full 101-point grids, the reduced program (enumerated or solved)
    has the optimum of HiGHS on the whole program, every option kept."""
    problem = toy_problem()
    method = ActionableRecourse(cost=cost).fit(problem.model, problem.splits)
    reduced = method.generate(problem.factuals)
    eps = method.epsilon_.copy()

    def no_reduction(opts, required):
        n = len(required)
        if cost == "max-percentile":
            e = ar._tie_break(opts.total, opts.valid, opts.blocks)
            return e[:, None] * opts.total, e, np.zeros(n, dtype=bool)
        return opts.total, np.full(n, np.nan), np.zeros(n, dtype=bool)

    monkeypatch.setattr(method, "_prune", no_reduction)
    monkeypatch.setattr(ar, "ENUMERATE_LIMIT", 0)
    full = method.generate(problem.factuals)
    np.testing.assert_allclose(method.epsilon_, eps, equal_nan=True)
    np.testing.assert_array_equal(np.isnan(reduced), np.isnan(full))

    def value(X_cf):
        out = []
        for x, x_cf, e in zip(problem.factuals, X_cf, eps, strict=True):
            costs = np.array(
                [
                    method._column_cost(j, x[j : j + 1], x_cf[None, j : j + 1])[0, 0]
                    for j in range(9)
                ]
            )
            out.append(costs.max() + e * costs.sum() if cost == "max-percentile" else costs.sum())
        return np.array(out)

    found = ~np.isnan(full).any(axis=1)
    np.testing.assert_allclose(value(reduced[found]), value(full[found]), atol=1e-6)


# ---------------------------------------------------------------------------- grids, tables
def test_integer_grid_keeps_its_steps_between_the_percentiles():
    values = np.arange(0, 1001) / 1000  # an integer column, step 0.001
    grid = column_grid(values, "integer", 0.0, 1.0, 0.001, 100, (1.0, 99.0), False)
    assert grid[0] == pytest.approx(0.01) and grid[-1] == pytest.approx(0.99)
    units = grid / 0.001
    np.testing.assert_allclose(units, np.round(units), atol=1e-9)
    np.testing.assert_allclose(np.diff(units), 10.0)  # ceil(0.98 / 100 / 0.001) steps
    coarse = column_grid(values, "integer", 0.0, 1.0, 0.25, 100, None, False)
    np.testing.assert_allclose(coarse, GRID)
    assert list(column_grid(values, "binary", 0.0, 1.0, 1.0, 100, (1, 99), False)) == [0, 1]
    assert list(column_grid(values, "categorical", 0.0, 1.0, 0.0, 100, None, True)) == [0, 1]


def test_percentile_table_is_the_authors_kde_construction():
    rng = np.random.default_rng(0)
    for values in (rng.normal(size=400), rng.integers(0, 2, 300).astype(float)):
        grid = np.linspace(values.min(), values.max(), 30)
        density = gaussian_kde(values)(grid)
        expected = (1e-6 + np.cumsum(density)) / (density.sum() + 2e-6)
        np.testing.assert_allclose(percentile_table(values, grid), expected, atol=1e-12)
    constant = percentile_table(np.full(10, 0.5), np.array([0.0, 0.5, 1.0]))
    assert constant[0] < 1e-5 and constant[1] == constant[2]


# ------------------------------------------------------------------- contract and surrogates
def test_conformance_kit_passes():
    results = check_method(ActionableRecourse())
    assert {r.status for r in results} == {"passed"}


@pytest.mark.parametrize("cost", ar.COSTS)
def test_toy_recourses_keep_every_constraint(cost):
    problem = toy_problem()
    method = ActionableRecourse(cost=cost).fit(problem.model, problem.splits)
    out = method.generate(problem.factuals)
    assert_recourse_contract(problem.schema, problem.model, problem.factuals, out, 1.0)


@pytest.mark.parametrize("model_name", ["mlp", "forest"])
def test_lime_recourses_on_non_linear_models(model_name):
    problem = toy_problem(model=model_name)
    method = ActionableRecourse(random_state=0).fit(problem.model, problem.splits)
    out = method.generate(problem.factuals)
    assert_recourse_contract(problem.schema, problem.model, problem.factuals, out, 0.5)
    again = ActionableRecourse(random_state=0).fit(problem.model, problem.splits)
    np.testing.assert_array_equal(again.generate(problem.factuals), out)
    # batch invariance: each row's LIME stream is its own
    parts = np.vstack([method.generate(problem.factuals[i : i + 7]) for i in range(0, 30, 7)])
    np.testing.assert_array_equal(parts, out)


def test_refits_raise_the_share_accepted_on_a_non_linear_model():
    problem = toy_problem(model="mlp")
    shares = []
    for refits in (0, 3):
        method = ActionableRecourse(refits=refits, random_state=0)
        out = method.fit(problem.model, problem.splits).generate(problem.factuals)
        shares.append(float((~np.isnan(out).any(axis=1)).mean()))
    assert shares[1] >= shares[0]


def test_gradient_surrogate_is_skipped_on_forests_only():
    forest = toy_problem(model="forest")
    with pytest.raises(NotApplicable, match="differentiable"):
        ActionableRecourse(surrogate="gradient").fit(forest.model, forest.splits)
    mlp = toy_problem(model="mlp")
    method = ActionableRecourse(surrogate="gradient").fit(mlp.model, mlp.splits)
    out = method.generate(mlp.factuals)
    assert_recourse_contract(mlp.schema, mlp.model, mlp.factuals, out, 0.5)


def test_linear_models_use_their_own_weights_and_no_randomness():
    problem = toy_problem()
    a = ActionableRecourse(random_state=0).fit(problem.model, problem.splits)
    b = ActionableRecourse(random_state=1).fit(problem.model, problem.splits)
    W, bias = a.local_models(problem.factuals)
    np.testing.assert_array_equal(W[0], problem.model.coef_)
    assert bias[0] == problem.model.intercept_
    np.testing.assert_array_equal(a.generate(problem.factuals), b.generate(problem.factuals))


def test_no_factuals_give_an_empty_result():
    problem = toy_problem()
    method = ActionableRecourse().fit(problem.model, problem.splits)
    assert method.generate(np.empty((0, 9))).shape == (0, 9)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"cost": "l2"}, "cost must be one of"),
        ({"grid_size": 0}, "grid_size"),
        ({"grid_percentiles": (99.0, 1.0)}, "two increasing percentiles"),
        ({"grid_percentiles": (1.0, 50.0, 99.0)}, "two increasing percentiles"),
        ({"max_changes": 0}, "max_changes"),
        ({"refits": -1}, "refits"),
    ],
)
def test_invalid_parameters_are_rejected(params, message):
    problem = toy_problem()
    with pytest.raises(ConfigError, match=message):
        ActionableRecourse(**params).fit(problem.model, problem.splits)
