"""Metrics: pure functions of an evaluation context, with ``stage`` and ``higher_is_better``."""

from . import distance, oracle, recourse, robustness
from ._define import metric

__all__ = ["distance", "metric", "oracle", "recourse", "robustness"]
