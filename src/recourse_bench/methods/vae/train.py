"""Training of the VAE and the CSVAE: Adam on mini-batches, a seeded order and seeded noise.

Both loops run ``epochs`` passes over the training rows in a fresh random order, with the
reparameterisation noise drawn from the same explicit generator, so a training is reproducible
from its seed and leaves every global random state untouched. Losses follow CARLA (commit
24db00a, ``autoencoder/models/vae.py`` and ``losses/losses.py``):

* VAE: ``BCE(x^, x)`` summed over the batch and the mutable columns, plus ``beta_e * KL(q(z | x)
  || N(0, I))`` summed likewise, with the KL weight annealed per epoch ``e = 0, 1, ...`` as
  ``beta_e = e * kl_weight / epochs``; Adam with weight decay.
* CSVAE: ``40 * MSE + 0.2 * KL_z + 1 * KL_w + 110 * negentropy(q(y | z))`` for the encoders,
  prior and decoder (the MSE is a mean over all ``d`` model-space columns, the immutable ones
  contributing zero, as CARLA's reconstruction that copies them in; both KLs are sums over the
  batch), and ``100 * CE(q(y | z), y)`` for the adversary; two Adam optimisers at ``lr / 2``
  each. Unlike CARLA, the adversary is updated on its cross-entropy only: CARLA's code also
  accumulates the ELBO's negentropy gradient into the adversary (``zero_grad`` is called on the
  other optimiser between the two ``backward`` calls), which pushes the adversary towards
  uninformative predictions, the opposite of its role.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from .model import CSVAE, VAE, W_DIM

#: Probabilities of the CSVAE's adversary are clipped to [EPS, 1 - EPS] inside logarithms.
EPS = 1e-6


@dataclass
class History:
    """What a training did.

    Attributes
    ----------
    losses : list of float
        Mean training loss per epoch (per row; the CSVAE's ELBO term only).
    steps : int
        Adam steps taken.
    seconds : float
        Wall-clock time of the training.
    """

    losses: list[float] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0


def gaussian_kl(
    mean: torch.Tensor,
    log_var: torch.Tensor,
    prior_mean: torch.Tensor | None = None,
    prior_log_var: torch.Tensor | None = None,
) -> torch.Tensor:
    """``KL(N(mean, exp(log_var)) || N(prior_mean, exp(prior_log_var)))`` summed over all entries.

    The prior defaults to ``N(0, I)``.
    """
    if prior_mean is None or prior_log_var is None:
        return -0.5 * torch.sum(1 + log_var - mean.pow(2) - log_var.exp())
    ratio = (log_var.exp() + (mean - prior_mean).pow(2)) / prior_log_var.exp()
    return 0.5 * torch.sum(prior_log_var - log_var + ratio - 1)


def sample(mean: torch.Tensor, log_var: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The reparameterised draw ``mean + exp(log_var / 2) * eps``, ``eps`` from ``generator``."""
    noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
    return mean + torch.exp(0.5 * log_var) * noise


def _bar(total: int, desc: str, progress: bool) -> tqdm:
    disable = None if progress else True  # None: off when not writing to a terminal
    return tqdm(total=total, desc=desc, unit="step", leave=False, disable=disable)


def train_vae(
    net: VAE,
    x_mutable: torch.Tensor,
    x_immutable: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    kl_weight: float,
    generator: torch.Generator,
    progress: bool = True,
) -> History:
    """Train ``net`` in place on rows ``(x_mutable, x_immutable)`` (float32); eval mode after.

    Parameters
    ----------
    net : VAE
        The network.
    x_mutable, x_immutable : tensor
        Mutable and immutable columns of the training rows.
    epochs, batch_size : int
        Passes over the rows and rows per Adam step.
    lr, weight_decay : float
        Adam's learning rate and weight decay (CARLA's ``lambda_reg``).
    kl_weight : float
        Final KL weight of the annealing ``beta_e = e * kl_weight / epochs``.
    generator : torch.Generator
        Batch order and reparameterisation noise.
    progress : bool
        Show a progress bar (tqdm; off when not writing to a terminal).
    """
    start, history = time.perf_counter(), History()
    optimiser = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    n = len(x_mutable)
    target = x_mutable.clamp(0.0, 1.0)
    bar = _bar(epochs * math.ceil(n / batch_size), "vae", progress)
    net.train()
    for epoch in range(epochs):
        beta = epoch * kl_weight / epochs
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for first in range(0, n, batch_size):
            rows = order[first : first + batch_size]
            mean, log_var = net.encode(x_mutable[rows])
            recon = net.decode(sample(mean, log_var, generator), x_immutable[rows])
            loss = F.binary_cross_entropy(recon, target[rows], reduction="sum")
            loss = loss + beta * gaussian_kl(mean, log_var)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += float(loss.detach())
            history.steps += 1
            bar.update(1)
        history.losses.append(total / n)
        bar.set_postfix(loss=f"{history.losses[-1]:.3f}")
    bar.close()
    net.eval()
    history.seconds = time.perf_counter() - start
    return history


def train_csvae(
    net: CSVAE,
    x_mutable: torch.Tensor,
    x_immutable: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    n_features: int,
    generator: torch.Generator,
    progress: bool = True,
) -> History:
    """Train ``net`` in place on rows ``(x_mutable, x_immutable)`` with 0/1 labels ``y``.

    Parameters
    ----------
    net : CSVAE
        The network.
    x_mutable, x_immutable : tensor
        Mutable and immutable columns of the training rows (float32).
    y : tensor of int
        The training labels.
    epochs, batch_size : int
        Passes over the rows and rows per step.
    lr : float
        Learning rate; each of the two Adam optimisers uses ``lr / 2`` (as CARLA).
    n_features : int
        Model-space columns ``d`` (the MSE is a mean over all of them, see the module notes).
    generator : torch.Generator
        Batch order and reparameterisation noise.
    progress : bool
        Show a progress bar.
    """
    start, history = time.perf_counter(), History()
    main = torch.optim.Adam(net.main_parameters(), lr=lr / 2)
    adversary = torch.optim.Adam(net.adversary.parameters(), lr=lr / 2)
    labels = y.to(torch.long)
    one_hot = F.one_hot(labels, W_DIM).to(x_mutable.dtype)
    n = len(x_mutable)
    bar = _bar(epochs * math.ceil(n / batch_size), "csvae", progress)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for first in range(0, n, batch_size):
            rows = order[first : first + batch_size]
            xm, xi, yb = x_mutable[rows], x_immutable[rows], one_hot[rows]
            z_mean, z_log_var = net.encoder_z(xm)
            w_mean, w_log_var = net.encoder_w(torch.cat([xm, yb], dim=1))
            prior_mean, prior_log_var = net.prior_w(yb)
            z = sample(z_mean, z_log_var, generator)
            w = sample(w_mean, w_log_var, generator)
            recon = net.decoder(torch.cat([z, xi, w], dim=1))
            mse = (recon - xm).pow(2).sum() / (len(rows) * n_features)
            kl_w = gaussian_kl(w_mean, w_log_var, prior_mean, prior_log_var)
            kl_z = gaussian_kl(z_mean, z_log_var)
            code = torch.cat([z, xi], dim=1)
            p = net.adversary(code).clamp(EPS, 1 - EPS)
            negentropy = (p * p.log() + (1 - p) * (1 - p).log()).mean()
            elbo = 40 * mse + 0.2 * kl_z + kl_w + 110 * negentropy
            main.zero_grad(set_to_none=True)
            elbo.backward()
            main.step()

            p_adv = net.adversary(code.detach()).clamp(EPS, 1 - EPS)
            cross_entropy = 100 * (-p_adv.log().gather(1, labels[rows, None])).mean()
            adversary.zero_grad(set_to_none=True)
            cross_entropy.backward()
            adversary.step()

            total += float(elbo.detach()) * len(rows)
            history.steps += 1
            bar.update(1)
        history.losses.append(total / n)
        bar.set_postfix(loss=f"{history.losses[-1]:.3f}")
    bar.close()
    net.eval()
    history.seconds = time.perf_counter() - start
    return history
