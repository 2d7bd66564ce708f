"""Concept drift: the labels change while the covariates stay put.

ALGORITHMS.md, "Model updates and distribution shifts": ``concept-drift`` flips labels in a region
or at random (data correction errors); on synthetic data, it moves the true boundary. The updated
models are retrained on the training rows (unchanged) with the changed labels.

What it computes. For each of the ``n_models`` updated models k, with the seed ``s_k`` drawn by
:meth:`~recourse_bench.api.Shift.draw_seeds` from the shift's seed, new labels y' of the training
rows are drawn with a generator seeded by ``s_k``, and the base model's trainer is fit on
(X_train, y') with seed ``s_k``. There are two modes, chosen by the dataset:

*Label flips in a region* (every dataset without a known concept). The region is the set of
training rows whose feature j is strictly above its training median (for a binary feature with a
median of 0: the rows where it is 1; ties at the median of an integer feature stay outside, so
the region may hold fewer than half of the rows). Inside the region each label is flipped
independently with probability ``severity``; outside it no label changes. Severity 0 leaves the
labels exactly as they are (retraining on the training split); severity 1 inverts the concept in
the region. The feature j is ``feature`` (a model-space name) or, by default, the first mutable
continuous or integer feature, as for the ``covariate`` shift; an empty region raises
:class:`~recourse_bench.api.NotApplicable`.

*Rotated boundary* (a dataset that exposes its true linear concept as ``Splits.concept``:
``synthetic-drift``, whose concept is P(y = 1 | x) = sigma(sharpness * w(a)^T (x - 1/2)) with
raw x ~ U[0, 1]^d, see :mod:`recourse_bench.datasets.synthetic_drift`). ``splits.concept(r)``
gives the model-space log-odds of the concept with its boundary rotated by r radians in the
(x0, x1) plane about the raw centre (the generator's own concept with the angle a + r, without
approximation: rotating by the dataset's ``drift`` gives exactly
``SyntheticDrift.oracle(splits, drifted=True)``). All training labels are then drawn afresh,
y'_i ~ Bernoulli(sigma(log-odds of the rotated concept at x_i)), with r = ``severity``.
Severity 0 draws them from the base concept itself, so the labels have the base data's
distribution (they are a new draw, not the same draw). ``feature`` is ignored in this mode
(a name given is still checked).

Severity: ``severity`` in [0, 1]: the flip probability inside the region, or with a known
concept the rotation of the true boundary in radians (up to 1 rad, about 57 degrees,
twice the dataset's default drift of 0.5).

Parameters: ``severity`` (default 0.2), ``feature`` (default None), ``n_models`` (default 10).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from ..api import Interval, NotApplicable, Splits, Text
from ..registry import register
from ._resampling import ResamplingShift
from .covariate import choose_feature


def flip_region(X_train: np.ndarray, column: int) -> np.ndarray:
    """Rows of ``X_train`` whose ``column`` is strictly above its median.

    Parameters
    ----------
    X_train : ndarray
        The training features.
    column : int
        The feature's column.

    Returns
    -------
    ndarray of bool
        The region mask.
    """
    values = X_train[:, column]
    return values > np.median(values)


@register("shift", "concept-drift")
class ConceptDrift(ResamplingShift):
    """Retrain on changed labels: flips in a region, or a rotated boundary on synthetic-drift.

    Parameters
    ----------
    severity : float, default 0.2
        In [0, 1]: the flip probability inside the region (rows whose feature is above its
        training median); on ``synthetic-drift``, the rotation of the true boundary in radians.
    feature : str or None, default None
        The model-space feature defining the region; None picks the first mutable continuous or
        integer one. Ignored on ``synthetic-drift``.
    n_models : int, default 10
        Number K of updated models.
    """

    parameter_constraints = {
        "feature": (Text("a model-space feature name"), None),
        "severity": (Interval("float", low=0, high=1),),
        "n_models": (Interval("int", low=1),),
    }

    def __init__(self, severity: float = 0.2, feature: str | None = None, n_models: int = 10):
        self.severity = severity
        self.feature = feature
        self.n_models = n_models

    def region(self, splits: Splits) -> np.ndarray:
        """The training rows whose labels may flip (flip mode).

        Parameters
        ----------
        splits : Splits
            The dataset.

        Returns
        -------
        ndarray of bool
            Rows whose feature is strictly above its training median.
        """
        column = choose_feature(self, splits.schema, self.feature)
        mask = flip_region(splits.X_train, column)
        if not mask.any():
            raise NotApplicable(
                f"{self.name}: no training row has {splits.schema.features[column]!r} above its "
                f"median; choose another feature"
            )
        return mask

    def sample(self, splits: Splits, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The training rows with new labels (flipped in the region, or from a rotated concept)."""
        if self.feature is not None:
            choose_feature(self, splits.schema, self.feature)
        X, y = splits.X_train, splits.y_train
        if splits.concept is not None:  # a known linear concept: rotate its boundary
            coef, intercept = splits.concept(float(self.severity))
            p = expit(X @ coef + intercept)
            return X, (rng.uniform(size=len(X)) < p).astype(y.dtype)
        flips = self.region(splits) & (rng.uniform(size=len(y)) < float(self.severity))
        return X, np.where(flips, 1 - y, y).astype(y.dtype)
