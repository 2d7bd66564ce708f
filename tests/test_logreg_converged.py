"""Logistic regression trained to convergence (issue 22): the optimum, whatever the seed.

The oracle is scikit-learn's ``LogisticRegression(C=1 / (n * weight_decay))``, which minimises
the same objective (times C n) with an unpenalised intercept; the objective and its gradient
are also recomputed here in numpy, independently of the solver.
"""

import copy

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from recourse_bench import registry
from recourse_bench.api import ConfigError, Finetunable, Tunable
from recourse_bench.models import _newton
from recourse_bench.models._newton import fit_logistic
from recourse_bench.models._torch import TorchClassifier

from .conftest import data_available

LogReg = registry.get("model", "logreg")


def objective(X, y, coef, intercept, lam):
    """The penalised mean log-loss, in numpy."""
    s = X @ coef + intercept
    return np.mean(np.logaddexp(0.0, s) - y * s) + 0.5 * lam * coef @ coef


def gradient(X, y, coef, intercept, lam):
    """Its gradient (w then b), in numpy."""
    residual = 1.0 / (1.0 + np.exp(-(X @ coef + intercept))) - y
    return np.append(X.T @ residual / len(y) + lam * coef, residual.mean())


def sklearn_oracle(X, y, lam):
    model = LogisticRegression(C=1.0 / (len(y) * lam), solver="newton-cholesky", tol=1e-8)
    model.fit(X, y)
    return model.coef_[0], float(model.intercept_[0])


@pytest.fixture(scope="module")
def gaussians():
    return registry.get("dataset", "synthetic-gaussians")(n_samples=600).load(0)


@pytest.fixture(scope="module")
def german():
    if not data_available():
        pytest.skip("reference data folder absent")
    return registry.get("dataset", "german")().load(0)


@pytest.fixture(scope="module")
def scaled():
    """A harder synthetic problem: correlated columns on different scales, noisy labels."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(500, 6)) @ rng.normal(size=(6, 6)) * np.array([1, 5, 0.2, 1, 3, 1])
    y = (X @ rng.normal(size=6) + rng.logistic(size=500) > 0.5).astype(int)
    return X, y


def samples_of(request, name):
    """The training rows of a fixture, in float64 (scikit-learn fits float32 in float32)."""
    if name == "scaled":
        return request.getfixturevalue("scaled")
    splits = request.getfixturevalue(name)
    return splits.X_train.astype(np.float64), splits.y_train


# ----------------------------------------------------------------------------------- the oracle
@pytest.mark.parametrize("name", ["german", "gaussians", "scaled"])
@pytest.mark.parametrize("lam", [1e-4, 1e-2])
def test_newton_finds_the_optimum_scikit_learn_finds(request, name, lam):
    X, y = samples_of(request, name)
    model = LogReg(weight_decay=lam).fit(X, y, 0)
    coef, intercept = sklearn_oracle(X, y, lam)
    np.testing.assert_allclose(model.coef_, coef, atol=1e-4)
    assert model.intercept_ == pytest.approx(intercept, abs=1e-4)
    ours = objective(X, y, model.coef_, model.intercept_, lam)
    assert ours <= objective(X, y, coef, intercept, lam) + 1e-13  # never worse than sklearn
    assert np.abs(gradient(X, y, model.coef_, model.intercept_, lam)).max() <= 1e-9


def test_the_intercept_is_not_penalised(scaled):
    X, y = scaled
    offset = np.arange(1.0, 7.0)
    model = LogReg(weight_decay=1e-2).fit(X, y, 0)
    moved = LogReg(weight_decay=1e-2).fit(X + offset, y, 0)  # the same model, moved origin
    np.testing.assert_allclose(moved.coef_, model.coef_, atol=1e-9)
    assert moved.intercept_ == pytest.approx(model.intercept_ - model.coef_ @ offset, abs=1e-8)


def test_weight_decay_is_the_l2_strength(scaled):
    X, y = scaled
    strong, weak = (LogReg(weight_decay=lam).fit(X, y, 0) for lam in (1.0, 1e-4))
    assert np.linalg.norm(strong.coef_) < 0.5 * np.linalg.norm(weak.coef_)
    assert np.abs(gradient(X, y, strong.coef_, strong.intercept_, 1.0)).max() <= 1e-9


def test_without_penalty_on_separable_data_it_stops_at_max_iter():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 2))
    y = (X[:, 0] > 0).astype(int)
    result = fit_logistic([(X, y)], 0.0, tol=1e-10, max_iter=30)
    assert result.iterations[0] <= 30 and np.isfinite(result.coef).all()
    model = LogReg(weight_decay=0.0, max_iter=30).fit(X, y, 0)
    assert (model.predict(X) == y).all()


# -------------------------------------------------------------------------------- the seed
@pytest.mark.parametrize("name", ["german", "gaussians"])
def test_retraining_with_another_seed_gives_the_same_model(request, name):
    X, y = samples_of(request, name)
    first, other = LogReg().fit(X, y, 0), LogReg().fit(X, y, 12345)
    np.testing.assert_allclose(other.coef_, first.coef_, rtol=0, atol=1e-10)
    assert other.intercept_ == pytest.approx(first.intercept_, abs=1e-10)
    np.testing.assert_array_equal(other.predict(X), first.predict(X))
    adam = [LogReg(solver="adam", epochs=50).fit(X, y, seed) for seed in (0, 12345)]
    assert not np.allclose(adam[0].coef_, adam[1].coef_, atol=1e-6)  # Adam's seeds differ


def test_the_retrain_seed_shift_moves_nothing(gaussians):
    base = LogReg().fit(gaussians.X_train, gaussians.y_train, 0)
    shift = registry.get("shift", "retrain-seed")(n_models=3)
    X = np.vstack([gaussians.X_test, gaussians.X_train])
    for model in shift.updates(gaussians, LogReg(), base, seed=1):
        np.testing.assert_allclose(model.decision_function(X), base.decision_function(X), atol=1e-9)


# ------------------------------------------------------------------------------------ batching
def test_fit_many_equals_fit_per_model_on_samples_of_different_sizes(gaussians):
    X, y = gaussians.X_train, gaussians.y_train
    rng = np.random.default_rng(0)
    rows = [rng.integers(0, len(X), size) for size in (len(X), 150, 60, len(X) - 7)]
    samples = [(X[r], y[r]) for r in rows]
    trainer = LogReg(weight_decay=1e-3)
    many = trainer.fit_many(samples, [4, 5, 6, 7])
    assert len(many) == 4 and all(isinstance(m, TorchClassifier) and m.linear for m in many)
    for model, (X_k, y_k) in zip(many, samples, strict=True):
        alone = trainer.fit(X_k, y_k, 0)
        np.testing.assert_allclose(model.coef_, alone.coef_, rtol=0, atol=1e-10)
        assert model.intercept_ == pytest.approx(alone.intercept_, abs=1e-10)
    assert not np.allclose(many[1].coef_, many[2].coef_, atol=1e-3)  # the samples differ
    assert trainer.fit_many([], []) == []


def test_batches_that_fit_the_memory_budget_change_nothing(scaled, monkeypatch):
    X, y = scaled
    samples = [(X, y), (X[:300], y[:300]), (X[100:], y[100:])]
    whole = fit_logistic(samples, [1e-3, 1e-2, 1e-1], tol=1e-11, max_iter=50)
    monkeypatch.setattr(_newton, "BATCH_BYTES", 8 * 7 * 500 * 2)  # two models per batch
    assert _newton._chunks(samples) == [[0, 1], [2]]
    split = fit_logistic(samples, [1e-3, 1e-2, 1e-1], tol=1e-11, max_iter=50)
    np.testing.assert_allclose(split.coef, whole.coef, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(split.iterations, whole.iterations)
    with pytest.raises(ValueError, match="columns"):
        fit_logistic([(X, y), (X[:, :3], y)], 1e-3, tol=1e-8, max_iter=5)


def test_a_batch_solves_each_penalty_alone(scaled):
    X, y = scaled
    batch = fit_logistic([(X, y), (X[:300], y[:300])], [1e-3, 1e-1], tol=1e-11, max_iter=50)
    for k, (rows, lam) in enumerate([(slice(None), 1e-3), (slice(0, 300), 1e-1)]):
        alone = fit_logistic([(X[rows], y[rows])], lam, tol=1e-11, max_iter=50)
        np.testing.assert_allclose(batch.coef[k], alone.coef[0], rtol=0, atol=1e-10)
        assert batch.iterations[k] == alone.iterations[0]


def test_fit_each_solves_weight_decay_variants_as_one_batch(gaussians, monkeypatch):
    X, y = gaussians.X_train, gaussians.y_train
    trainers = [
        LogReg(weight_decay=1e-3),
        LogReg(solver="adam", epochs=10),
        LogReg(weight_decay=1e-1),
        LogReg(weight_decay=1e-2, max_iter=3),  # another max_iter: another batch
    ]
    samples = [(X, y), (X, y), (X[:200], y[:200]), (X, y)]
    calls = []
    original = LogReg.newton

    def recording(self, samples, start, max_iter, penalties=None):
        calls.append(list(penalties))
        return original(self, samples, start, max_iter, penalties)

    monkeypatch.setattr(LogReg, "newton", recording)
    models = LogReg().fit_each(trainers, samples, [1, 2, 3, 4])
    monkeypatch.undo()
    assert calls == [[1e-3, 1e-1], [1e-2]]
    for model, trainer, (X_k, y_k), seed in zip(
        models, trainers, samples, [1, 2, 3, 4], strict=True
    ):
        alone = trainer.fit(X_k, y_k, seed)
        np.testing.assert_allclose(model.coef_, alone.coef_, rtol=0, atol=1e-10)


def test_adam_fit_many_equals_fit(gaussians):
    X, y = gaussians.X_train, gaussians.y_train
    trainer = LogReg(solver="adam", epochs=20)
    many = trainer.fit_many([(X, y), (X[:100], y[:100])], [1, 2])
    np.testing.assert_allclose(many[0].coef_, trainer.fit(X, y, 1).coef_, atol=1e-8)
    np.testing.assert_allclose(many[1].coef_, trainer.fit(X[:100], y[:100], 2).coef_, atol=1e-8)


# ----------------------------------------------------------------------------------------- adam
def former_training(X, y, seed, *, epochs, lr, batch_size, weight_decay):
    """The logreg training before the Newton solver: a plain Adam loop on one linear layer.

    (It gives bit for bit the models of the package before the change.)

    Weights U(-1/sqrt(d), 1/sqrt(d)) from a generator seeded with ``seed`` (weight, then
    bias), which then shuffles the mini-batches; Adam on the mean binary cross-entropy.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        net = nn.Linear(X.shape[1], 1).to(torch.float64)
    bound = 1.0 / np.sqrt(X.shape[1])
    nn.init.uniform_(net.weight, -bound, bound, generator=generator)
    nn.init.uniform_(net.bias, -bound, bound, generator=generator)
    X_t, y_t = torch.as_tensor(X, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    n = len(X_t)
    size = n if batch_size is None or batch_size >= n else batch_size
    optimiser = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator) if size < n else torch.arange(n)
        for start in range(0, n, size):
            rows = order[start : start + size]
            optimiser.zero_grad()
            loss = nn.functional.binary_cross_entropy_with_logits(
                net(X_t[rows]).reshape(-1), y_t[rows]
            )
            loss.backward()
            optimiser.step()
    return net.weight.detach().numpy().reshape(-1), float(net.bias.detach()[0])


@pytest.mark.parametrize("params", [{}, {"batch_size": 64, "epochs": 5, "lr": 0.01}])
def test_adam_solver_reproduces_the_former_training(gaussians, params):
    X, y = gaussians.X_train, gaussians.y_train
    old = {"epochs": 300, "lr": 0.05, "batch_size": None, "weight_decay": 1e-4, **params}
    model = LogReg(solver="adam", **params).fit(X, y, 7)
    coef, intercept = former_training(X, y, 7, **old)
    # the shared torch engine trains K stacked models; alone it matches the loop to rounding
    np.testing.assert_allclose(model.coef_, coef, rtol=1e-12, atol=1e-13)
    assert model.intercept_ == pytest.approx(intercept, rel=1e-12, abs=1e-13)


# ------------------------------------------------------------------------------------- shifts
def test_capabilities_follow_the_solver():
    newton, adam = LogReg(), LogReg(solver="adam")
    assert isinstance(newton, Finetunable) and isinstance(newton, Tunable)
    assert newton.tunable_hyperparameters == ("weight_decay",)
    assert adam.tunable_hyperparameters == ("lr", "epochs")
    assert newton.architecture_variants() == []


def test_finetune_severity_zero_copies_and_large_severity_reaches_the_new_optimum(gaussians):
    X, y = gaussians.X_train, gaussians.y_train
    trainer = LogReg()
    base = trainer.fit(X[:200], y[:200], 0)
    kept = copy.deepcopy(base.coef_)
    same = trainer.finetune(base, X, y, 3, 0.0)
    assert same is not base
    np.testing.assert_array_equal(same.coef_, base.coef_)
    target = trainer.fit(X, y, 0)
    tuned = trainer.finetune(base, X, y, 3, 1.0)
    np.testing.assert_allclose(tuned.coef_, target.coef_, rtol=0, atol=1e-9)
    assert tuned.intercept_ == pytest.approx(target.intercept_, abs=1e-9)
    one_step = trainer.finetune(base, X, y, 3, 0.01)  # round(0.01 * 100) = 1 iteration
    distance = [np.abs(m.coef_ - target.coef_).max() for m in (base, one_step)]
    assert 1e-9 < distance[1] < distance[0]
    np.testing.assert_array_equal(base.coef_, kept)  # the base model is never modified


def test_finetune_with_adam_resumes_adam(gaussians):
    X, y = gaussians.X_train, gaussians.y_train
    trainer = LogReg(solver="adam", epochs=20)
    tuned = trainer.finetune(trainer.fit(X, y, 0), X, y, 1, 0.5)
    assert tuned.optimiser_state["state"][0]["step"] == 30


def test_hyperparameters_shift_perturbs_the_weight_decay(gaussians):
    base = LogReg().fit(gaussians.X_train, gaussians.y_train, 0)
    shift = registry.get("shift", "hyperparameters")(severity=2.0, n_models=3)
    built = shift.trainers(LogReg(), seed=0)
    decays = [t.weight_decay for t, _ in built]
    assert len(set(decays)) == 3 and all(1e-4 / 4 <= d <= 4e-4 for d in decays)
    for trainer, decay in zip((t for t, _ in built), decays, strict=True):
        assert trainer.get_params() == {**LogReg().get_params(), "weight_decay": decay}
    models = shift.updates(gaussians, LogReg(), base, seed=0)
    assert len({m.coef_.tobytes() for m in models}) == 3


def test_weight_perturbation_still_works(gaussians):
    base = LogReg().fit(gaussians.X_train, gaussians.y_train, 0)
    moved = base.perturbed(0.1, "uniform", np.random.default_rng(0))
    assert moved.linear
    shift = np.append(moved.coef_ - base.coef_, moved.intercept_ - base.intercept_)
    assert 0 < np.abs(shift).min() and np.abs(shift).max() <= 0.1


# ------------------------------------------------------------------------------------- params
@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({"solver": "sgd"}, "solver"),
        ({"tol": -1e-3}, "tol"),
        ({"max_iter": 0}, "max_iter"),
        ({"max_iter": 2.5}, "max_iter"),
        ({"weight_decay": -1.0}, "weight_decay"),
    ],
)
def test_bad_parameters_raise_config_error(gaussians, params, bad):
    X, y = gaussians.X_train, gaussians.y_train
    with pytest.raises(ConfigError, match=bad):
        LogReg(**params).fit(X, y, 0)
    with pytest.raises(ConfigError, match=bad):
        LogReg(**params).fit_many([(X, y)], [0])


def test_bad_fit_many_and_finetune_arguments(gaussians):
    X, y = gaussians.X_train, gaussians.y_train
    with pytest.raises(ConfigError, match="seeds"):
        LogReg().fit_many([(X, y)], [0, 1])
    base = LogReg().fit(X, y, 0)
    with pytest.raises(ConfigError, match="severity"):
        LogReg().finetune(base, X, y, 0, -0.5)
