"""Wrapping scikit-learn estimators as recourse-bench classifiers."""

from __future__ import annotations

import copy

import numpy as np
from sklearn.tree import DecisionTreeClassifier

from ..api import ConfigError, DataError, NotApplicable
from ._torch import check_noise, parameter_noise


class SklearnClassifier:
    """A fitted scikit-learn binary classifier (not differentiable, not linear).

    Attributes
    ----------
    estimator : sklearn estimator
        Fitted on 0/1 labels.
    """

    differentiable = False
    linear = False

    def __init__(self, estimator):
        self.estimator = estimator

    @property
    def trees(self) -> list[DecisionTreeClassifier] | None:
        """The classification trees of a forest (or the tree itself), in fitting order.

        None for any other estimator (histogram gradient boosting keeps regression trees of its
        own, which tree-path methods do not read).
        """
        return _tree_list(self.estimator)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (n, 2) (a one-class fit gives that class probability 1)."""
        proba = self.estimator.predict_proba(np.asarray(X, dtype=np.float32))
        classes = list(self.estimator.classes_)
        out = np.zeros((len(proba), 2))
        for column, label in enumerate(classes):
            out[:, int(label)] = proba[:, column]
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        """0/1 predictions (1 where the probability of class 1 is >= 0.5)."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def perturbed(self, scale: float, kind: str, rng: np.random.Generator) -> SklearnClassifier:
        """A copy whose trees' node values are shifted by noise; no retraining.

        The estimator is deep-copied and, tree by tree in fitting order and node by node in node
        index order, one noise value ``e`` per node is drawn from ``rng`` (``uniform``:
        U(-scale, scale); ``gaussian``: N(0, scale**2)). Every node is perturbed; only the leaves
        affect predictions.

        - Classification trees (``RandomForestClassifier``, ``ExtraTreesClassifier``,
          ``DecisionTreeClassifier``): ``tree_.value`` has shape (n_nodes, 1, 2). Since
          scikit-learn 1.4 it holds each node's (sample-weighted) class *fractions*, summing to
          1, and a tree's ``predict_proba`` returns the leaf's row unchanged (older versions held
          weighted counts and normalised them; the class-1 fraction is therefore read as
          ``v1 / (v0 + v1)``, correct for both). The class-1 fraction ``f`` of every node becomes
          ``clip(f + e, 0, 1)`` and the class-0 entry ``1 - clip(f + e, 0, 1)``. A forest
          averages its trees, so a prediction moves by the mean of its leaves' (clipped) shifts.
        - ``HistGradientBoostingClassifier``: ``e`` is added to the ``value`` field of every node
          of every predictor in ``estimator._predictors``. Leaf values are additive log-odds
          contributions that already include the learning-rate shrinkage (scikit-learn scales
          them when a tree is grown), so the log-odds of a row move by the sum of its
          ``n_iter_`` leaves' noise. The baseline (intercept) log-odds are not perturbed.

        Parameters
        ----------
        scale : float
            Size of the noise (>= 0): the box radius for ``uniform``, the standard deviation for
            ``gaussian``. With ``scale`` 0 the copy predicts exactly as this classifier.
        kind : {"uniform", "gaussian"}
            The noise distribution.
        rng : numpy.random.Generator
            Draws the noise.

        Returns
        -------
        SklearnClassifier
            A new classifier; this one is never modified.

        Raises
        ------
        NotApplicable
            For an estimator that is none of the above, or a fit that saw one class only.
        """
        check_noise(kind, scale)
        estimator = copy.deepcopy(self.estimator)
        if hasattr(estimator, "_predictors"):
            perturb = _perturb_boosting
        elif _tree_list(estimator) is not None:
            perturb = _perturb_trees
        else:
            raise NotApplicable(
                f"weight perturbation supports forests, decision trees and histogram gradient "
                f"boosting, not {type(estimator).__name__}"
            )
        if list(getattr(estimator, "classes_", ())) != [0, 1]:
            raise NotApplicable(
                f"weight perturbation needs a model fitted on both classes 0 and 1; "
                f"{type(estimator).__name__} saw {list(getattr(estimator, 'classes_', ()))}"
            )
        if scale > 0:
            perturb(estimator, float(scale), kind, rng)
        return SklearnClassifier(estimator)

    def __repr__(self) -> str:
        return f"SklearnClassifier({self.estimator!r})"


def _tree_list(estimator) -> list[DecisionTreeClassifier] | None:
    """The classification trees of a tree or a tree ensemble, or None if it is neither."""
    if isinstance(estimator, DecisionTreeClassifier):
        return [estimator]
    trees = list(getattr(estimator, "estimators_", None) or [])
    if trees and all(isinstance(tree, DecisionTreeClassifier) for tree in trees):
        return trees
    return None


def _perturb_trees(estimator, scale: float, kind: str, rng: np.random.Generator) -> None:
    """Shift the class-1 fraction of every node of every tree in place (see ``perturbed``)."""
    for tree in _tree_list(estimator) or []:
        value = tree.tree_.value  # a view of the tree's own buffer: writes change the tree
        if value.shape[1:] != (1, 2):
            raise NotApplicable(f"weight perturbation needs binary trees; values {value.shape}")
        total = value[:, 0, 0] + value[:, 0, 1]
        fraction = np.divide(value[:, 0, 1], total, out=np.zeros_like(total), where=total > 0)
        noise = parameter_noise(kind, scale, (len(value),), rng)
        shifted = np.clip(fraction + noise, 0.0, 1.0)
        value[:, 0, 1] = shifted
        value[:, 0, 0] = 1.0 - shifted


def _perturb_boosting(estimator, scale: float, kind: str, rng: np.random.Generator) -> None:
    """Add noise to the value of every node of every boosting predictor in place."""
    for predictors_of_iteration in estimator._predictors:
        for predictor in predictors_of_iteration:
            nodes = predictor.nodes
            nodes["value"] += parameter_noise(kind, scale, (len(nodes),), rng)


def finetune_copy(classifier: SklearnClassifier, y: np.ndarray, severity: float):
    """Check a fine-tuning request and return a deep copy of the estimator to grow.

    Raises :class:`ConfigError` for a negative severity and :class:`DataError` when the new data
    lack a class; ``classifier`` is never modified.
    """
    if isinstance(severity, bool) or not float(severity) >= 0:
        raise ConfigError(f"finetune severity must be a number >= 0, got {severity!r}")
    labels = np.unique(y).tolist()
    if set(labels) != {0, 1}:
        raise DataError(f"finetune needs both classes 0 and 1 in the new data, got {labels}")
    return copy.deepcopy(classifier.estimator)
