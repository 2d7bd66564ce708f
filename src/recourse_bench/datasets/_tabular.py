"""The base of datasets read from tabular files: documented, verified, cached per process."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import ClassVar

import numpy as np
import pandas as pd

from ..api import ConfigError, Dataset, Interval, ListOf, Options, Splits, Text
from ..seeding import derive_seed, numpy_rng
from . import _files
from ._encoding import ENCODINGS, Column, TabularEncoder, encode_splits
from ._gold import fit_gold_labeller, gold_labels

Frame = tuple[pd.DataFrame, np.ndarray]
LABELS = ("observed", "gold")
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
    labels : {"observed", "gold"}, default "observed"
        ``observed`` keeps the dataset's own labels. ``gold`` makes the data semi-synthetic, as
        GenRe (Garg, Nagalapatti and Sarawagi, ICLR 2025) does: after the usual split and
        encoding, a gold labeller (a class-balanced random forest calibrated with isotonic
        regression, :mod:`recourse_bench.datasets._gold`) is fitted on train + test with the
        observed labels, the training and test labels are redrawn as y ~ Bernoulli(p(x)), and
        the labeller becomes ``Splits.oracle``, the ground truth of ``oracle-validity``. The
        features, the split and the schema are those of ``observed``; the future split of a
        natural shift keeps its observed labels (see :meth:`load`).
    encoding : {"onehot", "ordinal"}, default "onehot"
        How a categorical feature of more than two levels enters model space: ``onehot`` as a
        one-hot group, ``ordinal`` as one level code in [0, 1] (the ``j``-th of ``k`` levels is
        ``j / (k - 1)``), the space in which the GenRe authors (and CARLA's data) ran every method
        and measured cost and plausibility. Ordinal columns have kind ``ordinal``: a recourse
        must keep them on their grid of levels.
    immutable : list of str or None, default None
        The raw features a recourse must not change. None keeps the dataset's own choice (see
        its docstring); a list replaces it, e.g. ``[race, sex]`` on Adult and COMPAS or ``[]``
        on HELOC, the GenRe authors' choices. A name that is not a feature is an error naming
        the features.
    directions : bool, default True
        Keep the dataset's one-way features (e.g. age may only increase). ``False`` lets every
        mutable feature move both ways, as in the GenRe authors' protocol.
    """

    info: ClassVar[DatasetInfo]
    files: ClassVar[tuple[_files.DataFile, ...]] = ()
    #: The members of ``files`` that only the future split reads.
    future_files: ClassVar[tuple[_files.DataFile, ...]] = ()

    parameter_constraints = {
        "test_size": (Interval("float", low=0, high=1, open_low=True, open_high=True),),
        "labels": (Options(LABELS),),
        "encoding": (Options(ENCODINGS),),
        "immutable": (ListOf(Text("a raw feature name", "raw feature names")), None),
        "directions": (Options((True, False)),),
    }

    def __init__(
        self,
        test_size: float = 0.3,
        labels: str = "observed",
        encoding: str = "onehot",
        immutable: list[str] | None = None,
        directions: bool = True,
    ):
        self.test_size = test_size
        self.labels = labels
        self.encoding = encoding
        self.immutable = immutable
        self.directions = directions

    def columns(self) -> list[Column]:
        """The encoding of every feature column of :meth:`read_frame`."""
        raise NotImplementedError

    def read_frame(self) -> Frame:
        """The cleaned features (raw units) and the 0/1 target (1 favourable)."""
        raise NotImplementedError

    def validate_params(self) -> None:
        """The declared constraints, and the names in ``immutable`` against the features."""
        super().validate_params()
        self.actionable_columns()

    def actionable_columns(self) -> list[Column]:
        """:meth:`columns` with the ``immutable`` and ``directions`` parameters applied."""
        columns = self.columns()
        names = [c.name for c in columns]
        if self.immutable is not None:
            unknown = [n for n in self.immutable if n not in names]
            if unknown:
                what = "is not a feature" if len(unknown) == 1 else "are not features"
                raise ConfigError(
                    f"{self.name}: immutable lists {', '.join(map(repr, unknown))}, which {what}; "
                    f"the features are {', '.join(names)}"
                )
            columns = [replace(c, immutable=c.name in self.immutable) for c in columns]
        if not self.directions:
            columns = [replace(c, direction=0) for c in columns]
        return columns

    def read_future(self) -> Frame | None:
        """The natural-shift split in the same raw columns, or None."""
        return None

    def data_files(self, future: bool = False) -> tuple[_files.DataFile, ...]:
        """``files``, without ``future_files`` unless ``future``."""
        return tuple(f for f in self.files if future or f not in self.future_files)

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
        """Split with ``seed`` and encode with training statistics; with gold labels, relabel.

        The future split is deferred: :meth:`Splits.future_split` reads and encodes it (with the
        same training statistics) when a natural shift needs it, so the base data load even
        where the future's files are absent.

        With ``labels="gold"`` the split of a seed is that of observed labels (stratified
        on the observed ones), then :meth:`gold_splits` relabels it. The future split keeps its
        observed labels: it stands for the world after the shift (a data correction, later
        years, another school), which the labeller, fitted before the shift, cannot know;
        relabelling it with that labeller would remove the concept change that the natural
        shift is there to measure.
        """
        base = self.frame("base")
        assert base is not None
        features, target = base
        columns = self.actionable_columns()
        splits = encode_splits(
            features, target, columns, seed, self.test_size, self.name, encoding=self.encoding
        )
        if self.labels == "gold":
            splits = self.gold_splits(splits, seed)
        if not self.has_future():
            return splits
        return replace(splits, future_source=partial(encode_future, self, splits.encoder))

    def gold_splits(self, splits: Splits, seed: int) -> Splits:
        """``splits`` with labels redrawn from a gold labeller fitted on train + test.

        The labeller's seed and the generator of the labels (training rows first, then test
        rows) are derived from ``seed`` and the dataset's name, so they are deterministic per
        (dataset, seed). The labeller is ``oracle`` of the result.
        """
        X = np.concatenate([splits.X_train, splits.X_test])
        y = np.concatenate([splits.y_train, splits.y_test])
        labeller = fit_gold_labeller(X, y, derive_seed(seed, "gold-labeller", self.name))
        rng = numpy_rng(derive_seed(seed, "gold-labels", self.name))
        y_train = gold_labels(labeller, splits.X_train, rng)
        y_test = gold_labels(labeller, splits.X_test, rng)
        return replace(splits, y_train=y_train, y_test=y_test, oracle=labeller)


def encode_future(
    dataset: TabularDataset, encoder: TabularEncoder
) -> tuple[np.ndarray, np.ndarray]:
    """The dataset's future frame in the model space of ``encoder``."""
    future = dataset.frame("future")
    assert future is not None
    features, target = future
    return encoder.transform(features), np.asarray(target, dtype=int)
