"""The toy problem every conformance check runs on: small, fast and full of constraints."""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass

import numpy as np

from ..api import Classifier, ConfigError, RecourseMethod, Schema, Splits, Trainer

#: Models the kit can train for the toy problem, in the order it tries them for a method: the
#: differentiable logistic regression first (gradient methods run on it), then a small MLP (a
#: differentiable, non-linear model) and a random forest (neither differentiable nor linear).
TOY_MODELS: tuple[str, ...] = ("logreg", "mlp", "forest")

#: Rows of the toy dataset (two thirds train, one third test).
N_ROWS = 600

#: Rejected test points used as factuals.
N_FACTUALS = 30


@dataclass(frozen=True)
class ToyProblem:
    """A small recourse problem: data, a trained model and rejected factuals.

    Attributes
    ----------
    splits : Splits
        400 training and 200 test rows in model space; see :func:`toy_problem` for the columns.
    model : Classifier
        The model trained on ``splits.X_train`` (``model_name`` says which).
    factuals : ndarray of shape (30, 9)
        Test rows the model rejects (predicts 0).
    model_name : str
        The registered trainer of ``model``: ``logreg``, ``mlp`` or ``forest``.
    seed : int
        The seed of the data and of the training.
    trainer : Trainer or None
        The trainer that built ``model`` (its default parameters), which the kit hands to a
        method through ``use_trainer`` before ``fit``.
    """

    splits: Splits
    model: Classifier
    factuals: np.ndarray
    model_name: str = "logreg"
    seed: int = 0
    trainer: Trainer | None = None

    @property
    def schema(self) -> Schema:
        """The schema of the toy data."""
        return self.splits.schema


def toy_schema() -> Schema:
    """The schema of the toy data: one column of every kind of constraint, bounds [0, 1]."""
    return Schema(
        features=("free", "falls", "count", "fixed", "g=a", "g=b", "g=c", "h=x", "h=y"),
        kinds=("continuous", "continuous", "integer", "integer", *["categorical"] * 5),
        immutable=(False, False, False, True, False, False, False, True, True),
        direction=(0, -1, 0, 0, 0, 0, 0, 0, 0),
        lower=(0.0,) * 9,
        upper=(1.0,) * 9,
        steps=(0.0, 0.0, 0.1, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0),
        groups=((4, 5, 6), (7, 8)),
    )


#: The toy concept's log-odds: ``4 * (X @ TOY_COEF + TOY_INTERCEPT)``.
TOY_COEF = np.array([3.0, -3.0, 2.0, 1.0, 0.0, 1.5, -1.0, 0.0, 0.0])
TOY_INTERCEPT = -1.5

#: How far the intercept of the toy concept moves in the future split (a concept drift).
TOY_DRIFT = 0.5


def _draw(rng: np.random.Generator, n: int, intercept: float) -> tuple[np.ndarray, np.ndarray]:
    """``n`` toy rows and their labels from a noisy logistic score with ``intercept``."""
    X = rng.uniform(size=(n, 9))
    X[:, 2] = np.round(X[:, 2] * 10) / 10
    X[:, 3] = np.round(X[:, 3] * 2) / 2
    X[:, 4:7] = np.eye(3)[rng.integers(0, 3, n)]
    X[:, 7:9] = np.eye(2)[rng.integers(0, 2, n)]
    score = X @ TOY_COEF + intercept
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-4 * score))).astype(int)
    return X, y


def toy_splits(seed: int = 0, n: int = N_ROWS) -> Splits:
    """Draw the toy data: ``n`` rows, labels from a noisy logistic score.

    The splits carry the true concept as their ``oracle`` (a linear classifier) and a future
    split of ``n // 2`` fresh rows whose concept's intercept is raised by :data:`TOY_DRIFT`
    (for the oracle metrics and the shifts that read a future split).

    Parameters
    ----------
    seed : int, default 0
        Seeds local generators (the global random state is never used).
    n : int, default 600
        Rows drawn; the first two thirds are the training split.

    Returns
    -------
    Splits
        The data, named ``toy``.
    """
    from ..models import linear_classifier

    X, y = _draw(np.random.default_rng(seed), n, TOY_INTERCEPT)
    future = _draw(np.random.default_rng([seed, 1]), n // 2, TOY_INTERCEPT + TOY_DRIFT)
    oracle = linear_classifier(4 * TOY_COEF, 4 * TOY_INTERCEPT)
    cut = 2 * n // 3
    return Splits(
        X[:cut], y[:cut], X[cut:], y[cut:], toy_schema(), future=future, oracle=oracle, name="toy"
    )


@functools.cache
def _build(seed: int, model: str) -> ToyProblem:
    """Train the model once per seed and model in this process (callers get deep copies)."""
    from .. import registry

    splits = toy_splits(seed)
    trainer = registry.get("model", model)()
    classifier = trainer.fit(splits.X_train, splits.y_train, seed=seed)
    rejected = splits.X_test[np.asarray(classifier.predict(splits.X_test)) == 0]
    return ToyProblem(splits, classifier, rejected[:N_FACTUALS].copy(), model, seed, trainer)


def toy_problem(seed: int = 0, model: str = "logreg") -> ToyProblem:
    """A small recourse problem with every kind of constraint a schema can state.

    The nine model-space columns, all bounded by [0, 1], are: ``free`` (continuous), ``falls``
    (continuous, may only decrease), ``count`` (an integer on a grid of step 0.1), ``fixed`` (an
    immutable integer, step 0.5), a mutable one-hot group ``g=a``, ``g=b``, ``g=c`` and an
    immutable one-hot group ``h=x``, ``h=y``. Labels follow a noisy logistic score that rises with
    ``free``, ``count``, ``fixed`` and ``g=b`` and falls with ``falls`` and ``g=c``, so a recourse
    exists for every factual.

    The problem is built once per ``(seed, model)`` in a process (training takes a fraction of a
    second) and every call returns a deep copy, so a method that mutates what it is given cannot
    corrupt the cache.

    Parameters
    ----------
    seed : int, default 0
        Seeds the data and the training.
    model : {"logreg", "mlp", "forest"}, default "logreg"
        The registered trainer of the model, with its default parameters: ``logreg`` is
        differentiable and linear, ``mlp`` differentiable only, ``forest`` neither.

    Returns
    -------
    ToyProblem
        Splits (400 training and 200 test rows), the trained model and 30 rejected test rows.

    Examples
    --------
    >>> problem = toy_problem()
    >>> problem.factuals.shape
    (30, 9)
    >>> bool((problem.model.predict(problem.factuals) == 0).all())
    True
    """
    if model not in TOY_MODELS:
        raise ConfigError(
            f"toy_problem: model must be one of {', '.join(TOY_MODELS)}, got {model!r}"
        )
    return copy.deepcopy(_build(int(seed), model))


def problem_for(method: RecourseMethod, seed: int = 0) -> tuple[ToyProblem | None, str]:
    """The first toy problem whose model ``method`` accepts, or None and every refusal.

    Models are tried in the order of :data:`TOY_MODELS`; a model is accepted when
    ``method.skip_reason(model)`` is None.

    Returns
    -------
    problem : ToyProblem or None
        A fresh copy of the problem, or None if the method refuses every model.
    reasons : str
        The refusals, ``"model: reason; ..."`` (empty when the first model was accepted).
    """
    refusals = []
    for name in TOY_MODELS:
        problem = toy_problem(seed, name)
        reason = method.skip_reason(problem.model)
        if reason is None:
            return problem, "; ".join(refusals)
        refusals.append(f"{name}: {reason}")
    return None, "; ".join(refusals)
