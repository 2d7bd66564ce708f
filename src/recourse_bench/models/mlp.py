"""Multi-layer perceptron in torch: ReLU hidden layers, trained with Adam on the log-loss."""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

from torch import nn

from ..api import Interval, ListOf
from ..registry import register
from ._torch import TorchTrainer


@register("model", "mlp")
class MLP(TorchTrainer):
    """A ReLU network (differentiable, non-linear).

    Parameters
    ----------
    hidden : tuple of int, default (32, 32)
        Widths of the hidden layers.
    epochs : int, default 300
        Passes over the training data.
    lr : float, default 0.01
        Adam learning rate.
    batch_size : int or None, default None
        Mini-batch size; None trains full-batch.
    weight_decay : float, default 1e-4
        L2 penalty on the weights (Adam's weight decay).

    Attributes
    ----------
    layouts : tuple of tuple of int
        The hidden layouts :meth:`architecture_variants` lists for the ``architecture`` shift:
        (16,), (64,), (32, 32), (64, 64), (32, 32, 32) (the shift skips the base's own).
    """

    model_capabilities: ClassVar[frozenset[str]] = frozenset({"gradients"})
    layouts: ClassVar[tuple[tuple[int, ...], ...]] = (
        (16,),
        (64,),
        (32, 32),
        (64, 64),
        (32, 32, 32),
    )

    parameter_constraints = {
        **TorchTrainer.parameter_constraints,
        "hidden": (ListOf(Interval("int", low=1)),),
    }

    def __init__(
        self,
        hidden: tuple[int, ...] = (32, 32),
        epochs: int = 300,
        lr: float = 0.01,
        batch_size: int | None = None,
        weight_decay: float = 1e-4,
    ):
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay

    def network(self, n_features: int) -> nn.Module:
        """ReLU hidden layers of the given widths, then one output unit."""
        widths = [n_features, *(int(h) for h in self.hidden)]
        layers: list[nn.Module] = []
        for fan_in, fan_out in itertools.pairwise(widths):
            layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], 1))
        return nn.Sequential(*layers)

    def architecture_variants(self) -> list[dict[str, Any]]:
        """One parameter change per layout of :attr:`layouts`: ``{"hidden": layout}``."""
        return [{"hidden": layout} for layout in self.layouts]
