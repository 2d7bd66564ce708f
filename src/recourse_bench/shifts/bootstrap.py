"""Model update by bootstrap: retrain on resamples (or smaller resamples) of the training split.

ALGORITHMS.md, "Model updates and distribution shifts": ``bootstrap`` retrains on bootstrap
resamples, or on a fraction of the data, with severity = 1 - fraction. The data distribution does
not move; what changes is which sample of it the updated model sees, as when a model is
retrained on a fresh draw of the same population.

What it computes. For each of the ``n_models`` updated models k, with the seed ``s_k`` drawn by
:meth:`~recourse_bench.api.Shift.draw_seeds` from the shift's seed:

1. ``m = max(2, round((1 - severity) * n))`` rows are drawn, where ``n`` is the size of the
   training split;
2. the draw is *stratified*: class c gets ``max(1, round(m * n_c / n))`` rows, drawn uniformly
   with replacement from the training rows of class c (so both classes are always present and
   the class balance is the training split's up to rounding); the rows are then shuffled;
3. the base model's trainer is fit on that sample with seed ``s_k``.

Severity: ``severity`` in [0, 1) is 1 - the fraction of the training size drawn. Severity 0 is a
full-size bootstrap resample (n rows with replacement, the empirical training distribution);
severity 0.5 draws half as many rows. Larger severities give smaller, noisier training samples,
hence updated models further from the base model.

Parameters: ``severity`` (default 0.0), ``n_models`` (default 10).
"""

from __future__ import annotations

import numpy as np

from ..api import Interval, Splits
from ..registry import register
from ._resampling import ResamplingShift


def stratified_rows(
    y: np.ndarray, sizes: dict[int, int], rng: np.random.Generator, replace: bool = True
) -> np.ndarray:
    """Row indices with ``sizes[c]`` rows of each class ``c``, drawn uniformly, then shuffled.

    Parameters
    ----------
    y : ndarray
        0/1 labels of the rows to draw from.
    sizes : dict of int to int
        Number of rows to draw from each class.
    rng : numpy.random.Generator
        The only source of randomness.
    replace : bool, default True
        Draw with replacement.

    Returns
    -------
    ndarray
        Indices into ``y``.
    """
    y = np.asarray(y)
    parts = [
        rng.choice(np.flatnonzero(y == label), size=int(size), replace=replace)
        for label, size in sorted(sizes.items())
    ]
    rows = np.concatenate(parts) if parts else np.empty(0, dtype=int)
    return rows[rng.permutation(len(rows))]


@register("shift", "bootstrap")
class Bootstrap(ResamplingShift):
    """Retrain on stratified bootstrap resamples of the training split.

    Parameters
    ----------
    severity : float, default 0.0
        In [0, 1): 1 - the fraction of the training size drawn (0: a full-size bootstrap
        resample; 0.5: half as many rows).
    n_models : int, default 10
        Number K of updated models.
    """

    parameter_constraints = {
        "severity": (Interval("float", low=0, high=1, open_high=True),),
        "n_models": (Interval("int", low=1),),
    }

    def __init__(self, severity: float = 0.0, n_models: int = 10):
        self.severity = severity
        self.n_models = n_models

    def sample(self, splits: Splits, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A stratified resample with replacement, ``1 - severity`` times the training size."""
        y = splits.y_train
        n = len(y)
        m = max(2, round((1.0 - float(self.severity)) * n))
        labels, counts = np.unique(y, return_counts=True)
        sizes = {
            int(label): max(1, round(m * count / n))
            for label, count in zip(labels, counts, strict=True)
        }
        rows = stratified_rows(y, sizes, rng)
        return splits.X_train[rows], y[rows]
