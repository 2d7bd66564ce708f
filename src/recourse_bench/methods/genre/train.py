"""Training of GenRe's transformer on synthesised pairs: Adam, early stopping, best checkpoint.

Each epoch draws one fresh target ``x+ ~ Q(. | x)`` per training source and runs through the
sources in a fresh random order. The budget is a number of Adam steps; every ``eval_every`` steps
the validation loss is computed on one fixed draw per validation source (so that evaluations are
compared on the same pairs). Training stops once the validation loss has not improved for
``patience`` evaluations, and the network is restored to the evaluation with the lowest one.
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
    """Training and validation losses at every evaluation, and the step kept.

    Attributes
    ----------
    steps : list of int
        Adam steps taken at each evaluation.
    train : list of float
        Mean training loss over the steps since the previous evaluation.
    val : list of float
        Validation loss at each evaluation.
    best_step : int
        Steps taken when the kept (lowest validation loss) network was saved; -1 before any.
    epochs : float
        Passes over the training sources made.
    """

    steps: list[int] = field(default_factory=list)
    train: list[float] = field(default_factory=list)
    val: list[float] = field(default_factory=list)
    best_step: int = -1
    epochs: float = 0.0


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


class EarlyStopping:
    """Keeps the network state with the lowest validation loss; says when to stop."""

    def __init__(self, patience: int):
        self.patience = int(patience)
        self.best_loss = float("inf")
        self.best_state: dict[str, torch.Tensor] | None = None
        self.waited = 0

    def update(self, net: GenReTransformer, val_loss: float) -> bool:
        """Record one evaluation; True when the network was saved as the new best.

        Any new lowest loss is saved; only an improvement by more than ``MIN_IMPROVEMENT``
        (relative) resets the patience count.
        """
        improved = val_loss < self.best_loss - MIN_IMPROVEMENT * abs(self.best_loss)
        self.waited = 0 if improved or self.best_state is None else self.waited + 1
        if self.best_state is None or val_loss < self.best_loss:
            self.best_loss = val_loss
            self.best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            return True
        return False

    @property
    def done(self) -> bool:
        """``patience`` evaluations in a row without a lower validation loss."""
        return self.waited >= self.patience


def train(
    net: GenReTransformer,
    layout: Layout,
    train_pairs: PairSet,
    val_pairs: PairSet,
    *,
    max_steps: int,
    eval_every: int,
    batch_size: int,
    lr: float,
    patience: int,
    data_generator: torch.Generator,
    dropout_generator: torch.Generator,
    device: torch.device,
    progress: bool = True,
) -> History:
    """Train ``net`` in place and leave it at its best validation evaluation (in eval mode).

    The budget is counted in Adam steps, not epochs, so that a small dataset (one step per
    epoch) trains as long as a large one. Each pass over the training sources (an epoch) draws
    fresh pairs and a fresh order; the validation loss is computed every ``eval_every`` steps
    and at the last step.

    Parameters
    ----------
    net : GenReTransformer
        The network, already on ``device``.
    layout : Layout
        Units of the schema.
    train_pairs, val_pairs : PairSet
        Training and validation pairs.
    max_steps, eval_every, batch_size, patience : int
        Step budget, steps between validation losses, pairs per Adam step, evaluations without
        improvement before stopping.
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
    val_chosen = val_pairs.draw(data_generator)  # one fixed draw for every evaluation
    weights = torch.as_tensor(~layout.immutable, dtype=torch.float32, device=device)
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    history, stopping = History(), EarlyStopping(patience)
    n, steps, pending = train_pairs.n_sources, 0, []
    bar = tqdm(
        total=int(max_steps),
        desc="genre",
        unit="step",
        leave=False,
        disable=None if progress else True,
    )
    while steps < max_steps and not stopping.done:
        net.train()
        chosen = train_pairs.draw(data_generator)
        order = torch.randperm(n, generator=data_generator)
        for start in range(0, n, batch_size):
            rows = order[start : start + batch_size]
            src, tgt, dist = train_data.batch(rows, chosen[rows])
            loss = pair_loss(net(src, tgt, dropout_generator), dist, weights).mean()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            pending.append(loss.detach())
            steps += 1
            history.epochs += len(rows) / n
            bar.update(1)
            if steps % eval_every == 0 or steps == max_steps:
                history.steps.append(steps)
                history.train.append(float(torch.stack(pending).mean()))
                pending = []
                history.val.append(mean_loss(net, val_data, val_chosen, weights, 4 * batch_size))
                if stopping.update(net, history.val[-1]):
                    history.best_step = steps
                bar.set_postfix(train=f"{history.train[-1]:.3f}", val=f"{history.val[-1]:.3f}")
                net.train()
                if stopping.done:
                    break
            if steps >= max_steps:
                break
    bar.close()
    if stopping.best_state is not None:
        net.load_state_dict(stopping.best_state)
    net.eval()
    return history
