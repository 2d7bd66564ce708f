"""Pair synthesis for GenRe: which accepted training points a rejected one should move towards.

Sources are the training points the deployed model ``h`` scores at most ``gamma``; targets the
ones it scores above ``gamma`` whose gold label is 1 (all of them, with GenRe's ``targets:
model``). For a source ``x`` every target ``x+`` gets
the weight ``w(x, x+) = exp(-lam * ||x - x+||_1)`` if the two agree on every immutable feature,
else 0; the ``top_k`` largest weights are kept and normalised to ``Q(x+ | x)``. Training draws
one fresh ``x+ ~ Q(. | x)`` per source per epoch.

Batched: the (sources x targets) distance matrix is computed a chunk of sources at a time (at most
about ``CHUNK_BYTES`` per chunk) and reduced at once with ``torch.topk``; only the top-k indices
and probabilities (``n_sources x top_k``) are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from ...api import NotApplicable

CHUNK_BYTES = 64 * 2**20  # one float32 (chunk, n_targets) distance matrix at most


@dataclass
class PairSet:
    """Sources, targets and the top-k distribution ``Q(x+ | x)`` of each source.

    Attributes
    ----------
    sources : ndarray (n, d)
        Source points (only those with at least one admissible target).
    source_labels : ndarray (n,)
        Gold labels (0/1) of the sources.
    targets : ndarray (m, d)
        Target points.
    neighbours : tensor (n, k) int32
        Target indices of each source's top-k weights (entries of probability 0 pad a source
        with fewer than k admissible targets).
    probs : tensor (n, k) float32
        ``Q(x+ | x)`` of those targets; each row sums to 1.
    """

    sources: np.ndarray
    source_labels: np.ndarray
    targets: np.ndarray
    neighbours: torch.Tensor
    probs: torch.Tensor

    @property
    def n_sources(self) -> int:
        """Number of sources."""
        return len(self.sources)

    @cached_property
    def cdf(self) -> torch.Tensor:
        """Cumulative ``Q(x+ | x)`` of each source's top-k targets, shape (n, k)."""
        return self.probs.cumsum(dim=1)

    def draw(self, generator: torch.Generator, rows: torch.Tensor | None = None) -> torch.Tensor:
        """One target index ``x+ ~ Q(. | x)`` per source (or per source in ``rows``).

        Inverts each source's cumulative distribution at a uniform from ``generator`` (one
        ``searchsorted`` over the cached :attr:`cdf`): a target of probability 0 is never drawn.
        ``torch.multinomial`` (used before) drew the same distribution but took 0.7 s per draw on
        Adult (25,000 sources x 1,000 targets), i.e. about 20 s of a 3,000-step fit.
        """
        cdf = self.cdf if rows is None else self.cdf[rows]
        neighbours = self.neighbours if rows is None else self.neighbours[rows]
        u = torch.rand(len(cdf), 1, generator=generator) * cdf[:, -1:]
        pick = torch.searchsorted(cdf, u, right=True).clamp_(max=cdf.shape[1] - 1)
        return neighbours.gather(1, pick).reshape(-1).long()


def immutable_keys(*blocks: np.ndarray) -> list[np.ndarray]:
    """One integer per row: equal keys mean equal values on the given (immutable) columns."""
    stacked = np.concatenate(blocks, axis=0)
    if stacked.shape[1] == 0:
        keys = np.zeros(len(stacked), dtype=np.int64)
    else:
        _, keys = np.unique(stacked, axis=0, return_inverse=True)
        keys = keys.reshape(-1).astype(np.int64)
    return np.split(keys, np.cumsum([len(b) for b in blocks])[:-1])


def pair_distribution(
    sources: np.ndarray,
    targets: np.ndarray,
    immutable: np.ndarray,
    lam: float,
    top_k: int,
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Top-k targets of every source and their normalised weights ``Q(x+ | x)``.

    Parameters
    ----------
    sources : ndarray (n, d)
    targets : ndarray (m, d)
    immutable : ndarray of bool (d,)
        Columns on which a source and its target must agree exactly.
    lam : float
        Weight ``exp(-lam * ||x - x+||_1)``.
    top_k : int
        Targets kept per source.

    Returns
    -------
    neighbours : tensor (n, k) int32
        With ``k = min(top_k, m)``; entries beyond a source's admissible targets have
        probability 0 (their index is arbitrary).
    probs : tensor (n, k) float32
        Rows sum to 1 where the source has an admissible target, NaN-free 0 rows otherwise.
    has_target : ndarray of bool (n,)
        Whether the source agrees with at least one target on the immutable columns.
    """
    n, m = len(sources), len(targets)
    k = min(int(top_k), m)
    neighbours = torch.zeros(n, k, dtype=torch.int32)
    probs = torch.zeros(n, k, dtype=torch.float32)
    has_target = np.zeros(n, dtype=bool)
    if n == 0 or m == 0:
        return neighbours, probs, has_target
    imm = np.asarray(immutable, dtype=bool)
    keys = immutable_keys(sources[:, imm], targets[:, imm])
    key_src, key_tgt = torch.as_tensor(keys[0]), torch.as_tensor(keys[1])
    src = torch.as_tensor(np.asarray(sources, dtype=np.float32))
    tgt = torch.as_tensor(np.asarray(targets, dtype=np.float32))
    chunk = max(1, CHUNK_BYTES // (4 * m))
    for start in range(0, n, chunk):
        part = slice(start, start + chunk)
        log_w = -float(lam) * torch.cdist(src[part], tgt, p=1.0)
        log_w.masked_fill_(key_src[part, None] != key_tgt[None, :], float("-inf"))
        top, idx = torch.topk(log_w, k, dim=1, sorted=False)  # order is irrelevant: 3x faster
        found = torch.isfinite(top).any(dim=1)
        q = torch.softmax(top[found], dim=1)  # exp(-lam d) / sum over the top k
        block = torch.zeros_like(top)
        block[found] = q
        probs[part] = block
        neighbours[part] = idx.to(torch.int32)
        has_target[part] = found.numpy()
    return neighbours, probs, has_target


def make_pairs(
    sources: np.ndarray,
    source_labels: np.ndarray,
    targets: np.ndarray,
    immutable: np.ndarray,
    lam: float,
    top_k: int,
) -> PairSet:
    """The :class:`PairSet` of the sources that have an admissible target."""
    neighbours, probs, has_target = pair_distribution(sources, targets, immutable, lam, top_k)
    keep = torch.as_tensor(has_target)
    return PairSet(
        sources=sources[has_target],
        source_labels=source_labels[has_target],
        targets=targets,
        neighbours=neighbours[keep],
        probs=probs[keep],
    )


def split_pairs(
    X: np.ndarray,
    scores: np.ndarray,
    gold: np.ndarray,
    immutable: np.ndarray,
    *,
    gamma: float,
    lam: float,
    top_k: int,
    val_fraction: float,
    rng: np.random.Generator,
    val_targets: str = "held-out",
    gold_targets: bool = True,
) -> tuple[PairSet, PairSet]:
    """Training and validation pairs from the training data.

    Sources (``scores <= gamma``) and targets (``scores > gamma`` and, with ``gold_targets``,
    ``gold == 1``: the authors' rule) are each
    split at random into ``1 - val_fraction`` and ``val_fraction``; validation sources pair only
    with validation targets (``val_targets="held-out"``, the authors' protocol). With
    ``val_targets="train"`` the targets are not split: validation sources pair with the
    training targets. Where either validation part would be empty (tiny data), the training
    pairs serve as validation pairs too.

    Raises
    ------
    NotApplicable
        If there is no source or no target, or no source agrees with any target on the immutable
        features: GenRe cannot learn recourse from these data (the harness records a skip).
    """
    X = np.asarray(X, dtype=np.float32)
    gold = np.asarray(gold).astype(int)
    is_source = scores <= gamma
    is_target = (scores > gamma) & ((gold == 1) | (not gold_targets))
    if not is_source.any() or not is_target.any():
        labelled = " with gold label 1" if gold_targets else ""
        raise NotApplicable(
            f"GenRe needs training points scored <= {gamma} (sources) and points scored > "
            f"{gamma}{labelled} (targets); found {int(is_source.sum())} sources and "
            f"{int(is_target.sum())} targets"
        )

    def split(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = rng.permutation(rows)
        n_val = int(np.floor(val_fraction * len(rows)))
        return rows[n_val:], rows[:n_val]

    src_train, src_val = split(np.flatnonzero(is_source))
    if val_targets == "train":
        tgt_train = tgt_val = np.flatnonzero(is_target)
    else:
        tgt_train, tgt_val = split(np.flatnonzero(is_target))
    train = make_pairs(X[src_train], gold[src_train], X[tgt_train], immutable, lam, top_k)
    if train.n_sources == 0:
        raise NotApplicable(
            "no GenRe source agrees with any target on the immutable features: too few accepted "
            "training points share a rejected point's immutable values to learn from"
        )
    if len(src_val) == 0 or len(tgt_val) == 0:
        return train, train
    val = make_pairs(X[src_val], gold[src_val], X[tgt_val], immutable, lam, top_k)
    return train, (val if val.n_sources else train)
