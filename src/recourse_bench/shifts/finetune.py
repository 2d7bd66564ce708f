"""Model update by fine-tuning: the base model is trained further on new data.

ALGORITHMS.md, "Model updates and distribution shifts": ``finetune`` continues training h on new
data (an incremental update) for some epochs. Unlike the retraining shifts, every updated model
starts from the base model itself, so the update is as small as the further training makes it.

What it computes. Let (X, y) be the training split (``data="train"``) or the dataset's future
split (``data="future"``, read with :meth:`~recourse_bench.api.Splits.future_split`), with N
rows. For each of the ``n_models`` updated models k, with the seed ``s_k`` drawn by
:meth:`~recourse_bench.api.Shift.draw_seeds` from the shift's seed:

1. a bootstrap resample of (X, y) is drawn: N row indices uniform with replacement from a numpy
   generator seeded with ``s_k`` (``integers(0, N, size=N)``);
2. ``trainer.finetune(base_model, X_k, y_k, s_k, severity)`` trains a deep copy of the base model
   further on that resample (the base model is never modified):

   - ``mlp`` (and ``logreg`` with ``solver="adam"``): ``round(severity * E)`` more epochs, ``E``
     the epochs the base model trained for (``epochs``, or fewer where it stopped early), of
     the trainer's own loop at the trainer's ``lr``, ``batch_size`` and ``weight_decay``,
     mini-batches shuffled with ``s_k``, starting from the trained weights and resuming the
     base model's Adam state (a fresh optimiser would first move every weight by about ``lr``
     whatever its gradient);
   - ``logreg`` (Newton, the default): at most ``round(severity * max_iter)`` Newton iterations
     on the resample, warm-started from the trained (w, b); a convex model has no training path
     to resume, so a fine-tuned model that converges is the resample's optimum;
   - ``forest``: ``round(severity * n_estimators)`` more trees grown on the resample with
     ``warm_start`` and ``random_state=s_k``; the old trees are kept, so the new data hold a share
     ``severity / (1 + severity)`` of the vote (up to rounding);
   - ``boosting``: ``round(severity * max_iter)`` more boosting iterations on the resample with
     ``warm_start``, starting from the base ensemble's exact log-odds of the resample (see
     :meth:`~recourse_bench.models.boosting.Boosting.finetune`).

Severity: ``severity`` >= 0 is the amount of further training as a fraction of the base
training (epochs, trees or iterations; 1 = as much again as the base model got). Severity 0
returns copies of the base model, which predict exactly as it does. Python's ``round`` (half to
even) turns the product into a count.

``data="future"`` on a dataset without a future split, a trainer without ``finetune`` and a
resample with a single class raise :class:`~recourse_bench.api.NotApplicable` (recorded as
skipped); a deferred future split whose file is missing raises the
:class:`~recourse_bench.api.DataError` of :meth:`~recourse_bench.api.Splits.future_split`, which
says how to get the file.

Parameters: ``severity`` (default 0.5), ``data`` (default ``"train"``), ``n_models``
(default 10).
"""

from __future__ import annotations

import numpy as np

from ..api import Classifier, Finetunable, Interval, NotApplicable, Options, Shift, Splits, Trainer
from ..registry import register
from ..seeding import numpy_rng


@register("shift", "finetune")
class Finetune(Shift):
    """Train copies of the base model further on bootstrap resamples of new data.

    Parameters
    ----------
    severity : float, default 0.5
        Further training as a fraction of the base training (epochs, trees or boosting
        iterations); 0 leaves the base model unchanged.
    data : {"train", "future"}, default "train"
        Resample the training split, or the dataset's future (natural-shift) split.
    n_models : int, default 10
        Number K of updated models.
    """

    trainer_needs = (Finetunable,)

    parameter_constraints = {
        "severity": (Interval("float", low=0),),
        "data": (Options(("train", "future")),),
        "n_models": (Interval("int", low=1),),
    }

    def __init__(self, severity: float = 0.5, data: str = "train", n_models: int = 10):
        self.severity = severity
        self.data = data
        self.n_models = n_models

    def reads_future(self) -> bool:
        """Whether the updates read the future split."""
        return self.data == "future"

    def new_data(self, splits: Splits) -> tuple[np.ndarray, np.ndarray]:
        """The data the resamples are drawn from: the training or the future split."""
        if self.data == "train":
            return splits.X_train, splits.y_train
        future = splits.future_split() if splits.has_future else None
        if future is None:
            raise NotApplicable(
                f"{self.label}: dataset {splits.name!r} has no future split (natural-shift "
                f"data); use data='train' or a dataset that ships one"
            )
        return future

    def updates(
        self, splits: Splits, trainer: Trainer, base_model: Classifier, seed: int
    ) -> list[Classifier]:
        """K fine-tuned copies of ``base_model``, one per bootstrap resample."""
        self.check_applies(trainer, base_model)
        assert isinstance(trainer, Finetunable)
        X, y = self.new_data(splits)
        models = []
        for draw_seed in self.draw_seeds(seed, self.n_models):
            rows = numpy_rng(draw_seed).integers(0, len(X), size=len(X))
            if len(np.unique(y[rows])) < 2:
                raise NotApplicable(f"{self.label} drew a resample with a single class")
            models.append(trainer.finetune(base_model, X[rows], y[rows], draw_seed, self.severity))
        return models
