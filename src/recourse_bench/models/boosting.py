"""Histogram gradient boosting (scikit-learn): a strong non-differentiable tabular model."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from ..api import Trainer
from ..registry import register
from ._sklearn import SklearnClassifier


@register("model", "boosting")
class Boosting(Trainer):
    """Histogram gradient boosting of scikit-learn, seeded by the harness, no early stopping.

    Parameters
    ----------
    max_iter : int, default 100
        Boosting iterations (trees).
    learning_rate : float, default 0.1
        Shrinkage of each tree's contribution.
    max_leaf_nodes : int, default 31
        Leaves per tree.
    """

    def __init__(self, max_iter: int = 100, learning_rate: float = 0.1, max_leaf_nodes: int = 31):
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes

    def validate_params(self) -> None:
        """Check iterations, learning rate and tree size."""
        self.check_param("max_iter", "int", low=1)
        self.check_param("learning_rate", "float", low=0, open_low=True)
        self.check_param("max_leaf_nodes", "int", low=2)

    def fit(self, X: np.ndarray, y: np.ndarray, seed: int) -> SklearnClassifier:
        """Train on model-space data with the given seed."""
        estimator = HistGradientBoostingClassifier(
            max_iter=int(self.max_iter),
            learning_rate=float(self.learning_rate),
            max_leaf_nodes=int(self.max_leaf_nodes),
            early_stopping=False,
            random_state=int(seed),
        )
        return SklearnClassifier(estimator.fit(X, y))
