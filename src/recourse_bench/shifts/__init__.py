"""Model updates and distribution shifts: ``updates(splits, trainer, base_model, seed)``."""

from . import bootstrap, concept_drift, covariate, label_shift, natural, new_data, retrain_seed

__all__ = [
    "bootstrap",
    "concept_drift",
    "covariate",
    "label_shift",
    "natural",
    "new_data",
    "retrain_seed",
]
