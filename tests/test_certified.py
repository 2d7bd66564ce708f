"""Certified robustness: the Delta-check (closed form, IBP, MILP), mcer, rnce and their metrics.

Oracles (CATALOGUE.md B9 and B13): linear closed form = IBP = MILP; one hidden layer IBP = MILP
= the minimum over every corner of the parameter box; deeper IBP <= MILP <= the minimum over
corners and random draws, and a model of the box rebuilt from the MILP attains it; mcer's
recourses survive 10,000 sampled models of its box; rnce's are certified training points;
ROAR's closed-form worst case agrees row by row; PROBE's closed form matches Monte Carlo.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.optimize import linprog
from torch import nn

from recourse_bench import registry
from recourse_bench.api import EvalContext, NotApplicable
from recourse_bench.certify import (
    adversarial_layers,
    delta_certified,
    ibp_worst_logit,
    milp_worst_logit,
    relu_layers,
    worst_case_logit,
)
from recourse_bench.methods.mcer import MCER, _Program
from recourse_bench.methods.rnce import RNCE
from recourse_bench.methods.roar import worst_case_score
from recourse_bench.metrics.certified import (
    delta_robustness_metric,
    linear_invalidation,
    monte_carlo_invalidation,
)
from recourse_bench.models import linear_classifier
from recourse_bench.models._torch import TorchClassifier
from recourse_bench.testing import check_method, toy_problem

from .conftest import continuous_schema


def relu_net(widths: list[int], seed: int) -> TorchClassifier:
    """A random ReLU MLP with these layer widths (inputs first, one output)."""
    generator = torch.Generator().manual_seed(seed)
    modules: list[nn.Module] = []
    for fan_in, fan_out in itertools.pairwise([*widths, 1]):
        layer = nn.Linear(fan_in, fan_out).double()
        with torch.no_grad():
            weight = torch.randn(fan_out, fan_in, generator=generator, dtype=torch.float64)
            layer.weight.copy_(weight)
            layer.bias.copy_(torch.randn(fan_out, generator=generator, dtype=torch.float64) * 0.5)
        modules += [layer, nn.ReLU()]
    return TorchClassifier(nn.Sequential(*modules[:-1]))


def forward(layers, x: np.ndarray) -> float:
    """Plain forward pass of explicit ``(W, b)`` layers."""
    z = np.asarray(x, dtype=float)
    for k, (W, b) in enumerate(layers):
        z = W @ z + b
        if k < len(layers) - 1:
            z = np.maximum(z, 0.0)
    return float(z[0])


def corners(layers, delta: float, delta_b: float):
    """Every corner of the parameter box (tiny networks only)."""
    shapes = [(W.shape, b.shape) for W, b in layers]
    sizes = [W.size + b.size for W, b in layers]
    for signs in itertools.product((-1.0, 1.0), repeat=sum(sizes)):
        signs = np.array(signs)
        built, start = [], 0
        for (W, b), (w_shape, b_shape) in zip(layers, shapes, strict=True):
            w_signs = signs[start : start + W.size].reshape(w_shape)
            b_signs = signs[start + W.size : start + W.size + b.size].reshape(b_shape)
            start += W.size + b.size
            built.append((W + delta * w_signs, b + delta_b * b_signs))
        yield built


def random_models(layers, delta: float, delta_b: float, n: int, seed: int):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield [
            (W + rng.uniform(-delta, delta, W.shape), b + rng.uniform(-delta_b, delta_b, b.shape))
            for W, b in layers
        ]


# ------------------------------------------------------------------------------ the Delta-check
def test_linear_closed_form_equals_ibp_and_the_metric_on_random_instances():
    rng = np.random.default_rng(0)
    for _ in range(20):
        d = int(rng.integers(2, 8))
        w, b = rng.normal(size=d), float(rng.normal())
        model = linear_classifier(w, b)
        X = rng.uniform(-0.5, 1.0, size=(30, d))
        delta, delta_b = float(rng.uniform(0, 0.3)), float(rng.uniform(0, 0.3))
        closed = X @ w + b - delta * np.abs(X).sum(axis=1) - delta_b
        values, how = worst_case_logit(model, X, delta, delta_b)
        assert how == "closed form (linear)"
        np.testing.assert_allclose(values, closed, atol=1e-12)
        np.testing.assert_array_equal(delta_certified(model, X, delta, delta_b)[0], closed >= 0)


def test_one_hidden_layer_ibp_equals_milp_equals_the_worst_corner():
    model = relu_net([2, 2], seed=3)
    layers = relu_layers(model)
    rng = np.random.default_rng(1)
    for x in rng.uniform(0, 1, size=(6, 2)):
        ibp = ibp_worst_logit(layers, x[None, :], 0.2, 0.1)[0]
        exact, _ = milp_worst_logit(layers, x, 0.2, 0.1)
        worst_corner = min(forward(c, x) for c in corners(layers, 0.2, 0.1))
        assert ibp == pytest.approx(worst_corner, abs=1e-9)
        assert exact == pytest.approx(worst_corner, abs=1e-6)


def test_deeper_ibp_is_below_the_milp_which_is_attained_and_below_every_sample():
    model = relu_net([2, 2, 2], seed=2)
    layers = relu_layers(model)
    rng = np.random.default_rng(2)
    gaps = []
    for x in rng.uniform(0, 1, size=(5, 2)):
        ibp = ibp_worst_logit(layers, x[None, :], 0.15, 0.15)[0]
        exact, hidden = milp_worst_logit(layers, x, 0.15, 0.15)
        worst_corner = min(forward(c, x) for c in corners(layers, 0.15, 0.15))
        sampled = min(forward(m, x) for m in random_models(layers, 0.15, 0.15, 2000, 0))
        assert ibp <= exact + 1e-9 <= worst_corner + 1e-6
        assert exact <= sampled + 1e-9
        # the counterexample: a model of the box whose forward pass gives the MILP's minimum
        rebuilt = adversarial_layers(layers, x, hidden, 0.15, 0.15)
        for (W, b), (W0, b0) in zip(rebuilt, layers, strict=True):
            assert np.abs(W - W0).max() <= 0.15 + 1e-12 and np.abs(b - b0).max() <= 0.15 + 1e-12
        assert forward(rebuilt, x) == pytest.approx(exact, abs=1e-6)
        gaps.append(exact - ibp)
    assert max(gaps) > 1e-3  # IBP is a strict relaxation somewhere: the MILP is not IBP again


def test_exact_proof_runs_the_milp_where_ibp_does_not_certify():
    model = relu_net([4, 5, 4], seed=11)
    X = np.random.default_rng(3).uniform(0, 1, size=(40, 4))
    ibp, how_ibp = worst_case_logit(model, X, 0.05, proof="ibp")
    exact, how = worst_case_logit(model, X, 0.05)
    assert (how_ibp, how) == ("IBP (sound)", "IBP + MILP (exact)")
    assert (exact >= ibp - 1e-9).all()
    layers = relu_layers(model)
    for i in np.flatnonzero(ibp < 0)[:5]:
        assert exact[i] == pytest.approx(milp_worst_logit(layers, X[i], 0.05, 0.05)[0])
    np.testing.assert_array_equal(exact[ibp >= 0], ibp[ibp >= 0])  # certified rows keep IBP


def test_a_model_that_is_not_linear_or_a_relu_mlp_is_not_applicable():
    problem = toy_problem(0, "forest")
    with pytest.raises(NotApplicable, match="linear model or a ReLU MLP"):
        relu_layers(problem.model)
    metric = registry.get("metric", "delta-robustness")
    with pytest.raises(NotApplicable):
        metric(EvalContext(problem.factuals, problem.factuals, problem.model, problem.splits))


def test_aaai_example_8():
    """h = sigma(-x1 + x2), delta = 0.1 (AAAI 2023 Example 8; CATALOGUE.md B9 oracle 4)."""
    model = linear_classifier(np.array([-1.0, 1.0]), 0.0)
    X = np.array([[0.7, 0.7], [0.7, 0.5], [0.7, 0.86]])
    values, _ = worst_case_logit(model, X, 0.1, 0.0)
    np.testing.assert_allclose(values, [-0.14, -0.32, 0.004], atol=1e-12)
    assert list(delta_certified(model, X, 0.1, 0.003)[0]) == [False, False, True]
    assert list(delta_certified(model, X, 0.1, 0.005)[0]) == [False, False, False]


# ------------------------------------------------------------------------------------ ROAR
def test_delta_robustness_agrees_row_by_row_with_roars_worst_case_score():
    problem = toy_problem(0, "logreg")
    roar = registry.get("method", "roar")(delta_max=0.1, lam=0.5, random_state=0)
    recourses = roar.fit(problem.model, problem.splits).generate(problem.factuals)
    found = ~np.isnan(recourses).any(axis=1)
    model = problem.model
    score = worst_case_score(recourses[found], model.coef_, model.intercept_, 0.1)
    certified, how = delta_certified(model, recourses[found], 0.1)
    assert how == "closed form (linear)"
    np.testing.assert_array_equal(certified, score >= 0)
    assert 0 < certified.sum() < found.sum() or certified.all()  # lambda trades it for cost
    metric = delta_robustness_metric("roar-box", 0.1)
    value = metric(EvalContext(problem.factuals, recourses, model, problem.splits))
    valid = model.predict(recourses[found]) == 1
    assert value.n == valid.sum()
    assert value.value == pytest.approx(certified[valid].mean())
    assert "proof: closed form (linear); delta=0.1, delta_b=0.1" in value.note


# ------------------------------------------------------------------------------------- mcer


def test_cfx_milp_on_a_linear_model_equals_the_lp_optimum():
    rng = np.random.default_rng(4)
    d = 5
    schema = continuous_schema(d)
    for _ in range(5):
        w, b = rng.normal(size=d) + 1.0, -1.0  # a recourse exists inside [0, 1]^d
        x = rng.uniform(0, 0.3, size=d)
        program = _Program([(w[None, :], np.array([b]))], schema, x, np.zeros(d), np.ones(d), 10)
        solution = program.solve(0.5, 1000, 60.0)
        # LP: min sum t, t >= |x' - x|, w.x' + b >= 0.5, 0 <= x' <= 1
        c = np.r_[np.zeros(d), np.ones(d)]
        eye = np.eye(d)
        A = np.block([[eye, -eye], [-eye, -eye], [-w[None, :], np.zeros((1, d))]])
        ub = np.r_[x, -x, b - 0.5]
        lp = linprog(c, A_ub=A, b_ub=ub, bounds=[(0, 1)] * d + [(0, None)] * d)
        assert np.abs(solution - x).sum() == pytest.approx(lp.fun, abs=1e-7)
        assert w @ solution + b >= 0.5 - 1e-7


@pytest.mark.parametrize("hidden", [(), (8,), (6, 5)])
def test_mcer_recourses_are_certified_and_survive_10000_sampled_models(hidden):
    problem = toy_problem(0, "mlp" if hidden else "logreg")
    model = problem.model
    if hidden:
        model = registry.get("model", "mlp")(hidden=hidden, epochs=150).fit(
            problem.splits.X_train, problem.splits.y_train, 0
        )
    factuals = problem.splits.X_test[model.predict(problem.splits.X_test) == 0][:8]
    delta = 0.02
    method = MCER(delta=delta).fit(model, problem.splits)
    recourses = method.generate(factuals)
    found = ~np.isnan(recourses).any(axis=1)
    assert found.all()
    assert not any(v.any() for v in problem.schema.broken_constraints(recourses, factuals).values())
    metric = delta_robustness_metric("mcer-box", delta)
    assert metric(EvalContext(factuals, recourses, model, problem.splits)).value == 1.0
    # none of 10,000 models drawn uniformly from the box (corners included) rejects one
    layers = relu_layers(model)
    rng = np.random.default_rng(0)
    Z = torch.as_tensor(recourses)[None].expand(10_000, -1, -1)
    for k, (W, b) in enumerate(layers):
        signs = rng.uniform(-1, 1, size=(10_000, *W.shape))
        signs[:100] = np.sign(signs[:100])  # 100 corners
        Ws = torch.as_tensor(W + delta * signs)
        bs = torch.as_tensor(b + delta * rng.uniform(-1, 1, size=(10_000, *b.shape)))
        Z = torch.einsum("kod,knd->kno", Ws, Z) + bs[:, None, :]
        if k < len(layers) - 1:
            Z = torch.relu(Z)
    assert (Z[..., 0] >= 0).all()


def test_mcer_on_a_forest_is_skipped_with_the_reason():
    problem = toy_problem(0, "forest")
    assert "differentiable" in MCER().skip_reason(problem.model)


# ------------------------------------------------------------------------------------- rnce
def test_rnce_returns_the_nearest_certified_training_point():
    problem = toy_problem(0, "mlp")
    splits, model = problem.splits, problem.model
    method = RNCE(delta=0.01).fit(model, splits)
    recourses = method.generate(problem.factuals)
    found = ~np.isnan(recourses).any(axis=1)
    assert found.any()
    train = {tuple(row) for row in splits.X_train}
    assert all(tuple(row) in train for row in recourses[found])
    assert delta_certified(model, recourses[found], 0.01)[0].all()
    # brute force over the certified accepted training points the factual may reach
    pool = splits.X_train[model.predict(splits.X_train) == 1]
    pool = pool[delta_certified(model, pool, 0.01, proof="ibp")[0]]
    lo, hi = splits.schema.bounds_for(problem.factuals)
    immutable = ~splits.schema.mutable_mask
    for i, x in enumerate(problem.factuals):
        ok = ((pool >= lo[i]) & (pool <= hi[i])).all(axis=1)
        ok &= (pool[:, immutable] == x[immutable]).all(axis=1)
        if not ok.any():
            assert not found[i]
            continue
        best = np.abs(pool[ok] - x).sum(axis=1).min()
        assert np.abs(recourses[i] - x).sum() == pytest.approx(best)


@pytest.mark.parametrize("method", [MCER(delta=0.01), RNCE(delta=0.01)])
def test_kit(method):
    check_method(method)


# ------------------------------------------------------------------------- noise-invalidation
def test_noise_invalidation_closed_form_matches_monte_carlo_on_a_linear_model():
    rng = np.random.default_rng(5)
    w = rng.normal(size=4)
    X = rng.uniform(0, 1, size=(8, 4))
    model = linear_classifier(w, -float(np.median(X @ w)))  # points on both sides, near it
    mask = np.array([1.0, 1.0, 0.0, 1.0])
    closed = linear_invalidation(model, X, 0.3, mask)
    rate, error = monte_carlo_invalidation(model, X, 0.3, mask, 100_000, seed=1)
    assert ((closed > 0.05) & (closed < 0.95)).sum() >= 4  # rates a wrong formula would miss
    assert (np.abs(rate - closed) <= 3 * error + 1e-12).all()


def test_noise_invalidation_metric_uses_the_closed_form_or_monte_carlo():
    metric = registry.get("metric", "noise-invalidation")
    for name, how in (("logreg", "closed form"), ("mlp", "Monte Carlo")):
        problem = toy_problem(0, name)
        recourses = registry.get("method", "wachter")().fit(problem.model, problem.splits)
        recourses = recourses.generate(problem.factuals)
        value = metric(EvalContext(problem.factuals, recourses, problem.model, problem.splits))
        assert value.note.startswith(how)
        assert 0.0 < value.value < 1.0  # recourses on the boundary: about half invalidated
        again = metric(EvalContext(problem.factuals, recourses, problem.model, problem.splits))
        assert again == value  # deterministic
