"""Torch classifiers and their training loop, shared by the ``logreg`` and ``mlp`` trainers.

Models compute in float64: tabular models are small, and double precision keeps predictions of
points that lie on the decision boundary (where recourses land) identical across batch sizes.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..api import Trainer
from ..seeding import torch_generator

DTYPE = torch.float64


def as_tensor(X: np.ndarray | torch.Tensor) -> torch.Tensor:
    """A float64 tensor view of ``X``."""
    return torch.as_tensor(X, dtype=DTYPE)


class TorchClassifier:
    """A trained network mapping (n, d) model-space rows to the log-odds of class 1.

    Attributes
    ----------
    net : torch.nn.Module
        The network; its output has shape (n, 1) or (n,).
    differentiable : bool
        Always True: :meth:`logits` is differentiable in its input.
    linear : bool
        True for a single linear layer (then ``coef_`` and ``intercept_`` are available).
    """

    differentiable = True

    def __init__(self, net: nn.Module):
        self.net = net.to(DTYPE).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.linear = isinstance(self.net, nn.Linear)

    def logits(self, X: torch.Tensor) -> torch.Tensor:
        """Log-odds of the favourable class, shape (n,), differentiable in ``X``."""
        return self.net(X).reshape(-1)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Log-odds of the favourable class as a numpy array."""
        with torch.no_grad():
            return self.logits(as_tensor(X)).numpy()

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (n, 2)."""
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: np.ndarray) -> np.ndarray:
        """0/1 predictions (1 where the log-odds are >= 0)."""
        return (self.decision_function(X) >= 0).astype(int)

    @property
    def coef_(self) -> np.ndarray:
        """Weights of a linear model, shape (d,)."""
        self._require_linear()
        return self.net.weight.detach().numpy().reshape(-1).copy()

    @property
    def intercept_(self) -> float:
        """Bias of a linear model."""
        self._require_linear()
        return float(self.net.bias.detach().numpy().reshape(-1)[0])

    def _require_linear(self) -> None:
        if not self.linear:
            raise AttributeError(f"{type(self.net).__name__} is not a linear model")

    def __repr__(self) -> str:
        return f"TorchClassifier({self.net})"


def untouched_global_rng() -> contextlib.AbstractContextManager:
    """Context in which torch's global RNG may be used (layer constructors do) and is restored."""
    return torch.random.fork_rng(devices=[])


def linear_classifier(coef: np.ndarray, intercept: float) -> TorchClassifier:
    """A fixed linear classifier with log-odds ``X @ coef + intercept``."""
    coef = np.asarray(coef, dtype=float).reshape(-1)
    with untouched_global_rng():
        layer = nn.Linear(len(coef), 1).to(DTYPE)
    with torch.no_grad():
        layer.weight.copy_(as_tensor(coef)[None, :])
        layer.bias.fill_(float(intercept))
    return TorchClassifier(layer)


def init_weights(net: nn.Module, generator: torch.Generator) -> None:
    """Seeded default initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for every linear layer."""
    for layer in net.modules():
        if isinstance(layer, nn.Linear):
            bound = 1.0 / np.sqrt(layer.in_features)
            nn.init.uniform_(layer.weight, -bound, bound, generator=generator)
            nn.init.uniform_(layer.bias, -bound, bound, generator=generator)


def train(
    net: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    seed: int,
    *,
    epochs: int,
    lr: float,
    batch_size: int | None,
    weight_decay: float,
) -> TorchClassifier:
    """Train ``net`` with Adam on binary cross-entropy; full-batch when ``batch_size`` is None."""
    generator = torch_generator(seed)
    net = net.to(DTYPE)
    init_weights(net, generator)
    net.train()
    X_t, y_t = as_tensor(X), as_tensor(y)
    n = len(X_t)
    optimiser = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    size = n if batch_size is None or batch_size >= n else int(batch_size)
    for _ in range(int(epochs)):
        order = torch.randperm(n, generator=generator) if size < n else None
        for start in range(0, n, size):
            rows = order[start : start + size] if order is not None else slice(None)
            optimiser.zero_grad(set_to_none=True)
            loss = F.binary_cross_entropy_with_logits(net(X_t[rows]).reshape(-1), y_t[rows])
            loss.backward()
            optimiser.step()
    return TorchClassifier(net)


class TorchTrainer(Trainer):
    """Base of the torch trainers: builds a network and trains it with :func:`train`.

    Subclasses define ``network(n_features)`` and the parameters ``epochs``, ``lr``,
    ``batch_size`` and ``weight_decay`` in their ``__init__``.
    """

    epochs: int
    lr: float
    batch_size: int | None
    weight_decay: float

    def network(self, n_features: int) -> nn.Module:
        """The untrained network for ``n_features`` inputs."""
        raise NotImplementedError

    def validate_params(self) -> None:
        """Check the training parameters."""
        self.check_param("epochs", "int", low=1)
        self.check_param("lr", "float", low=0, open_low=True)
        self.check_param("batch_size", "int", low=1, optional=True)
        self.check_param("weight_decay", "float", low=0)

    def fit(self, X: np.ndarray, y: np.ndarray, seed: int) -> TorchClassifier:
        """Train on model-space data with the given seed."""
        with untouched_global_rng():  # layer constructors draw default weights from it
            network = self.network(X.shape[1])
        return train(
            network,
            X,
            y,
            seed,
            epochs=self.epochs,
            lr=self.lr,
            batch_size=self.batch_size,
            weight_decay=self.weight_decay,
        )
