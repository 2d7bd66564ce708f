import numpy as np
import pytest
import torch
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import expit

from recourse_bench import NotFittedError, registry
from recourse_bench.api import ConfigError
from recourse_bench.methods import croco as croco_module
from recourse_bench.methods.croco import (
    Croco,
    croco_bound,
    draw_noise,
    expected_rejection_torch,
    noisy_invalidation_rate,
)
from recourse_bench.models._torch import as_tensor
from recourse_bench.testing import check_method, toy_problem

from .conftest import assert_recourse_contract

FAST = {"n_samples": 100, "n_iter": 100, "lr": 0.05}  # a budget that finds most rows quickly


@pytest.fixture(scope="module")
def gaussians():
    splits = registry.get("dataset", "synthetic-gaussians")(n_features=5, n_samples=1000).load(1)
    model = registry.get("model", "logreg")().fit(splits.X_train, splits.y_train, seed=3)
    factuals = splits.X_test[model.predict(splits.X_test) == 0][:20]
    return splits, model, factuals


def _probe_points(problem, n=40):
    """Test rows of the toy problem from deep rejected to deep accepted (IR from 1 to 0)."""
    X = problem.splits.X_test
    order = np.argsort(problem.model.decision_function(X))
    return X[order[np.linspace(0, len(X) - 1, n).astype(int)]]


def _gauss_hermite(logit, spread, function, nodes=80):
    """E_z[function(logit + spread z)], z ~ N(0, 1), by Gauss-Hermite quadrature (per row)."""
    z, weight = hermegauss(nodes)
    return function(logit[:, None] + spread * z[None, :]) @ (weight / np.sqrt(2 * np.pi))


def _rejection(f):
    return expit(-f)  # h0 at log-odds f


def _slope(f):
    return expit(f) * expit(-f)  # h h0 = -d h0 / d f


# ------------------------------------------------------------------------------ the bound
def test_noise_draws_follow_the_distributions_and_spare_immutable_columns():
    mutable = np.array([True, False, True, True])
    draw = torch.Generator().manual_seed(0)
    gaussian = draw_noise(draw, 40_000, mutable, 0.01, "gaussian").numpy()
    uniform = draw_noise(draw, 40_000, mutable, 0.2, "uniform").numpy()
    for noise in (gaussian, uniform):
        assert noise.shape == (40_000, 4)
        assert (noise[:, ~mutable] == 0).all()
    np.testing.assert_allclose(gaussian[:, mutable].var(axis=0), 0.01, rtol=0.03)  # a variance
    assert np.abs(uniform).max() <= 0.2 and np.abs(uniform).max() > 0.199  # a half-width
    np.testing.assert_allclose(uniform[:, mutable].var(axis=0), 0.2**2 / 3, rtol=0.03)
    again = draw_noise(torch.Generator().manual_seed(0), 40_000, mutable, 0.01, "gaussian")
    np.testing.assert_array_equal(again.numpy(), gaussian)


@pytest.mark.parametrize(
    "model_name, distribution, sigma2, t",
    [
        ("logreg", "gaussian", 0.05, 0.5),
        ("logreg", "uniform", 0.3, 0.7),
        ("mlp", "gaussian", 0.05, 0.7),
        ("mlp", "uniform", 0.3, 0.5),
    ],
)
def test_markov_bound_holds_on_monte_carlo_invalidation_rates(model_name, distribution, sigma2, t):
    problem = toy_problem(model=model_name)
    X, mutable = _probe_points(problem), problem.schema.mutable_mask
    K = 10_000
    common = {"sigma2": sigma2, "n_samples": K, "distribution": distribution, "mutable": mutable}
    ir = noisy_invalidation_rate(
        problem.model, X, threshold=t, generator=torch.Generator().manual_seed(1), **common
    )
    markov = croco_bound(
        problem.model, X, t=t, m=0.0, generator=torch.Generator().manual_seed(2), **common
    )
    bound = croco_bound(problem.model, X, t=t, generator=torch.Generator().manual_seed(2), **common)
    np.testing.assert_allclose(bound - markov, 0.1 / (1 - t), atol=1e-12)  # m / (1 - t)
    assert ir.max() > 0.99 and ir.min() < 0.01  # points on both sides of the boundary
    assert ((ir > 0.05) & (ir < 0.95)).sum() >= 3  # and some near it
    error = 4 * np.sqrt(ir * (1 - ir) / K) + 4 * 0.5 / np.sqrt(K) / (1 - t)
    assert (ir <= markov + error).all(), (ir - markov).max()
    assert (ir <= bound).all()


def test_expected_rejection_matches_gauss_hermite_quadrature_on_a_logistic_model():
    problem = toy_problem(model="logreg")
    model, w, b = problem.model, problem.model.coef_, problem.model.intercept_
    # the noisy columns: the schema's mutable ones less the one of largest weight, so that
    # noise on frozen columns would change E[h0] well beyond the Monte-Carlo error
    mutable = problem.schema.mutable_mask.copy()
    mutable[np.argmax(np.abs(w) * mutable)] = False
    X = _probe_points(problem, 15)
    s2, K = 0.05, 4000
    logit = X @ w + b
    spread = np.sqrt(s2) * np.linalg.norm(w * mutable)
    exact = _gauss_hermite(logit, spread, _rejection)
    all_columns = _gauss_hermite(logit, np.sqrt(s2) * np.linalg.norm(w), _rejection)
    # five Monte-Carlo standard errors, from the exact variance of h0 and of h h0 (five, not
    # four: at the deeply accepted points h0 is rare and its mean skewed, so a normal bound of
    # four errors over 15 points is too tight; seen with the converged logreg, 1.1 x 4 errors)
    tolerance = 5 * np.sqrt(
        (_gauss_hermite(logit, spread, lambda f: _rejection(f) ** 2) - exact**2) / K
    )
    slope = _gauss_hermite(logit, spread, _slope)
    slope_variance = _gauss_hermite(logit, spread, lambda f: _slope(f) ** 2) - slope**2
    slope_tolerance = 5 * np.sqrt(slope_variance / K)
    assert (np.abs(all_columns - exact) > 2 * tolerance).sum() >= 3  # the test can tell them apart

    noise = draw_noise(torch.Generator().manual_seed(3), K, mutable, s2)
    z = as_tensor(X).clone().requires_grad_(True)
    estimate = expected_rejection_torch(model, z, noise)
    (gradient,) = torch.autograd.grad(estimate.sum(), z)
    np.testing.assert_array_less(np.abs(estimate.detach().numpy() - exact), tolerance + 1e-9)
    # the estimate is differentiable in x': d E[h0] / dx' = -E[h h0] w, on every coordinate
    np.testing.assert_array_less(
        np.abs(gradient.numpy() + np.outer(slope, w)), np.outer(slope_tolerance, np.abs(w)) + 1e-9
    )
    # the public bound uses the same estimate: (m + E h0) / (1 - t) with m = 0 and t = 0
    fresh = croco_bound(
        model, X, sigma2=s2, n_samples=K, t=0.0, m=0.0, mutable=mutable,
        generator=torch.Generator().manual_seed(4),
    )  # fmt: skip
    np.testing.assert_array_less(np.abs(fresh - exact), tolerance + 1e-9)


def test_bound_and_rate_of_nan_rows_are_nan(gaussians):
    _, model, factuals = gaussians
    X = factuals[:3].copy()
    X[1] = np.nan
    for values in (croco_bound(model, X), noisy_invalidation_rate(model, X)):
        assert np.isnan(values[1]) and np.isfinite(values[[0, 2]]).all()


# ----------------------------------------------------------------------------- the method
def test_found_rows_meet_the_target_and_the_bound(gaussians):
    splits, model, factuals = gaussians
    method = Croco(random_state=0, **FAST).fit(model, splits)
    recourses = method.generate(factuals)
    found = method.last_found_
    assert found.sum() >= 8
    limit = method.robustness_target + method.robustness_epsilon
    assert (model.predict_proba(recourses[found])[:, 1] > method.t).all()
    assert (method.last_bound_[found] <= limit).all()
    assert np.isnan(method.last_bound_[~found]).all()
    # re-estimated with fresh draws: within the Monte-Carlo error of the n_samples-draw check
    K, mutable = 20_000, splits.schema.mutable_mask
    fresh = croco_bound(
        model, recourses[found], n_samples=K, mutable=mutable,
        generator=torch.Generator().manual_seed(5),
    )  # fmt: skip
    noise = draw_noise(torch.Generator().manual_seed(6), 2000, mutable, method.sigma2)
    noisy = (recourses[found][:, None, :] + noise.numpy()[None]).reshape(-1, factuals.shape[1])
    spread = expit(-model.decision_function(noisy)).reshape(found.sum(), -1)
    error = 4 * spread.std(axis=1) / np.sqrt(method.n_samples) / (1 - method.t)
    assert (fresh <= limit + error).all(), (fresh - limit).max()
    ir = noisy_invalidation_rate(
        model, recourses[found], n_samples=K, mutable=mutable,
        generator=torch.Generator().manual_seed(7),
    )  # fmt: skip
    assert (ir <= fresh).all()
    # every other row: an accepted (less robust) recourse, or NaN
    assert_recourse_contract(splits.schema, model, factuals, recourses, 0.9)


def test_croco_is_more_robust_than_wachter(gaussians):
    splits, model, factuals = gaussians
    recourses = Croco(random_state=0, **FAST).fit(model, splits).generate(factuals)
    wachter = registry.get("method", "wachter")().fit(model, splits).generate(factuals)
    both = ~np.isnan(recourses).any(axis=1) & ~np.isnan(wachter).any(axis=1)
    assert both.mean() >= 0.9
    rates = [
        noisy_invalidation_rate(model, Z[both], n_samples=5000, generator=torch.Generator())
        for Z in (recourses, wachter)
    ]
    assert rates[0].mean() < 0.1 < 0.3 < rates[1].mean()


def test_recourses_respect_the_schema_on_the_toy_mlp():
    problem = toy_problem(model="mlp")
    method = Croco(random_state=0, **FAST).fit(problem.model, problem.splits)
    recourses = method.generate(problem.factuals)
    assert_recourse_contract(problem.schema, problem.model, problem.factuals, recourses, 0.7)
    assert method.last_found_.any()


def test_rows_the_model_rejects_are_nan(gaussians):
    splits, model, factuals = gaussians
    method = Croco(n_iter=1, lr=1e-6, lambda_param=0.25, n_samples=8, random_state=0)
    recourses = method.fit(model, splits).generate(factuals[:5])
    assert np.isnan(recourses).all()
    assert not method.last_found_.any()


def test_chunked_loss_gives_the_same_recourses(gaussians, monkeypatch):
    splits, model, factuals = gaussians
    params = {"n_samples": 20, "n_iter": 30, "lr": 0.05, "random_state": 1}
    whole = Croco(**params).fit(model, splits).generate(factuals[:6])
    monkeypatch.setattr(croco_module, "_CHUNK_ELEMENTS", 20 * 5 * 2)  # two rows per chunk
    chunked = Croco(**params).fit(model, splits).generate(factuals[:6])
    np.testing.assert_array_equal(np.isnan(whole), np.isnan(chunked))
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=1e-12)


def test_uniform_noise_runs_and_random_state_matters(gaussians):
    splits, model, factuals = gaussians
    params = {"n_samples": 20, "n_iter": 30, "lr": 0.05, "distribution": "uniform"}
    runs = [
        Croco(random_state=s, **params).fit(model, splits).generate(factuals) for s in (0, 0, 1)
    ]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2], equal_nan=True)


def test_defaults_are_the_authors_and_bad_values_are_refused():
    params = Croco().get_params()
    authors = {
        "n_samples": 500, "lr": 0.01, "t": 0.5, "m": 0.1, "lambda_param": 1.0,
        "lambda_step": 0.25, "n_iter": 1000, "sigma2": 0.01, "robustness_target": 0.3,
        "robustness_epsilon": 0.01, "distribution": "gaussian",
    }  # fmt: skip
    assert {key: params[key] for key in authors} == authors
    assert Croco()._lambdas() == [1.0, 0.75, 0.5, 0.25]
    assert registry.get("method", "croco") is Croco
    with pytest.raises(ConfigError, match="distribution must be one of gaussian, uniform"):
        Croco(distribution="laplace").validate_params()
    with pytest.raises(NotFittedError, match="fit"):
        Croco().generate(np.zeros((2, 3)))


def test_conformance_kit():
    check_method(Croco(random_state=0))
