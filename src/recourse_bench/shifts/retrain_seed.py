"""Model multiplicity: the same data and architecture retrained with new initialisation seeds.

Each of the ``n_models`` updated models is trained on the unchanged training split with the seed
derived from the shift's seed and the draw index. There is no severity: this is the baseline of
how many recourses are lost to nothing but the randomness of training.
"""

from __future__ import annotations

from ..api import Classifier, Interval, Shift, Splits, Trainer
from ..registry import register


@register("shift", "retrain-seed")
class RetrainSeed(Shift):
    """Retrain the base model's trainer with new seeds on the same data.

    Parameters
    ----------
    n_models : int, default 10
        Number K of updated models.
    """

    parameter_constraints = {
        "n_models": (Interval("int", low=1),),
    }

    def __init__(self, n_models: int = 10):
        self.n_models = n_models

    def updates(
        self, splits: Splits, trainer: Trainer, base_model: Classifier, seed: int
    ) -> list[Classifier]:
        """K models retrained on the training split with seeds derived from ``seed``.

        One ``trainer.fit_many`` call (model k as ``trainer.fit`` with seed ``s_k``), so that
        a trainer that trains several models together does so.
        """
        seeds = self.draw_seeds(seed, self.n_models)
        return trainer.fit_many([(splits.X_train, splits.y_train)] * len(seeds), seeds)
