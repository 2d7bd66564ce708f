import numpy as np
import pytest
import torch
from scipy.stats import norm

from recourse_bench import NotFittedError, registry
from recourse_bench.api import ConfigError
from recourse_bench.methods import trex as trex_module
from recourse_bench.methods.probe import invalidation_rate_estimate
from recourse_bench.methods.trex import stability

from .conftest import assert_recourse_contract

METHODS = ("probe", "trex")


@pytest.fixture(scope="module")
def gaussians():
    splits = registry.get("dataset", "synthetic-gaussians")(n_features=5, n_samples=1000).load(1)
    # Adam's logreg (weights short of the optimum): the box and noise sizes below are set for it
    model = registry.get("model", "logreg")(solver="adam").fit(
        splits.X_train, splits.y_train, seed=3
    )
    factuals = splits.X_test[model.predict(splits.X_test) == 0][:40]
    return splits, model, factuals


@pytest.fixture(scope="module")
def german():
    splits = registry.get("dataset", "german")().load(0)
    model = registry.get("model", "mlp")().fit(splits.X_train, splits.y_train, seed=0)
    factuals = splits.X_test[model.predict(splits.X_test) == 0][:40]
    return splits, model, factuals


@pytest.fixture(scope="module")
def german_recourses(german):
    """Recourses of PROBE, T-Rex and Wachter (T-Rex's base) on the same German factuals."""
    splits, model, factuals = german
    out = {}
    for name in (*METHODS, "wachter"):
        method = registry.get("method", name)(random_state=0).fit(model, splits)
        out[name] = method.generate(factuals)
    return out


# ------------------------------------------------------------------------------------ PROBE
@pytest.mark.parametrize("frozen", [None, 2])
def test_invalidation_rate_formula_matches_monte_carlo_on_a_linear_model(gaussians, frozen):
    splits, model, _ = gaussians
    w, b = model.coef_, model.intercept_
    points = splits.X_test
    mutable = np.ones(points.shape[1], dtype=bool)
    if frozen is not None:
        mutable[frozen] = False  # an immutable feature receives no implementation noise
    distance = (points @ w + b) / np.linalg.norm(w * mutable)
    # twenty points from 0.25 inside the rejected side to 0.25 inside the accepted side
    order = np.argsort(distance)
    picks = [order[np.argmin(np.abs(distance[order] - t))] for t in np.linspace(-0.25, 0.25, 20)]
    X = points[picks]

    variance = 0.01
    estimate = invalidation_rate_estimate(model, X, variance, mutable=mutable)
    np.testing.assert_allclose(estimate, norm.sf(distance[picks] / np.sqrt(variance)), atol=1e-9)

    rng = np.random.default_rng(0)
    draws = 10_000
    noise = rng.normal(0.0, np.sqrt(variance), (draws, X.shape[1])) * mutable
    noisy = (X[:, None, :] + noise[None]).reshape(-1, X.shape[1])
    monte_carlo = (model.predict(noisy) == 0).reshape(len(X), draws).mean(axis=1)
    tolerance = 4 * np.sqrt(monte_carlo * (1 - monte_carlo) / draws) + 1e-3
    assert (np.abs(estimate - monte_carlo) <= tolerance).all(), np.abs(estimate - monte_carlo)
    assert estimate.min() < 0.01 and estimate.max() > 0.99  # the points span the whole range


def test_invalidation_rate_of_nan_rows_is_nan(gaussians):
    _, model, factuals = gaussians
    X = factuals[:3].copy()
    X[1] = np.nan
    ir = invalidation_rate_estimate(model, X, 0.01)
    assert np.isnan(ir[1]) and np.isfinite(ir[[0, 2]]).all()


def test_probe_meets_the_target_rate_on_a_linear_model(gaussians):
    splits, model, factuals = gaussians
    probe = registry.get("method", "probe")(invalidation_target=0.1).fit(model, splits)
    recourses = probe.generate(factuals)
    found = ~np.isnan(recourses).any(axis=1)
    assert found.mean() >= 0.95
    assert (model.predict(recourses[found]) == 1).all()
    ir = invalidation_rate_estimate(model, recourses[found], probe.noise_variance)
    assert (ir <= 0.1 + probe.eps + 1e-9).mean() >= 0.95
    # on a linear model IR <= r is a distance of at least Phi^-1(1 - r) * s from the boundary
    distance = (recourses[found] @ model.coef_ + model.intercept_) / np.linalg.norm(model.coef_)
    assert np.median(distance) >= norm.isf(0.1 + probe.eps) * 0.1 - 1e-6


def test_the_hinge_term_reaches_the_target_where_the_cost_dominates(gaussians):
    splits, model, factuals = gaussians
    shares = []
    for ir_weight in (3.0, 0.0):
        params = {"lam": 2.0, "n_rounds": 1, "shrink_steps": 0, "invalidation_target": 0.1}
        probe = registry.get("method", "probe")(ir_weight=ir_weight, **params).fit(model, splits)
        ir = invalidation_rate_estimate(model, probe.generate(factuals), 0.01)
        shares.append(np.mean(np.nan_to_num(ir, nan=1.0) <= 0.1 + probe.eps))
    assert shares[0] >= 0.95  # with the hinge
    assert shares[1] <= 0.5  # without it the cost keeps recourses near the boundary


def test_probe_is_more_robust_and_costlier_than_wachter(german, german_recourses):
    splits, model, factuals = german
    probe, wachter = german_recourses["probe"], german_recourses["wachter"]
    both = ~np.isnan(probe).any(axis=1) & ~np.isnan(wachter).any(axis=1)
    assert both.mean() >= 0.9
    mutable = splits.schema.mutable_mask
    ir_probe = invalidation_rate_estimate(model, probe[both], 0.01, mutable)
    ir_wachter = invalidation_rate_estimate(model, wachter[both], 0.01, mutable)
    assert (ir_probe <= 0.3 + 0.005 + 1e-9).mean() >= 0.9
    assert ir_probe.mean() < ir_wachter.mean() - 0.05
    cost = np.abs(probe[both] - factuals[both]).sum(axis=1).mean()
    assert cost > np.abs(wachter[both] - factuals[both]).sum(axis=1).mean()


def test_probe_rows_the_model_rejects_are_nan(gaussians):
    splits, model, factuals = gaussians
    probe = registry.get("method", "probe")(n_rounds=1, n_iter=1, lr=1e-6, shrink_steps=0)
    recourses = probe.fit(model, splits).generate(factuals[:5])
    assert np.isnan(recourses).all()


# ------------------------------------------------------------------------------------ T-Rex
def test_stability_equals_a_direct_looped_computation(gaussians):
    _, model, factuals = gaussians
    X = factuals[:4]
    mutable = np.array([True, False, True, True, True])
    K, s = 30, 0.2
    fast = stability(model, X, s, K, torch.Generator().manual_seed(7), mutable)

    draw = torch.Generator().manual_seed(7)
    noise = torch.randn((K, X.shape[1]), generator=draw, dtype=torch.float64).numpy()
    noise = noise * s * mutable
    expected = []
    for x in X:
        h0 = model.predict_proba(x[None])[0, 1]
        h = [model.predict_proba((x + e)[None])[0, 1] for e in noise]
        expected.append(np.mean(h) - np.mean(np.abs(np.array(h) - h0)))
    np.testing.assert_allclose(fast, expected, rtol=0, atol=1e-6)


def test_stability_does_not_depend_on_chunking(german, monkeypatch):
    _, model, factuals = german
    whole = stability(model, factuals, 0.05, 50, torch.Generator().manual_seed(1))
    monkeypatch.setattr(trex_module, "_CHUNK_ELEMENTS", 60 * 50 * 3)  # three rows per chunk
    chunked = stability(model, factuals, 0.05, 50, torch.Generator().manual_seed(1))
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=1e-12)


def test_stability_is_one_deep_inside_and_lower_near_the_boundary(gaussians):
    _, model, _ = gaussians
    w, b = model.coef_, model.intercept_
    centre = np.full(len(w), 0.5)
    on_boundary = centre - (centre @ w + b) / (w @ w) * w
    deep = on_boundary + 1.5 * w / np.linalg.norm(w)  # log-odds about +14
    r = stability(
        model, np.array([deep, on_boundary]), 0.05, 2000, torch.Generator().manual_seed(0)
    )
    assert r[0] > 0.99
    assert r[1] < 0.5  # h is 0.5 there and the spread term is positive
    assert stability(model, deep[None], 0.05, 10)[0] > 0.99  # works without a generator


def test_trex_recourses_are_stable_and_more_stable_than_the_base(german, german_recourses):
    splits, model, _ = german
    trex, base = german_recourses["trex"], german_recourses["wachter"]
    found = ~np.isnan(trex).any(axis=1)
    assert found.mean() >= 0.9
    mutable = splits.schema.mutable_mask
    fresh = torch.Generator().manual_seed(12345)
    r_trex = stability(model, trex[found], 0.05, 2000, fresh, mutable)
    r_base = stability(model, base[found], 0.05, 2000, torch.Generator().manual_seed(5), mutable)
    assert (r_trex >= 0.75 - 0.05).mean() >= 0.8
    assert r_trex.mean() > r_base.mean() + 0.1
    # rows that had to move end more stable than where they started
    moved = np.abs(trex[found] - base[found]).sum(axis=1) > 0
    assert moved.sum() >= 10
    assert (r_trex[moved] > r_base[moved]).mean() >= 0.9


def test_trex_keeps_nan_base_rows_and_returns_nan_where_the_model_rejects(german, monkeypatch):
    splits, model, factuals = german
    trex = registry.get("method", "trex")(max_steps=0, random_state=0).fit(model, splits)
    X = factuals[:6]
    base = trex.base_.generate(X)
    fake = base.copy()
    fake[0] = np.nan  # no base counterfactual
    fake[1] = X[1]  # a base the model rejects
    monkeypatch.setattr(trex.base_, "generate", lambda _: fake.copy())
    recourses = trex.generate(X)
    assert np.isnan(recourses[:2]).all()
    np.testing.assert_array_equal(recourses[2:], base[2:])  # no steps: the base itself


def test_trex_is_stochastic_and_says_so():
    assert registry.get("method", "trex").tags.stochastic
    assert not registry.get("method", "probe").tags.stochastic


# ------------------------------------------------------------------------- house contract
@pytest.mark.parametrize("name", METHODS)
def test_recourses_respect_the_schema_on_german(german, german_recourses, name):
    splits, model, factuals = german
    recourses = german_recourses[name]
    assert_recourse_contract(splits.schema, model, factuals, recourses, 0.9)


@pytest.mark.parametrize("name", METHODS)
def test_recourses_respect_the_schema_on_synthetic_data(gaussians, name):
    splits, model, factuals = gaussians
    recourses = registry.get("method", name)(random_state=0).fit(model, splits).generate(factuals)
    assert_recourse_contract(splits.schema, model, factuals, recourses, 0.9)


@pytest.mark.parametrize("name", METHODS)
def test_same_random_state_gives_identical_recourses_and_input_is_untouched(german, name):
    splits, model, factuals = german
    X = factuals[:8].copy()
    params = {"max_steps": 20} if name == "trex" else {"n_rounds": 5}
    first = registry.get("method", name)(random_state=3, **params).fit(model, splits).generate(X)
    np.testing.assert_array_equal(X, factuals[:8])
    again = registry.get("method", name)(random_state=3, **params).fit(model, splits).generate(X)
    np.testing.assert_array_equal(first, again)
    assert first.shape == X.shape


@pytest.mark.parametrize("name", METHODS)
def test_generate_before_fit_raises_not_fitted(name):
    with pytest.raises(NotFittedError, match="fit"):
        registry.get("method", name)().generate(np.zeros((2, 3)))


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("probe", {"invalidation_target": 0.6}, "invalidation_target must be a number >= 0"),
        ("probe", {"noise_variance": 0.0}, "noise_variance must be a number > 0"),
        ("probe", {"loss_type": "hinge"}, "loss_type must be one of bce, mse"),
        ("probe", {"n_rounds": 0}, "n_rounds must be an integer >= 1"),
        ("trex", {"tau": 1.5}, "tau must be a number >= 0 and <= 1"),
        ("trex", {"n_samples": 0}, "n_samples must be an integer >= 1"),
        ("trex", {"noise_std": -1.0}, "noise_std must be a number > 0"),
        ("trex", {"random_state": 1.5}, "random_state must be an integer"),
    ],
)
def test_invalid_parameters_are_rejected(gaussians, name, params, message):
    splits, model, _ = gaussians
    with pytest.raises(ConfigError, match=message):
        registry.get("method", name)(**params).fit(model, splits)


@pytest.mark.parametrize("name", METHODS)
def test_gradient_methods_are_skipped_on_a_forest(gaussians, name):
    splits, _, _ = gaussians
    forest = registry.get("model", "forest")().fit(splits.X_train, splits.y_train, seed=0)
    reason = registry.get("method", name)().skip_reason(forest)
    assert reason is not None and "differentiable" in reason
