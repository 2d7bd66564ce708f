"""Recourse methods: ``fit(model, splits)`` then ``generate(X) -> X_cf`` (NaN row = none found)."""

from . import (
    ar,
    dice,
    face,
    feature_tweak,
    genre,
    growing_spheres,
    nearest_neighbour,
    probe,
    roar,
    trex,
    vae,
    wachter,
)

__all__ = [
    "ar",
    "dice",
    "face",
    "feature_tweak",
    "genre",
    "growing_spheres",
    "nearest_neighbour",
    "probe",
    "roar",
    "trex",
    "vae",
    "wachter",
]
