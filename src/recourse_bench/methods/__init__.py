"""Recourse methods: ``fit(model, splits)`` then ``generate(X) -> X_cf`` (NaN row = none found)."""

from . import genre, growing_spheres, nearest_neighbour, probe, roar, trex, wachter

__all__ = ["genre", "growing_spheres", "nearest_neighbour", "probe", "roar", "trex", "wachter"]
