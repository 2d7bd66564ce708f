"""Model trainers: ``fit(X, y, seed) -> Classifier``."""

from . import logreg, mlp
from ._torch import TorchClassifier, linear_classifier

__all__ = ["TorchClassifier", "linear_classifier", "logreg", "mlp"]
