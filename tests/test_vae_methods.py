"""REVISE, CCHVAE and CRUDS: recourse decoded from a latent point, one shared network, the kit.

The oracle of a latent-space method is its own decoder: every recourse it returns must be the
snapped decoding of the latent point it reports, ``schema.snap(decode(latent, x), x)``, and the
model must accept exactly that row. The tests also check what the three searches promise beyond
that (CRUDS keeps the factual's label-free code ``z``; CCHVAE's first shell bounds the distance
when the model accepts everything; REVISE's L1 weight trades validity for proximity) and the
shared network: trained once per (data, configuration, seed) in a process, reused by REVISE and
CCHVAE, never by a fit with ``random_state=None``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from recourse_bench.api import NotApplicable, Schema, Splits
from recourse_bench.methods.vae import CCHVAE, CRUDS, Revise
from recourse_bench.methods.vae import shared as vae_shared
from recourse_bench.models import linear_classifier
from recourse_bench.testing import parametrize_with_checks, toy_problem

FAST = {"vae_layers": (32, 16, 4), "vae_epochs": 5, "vae_batch_size": 64, "progress": False}
METHODS = {
    "revise": lambda **kw: Revise(max_iter=150, **{**FAST, **kw}),
    "cchvae": lambda **kw: CCHVAE(n_search_samples=50, max_iter=200, **{**FAST, **kw}),
    "cruds": lambda **kw: CRUDS(max_iter=300, lr=0.05, **{**FAST, **kw}),
}


@pytest.fixture(autouse=True)
def fresh_cache():
    """Each test starts from an empty network cache (and leaves none behind)."""
    vae_shared.clear()
    yield
    vae_shared.clear()


@pytest.fixture(scope="module")
def problem():
    return toy_problem(0, "mlp")


def fitted(name: str, problem, **params):
    return METHODS[name](random_state=0, **params).fit(problem.model, problem.splits)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_each_recourse_decodes_from_its_latent_point_and_is_accepted(problem, name):
    method = fitted(name, problem)
    X = problem.factuals
    found = method.search(X)
    ok = ~np.isnan(found.recourses).any(axis=1)
    assert ok.sum() >= 5, f"{name} found {ok.sum()} of {len(X)}"
    # NaN exactly where nothing was found, in both arrays
    assert np.array_equal(ok, ~np.isnan(found.latent).any(axis=1))
    redecoded = method.schema_.snap(method.decode(found.latent, X), X)
    np.testing.assert_allclose(redecoded[ok], found.recourses[ok], atol=1e-6)
    assert (problem.model.predict(found.recourses[ok]) == 1).all()
    assert not method.schema_.violations(found.recourses[ok], X[ok]).any()
    # generate returns the same rows as search
    np.testing.assert_array_equal(method.generate(X), found.recourses)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_immutable_columns_are_the_factuals(problem, name):
    method = fitted(name, problem)
    X = problem.factuals
    out = method.generate(X)
    ok = ~np.isnan(out).any(axis=1)
    fixed = ~method.schema_.mutable_mask
    assert fixed.any()
    np.testing.assert_array_equal(out[ok][:, fixed], X[ok][:, fixed])


@pytest.mark.parametrize("name", sorted(METHODS))
def test_same_random_state_same_recourses(problem, name):
    first = fitted(name, problem).generate(problem.factuals)
    vae_shared.clear()  # the second fit trains its network again, from the same seed
    second = fitted(name, problem).generate(problem.factuals)
    np.testing.assert_array_equal(first, second)


def test_cruds_keeps_the_factuals_label_free_code(problem):
    method = fitted("cruds", problem)
    X = problem.factuals
    found = method.search(X)
    ok = ~np.isnan(found.latent).any(axis=1)
    assert ok.any()
    with torch.no_grad():
        x_mutable = torch.as_tensor(X[:, method.mutable_], dtype=torch.float32)
        z = method.vae_.start(x_mutable).numpy()
    np.testing.assert_allclose(found.latent[ok, : z.shape[1]], z[ok], atol=1e-6)
    # only the label code w (the last two coordinates) moved
    assert found.latent.shape[1] == z.shape[1] + 2


def test_cchvae_stops_in_the_first_shell_when_every_point_is_accepted(problem):
    accept_all = linear_classifier(np.zeros(problem.factuals.shape[1]), 10.0)
    method = CCHVAE(
        n_search_samples=20, step=0.25, max_iter=50, p_norm=2, random_state=0, **FAST
    ).fit(accept_all, problem.splits)
    X = problem.factuals
    found = method.search(X)
    assert not np.isnan(found.recourses).any()
    with torch.no_grad():
        start = method.vae_.start(torch.as_tensor(X[:, method.mutable_], dtype=torch.float32))
    radius = np.linalg.norm(found.latent - start.numpy(), axis=1)
    assert (radius <= 0.25 + 1e-5).all()


def test_revise_trades_validity_for_proximity(problem):
    X = problem.factuals
    near = fitted("revise", problem, lam=5.0).generate(X)
    far = fitted("revise", problem, lam=0.0).generate(X)
    found = ~np.isnan(near).any(axis=1) & ~np.isnan(far).any(axis=1)
    assert found.sum() >= 5
    cost = lambda R: np.abs(R[found] - X[found]).sum(axis=1).mean()  # noqa: E731
    assert cost(near) <= cost(far)


def test_revise_and_cchvae_share_one_trained_vae(problem):
    before = vae_shared.TRAININGS["vae"]
    revise = fitted("revise", problem)
    cchvae = fitted("cchvae", problem)
    assert revise.vae_ is cchvae.vae_
    assert vae_shared.TRAININGS["vae"] == before + 1
    # a different seed is a different network
    other = METHODS["revise"](random_state=1).fit(problem.model, problem.splits)
    assert other.vae_ is not revise.vae_
    assert vae_shared.TRAININGS["vae"] == before + 2


def test_cruds_trains_its_own_csvae_once(problem):
    before = dict(vae_shared.TRAININGS)
    first = fitted("cruds", problem)
    second = fitted("cruds", problem, lam=0.01)  # search parameters do not touch the network
    assert first.vae_ is second.vae_
    assert vae_shared.TRAININGS["csvae"] == before.get("csvae", 0) + 1
    assert vae_shared.TRAININGS["vae"] == before.get("vae", 0)


def test_the_network_does_not_depend_on_the_deployed_model(problem):
    revise = fitted("revise", problem)
    other_model = linear_classifier(np.ones(problem.factuals.shape[1]), -4.0)
    again = METHODS["cchvae"](random_state=0).fit(other_model, problem.splits)
    assert again.vae_ is revise.vae_


def test_random_state_none_trains_a_network_of_its_own(problem):
    before = vae_shared.TRAININGS["vae"]
    first = METHODS["revise"](random_state=None).fit(problem.model, problem.splits)
    second = METHODS["revise"](random_state=None).fit(problem.model, problem.splits)
    assert first.vae_ is not second.vae_
    assert vae_shared.TRAININGS["vae"] == before + 2


def test_vae_parameters_change_the_network(problem):
    first = fitted("revise", problem)
    wider = fitted("revise", problem, vae_layers=(48, 16, 4))
    assert wider.vae_ is not first.vae_


def test_the_vae_training_loss_falls(problem):
    history = fitted("revise", problem).vae_history_
    losses = np.asarray(history.losses)
    assert losses[-1] < losses[0]


def test_an_all_immutable_schema_is_not_applicable(problem):
    schema = problem.splits.schema
    frozen = replace(schema, immutable=(True,) * len(schema.features))
    splits = replace(problem.splits, schema=frozen)
    with pytest.raises(NotApplicable, match="mutable"):
        METHODS["revise"](random_state=0).fit(problem.model, splits)


@parametrize_with_checks([Revise(), CCHVAE(), CRUDS()])
def test_conformance_kit(method, check):
    check(method)


# ------------------------------------------------- identity-generator reductions (CATALOGUE A4)
class IdentityNet(torch.nn.Module):
    """A 'generative model' whose latent space is the input space: encode x = x, decode z = z."""

    latent_dim = 2

    def start(self, x_mutable: torch.Tensor) -> torch.Tensor:
        return x_mutable.clone()

    def decode(self, latent: torch.Tensor, x_immutable: torch.Tensor) -> torch.Tensor:
        return latent


W, B = np.array([2.0, 1.0]), -1.5  # accepted where 2a + b >= 1.5 (log-odds scaled by 10)


def plane_problem():
    """Continuous [0, 1]^2, no immutables; rejected factuals whose projection stays in the box."""
    schema = Schema(
        features=("a", "b"),
        kinds=("continuous", "continuous"),
        immutable=(False, False),
        direction=(0, 0),
        lower=(0.0, 0.0),
        upper=(1.0, 1.0),
        steps=(0.0, 0.0),
    )
    rng = np.random.default_rng(0)
    X = rng.uniform(0.2, 0.8, size=(300, 2))
    y = (X @ W + B >= 0).astype(int)
    splits = Splits(X[:200], y[:200], X[200:], y[200:], schema)
    factuals = X[200:][X[200:] @ W + B < -0.1][:20]
    return splits, linear_classifier(10 * W, 10 * B), factuals


def with_identity(method, splits, model):
    method.fit(model, splits)
    method.vae_ = IdentityNet()
    return method


def test_cchvae_with_an_identity_generator_is_growing_spheres():
    splits, model, X = plane_problem()
    step = 0.05
    method = with_identity(
        CCHVAE(n_search_samples=300, step=step, p_norm=2, random_state=0, **FAST), splits, model
    )
    out = method.generate(X)
    assert not np.isnan(out).any()
    distance = np.linalg.norm(out - X, axis=1)
    d_star = np.abs(X @ W + B) / np.linalg.norm(W)  # the L2 distance to the boundary
    assert (distance >= d_star - 1e-9).all()  # nothing closer than the boundary is accepted
    assert (distance < d_star + step).all()  # the first shell that crosses it, in 2-D


def test_revise_with_an_identity_generator_is_input_space_descent():
    splits, model, X = plane_problem()
    method = with_identity(Revise(lam=0.5, random_state=0, **FAST), splits, model)
    out = method.generate(X)
    assert not np.isnan(out).any() and (model.predict(out) == 1).all()
    # REVISE minimises CE(h(c), 1) + lam ||c - x||_1. For h = sigmoid(10 (w.c + b)) the minimiser
    # moves a alone (the largest |w_j|) until 10 * w_a * sigmoid(-logit) = lam, i.e. until the
    # log-odds reach ln(10 * 2 / 0.5 - 1) = ln 39: t = (ln 39 / 10 - (w.x + b)) / w_a.
    t = (np.log(39.0) / 10 - (X @ W + B)) / W[0]
    inside = X[:, 0] + t <= 1.0  # the box does not bind
    assert inside.sum() >= 10
    expected = X.copy()
    expected[:, 0] += t
    np.testing.assert_allclose(out[inside], expected[inside], atol=0.03)
