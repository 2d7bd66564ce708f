"""Model trainers: ``fit(X, y, seed) -> Classifier``."""

from . import boosting, forest, logreg, mlp, svm
from ._sklearn import SklearnClassifier
from ._torch import TorchClassifier, linear_classifier

__all__ = [
    "SklearnClassifier",
    "TorchClassifier",
    "boosting",
    "forest",
    "linear_classifier",
    "logreg",
    "mlp",
    "svm",
]
