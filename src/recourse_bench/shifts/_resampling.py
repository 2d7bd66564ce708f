"""The base of shifts that retrain on K samples drawn from a (shifted) training distribution."""

from __future__ import annotations

import numpy as np

from ..api import Classifier, NotApplicable, Shift, Splits, Trainer
from ..seeding import numpy_rng


class ResamplingShift(Shift):
    """Retrain the base model's trainer on K samples; subclasses define :meth:`sample`.

    Each updated model k gets its own seed, used both to draw its sample and to train it.
    Severity 0 must draw from the unshifted training distribution.
    """

    n_models: int

    def sample(self, splits: Splits, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One training sample ``(X, y)`` of the shifted distribution."""
        raise NotImplementedError

    def updates(
        self, splits: Splits, trainer: Trainer, base_model: Classifier, seed: int
    ) -> list[Classifier]:
        """K models, each trained on its own sample (all K by one ``trainer.fit_many``).

        The K samples are drawn first, so a sample left with a single class raises
        :class:`NotApplicable` before any training.
        """
        seeds = self.draw_seeds(seed, self.n_models)
        samples = []
        for draw_seed in seeds:
            X, y = self.sample(splits, numpy_rng(draw_seed))
            if len(np.unique(y)) < 2:
                raise NotApplicable(
                    f"{self.label} left a single class in a training sample; use a smaller severity"
                )
            samples.append((X, y))
        return trainer.fit_many(samples, seeds)


def weighted_resample(
    X: np.ndarray, y: np.ndarray, weights: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows drawn with replacement with probabilities proportional to ``weights``."""
    p = np.asarray(weights, dtype=float)
    rows = rng.choice(len(X), size=int(n), replace=True, p=p / p.sum())
    return X[rows], y[rows]
