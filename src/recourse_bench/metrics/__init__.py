"""Metrics: pure functions of an evaluation context, with ``stage`` and ``higher_is_better``."""

from . import certified, distance, oracle, recourse, robustness
from ._define import metric

__all__ = ["certified", "distance", "metric", "oracle", "recourse", "robustness"]
