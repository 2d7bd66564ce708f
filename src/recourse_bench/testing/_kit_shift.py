"""The conformance checks of a shift plugin: ``updates(...)`` gives the updated models.

Lifted from the project's shift invariant tests, on the toy data with the first toy trainer the
shift accepts (``logreg``, ``mlp``, ``forest``): ``updates`` returns ``n_models`` classifiers of
valid probabilities; the same seed gives the same models, without touching the global random
states; neither the base model nor the splits change; the updated models pickle; a trainer
without the capabilities the shift declares needs gets :class:`NotApplicable`, never a crash.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np

from .. import registry
from ..api import Classifier, NotApplicable, Shift, Trainer
from ._common import (
    COMPONENT_CHECKS,
    SkipCheck,
    checks_registry,
    describe_exception,
    fail,
    model_state,
    run_without_global_rng,
    state_changes,
)
from ._problem import TOY_MODELS, ToyProblem, toy_problem

CHECKS, _check = checks_registry(COMPONENT_CHECKS)

#: Updated models the kit asks for where the shift has ``n_models``.
N_MODELS = 3


def problem_for_shift(shift: Shift, seed: int = 0) -> tuple[ToyProblem | None, Trainer | None, str]:
    """The first toy problem and trainer whose models ``shift`` can update, or the refusals."""
    refusals = []
    for name in TOY_MODELS:
        trainer = registry.get("model", name)()
        reason = shift.not_applicable(trainer)
        if reason is None:
            return toy_problem(seed, name), trainer, "; ".join(refusals)
        refusals.append(f"{name}: {reason}")
    return None, None, "; ".join(refusals)


def _context(shift: Shift, problem: Any) -> tuple[ToyProblem, Trainer]:
    found, trainer, refusals = problem_for_shift(shift)
    if found is None or trainer is None:
        raise SkipCheck(f"no toy model this shift can update ({refusals})")
    return found, trainer


def _updates(
    shift: Shift, problem: ToyProblem, trainer: Trainer, seed: int = 7
) -> list[Classifier]:
    models = shift.updates(problem.splits, trainer, problem.model, seed)
    if not isinstance(models, list | tuple):
        raise fail(
            "updates(...) to return a list of classifiers",
            type(models).__name__,
            "return [classifier, ...] with one updated model per draw",
        )
    return list(models)


def _probas(models: list[Classifier], X: np.ndarray) -> list[np.ndarray]:
    return [np.asarray(model.predict_proba(X), dtype=float) for model in models]


@_check
def check_updated_models(shift: Shift, problem: Any) -> None:
    """``updates`` returns ``n_models`` classifiers whose probabilities are valid."""
    toy, trainer = _context(shift, problem)
    models = _updates(shift, toy, trainer)
    wanted = shift.get_params(deep=False).get("n_models")
    if wanted is not None and len(models) != wanted:
        raise fail(f"{wanted} updated models (n_models)", f"{len(models)}", "one per draw seed")
    if not models:
        raise fail("at least one updated model", "none", "return one model per draw")
    X = toy.splits.X_test
    for k, proba in enumerate(_probas(models, X)):
        if proba.shape != (len(X), 2) or not np.allclose(proba.sum(axis=1), 1.0):
            raise fail(
                "each updated model's predict_proba to be (n, 2) rows summing to 1",
                f"model {k}: shape {proba.shape}",
                "return classifiers of the trainer (trainer.fit) or copies of the base model",
            )


@_check
def check_deterministic_for_a_seed(shift: Shift, problem: Any) -> None:
    """The same seed gives the same models, and the global random states are left alone."""
    toy, trainer = _context(shift, problem)
    first: list[list[Classifier]] = []
    run_without_global_rng(
        lambda: first.append(_updates(shift, toy, trainer)),
        "updates",
        "draw from generators seeded by shift.draw_seeds(seed, n)",
    )
    again = _updates(shift, toy, trainer)
    X = toy.splits.X_test
    for a, b in zip(_probas(first[0], X), _probas(again, X), strict=False):
        if not np.array_equal(a, b):
            raise fail(
                "updates with the same seed twice to give the same models",
                "different predictions",
                "derive every draw from shift.draw_seeds(seed, n_models)",
            )


@_check
def check_inputs_not_mutated(shift: Shift, problem: Any) -> None:
    """``updates`` leaves the base model and the splits' arrays unchanged."""
    toy, trainer = _context(shift, problem)
    splits, base = toy.splits, toy.model
    arrays = {name: getattr(splits, name).copy() for name in ("X_train", "y_train", "X_test")}
    X = np.vstack([splits.X_train, splits.X_test])
    proba, state = np.asarray(base.predict_proba(X)).copy(), model_state(base)
    _updates(shift, toy, trainer)
    changed = [name for name, a in arrays.items() if not np.array_equal(a, getattr(splits, name))]
    if not np.array_equal(np.asarray(base.predict_proba(X)), proba):
        changed.append("the base model's predictions")
    changed += [f"base model {key}" for key in state_changes(state, model_state(base))]
    if changed:
        raise fail(
            "updates to leave its inputs unchanged",
            f"it changed {', '.join(changed)}",
            "train new models, or copy.deepcopy the base model before changing it",
        )


@_check
def check_updated_models_pickle(shift: Shift, problem: Any) -> None:
    """The updated models survive pickle (the harness caches them)."""
    toy, trainer = _context(shift, problem)
    models = _updates(shift, toy, trainer)
    try:
        restored = pickle.loads(pickle.dumps(models))
    except Exception as exc:
        raise fail(
            "the updated models to pickle",
            describe_exception(exc),
            "keep no lambdas, open files or locks in the models",
        ) from exc
    X = toy.splits.X_test
    for a, b in zip(_probas(models, X), _probas(restored, X), strict=True):
        if not np.array_equal(a, b):
            raise fail("the unpickled models to predict the same", "different predictions", "")


class _BareTrainer(Trainer):
    """A trainer with nothing but ``fit``: no capability a shift may need."""

    name = "bare"

    def fit(self, X: np.ndarray, y: np.ndarray, seed: int) -> Classifier:
        """Train the toy logistic regression."""
        return registry.get("model", "logreg")().fit(X, y, seed)


@_check
def check_capabilities_declared(shift: Shift, problem: Any) -> None:
    """With a trainer that has no capabilities, ``updates`` works or says NotApplicable.

    A shift that needs something of the trainer (``finetune``, other architectures) declares it
    in ``trainer_needs`` / ``model_needs``, so it is skipped with the reason (and ``recourse-bench
    list models`` can tell which shifts apply) instead of crashing mid-run.
    """
    toy = toy_problem(0, "logreg")
    try:
        shift.updates(toy.splits, _BareTrainer(), toy.model, 7)
    except NotApplicable:
        return
    except Exception as exc:
        raise fail(
            "updates on a trainer without capabilities to work or raise NotApplicable",
            describe_exception(exc),
            "declare what the shift needs: trainer_needs = (Finetunable,) etc. from "
            "recourse_bench.api, and call self.check_applies(trainer, base_model) first",
        ) from exc
