"""CROCO: counterfactuals with a bounded invalidation rate under noisy implementation.

Guyomard, Fessant, Guyet, Bouadi and Termier, "Generating robust counterfactual explanations",
ECML PKDD 2023 (LNCS, pp. 394-409, doi 10.1007/978-3-031-43418-1_24), arXiv:2304.12943.

Reference code read: Orange-OpenSource/carla_croco_vcnet@aee71fe,
``carla/recourse_methods/catalog/croco/library/croco.py`` (the optimisation),
``carla/recourse_methods/catalog/croco/model.py`` (defaults, the per-factual driver) and
``carla/evaluation/robustness_metrics.py`` (the Monte-Carlo invalidation rate).

A recourse x' is implemented noisily as x' + eps. Its recourse invalidation rate is
IR(x') = P_eps[h(x' + eps) < t] with h the favourable-class probability and t the decision
threshold. With h0 = 1 - h, Markov's inequality gives IR(x') <= E[h0(x' + eps)] / (1 - t), and
CROCO optimises the looser, smoother surrogate

    Gamma(x') = (m + E_eps[h0(x' + eps)]) / (1 - t),

with E estimated from ``n_samples`` reparametrised draws eps = s * e (e standard Gaussian, or
uniform on [-1, 1]), so that the estimate is differentiable in x' (:func:`croco_bound`,
:func:`noisy_invalidation_rate` for the Monte-Carlo IR itself). The noise: ``"gaussian"`` is
N(0, sigma2 I) (``sigma2`` a variance), ``"uniform"`` is U[-sigma2, +sigma2] per coordinate
(``sigma2`` a half-width), as in the authors' code. Only mutable columns receive noise: the user
implements changes of the features they can act on (PROBE's estimate here does the same). The
noisy points are neither clipped nor rounded: the noise model is x' + eps in model space.

Algorithm (batched over all factuals, one tensor computation per step):

1. start from x' = x; lambda = ``lambda_param``; minimise, per row,

       (Gamma(x') - r)^2 + (1 - h(x'))^2 + lambda * ||x' - x||_1

   with projected Adam (amsgrad, learning rate ``lr``; one optimiser for the whole search):
   immutable coordinates frozen, each step projected onto the per-row box (bounds, directions)
   and one-hot groups onto the simplex (:class:`~._search.FeasibleSet`). Every step draws
   ``n_samples`` fresh noise vectors, shared by all rows;
2. every 10 steps, and at the end of a round, snap the candidates (round one-hot groups and
   integers): a row is *found* once its snapped candidate has h > t and an estimated bound
   (fresh draws) Gamma <= r + eps_r; a found row stops and keeps that snapped candidate;
3. a round is ``n_iter`` steps; after each round lambda -= ``lambda_step`` for the rows still
   searching, which stop once lambda <= 0 (with the defaults: rounds at lambda = 1, 0.75, 0.5,
   0.25). Rows move in lockstep, so every row has the same lambda in the same round;
4. rows never found keep their last snapped candidate if the model accepts it (h >= 0.5: a valid
   recourse less robust than asked, as in the authors' code); a row the model rejects is NaN.

The noise draws depend only on the step count, never on the other rows, and every computation
is per row, so a factual's recourse does not depend on the batch (``batch_invariant``); they do
depend on ``random_state`` (``stochastic``).

Hyperparameters (all defaults are the authors'): ``n_samples=500``, ``lr=0.01``, ``t=0.5``,
``m=0.1``, ``lambda_param=1``, ``lambda_step=0.25`` (a constant in their code), ``n_iter=1000``
(steps per round), ``sigma2=0.01``, ``robustness_target=0.3`` (r), ``robustness_epsilon=0.01``
(eps_r), ``distribution="gaussian"``, ``random_state=None``. With t = 0.5, m = 0.1 and r + eps_r =
0.31 a found recourse has E[h0] <= 0.055, i.e. IR <= 0.11 by Markov.

Behaviour with these defaults on [0, 1]-scaled data: the L1 weight never falls below 0.25, while
the gradients of the other two terms near the target are small multiples of the model's weights
(2 (Gamma - r) dGamma/dx' vanishes as Gamma approaches r), so the loss settles where Gamma is
still above r + eps_r unless the model is steep; the target is then met only where Adam's steps
(of size about ``lr``) pass below it, and most rows return a valid, less robust recourse. On
German (20 rejected test rows, seed 0) 0/20 rows met the target with the logistic model and
3/20 with the MLP (a valid recourse came back for 14/20 and 19/20), yet the Monte-Carlo IR
(sigma2 = 0.01, mutable columns) of the returned recourses was 0.16 and 0.14, against 0.31 and
0.35 for Wachter's; it took 15 s and 31 s of one CPU thread (every unfinished row runs
4 x 1000 steps of 500 noisy forward and backward passes).

Differences from the authors' code, and why:

- immutables, bounds and directions are enforced during the search and one-hot groups are kept on
  their simplex, then rounded by argmax (``schema.snap``); theirs has no immutables, no clipping
  to [0, 1], no directions, and rounds each one-hot column on its own (possibly all-zero or
  multi-hot groups). Their rounding has a zero gradient, so their categoricals never move; ours
  move on the simplex;
- the noise covers mutable columns only; theirs adds it to every column and then rounds the
  categorical ones (which, at s = 0.1, removes it from those columns almost surely);
- a row stops as soon as it is found (checked every 10 steps; theirs checks at the end of each
  1000-step round), and a row keeps searching until found or lambda <= 0; theirs also ends the
  search after the first round whose candidate is valid but not robust (their loop condition is
  "invalid and not robust"), which returns a non-robust recourse where lowering lambda could
  still find a robust one;
- the loss is evaluated at the continuous candidate (one-hot groups on the simplex) and the found
  test at the snapped one, with a fresh estimate of Gamma; theirs evaluates both at the rounded
  candidate, with the estimate of the last gradient step. A factual that is already valid but
  not robust is searched too (theirs returns it unchanged);
- all factuals are optimised together, with noise draws shared by all rows at each step (theirs
  loops over factuals); the loss is computed in chunks of rows to bound memory;
- the validity term is written (1 - h)^2, which equals their MSE between the two-class output
  [h0, h] and [0, 1]; the term (Gamma - r)^2 is theirs: it pulls Gamma towards r, not below it.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

from ..api import Classifier, Interval, MethodTags, Options, RecourseMethod
from ..models._torch import as_tensor
from ..registry import register
from ..seeding import generator_for
from ._search import FeasibleSet, accepts

DISTRIBUTIONS = ("gaussian", "uniform")
_CHUNK_ELEMENTS = 2**22  # noisy input elements per chunk (32 MiB of float64 inputs)
_CHECK_EVERY = 10  # steps between two "found" checks
_Array = TypeVar("_Array", np.ndarray, torch.Tensor)


def _chunks(n_rows: int, n_samples: int, n_features: int) -> list[slice]:
    size = max(1, _CHUNK_ELEMENTS // max(1, n_samples * n_features))
    return [slice(start, start + size) for start in range(0, n_rows, size)]


def _mutable(mutable: np.ndarray | None, n_features: int) -> np.ndarray:
    if mutable is None:
        return np.ones(n_features, dtype=bool)
    mask = np.asarray(mutable, dtype=bool)
    if mask.shape != (n_features,):
        raise ValueError(f"mutable must have shape ({n_features},), got {mask.shape}")
    return mask


def draw_noise(
    generator: torch.Generator,
    n_samples: int,
    mutable: np.ndarray,
    sigma2: float,
    distribution: str = "gaussian",
) -> torch.Tensor:
    """``n_samples`` implementation-noise vectors (n_samples, d), zero on immutable columns.

    ``"gaussian"``: N(0, sigma2) per mutable coordinate (``sigma2`` is a variance);
    ``"uniform"``: U[-sigma2, sigma2] per mutable coordinate (``sigma2`` is a half-width).
    """
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {', '.join(DISTRIBUTIONS)}")
    mask = torch.as_tensor(np.asarray(mutable, dtype=bool))
    shape = (int(n_samples), int(mask.sum()))
    if distribution == "gaussian":
        draws = torch.randn(shape, generator=generator, dtype=torch.float64) * np.sqrt(sigma2)
    else:
        draws = (2 * torch.rand(shape, generator=generator, dtype=torch.float64) - 1) * sigma2
    noise = torch.zeros((shape[0], len(mask)), dtype=torch.float64)
    noise[:, mask] = draws
    return noise


def expected_rejection_torch(
    model: Classifier, z: torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """Monte-Carlo E[h0(z + eps)] (n,) over the rows ``noise`` (S, d), differentiable in ``z``."""
    n, d = z.shape
    noisy = (z[:, None, :] + noise[None, :, :]).reshape(-1, d)
    return torch.sigmoid(-model.logits(noisy)).reshape(n, -1).mean(dim=1)


def _noisy_probabilities(model: Classifier, X: np.ndarray, noise: torch.Tensor) -> np.ndarray:
    """h(x + eps_k) for every row x of ``X`` and every noise row: (n, S), computed in chunks."""
    out = np.empty((len(X), noise.shape[0]))
    Z = as_tensor(X)
    with torch.no_grad():
        for part in _chunks(len(X), noise.shape[0], X.shape[1]):
            z = Z[part]
            noisy = (z[:, None, :] + noise[None, :, :]).reshape(-1, X.shape[1])
            out[part] = torch.sigmoid(model.logits(noisy)).reshape(len(z), -1).numpy()
    return out


def _rows_and_noise(
    X: np.ndarray,
    n_samples: int,
    sigma2: float,
    distribution: str,
    mutable: np.ndarray | None,
    generator: torch.Generator | None,
) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """The points as floats, the rows without NaN, and the noise draws."""
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (n, d), got shape {X.shape}")
    mask = _mutable(mutable, X.shape[1])
    generator = generator_for(None) if generator is None else generator
    noise = draw_noise(generator, n_samples, mask, sigma2, distribution)
    return X, ~np.isnan(X).any(axis=1), noise


def croco_bound(
    model: Classifier,
    X: np.ndarray,
    *,
    sigma2: float = 0.01,
    n_samples: int = 500,
    t: float = 0.5,
    m: float = 0.1,
    distribution: str = "gaussian",
    mutable: np.ndarray | None = None,
    generator: torch.Generator | None = None,
) -> np.ndarray:
    """CROCO's upper bound Gamma(x) = (m + E[h0(x + eps)]) / (1 - t) for every row of ``X``.

    E[h0] (h0 = 1 - h, the probability of the unfavourable class) is the mean over ``n_samples``
    noise vectors drawn once and shared by all rows (:func:`draw_noise`). By Markov's
    inequality P[h(x + eps) < t] <= E[h0(x + eps)] / (1 - t) <= Gamma(x) for any m >= 0
    (up to Monte-Carlo error in E[h0]).

    Parameters
    ----------
    model : Classifier
        A differentiable classifier (``logits`` on tensors).
    X : ndarray (n, d)
        Points (recourses) in model space; rows with NaN give NaN.
    sigma2 : float, default 0.01
        Variance of the Gaussian noise, or half-width of the uniform noise.
    n_samples : int, default 500
        Noise draws.
    t : float, default 0.5
        Decision threshold of the invalidation event h < t.
    m : float, default 0.1
        Slack added to E[h0] (m = 0 gives the plain Markov bound E[h0] / (1 - t)).
    distribution : {"gaussian", "uniform"}, default "gaussian"
        Noise distribution.
    mutable : bool array (d,), optional
        Coordinates that receive noise (default all; CROCO uses ``schema.mutable_mask``).
    generator : torch.Generator, optional
        Source of the noise (default: fresh entropy).

    Returns
    -------
    ndarray (n,)
        The bounds, in [m / (1 - t), (m + 1) / (1 - t)].
    """
    X, rows, noise = _rows_and_noise(X, n_samples, sigma2, distribution, mutable, generator)
    out = np.full(len(X), np.nan)
    if rows.any():
        rejection = 1.0 - _noisy_probabilities(model, X[rows], noise).mean(axis=1)
        out[rows] = (m + rejection) / (1.0 - t)
    return out


def noisy_invalidation_rate(
    model: Classifier,
    X: np.ndarray,
    *,
    sigma2: float = 0.01,
    n_samples: int = 500,
    threshold: float = 0.5,
    distribution: str = "gaussian",
    mutable: np.ndarray | None = None,
    generator: torch.Generator | None = None,
) -> np.ndarray:
    """Monte-Carlo invalidation rate IR(x) = P[h(x + eps) < threshold] of every row of ``X``.

    The share of ``n_samples`` noisy copies x + eps_k (noise from :func:`draw_noise`, shared by
    all rows) that the model rejects; the metric of the authors'
    ``compute_recourse_invalidation_rate`` (theirs counts h <= 0.5 as rejected, a difference of
    measure zero). Parameters as in :func:`croco_bound`; rows with NaN give NaN.

    Returns
    -------
    ndarray (n,)
        Invalidation rates in [0, 1].
    """
    X, rows, noise = _rows_and_noise(X, n_samples, sigma2, distribution, mutable, generator)
    out = np.full(len(X), np.nan)
    if rows.any():
        out[rows] = (_noisy_probabilities(model, X[rows], noise) < threshold).mean(axis=1)
    return out


@register("method", "croco")
class Croco(RecourseMethod):
    """Gradient search for a cheap recourse whose CROCO invalidation bound is at most a target.

    Parameters
    ----------
    n_samples : int, default 500
        Noise draws per estimate of E[h0] (authors' value).
    lr : float, default 0.01
        Adam (amsgrad) learning rate (authors' value).
    t : float, default 0.5
        Decision threshold in the bound and in the found test h > t (authors' value).
    m : float, default 0.1
        Slack of the bound (m + E[h0]) / (1 - t) (authors' value).
    lambda_param : float, default 1.0
        Weight of the L1 cost in the first round (authors' value).
    lambda_step : float, default 0.25
        Decrease of lambda after each round without success; rows stop once lambda <= 0
        (a constant in the authors' code).
    n_iter : int, default 1000
        Adam steps per round (authors' value).
    sigma2 : float, default 0.01
        Variance of the Gaussian noise, or half-width of the uniform noise (authors' value).
    robustness_target : float, default 0.3
        Target r of the bound (authors' value).
    robustness_epsilon : float, default 0.01
        A row is found once its bound is at most r + robustness_epsilon (authors' value).
    distribution : {"gaussian", "uniform"}, default "gaussian"
        Implementation noise (authors' default).
    random_state : int or None, default None
        Seeds the noise draws.

    Attributes
    ----------
    last_found_ : bool ndarray (n,)
        After ``generate``: the rows found, i.e. whose recourse has h > t and an estimated
        bound at most r + robustness_epsilon.
    last_bound_ : ndarray (n,)
        After ``generate``: the estimated bound of each found row at the moment it was found
        (NaN for the other rows).

    Notes
    -----
    ``generate`` returns NaN rows where the model rejects the final recourse. Rows the model
    accepts but whose bound stayed above the target are returned as they are.
    """

    tags = MethodTags(requires_differentiable=True, stochastic=True, batch_invariant=True)

    parameter_constraints = {
        "n_samples": (Interval("int", low=1),),
        "lr": (Interval("float", low=0, open_low=True),),
        "t": (Interval("float", low=0, high=1, open_low=True, open_high=True),),
        "m": (Interval("float", low=0),),
        "lambda_param": (Interval("float", low=0, open_low=True),),
        "lambda_step": (Interval("float", low=0, open_low=True),),
        "n_iter": (Interval("int", low=1),),
        "sigma2": (Interval("float", low=0, open_low=True),),
        "robustness_target": (Interval("float", low=0),),
        "robustness_epsilon": (Interval("float", low=0),),
        "distribution": (Options(DISTRIBUTIONS),),
        "random_state": (Interval("int"), None),
    }

    _test_params = {"n_samples": 32, "n_iter": 60, "lr": 0.05}

    def __init__(
        self,
        n_samples: int = 500,
        lr: float = 0.01,
        t: float = 0.5,
        m: float = 0.1,
        lambda_param: float = 1.0,
        lambda_step: float = 0.25,
        n_iter: int = 1000,
        sigma2: float = 0.01,
        robustness_target: float = 0.3,
        robustness_epsilon: float = 0.01,
        distribution: str = "gaussian",
        random_state: int | None = None,
    ):
        self.n_samples = n_samples
        self.lr = lr
        self.t = t
        self.m = m
        self.lambda_param = lambda_param
        self.lambda_step = lambda_step
        self.n_iter = n_iter
        self.sigma2 = sigma2
        self.robustness_target = robustness_target
        self.robustness_epsilon = robustness_epsilon
        self.distribution = distribution
        self.random_state = random_state

    def _bound(self, rejection: _Array) -> _Array:
        """Gamma from E[h0]."""
        return (self.m + rejection) / (1.0 - self.t)

    def _lambdas(self) -> list[float]:
        """The L1 weight of each round: lambda_param, then minus lambda_step while positive."""
        values, lam = [], float(self.lambda_param)
        while lam > 0:
            values.append(lam)
            lam -= float(self.lambda_step)
        return values

    def generate(self, X: np.ndarray) -> np.ndarray:
        """Recourses for all rows of ``X`` (NaN rows where the model rejects the result)."""
        self.check_fitted()
        X = self.check_factuals(X)
        schema, model = self.schema_, self.model_
        n, d = X.shape
        self.last_found_ = np.zeros(n, dtype=bool)
        self.last_bound_ = np.full(n, np.nan)
        if n == 0:
            return X.copy()
        generator = generator_for(self.random_state)
        mutable = schema.mutable_mask
        limit = float(self.robustness_target + self.robustness_epsilon)
        chunks = _chunks(n, int(self.n_samples), d)

        def noise() -> torch.Tensor:
            return draw_noise(generator, self.n_samples, mutable, self.sigma2, self.distribution)

        result = np.full_like(X, np.nan)
        moving = np.ones(n, dtype=bool)

        def check(z: torch.Tensor) -> None:
            """Snap the moving rows; stop those with h > t and bound <= r + eps_r."""
            rows = np.flatnonzero(moving)
            candidates = schema.snap(z[rows].detach().numpy(), X[rows])
            h = model.predict_proba(candidates)[:, 1]
            rejection = 1.0 - _noisy_probabilities(model, candidates, noise()).mean(axis=1)
            bound = self._bound(rejection)
            found = (h > self.t) & (bound <= limit)
            result[rows[found]] = candidates[found]
            self.last_found_[rows[found]] = True
            self.last_bound_[rows[found]] = bound[found]
            moving[rows[found]] = False

        feasible = FeasibleSet(schema, X)
        x0 = as_tensor(X)
        z = x0.clone().requires_grad_(True)
        optimiser = torch.optim.Adam([z], lr=self.lr, amsgrad=True)
        check(z)
        for lam in self._lambdas():
            for step in range(int(self.n_iter)):
                if not moving.any():
                    break
                eps = noise()
                optimiser.zero_grad(set_to_none=True)
                rows = torch.as_tensor(np.flatnonzero(moving))
                with torch.enable_grad():
                    for part in chunks:
                        index = rows[part]
                        if len(index) == 0:
                            break
                        zc = z[index]
                        h = torch.sigmoid(model.logits(zc))
                        bound = self._bound(expected_rejection_torch(model, zc, eps))
                        cost = (zc - x0[index]).abs().sum(dim=1)
                        loss = (bound - self.robustness_target) ** 2 + (1 - h) ** 2 + lam * cost
                        loss.sum().backward()
                assert z.grad is not None
                keep = torch.as_tensor(moving)[:, None]
                z.grad *= feasible.free & keep
                before = z.detach().clone()
                optimiser.step()
                with torch.no_grad():
                    z.copy_(torch.where(keep, z, before))  # momentum never moves a stopped row
                feasible.project_(z)
                if (step + 1) % _CHECK_EVERY == 0 or step + 1 == self.n_iter:
                    check(z)
            if not moving.any():
                break

        # rows never found keep an accepted (less robust) recourse
        rows = np.flatnonzero(moving)
        candidates = schema.snap(z[rows].detach().numpy(), X[rows])
        accepted = accepts(model, candidates)
        result[rows[accepted]] = candidates[accepted]
        return result
