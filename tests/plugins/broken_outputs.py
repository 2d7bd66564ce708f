"""Test plugins: methods whose output breaks the contract or the schema, as a new user's might."""

import numpy as np

from recourse_bench import RecourseMethod, register


class _AcceptedNeighbour(RecourseMethod):
    """The closest training point the model accepts, by L1, ignoring every constraint."""

    def fit(self, model, splits):
        super().fit(model, splits)
        X = splits.X_train
        self.pool_ = np.asarray(X[model.predict(X) == 1], dtype=float)
        return self

    def nearest(self, X):
        X = self.check_factuals(X)
        distance = np.abs(X[:, None, :] - self.pool_[None]).sum(axis=-1)
        return self.pool_[distance.argmin(axis=1)].copy()


@register("method", "plus-five")
class PlusFive(RecourseMethod):
    """Returns X + 5: every column outside [0, 1], immutables and one-hot groups broken."""

    def generate(self, X):
        self.check_fitted()
        return self.check_factuals(X) + 5.0


@register("method", "ignores-immutables")
class IgnoresImmutables(_AcceptedNeighbour):
    """The nearest accepted training point, whatever its immutable features."""

    def generate(self, X):
        self.check_fitted()
        return self.nearest(X)


@register("method", "returns-inf")
class ReturnsInf(RecourseMethod):
    """Returns inf everywhere."""

    def generate(self, X):
        self.check_fitted()
        return np.full_like(self.check_factuals(X), np.inf)


@register("method", "returns-list")
class ReturnsList(_AcceptedNeighbour):
    """Returns the right recourses as a list of lists."""

    def generate(self, X):
        self.check_fitted()
        return self.nearest(X).tolist()


@register("method", "wrong-shape")
class WrongShape(_AcceptedNeighbour):
    """Returns one row too few."""

    def generate(self, X):
        self.check_fitted()
        return self.nearest(X)[1:]
