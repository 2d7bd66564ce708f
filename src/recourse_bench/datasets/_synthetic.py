"""Helpers shared by the synthetic generators: encoding raw draws and oracles in model space."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..api import Splits
from ._encoding import Column, encode_splits


def feature_names(d: int) -> list[str]:
    """``x0 .. x{d-1}``."""
    return [f"x{i}" for i in range(d)]


def encode(
    X: np.ndarray,
    y: np.ndarray,
    seed: int,
    test_size: float,
    name: str,
    future: tuple[np.ndarray, np.ndarray] | None = None,
) -> Splits:
    """Split and scale raw continuous draws (and an optional future draw) into model space."""
    names = feature_names(X.shape[1])
    columns = [Column(n, "continuous") for n in names]
    later = (pd.DataFrame(future[0], columns=names), future[1]) if future is not None else None
    return encode_splits(
        pd.DataFrame(X, columns=names), y, columns, seed, test_size, name, future=later
    )


def scaling(splits: Splits) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, span)`` such that raw = lo + x_model * span, column by column."""
    names = feature_names(splits.schema.n_features)
    encoder = splits.encoder
    lo = np.array([encoder.min_[n] for n in names])
    span = np.array([encoder.span(n) for n in names])
    return lo, span


def linear_in_model_space(splits: Splits, w: np.ndarray, b: float) -> tuple[np.ndarray, float]:
    """Weights and bias in model space of the raw-space log-odds ``w^T raw + b``."""
    lo, span = scaling(splits)
    return w * span, float(w @ lo + b)
