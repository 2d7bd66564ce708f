"""Random forest (scikit-learn): a non-differentiable model for model-agnostic methods."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import RandomForestClassifier

from ..api import Trainer
from ..registry import register
from ._sklearn import SklearnClassifier


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
    """

    def __init__(
        self, n_estimators: int = 100, max_depth: int | None = None, min_samples_leaf: int = 1
    ):
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf

    def validate_params(self) -> None:
        """Check the forest's sizes."""
        self.check_param("n_estimators", "int", low=1)
        self.check_param("max_depth", "int", low=1, optional=True)
        self.check_param("min_samples_leaf", "int", low=1)

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
