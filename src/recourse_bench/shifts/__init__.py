"""Model updates and distribution shifts: ``updates(splits, trainer, base_model, seed)``."""

from . import (
    architecture,
    bootstrap,
    concept_drift,
    covariate,
    finetune,
    hyperparameters,
    label_shift,
    natural,
    new_data,
    retrain_seed,
    weight_perturbation,
)

__all__ = [
    "architecture",
    "bootstrap",
    "concept_drift",
    "covariate",
    "finetune",
    "hyperparameters",
    "label_shift",
    "natural",
    "new_data",
    "retrain_seed",
    "weight_perturbation",
]
