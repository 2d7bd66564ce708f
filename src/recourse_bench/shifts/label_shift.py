"""Label shift (prior shift): resample the training split to move the share of the favourable class.

ALGORITHMS.md, "Model updates and distribution shifts": ``label-shift`` resamples to move the class
prior by ``severity``. Within each class the rows are drawn from the training rows of that class,
so P(x | y) is unchanged and labels stay honest; only P(y) moves.

What it computes. Let p be the share of class 1 in the training split (n rows) and
q = clip(p + severity, 0.05, 0.95) the target share. For each of the ``n_models`` updated models
k, with the seed ``s_k`` drawn by :meth:`~recourse_bench.api.Shift.draw_seeds`:

1. ``n1 = round(q * n)`` rows are drawn uniformly with replacement from the class-1 training
   rows and ``n - n1`` from the class-0 rows, then shuffled (a sample of the training size whose
   class-1 share is q up to rounding);
2. the base model's trainer is fit on that sample with seed ``s_k``.

Severity: ``severity`` in (-1, 1) is the change of the class-1 share, in absolute terms (0.1
moves 70 % to 80 %). Severity 0 draws each class in its training proportion, a class-stratified
bootstrap resample of the training split (the unshifted distribution). The clip to
[0.05, 0.95] keeps both classes in every sample, so severities beyond 0.95 - p (or below
0.05 - p) all give the same, extreme share.

Parameters: ``severity`` (default 0.1), ``n_models`` (default 10).
"""

from __future__ import annotations

import numpy as np

from ..api import Interval, Splits
from ..registry import register
from ._resampling import ResamplingShift
from .bootstrap import stratified_rows

LOWEST_SHARE = 0.05
HIGHEST_SHARE = 0.95


@register("shift", "label-shift")
class LabelShift(ResamplingShift):
    """Resample per class so that the class-1 share moves from p to clip(p + severity, .05, .95).

    Parameters
    ----------
    severity : float, default 0.1
        In (-1, 1): the change of the share of class 1 (0: no shift).
    n_models : int, default 10
        Number K of updated models.
    """

    parameter_constraints = {
        "severity": (Interval("float", low=-1, high=1, open_low=True, open_high=True),),
        "n_models": (Interval("int", low=1),),
    }

    def __init__(self, severity: float = 0.1, n_models: int = 10):
        self.severity = severity
        self.n_models = n_models

    def target_share(self, splits: Splits) -> float:
        """The class-1 share of every sample: clip(p + severity, 0.05, 0.95).

        Parameters
        ----------
        splits : Splits
            The dataset.

        Returns
        -------
        float
            The target share q.
        """
        p = float(np.mean(splits.y_train == 1))
        return float(np.clip(p + float(self.severity), LOWEST_SHARE, HIGHEST_SHARE))

    def sample(self, splits: Splits, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A training-size sample, per class with replacement, with class-1 share q."""
        y = splits.y_train
        n = len(y)
        n1 = round(self.target_share(splits) * n)
        rows = stratified_rows(y, {0: n - n1, 1: n1}, rng)
        return splits.X_train[rows], y[rows]
