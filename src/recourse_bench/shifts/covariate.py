"""Covariate shift: resample the training split toward one region of feature space.

ALGORITHMS.md, "Model updates and distribution shifts": ``covariate`` resamples the training data
with weights that favour one region of feature space, weights exp(severity * z) for a chosen
feature's z-score, so that the concept P(y | x) is unchanged (labels stay the honest labels of
the rows drawn) while the sample moves.

What it computes. Let j be the chosen feature and z_i = (x_ij - mean_j) / std_j its z-score with
the training split's statistics (population standard deviation). For each of the ``n_models``
updated models k, with the seed ``s_k`` drawn by :meth:`~recourse_bench.api.Shift.draw_seeds`:

1. n rows (n = the training size) are drawn with replacement from the training split, row i with
   probability proportional to w_i = exp(severity * z_i) (computed as
   exp(severity * z_i - max_i severity * z_i), which leaves the probabilities unchanged and
   cannot overflow);
2. the base model's trainer is fit on the sample, labels included, with seed ``s_k``.

The sample's distribution of x is the training distribution tilted exponentially along feature
j; its expected mean of feature j, sum_i w_i x_ij / sum_i w_i, increases strictly with severity
(its derivative is the weighted variance divided by std_j).

Severity: ``severity`` in [-10, 10] is the tilt per training standard deviation of the feature.
Severity 0 gives equal weights, i.e. a full-size bootstrap resample of the training split (the
unshifted training distribution); a positive severity favours high values of the feature, a
negative one low values. At severity 1 a row one standard deviation above the mean is e (2.7)
times as likely as an average row; beyond 10 (a factor e^10 per standard deviation) the sample
collapses onto a handful of rows, hence the bound.

The feature: ``feature`` names a model-space column (one of ``splits.schema.features``, any kind;
an unknown name raises :class:`~recourse_bench.api.ConfigError` listing the valid ones). The
default (None) is the first column that is mutable and continuous or integer; a dataset without
one raises :class:`~recourse_bench.api.NotApplicable`, as does a constant feature.

Parameters: ``severity`` (default 1.0), ``feature`` (default None), ``n_models`` (default 10).
"""

from __future__ import annotations

import numpy as np

from ..api import ConfigError, Interval, NotApplicable, Schema, Shift, Splits, Text
from ..registry import register
from ._resampling import ResamplingShift, weighted_resample

MAX_TILT = 10.0


def choose_feature(shift: Shift, schema: Schema, feature: str | None) -> int:
    """The column index of ``feature``, or of the default feature when it is None.

    The default is the first mutable continuous or integer column.

    Parameters
    ----------
    shift : Shift
        The shift asking (named in error messages).
    schema : Schema
        The dataset's model-space schema.
    feature : str or None
        A model-space feature name, or None for the default.

    Returns
    -------
    int
        The column index.

    Raises
    ------
    ConfigError
        ``feature`` is not a feature of the dataset (the message lists the valid names).
    NotApplicable
        ``feature`` is None and the dataset has no mutable continuous or integer feature.
    """
    if feature is not None:
        if feature not in schema.features:
            raise ConfigError(
                f"{shift.name}: feature {feature!r} is not a feature of this dataset; valid "
                f"features: {', '.join(schema.features)}"
            )
        return schema.features.index(feature)
    for column, (kind, immutable) in enumerate(zip(schema.kinds, schema.immutable, strict=True)):
        if kind in ("continuous", "integer") and not immutable:
            return column
    raise NotApplicable(
        f"{shift.name}: the dataset has no mutable continuous or integer feature to shift; "
        f"name one with the parameter feature"
    )


@register("shift", "covariate")
class Covariate(ResamplingShift):
    """Resample the training split with weights exp(severity * z) of one feature's z-score.

    Parameters
    ----------
    severity : float, default 1.0
        In [-10, 10]: the exponential tilt per training standard deviation of the feature
        (0: no shift; negative values move the sample toward low values).
    feature : str or None, default None
        The model-space feature to shift; None picks the first mutable continuous or integer one.
    n_models : int, default 10
        Number K of updated models.
    """

    parameter_constraints = {
        "feature": (Text("a model-space feature name"), None),
        "severity": (Interval("float", low=-MAX_TILT, high=MAX_TILT),),
        "n_models": (Interval("int", low=1),),
    }

    def __init__(self, severity: float = 1.0, feature: str | None = None, n_models: int = 10):
        self.severity = severity
        self.feature = feature
        self.n_models = n_models

    def weights(self, splits: Splits) -> np.ndarray:
        """Sampling weights of the training rows, normalised to sum to 1.

        Parameters
        ----------
        splits : Splits
            The dataset.

        Returns
        -------
        ndarray
            One probability per training row.
        """
        column = choose_feature(self, splits.schema, self.feature)
        values = splits.X_train[:, column]
        std = float(values.std())
        if not std > 0:
            raise NotApplicable(
                f"{self.name}: feature {splits.schema.features[column]!r} is constant in the "
                f"training split"
            )
        tilt = float(self.severity) * (values - values.mean()) / std
        w = np.exp(tilt - tilt.max())
        return w / w.sum()

    def sample(self, splits: Splits, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """As many rows as the training split, drawn with replacement by :meth:`weights`."""
        return weighted_resample(
            splits.X_train, splits.y_train, self.weights(splits), len(splits.y_train), rng
        )
