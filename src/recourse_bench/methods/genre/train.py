"""Training of GenRe's transformer on synthesised pairs: Adam, early stopping, best checkpoint.

Each epoch draws one fresh target ``x+ ~ Q(. | x)`` per training source and runs through the
sources in a fresh random order; the validation loss uses one fixed draw per validation source
(so that epochs are compared on the same pairs). Training stops once the validation loss has not
improved for ``patience`` epochs, and the network is restored to the epoch with the lowest one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from .layout import Layout
from .model import GenReTransformer
from .pairs import PairSet

MIN_IMPROVEMENT = 1e-4  # relative change of the validation loss that counts as an improvement


def pair_loss(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per-row loss: the weighted sum over units of the cross-entropy ``-sum_j q_j log p_j``.

    Parameters
    ----------
    logits : tensor (n, T, C)
        Head logits (absent classes already masked to a very low logit).
    targets : tensor (n, T, C)
        Target distributions ``q`` (soft bins, or the one-hot level of a categorical unit).
    weights : tensor (T,)
        Weight of each unit's term.

    Returns
    -------
    tensor (n,)
    """
    per_unit = -(targets * torch.log_softmax(logits, dim=-1)).sum(dim=-1)
    return (per_unit * weights).sum(dim=-1)


@dataclass
class Batches:
    """Pair tensors on the training device: source tokens and per-target tokens and targets."""

    sources: torch.Tensor  # (n, T + 1, k): [y~, x]
    target_tokens: torch.Tensor  # (m, T, k): [y~+ = +1, x+_1 .. x+_{T-1}]
    target_dists: torch.Tensor  # (m, T, C): q of every unit of x+
    pairs: PairSet

    @classmethod
    def build(cls, pairs: PairSet, layout: Layout, device: torch.device) -> Batches:
        """Tokenise the sources and targets of ``pairs`` once."""
        sources = torch.as_tensor(pairs.sources, dtype=torch.float32)
        labels = 2.0 * torch.as_tensor(pairs.source_labels, dtype=torch.float32) - 1.0
        targets = torch.as_tensor(pairs.targets, dtype=torch.float32)
        return cls(
            sources=layout.tokens(sources, labels).to(device),
            target_tokens=layout.tokens(targets, 1.0)[:, :-1].to(device),
            target_dists=layout.soft_targets(targets).to(device),
            pairs=pairs,
        )

    def batch(
        self, rows: torch.Tensor, chosen: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Source tokens, target tokens and target distributions of pairs (rows, chosen)."""
        device = self.sources.device
        rows, chosen = rows.to(device), chosen.to(device)
        return self.sources[rows], self.target_tokens[chosen], self.target_dists[chosen]


@dataclass
class History:
    """Per-epoch mean training and validation losses, and the epoch kept."""

    train: list[float] = field(default_factory=list)
    val: list[float] = field(default_factory=list)
    best_epoch: int = -1


def mean_loss(
    net: GenReTransformer,
    data: Batches,
    chosen: torch.Tensor,
    weights: torch.Tensor,
    batch_size: int,
) -> float:
    """Mean pair loss of every source with its chosen target (eval mode, no gradients)."""
    net.eval()
    total, n = 0.0, data.pairs.n_sources
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            rows = torch.arange(start, min(start + batch_size, n))
            src, tgt, dist = data.batch(rows, chosen[rows])
            total += float(pair_loss(net(src, tgt), dist, weights).sum())
    return total / n


def train(
    net: GenReTransformer,
    layout: Layout,
    train_pairs: PairSet,
    val_pairs: PairSet,
    *,
    max_epochs: int,
    batch_size: int,
    lr: float,
    patience: int,
    data_generator: torch.Generator,
    dropout_generator: torch.Generator,
    device: torch.device,
    progress: bool = True,
) -> History:
    """Train ``net`` in place and leave it at its best validation epoch (in eval mode).

    Parameters
    ----------
    net : GenReTransformer
        The network, already on ``device``.
    layout : Layout
        Units of the schema.
    train_pairs, val_pairs : PairSet
        Training and validation pairs.
    max_epochs, batch_size, patience : int
        Epoch budget, pairs per Adam step, epochs without improvement before stopping.
    lr : float
        Adam learning rate.
    data_generator : torch.Generator
        CPU generator: the pairs drawn each epoch and the batch order.
    dropout_generator : torch.Generator
        Generator on ``device`` for the dropout masks.
    device : torch.device
        Where the network trains.
    progress : bool
        Show a progress bar (tqdm; it stays off when the output is not a terminal and is removed
        when training ends).

    Returns
    -------
    History
    """
    train_data = Batches.build(train_pairs, layout, device)
    val_data = Batches.build(val_pairs, layout, device)
    val_chosen = val_pairs.draw(data_generator)  # one fixed draw for every epoch
    weights = torch.as_tensor(~layout.immutable, dtype=torch.float32, device=device)
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    history = History()
    best_loss, best_state, waited = float("inf"), None, 0
    n = train_pairs.n_sources
    bar = tqdm(
        range(int(max_epochs)),
        desc="genre",
        unit="epoch",
        leave=False,
        disable=None if progress else True,
    )
    for epoch in bar:
        net.train()
        chosen = train_pairs.draw(data_generator)
        order = torch.randperm(n, generator=data_generator)
        total = 0.0
        for start in range(0, n, batch_size):
            rows = order[start : start + batch_size]
            src, tgt, dist = train_data.batch(rows, chosen[rows])
            loss = pair_loss(net(src, tgt, dropout_generator), dist, weights).mean()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(rows)
        history.train.append(total / n)
        val_loss = mean_loss(net, val_data, val_chosen, weights, 4 * batch_size)
        history.val.append(val_loss)
        bar.set_postfix(train=f"{history.train[-1]:.3f}", val=f"{val_loss:.3f}")
        if best_state is None or val_loss < best_loss - MIN_IMPROVEMENT * abs(best_loss):
            best_loss, waited, history.best_epoch = val_loss, 0, epoch
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            waited += 1
            if waited >= patience:
                break
    bar.close()
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return history
