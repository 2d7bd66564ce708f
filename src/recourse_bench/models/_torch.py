"""Torch classifiers and their training loop, shared by the ``logreg`` and ``mlp`` trainers.

Models compute in float64: tabular models are small, and double precision keeps predictions of
points that lie on the decision boundary (where recourses land) identical across batch sizes.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..api import ConfigError, Interval, Trainer, check_many, same_value
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
    epochs_trained : int or None
        Epochs the network was trained for (fewer than the trainer's ``epochs`` where it
        stopped early; fine-tuning adds its epochs); None for a network not trained here.
    """

    differentiable = True

    def __init__(
        self,
        net: nn.Module,
        optimiser_state: dict[str, Any] | None = None,
        epochs_trained: int | None = None,
    ):
        self.net = net.to(DTYPE).eval()
        self.optimiser_state = optimiser_state
        self.epochs_trained = epochs_trained
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


#: Adam's constants (torch.optim.Adam's defaults, which the trainers have always used).
BETA1, BETA2, EPS = 0.9, 0.999, 1e-8
#: Rows per mini-batch of ``batch_size="auto"`` (at most; a smaller sample trains full-batch).
AUTO_BATCH = 256
#: Parameter-free modules that act elementwise, so that they apply to a (K, rows, width) stack.
ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Identity, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU)


@dataclass(frozen=True)
class Schedule:
    """How one model is optimised: Adam's settings, the epochs and the early-stopping rule.

    Attributes
    ----------
    epochs : int
        Passes over the training data (the most, with early stopping).
    lr, weight_decay : float
        Adam's learning rate and L2 penalty (``torch.optim.Adam``'s ``weight_decay``).
    batch_size : int, "auto" or None
        Rows per mini-batch; None trains full-batch; ``"auto"`` is ``min(256, n)``.
    tol : float
        The least decrease of the epoch's training loss that counts as an improvement.
    n_iter_no_change : int or None
        Stop once the loss has not improved by ``tol`` for this many epochs in a row; None
        never stops early (exactly ``epochs`` epochs).
    """

    epochs: int
    lr: float
    weight_decay: float = 0.0
    batch_size: int | str | None = None
    tol: float = 0.0
    n_iter_no_change: int | None = None

    def rows_per_batch(self, n: int) -> int:
        """The mini-batch size for ``n`` training rows (``n`` itself for full-batch)."""
        if self.batch_size is None:
            return n
        if self.batch_size == "auto":
            return min(AUTO_BATCH, n)
        return min(int(self.batch_size), n)


@dataclass
class _Model:
    """One model of a batched run: where its rows lie, its generator, its schedule, its progress."""

    offset: int
    n: int
    generator: torch.Generator
    schedule: Schedule
    step: int = 0
    epoch: int = 0
    best_loss: float = math.inf
    no_improvement: int = 0

    def finished(self, loss: float) -> bool:
        """Record an epoch with training loss ``loss``; whether the model is done training.

        The early-stopping rule is scikit-learn's ``MLPClassifier`` rule (an epoch whose loss is
        not below the best loss minus ``tol`` counts as no improvement; the best loss is the
        lowest seen), except that it stops after ``n_iter_no_change`` such epochs in a row
        where scikit-learn waits for one more.
        """
        self.epoch += 1
        patience = self.schedule.n_iter_no_change
        if patience is not None:
            improved = loss <= self.best_loss - self.schedule.tol
            self.no_improvement = 0 if improved else self.no_improvement + 1
            self.best_loss = min(self.best_loss, loss)
            if self.no_improvement >= patience:
                return True
        return self.epoch >= self.schedule.epochs

    def batches(self, steps: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The epoch's row indices and mask, (steps, width): batch i in row i, padded.

        Draws the epoch's shuffle from the model's generator when it trains on mini-batches.
        """
        size = self.schedule.rows_per_batch(self.n)
        position = torch.arange(steps)[:, None] * size + torch.arange(width)[None, :]
        valid = (torch.arange(width)[None, :] < size) & (position < self.n)
        position = position.clamp(max=self.n - 1)
        if size < self.n:
            position = torch.randperm(self.n, generator=self.generator)[position]
        return position + self.offset, valid


class _Stack:
    """The live models' parameters and Adam moments, each stacked with a leading model axis."""

    def __init__(self, params: list[torch.Tensor], states: Sequence[dict[str, Any] | None]):
        self.params = [p.requires_grad_() for p in params]
        self.exp_avg = [torch.zeros_like(p) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in params]
        for k, state in enumerate(states):
            for i, entry in ((state or {}).get("state") or {}).items():
                self.exp_avg[i][k] = entry["exp_avg"]
                self.exp_avg_sq[i][k] = entry["exp_avg_sq"]

    def model(self, slot: int) -> tuple[list[torch.Tensor], ...]:
        """Copies of the parameters and moments of the model in ``slot``."""
        return tuple(
            [t[slot].detach().clone() for t in group]
            for group in (self.params, self.exp_avg, self.exp_avg_sq)
        )

    def keep(self, slots: list[int]) -> None:
        """Keep only the models in ``slots`` (in that order)."""
        index = torch.tensor(slots, dtype=torch.long)
        self.params = [p.detach()[index].requires_grad_() for p in self.params]
        self.exp_avg = [t[index] for t in self.exp_avg]
        self.exp_avg_sq = [t[index] for t in self.exp_avg_sq]

    def adam(self, grads: list[torch.Tensor], models: list[_Model], active: torch.Tensor) -> None:
        """One Adam step for the active models, as ``torch.optim.Adam.step`` (single tensor).

        Each model has its own learning rate, weight decay and step count; an inactive model's
        parameters and moments do not move and its step count does not grow.
        """
        on = active.tolist()
        for model, is_on in zip(models, on, strict=True):
            model.step += int(is_on)
        neg_size = [
            -(m.schedule.lr / (1 - BETA1**m.step)) if is_on else 0.0
            for m, is_on in zip(models, on, strict=True)
        ]
        bc2_sqrt = [(1 - BETA2 ** max(m.step, 1)) ** 0.5 for m in models]
        decays = {m.schedule.weight_decay for m in models}
        idle = [slot for slot, is_on in enumerate(on) if not is_on]
        with torch.no_grad():
            for p, g, m, v in zip(self.params, grads, self.exp_avg, self.exp_avg_sq, strict=True):
                shape = (-1,) + (1,) * (p.dim() - 1)
                kept = (m[idle].clone(), v[idle].clone()) if idle else None
                if len(decays) > 1:
                    g = g + _column([x.schedule.weight_decay for x in models], shape) * p
                elif decays != {0.0}:
                    g = g.add(p, alpha=next(iter(decays)))
                m.lerp_(g, 1 - BETA1)
                v.mul_(BETA2).addcmul_(g, g, value=1 - BETA2)
                denom = (v.sqrt() / _column(bc2_sqrt, shape)).add_(EPS)
                p.add_(_column(neg_size, shape) * m / denom)
                if kept is not None:
                    m[idle], v[idle] = kept


def _column(values: list[float], shape: tuple[int, ...]) -> torch.Tensor:
    """Per-model values as a float64 tensor that broadcasts over a stacked parameter."""
    return torch.tensor(values, dtype=DTYPE).reshape(shape)


def train_many(
    nets: Sequence[nn.Module],
    samples: Sequence[tuple[np.ndarray, np.ndarray]],
    generators: Sequence[torch.Generator],
    schedules: Sequence[Schedule],
    states: Sequence[dict[str, Any] | None] | None = None,
) -> list[TorchClassifier]:
    """Train K networks of one architecture together, as one network with stacked parameters.

    Model k starts from ``nets[k]``'s weights and is trained on ``samples[k]`` by Adam on the
    mean binary cross-entropy of its mini-batches, with its own generator (which shuffles its
    mini-batches, one ``randperm`` per epoch, as a per-model loop does), its own
    :class:`Schedule` (learning rate, weight decay, epochs, batch size, early stopping) and its
    own Adam step count. Every parameter tensor is stacked with a leading K axis, each linear
    layer runs as one batched matrix product for all K models, and the sum of the K models'
    losses is differentiated once per step: model k's gradient is that of its own loss alone,
    so the result equals training model k by itself up to floating-point rounding. The models
    take their mini-batches in lockstep; a model with fewer batches in an epoch (a smaller
    sample) is masked out of the remaining steps, its parameters and Adam state untouched, and
    a model that has run its epochs or stopped early leaves the stack at the end of the epoch.

    Parameters
    ----------
    nets : sequence of torch.nn.Module
        The K starting networks (one architecture; never modified).
    samples : sequence of (X, y)
        Model k's training data; samples that are the same arrays are stored once.
    generators : sequence of torch.Generator
        Model k's shuffling generator (advanced as training model k alone would advance it).
    schedules : sequence of Schedule
        Model k's optimisation settings.
    states : sequence of dict or None, optional
        Model k's Adam ``state_dict()`` to resume (see :func:`continue_training`), or None.

    Returns
    -------
    list of TorchClassifier
        The K trained classifiers, each keeping its final Adam ``optimiser_state``.
    """
    K = len(nets)
    states = list(states) if states is not None else [None] * K
    if not len(samples) == len(generators) == len(schedules) == len(states) == K:
        raise ValueError("train_many needs one sample, generator, schedule and state per network")
    if K == 0:
        return []
    forward, names = batched_forward(nets[0])
    stack = _Stack(
        [torch.stack([_named(net, name) for net in nets]).clone() for name in names], states
    )
    X_all, y_all, offsets = _concatenated(samples)
    models = [
        _Model(offset, len(X), g, s, step=_steps(state))
        for offset, (X, _), g, s, state in zip(
            offsets, samples, generators, schedules, states, strict=True
        )
    ]
    live = list(range(K))
    results: dict[int, tuple[Any, ...]] = {}
    done = [slot for slot, model in enumerate(models) if model.schedule.epochs < 1]
    while True:
        for slot in done:
            results[live[slot]] = stack.model(slot)
        if done:
            kept = [slot for slot in range(len(live)) if slot not in done]
            live = [live[slot] for slot in kept]
            stack.keep(kept)
        if not live:
            break
        done = _epoch([models[k] for k in live], stack, forward, X_all, y_all)
    return [_classifier(nets[k], names, results[k], models[k], schedules[k]) for k in range(K)]


def _epoch(
    models: list[_Model],
    stack: _Stack,
    forward: Callable[[list[torch.Tensor], torch.Tensor], torch.Tensor],
    X_all: torch.Tensor,
    y_all: torch.Tensor,
) -> list[int]:
    """One epoch of every live model; the slots of the models that are then done."""
    sizes = [m.schedule.rows_per_batch(m.n) for m in models]
    steps = max(-(-m.n // size) for m, size in zip(models, sizes, strict=True))
    width = max(sizes)
    drawn = [m.batches(steps, width) for m in models]
    rows = torch.stack([r for r, _ in drawn], dim=1)  # (steps, K, width)
    masks = torch.stack([v for _, v in drawn], dim=1).to(DTYPE)
    total = torch.zeros(len(models), dtype=DTYPE)
    for s in range(steps):
        mask = masks[s]
        counts = mask.sum(1)
        flat = rows[s].reshape(-1)
        X = X_all.index_select(0, flat).reshape(*rows[s].shape, -1)
        logits = forward(stack.params, X)
        y = y_all.index_select(0, flat).reshape(rows[s].shape)
        losses = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
        loss = (losses * mask).sum(1) / counts.clamp(min=1)
        grads = torch.autograd.grad(loss.sum(), stack.params)
        stack.adam(list(grads), models, counts > 0)
        total += loss.detach() * counts
    epoch_loss = (total / torch.tensor([m.n for m in models], dtype=DTYPE)).tolist()
    return [slot for slot, m in enumerate(models) if m.finished(epoch_loss[slot])]


def batched_forward(
    net: nn.Module,
) -> tuple[Callable[[list[torch.Tensor], torch.Tensor], torch.Tensor], list[str]]:
    """A function ``(stacked parameters, X of shape (K, rows, d)) -> logits (K, rows)``.

    For a linear layer or a sequence of linear layers and elementwise activations (the
    built-in ``logreg`` and ``mlp``) each layer is one batched matrix product; any other
    network runs through ``torch.func.vmap`` of :func:`torch.func.functional_call`, slower
    but the same numbers. Also returns the parameter names, in ``net.named_parameters()``
    order, that index the stacked parameters.
    """
    names = [name for name, _ in net.named_parameters()]
    layers = list(net) if isinstance(net, nn.Sequential) else [net]
    if all(isinstance(layer, nn.Linear) or isinstance(layer, ELEMENTWISE) for layer in layers):
        position = {id(p): i for i, p in enumerate(net.parameters())}
        plan = [
            (position[id(layer.weight)], None if layer.bias is None else position[id(layer.bias)])
            if isinstance(layer, nn.Linear)
            else layer
            for layer in layers
        ]

        def stacked(params: list[torch.Tensor], h: torch.Tensor) -> torch.Tensor:
            for step in plan:
                if isinstance(step, tuple):
                    weight, bias = params[step[0]].transpose(1, 2), step[1]
                    h = (
                        h @ weight
                        if bias is None
                        else torch.baddbmm(params[bias][:, None], h, weight)
                    )
                else:
                    h = step(h)
            return h.reshape(h.shape[0], h.shape[1])

        return stacked, names

    def one(parameters: tuple[torch.Tensor, ...], x: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(
            net, dict(zip(names, parameters, strict=True)), (x,)
        ).reshape(-1)

    def mapped(params: list[torch.Tensor], h: torch.Tensor) -> torch.Tensor:
        return torch.func.vmap(one)(tuple(params), h)

    return mapped, names


def _named(net: nn.Module, name: str) -> torch.Tensor:
    return net.get_parameter(name).detach().to(DTYPE)


def _steps(state: dict[str, Any] | None) -> int:
    """The Adam step count of a ``state_dict()`` (0 for None or an untouched optimiser)."""
    entries = (state or {}).get("state") or {}
    return int(next(iter(entries.values()))["step"]) if entries else 0


def _concatenated(
    samples: Sequence[tuple[np.ndarray, np.ndarray]],
) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """All samples' rows in one float64 tensor (a sample passed twice is stored once)."""
    first: dict[tuple[int, int], int] = {}
    Xs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []
    offsets = []
    for X, y in samples:
        key = (id(X), id(y))
        if key not in first:
            first[key] = sum(len(x) for x in Xs)
            Xs.append(as_tensor(np.asarray(X)))
            ys.append(as_tensor(np.asarray(y)))
        offsets.append(first[key])
    return torch.cat(Xs), torch.cat(ys), offsets


def _classifier(
    template: nn.Module,
    names: list[str],
    result: tuple[list[torch.Tensor], ...],
    model: _Model,
    schedule: Schedule,
) -> TorchClassifier:
    """A classifier with ``template``'s architecture, the trained weights and Adam's state."""
    params, exp_avg, exp_avg_sq = result
    steps = model.step
    net = copy.deepcopy(template).to(DTYPE)
    with torch.no_grad():
        for name, value in zip(names, params, strict=True):
            net.get_parameter(name).copy_(value)
    optimiser = torch.optim.Adam(
        net.parameters(), lr=schedule.lr, weight_decay=schedule.weight_decay
    )
    if steps > 0:
        for name, m, v in zip(names, exp_avg, exp_avg_sq, strict=True):
            optimiser.state[net.get_parameter(name)] = {
                "step": torch.tensor(float(steps)),
                "exp_avg": m,
                "exp_avg_sq": v,
            }
    return TorchClassifier(net, optimiser.state_dict(), model.epoch)


def train(
    trainer_nets: Sequence[nn.Module],
    samples: Sequence[tuple[np.ndarray, np.ndarray]],
    seeds: Sequence[int],
    schedules: Sequence[Schedule],
) -> list[TorchClassifier]:
    """Train K freshly built networks, each initialised from its own seed, together.

    Network k's weights are first re-initialised with :func:`init_weights` from a generator
    seeded with ``seeds[k]``, which then shuffles its mini-batches (as it always has for a
    single model), and the K networks are trained by :func:`train_many`.
    """
    generators = [torch_generator(seed) for seed in seeds]
    nets = []
    for net, generator in zip(trainer_nets, generators, strict=True):
        net = net.to(DTYPE)
        init_weights(net, generator)
        nets.append(net)
    return train_many(nets, samples, generators, schedules)


def continue_training(
    classifier: TorchClassifier,
    X: np.ndarray,
    y: np.ndarray,
    seed: int,
    epochs: int,
    *,
    lr: float,
    batch_size: int | str | None = None,
    weight_decay: float = 0.0,
) -> TorchClassifier:
    """Train a copy of ``classifier``'s network further, starting from its trained weights.

    The same loop as :func:`train` (Adam on binary cross-entropy, mini-batches shuffled by a
    generator seeded with ``seed``) runs for exactly ``epochs`` more epochs (no early stopping)
    on ``(X, y)`` without re-initialising the weights. The optimisation *resumes*: Adam's
    moment estimates and step count are restored from ``classifier.optimiser_state`` (the
    learning rate and weight decay are the arguments), as if training had gone on with new
    data. A fresh Adam optimiser would instead move every weight by about ``lr`` in its first
    steps, whatever its gradient (an MLP on ``german`` then disagreed with its base model on
    28 % of the test rows after one epoch, and less after more); a classifier without a state
    (not trained here, or perturbed) gets a fresh optimiser all the same. ``classifier`` is
    never modified; with ``epochs`` 0 the copy predicts exactly as ``classifier`` does.
    """
    schedule = Schedule(int(epochs), lr, weight_decay, batch_size)
    state = getattr(classifier, "optimiser_state", None)
    tuned = train_many([classifier.net], [(X, y)], [torch_generator(seed)], [schedule], [state])[0]
    before = getattr(classifier, "epochs_trained", None)
    tuned.epochs_trained = None if before is None else before + int(epochs)
    return tuned


class TorchTrainer(Trainer):
    """Base of the torch trainers: builds a network and trains it with :func:`train_many`.

    Subclasses define ``network(n_features)`` and the parameters ``epochs``, ``lr``,
    ``batch_size`` and ``weight_decay`` in their ``__init__``; a subclass may also define
    ``tol`` and ``n_iter_no_change`` (early stopping, see :class:`Schedule`), which default to
    no early stopping (exactly ``epochs`` epochs).

    :meth:`fit` is :meth:`fit_many` with one model, and :meth:`fit_many` trains its K models
    as one batched network (:func:`train_many`): the same models as K calls of :meth:`fit`,
    up to floating-point rounding, in a fraction of the time for small networks.

    Attributes
    ----------
    tunable_hyperparameters : tuple of str
        The numeric optimisation hyperparameters the ``hyperparameters`` shift perturbs:
        ``lr`` and ``epochs``.
    per_model_parameters : tuple of str
        The parameters that may differ between the models :meth:`fit_each` trains as one
        batch (those of the optimisation; the others fix the architecture).
    """

    tunable_hyperparameters: ClassVar[tuple[str, ...]] = ("lr", "epochs")
    per_model_parameters: ClassVar[tuple[str, ...]] = (
        "epochs",
        "lr",
        "weight_decay",
        "batch_size",
        "tol",
        "n_iter_no_change",
    )
    classifier_type: ClassVar[type] = TorchClassifier
    parameter_constraints = {
        "epochs": (Interval("int", low=1),),
        "lr": (Interval("float", low=0, open_low=True),),
        "batch_size": (Interval("int", low=1), None),
        "weight_decay": (Interval("float", low=0),),
    }

    epochs: int
    lr: float
    batch_size: int | str | None
    weight_decay: float

    def network(self, n_features: int) -> nn.Module:
        """The untrained network for ``n_features`` inputs."""
        raise NotImplementedError

    def schedule(self) -> Schedule:
        """The optimisation settings (no early stopping unless the trainer defines it)."""
        return Schedule(
            epochs=int(self.epochs),
            lr=float(self.lr),
            weight_decay=float(self.weight_decay),
            batch_size=self.batch_size,
            tol=float(getattr(self, "tol", 0.0)),
            n_iter_no_change=getattr(self, "n_iter_no_change", None),
        )

    def fit(self, X: np.ndarray, y: np.ndarray, seed: int) -> TorchClassifier:
        """Train on model-space data with the given seed (:meth:`fit_many` with one model).

        Both go through the same batched training (:func:`train_many`, here with K = 1); it
        does not call ``self.fit_many``, so a subclass's ``fit_many`` may call ``fit``.
        """
        return _fit_torch([self], [(X, y)], [seed])[0]

    def fit_many(
        self, samples: Sequence[tuple[np.ndarray, np.ndarray]], seeds: Sequence[int]
    ) -> list[TorchClassifier]:
        """Train model k on ``samples[k]`` with ``seeds[k]``, all K as one batched network."""
        return _fit_torch([self] * len(samples), samples, seeds)

    def fit_each(
        self,
        trainers: Sequence[Trainer],
        samples: Sequence[tuple[np.ndarray, np.ndarray]],
        seeds: Sequence[int],
    ) -> list[Any]:
        """Model k trained by ``trainers[k]``; one batch per architecture.

        Trainers that use this module's training (they override neither :meth:`fit` nor
        :meth:`fit_many`) and agree on every parameter but :attr:`per_model_parameters` are
        trained as one batch of :func:`train_many`, each with its own :class:`Schedule`; any
        other trainer goes to :meth:`Trainer.fit_each` (equal trainers share one
        ``fit_many``). The models come back in the order of ``trainers``.
        """
        check_many(samples, seeds, trainers)

        def batch(ks: list[int]) -> list[TorchClassifier]:
            return _fit_torch(*pick(ks, trainers, samples, seeds))

        def rest(ks: list[int]) -> list[Any]:
            return super(TorchTrainer, self).fit_each(*pick(ks, trainers, samples, seeds))

        return fit_in_groups(trainers, _uses_engine, self._architecture, batch, rest)

    @classmethod
    def _architecture(cls, trainer: Trainer) -> tuple[Any, ...]:
        """What trainers sharing a batch agree on: class and non-optimisation parameters."""
        params = trainer.get_params(deep=False)
        per_model = set(getattr(trainer, "per_model_parameters", ()))
        return (type(trainer), *((k, v) for k, v in sorted(params.items()) if k not in per_model))

    def architecture_variants(self) -> list[dict[str, Any]]:
        """Parameter changes giving other architectures of this family (none by default).

        A single linear layer (``logreg``) has no architecture to vary; :class:`MLP` overrides.
        """
        return []

    def finetune(
        self, classifier: TorchClassifier, X: np.ndarray, y: np.ndarray, seed: int, severity: float
    ) -> TorchClassifier:
        """Continue training a copy of ``classifier`` on ``(X, y)``; ``classifier`` is unchanged.

        Runs :func:`continue_training` for ``round(severity * E)`` epochs with this trainer's
        ``lr``, ``batch_size`` and ``weight_decay`` (severity 0: an exact copy), where ``E`` is
        the number of epochs ``classifier`` was trained for (its ``epochs_trained``: fewer than
        ``epochs`` where it stopped early) or, for a classifier not trained here, ``epochs``.

        Parameters
        ----------
        classifier : TorchClassifier
            The trained model to start from (never modified).
        X, y : ndarray
            The new training data.
        seed : int
            Seeds the shuffling of mini-batches.
        severity : float
            Further epochs as a multiple of the classifier's training epochs (>= 0).

        Returns
        -------
        TorchClassifier
            The fine-tuned copy.
        """
        if isinstance(severity, bool) or not float(severity) >= 0:
            raise ConfigError(f"finetune severity must be a number >= 0, got {severity!r}")
        trained = getattr(classifier, "epochs_trained", None)
        base_epochs = int(self.epochs) if trained is None else int(trained)
        return continue_training(
            classifier,
            X,
            y,
            seed,
            round(float(severity) * base_epochs),
            lr=self.lr,
            batch_size=self.batch_size,
            weight_decay=self.weight_decay,
        )


def _uses_engine(trainer: Trainer) -> bool:
    """Whether ``trainer`` trains by :func:`train_many` (torch, with no solver of its own)."""
    cls = type(trainer)
    return (
        isinstance(trainer, TorchTrainer)
        and cls.fit is TorchTrainer.fit
        and cls.fit_many is TorchTrainer.fit_many
    )


def pick(ks: Sequence[int], *columns: Sequence[Any]) -> tuple[list[Any], ...]:
    """The entries ``ks`` of each of ``columns`` (trainers, samples, seeds...)."""
    return tuple([column[k] for k in ks] for column in columns)


def all_but(name: str) -> Callable[[Trainer], tuple[Any, ...]]:
    """A grouping key: the trainer's class and every parameter but ``name``."""

    def key(trainer: Trainer) -> tuple[Any, ...]:
        params = sorted(trainer.get_params(deep=False).items())
        return (type(trainer), *((k, v) for k, v in params if k != name))

    return key


def fit_in_groups(
    trainers: Sequence[Trainer],
    batchable: Callable[[Trainer], bool],
    key: Callable[[Trainer], tuple[Any, ...]],
    batch: Callable[[list[int]], list[Any]],
    rest: Callable[[list[int]], list[Any]],
) -> list[Any]:
    """Model k of ``trainers[k]``, in their order, trained in as few calls as possible.

    The ``batchable`` trainers are grouped by equal ``key`` (its first entry, a class,
    compared by identity, the rest by :func:`same_value`) and each group is trained by one
    call ``batch(indices)``; the other trainers by one call ``rest(indices)``. Both return the
    models of ``indices`` in that order.
    """
    chosen = [k for k, t in enumerate(trainers) if batchable(t)]
    others = [k for k in range(len(trainers)) if k not in set(chosen)]
    models: dict[int, Any] = {}
    for group in _groups([trainers[k] for k in chosen], key):
        ks = [chosen[g] for g in group]
        models.update(zip(ks, batch(ks), strict=True))
    if others:
        models.update(zip(others, rest(others), strict=True))
    return [models[k] for k in range(len(trainers))]


def _groups(
    trainers: Sequence[Trainer], key: Callable[[Trainer], tuple[Any, ...]]
) -> list[list[int]]:
    """Indices of ``trainers`` grouped by equal ``key`` (compared with :func:`same_value`)."""
    keys: list[tuple[Any, ...]] = []
    groups: list[list[int]] = []
    for k, trainer in enumerate(trainers):
        mine = key(trainer)
        for g, other in enumerate(keys):
            if same_value(list(mine[1:]), list(other[1:])) and mine[0] is other[0]:
                groups[g].append(k)
                break
        else:
            keys.append(mine)
            groups.append([k])
    return groups


def _fit_torch(
    trainers: Sequence[TorchTrainer],
    samples: Sequence[tuple[np.ndarray, np.ndarray]],
    seeds: Sequence[int],
) -> list[TorchClassifier]:
    """Model k built by ``trainers[k]`` (one architecture) and trained by :func:`train`."""
    check_many(samples, seeds, trainers)
    nets = []
    for trainer, (X, _) in zip(trainers, samples, strict=True):
        with untouched_global_rng():  # layer constructors draw default weights from it
            nets.append(trainer.network(np.shape(X)[1]))
    return train(nets, samples, seeds, [trainer.schedule() for trainer in trainers])
