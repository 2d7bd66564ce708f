"""Recourse methods: ``fit(model, splits)`` then ``generate(X) -> X_cf`` (NaN row = none found)."""

from . import wachter

__all__ = ["wachter"]
