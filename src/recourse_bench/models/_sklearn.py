"""Wrapping scikit-learn estimators as recourse-bench classifiers."""

from __future__ import annotations

import numpy as np


class SklearnClassifier:
    """A fitted scikit-learn binary classifier (not differentiable, not linear).

    Attributes
    ----------
    estimator : sklearn estimator
        Fitted on 0/1 labels.
    """

    differentiable = False
    linear = False

    def __init__(self, estimator):
        self.estimator = estimator

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (n, 2) (a one-class fit gives that class probability 1)."""
        proba = self.estimator.predict_proba(np.asarray(X, dtype=np.float32))
        classes = list(self.estimator.classes_)
        out = np.zeros((len(proba), 2))
        for column, label in enumerate(classes):
            out[:, int(label)] = proba[:, column]
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        """0/1 predictions (1 where the probability of class 1 is >= 0.5)."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def __repr__(self) -> str:
        return f"SklearnClassifier({self.estimator!r})"
