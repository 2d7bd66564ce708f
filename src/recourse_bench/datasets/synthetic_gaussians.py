"""Two Gaussian classes with a known ground truth.

Class 0 ~ N(-mu, I) and class 1 ~ N(+mu, I) with equal priors, mu = (separation / 2) * u and
u = (1, ..., 1) / sqrt(d). The Bayes posterior is exactly logistic, P(y=1 | x) = sigma(separation *
u^T x), so the oracle (the Bayes classifier) is a known linear model. Features are min-max scaled
to [0, 1] with training statistics; the oracle is expressed in that space.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..api import Dataset, Interval, Splits
from ..models import linear_classifier
from ..registry import register
from ..seeding import numpy_rng
from ._synthetic import encode, linear_in_model_space


@register("dataset", "synthetic-gaussians")
class SyntheticGaussians(Dataset):
    """Two isotropic Gaussian classes; the Bayes-optimal linear oracle is known.

    Parameters
    ----------
    n_samples : int, default 1000
        Rows drawn (half of each class in expectation).
    n_features : int, default 2
        Dimension d.
    separation : float, default 3.0
        Distance between the class means, in standard deviations.
    test_size : float, default 0.3
        Share of rows held out as the test split.
    """

    parameter_constraints = {
        "n_samples": (Interval("int", low=20),),
        "n_features": (Interval("int", low=1),),
        "separation": (Interval("float", low=0, open_low=True),),
        "test_size": (Interval("float", low=0, high=1, open_low=True, open_high=True),),
    }

    def __init__(
        self,
        n_samples: int = 1000,
        n_features: int = 2,
        separation: float = 3.0,
        test_size: float = 0.3,
    ):
        self.n_samples = n_samples
        self.n_features = n_features
        self.separation = separation
        self.test_size = test_size

    def load(self, seed: int) -> Splits:
        """Draw the data with ``seed``, split and scale it, and attach the oracle."""
        rng = numpy_rng(seed)
        d = int(self.n_features)
        u = np.full(d, 1.0 / np.sqrt(d))
        y = rng.integers(0, 2, size=int(self.n_samples))
        X = rng.standard_normal((len(y), d)) + np.outer(2 * y - 1, u * self.separation / 2)
        splits = encode(X, y, seed, self.test_size, self.name)
        oracle = linear_classifier(*linear_in_model_space(splits, self.separation * u, 0.0))
        return replace(splits, oracle=oracle)
