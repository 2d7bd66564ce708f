"""Random forest (scikit-learn): a non-differentiable model for model-agnostic methods."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.ensemble import RandomForestClassifier

from ..api import Interval, Trainer
from ..registry import register
from ._sklearn import SklearnClassifier, finetune_copy


@register("model", "forest")
class Forest(Trainer):
    """Random forest of scikit-learn, seeded by the harness (one thread for determinism).

    Parameters
    ----------
    n_estimators : int, default 100
        Number of trees.
    max_depth : int or None, default None
        Maximum depth of a tree (None: grown until leaves are pure or hold min_samples_leaf).
    min_samples_leaf : int, default 1
        Minimum number of training rows in a leaf.

    Attributes
    ----------
    tunable_hyperparameters : tuple of str
        The numeric hyperparameters the ``hyperparameters`` shift perturbs: ``n_estimators`` and
        ``min_samples_leaf``.
    depths : tuple of int or None
        The ``max_depth`` values of :meth:`architecture_variants`: 4, 8, 16 and None.
    """

    tunable_hyperparameters: ClassVar[tuple[str, ...]] = ("n_estimators", "min_samples_leaf")
    classifier_type: ClassVar[type] = SklearnClassifier
    model_capabilities: ClassVar[frozenset[str]] = frozenset({"trees"})
    depths: ClassVar[tuple[int | None, ...]] = (4, 8, 16, None)

    parameter_constraints = {
        "n_estimators": (Interval("int", low=1),),
        "max_depth": (Interval("int", low=1), None),
        "min_samples_leaf": (Interval("int", low=1),),
    }

    def __init__(
        self, n_estimators: int = 100, max_depth: int | None = None, min_samples_leaf: int = 1
    ):
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf

    def fit(self, X: np.ndarray, y: np.ndarray, seed: int) -> SklearnClassifier:
        """Train on model-space data with the given seed."""
        estimator = RandomForestClassifier(
            n_estimators=int(self.n_estimators),
            max_depth=self.max_depth,
            min_samples_leaf=int(self.min_samples_leaf),
            random_state=int(seed),
            n_jobs=1,
        )
        return SklearnClassifier(estimator.fit(X, y))

    def architecture_variants(self) -> list[dict[str, Any]]:
        """Other forest shapes: every ``max_depth`` of :attr:`depths` times three forest sizes.

        The sizes are ``n_estimators``, ``max(1, n_estimators // 2)`` and ``2 * n_estimators``
        (outer loop, in that order), the depths 4, 8, 16, None (inner loop): 12 parameter
        changes ``{"max_depth": d, "n_estimators": m}``, one of which may equal this trainer.
        """
        n = int(self.n_estimators)
        sizes = list(dict.fromkeys((n, max(1, n // 2), 2 * n)))
        return [{"max_depth": d, "n_estimators": m} for m in sizes for d in self.depths]

    def finetune(
        self,
        classifier: SklearnClassifier,
        X: np.ndarray,
        y: np.ndarray,
        seed: int,
        severity: float,
    ) -> SklearnClassifier:
        """Grow more trees on ``(X, y)`` in a copy of ``classifier``; ``classifier`` is unchanged.

        A deep copy of the fitted ``RandomForestClassifier`` is refitted with ``warm_start=True``,
        ``random_state=seed`` and ``round(severity * n_estimators)`` more trees: the existing
        trees are kept as they are and only the new ones are fitted, each on a bootstrap sample
        of ``(X, y)``. The forest then averages old and new trees, so a share
        ``k / (n_old + k)`` of its vote comes from the new data (one half at severity 1).

        Parameters
        ----------
        classifier : SklearnClassifier
            A forest trained by this trainer (never modified).
        X, y : ndarray
            The new training data; both classes must be present (else :class:`DataError`).
        seed : int
            Seeds the new trees.
        severity : float
            Trees added, as a multiple of ``n_estimators`` (>= 0; 0 returns an exact copy).

        Returns
        -------
        SklearnClassifier
            The grown copy.
        """
        estimator = finetune_copy(classifier, y, severity)
        extra = round(float(severity) * int(self.n_estimators))
        if extra > 0:
            estimator.set_params(
                warm_start=True,
                n_estimators=len(estimator.estimators_) + extra,
                random_state=int(seed),
            )
            estimator.fit(X, y)
            estimator.set_params(warm_start=False)
        return SklearnClassifier(estimator)
