"""The conformance checks of a model plugin (a trainer): ``fit(X, y, seed)`` gives a classifier.

On the toy data (:func:`~recourse_bench.testing.toy_splits`): the classifier's probabilities are
an (n, 2) array of rows summing to 1 and ``predict`` agrees with them; the same seed gives the
same model; ``fit`` leaves its inputs and the global random states alone; the declared
capabilities hold (``differentiable``: ``logits`` are the log-odds; ``linear``: ``coef_`` and
``intercept_`` give them; ``classifier_type``: the class ``fit`` returns); the classifier
pickles; and the model learns at least as well as always predicting the majority class.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np

from ..api import MODEL_CAPABILITIES, Classifier, Trainer, model_has
from ._common import (
    COMPONENT_CHECKS,
    checks_registry,
    describe_exception,
    fail,
    run_without_global_rng,
)
from ._problem import ToyProblem

CHECKS, _check = checks_registry(COMPONENT_CHECKS)


def _fit(trainer: Trainer, problem: ToyProblem, seed: int = 0) -> Classifier:
    splits = problem.splits
    return trainer.fit(splits.X_train.copy(), splits.y_train.copy(), seed)


def _proba(model: Any, X: np.ndarray) -> np.ndarray:
    proba = np.asarray(model.predict_proba(X), dtype=float)
    if proba.shape != (len(X), 2):
        raise fail(
            f"predict_proba(X) of shape ({len(X)}, 2)",
            f"shape {proba.shape}",
            "return the probabilities of class 0 and class 1 in two columns",
        )
    return proba


@_check
def check_probabilities(trainer: Trainer, problem: ToyProblem) -> None:
    """``predict_proba`` rows are probabilities summing to 1; ``predict`` follows them."""
    model = _fit(trainer, problem)
    X = np.vstack([problem.splits.X_train, problem.splits.X_test])
    proba = _proba(model, X)
    if (proba < -1e-9).any() or (proba > 1 + 1e-9).any() or not np.allclose(proba.sum(1), 1):
        raise fail(
            "probabilities in [0, 1] summing to 1 per row",
            f"values in [{proba.min():g}, {proba.max():g}]",
            "return [1 - p, p] with p the probability of class 1",
        )
    predicted = np.asarray(model.predict(X))
    clear = np.abs(proba[:, 1] - 0.5) > 1e-6
    disagree = clear & (predicted != (proba[:, 1] > 0.5))
    if disagree.any():
        raise fail(
            "predict(X) == 1 exactly where predict_proba(X)[:, 1] > 0.5",
            f"{int(disagree.sum())} rows disagree",
            "derive predict from predict_proba, threshold 0.5",
        )


@_check
def check_deterministic_for_a_seed(trainer: Trainer, problem: ToyProblem) -> None:
    """``fit`` with the same seed twice gives the same model, and no global state changes."""
    models: list[Classifier] = []
    run_without_global_rng(
        lambda: models.append(_fit(trainer, problem)),
        "fit",
        "seed the model from `seed` (recourse_bench.seeding), and build torch layers inside "
        "torch.random.fork_rng(devices=[])",
    )
    again = _fit(trainer, problem)
    X = problem.splits.X_test
    if not np.array_equal(_proba(models[0], X), _proba(again, X)):
        raise fail(
            "fit(X, y, seed) twice to give the same model",
            "different predictions",
            "derive every random choice of training from `seed`",
        )


@_check
def check_inputs_not_mutated(trainer: Trainer, problem: ToyProblem) -> None:
    """``fit`` leaves X and y unchanged."""
    X, y = problem.splits.X_train.copy(), problem.splits.y_train.copy()
    trainer.fit(X, y, 0)
    if not (
        np.array_equal(X, problem.splits.X_train) and np.array_equal(y, problem.splits.y_train)
    ):
        raise fail("fit to leave X and y unchanged", "they changed", "train on copies")


@_check
def check_declared_capabilities(trainer: Trainer, problem: ToyProblem) -> None:
    """The declared ``differentiable``, ``linear``, ``classifier_type``, capabilities hold."""
    model = _fit(trainer, problem)
    X = problem.splits.X_test
    p = np.clip(_proba(model, X)[:, 1], 1e-12, 1 - 1e-12)
    log_odds = np.log(p) - np.log1p(-p)
    expected_type = type(trainer).classifier_type
    if expected_type is not None and not isinstance(model, expected_type):
        raise fail(
            f"fit to return a {expected_type.__name__} (classifier_type)",
            type(model).__name__,
            "set classifier_type to the class fit returns, or None where it varies",
        )
    if getattr(model, "differentiable", False):
        import torch

        logits = model.logits(torch.as_tensor(X))  # type: ignore[attr-defined]
        values = logits.detach().cpu().double().numpy().reshape(-1)
        if not np.allclose(values, log_odds, atol=1e-3, rtol=1e-3):
            raise fail(
                "logits(X) to equal the log-odds of predict_proba (differentiable = True)",
                f"largest difference {np.abs(values - log_odds).max():.3g}",
                "return the log-odds of class 1 as a torch tensor, or set differentiable = False",
            )
    if getattr(model, "linear", False):
        coef = np.asarray(model.coef_, dtype=float).reshape(-1)  # type: ignore[attr-defined]
        linear = X @ coef + float(model.intercept_)  # type: ignore[attr-defined]
        if not np.allclose(linear, log_odds, atol=1e-3, rtol=1e-3):
            raise fail(
                "X @ coef_ + intercept_ to equal the log-odds (linear = True)",
                f"largest difference {np.abs(linear - log_odds).max():.3g}",
                "expose coef_ and intercept_ of the log-odds, or set linear = False",
            )
    unknown = set(type(trainer).model_capabilities) - set(MODEL_CAPABILITIES)
    lacking = [c for c in sorted(type(trainer).model_capabilities) if not model_has(model, c)]
    if unknown or lacking:
        raise fail(
            f"the fitted model to have every declared capability ({', '.join(MODEL_CAPABILITIES)})",
            f"model_capabilities names {sorted(unknown)} unknown, {lacking} missing",
            "declare in model_capabilities only what every model fit returns provides",
        )


@_check
def check_classifier_pickles(trainer: Trainer, problem: ToyProblem) -> None:
    """The trained classifier survives pickle and predicts the same (the harness caches it)."""
    model = _fit(trainer, problem)
    try:
        restored = pickle.loads(pickle.dumps(model))
    except Exception as exc:
        raise fail(
            "the classifier to pickle",
            describe_exception(exc),
            "keep no lambdas, open files or locks in the classifier",
        ) from exc
    X = problem.splits.X_test
    if not np.array_equal(_proba(model, X), _proba(restored, X)):
        raise fail("the unpickled classifier to predict the same", "different predictions", "")


@_check
def check_learns(trainer: Trainer, problem: ToyProblem) -> None:
    """On the (easy) toy data the model beats always predicting the majority class."""
    model = _fit(trainer, problem)
    splits = problem.splits
    accuracy = float((np.asarray(model.predict(splits.X_test)) == splits.y_test).mean())
    majority = max(float(splits.y_test.mean()), 1 - float(splits.y_test.mean()))
    if accuracy < majority:
        raise fail(
            f"a test accuracy of at least the majority share {majority:.3f}",
            f"{accuracy:.3f}",
            "check that fit trains on (X, y) with label 1 as the favourable class",
        )
