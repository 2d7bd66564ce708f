"""The base of datasets read from tabular files: documented, verified, cached per process."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import ClassVar

import numpy as np
import pandas as pd

from ..api import Dataset, Splits
from . import _files
from ._encoding import Column, TabularEncoder, encode_splits

Frame = tuple[pd.DataFrame, np.ndarray]
_FRAMES: dict[tuple[str, str], Frame | None] = {}


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is, where it comes from, and what loading it must give.

    ``rows`` and ``favourable`` count the rows kept after cleaning and those of class 1; the
    ``future_*`` counts describe the natural-shift split, where there is one. Tests assert them.
    """

    source: str
    licence: str
    citation: str
    rows: int
    favourable: int
    future_rows: int | None = None
    future_favourable: int | None = None
    future: str = ""  # what the future split is (e.g. "temporal: all years")

    @property
    def summary(self) -> str:
        """One line: rows, share of the favourable class and the natural shift."""
        line = f"{self.rows} rows, {self.favourable / self.rows:.0%} favourable"
        return f"{line}; future split: {self.future}" if self.future else line


class TabularDataset(Dataset):
    """A dataset from raw files: subclasses read and clean them, and declare their encoding.

    Subclasses set ``info`` and ``files`` and implement :meth:`read_frame` and :meth:`columns`;
    those with a natural shift also implement :meth:`read_future`.

    Parameters
    ----------
    test_size : float, default 0.3
        Share of rows held out (stratified) as the test split, from which factuals are drawn.
    """

    info: ClassVar[DatasetInfo]
    files: ClassVar[tuple[_files.DataFile, ...]] = ()

    def __init__(self, test_size: float = 0.3):
        self.test_size = test_size

    def validate_params(self) -> None:
        """``test_size`` must lie strictly between 0 and 1."""
        self.check_param("test_size", "float", low=0, high=1, open_low=True, open_high=True)

    def columns(self) -> list[Column]:
        """The encoding of every feature column of :meth:`read_frame`."""
        raise NotImplementedError

    def read_frame(self) -> Frame:
        """The cleaned features (raw units) and the 0/1 target (1 favourable)."""
        raise NotImplementedError

    def read_future(self) -> Frame | None:
        """The natural-shift split in the same raw columns, or None."""
        return None

    def prepare(self) -> None:
        """Fetch and verify every file once (downloads where the licence allows)."""
        for file in self.files:
            _files.read(file)

    def frame(self, part: str = "base") -> Frame | None:
        """:meth:`read_frame` (or :meth:`read_future` for ``part="future"``), once per process."""
        key = (type(self).__name__, part)
        if key not in _FRAMES:
            _FRAMES[key] = self.read_frame() if part == "base" else self.read_future()
        return _FRAMES[key]

    def has_future(self) -> bool:
        """Whether this dataset defines a natural-shift split."""
        return type(self).read_future is not TabularDataset.read_future

    def load(self, seed: int) -> Splits:
        """Split with ``seed`` and encode with training statistics.

        The future split is deferred: :meth:`Splits.future_split` reads and encodes it (with the
        same training statistics) when a natural shift needs it, so the base data load even
        where the future's files are absent.
        """
        base = self.frame("base")
        assert base is not None
        features, target = base
        splits = encode_splits(features, target, self.columns(), seed, self.test_size, self.name)
        if not self.has_future():
            return splits
        return replace(splits, future_source=partial(encode_future, self, splits.encoder))


def encode_future(
    dataset: TabularDataset, encoder: TabularEncoder
) -> tuple[np.ndarray, np.ndarray]:
    """The dataset's future frame in the model space of ``encoder``."""
    future = dataset.frame("future")
    assert future is not None
    features, target = future
    return encoder.transform(features), np.asarray(target, dtype=int)
