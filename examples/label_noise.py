r"""An example shift, written as a plugin: retraining on labels with random noise.

The bank relabels its training data and some labels come out wrong: each training label is
flipped independently with probability ``severity``, and the base model's trainer is fit again
on the noisy labels, once per updated model. Each updated model has its own seed from
:meth:`~recourse_bench.api.Shift.draw_seeds`, which derives it from the shift's seed (never
from the method), so every method faces the same updated models.

Try it (see docs/new-shift.md)::

    recourse-bench check --plugin examples/label_noise.py
    recourse-bench run benchmarks/quick.yaml --plugin examples/label_noise.py \
        --only shift=label-noise --out runs/noise
"""

from __future__ import annotations

import numpy as np

from recourse_bench import Shift, register
from recourse_bench.api import Classifier, Interval, Splits, Trainer
from recourse_bench.seeding import numpy_rng


@register("shift", "label-noise")
class LabelNoise(Shift):
    """Retrain on the training split with each label flipped with probability ``severity``.

    Parameters
    ----------
    severity : float, default 0.1
        The flip probability, in [0, 0.5] (0: retraining on the same labels with new seeds).
    n_models : int, default 10
        Number K of updated models.
    """

    parameter_constraints = {
        "severity": (Interval("float", low=0, high=0.5),),
        "n_models": (Interval("int", low=1),),
    }

    def __init__(self, severity: float = 0.1, n_models: int = 10):
        self.severity = severity
        self.n_models = n_models

    def updates(
        self, splits: Splits, trainer: Trainer, base_model: Classifier, seed: int
    ) -> list[Classifier]:
        """K models, each fit on its own draw of noisy labels with its own seed."""
        X, y = splits.X_train, splits.y_train
        models = []
        for draw_seed in self.draw_seeds(seed, self.n_models):
            flip = numpy_rng(draw_seed).uniform(size=len(y)) < float(self.severity)
            noisy = np.where(flip, 1 - y, y)
            models.append(trainer.fit(X, noisy, draw_seed))
        return models
