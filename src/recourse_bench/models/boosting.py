"""Histogram gradient boosting (scikit-learn): a strong non-differentiable tabular model."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from ..api import Interval, Trainer
from ..registry import register
from ._sklearn import SklearnClassifier, finetune_copy


@register("model", "boosting")
class Boosting(Trainer):
    """Histogram gradient boosting of scikit-learn, seeded by the harness, no early stopping.

    Parameters
    ----------
    max_iter : int, default 100
        Boosting iterations (trees).
    learning_rate : float, default 0.1
        Shrinkage of each tree's contribution.
    max_leaf_nodes : int, default 31
        Leaves per tree.

    Attributes
    ----------
    tunable_hyperparameters : tuple of str
        The numeric hyperparameters the ``hyperparameters`` shift perturbs: ``learning_rate``
        and ``max_iter``.
    leaf_counts : tuple of int
        The ``max_leaf_nodes`` values of :meth:`architecture_variants`: 8, 15, 31 and 63.
    """

    tunable_hyperparameters: ClassVar[tuple[str, ...]] = ("learning_rate", "max_iter")
    classifier_type: ClassVar[type] = SklearnClassifier
    leaf_counts: ClassVar[tuple[int, ...]] = (8, 15, 31, 63)

    parameter_constraints = {
        "max_iter": (Interval("int", low=1),),
        "learning_rate": (Interval("float", low=0, open_low=True),),
        "max_leaf_nodes": (Interval("int", low=2),),
    }

    def __init__(self, max_iter: int = 100, learning_rate: float = 0.1, max_leaf_nodes: int = 31):
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes

    def fit(self, X: np.ndarray, y: np.ndarray, seed: int) -> SklearnClassifier:
        """Train on model-space data with the given seed."""
        estimator = HistGradientBoostingClassifier(
            max_iter=int(self.max_iter),
            learning_rate=float(self.learning_rate),
            max_leaf_nodes=int(self.max_leaf_nodes),
            early_stopping=False,
            random_state=int(seed),
        )
        return SklearnClassifier(estimator.fit(X, y))

    def architecture_variants(self) -> list[dict[str, Any]]:
        """Other ensemble shapes: every ``max_leaf_nodes`` of :attr:`leaf_counts` times sizes.

        The sizes are ``max_iter``, ``max(1, max_iter // 2)`` and ``2 * max_iter`` (outer loop,
        in that order), the leaf counts 8, 15, 31, 63 (inner loop): 12 parameter changes
        ``{"max_leaf_nodes": l, "max_iter": m}``, one of which may equal this trainer.
        """
        n = int(self.max_iter)
        sizes = list(dict.fromkeys((n, max(1, n // 2), 2 * n)))
        return [
            {"max_leaf_nodes": leaves, "max_iter": m} for m in sizes for leaves in self.leaf_counts
        ]

    def finetune(
        self,
        classifier: SklearnClassifier,
        X: np.ndarray,
        y: np.ndarray,
        seed: int,
        severity: float,
    ) -> SklearnClassifier:
        """Boost more iterations on ``(X, y)`` in a copy of ``classifier``; it is unchanged.

        A deep copy of the fitted ``HistGradientBoostingClassifier`` is refitted with
        ``warm_start=True``, ``random_state=seed`` and ``round(severity * max_iter)`` more
        iterations at this trainer's ``learning_rate``: the existing trees and the baseline
        log-odds are kept, and each new tree fits the gradient of the log-loss on ``(X, y)`` at
        the current ensemble's log-odds.

        scikit-learn's warm start assumes the same data: it re-bins the new ``X`` and evaluates
        the old trees on those bins with the old trees' *bin* thresholds, which on other data
        gives wrong starting log-odds (scikit-learn 1.9, 50 iterations, a bootstrap resample of
        ``synthetic-gaussians``: off by 2.7 on average). The start is therefore corrected: the
        old ensemble's exact log-odds of ``X`` (from its real-valued thresholds) are handed to
        the fit in place of ``_raw_predict``. The new trees' real-valued thresholds come from the
        new binning, as in any fit.

        Parameters
        ----------
        classifier : SklearnClassifier
            A boosted ensemble trained by this trainer (never modified).
        X, y : ndarray
            The new training data; both classes must be present (else :class:`DataError`).
        seed : int
            Seeds the new fit.
        severity : float
            Iterations added, as a multiple of ``max_iter`` (>= 0; 0 returns an exact copy).

        Returns
        -------
        SklearnClassifier
            The boosted copy.
        """
        estimator = finetune_copy(classifier, y, severity)
        extra = round(float(severity) * int(self.max_iter))
        if extra > 0:
            X = np.asarray(X, dtype=float)
            start = np.asfortranarray(estimator._raw_predict(X))
            estimator.set_params(
                warm_start=True,
                max_iter=int(estimator.n_iter_) + extra,
                learning_rate=float(self.learning_rate),
                early_stopping=False,
                random_state=int(seed),
            )
            estimator._raw_predict = _starting_log_odds(start)
            try:
                estimator.fit(X, y)
            finally:
                del estimator._raw_predict  # back to the class's method
            estimator.set_params(warm_start=False)
        return SklearnClassifier(estimator)


def _starting_log_odds(start: np.ndarray):
    """A stand-in for ``_raw_predict`` during a warm-started fit: the exact starting log-odds."""

    def raw_predict(X_binned: np.ndarray, n_threads: int | None = None) -> np.ndarray:
        if len(X_binned) != len(start):  # pragma: no cover - early stopping is off
            raise RuntimeError("warm start asked for log-odds of rows other than the new data")
        return start.copy(order="F")

    return raw_predict
