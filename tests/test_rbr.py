import itertools

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from scipy.special import logsumexp

from recourse_bench.methods import rbr
from recourse_bench.methods._search import accepts
from recourse_bench.testing import check_method, toy_problem

from .conftest import assert_recourse_contract

SMALL = {"num_samples": 50, "max_iter": 50, "num_cfacts": 50}


@pytest.fixture(scope="module")
def toy():
    return toy_problem(model="mlp")


# ------------------------------------------------------------------- surrogate = KDE log-odds
@pytest.mark.parametrize("sigma", [0.3, 1.0])
def test_surrogate_with_zero_radii_is_the_gaussian_kde_log_odds(sigma):
    rng = np.random.default_rng(0)
    n, S, d = 6, 40, 4
    centre = rng.uniform(0, 1, (n, d))
    offsets = rng.normal(0, 0.5, (n, S, d))
    positive = rng.uniform(size=(n, S)) < 0.5
    positive[0] = True  # no negatives: that side is a constant 0
    positive[1] = False  # no positives
    y = rng.normal(0, 0.3, (n, d))
    p = np.array([4.0, 4.0, 3.0, 2.0, 1.0, 4.0])
    F = rbr.rbr_surrogate(
        torch.as_tensor(y), torch.as_tensor(offsets), torch.as_tensor(positive),
        torch.as_tensor(p), sigma,
    ).numpy()  # fmt: skip
    x, samples = centre + y, centre[:, None, :] + offsets
    log_kernel = -((x[:, None, :] - samples) ** 2).sum(axis=2) / (2 * sigma**2)
    for i in range(n):
        neg = logsumexp(log_kernel[i, ~positive[i]]) if (~positive[i]).any() else 0.0
        pos = logsumexp(log_kernel[i, positive[i]]) if positive[i].any() else 0.0
        # the authors' constants: -p log s from L_op, log s + (p-1) log(f + s) from L_pe
        extra = 0.0
        if p[i] > 1:
            f = np.sqrt(1e-6 / (p[i] - 1))
            extra = (p[i] - 1) * np.log((f + sigma) / sigma)
        if not positive[i].any():
            extra = -p[i] * np.log(sigma)
        if not (~positive[i]).any():
            extra = np.log(sigma) + (p[i] - 1) * np.log(f + sigma) if p[i] > 1 else np.log(sigma)
        assert F[i] == pytest.approx(neg - pos + extra, abs=1e-10), i


def test_surrogate_gradient_is_the_kde_log_odds_gradient():
    rng = np.random.default_rng(1)
    offsets = torch.as_tensor(rng.normal(0, 0.5, (3, 30, 5)))
    positive = torch.as_tensor(rng.uniform(size=(3, 30)) < 0.4)
    y = torch.as_tensor(rng.normal(0, 0.2, (3, 5))).requires_grad_(True)
    F = rbr.rbr_surrogate(y, offsets, positive, torch.full((3,), 5.0), 0.7)
    (grad,) = torch.autograd.grad(F.sum(), y)
    z = y.detach().clone().requires_grad_(True)
    log_kernel = -((z[:, None, :] - offsets) ** 2).sum(dim=2) / (2 * 0.7**2)
    neg = log_kernel.masked_fill(positive, -torch.inf).logsumexp(dim=1)
    pos = log_kernel.masked_fill(~positive, -torch.inf).logsumexp(dim=1)
    (direct,) = torch.autograd.grad((neg - pos).sum(), z)
    np.testing.assert_allclose(grad.numpy(), direct.numpy(), atol=1e-12)


# ------------------------------------------------------------------------ L1-ball projection
def test_l1_projection_lies_in_the_ball_and_is_idempotent():
    rng = np.random.default_rng(2)
    V = torch.as_tensor(rng.normal(0, 2, (200, 7)))
    radius = torch.as_tensor(rng.uniform(0, 15, 200))
    radius[:5] = 0.0
    P = rbr.project_l1_ball(V, radius)
    assert (P.abs().sum(dim=1) <= radius + 1e-12).all()
    np.testing.assert_allclose(rbr.project_l1_ball(P, radius).numpy(), P.numpy(), atol=1e-12)
    inside = V.abs().sum(dim=1) <= radius
    assert inside.any() and (~inside).any()
    np.testing.assert_array_equal(P[inside].numpy(), V[inside].numpy())
    outside = ~inside & (radius > 0)
    np.testing.assert_allclose(P[outside].abs().sum(dim=1), radius[outside], rtol=1e-12)
    assert (P[:5] == 0).all()


@pytest.mark.parametrize("seed", range(4))
def test_l1_projection_on_three_dimensions_matches_references(seed):
    rng = np.random.default_rng(seed)
    V = rng.normal(0, 2, (20, 3))
    radius = rng.uniform(0.1, 2.0, 20)
    P = rbr.project_l1_ball(torch.as_tensor(V), torch.as_tensor(radius)).numpy()
    for v, r, proj in zip(V, radius, P, strict=True):
        # variational inequality (v - P).(q - P) <= 0 over the ball: a linear program whose
        # maximum sits at one of the 6 vertices +-r e_i
        vertices = np.concatenate([r * np.eye(3), -r * np.eye(3)])
        assert ((vertices - proj) @ (v - proj)).max() <= 1e-9
        # and the QP over z = a - b, a, b >= 0, sum(a + b) <= r, solved by SLSQP
        res = minimize(
            lambda ab, v=v: ((ab[:3] - ab[3:] - v) ** 2).sum(),
            np.zeros(6),
            method="SLSQP",
            bounds=[(0, None)] * 6,
            constraints=[{"type": "ineq", "fun": lambda ab, r=r: r - ab.sum()}],
            options={"ftol": 1e-14, "maxiter": 500},
        )
        np.testing.assert_allclose(res.x[:3] - res.x[3:], proj, atol=1e-5)


# -------------------------------------------------------------------------- inner problems
def test_analytic_inner_gradients_match_autograd():
    rng = np.random.default_rng(3)
    c = torch.as_tensor(rng.uniform(0, 2, (4, 5)))
    w = torch.as_tensor(rng.uniform(0, 0.1, (4, 5, 2))).requires_grad_(True)
    p = torch.as_tensor([[3.0], [6.0], [2.0], [1.0]])
    for fn in (
        lambda w: rbr.optimistic_loss(w, c, 0.8, p),
        lambda w: rbr.pessimistic_loss(w, c, 0.8, 0.5, p),
    ):
        loss, grad = fn(w)
        (auto,) = torch.autograd.grad(loss.sum(), w)
        np.testing.assert_allclose(grad.detach().numpy(), auto.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", ["optimistic", "pessimistic"])
def test_inner_solutions_match_scipy(kind):
    c_values = np.array([[0.05, 0.3, 0.8, 1.5, 3.0]])
    sigma, eps, p_value = 1.0, 0.6, 4.0
    c = torch.as_tensor(c_values)
    p = torch.tensor([[p_value]])
    if kind == "optimistic":
        fn, radius = (lambda w, cc: rbr.optimistic_loss(w, cc, sigma, p)), eps
    else:
        fn = lambda w, cc: rbr.pessimistic_loss(w, cc, sigma, eps, p)  # noqa: E731
        radius = eps / np.sqrt(p_value)
    mask = torch.ones_like(c, dtype=torch.bool)
    w = rbr.solve_inner(fn, c, mask, radius, 1000)
    ours, _ = fn(w, c)
    for j, cj in enumerate(c_values[0]):

        def objective(v, cj=cj):
            loss, _ = fn(torch.as_tensor(v).reshape(1, 1, 2), torch.tensor([[cj]]))
            return float(loss)

        best = min(
            (
                minimize(
                    objective,
                    start,
                    method="SLSQP",
                    bounds=[(0, None)] * 2,
                    constraints=[{"type": "ineq", "fun": lambda v: radius**2 - v @ v}],
                    options={"ftol": 1e-14},
                )
                for start in ([0.0, 0.0], [radius / 2, 0.0], [0.0, radius / 2])
            ),
            key=lambda res: res.fun,
        )
        assert float(ours[0, j]) == pytest.approx(best.fun, abs=1e-4)
        assert np.linalg.norm(w[0, j].numpy()) <= radius + 1e-12
        assert (w[0, j] >= 0).all()


# ------------------------------------------------------------------------- boundary search
def test_boundary_point_is_the_cheapest_first_flip(toy):
    schema, model, X = toy.schema, toy.model, toy.factuals[:8]
    method = rbr.RBR(**SMALL).fit(model, toy.splits)
    lo, hi = schema.bounds_for(X)
    n_lambdas, k = 100, 20
    X_b, found, step, target = rbr.find_boundary(
        model, X, method.candidates_, lo, hi, k, n_lambdas, schema
    )
    assert found.sum() >= 5
    assert np.isnan(X_b[~found]).all() and (step[~found] == -1).all()
    lam = rbr.lambda_grid(n_lambdas)
    f = found
    assert accepts(model, X_b[f]).all()
    before = schema.snap(X[f] + lam[step[f] - 1, None] * (target[f] - X[f]), X[f])
    assert not accepts(model, before).any()
    at = schema.snap(X[f] + lam[step[f], None] * (target[f] - X[f]), X[f])
    np.testing.assert_allclose(X_b[f], at)
    # brute force: every candidate and every grid point
    C = method.candidates_
    for i in range(len(X)):
        c = np.clip(C, lo[i], hi[i])
        D = np.abs(c - X[i]).sum(axis=1)
        nearest = np.argsort(D, kind="stable")[:k]
        best = np.inf
        for j in nearest:
            if D[j] == 0:
                continue
            points = schema.snap(X[i] + lam[1:, None] * (c[j] - X[i]), np.tile(X[i], (99, 1)))
            flips = np.flatnonzero(accepts(model, points))
            if flips.size:
                best = min(best, lam[1 + flips[0]] * D[j])
        if not found[i]:
            assert best == np.inf
            continue
        assert lam[step[i]] * np.abs(target[i] - X[i]).sum() == pytest.approx(best, rel=1e-12)


def test_max_pairwise_distance_exact_and_bounded():
    rng = np.random.default_rng(4)
    X = rng.uniform(0, 1, (300, 5))
    brute = max(np.linalg.norm(a - b) for a, b in itertools.combinations(X, 2))
    assert rbr.max_pairwise_distance(X) == pytest.approx(brute, rel=1e-12)
    rough = rbr.max_pairwise_distance(X, exact_rows=20)
    assert brute / 2 <= rough <= brute + 1e-12


# ---------------------------------------------------------------------------- outer loop
def test_descent_stays_in_the_l1_ball_and_the_box(toy):
    schema, model, X = toy.schema, toy.model, toy.factuals
    method = rbr.RBR(random_state=0, num_samples=60, max_iter=200, delta_plus=0.3)
    method.fit(model, toy.splits)
    lo, hi = schema.bounds_for(X)
    X_b, found, _, _ = rbr.find_boundary(model, X, method.candidates_, lo, hi, 100, 100, schema)
    x0, x_b, lo, hi = X[found], X_b[found], lo[found], hi[found]
    delta = np.abs(x_b - x0).sum(axis=1) + 0.3
    offsets = rbr.sample_ball(x_b, lo < hi, 0.5, 60, torch.Generator().manual_seed(0))
    assert (offsets[torch.as_tensor(lo == hi)[:, None, :].expand_as(offsets)] == 0).all()
    assert (torch.linalg.vector_norm(offsets, dim=2) <= 0.5 + 1e-12).all()
    flat = (torch.as_tensor(x_b)[:, None, :] + offsets).reshape(-1, X.shape[1]).numpy()
    positive = torch.as_tensor(accepts(model, flat).reshape(len(x0), 60))
    x = method._descend(x0, x_b, delta, offsets, positive, lo, hi, lo < hi)
    assert (np.abs(x - x0).sum(axis=1) <= delta + 1e-9).all()
    assert (x >= lo - 1e-12).all() and (x <= hi + 1e-12).all()
    assert (np.abs(x - x_b).sum(axis=1) > 1e-6).any()  # it moved


def test_generate_on_a_logistic_model_keeps_the_contract():
    problem = toy_problem(model="logreg")
    method = rbr.RBR(random_state=0, **SMALL).fit(problem.model, problem.splits)
    out = method.generate(problem.factuals)
    found = assert_recourse_contract(problem.schema, problem.model, problem.factuals, out)
    assert found.mean() >= 0.8


def test_positive_radii_run_and_keep_the_contract(toy):
    method = rbr.RBR(
        random_state=0, epsilon_op=0.5, epsilon_pe=0.5, inner_max_iter=50, **SMALL
    ).fit(toy.model, toy.splits)
    method.max_iter = 5
    out = method.generate(toy.factuals[:10])
    found = assert_recourse_contract(toy.schema, toy.model, toy.factuals[:10], out)
    assert found.any()


def test_conformance_kit():
    check_method(rbr.RBR(random_state=0))
