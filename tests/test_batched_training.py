"""Batched training of K torch models (``TorchTrainer.fit_many``) against per-model training."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from recourse_bench import registry
from recourse_bench.api import Trainer
from recourse_bench.models._torch import Schedule, torch_generator, train_many

TOL = 1e-8


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    y = (X @ rng.normal(size=5) + 0.5 * rng.normal(size=300) > 0).astype(float)
    return X, y


def mlp(**params):
    return registry.get("model", "mlp")(hidden=(8, 8), **params)


def logits(model, X):
    return model.decision_function(X)


def close(a, b, X):
    np.testing.assert_allclose(logits(a, X), logits(b, X), rtol=0, atol=TOL)


@pytest.mark.parametrize(
    "params",
    [
        {"epochs": 40, "batch_size": None, "n_iter_no_change": None},
        {"epochs": 15, "batch_size": 64},
        {},
    ],
    ids=["full-batch", "mini-batch", "default"],
)
def test_batched_equals_per_model_with_other_seeds_and_sizes(data, params):
    X, y = data
    trainer = mlp(**params)
    samples = [(X, y), (X[:211], y[:211]), (X[50:], y[50:])]
    seeds = [3, 4, 5]
    batched = trainer.fit_many(samples, seeds)
    for model, (Xk, yk), seed in zip(batched, samples, seeds, strict=True):
        close(model, trainer.fit(Xk, yk, seed), X)
    assert not np.allclose(logits(batched[0], X), logits(batched[1], X))


def test_batched_training_is_deterministic(data):
    X, y = data
    trainer = mlp(epochs=10, batch_size=32)
    first = trainer.fit_many([(X, y)] * 3, [1, 2, 3])
    again = trainer.fit_many([(X, y)] * 3, [1, 2, 3])
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(logits(a, X), logits(b, X))


def test_per_model_learning_rates_epochs_and_adam_state(data):
    X, y = data
    trainers = [mlp(lr=0.01, epochs=12), mlp(lr=0.003, epochs=25), mlp(lr=0.02, epochs=5)]
    seeds = [7, 8, 9]
    models = trainers[0].fit_each(trainers, [(X, y)] * 3, seeds)
    for model, trainer, seed in zip(models, trainers, seeds, strict=True):
        alone = trainer.fit(X, y, seed)
        close(model, alone, X)
        assert (
            model.optimiser_state["state"][0]["step"] == alone.optimiser_state["state"][0]["step"]
        )
        assert model.optimiser_state["param_groups"][0]["lr"] == trainer.lr


def test_early_stopping_stops_each_model_on_its_own(data):
    X, y = data
    hard = y.copy()
    hard[::3] = 1 - hard[::3]  # noisy labels: the loss stalls early
    schedule = Schedule(epochs=300, lr=0.05, batch_size=64, tol=1e-3, n_iter_no_change=3)
    with torch.random.fork_rng():  # the same initial weights on every run
        torch.manual_seed(0)
        nets = [mlp().network(X.shape[1]) for _ in range(2)]
    samples = [(X, y), (X, hard)]
    alone = [
        train_many([copy.deepcopy(net)], [sample], [torch_generator(g)], [schedule])[0]
        for net, sample, g in zip(nets, samples, (1, 2), strict=True)
    ]
    models = train_many(nets, samples, [torch_generator(1), torch_generator(2)], [schedule] * 2)
    steps = [int(m.optimiser_state["state"][0]["step"]) for m in models]
    assert steps == [int(m.optimiser_state["state"][0]["step"]) for m in alone]
    assert all(s < 300 * 5 for s in steps)  # both stopped before 300 epochs of 5 batches
    assert steps[0] != steps[1]  # each at its own epoch


def test_default_trainer_fit_many_loops_over_fit(data):
    X, y = data
    forest = registry.get("model", "forest")(n_estimators=5)
    many = forest.fit_many([(X, y), (X[:200], y[:200])], [1, 2])
    np.testing.assert_array_equal(
        many[1].predict_proba(X), forest.fit(X[:200], y[:200], 2).predict_proba(X)
    )
    assert Trainer.fit_many is not type(mlp()).fit_many


@pytest.mark.parametrize(
    ("shift", "params"),
    [
        ("retrain-seed", {}),
        ("bootstrap", {}),
        ("hyperparameters", {}),
        ("architecture", {}),
    ],
)
def test_shifts_train_the_models_of_a_loop_over_fit(shift, params):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(float)
    trainer = mlp(epochs=8, batch_size=50)
    splits = _splits(X, y)
    shift_ = registry.get("shift", shift)(n_models=4, **params)
    models = shift_.updates(splits, trainer, None, seed=3)
    expected = _loop(shift_, splits, trainer, seed=3)
    for a, b in zip(models, expected, strict=True):
        close(a, b, X)


def _splits(X, y):
    """A stand-in for Splits with the training split the shifts read."""

    class Data:
        X_train, y_train, X_test, y_test = X, y, X, y

    return Data()


def _loop(shift, splits, trainer, seed):
    seeds = shift.draw_seeds(seed, shift.n_models)
    if shift.name == "retrain-seed":
        return [trainer.fit(splits.X_train, splits.y_train, s) for s in seeds]
    if shift.name == "bootstrap":
        from recourse_bench.seeding import numpy_rng

        return [trainer.fit(*shift.sample(splits, numpy_rng(s)), s) for s in seeds]
    return [t.fit(splits.X_train, splits.y_train, s) for t, s in shift.trainers(trainer, seed)]
