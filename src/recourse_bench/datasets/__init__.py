"""Dataset plugins: ``load(seed) -> Splits`` in model space.

A dataset plugin of one's own describes its raw columns with :class:`Column` and encodes a
table with :func:`encode_splits` (a stratified split, training-statistics scaling to [0, 1],
one-hot categoricals, the schema with immutables and directions); see ``docs/new-dataset.md``.
"""

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
from ._encoding import Column, encode_splits

__all__ = [
    "Column",
    "adult",
    "compas",
    "encode_splits",
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
