"""Logistic regression in torch: one linear layer trained with Adam on the log-loss."""

from __future__ import annotations

import numpy as np
from torch import nn

from ..api import Trainer
from ..registry import register
from ._torch import TorchClassifier, train


@register("model", "logreg")
class LogReg(Trainer):
    """Logistic regression (linear and differentiable).

    Parameters
    ----------
    epochs : int, default 300
        Passes over the training data.
    lr : float, default 0.05
        Adam learning rate.
    batch_size : int or None, default None
        Mini-batch size; None trains full-batch.
    weight_decay : float, default 1e-4
        L2 penalty on the weights (Adam's weight decay).
    """

    def __init__(
        self,
        epochs: int = 300,
        lr: float = 0.05,
        batch_size: int | None = None,
        weight_decay: float = 1e-4,
    ):
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay

    def fit(self, X: np.ndarray, y: np.ndarray, seed: int) -> TorchClassifier:
        """Train on model-space data with the given seed."""
        return train(
            nn.Linear(X.shape[1], 1),
            X,
            y,
            seed,
            epochs=self.epochs,
            lr=self.lr,
            batch_size=self.batch_size,
            weight_decay=self.weight_decay,
        )
