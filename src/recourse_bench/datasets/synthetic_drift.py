"""A linear concept whose true boundary rotates: concept drift with a known answer.

Features x ~ U[0, 1]^d; the concept is P(y = 1 | x) = sigma(sharpness * w(a)^T (x - 1/2)) with
w(a) = (cos a, sin a, 0, ..., 0). The base data use the angle ``angle``; the ``future`` split is a
fresh draw of the same size whose boundary is rotated by ``drift`` radians (the covariates do not
move: only the concept does). The oracle of the base concept is attached to the splits, and
:meth:`SyntheticDrift.oracle` gives the true boundary for any rotation, so the drifted one too.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np

from ..api import Classifier, Dataset, Interval, Splits
from ..models import linear_classifier
from ..registry import register
from ..seeding import derive_seed, numpy_rng
from ._synthetic import encode, linear_in_model_space, scaling


@register("dataset", "synthetic-drift")
class SyntheticDrift(Dataset):
    """Uniform features, a logistic concept; the future split's boundary is rotated by ``drift``.

    Parameters
    ----------
    n_samples : int, default 1000
        Rows of the base data and of the future split.
    n_features : int, default 2
        Dimension d (at least 2; the rotation acts on the first two).
    angle : float, default 0.785
        Angle (radians) of the base boundary's normal in the (x0, x1) plane (default pi/4).
    drift : float, default 0.5
        Rotation (radians) of the boundary in the future split.
    sharpness : float, default 20.0
        Slope of the logistic concept (higher: less label noise).
    test_size : float, default 0.3
        Share of rows held out as the test split.
    """

    parameter_constraints = {
        "n_samples": (Interval("int", low=20),),
        "n_features": (Interval("int", low=2),),
        "angle": (Interval("float"),),
        "drift": (Interval("float"),),
        "sharpness": (Interval("float", low=0, open_low=True),),
        "test_size": (Interval("float", low=0, high=1, open_low=True, open_high=True),),
    }

    def __init__(
        self,
        n_samples: int = 1000,
        n_features: int = 2,
        angle: float = 0.785,
        drift: float = 0.5,
        sharpness: float = 20.0,
        test_size: float = 0.3,
    ):
        self.n_samples = n_samples
        self.n_features = n_features
        self.angle = angle
        self.drift = drift
        self.sharpness = sharpness
        self.test_size = test_size

    def concept(self, rotation: float = 0.0) -> tuple[np.ndarray, float]:
        """Raw-space log-odds ``(w, b)`` of the concept rotated by ``rotation`` radians."""
        w = np.zeros(int(self.n_features))
        a = self.angle + rotation
        w[:2] = self.sharpness * np.array([np.cos(a), np.sin(a)])
        return w, float(-w.sum() / 2)

    def _draw(self, seed: int, rotation: float) -> tuple[np.ndarray, np.ndarray]:
        rng = numpy_rng(seed)
        X = rng.uniform(0.0, 1.0, size=(int(self.n_samples), int(self.n_features)))
        w, b = self.concept(rotation)
        y = (rng.uniform(size=len(X)) < 1.0 / (1.0 + np.exp(-(X @ w + b)))).astype(int)
        return X, y

    def load(self, seed: int) -> Splits:
        """Base draw (split, scaled) with its oracle and concept, and the drifted future draw."""
        X, y = self._draw(seed, 0.0)
        future = self._draw(derive_seed(seed, "future"), float(self.drift))
        splits = encode(X, y, seed, self.test_size, self.name, future=future)
        splits = replace(splits, oracle=self.oracle(splits))
        return replace(splits, concept=partial(rotated_concept, splits))

    def oracle(self, splits: Splits, drifted: bool = False) -> Classifier:
        """The true concept (base, or the drifted one) as a classifier in model space."""
        w, b = self.concept(float(self.drift) if drifted else 0.0)
        return linear_classifier(*linear_in_model_space(splits, w, b))


def rotated_concept(splits: Splits, rotation: float) -> tuple[np.ndarray, float]:
    """The splits' linear oracle with its raw-space normal rotated by ``rotation`` radians.

    Model space is min-max scaled with training statistics (raw = lo + x * span), so the oracle
    is mapped back to raw space exactly (w_raw = coef / span, b_raw = intercept - w_raw . lo),
    its normal rotated in the (x0, x1) plane about the raw centre (1/2, ..., 1/2), keeping the
    log-odds there, and mapped back: for this generator, the concept with the angle
    ``angle + rotation``. ``Splits.concept`` of this dataset.

    Parameters
    ----------
    splits : Splits
        This dataset's splits, with its oracle.
    rotation : float
        Angle in radians (counter-clockwise from x0 toward x1).

    Returns
    -------
    coef : ndarray
        Model-space weights of the rotated concept's log-odds.
    intercept : float
        Its model-space intercept.
    """
    oracle = splits.oracle
    assert oracle is not None
    coef = np.asarray(oracle.coef_, dtype=float).reshape(-1)
    lo, span = scaling(splits)
    w = coef / span
    b = float(oracle.intercept_) - float(w @ lo)
    centre = np.full_like(w, 0.5)
    offset = float(w @ centre) + b  # the log-odds at the centre, kept by the rotation
    c, s = np.cos(rotation), np.sin(rotation)
    w_rot = w.copy()
    w_rot[:2] = np.array([[c, -s], [s, c]]) @ w[:2]
    b_rot = offset - float(w_rot @ centre)
    return w_rot * span, float(w_rot @ lo) + b_rot
