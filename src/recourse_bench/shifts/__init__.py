"""Model updates and distribution shifts: ``updates(splits, trainer, base_model, seed)``."""

from . import retrain_seed

__all__ = ["retrain_seed"]
