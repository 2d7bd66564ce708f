"""DiCE's gradient method: its loss terms, its optimum on a linear model, its sets and contract.

The optima are checked against solvers written here: a proximal-gradient (FISTA) solver for the
smooth log-loss objective with its weighted L1 proximity, and the greedy closed form of the hinge
objective, which is a linear programme (CATALOGUE A1, oracle 2).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from sklearn.base import clone

from recourse_bench import NotFittedError, registry
from recourse_bench.api import ConfigError, Schema, Splits
from recourse_bench.methods import dice as dice_module
from recourse_bench.methods.dice import Dice, diversity
from recourse_bench.models import linear_classifier
from recourse_bench.testing import parametrize_with_checks, toy_problem

from .conftest import assert_recourse_contract

# ------------------------------------------------------------------ a linear problem with an oracle
D = 4
COEF = np.array([6.0, -4.0, 3.0, 1.0])
INTERCEPT = -3.0
#: Tighter than DiCE's defaults (lr 0.05, 1e-5), so that Adam gets within 1e-2 of the optimum.
TIGHT = {"learning_rate": 0.01, "loss_diff_thres": 1e-7}
#: The k = 1 method without diversity, rounding or post-hoc sparsity: the bare optimiser.
BARE = {"k": 1, "diversity_weight": 0.0, "posthoc_sparsity_param": 0.0}


@pytest.fixture(scope="module")
def linear():
    """Four continuous features in [0, 1], a fixed logistic model and 20 rejected factuals."""
    schema = Schema(
        tuple(f"x{j}" for j in range(D)),
        ("continuous",) * D,
        (False,) * D,
        (0,) * D,
        (0.0,) * D,
        (1.0,) * D,
        (0.0,) * D,
    )
    rng = np.random.default_rng(0)
    X_train = rng.uniform(size=(400, D))
    splits = Splits(X_train, (X_train[:, 0] > 0.5).astype(int), X_train[:50], np.zeros(50), schema)
    model = linear_classifier(COEF, INTERCEPT)
    candidates = rng.uniform(0.05, 0.45, size=(200, D))
    candidates[:, 1] = rng.uniform(0.4, 0.9, size=200)
    factuals = candidates[model.predict(candidates) == 0][:20]
    assert len(factuals) == 20
    return splits, model, factuals


def log_loss_objective(C, X, beta):
    """-log sigmoid(a.c + b) + sum_j beta_j |c_j - x_j| per row."""
    return np.logaddexp(0, -(C @ COEF + INTERCEPT)) + (beta * np.abs(C - X)).sum(axis=1)


def proximal_gradient(X, beta, iterations=20_000):
    """FISTA on -log sigmoid(a.c + b) + sum_j beta_j |c_j - x_j| over the box [0, 1]^d.

    The prox of a weighted |c_j - x_j| plus the box is, per coordinate, the soft threshold
    around x_j clipped to [0, 1]; the smooth part's gradient is Lipschitz with ||a||^2 / 4.
    """
    step = 4.0 / (COEF @ COEF)
    current, point, momentum = X.copy(), X.copy(), 1.0
    for _ in range(iterations):
        gradient = -(1.0 / (1.0 + np.exp(point @ COEF + INTERCEPT)))[:, None] * COEF
        shifted = point - step * gradient - X
        shrunk = np.sign(shifted) * np.maximum(np.abs(shifted) - step * beta, 0.0)
        following = np.clip(X + shrunk, 0.0, 1.0)
        next_momentum = (1 + np.sqrt(1 + 4 * momentum**2)) / 2
        point = following + (momentum - 1) / next_momentum * (following - current)
        current, momentum = following, next_momentum
    return current


def hinge_optimum(X, beta):
    """Minimiser of relu(1 - a.c - b) + sum_j beta_j |c_j - x_j| over [0, 1]^d (an LP).

    Moving coordinate j by one unit in the direction of sign(a_j) buys |a_j| of log-odds for
    beta_j: coordinates are moved in decreasing order of |a_j| / beta_j, each until the log-odds
    reach 1 or the coordinate its bound, while |a_j| > beta_j.
    """
    C = X.copy()
    order = np.argsort(-np.abs(COEF) / beta)
    for row in C:
        for j in order:
            missing = 1.0 - (row @ COEF + INTERCEPT)
            if abs(COEF[j]) <= beta[j] or missing <= 0:
                break
            room = 1.0 - row[j] if COEF[j] > 0 else row[j]
            row[j] += np.sign(COEF[j]) * min(missing / abs(COEF[j]), room)
    return C


@pytest.mark.parametrize(
    ("weights", "proximity"), [("inverse_mad", 0.5), ("unit", 2.0)], ids=["inverse-mad", "unit"]
)
def test_one_counterfactual_with_log_loss_matches_proximal_gradient(linear, weights, proximity):
    splits, model, factuals = linear
    method = Dice(
        yloss_type="log_loss", feature_weights=weights, proximity_weight=proximity, **BARE, **TIGHT
    ).fit(model, splits)
    found = method.generate(factuals)
    beta = proximity * method.feature_weights_ / D  # DiCE's proximity_weight / (k d) * w_j
    optimum = proximal_gradient(factuals, beta)
    assert not np.isnan(found).any()
    np.testing.assert_allclose(found, optimum, atol=0.015)
    gap = log_loss_objective(found, factuals, beta) - log_loss_objective(optimum, factuals, beta)
    assert gap.max() <= 5e-3
    # the oracle tells weights apart: four times the penalty moves the optimum far
    assert np.abs(proximal_gradient(factuals, D * beta) - optimum).max() > 0.2


@pytest.mark.parametrize("proximity", [0.5, 2.0])
def test_one_counterfactual_with_hinge_loss_matches_the_lp_optimum(linear, proximity):
    splits, model, factuals = linear
    method = Dice(proximity_weight=proximity, **BARE, **TIGHT).fit(model, splits)
    found = method.generate(factuals)
    optimum = hinge_optimum(factuals, proximity * method.feature_weights_ / D)
    assert not np.isnan(found).any()
    np.testing.assert_allclose(found, optimum, atol=0.02)


# ------------------------------------------------------------------------------ the loss terms
def test_dpp_term_of_two_counterfactuals_is_the_closed_form_determinant():
    rng = np.random.default_rng(1)
    Z = torch.as_tensor(rng.uniform(size=(6, 2, 5)))
    weights = torch.as_tensor(rng.uniform(0.5, 3.0, size=5))
    distance = (weights * (Z[:, 0] - Z[:, 1]).abs()).sum(dim=1)
    expected = (1 + 1e-4) ** 2 - (1 + distance) ** -2
    torch.testing.assert_close(diversity(Z, weights, "dpp_style:inverse_dist"), expected)
    torch.testing.assert_close(diversity(Z, weights, "avg_dist"), 1 - 1 / (1 + distance))
    assert (diversity(Z[:, :1], weights, "dpp_style:inverse_dist") == 0).all()  # k = 1


def test_dpp_term_of_four_counterfactuals_is_a_brute_force_determinant():
    rng = np.random.default_rng(2)
    Z = rng.uniform(size=(3, 4, 5))
    weights = rng.uniform(0.5, 3.0, size=5)
    found = diversity(torch.as_tensor(Z), torch.as_tensor(weights), "dpp_style:inverse_dist")
    for row, value in zip(Z, found.numpy(), strict=True):
        kernel = np.array(
            [[1 / (1 + (weights * np.abs(a - b)).sum()) for b in row] for a in row]
        ) + 1e-4 * np.eye(4)
        assert value == pytest.approx(np.linalg.det(kernel), rel=1e-9, abs=1e-15)


def test_rounding_during_the_search_is_schema_snap():
    problem = toy_problem(0, "mlp")
    schema, factuals = problem.schema, problem.factuals
    rng = np.random.default_rng(3)
    lo, hi = schema.bounds_for(factuals)
    candidates = lo + rng.uniform(size=factuals.shape) * (hi - lo)
    candidates[:4, 4:7] = 0.5  # ties in a one-hot group go to its first member
    rounded = dice_module._Rounding(schema)(
        torch.as_tensor(candidates), torch.as_tensor(lo), torch.as_tensor(hi)
    )
    np.testing.assert_array_equal(rounded.numpy(), schema.snap(candidates, factuals))


def test_feature_weights_are_rounded_inverse_mads_and_one_for_one_hot_columns():
    problem = toy_problem(0, "logreg")
    X_train = problem.splits.X_train
    weights = dice_module.feature_weights(problem.schema, X_train)
    for j in (0, 1, 2):  # numeric columns
        mad = np.median(np.abs(X_train[:, j] - np.median(X_train[:, j])))
        assert weights[j] == round(1 / mad, 2)
    np.testing.assert_array_equal(weights[4:], 1.0)
    np.testing.assert_array_equal(dice_module.feature_weights(problem.schema, X_train, "unit"), 1)


# ------------------------------------------------------------------------------- the k sets
@pytest.fixture(scope="module")
def toy_sets():
    """Dice with k = 4 on the toy problem's MLP (short budget), fitted and generated."""
    problem = toy_problem(0, "mlp")
    method = Dice(k=4, **Dice._test_params).fit(problem.model, problem.splits)
    return problem, method, method.generate(problem.factuals)


def test_k_counterfactuals_per_factual_are_distinct(toy_sets):
    problem, method, _ = toy_sets
    sets = method.last_counterfactuals_
    assert sets.shape == (len(problem.factuals), 4, problem.schema.n_features)
    valid = ~np.isnan(sets).any(axis=2)
    assert valid.sum(axis=1).min() >= 2
    distinct = [
        all(np.abs(row[i] - row[j]).max() > 1e-6 for i, j in itertools.combinations(ok, 2))
        for row, ok in zip(sets, (np.flatnonzero(v) for v in valid), strict=True)
    ]
    assert np.mean(distinct) >= 0.9


def test_the_diversity_term_spreads_the_set(toy_sets):
    problem, method, _ = toy_sets
    plain = Dice(k=4, diversity_weight=0.0, **Dice._test_params).fit(problem.model, problem.splits)
    plain.generate(problem.factuals)

    def spread(sets):
        pairs = itertools.combinations(range(sets.shape[1]), 2)
        return np.nanmean([np.abs(sets[:, i] - sets[:, j]).sum(axis=1) for i, j in pairs])

    assert spread(method.last_counterfactuals_) > spread(plain.last_counterfactuals_)


def test_select_first_and_closest_pick_from_the_valid_set(toy_sets):
    problem, method, recourses = toy_sets
    sets, factuals = method.last_counterfactuals_, problem.factuals
    valid = ~np.isnan(sets).any(axis=2)
    np.testing.assert_array_equal(method.last_selected_, np.argmax(valid, axis=1))
    rows = np.arange(len(factuals))
    np.testing.assert_array_equal(recourses, sets[rows, method.last_selected_])

    closest = clone(method).set_params(select="closest").fit(problem.model, problem.splits)
    recourses = closest.generate(factuals)
    np.testing.assert_array_equal(closest.last_counterfactuals_, sets)  # the same sets
    cost = (np.abs(sets - factuals[:, None]) * closest.feature_weights_).sum(axis=2)
    cost[~valid] = np.inf
    np.testing.assert_array_equal(closest.last_selected_, cost.argmin(axis=1))
    np.testing.assert_array_equal(recourses, sets[rows, cost.argmin(axis=1)])


def test_every_counterfactual_of_every_set_keeps_the_schema():
    splits = registry.get("dataset", "german")().load(0)
    model = registry.get("model", "mlp")().fit(splits.X_train, splits.y_train, seed=0)
    factuals = splits.X_test[model.predict(splits.X_test) == 0][:20]
    method = Dice(k=3, **Dice._test_params).fit(model, splits)
    recourses = method.generate(factuals)
    assert_recourse_contract(splits.schema, model, factuals, recourses, min_coverage=0.9)
    sets = method.last_counterfactuals_.reshape(-1, factuals.shape[1])
    repeated = np.repeat(factuals, 3, axis=0)
    valid = ~np.isnan(sets).any(axis=1)
    assert_recourse_contract(splits.schema, model, repeated[valid], sets[valid])


# ------------------------------------------------------------------------ post-hoc sparsity
def test_posthoc_sparsity_takes_small_changes_back_to_the_factual(linear):
    splits, _, _ = linear
    model = linear_classifier(np.array([10.0, 0.0, 0.0, 0.0]), -5.0)  # accepts x0 >= 0.5
    method = Dice().fit(model, splits)
    threshold = method.sparsity_thresholds_
    assert 0.02 < threshold[1] < 0.3
    factual = np.array([[0.2, 0.2, 0.6, 0.6]])
    counterfactual = np.array([[0.7, 0.2 + threshold[1] / 2, 0.6 + 2 * threshold[2], 0.6]])
    sparse = method._sparsify(counterfactual, factual)
    assert sparse[0, 1] == 0.2  # within the threshold: back to the factual
    assert sparse[0, 2] == counterfactual[0, 2]  # beyond it: left alone
    assert sparse[0, 0] == 0.7  # the change that flips the decision is kept (0.5 > threshold)

    # within the threshold, but the factual's value is rejected: back to the boundary x0 = 0.5
    near_factual = np.array([[0.5 - threshold[0] / 2, 0.2, 0.6, 0.6]])
    near = np.array([[0.5 + threshold[0] / 4, 0.2, 0.6, 0.6]])
    moved = method._sparsify(near, near_factual)
    assert 0.5 <= moved[0, 0] <= 0.5 + 1e-5
    assert model.predict(moved)[0] == 1


def test_posthoc_sparsity_never_moves_a_counterfactual_away(toy_sets):
    problem, method, sparse = toy_sets
    dense = clone(method).set_params(posthoc_sparsity_param=0.0)
    plain = dense.fit(problem.model, problem.splits).generate(problem.factuals)
    both = ~np.isnan(plain).any(axis=1) & ~np.isnan(sparse).any(axis=1)
    assert both.all()
    gap_sparse = np.abs(sparse - problem.factuals)[both]
    gap_plain = np.abs(plain - problem.factuals)[both]
    assert (gap_sparse <= gap_plain + 1e-12).all()
    assert (gap_sparse < gap_plain).any()


# ------------------------------------------------------------------------------ the contract
def test_rows_that_cannot_flip_return_nan(linear):
    splits, model, factuals = linear
    method = Dice(min_iter=0, max_iter=1, learning_rate=1e-6).fit(model, splits)
    recourses = method.generate(factuals[:5])
    assert np.isnan(recourses).all()
    assert np.isnan(method.last_counterfactuals_).all()
    np.testing.assert_array_equal(method.last_selected_, -1)


def test_an_empty_batch_gives_an_empty_answer(linear):
    splits, model, factuals = linear
    method = Dice().fit(model, splits)
    assert method.generate(factuals[:0]).shape == (0, D)
    assert method.last_counterfactuals_.shape == (0, 4, D)


def test_generate_is_the_same_under_no_grad(linear):
    splits, model, factuals = linear
    method = Dice(k=2, **Dice._test_params).fit(model, splits)
    expected = method.generate(factuals[:5])
    with torch.no_grad():
        np.testing.assert_array_equal(method.generate(factuals[:5]), expected)


def test_generate_before_fit_and_bad_parameters_raise():
    with pytest.raises(NotFittedError, match="fit"):
        Dice().generate(np.zeros((2, 3)))
    with pytest.raises(ConfigError, match="min_iter"):
        Dice(min_iter=600, max_iter=500).validate_params()
    with pytest.raises(ConfigError, match="select must be one of first, closest"):
        Dice(select="random").validate_params()
    with pytest.raises(ConfigError, match="stopping_threshold"):
        Dice(stopping_threshold=0.3).validate_params()


def test_registered_with_honest_tags():
    assert registry.get("method", "dice") is Dice
    assert Dice.tags.requires_differentiable and Dice.tags.batch_invariant
    assert not Dice.tags.stochastic
    assert Dice().label == "dice" and Dice(k=2).label == "dice(k=2)"


@parametrize_with_checks(
    [Dice(), Dice(k=2, diversity_loss_type="avg_dist", yloss_type="log_loss", select="closest")]
)
def test_dice_passes_the_method_kit(method, check):
    check(method)
