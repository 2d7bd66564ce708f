"""Test plugins: methods that fail or cannot apply, a non-differentiable model, a bad metric."""

import time

import numpy as np

from recourse_bench import MethodTags, RecourseMethod, Trainer, register
from recourse_bench.api import NotApplicable
from recourse_bench.metrics import metric


class _KnowsItsDataset(RecourseMethod):
    """A method that remembers the name of the dataset it was fitted on."""

    tags = MethodTags()

    def fit(self, model, splits):
        super().fit(model, splits)
        self.dataset_ = splits.name
        return self


@register("method", "fails-on-german")
class FailsOnGerman(_KnowsItsDataset):
    """Returns the factuals unchanged, but raises on the German data."""

    def generate(self, X: np.ndarray) -> np.ndarray:
        self.check_fitted()
        if self.dataset_ == "german":
            raise RuntimeError("deliberate failure on german\nsecond line")
        return X.copy()


@register("method", "cannot-learn")
class CannotLearn(RecourseMethod):
    """Finds in ``fit`` that it cannot work on these data (as GenRe without training pairs)."""

    tags = MethodTags()

    def fit(self, model, splits):
        super().fit(model, splits)
        raise NotApplicable("cannot-learn found nothing to learn from")

    def generate(self, X: np.ndarray) -> np.ndarray:
        raise AssertionError("never reached")


class _Constant:
    differentiable = False
    linear = False

    def predict_proba(self, X):
        p = (np.asarray(X)[:, 0] > 0.5).astype(float)
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return (np.asarray(X)[:, 0] > 0.5).astype(int)


@register("model", "threshold-stump")
class ThresholdStump(Trainer):
    """Accepts rows whose first feature exceeds 0.5 (not differentiable)."""

    def fit(self, X, y, seed):
        return _Constant()


@metric("explodes", stage="update", higher_is_better=True)
def explodes(ctx):
    """Raises on every call (after the recourses were generated)."""
    raise ValueError("metric exploded")


@register("method", "breaks-by-dataset")
class BreaksByDataset(_KnowsItsDataset):
    """Fault injection: raises on German, hangs on the moons, exhausts memory on the Gaussians.

    On any other dataset it returns the factuals unchanged.
    """

    def generate(self, X: np.ndarray) -> np.ndarray:
        self.check_fitted()
        if self.dataset_ == "german":
            raise RuntimeError("deliberate failure on german")
        if self.dataset_ == "synthetic-moons":
            time.sleep(3600)
        if self.dataset_ == "synthetic-gaussians":
            hoard = np.ones(2**29)  # 4 GiB: over the memory limit of the test that runs this
            return hoard[: X.size].reshape(X.shape)
        return X.copy()
