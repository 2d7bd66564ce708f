import itertools
import logging

import numpy as np
import pytest
import torch

import recourse_bench.methods.roar  # noqa: F401
from recourse_bench import NotFittedError, registry
from recourse_bench.api import ConfigError, NotApplicable
from recourse_bench.methods._surrogate import gradient_surrogate, lime_surrogate
from recourse_bench.methods.roar import worst_case_score

from .conftest import assert_recourse_contract


def roar(**params):
    return registry.get("method", "roar")(**params)


@pytest.fixture(scope="module")
def gaussians():
    splits = registry.get("dataset", "synthetic-gaussians")(n_features=3, n_samples=1000).load(1)
    # Adam's logreg (weights short of the optimum): the box and noise sizes below are set for it
    model = registry.get("model", "logreg")(solver="adam").fit(
        splits.X_train, splits.y_train, seed=3
    )
    factuals = splits.X_test[model.predict(splits.X_test) == 0]
    return splits, model, factuals


@pytest.fixture(scope="module")
def german():
    splits = registry.get("dataset", "german")().load(0)
    models = {
        name: registry.get("model", name)().fit(splits.X_train, splits.y_train, seed=0)
        for name in ("logreg", "mlp", "forest")
    }
    return splits, models


def german_factuals(splits, model, n=60):
    return splits.X_test[model.predict(splits.X_test) == 0][:n]


def corner_scores(Z, w, b, delta_max):
    """Brute force: the score of every row under each of the 2^(d+1) corners of the box."""
    d = Z.shape[1]
    corners = np.array(list(itertools.product((-delta_max, delta_max), repeat=d + 1)))
    return Z @ (w[None, :] + corners[:, :d]).T + b + corners[:, d]  # (n, 2^(d+1))


# ------------------------------------------------------------------ closed-form inner maximum
@pytest.mark.parametrize("seed", range(5))
def test_closed_form_worst_case_equals_brute_force_over_the_corners(seed):
    rng = np.random.default_rng(seed)
    n, d = 50, 3
    Z = rng.normal(0, 2, (n, d))  # negative coordinates too: the sign of x' matters
    W = rng.normal(0, 3, (n, d))
    b = rng.normal(0, 1, n)
    delta_max = float(rng.uniform(0.01, 2.0))
    brute = np.stack([corner_scores(Z[i : i + 1], W[i], b[i], delta_max)[0] for i in range(n)])
    closed = worst_case_score(Z, W, b, delta_max)
    np.testing.assert_allclose(closed, brute.min(axis=1), rtol=0, atol=1e-12)
    # the cross-entropy of class 1 decreases in the score: its maximum is at that corner
    bce = np.logaddexp(0, -brute)
    np.testing.assert_allclose(np.logaddexp(0, -closed), bce.max(axis=1), atol=1e-12)


def test_worst_case_score_is_differentiable_for_tensors():
    z = torch.tensor([[0.5, -0.2]], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([1.0, 2.0], dtype=torch.float64)
    score = worst_case_score(z, w, 0.3, 0.1)
    score.sum().backward()
    assert score.item() == pytest.approx(0.5 - 0.4 + 0.3 - 0.1 * (0.7 + 1))
    np.testing.assert_allclose(z.grad.numpy(), [[1.0 - 0.1, 2.0 + 0.1]])


# ----------------------------------------------------------------------- ROAR, linear model
def test_larger_box_gives_more_robust_and_costlier_recourse(gaussians):
    splits, model, factuals = gaussians
    w, b = model.coef_, model.intercept_
    deltas = (0.0, 0.1, 0.2, 0.5)
    recourses = {
        delta: roar(delta_max=delta, lam=0.1).fit(model, splits).generate(factuals)
        for delta in deltas
    }
    found = np.all([~np.isnan(r).any(axis=1) for r in recourses.values()], axis=0)
    assert found.mean() >= 0.95
    robustness = [worst_case_score(recourses[d][found], w, b, 0.5).mean() for d in deltas]
    cost = [np.abs(recourses[d][found] - factuals[found]).sum(axis=1).mean() for d in deltas]
    assert np.all(np.diff(robustness) > 0), robustness
    assert np.all(np.diff(cost) > 0), cost
    # row by row against the non-robust search (delta_max = 0, same lam)
    plain = recourses[0.0][found]
    robust = recourses[0.5][found]
    assert (worst_case_score(robust, w, b, 0.5) > worst_case_score(plain, w, b, 0.5)).mean() > 0.9
    more = np.abs(robust - factuals[found]).sum(axis=1) > np.abs(plain - factuals[found]).sum(1)
    assert more.mean() > 0.9


def test_robust_recourses_are_valid_under_every_corner_model(gaussians):
    splits, model, factuals = gaussians
    w, b = model.coef_, model.intercept_
    delta_max = 1.5
    for delta, least, most in ((delta_max, 0.9, 1.0), (0.0, 0.0, 0.5)):
        recourses = roar(delta_max=delta, lam=0.1).fit(model, splits).generate(factuals)
        found = ~np.isnan(recourses).any(axis=1)
        assert found.mean() >= 0.95
        assert (model.predict(recourses[found]) == 1).all()
        corners = corner_scores(recourses[found], w, b, delta_max)  # (rows, 16 models)
        robust = worst_case_score(recourses[found], w, b, delta_max) > 0
        # a positive worst case means every corner model accepts (and conversely)
        np.testing.assert_array_equal(robust, (corners > 0).all(axis=1))
        # ROAR with this box makes (nearly) every recourse robust; the plain search does not
        assert least <= robust.mean() <= most, (delta, robust.mean())


def test_linear_model_uses_its_own_weights_exactly(gaussians):
    splits, model, factuals = gaussians
    W, b = roar().fit(model, splits).local_models(factuals)
    np.testing.assert_array_equal(W, np.broadcast_to(model.coef_, W.shape))
    np.testing.assert_array_equal(b, model.intercept_)


# -------------------------------------------------------------------------------- surrogates
def test_lime_surrogate_of_a_logistic_model_recovers_its_weights(german):
    splits, models = german
    model = models["logreg"]
    schema = splits.schema
    factuals = german_factuals(splits, model, n=40)
    W, b = lime_surrogate(
        model,
        factuals,
        n_samples=300,
        scale=0.3,
        alpha=0.1,
        free=schema.mutable_mask,
        lower=schema.lower_array,
        upper=schema.upper_array,
        rng=np.random.default_rng(0),
    )
    w = np.where(schema.mutable_mask, model.coef_, 0.0)
    cosine = W @ w / np.linalg.norm(W, axis=1) / np.linalg.norm(w)
    assert cosine.min() > 0.99, cosine.min()
    assert (W[:, ~schema.mutable_mask] == 0).all()
    # the immutable part of the score moves into the intercept; the log-odds at x match
    np.testing.assert_allclose(
        np.einsum("nd,nd->n", W, factuals) + b, factuals @ model.coef_ + model.intercept_, atol=0.1
    )


def test_lime_surrogate_predicts_the_mlp_near_the_factual(german):
    splits, models = german
    model = models["mlp"]
    schema = splits.schema
    factuals = german_factuals(splits, model, n=40)
    W, b = roar(random_state=0).fit(model, splits).local_models(factuals)
    rng = np.random.default_rng(1)  # fresh perturbations at the sampling scale
    noise = rng.normal(0, 0.3, (len(factuals), 100, factuals.shape[1])) * schema.mutable_mask
    Z = np.clip(factuals[:, None, :] + noise, 0, 1)
    labels = model.predict(Z.reshape(-1, Z.shape[2])).reshape(Z.shape[:2])
    predicted = np.einsum("nkd,nd->nk", Z, W) + b[:, None] >= 0
    accuracy = (predicted == labels).mean()
    majority = np.maximum(labels.mean(axis=1), 1 - labels.mean(axis=1)).mean()
    assert accuracy >= 0.9, accuracy  # measured: 0.962 (best constant: 0.948)
    assert accuracy > majority  # better than the best constant label per factual


def test_gradient_surrogate_is_the_taylor_expansion(german):
    splits, models = german
    factuals = german_factuals(splits, models["logreg"], n=20).astype(float)
    W, b = gradient_surrogate(models["logreg"], factuals)
    np.testing.assert_allclose(W, np.broadcast_to(models["logreg"].coef_, W.shape), atol=1e-12)
    np.testing.assert_allclose(b, models["logreg"].intercept_, atol=1e-12)
    # on the MLP the expansion is exact at the factual and matches finite differences
    mlp = models["mlp"]
    W, b = gradient_surrogate(mlp, factuals)
    logits = mlp.decision_function(factuals)
    np.testing.assert_allclose(np.einsum("nd,nd->n", W, factuals) + b, logits, atol=1e-10)
    eps, j = 1e-6, 3
    up, down = factuals.copy(), factuals.copy()
    up[:, j] += eps
    down[:, j] -= eps
    forward = (mlp.decision_function(up) - logits) / eps
    backward = (logits - mlp.decision_function(down)) / eps
    # at a ReLU kink the gradient is one of the one-sided derivatives
    error = np.minimum(np.abs(W[:, j] - forward), np.abs(W[:, j] - backward))
    assert error.max() < 1e-4, error.max()


# ----------------------------------------------------------------------- method contract
@pytest.mark.parametrize(
    ("model_name", "params", "min_coverage"),
    [
        ("logreg", {}, 0.95),
        ("mlp", {}, 0.85),
        ("mlp", {"surrogate": "gradient"}, 0.75),
        ("forest", {}, 0.85),
    ],
)
def test_german_recourses_are_feasible_and_accepted(german, model_name, params, min_coverage):
    splits, models = german
    model = models[model_name]
    factuals = german_factuals(splits, model)
    before = factuals.copy()
    recourses = roar(random_state=0, **params).fit(model, splits).generate(factuals)
    np.testing.assert_array_equal(factuals, before)  # input not mutated
    assert_recourse_contract(splits.schema, model, factuals, recourses, min_coverage)


def test_synthetic_recourses_are_feasible_and_accepted(gaussians):
    splits, model, factuals = gaussians
    recourses = roar().fit(model, splits).generate(factuals)
    assert_recourse_contract(splits.schema, model, factuals, recourses, 1.0)


def test_no_factuals_give_an_empty_result(gaussians):
    splits, model, _ = gaussians
    for params in ({}, {"lam": "auto"}):
        assert roar(**params).fit(model, splits).generate(np.empty((0, 3))).shape == (0, 3)


def test_same_random_state_gives_identical_recourses(german):
    splits, models = german
    model = models["mlp"]
    factuals = german_factuals(splits, model, n=30)
    first = roar(random_state=7).fit(model, splits).generate(factuals)
    second = roar(random_state=7).fit(model, splits).generate(factuals)
    np.testing.assert_array_equal(first, second)
    W7, _ = roar(random_state=7).fit(model, splits).local_models(factuals)
    W8, _ = roar(random_state=8).fit(model, splits).local_models(factuals)
    assert not np.array_equal(W7, W8)  # the LIME sampling is what random_state seeds


def test_gradient_surrogate_is_skipped_on_forests_only(german):
    splits, models = german
    forest, mlp = models["forest"], models["mlp"]
    reason = roar(surrogate="gradient").skip_reason(forest)
    assert isinstance(reason, str) and "differentiable" in reason
    assert roar(surrogate="gradient").skip_reason(mlp) is None
    assert roar(surrogate="gradient").skip_reason(models["logreg"]) is None
    assert roar().skip_reason(forest) is None
    with pytest.raises(NotApplicable, match="differentiable"):
        roar(surrogate="gradient").fit(forest, splits)


# ------------------------------------------------------------------------------ lam = "auto"
def walk(validity, tol):
    """The selection rule, written out: the last grid value before validity drops."""
    chosen, best = None, -np.inf
    for lam in sorted(validity):
        if chosen is not None and validity[lam] < best - tol:
            break
        chosen, best = lam, max(best, validity[lam])
    return chosen


def test_auto_lam_follows_the_authors_rule(gaussians, caplog):
    splits, model, factuals = gaussians
    method = roar(lam="auto", random_state=0).fit(model, splits)
    with caplog.at_level(logging.INFO, logger="recourse_bench.methods.roar"):
        recourses = method.generate(factuals)
    assert method.lam_ in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    assert method.lam_ == walk(method.lam_validity_, 0.0)
    assert f"lam={method.lam_:g}" in caplog.text
    # every grid value is searched from the factual: the result is the fixed-lam one
    fixed = roar(lam=method.lam_, random_state=0).fit(model, splits).generate(factuals)
    np.testing.assert_array_equal(recourses, fixed)


@pytest.mark.parametrize(
    ("validity", "lam_tol", "chosen", "tried"),
    [
        ([0.90, 0.95, 0.95, 0.94, 1.0], 0.0, 0.3, 4),  # 0.94 < best 0.95: stop, keep 0.3
        ([0.90, 0.95, 0.95, 0.94, 1.0], 0.02, 0.5, 5),  # within the tolerance: walk on
        ([0.90, 0.80, 1.0, 1.0, 1.0], 0.0, 0.1, 2),  # an immediate drop keeps the first
        ([0.5, 0.6, 0.7, 0.8, 0.9], 0.0, 0.5, 5),  # never drops: the largest value
    ],
)
def test_auto_lam_walks_the_grid_until_validity_drops(
    gaussians, monkeypatch, validity, lam_tol, chosen, tried
):
    splits, model, factuals = gaussians
    factuals = np.resize(factuals, (100, factuals.shape[1]))
    scripted = iter(validity)

    def scripted_accepts(model, X, threshold=0.5):
        return np.arange(len(X)) < round(next(scripted) * len(X))

    monkeypatch.setattr("recourse_bench.methods.roar.accepts", scripted_accepts)
    grid = (0.1, 0.2, 0.3, 0.4, 0.5)
    method = roar(lam="auto", lam_grid=grid, lam_tol=lam_tol).fit(model, splits)
    method.generate(factuals)
    assert method.lam_ == chosen
    assert sorted(method.lam_validity_) == list(grid[:tried])


def test_auto_lam_stops_where_validity_drops(gaussians):
    splits, model, factuals = gaussians
    # lam = 50 makes every move too expensive: validity falls to 0 and the walk keeps 0.1
    method = roar(lam="auto", lam_grid=(50.0, 0.1)).fit(model, splits)
    recourses = method.generate(factuals)
    assert method.lam_ == 0.1
    assert method.lam_validity_[50.0] < method.lam_validity_[0.1]
    assert (~np.isnan(recourses).any(axis=1)).mean() >= 0.95
    # with a tolerance of 1 nothing counts as a drop: the largest value is kept
    method = roar(lam="auto", lam_grid=(0.1, 50.0), lam_tol=1.0).fit(model, splits)
    method.generate(factuals)
    assert method.lam_ == 50.0


# ------------------------------------------------------------------------------- errors
def test_generate_before_fit_raises_not_fitted():
    with pytest.raises(NotFittedError, match="fit"):
        roar().generate(np.zeros((2, 3)))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"lam": "best"}, "lam must be a number > 0 or 'auto'"),
        ({"lam": 0.0}, "lam must be a number > 0 or 'auto'"),
        ({"lam_grid": []}, "lam_grid must be a non-empty list"),
        ({"lam_grid": (0.1, -1.0)}, "lam_grid must be a non-empty list"),
        ({"delta_max": -0.1}, "delta_max must be a number >= 0"),
        ({"surrogate": "shap"}, "surrogate must be one of lime, gradient"),
        ({"cost": "l3"}, "cost must be one of l1, l2"),
        ({"n_perturbations": 1}, "n_perturbations must be an integer >= 2"),
        ({"lime_scale": 0}, "lime_scale must be a number > 0"),
    ],
)
def test_invalid_parameters_are_rejected(params, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        roar(**params).validate_params()


def test_label_shows_changed_parameters_only():
    assert roar().label == "roar"
    assert roar(delta_max=0.2).label == "roar(delta_max=0.2)"


# ------------------------------------------------------------------ LIME fit against scipy
def test_lime_fit_equals_a_direct_solve_of_the_weighted_objective(german):
    """Same samples (the documented draw), the objective solved by scipy's L-BFGS per row."""
    from scipy.optimize import minimize

    splits, models = german
    model, schema = models["mlp"], splits.schema
    X = german_factuals(splits, model, n=3)
    n, d = X.shape
    m, scale, alpha = 200, 0.3, 0.1
    free = schema.mutable_mask
    W, b = lime_surrogate(
        model, X, n_samples=m, scale=scale, alpha=alpha, free=free,
        lower=schema.lower_array, upper=schema.upper_array, rng=np.random.default_rng(0),
    )  # fmt: skip
    noise = np.random.default_rng(0).standard_normal((n, m, d))
    noise[:, 0] = 0.0
    Z = np.clip(X[:, None, :] + noise * scale * free, schema.lower_array, schema.upper_array)
    p = np.clip(model.predict_proba(Z.reshape(-1, d))[:, 1].reshape(n, m), 1e-6, 1 - 1e-6)
    width = 0.75 * np.sqrt(d)
    for i in range(n):
        A = (Z[i] - X[i])[:, free] / scale
        kernel = np.exp(-(A**2).sum(axis=1) / (2 * width**2))

        def objective(beta, A=A, kernel=kernel, p=p[i]):
            s = beta[0] + A @ beta[1:]
            cross_entropy = np.logaddexp(0, s) - p * s
            return (kernel * cross_entropy).sum() + alpha / 2 * (beta[1:] ** 2).sum()

        solved = minimize(objective, np.zeros(1 + free.sum()), method="L-BFGS-B",
                          options={"maxiter": 5000, "gtol": 1e-9, "ftol": 1e-15}).x  # fmt: skip
        expected_w = np.zeros(d)
        expected_w[free] = solved[1:] / scale
        np.testing.assert_allclose(W[i], expected_w, atol=1e-3)
        assert abs(b[i] - (solved[0] - expected_w @ X[i])) < 1e-3
        unweighted = minimize(lambda beta, A=A, p=p[i]: objective(beta, A, np.ones(m), p),
                              np.zeros(1 + free.sum()), method="L-BFGS-B").x  # fmt: skip
        assert np.abs(unweighted[1:] / scale - W[i][free]).max() > 1e-2  # the kernel matters


# ----------------------------------------------------------------- the search reaches the optimum
def test_search_gets_close_to_a_long_reference_solve(german):
    """Adam stalls on one-hot groups; the projected-gradient polish closes most of the gap."""
    import torch

    from recourse_bench.methods._search import FeasibleSet, _polish, distance, validity_loss
    from recourse_bench.models._torch import as_tensor

    splits, models = german
    model = models["logreg"]
    X = german_factuals(splits, model)
    lam, delta_max = 0.4, 0.1
    W, b = (
        as_tensor(np.tile(model.coef_, (len(X), 1))),
        as_tensor(np.full(len(X), model.intercept_)),
    )
    feasible = FeasibleSet(splits.schema, X)

    def objective(z):
        score = worst_case_score(z, W, b, delta_max)
        return validity_loss(score) + lam * distance(z - as_tensor(X), "l1")

    def searched(polish_steps):
        method = roar(lam=lam, polish_steps=polish_steps).fit(model, splits)
        return method._search(X, W, b, lam, feasible, start=as_tensor(X))

    adam_only, polished = searched(0), searched(50)
    every_row = torch.ones(len(X), dtype=torch.bool)
    best = objective(_polish(polished, objective, feasible, every_row, 2000, 0.1)).detach()
    gap_adam = float((objective(adam_only).detach() - best).mean())
    gap_polished = float((objective(polished).detach() - best).mean())
    assert gap_polished < 0.02, gap_polished
    assert gap_polished < gap_adam / 3, (gap_polished, gap_adam)
