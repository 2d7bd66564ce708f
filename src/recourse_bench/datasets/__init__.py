"""Dataset plugins: ``load(seed) -> Splits`` in model space."""

from . import (
    adult,
    compas,
    german,
    german_corrected,
    gmsc,
    heloc,
    sba,
    student,
    synthetic_drift,
    synthetic_gaussians,
    synthetic_moons,
    taiwan,
)

__all__ = [
    "adult",
    "compas",
    "german",
    "german_corrected",
    "gmsc",
    "heloc",
    "sba",
    "student",
    "synthetic_drift",
    "synthetic_gaussians",
    "synthetic_moons",
    "taiwan",
]
