"""Two interleaving half circles ("moons") with an exact Bayes oracle.

Generative process: y ~ Bernoulli(1/2); t ~ U[0, pi]; class 0 lies on the arc (cos t, sin t) and
class 1 on the arc (1 - cos t, 1/2 - sin t); x = arc(t) + N(0, noise^2 I). The class-conditional
density is p(x | y) = (1/pi) * integral over t of N(x; arc_y(t), noise^2 I), so the Bayes posterior
log-odds are log p(x | 1) - log p(x | 0). The oracle evaluates both integrals by the midpoint rule
on ``n_quadrature`` points (a log-sum-exp in torch, so the oracle is differentiable), in model
space. Unlike scikit-learn's ``make_moons``, t is drawn at random, which is what makes the
posterior exact.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch import nn

from ..api import Dataset, Interval, Splits
from ..models._torch import DTYPE, TorchClassifier, as_tensor
from ..registry import register
from ..seeding import numpy_rng
from ._synthetic import encode, scaling


def arcs(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points of the class-0 and class-1 arcs at angles ``t``, shape (len(t), 2) each."""
    outer = np.column_stack([np.cos(t), np.sin(t)])
    inner = np.column_stack([1.0 - np.cos(t), 0.5 - np.sin(t)])
    return outer, inner


class MoonsPosterior(nn.Module):
    """Bayes log-odds of the moons process, for model-space inputs."""

    def __init__(self, lo: np.ndarray, span: np.ndarray, noise: float, n_quadrature: int):
        super().__init__()
        t = (np.arange(n_quadrature) + 0.5) * np.pi / n_quadrature
        outer, inner = arcs(t)
        self.register_buffer("lo", as_tensor(lo))
        self.register_buffer("span", as_tensor(span))
        self.register_buffer("outer", as_tensor(outer))
        self.register_buffer("inner", as_tensor(inner))
        self.noise = float(noise)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Log-odds of class 1 for each row of ``X`` (model space)."""
        raw = self.lo + X.to(DTYPE) * self.span

        def log_density(arc: torch.Tensor) -> torch.Tensor:
            squared = ((raw[:, None, :] - arc[None, :, :]) ** 2).sum(dim=2)
            return torch.logsumexp(-squared / (2 * self.noise**2), dim=1)

        return log_density(self.inner) - log_density(self.outer)


@register("dataset", "synthetic-moons")
class SyntheticMoons(Dataset):
    """Two noisy half circles; the exact Bayes posterior is the oracle.

    Parameters
    ----------
    n_samples : int, default 1000
        Rows drawn (half of each class in expectation).
    noise : float, default 0.2
        Standard deviation of the Gaussian noise around the arcs.
    test_size : float, default 0.3
        Share of rows held out as the test split.
    n_quadrature : int, default 512
        Quadrature points of the oracle's integrals.
    """

    parameter_constraints = {
        "n_samples": (Interval("int", low=20),),
        "noise": (Interval("float", low=0, open_low=True),),
        "test_size": (Interval("float", low=0, high=1, open_low=True, open_high=True),),
        "n_quadrature": (Interval("int", low=16),),
    }

    def __init__(
        self,
        n_samples: int = 1000,
        noise: float = 0.2,
        test_size: float = 0.3,
        n_quadrature: int = 512,
    ):
        self.n_samples = n_samples
        self.noise = noise
        self.test_size = test_size
        self.n_quadrature = n_quadrature

    def load(self, seed: int) -> Splits:
        """Draw the data with ``seed``, split and scale it, and attach the Bayes oracle."""
        rng = numpy_rng(seed)
        n = int(self.n_samples)
        y = rng.integers(0, 2, size=n)
        outer, inner = arcs(rng.uniform(0.0, np.pi, size=n))
        X = np.where(y[:, None] == 1, inner, outer) + rng.normal(0.0, self.noise, size=(n, 2))
        splits = encode(X, y, seed, self.test_size, self.name)
        posterior = MoonsPosterior(*scaling(splits), self.noise, int(self.n_quadrature))
        return replace(splits, oracle=TorchClassifier(posterior))
