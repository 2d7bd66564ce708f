"""Timing of the updated models of a shift: the harness's wave 1, shared by every method.

Run with ``python -m pytest benchmarks/perf/test_perf_shifts.py`` (German and Adult are
embedded). Each shift trains (or perturbs) 10 updated models of the base model, as in the
benchmark configs; Adult's default MLP retrained with 10 new seeds (one batched ``fit_many``)
is timed once at 1 and at 2 torch threads, and the other training shifts of
``multiplicity.yaml`` on Adult once at 1 thread. Each benchmark checks that it produced 10 models
that disagree with the base model somewhere, so a shift that silently returned copies would
fail.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recourse_bench import registry

N_MODELS = 10
GERMAN_SHIFTS = [
    ("retrain-seed", {}),
    ("bootstrap", {}),
    ("hyperparameters", {}),
    ("finetune", {}),
    ("architecture", {}),
    ("weight-perturbation", {"severity": 0.05}),
    ("covariate", {}),
    ("label-shift", {}),
]


def base(dataset: str, model: str):
    splits = registry.get("dataset", dataset)().load(0)
    trainer = registry.get("model", model)()
    return splits, trainer, trainer.fit(splits.X_train, splits.y_train, seed=0)


@pytest.fixture(scope="module")
def german_mlp():
    return base("german", "mlp")


def check_updates(updates, splits, deployed):
    assert len(updates) == N_MODELS
    before = deployed.predict(splits.X_test)
    assert any((m.predict(splits.X_test) != before).any() for m in updates)


@pytest.mark.parametrize(("name", "params"), GERMAN_SHIFTS, ids=[n for n, _ in GERMAN_SHIFTS])
def test_10_updated_models_of_german_mlp(benchmark, german_mlp, name, params):
    splits, trainer, deployed = german_mlp
    shift = registry.get("shift", name)(n_models=N_MODELS, **params)
    updates = benchmark.pedantic(
        lambda: list(shift.updates(splits, trainer, deployed, 0)), rounds=3, iterations=1
    )
    check_updates(updates, splits, deployed)


@pytest.fixture(scope="module")
def adult_mlp():
    return base("adult", "mlp")


def timed_once(benchmark, shift, cell, threads: int) -> list:
    """The shift's updated models of ``cell``, timed in one round at ``threads`` torch threads."""
    splits, trainer, deployed = cell
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return benchmark.pedantic(
            lambda: list(shift.updates(splits, trainer, deployed, 0)), rounds=1, iterations=1
        )
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("threads", [1, 2])
def test_10_retrained_adult_mlps(benchmark, adult_mlp, threads):
    """Adult's default MLP retrained with 10 seeds by the shift: one batched ``fit_many``.

    Timed at 1 torch thread (as each harness worker runs) and at 2 (the machine's cores).
    """
    splits, _, deployed = adult_mlp
    shift = registry.get("shift", "retrain-seed")(n_models=N_MODELS)
    updates = timed_once(benchmark, shift, adult_mlp, threads)
    check_updates(updates, splits, deployed)
    benchmark.extra_info["models"] = N_MODELS
    benchmark.extra_info["threads"] = threads
    assert np.isfinite([m.predict_proba(splits.X_test[:5]) for m in updates]).all()


@pytest.mark.parametrize("name", ["bootstrap", "architecture", "hyperparameters", "finetune"])
def test_10_updated_adult_mlps(benchmark, adult_mlp, name):
    """The other training shifts of ``multiplicity.yaml`` on Adult's MLP, at 1 torch thread.

    ``finetune`` (severity 0.5, as in the config) trains each copy for half the epochs the
    base model trained (one model at a time); the others are one batched call each.
    """
    splits, _, deployed = adult_mlp
    params = {"severity": 0.5} if name == "finetune" else {}
    shift = registry.get("shift", name)(n_models=N_MODELS, **params)
    updates = timed_once(benchmark, shift, adult_mlp, 1)
    check_updates(updates, splits, deployed)
