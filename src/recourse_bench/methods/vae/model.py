"""The generative models of REVISE, CCHVAE and CRUDS: a VAE and a CSVAE over the mutable features.

Both follow CARLA's layout (``carla/recourse_methods/autoencoder/models``, commit 24db00a): only
the *mutable* model-space columns are encoded and reconstructed; the immutable columns are not
encoded, they are appended to the latent code as inputs of the decoder (the decoder is
conditioned on them) and copied unchanged into every decoded row. A decoded row therefore never
changes an immutable feature, whatever the latent point.

``layers = (h_1, ..., h_k, latent)`` gives the widths: the encoder is ``Linear(d_mut, h_1), ReLU,
..., Linear(h_{k-1}, h_k), ReLU`` with two linear heads (mean and log-variance), the decoder the
mirror image ``Linear(latent + d_imm, h_k), ReLU, ..., Linear(h_1, d_mut)``. GenRe's baseline
configuration is ``(512, 256, 8)``.

* :class:`VAE` (REVISE, CCHVAE): a sigmoid output, so decoded values lie in (0, 1) like the model
  space (CARLA's ``VariationalAutoencoder``).
* :class:`CSVAE` (CRUDS; Klys, Snell and Zemel 2018, "Learning latent subspaces in variational
  autoencoders", as CARLA's ``CSVAE``): two latent codes, ``z`` from ``x`` and a 2-d ``w`` from
  ``(x, y)``, with a learned label-conditioned prior ``p(w | y)`` and an adversary ``q(y | z)``
  that training makes uninformative, so that the label lives in ``w``. The decoder is
  ``p(x | z, immutables, w)`` with a linear output (CARLA's ``mu_zw_to_x``; its unused
  log-variance head is left out).

Parameters are initialised from an explicit ``torch.Generator`` (the default ``U(-1/sqrt(fan_in),
1/sqrt(fan_in))`` of :func:`recourse_bench.models._torch.init_weights`); no global random state is
used or changed. The networks compute in float32; :func:`decode_rows` returns float64 rows of the
model space.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ...models._torch import init_weights, untouched_global_rng

#: Width of the CSVAE's label code ``w`` and of its one-hot label input (binary labels).
W_DIM = 2


def mlp(widths: Sequence[int], final_activation: bool = True) -> nn.Sequential:
    """``Linear, ReLU`` per consecutive pair of ``widths`` (the last ReLU only if asked)."""
    layers: list[nn.Module] = []
    pairs = list(itertools.pairwise(widths))
    for i, (fan_in, fan_out) in enumerate(pairs):
        layers.append(nn.Linear(fan_in, fan_out))
        if final_activation or i < len(pairs) - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class GaussianEncoder(nn.Module):
    """A ReLU body with a mean head and a log-variance head sharing it."""

    def __init__(self, n_in: int, hidden: Sequence[int], n_out: int):
        super().__init__()
        self.body = mlp([n_in, *hidden])
        self.mean = nn.Linear(hidden[-1], n_out)
        self.log_var = nn.Linear(hidden[-1], n_out)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of ``q(. | x)``."""
        h = self.body(x)
        return self.mean(h), self.log_var(h)


class VAE(nn.Module):
    """A VAE of the mutable columns whose decoder is conditioned on the immutable ones.

    Parameters
    ----------
    n_mutable, n_immutable : int
        Mutable and immutable model-space columns (``n_mutable >= 1``).
    layers : sequence of int
        Hidden widths of the encoder, then the latent dimension, e.g. ``(512, 256, 8)``.
    generator : torch.Generator
        Draws the initial parameters.
    """

    def __init__(
        self, n_mutable: int, n_immutable: int, layers: Sequence[int], generator: torch.Generator
    ):
        super().__init__()
        *hidden, latent = (int(w) for w in layers)
        self.latent_dim = latent
        with untouched_global_rng():  # layer constructors draw from the global RNG: restore it
            self.encoder = GaussianEncoder(n_mutable, hidden, latent)
            self.decoder = nn.Sequential(
                mlp([latent + n_immutable, *hidden[::-1], n_mutable], final_activation=False),
                nn.Sigmoid(),
            )
        init_weights(self, generator)

    def encode(self, x_mutable: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of ``q(z | x)`` (each (n, latent))."""
        return self.encoder(x_mutable)

    def start(self, x_mutable: torch.Tensor) -> torch.Tensor:
        """The latent point a search starts from: the encoder's mean."""
        return self.encode(x_mutable)[0]

    def decode(self, latent: torch.Tensor, x_immutable: torch.Tensor) -> torch.Tensor:
        """Mutable columns (n, d_mut) decoded from ``latent`` (n, latent) and the immutables."""
        return self.decoder(torch.cat([latent, x_immutable], dim=1))


class CSVAE(nn.Module):
    """A conditional-subspace VAE: codes ``z`` (label-free) and ``w`` (the label's subspace).

    Parameters
    ----------
    n_mutable, n_immutable : int
        Mutable and immutable model-space columns (``n_mutable >= 1``).
    layers : sequence of int
        Hidden widths, then the dimension of ``z``; ``w`` has :data:`W_DIM` dimensions.
    generator : torch.Generator
        Draws the initial parameters.

    Notes
    -----
    As CARLA's ``CSVAE``: the encoders ``q(z | x)``, ``q(w | x, y)`` and the prior ``p(w | y)``
    share the same hidden widths; the decoder reads ``[z, immutables, w]``; the adversary
    ``q(y | z)`` reads ``[z, immutables]`` through the decoder's hidden widths and ends in a
    sigmoid per label (two outputs for the one-hot label).
    """

    def __init__(
        self, n_mutable: int, n_immutable: int, layers: Sequence[int], generator: torch.Generator
    ):
        super().__init__()
        *hidden, latent = (int(w) for w in layers)
        self.z_dim, self.w_dim = latent, W_DIM
        self.latent_dim = latent + W_DIM
        with untouched_global_rng():
            self.encoder_z = GaussianEncoder(n_mutable, hidden, latent)
            self.encoder_w = GaussianEncoder(n_mutable + W_DIM, hidden, W_DIM)
            self.prior_w = GaussianEncoder(W_DIM, hidden, W_DIM)
            self.decoder = mlp(
                [latent + n_immutable + W_DIM, *hidden[::-1], n_mutable], final_activation=False
            )
            self.adversary = nn.Sequential(
                mlp([latent + n_immutable, *hidden[::-1], W_DIM], final_activation=False),
                nn.Sigmoid(),
            )
        init_weights(self, generator)

    def start(self, x_mutable: torch.Tensor) -> torch.Tensor:
        """The label-free part ``z`` of a search's start: the mean of ``q(z | x)``."""
        return self.encoder_z(x_mutable)[0]

    def decode(self, latent: torch.Tensor, x_immutable: torch.Tensor) -> torch.Tensor:
        """Mutable columns decoded from ``latent = [z, w]`` (n, z_dim + 2) and the immutables."""
        z, w = latent[:, : self.z_dim], latent[:, self.z_dim :]
        return self.decoder(torch.cat([z, x_immutable, w], dim=1))

    def main_parameters(self) -> list[nn.Parameter]:
        """Every parameter but the adversary's (trained on the ELBO)."""
        return [p for name, p in self.named_parameters() if not name.startswith("adversary.")]


def decode_rows(
    net: VAE | CSVAE, latent: torch.Tensor, X: torch.Tensor, mutable: np.ndarray
) -> torch.Tensor:
    """Model-space rows (n, d, float64) decoded from ``latent``, immutables copied from ``X``.

    Differentiable in ``latent``. ``X`` holds the factuals (float64), ``mutable`` the schema's
    mutable mask.
    """
    mutable_t = torch.as_tensor(mutable, dtype=torch.bool)
    x_immutable = X[:, ~mutable_t].to(torch.float32)
    decoded = net.decode(latent.to(torch.float32), x_immutable).to(X.dtype)
    rows = X.detach().clone()
    rows[:, mutable_t] = decoded
    return rows


def decode_numpy(
    net: VAE | CSVAE, latent: np.ndarray, X: np.ndarray, mutable: np.ndarray
) -> np.ndarray:
    """:func:`decode_rows` of numpy arrays, without gradients (NaN latent rows give NaN rows)."""
    latent = np.asarray(latent, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    out = np.full_like(X, np.nan)
    rows = ~np.isnan(latent).any(axis=1)
    if rows.any():
        with torch.no_grad():
            codes, factuals = torch.as_tensor(latent[rows]), torch.as_tensor(X[rows])
            decoded = decode_rows(net, codes, factuals, mutable)
        out[rows] = decoded.numpy()
    return out
