"""Torch classifiers and their training loop, shared by the ``logreg`` and ``mlp`` trainers.

Models compute in float64: tabular models are small, and double precision keeps predictions of
points that lie on the decision boundary (where recourses land) identical across batch sizes.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..api import ConfigError, Interval, Trainer
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
    optimiser_state : dict or None
        The Adam optimiser's ``state_dict()`` at the end of training (moment estimates and step
        count), kept so that :func:`continue_training` can resume the same optimisation; None for
        a network that was not trained here (or was perturbed).
    """

    differentiable = True

    def __init__(self, net: nn.Module, optimiser_state: dict[str, Any] | None = None):
        self.net = net.to(DTYPE).eval()
        self.optimiser_state = optimiser_state
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

    def perturbed(self, scale: float, kind: str, rng: np.random.Generator) -> TorchClassifier:
        """A copy whose every parameter (weights and biases of every layer) is shifted by noise.

        Parameters
        ----------
        scale : float
            ``uniform``: each parameter moves by U(-scale, scale), a random point of ROAR's
            L-infinity box of radius ``scale`` around the trained parameters; ``gaussian``: by
            N(0, scale**2). With ``scale`` 0 the copy predicts exactly as this classifier.
        kind : {"uniform", "gaussian"}
            The noise distribution.
        rng : numpy.random.Generator
            Draws the noise, parameter by parameter in ``net.parameters()`` order.

        Returns
        -------
        TorchClassifier
            A new classifier; this one is never modified.
        """
        check_noise(kind, scale)
        net = copy.deepcopy(self.net)
        if scale > 0:
            with torch.no_grad():
                for p in net.parameters():
                    p.add_(as_tensor(parameter_noise(kind, scale, tuple(p.shape), rng)))
        return TorchClassifier(net)

    def _require_linear(self) -> None:
        if not self.linear:
            raise AttributeError(f"{type(self.net).__name__} is not a linear model")

    def __repr__(self) -> str:
        return f"TorchClassifier({self.net})"


NOISE_KINDS = ("uniform", "gaussian")


def check_noise(kind: str, scale: float) -> None:
    """Raise :class:`ConfigError` unless ``kind`` is a noise kind and ``scale`` a number >= 0."""
    if kind not in NOISE_KINDS:
        raise ConfigError(f"noise kind must be uniform or gaussian, got {kind!r}")
    if isinstance(scale, bool) or not isinstance(scale, int | float | np.integer | np.floating):
        raise ConfigError(f"noise scale must be a number >= 0, got {scale!r}")
    if not scale >= 0:
        raise ConfigError(f"noise scale must be a number >= 0, got {scale!r}")


def parameter_noise(
    kind: str, scale: float, shape: tuple[int, ...], rng: np.random.Generator
) -> np.ndarray:
    """Noise of the given shape drawn from ``rng``.

    ``uniform``: U(-scale, scale) per entry (a random point of the L-infinity box of radius
    ``scale``); ``gaussian``: N(0, scale**2) per entry.
    """
    check_noise(kind, scale)
    if kind == "uniform":
        return rng.uniform(-scale, scale, size=shape)
    return rng.normal(0.0, scale, size=shape)


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
    """Train ``net`` with Adam on binary cross-entropy; full-batch when ``batch_size`` is None.

    The weights are first re-initialised with :func:`init_weights` from the seeded generator,
    which then shuffles the mini-batches.
    """
    generator = torch_generator(seed)
    net = net.to(DTYPE)
    init_weights(net, generator)
    return _adam_loop(
        net,
        X,
        y,
        generator,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        weight_decay=weight_decay,
    )


def continue_training(
    classifier: TorchClassifier,
    X: np.ndarray,
    y: np.ndarray,
    seed: int,
    epochs: int,
    *,
    lr: float,
    batch_size: int | None = None,
    weight_decay: float = 0.0,
) -> TorchClassifier:
    """Train a copy of ``classifier``'s network further, starting from its trained weights.

    The same loop as :func:`train` (Adam on binary cross-entropy, mini-batches shuffled by a
    generator seeded with ``seed``) runs for ``epochs`` more epochs on ``(X, y)`` without
    re-initialising the weights. The optimisation *resumes*: Adam's moment estimates and step
    count are restored from ``classifier.optimiser_state`` (a copy; the learning rate and weight
    decay are the arguments), as if training had gone on with new data. A fresh Adam optimiser
    would instead move every weight by about ``lr`` in its first steps, whatever its gradient
    (an MLP on ``german`` then disagreed with its base model on 28 % of the test rows after one
    epoch, and less after more); a classifier without a state (not trained here, or perturbed)
    gets a fresh optimiser all the same. ``classifier`` is never modified; with ``epochs`` 0
    the copy predicts exactly as ``classifier`` does.
    """
    net = copy.deepcopy(classifier.net)
    for p in net.parameters():
        p.requires_grad_(True)
    return _adam_loop(
        net,
        X,
        y,
        torch_generator(seed),
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        weight_decay=weight_decay,
        state=getattr(classifier, "optimiser_state", None),
    )


def _adam_loop(
    net: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    generator: torch.Generator,
    *,
    epochs: int,
    lr: float,
    batch_size: int | None,
    weight_decay: float,
    state: dict[str, Any] | None = None,
) -> TorchClassifier:
    """Adam on binary cross-entropy from ``net``'s current weights (shared by both entries).

    ``state``, an Adam ``state_dict()`` of the same network, resumes that optimisation (it is
    copied, never modified); the returned classifier keeps the final state.
    """
    net.train()
    X_t, y_t = as_tensor(X), as_tensor(y)
    n = len(X_t)
    optimiser = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    if state is not None:
        optimiser.load_state_dict(copy.deepcopy(state))  # loading would share its tensors
        for group in optimiser.param_groups:
            group["lr"], group["weight_decay"] = lr, weight_decay
    size = n if batch_size is None or batch_size >= n else int(batch_size)
    for _ in range(int(epochs)):
        order = torch.randperm(n, generator=generator) if size < n else None
        for start in range(0, n, size):
            rows = order[start : start + size] if order is not None else slice(None)
            optimiser.zero_grad(set_to_none=True)
            loss = F.binary_cross_entropy_with_logits(net(X_t[rows]).reshape(-1), y_t[rows])
            loss.backward()
            optimiser.step()
    return TorchClassifier(net, optimiser_state=copy.deepcopy(optimiser.state_dict()))


class TorchTrainer(Trainer):
    """Base of the torch trainers: builds a network and trains it with :func:`train`.

    Subclasses define ``network(n_features)`` and the parameters ``epochs``, ``lr``,
    ``batch_size`` and ``weight_decay`` in their ``__init__``.

    Attributes
    ----------
    tunable_hyperparameters : tuple of str
        The numeric optimisation hyperparameters the ``hyperparameters`` shift perturbs:
        ``lr`` and ``epochs``.
    """

    tunable_hyperparameters: ClassVar[tuple[str, ...]] = ("lr", "epochs")
    classifier_type: ClassVar[type] = TorchClassifier
    parameter_constraints = {
        "epochs": (Interval("int", low=1),),
        "lr": (Interval("float", low=0, open_low=True),),
        "batch_size": (Interval("int", low=1), None),
        "weight_decay": (Interval("float", low=0),),
    }

    epochs: int
    lr: float
    batch_size: int | None
    weight_decay: float

    def network(self, n_features: int) -> nn.Module:
        """The untrained network for ``n_features`` inputs."""
        raise NotImplementedError

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

    def architecture_variants(self) -> list[dict[str, Any]]:
        """Parameter changes giving other architectures of this family (none by default).

        A single linear layer (``logreg``) has no architecture to vary; :class:`MLP` overrides.
        """
        return []

    def finetune(
        self, classifier: TorchClassifier, X: np.ndarray, y: np.ndarray, seed: int, severity: float
    ) -> TorchClassifier:
        """Continue training a copy of ``classifier`` on ``(X, y)``; ``classifier`` is unchanged.

        Runs :func:`continue_training` for ``round(severity * epochs)`` epochs with this trainer's
        ``lr``, ``batch_size`` and ``weight_decay`` (severity 0: an exact copy).

        Parameters
        ----------
        classifier : TorchClassifier
            The trained model to start from (never modified).
        X, y : ndarray
            The new training data.
        seed : int
            Seeds the shuffling of mini-batches.
        severity : float
            Further epochs as a multiple of ``epochs`` (>= 0).

        Returns
        -------
        TorchClassifier
            The fine-tuned copy.
        """
        if isinstance(severity, bool) or not float(severity) >= 0:
            raise ConfigError(f"finetune severity must be a number >= 0, got {severity!r}")
        return continue_training(
            classifier,
            X,
            y,
            seed,
            round(float(severity) * int(self.epochs)),
            lr=self.lr,
            batch_size=self.batch_size,
            weight_decay=self.weight_decay,
        )
