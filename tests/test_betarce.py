"""BetaRCE: the Beta lower bound, the robustness test and the post-hoc search (CATALOGUE B11)."""

import numpy as np
import pytest

from recourse_bench import registry
from recourse_bench.api import ConfigError, NotApplicable
from recourse_bench.methods import betarce as betarce_module
from recourse_bench.methods.betarce import BetaRCE, beta_lower_bound, beta_robustness
from recourse_bench.models import linear_classifier
from recourse_bench.seeding import derive_seed
from recourse_bench.testing import check_method, toy_problem, toy_splits

from .conftest import assert_recourse_contract


# --------------------------------------------------------------------------- the lower bound
@pytest.mark.parametrize(
    ("n_accept", "expected"), [(32, 0.9589), (31, 0.9062), (30, 0.8626), (29, 0.8223)]
)
def test_lower_bound_matches_the_catalogue(n_accept, expected):
    assert round(float(beta_lower_bound(n_accept, 32, 0.9)), 4) == expected


def test_lower_bound_is_the_quantile_of_the_jeffreys_posterior_by_monte_carlo():
    rng = np.random.default_rng(0)
    for n1 in (32, 31, 28, 16, 3):
        draws = rng.beta(0.5 + n1, 0.5 + 32 - n1, size=400_000)
        assert abs(np.quantile(draws, 0.1) - float(beta_lower_bound(n1, 32, 0.9))) < 2e-3


def test_delta_09_tolerates_one_rejecting_model_and_delta_08_three():
    lb = beta_lower_bound(np.arange(33), 32, 0.9)
    assert np.all(np.diff(lb) > 0)  # more accepting models, higher bound
    assert np.all(lb < (0.5 + np.arange(33)) / 33)  # below the posterior mean
    assert np.flatnonzero(lb > 0.9).tolist() == [31, 32]
    assert np.flatnonzero(lb > 0.8).tolist() == [29, 30, 31, 32]


def test_robustness_test_on_hand_made_models():
    # model j accepts x iff x0 >= j / 32 (j = 1..32); the base model iff x1 >= 0.5
    models = [linear_classifier(np.array([1.0, 0.0]), -j / 32) for j in range(1, 33)]
    base = linear_classifier(np.array([0.0, 1.0]), -0.5)
    X = np.array(
        [
            [1.0, 1.0],  # all 32 accept, base accepts
            [31.5 / 32, 1.0],  # 31 accept
            [30.5 / 32, 1.0],  # 30 accept: LB 0.8626
            [1.0, 0.0],  # all accept but the base model rejects
            [np.nan, np.nan],
        ]
    )
    passes, lower = beta_robustness(base, models, X, delta=0.9, confidence=0.9)
    assert passes.tolist() == [True, True, False, False, False]
    np.testing.assert_allclose(lower[:4], beta_lower_bound([32, 31, 30, 32], 32), rtol=0)
    assert np.isnan(lower[4])
    passes_08, _ = beta_robustness(base, models, X, delta=0.8)
    assert passes_08.tolist() == [True, True, True, False, False]


# --------------------------------------------------------------------------------- the method
@pytest.fixture(scope="module")
def forest_problem():
    """The toy data with a small random forest, whose retrained copies disagree near the border."""
    splits = toy_splits(0)
    trainer = registry.get("model", "forest")(n_estimators=20)
    model = trainer.fit(splits.X_train, splits.y_train, 0)
    factuals = splits.X_test[model.predict(splits.X_test) == 0][:30]
    return splits, trainer, model, factuals


@pytest.fixture(scope="module")
def fitted(forest_problem):
    """BetaRCE with its defaults (retrain-seed, k = 32, delta = 0.9) and its recourses."""
    splits, trainer, model, factuals = forest_problem
    method = BetaRCE(random_state=0).use_trainer(trainer).fit(model, splits)
    return method, method.generate(factuals)


def test_every_recourse_passes_the_test_against_the_methods_models(forest_problem, fitted):
    splits, _, model, factuals = forest_problem
    method, out = fitted
    found = assert_recourse_contract(splits.schema, model, factuals, out, min_coverage=0.8)
    assert len(method.models_) == 32
    votes = np.sum([m.predict(out[found]) == 1 for m in method.models_], axis=0)
    assert (votes >= 31).all()  # delta 0.9 with k = 32: at most one model rejects
    passes, lower = method.robustness(out[found])
    assert passes.all() and (lower > 0.9).all()


def test_models_are_the_shifts_updates(forest_problem, fitted):
    splits, trainer, model, _ = forest_problem
    method, out = fitted
    seed = derive_seed(0, "betarce", "models")
    assert method.models_seed_ == seed
    expected = registry.get("shift", "retrain-seed")(n_models=32).updates(
        splits, trainer, model, seed
    )
    points = np.vstack([splits.X_test, out[~np.isnan(out).any(axis=1)]])
    for ours, theirs in zip(method.models_, expected, strict=True):
        np.testing.assert_array_equal(ours.predict_proba(points), theirs.predict_proba(points))
    # the models do change: some test point is rejected by one and accepted by another
    votes = np.sum([m.predict(splits.X_test) for m in method.models_], axis=0)
    assert ((votes > 0) & (votes < 32)).any()


def test_base_counterfactual_is_kept_when_it_passes_and_searched_from_otherwise(
    forest_problem, fitted
):
    _, _, _, factuals = forest_problem
    method, out = fitted
    base = method.base_.generate(factuals)
    has_base = ~np.isnan(base).any(axis=1)
    base_passes = np.zeros(len(base), dtype=bool)
    base_passes[has_base] = method.robustness(base[has_base])[0]
    np.testing.assert_array_equal(out[base_passes], base[base_passes])
    searched = has_base & ~base_passes & ~np.isnan(out).any(axis=1)
    assert searched.sum() >= 5  # the search did the work for these rows
    assert not np.isclose(out[searched], base[searched]).all(axis=1).any()
    assert np.isnan(out[~has_base]).all()


def test_bootstrap_changes_use_the_bootstrap_shift(forest_problem):
    splits, trainer, model, factuals = forest_problem
    method = BetaRCE(changes="bootstrap", k=8, delta=0.8, random_state=1)
    method.use_trainer(trainer).fit(model, splits)
    expected = registry.get("shift", "bootstrap")(n_models=8).updates(
        splits, trainer, model, derive_seed(1, "betarce", "models")
    )
    for ours, theirs in zip(method.models_, expected, strict=True):
        np.testing.assert_array_equal(ours.predict(splits.X_test), theirs.predict(splits.X_test))
    out = method.generate(factuals[:10])
    found = assert_recourse_contract(splits.schema, model, factuals[:10], out, min_coverage=0.5)
    votes = np.sum([m.predict(out[found]) == 1 for m in method.models_], axis=0)
    assert (votes == 8).all()  # LB(7/1) = 0.67 < 0.8: every model must accept


def test_without_a_trainer_or_with_an_architecture_free_trainer_it_does_not_apply():
    problem = toy_problem(0)  # logreg, which has no other architecture
    with pytest.raises(NotApplicable, match="use_trainer"):
        BetaRCE(k=4, delta=0.7).fit(problem.model, problem.splits)
    method = BetaRCE(changes="architecture", k=4, delta=0.7).use_trainer(problem.trainer)
    with pytest.raises(NotApplicable, match="architecture"):
        method.fit(problem.model, problem.splits)


def test_a_delta_no_k_models_can_certify_is_refused():
    problem = toy_problem(0)
    method = BetaRCE(k=4, delta=0.9).use_trainer(problem.trainer)
    with pytest.raises(ConfigError, match="raise k or lower delta"):
        method.fit(problem.model, problem.splits)


def test_conformance_kit():
    check_method(BetaRCE(random_state=0, **BetaRCE._test_params))


def test_module_is_registered():
    assert registry.get("method", "betarce") is betarce_module.BetaRCE
