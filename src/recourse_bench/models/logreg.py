"""Logistic regression in torch: one linear layer trained with Adam on the log-loss."""

from __future__ import annotations

from typing import ClassVar

from torch import nn

from ..registry import register
from ._torch import TorchTrainer


@register("model", "logreg")
class LogReg(TorchTrainer):
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

    model_capabilities: ClassVar[frozenset[str]] = frozenset({"gradients", "linear"})

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

    def network(self, n_features: int) -> nn.Module:
        """One linear layer."""
        return nn.Linear(n_features, 1)
