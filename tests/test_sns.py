import numpy as np
import pytest
from torch import nn

from recourse_bench import NotFittedError, registry
from recourse_bench.api import ConfigError
from recourse_bench.methods import sns as sns_module
from recourse_bench.methods.sns import StableNeighbourSearch, ray_objective, ray_stability
from recourse_bench.models._torch import TorchClassifier, as_tensor
from recourse_bench.testing import check_method

from .conftest import assert_recourse_contract


@pytest.fixture(scope="module")
def gaussians():
    splits = registry.get("dataset", "synthetic-gaussians")(n_features=5, n_samples=1000).load(1)
    model = registry.get("model", "logreg")().fit(splits.X_train, splits.y_train, seed=3)
    factuals = splits.X_test[model.predict(splits.X_test) == 0][:80]
    return splits, model, factuals


@pytest.fixture(scope="module")
def german():
    splits = registry.get("dataset", "german")().load(0)
    # the full-batch MLP (300 epochs) the step sizes below were set for
    full_batch = {"batch_size": None, "n_iter_no_change": None, "epochs": 300}
    model = registry.get("model", "mlp")(**full_batch).fit(splits.X_train, splits.y_train, seed=0)
    factuals = splits.X_test[model.predict(splits.X_test) == 0][:40]
    return splits, model, factuals


@pytest.fixture(scope="module")
def german_base(german):
    splits, model, factuals = german
    return registry.get("method", "wachter")().fit(model, splits).generate(factuals)


# ------------------------------------------------------------------------------ the objective
def test_ray_objective_equals_a_looped_riemann_sum_and_its_gradient(german, monkeypatch):
    _, model, factuals = german
    X, n = factuals[:5].astype(float), 7
    values, grad = ray_objective(model, as_tensor(X), n, grad=True)
    expected = [
        sum(model.predict_proba((t / n) * x[None])[0, 1] for t in range(1, n + 1)) for x in X
    ]
    np.testing.assert_allclose(values.numpy(), expected, rtol=0, atol=1e-10)
    # central finite differences on a few coordinates
    step = 1e-6
    for j in (0, 3, X.shape[1] - 1):
        e = np.zeros(X.shape[1])
        e[j] = step
        up, _ = ray_objective(model, as_tensor(X + e), n)
        down, _ = ray_objective(model, as_tensor(X - e), n)
        numeric = (up - down).numpy() / (2 * step)
        np.testing.assert_allclose(grad.numpy()[:, j], numeric, rtol=1e-5, atol=1e-7)
    # computing the rows in chunks changes nothing
    monkeypatch.setattr(sns_module, "_CHUNK_ELEMENTS", 2 * n * X.shape[1])
    chunked, chunked_grad = ray_objective(model, as_tensor(X), n, grad=True)
    np.testing.assert_allclose(chunked.numpy(), values.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(chunked_grad.numpy(), grad.numpy(), rtol=0, atol=1e-12)
    stab = ray_stability(model, np.vstack([X[:2], np.full(X.shape[1], np.nan)]), n)
    np.testing.assert_allclose(stab[:2], values.numpy()[:2] / n, atol=1e-12)
    assert np.isnan(stab[2])


# ------------------------------------------------------------------ oracle: logistic model
@pytest.mark.parametrize(
    ("iters", "eta", "eps"),
    [(1, 1e-3, 0.3), (50, 1e-3, 0.3), (20, 1e-2, 0.3), (40, 1e-2, 0.155)],
)
def test_every_step_moves_eta_along_w_on_a_logistic_model(gaussians, iters, eta, eps):
    splits, model, factuals = gaussians
    w = model.coef_
    u = w / np.linalg.norm(w)
    params = {"sns_nb_iters": iters, "sns_eps_iter": eta, "sns_eps": eps, "noise_std": 0.0}
    method = StableNeighbourSearch(random_state=0, **params).fit(model, splits)
    base = method.base_.generate(factuals)
    shift = min(iters * eta, eps)
    expected = base + shift * u
    # the closed form holds where no bound clips the walk
    inside = ((expected > 1e-6) & (expected < 1 - 1e-6)).all(axis=1)
    assert inside.sum() >= 20
    recourses = method.generate(factuals)
    np.testing.assert_allclose(recourses[inside], expected[inside], rtol=0, atol=1e-9)
    moved = np.linalg.norm(recourses[inside] - base[inside], axis=1)
    assert (moved <= eps + 1e-12).all()
    assert (model.predict(recourses[inside]) == 1).all()
    # more probable than the base counterfactual, by the margin the closed form gives
    gain = model.decision_function(recourses[inside]) - model.decision_function(base[inside])
    np.testing.assert_allclose(gain, shift * np.linalg.norm(w), rtol=1e-9)


def test_the_jitter_is_seeded_and_small(gaussians):
    splits, model, factuals = gaussians
    X = factuals[:10]
    runs = [
        StableNeighbourSearch(random_state=seed, sns_nb_iters=5).fit(model, splits).generate(X)
        for seed in (0, 0, 1)
    ]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])
    assert np.abs(runs[0] - runs[2]).max() < 0.02  # jitter of stddev 1e-3


# ------------------------------------------ oracle: the last accepted iterate (a 1-D bump)
class _Bump(nn.Module):
    """Log-odds 3 - ((x0 - 0.5) / 0.06)^2: accepted for x0 in about [0.396, 0.604]."""

    def forward(self, x):
        return 3.0 - ((x[:, 0] - 0.5) / 0.06) ** 2


def _reference_walk(start, iters, eta, eps, n=20):
    """The authors' loop on the first coordinate, with the derivative of J written by hand."""

    def logit(u):
        return 3.0 - ((u - 0.5) / 0.06) ** 2

    def dlogit(u):
        return -2.0 * (u - 0.5) / 0.06**2

    z, best = start, start
    for _ in range(iters):
        u = np.arange(1, n + 1) / n * z
        h = 1.0 / (1.0 + np.exp(-logit(u)))
        slope = np.sum(np.arange(1, n + 1) / n * h * (1 - h) * dlogit(u))
        z = z + eta * np.sign(slope)  # a normalised 1-D gradient is its sign
        z = start + np.clip(z - start, -eps, eps)
        z = min(max(z, 0.0), 1.0)
        if logit(z) >= 0:
            best = z
    return z, best


def test_each_row_keeps_its_last_accepted_iterate(gaussians, monkeypatch):
    """J = sum_t h(t z / n) grows while h(z) exceeds its mean over [0, z]: past the bump's edge.

    The walk overshoots into the rejected region and oscillates across the boundary; the
    recourse is the last iterate the model accepted, not the final (rejected) one.
    """
    splits, _, _ = gaussians
    model = TorchClassifier(_Bump())
    starts = np.array([0.55, 0.45, 0.53])
    base = np.full((3, 5), 0.5)
    base[:, 0] = starts
    iters, eta, eps = 30, 0.01, 0.3
    method = StableNeighbourSearch(sns_nb_iters=iters, sns_eps_iter=eta, sns_eps=eps, noise_std=0)
    method.fit(model, splits)
    monkeypatch.setattr(method.base_, "generate", lambda _: base.copy())
    recourses = method.generate(base)  # the factuals only serve for the bounds here

    expected = base.copy()
    for i, start in enumerate(starts):
        final, best = _reference_walk(start, iters, eta, eps)
        assert final > 0.605 and model.predict(np.array([[final, 0.5, 0.5, 0.5, 0.5]]))[0] == 0
        expected[i, 0] = best
    np.testing.assert_allclose(recourses, expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(recourses[:, 0], 0.6, atol=1e-9)
    assert (model.predict(recourses) == 1).all()


# ------------------------------------------------------------------ German, MLP
def test_recourses_are_feasible_near_the_base_and_more_stable(german, german_base):
    splits, model, factuals = german
    method = StableNeighbourSearch(random_state=0).fit(model, splits)
    recourses = method.generate(factuals)
    found = assert_recourse_contract(splits.schema, model, factuals, recourses, 0.9)
    base = german_base
    assert (~np.isnan(base).any(axis=1) == found).all()  # a recourse wherever the base has one
    assert (np.linalg.norm(recourses[found] - base[found], axis=1) <= 0.3 + 1e-9).all()
    h_sns = model.predict_proba(recourses[found])[:, 1]
    h_base = model.predict_proba(base[found])[:, 1]
    assert h_sns.mean() >= h_base.mean() + 0.05
    assert (h_sns >= h_base - 1e-3).mean() >= 0.9
    assert ray_stability(model, recourses[found]).mean() > ray_stability(model, base[found]).mean()


def test_snapped_recourses_stay_in_the_ball_with_long_steps(german, german_base):
    splits, model, factuals = german
    eps = 0.2
    method = StableNeighbourSearch(sns_eps=eps, sns_eps_iter=0.02, sns_nb_iters=40, random_state=0)
    recourses = method.fit(model, splits).generate(factuals)
    found = assert_recourse_contract(splits.schema, model, factuals, recourses, 0.9)
    distance = np.linalg.norm(recourses[found] - german_base[found], axis=1)
    assert (distance <= eps + 1e-9).all()
    assert np.median(distance) > eps / 2  # the steps did move the recourses
    h_sns = model.predict_proba(recourses[found])[:, 1]
    assert h_sns.mean() > model.predict_proba(german_base[found])[:, 1].mean() + 0.1


def test_nan_base_rows_stay_nan_and_rejected_rows_become_nan(german, german_base, monkeypatch):
    splits, model, factuals = german
    method = StableNeighbourSearch(sns_nb_iters=0, random_state=0).fit(model, splits)
    X = factuals[:6]
    fake = german_base[:6].copy()
    fake[0] = np.nan  # no base counterfactual
    fake[1] = X[1]  # a base the model rejects
    monkeypatch.setattr(method.base_, "generate", lambda _: fake.copy())
    recourses = method.generate(X)
    assert np.isnan(recourses[:2]).all()
    np.testing.assert_array_equal(recourses[2:], german_base[2:6])  # no steps: the base itself


def test_growing_spheres_base(gaussians):
    splits, model, factuals = gaussians
    X = factuals[:20]
    method = StableNeighbourSearch(base="growing-spheres", sns_nb_iters=10, random_state=0)
    recourses = method.fit(model, splits).generate(X)
    assert type(method.base_).__name__ == "GrowingSpheres"
    assert_recourse_contract(splits.schema, model, X, recourses, 0.9)


# ------------------------------------------------------------------ API and conformance
def test_conformance_kit():
    check_method(StableNeighbourSearch(random_state=0))


def test_registered_with_its_defaults_and_bad_values_refused():
    cls = registry.get("method", "sns")
    assert cls is StableNeighbourSearch
    method = cls()
    assert (method.sns_eps, method.sns_nb_iters, method.sns_eps_iter) == (0.3, 100, 1e-3)
    assert (method.n_interpolations, method.noise_std, method.base) == (20, 1e-3, "wachter")
    assert method.tags.requires_differentiable and method.tags.stochastic
    assert set(registry.uses(cls)) == {("method", "wachter"), ("method", "growing-spheres")}
    with pytest.raises(ConfigError, match="base must be one of"):
        cls(base="dice").validate_params()
    with pytest.raises(ConfigError, match="sns_eps_iter"):
        cls(sns_eps_iter=0.0).validate_params()
    with pytest.raises(NotFittedError, match="fit"):
        cls().generate(np.zeros((2, 3)))
