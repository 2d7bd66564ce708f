"""Encoding of raw tables into model space, shared by every dataset loader.

Model space: numeric columns min-max scaled to [0, 1] with statistics of the training split only
(test and future rows are clipped into that range), binary columns 0/1, and categorical columns
either one-hot (``encoding="onehot"``, the default: a one-hot group per feature) or as one scaled
level code (``encoding="ordinal"``, the encoding of the GenRe authors and of CARLA's data: the
``j``-th of ``k`` levels is ``j / (k - 1)``, a feature of kind ``ordinal`` on a grid of step
``1 / (k - 1)``); float32 arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from ..api import DataError, Schema, Splits


@dataclass(frozen=True)
class Column:
    """How one raw column is encoded.

    Attributes
    ----------
    name : str
        Raw column name.
    kind : str
        ``continuous``, ``integer``, ``binary`` (two categories -> one 0/1 column) or
        ``categorical`` (one-hot group).
    immutable : bool
        A recourse must not change it.
    direction : int
        +1 may only increase, -1 may only decrease, 0 either way.
    categories : tuple, optional
        The categories in order (binary: the first is 0, the second 1).
    """

    name: str
    kind: str
    immutable: bool = False
    direction: int = 0
    categories: tuple = ()


ENCODINGS = ("onehot", "ordinal")
"""How a categorical feature with more than two levels enters model space."""


class TabularEncoder:
    """Fits scaling statistics on a training frame and maps frames to model space and back.

    ``encoding`` (:data:`ENCODINGS`) sets how a categorical column is encoded: a one-hot group,
    or one level code in [0, 1].
    """

    def __init__(self, columns: list[Column], encoding: str = "onehot"):
        if encoding not in ENCODINGS:
            raise DataError(f"encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
        self.columns = list(columns)
        self.encoding = encoding

    def _coded(self, col: Column) -> bool:
        """Whether a categorical column is one level code (ordinal encoding)."""
        return col.kind == "categorical" and self.encoding == "ordinal"

    def width(self, col: Column) -> int:
        """Model-space columns of a raw column."""
        return len(col.categories) if col.kind == "categorical" and not self._coded(col) else 1

    def fit(self, frame: pd.DataFrame) -> TabularEncoder:
        """Learn min/max of numeric columns from ``frame`` (the training split)."""
        self.min_: dict[str, float] = {}
        self.max_: dict[str, float] = {}
        for col in self.columns:
            if col.kind in ("continuous", "integer"):
                values = frame[col.name].to_numpy(dtype=float)
                self.min_[col.name] = float(values.min())
                self.max_[col.name] = float(values.max())
        return self

    def span(self, name: str) -> float:
        """Raw width max - min of a numeric column (1 where the column is constant)."""
        span = self.max_[name] - self.min_[name]
        return span if span > 0 else 1.0

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode a raw frame into a model-space array."""
        blocks = []
        for col in self.columns:
            raw = frame[col.name]
            if col.kind in ("continuous", "integer"):
                scaled = (raw.to_numpy(dtype=float) - self.min_[col.name]) / self.span(col.name)
                blocks.append(np.clip(scaled, 0.0, 1.0)[:, None])
                continue
            unknown = sorted(set(raw.unique()) - set(col.categories))
            if unknown:
                raise DataError(
                    f"column {col.name!r} has unexpected values {unknown[:5]}; "
                    f"expected {list(col.categories)}"
                )
            codes = pd.Categorical(raw, categories=list(col.categories)).codes
            if col.kind == "binary":
                blocks.append(codes.astype(float)[:, None])
            elif self._coded(col):
                blocks.append((codes / max(len(col.categories) - 1, 1)).astype(float)[:, None])
            else:
                blocks.append(np.eye(len(col.categories))[codes])
        return np.hstack(blocks).astype(np.float32)

    def inverse_transform(self, X: np.ndarray) -> pd.DataFrame:
        """Map model-space rows back to raw units (categories by their labels)."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        out: dict[str, object] = {}
        start = 0
        for col in self.columns:
            width = self.width(col)
            block = X[:, start : start + width]
            start += width
            if col.kind in ("continuous", "integer"):
                values = self.min_[col.name] + block[:, 0] * self.span(col.name)
                out[col.name] = np.round(values) if col.kind == "integer" else values
            elif col.kind == "binary" or self._coded(col):
                levels = max(len(col.categories) - 1, 1)
                out[col.name] = np.asarray(col.categories, dtype=object)[
                    np.round(block[:, 0] * levels).astype(int)
                ]
            else:
                out[col.name] = np.asarray(col.categories, dtype=object)[block.argmax(axis=1)]
        return pd.DataFrame(out)

    def schema(self) -> Schema:
        """The model-space :class:`Schema` of this encoding."""
        names, kinds, immutable, direction, steps, groups = [], [], [], [], [], []
        for col in self.columns:
            if self._coded(col):
                names.append(col.name)
                kinds.append("ordinal")
                immutable.append(col.immutable)
                direction.append(col.direction)
                steps.append(1.0 / max(len(col.categories) - 1, 1))
                continue
            if col.kind == "categorical":
                first = len(names)
                groups.append(tuple(range(first, first + len(col.categories))))
                for category in col.categories:
                    names.append(f"{col.name}={category}")
                    kinds.append("categorical")
                    immutable.append(col.immutable)
                    direction.append(0)
                    steps.append(0.0)
                continue
            names.append(col.name)
            kinds.append(col.kind)
            immutable.append(col.immutable)
            direction.append(col.direction)
            if col.kind == "integer":
                steps.append(1.0 / self.span(col.name))
            else:
                steps.append(1.0 if col.kind == "binary" else 0.0)
        d = len(names)
        return Schema(
            features=tuple(names),
            kinds=tuple(kinds),
            immutable=tuple(immutable),
            direction=tuple(direction),
            lower=(0.0,) * d,
            upper=(1.0,) * d,
            steps=tuple(steps),
            groups=tuple(groups),
        )


def encode_splits(
    frame: pd.DataFrame,
    target: np.ndarray,
    columns: list[Column],
    seed: int,
    test_size: float,
    name: str,
    future: tuple[pd.DataFrame, np.ndarray] | None = None,
    encoding: str = "onehot",
) -> Splits:
    """Stratified train/test split with ``seed``, then encode with training statistics.

    A ``future`` frame (a natural shift) is encoded with the same training statistics;
    ``encoding`` (:data:`ENCODINGS`) sets how categorical columns are encoded.
    """
    if not 0.0 < test_size < 1.0:
        raise DataError(f"test_size must be in (0, 1), got {test_size}")
    target = np.asarray(target, dtype=int)
    train, test, y_train, y_test = train_test_split(
        frame, target, test_size=test_size, random_state=seed, stratify=target
    )
    encoder = TabularEncoder(columns, encoding).fit(train)
    encoded_future = None
    if future is not None:
        encoded_future = (encoder.transform(future[0]), np.asarray(future[1], dtype=int))
    return Splits(
        X_train=encoder.transform(train),
        y_train=y_train,
        X_test=encoder.transform(test),
        y_test=y_test,
        schema=encoder.schema(),
        encoder=encoder,
        future=encoded_future,
        name=name,
    )
