"""The token layout of GenRe: which model-space columns make up each token of a sequence.

A sequence is ``[label, unit_1, ..., unit_T]``. A *unit* is either one model-space column
(continuous, integer or binary: a *binned* unit, predicted over ``n_bins`` bins of [0, 1]) or a
whole one-hot group of ``schema.groups`` (a *categorical* unit, predicted over its levels). Units
follow the schema's column order, a group at the place of its first column.

Every token enters the network as a zero-padded vector of width ``k_max`` (the largest group, at
least 1): a binned unit as ``[value, 0, ...]``, a categorical unit as its one-hot block, the label
as ``[y~, 0, ...]``. All of this is expressed as one gather index, so that a batch of rows is
turned into tokens with a single indexing operation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...api import Schema


@dataclass(frozen=True)
class Layout:
    """Units of a schema and the index arrays that turn rows into tokens.

    Attributes
    ----------
    n_features : int
        Model-space columns ``d``.
    n_bins : int
        Bins of a binned unit's output head.
    columns : tuple of tuple of int
        Model-space columns of each unit (one column, or a one-hot group).
    categorical : ndarray of bool (T,)
        True for a one-hot group unit.
    immutable : ndarray of bool (T,)
        True for a unit that a recourse may not change (a group is immutable if any member is).
    n_classes : ndarray of int (T,)
        Classes of each unit's output head: ``n_bins`` or the group's number of levels.
    k_max : int
        Width of a token's input vector.
    index : ndarray of int (T + 1, k_max)
        Gather index into a row extended by two columns (``d``: constant 0, ``d + 1``: the
        label): position 0 is the label, position ``t`` unit ``t``.
    """

    n_features: int
    n_bins: int
    columns: tuple[tuple[int, ...], ...]
    categorical: np.ndarray
    immutable: np.ndarray
    n_classes: np.ndarray
    k_max: int
    index: np.ndarray

    @classmethod
    def from_schema(cls, schema: Schema, n_bins: int) -> Layout:
        """The units of ``schema`` in column order."""
        d = schema.n_features
        group_of = {g[0]: tuple(g) for g in schema.groups}
        in_group = {c for g in schema.groups for c in g}
        columns: list[tuple[int, ...]] = []
        for c in range(d):
            if c in group_of:
                columns.append(group_of[c])
            elif c not in in_group:
                columns.append((c,))
        categorical = np.array([c[0] in group_of for c in columns], dtype=bool)
        frozen = np.asarray(schema.immutable, dtype=bool)
        immutable = np.array([frozen[list(c)].any() for c in columns], dtype=bool)
        n_classes = np.array(
            [len(c) if cat else n_bins for c, cat in zip(columns, categorical, strict=True)]
        )
        k_max = max([1, *(len(c) for c in columns)])
        index = np.full((len(columns) + 1, k_max), d, dtype=np.int64)
        index[0, 0] = d + 1
        for t, cols in enumerate(columns, start=1):
            index[t, : len(cols)] = cols
        return cls(d, int(n_bins), tuple(columns), categorical, immutable, n_classes, k_max, index)

    @property
    def n_units(self) -> int:
        """Number of units ``T`` (the sequence has ``T + 1`` tokens with the label)."""
        return len(self.columns)

    @property
    def n_out(self) -> int:
        """Width of the padded output head: the most classes of any unit."""
        return int(self.n_classes.max()) if self.n_units else self.n_bins

    @property
    def binned_columns(self) -> np.ndarray:
        """Model-space column of each binned unit, in unit order."""
        return np.array(
            [c[0] for c, cat in zip(self.columns, self.categorical, strict=True) if not cat],
            dtype=np.int64,
        )

    def class_mask(self) -> torch.Tensor:
        """Bool (T, n_out): True for the classes that exist in each unit's head."""
        classes = torch.arange(self.n_out)
        return classes[None, :] < torch.as_tensor(self.n_classes)[:, None]

    def bins(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """Bin values ``b_j = j / (B - 1)``, ``j = 0 .. B - 1`` (see :func:`bin_values`)."""
        return bin_values(self.n_bins, torch.float32, device)

    def tokens(self, X: torch.Tensor, label: float | torch.Tensor) -> torch.Tensor:
        """Token inputs ``(n, T + 1, k_max)`` of rows ``X`` (n, d) with label ``y~``."""
        n = X.shape[0]
        label = torch.as_tensor(label, dtype=X.dtype, device=X.device).expand(n).reshape(n, 1)
        extended = torch.cat([X, X.new_zeros(n, 1), label], dim=1)
        return extended[:, torch.as_tensor(self.index, device=X.device)]

    def unit_token(self, X: torch.Tensor, unit: int) -> torch.Tensor:
        """Token input ``(n, k_max)`` of unit ``unit`` (0-based) of rows ``X``."""
        extended = torch.cat([X, X.new_zeros(X.shape[0], 1)], dim=1)
        return extended[:, torch.as_tensor(self.index[unit + 1], device=X.device)]

    def soft_targets(self, X: torch.Tensor) -> torch.Tensor:
        """Training targets ``(n, T, n_out)`` of rows ``X``: one distribution per unit.

        A binned unit of value ``v`` gets ``q_j = softmax_j(-(B^2 / 2) (v - b_j)^2)`` (a Gaussian
        kernel of width 1/B around ``v``); a categorical unit the one-hot vector of its level.
        Classes beyond a unit's head are 0.
        """
        n = X.shape[0]
        out = X.new_zeros(n, self.n_units, self.n_out)
        cat = torch.as_tensor(self.categorical, device=X.device)
        if (~cat).any():
            values = X[:, torch.as_tensor(self.binned_columns, device=X.device)]
            out[:, ~cat, : self.n_bins] = soft_bin_targets(values, self.n_bins)
        if cat.any():
            tokens = self.tokens(X, 0.0)[:, 1:, :]  # one-hot blocks, zero padded
            width = min(self.k_max, self.n_out)
            out[:, cat, :width] = tokens[:, cat, :width]
        return out


def bin_values(n_bins: int, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """The ``B`` bin values ``b_j = j / (B - 1)``: an even grid of [0, 1] with both ends.

    The authors use ``b_j = j / B``, which never reaches 1, so a feature at its upper bound (or a
    binary feature's 1) could only be sampled as ``1 - 1/B``; the kernel width ``1/B`` of the soft
    targets is kept.
    """
    return torch.arange(n_bins, dtype=dtype, device=device) / (n_bins - 1)


def soft_bin_targets(values: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Soft targets ``softmax_j(-(B^2 / 2) (v - b_j)^2)`` of every value (:func:`bin_values`).

    Returns a tensor of shape ``values.shape + (n_bins,)``.
    """
    bins = bin_values(n_bins, values.dtype, values.device)
    return torch.softmax(-(n_bins**2 / 2.0) * (values[..., None] - bins) ** 2, dim=-1)
