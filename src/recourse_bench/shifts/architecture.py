"""Model update by architecture: retrain with other architectures of the base model's family.

ALGORITHMS.md, "Model updates and distribution shifts": ``architecture`` retrains with other
widths and depths. The data do not move; what changes is the model class within its family, as
when a deployed model is replaced by a wider, deeper or smaller one.

What it computes. The trainer lists its family's architectures with
``trainer.architecture_variants()``, a list of parameter changes (dicts). Variants whose every
value already equals the trainer's own parameter are dropped (retraining the base's own
architecture is ``retrain-seed``), leaving V "other" architectures. For each of the ``n_models``
updated models k = 0, 1, ..., K - 1, with the seed ``s_k`` drawn by
:meth:`~recourse_bench.api.Shift.draw_seeds` from the shift's seed:

1. the variant ``v = variants[k mod V]`` is taken (the list is cycled, in its order);
2. the trainer ``type(trainer)(**{**trainer.get_params(), **v})`` is built: every other
   parameter (epochs, learning rate, ...) is the base trainer's;
3. it is fit with seed ``s_k`` on the unchanged training split (all K by one
   ``trainer.fit_each`` call: the same models as K calls of ``fit``; the torch trainers train
   the models of one architecture as one batch).

The variants of the built-in trainers:

- ``mlp``: ``{"hidden": h}`` for h in (16,), (64,), (32, 32), (64, 64), (32, 32, 32)
  (:attr:`~recourse_bench.models.mlp.MLP.layouts`; the default (32, 32) is dropped for a base
  with that layout, leaving 4);
- ``forest``: ``{"max_depth": d, "n_estimators": m}`` for m in (n, max(1, n // 2), 2 n), outer,
  and d in (4, 8, 16, None), inner, where n is the trainer's ``n_estimators`` (12; 11 once the
  base's own is dropped);
- ``boosting``: ``{"max_leaf_nodes": l, "max_iter": m}`` for m in (n, max(1, n // 2), 2 n) and l
  in (8, 15, 31, 63), where n is the trainer's ``max_iter``;
- ``logreg``: none. A single linear layer has no architecture to vary, so the shift raises
  :class:`~recourse_bench.api.NotApplicable` (recorded as skipped), as for any trainer without
  ``architecture_variants`` or with nothing but its own architecture.

Severity: none (the shift has no size; :attr:`~recourse_bench.api.Shift.severity_value` is NaN).

Parameters: ``n_models`` (default 10).
"""

from __future__ import annotations

from typing import Any

from ..api import ArchitectureFamily, Classifier, Interval, Shift, Splits, Trainer, same_value
from ..registry import register


def trainer_name(trainer: Trainer) -> str:
    """The trainer's registered name, or its class name."""
    return getattr(trainer, "name", "") or type(trainer).__name__


def rebuilt(trainer: Trainer, changes: dict[str, Any]) -> Trainer:
    """A new trainer of the same class with ``trainer``'s parameters updated by ``changes``.

    Parameters
    ----------
    trainer : Trainer
        The base trainer (never modified).
    changes : dict
        Parameter values to replace.

    Returns
    -------
    Trainer
        ``type(trainer)(**{**trainer.get_params(), **changes})``, its parameters validated.
    """
    new = type(trainer)(**{**trainer.get_params(deep=False), **changes})
    new.validate_params()
    return new


@register("shift", "architecture")
class Architecture(Shift):
    """Retrain with the other architectures of the trainer's family, one per updated model.

    Parameters
    ----------
    n_models : int, default 10
        Number K of updated models; the trainer's other architectures are cycled over.
    """

    trainer_needs = (ArchitectureFamily,)

    parameter_constraints = {
        "n_models": (Interval("int", low=1),),
    }

    def __init__(self, n_models: int = 10):
        self.n_models = n_models

    def not_applicable(self, trainer: Trainer) -> str | None:
        """Why not: the trainer is no :class:`ArchitectureFamily`, or has no other variant."""
        reason = super().not_applicable(trainer)
        if reason is None and not self.variants(trainer):
            variants = trainer.architecture_variants()  # type: ignore[attr-defined]
            why = "lists only its own" if variants else "lists none"
            reason = (
                f"{trainer_name(trainer)} has no architecture to vary (architecture_variants() "
                f"{why}); use retrain-seed or hyperparameters for this model"
            )
        return reason

    def variants(self, trainer: Trainer) -> list[dict[str, Any]]:
        """The trainer's architecture variants that differ from its own parameters."""
        assert isinstance(trainer, ArchitectureFamily)
        current = trainer.get_params(deep=False)
        return [
            dict(variant)
            for variant in trainer.architecture_variants()
            if not all(
                key in current and same_value(current[key], value) for key, value in variant.items()
            )
        ]

    def trainers(self, trainer: Trainer, seed: int) -> list[tuple[Trainer, int]]:
        """The K trainers to fit and their seeds: variant ``k mod V`` with seed ``s_k``."""
        self.check_applies(trainer)
        variants = self.variants(trainer)
        return [
            (rebuilt(trainer, variants[k % len(variants)]), draw_seed)
            for k, draw_seed in enumerate(self.draw_seeds(seed, self.n_models))
        ]

    def updates(
        self, splits: Splits, trainer: Trainer, base_model: Classifier, seed: int
    ) -> list[Classifier]:
        """K models, each an other architecture fit on the training split with its seed."""
        built = self.trainers(trainer, seed)
        data = (splits.X_train, splits.y_train)
        return trainer.fit_each([t for t, _ in built], [data] * len(built), [s for _, s in built])
