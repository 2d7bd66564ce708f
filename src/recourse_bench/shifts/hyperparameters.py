"""Model update by hyperparameters: retrain with perturbed optimisation hyperparameters.

ALGORITHMS.md, "Model updates and distribution shifts": ``hyperparameters`` retrains with other
learning rates and epochs. The data and the architecture do not move; what changes is how the
model is trained, as when a model is retrained after a round of re-tuning.

What it computes. The trainer declares the numeric hyperparameters that may move in its
``tunable_hyperparameters`` attribute (a tuple of parameter names):

- ``logreg``: ``weight_decay`` (Newton's optimum depends on nothing else; with
  ``solver="adam"``: ``lr``, ``epochs``);
- ``mlp`` (torch): ``lr``, ``epochs``;
- ``forest``: ``n_estimators``, ``min_samples_leaf``;
- ``boosting``: ``learning_rate``, ``max_iter``.

For each of the ``n_models`` updated models k, with the seed ``s_k`` drawn by
:meth:`~recourse_bench.api.Shift.draw_seeds` from the shift's seed:

1. a numpy generator seeded with ``s_k`` draws ``u_j ~ U(-1, 1)``, one per declared name j, in
   the declared order (a single ``uniform(-1, 1, size=J)`` call);
2. each declared hyperparameter ``h_j`` becomes ``h_j * exp(u_j * severity * ln 2)``, i.e. it is
   multiplied by a log-uniform factor in ``[2**-severity, 2**severity]``; an integer
   hyperparameter (its default is an int) is then rounded (Python's ``round``, half to even)
   and kept >= 1, a real one is kept as is;
3. the trainer ``type(trainer)(**{**trainer.get_params(), **changes})`` is fit with seed ``s_k``
   on the unchanged training split. The K trainers are fit by one ``trainer.fit_each`` call,
   the same models as K calls of their ``fit`` (the torch trainers train them as one batch,
   each with its own learning rate and epochs).

Severity: ``severity`` >= 0 is the log2 half-width of the factor's range: severity 1 (the
default) moves every hyperparameter by a factor between 1/2 and 2, severity 2 between 1/4 and 4.
Severity 0 keeps every hyperparameter exactly, so the K models differ only by their training
seed (as ``retrain-seed``).

A trainer that declares no ``tunable_hyperparameters`` raises
:class:`~recourse_bench.api.NotApplicable` (recorded as skipped).

Parameters: ``severity`` (default 1.0), ``n_models`` (default 10).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..api import Classifier, Interval, Shift, Splits, Trainer, Tunable
from ..registry import register
from ..seeding import numpy_rng
from .architecture import rebuilt, trainer_name


def _is_integer(trainer: Trainer, name: str) -> bool:
    """Whether hyperparameter ``name`` is an integer (by its default, else by its value)."""
    default = type(trainer).param_defaults().get(name, getattr(trainer, name))
    return isinstance(default, int | np.integer) and not isinstance(default, bool)


@register("shift", "hyperparameters")
class Hyperparameters(Shift):
    """Retrain with each tunable hyperparameter scaled by a random factor in [2**-s, 2**s].

    Parameters
    ----------
    severity : float, default 1.0
        ``s`` >= 0: the log2 half-width of the factors' range (0: unchanged hyperparameters).
    n_models : int, default 10
        Number K of updated models.
    """

    trainer_needs = (Tunable,)

    parameter_constraints = {
        "severity": (Interval("float", low=0),),
        "n_models": (Interval("int", low=1),),
    }

    def __init__(self, severity: float = 1.0, n_models: int = 10):
        self.severity = severity
        self.n_models = n_models

    def not_applicable(self, trainer: Trainer) -> str | None:
        """Why not: the trainer is no :class:`Tunable`, or its tuple of names is empty."""
        reason = super().not_applicable(trainer)
        if reason is None and not tuple(trainer.tunable_hyperparameters):  # type: ignore[attr-defined]
            reason = f"{trainer_name(trainer)} declares no tunable_hyperparameters to perturb"
        return reason

    def changes(self, trainer: Trainer, draw_seed: int) -> dict[str, Any]:
        """The hyperparameter values of the draw with seed ``draw_seed``."""
        assert isinstance(trainer, Tunable)
        names = tuple(trainer.tunable_hyperparameters)
        u = numpy_rng(draw_seed).uniform(-1.0, 1.0, size=len(names))
        changes: dict[str, Any] = {}
        for name, u_j in zip(names, u, strict=True):
            factor = math.exp(float(u_j) * float(self.severity) * math.log(2.0))
            value = getattr(trainer, name)
            if _is_integer(trainer, name):
                changes[name] = max(1, round(value * factor))
            else:
                changes[name] = value * factor
        return changes

    def trainers(self, trainer: Trainer, seed: int) -> list[tuple[Trainer, int]]:
        """The K trainers to fit and their seeds ``s_k``."""
        self.check_applies(trainer)
        return [
            (rebuilt(trainer, self.changes(trainer, draw_seed)), draw_seed)
            for draw_seed in self.draw_seeds(seed, self.n_models)
        ]

    def updates(
        self, splits: Splits, trainer: Trainer, base_model: Classifier, seed: int
    ) -> list[Classifier]:
        """K models fit on the training split with perturbed hyperparameters and their seeds."""
        built = self.trainers(trainer, seed)
        data = (splits.X_train, splits.y_train)
        return trainer.fit_each([t for t, _ in built], [data] * len(built), [s for _, s in built])
