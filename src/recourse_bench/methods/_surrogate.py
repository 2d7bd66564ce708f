"""Batched local linear surrogates of a classifier's log-odds (shared by surrogate-based methods).

A local surrogate of a classifier h around a point x is an affine function of the features,
``logit h(z) ~ w^T z + b`` for z near x. Two constructions, both batched over all rows at once:

- :func:`lime_surrogate`, LIME-style (Ribeiro, Singh and Guestrin, KDD 2016), needs only
  ``predict_proba`` (so it works for forests and boosting too): sample Gaussian perturbations
  around each row, label them with h's probabilities, weight them by an exponential kernel on the
  distance to the row, and fit a weighted, L2-regularised logistic regression to the soft labels
  (all rows' regressions solved together by batched Newton steps);
- :func:`gradient_surrogate`, the first-order Taylor expansion of the log-odds at x
  (``w = grad_x logit h(x)``, ``b = logit h(x) - w^T x``), needs a differentiable model.

Both return ``(W, b)`` as numpy arrays of shapes (n, d) and (n,): row i is the surrogate of row i.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

from ..api import Classifier
from ..models._torch import as_tensor

#: Rows are fitted in blocks of at most this many (row, sample, feature) floats (16 MB), so
#: memory stays bounded and freed buffers are reused instead of being page-faulted in again.
MAX_BLOCK = 2**21
#: Probabilities are clipped to [EPS, 1 - EPS] (a model that is certain everywhere near x gets a
#: finite intercept, logit(EPS) ~ -13.8).
EPS = 1e-6


def gradient_surrogate(model: Classifier, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First-order Taylor expansion of the log-odds at every row of ``X``.

    Parameters
    ----------
    model : Classifier
        A differentiable classifier (``logits(z)`` differentiable in ``z``).
    X : ndarray (n, d)
        The expansion points.

    Returns
    -------
    W : ndarray (n, d)
        ``W[i] = grad_x logit h(X[i])``.
    b : ndarray (n,)
        ``b[i] = logit h(X[i]) - W[i] @ X[i]``, so that the surrogate is exact at ``X[i]``.
    """
    z = as_tensor(np.asarray(X, dtype=float)).clone().requires_grad_(True)
    with torch.enable_grad():
        logits = model.logits(z)  # type: ignore[attr-defined]
        (grad,) = torch.autograd.grad(logits.sum(), z)  # rows are independent
    W = grad.detach().numpy().copy()
    b = logits.detach().numpy() - np.einsum("nd,nd->n", W, np.asarray(X, dtype=float))
    return W, b


def lime_surrogate(
    model: Classifier,
    X: np.ndarray,
    *,
    n_samples: int = 300,
    scale: float = 0.3,
    kernel_width: float | None = None,
    alpha: float = 0.1,
    free: np.ndarray | None = None,
    lower: np.ndarray | float | None = None,
    upper: np.ndarray | float | None = None,
    rng: np.random.Generator | None = None,
    max_iter: int = 30,
    tol: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray]:
    """LIME-style local logistic surrogates of ``model`` around every row of ``X`` (batched).

    For each row x:

    1. draw ``n_samples - 1`` points z = x + scale * e, e ~ N(0, I) on the ``free`` columns
       (the others stay at x), clipped to [lower, upper]; x itself is the first sample (as in
       LIME);
    2. label them with p = h(z), the model's probability of class 1 (clipped to [1e-6, 1 - 1e-6]);
    3. weight them with LIME's kernel pi = exp(-||(z - x) / scale||^2 / (2 kernel_width^2)),
       distances measured in units of the sampling scale (LIME measures them on standardised
       features, which it samples with unit variance);
    4. fit  min_beta  sum_k pi_k CE(p_k, sigma(beta_0 + beta^T (z_k - x) / scale))
       + alpha / 2 ||beta||^2  (the intercept is not penalised) by Newton steps with step
       halving, all rows together, started from Berkson's weighted least-squares fit to the
       log-odds (weights pi p (1 - p)), which is already the answer for a logistic model.

    Cross-entropy against soft labels recovers a logistic model exactly (up to the ridge) and
    gives the surrogate on the log-odds scale, as ROAR's sigmoid needs.

    Parameters
    ----------
    model : Classifier
        Only ``predict_proba`` is used.
    X : ndarray (n, d)
        The rows to explain (not modified).
    n_samples : int, default 300
        Samples per row, the row itself included.
    scale : float, default 0.3
        Standard deviation of the Gaussian perturbation (in the units of ``X``).
    kernel_width : float, optional
        Kernel width in units of ``scale``; default LIME's ``0.75 * sqrt(d)``.
    alpha : float, default 0.1
        L2 penalty on the coefficients of the scaled perturbations (as sklearn's
        ``LogisticRegression(C=1/alpha)`` on LIME's standardised features).
    free : bool ndarray (d,), optional
        Columns to perturb (default all); the others get weight 0 (their effect goes into b).
    lower, upper : float or ndarray (d,), optional
        Bounds the samples are clipped to (default none).
    rng : numpy.random.Generator, optional
        Draws the perturbations (default a fresh, unseeded one).
    max_iter : int, default 30
        Newton steps at most.
    tol : float, default 1e-5
        A row stops once its Newton step moves no coefficient (of the scaled perturbations) by
        more than ``tol``.

    Returns
    -------
    W : ndarray (n, d)
        Coefficients of the surrogate in the units of ``X`` (0 on columns that are not free).
    b : ndarray (n,)
        Intercepts: the surrogate log-odds at z are ``W[i] @ z + b[i]``.
    """
    X = np.asarray(X, dtype=float)
    n, d = X.shape
    free_cols = np.arange(d) if free is None else np.flatnonzero(np.asarray(free, dtype=bool))
    W = np.zeros((n, d))
    b = np.zeros(n)
    if n == 0:
        return W, b
    rng = np.random.default_rng() if rng is None else rng
    width = 0.75 * math.sqrt(d) if kernel_width is None else float(kernel_width)
    lo = np.broadcast_to(-np.inf if lower is None else lower, (d,))
    hi = np.broadcast_to(np.inf if upper is None else upper, (d,))
    block = max(1, MAX_BLOCK // (int(n_samples) * d))
    for start in range(0, n, block):
        rows = slice(start, min(n, start + block))
        beta = _fit_block(
            model,
            X[rows],
            free_cols,
            int(n_samples),
            scale,
            width,
            alpha,
            lo,
            hi,
            rng,
            max_iter,
            tol,
        )
        W[rows, free_cols] = beta[:, 1:].numpy() / scale
        b[rows] = beta[:, 0].numpy() - np.einsum("nd,nd->n", W[rows], X[rows])
    return W, b


def _fit_block(
    model: Classifier,
    X: np.ndarray,
    free_cols: np.ndarray,
    m: int,
    scale: float,
    width: float,
    alpha: float,
    lower: np.ndarray,
    upper: np.ndarray,
    rng: np.random.Generator,
    max_iter: int,
    tol: float,
) -> torch.Tensor:
    """Sample, label, weight and fit one block of rows; returns beta (rows, 1 + free)."""
    n, d = X.shape
    k = len(free_cols)
    step = np.zeros(d)
    step[free_cols] = scale
    noise = rng.standard_normal((n, m, d))
    noise[:, 0] = 0.0  # the row itself is the first sample
    Z = X[:, None, :] + noise * step
    np.clip(Z, lower, upper, out=Z)
    p = as_tensor(model.predict_proba(Z.reshape(n * m, d))[:, 1]).reshape(n, m)
    p = p.clamp(EPS, 1 - EPS)
    np.subtract(Z, X[:, None, :], out=Z)  # the perturbation, after clipping
    A = torch.empty((n, m, k + 1), dtype=torch.float64)
    A[:, :, 0] = 1.0
    A[:, :, 1:] = as_tensor(Z[:, :, free_cols] if k < d else Z) / scale
    del Z, noise
    pi = torch.exp(-(torch.linalg.vector_norm(A[:, :, 1:], dim=2) ** 2) / (2 * width**2))
    ridge = torch.full((k + 1,), float(alpha), dtype=A.dtype)
    ridge[0] = 0.0
    jitter = torch.diag(ridge + 1e-10)

    # start: Berkson's weighted least squares on the log-odds (exact for a logistic model)
    target = torch.log(p) - torch.log1p(-p)
    v = pi * p * (1 - p)
    gram = (A * v[:, :, None]).transpose(1, 2) @ A + jitter
    beta = torch.linalg.solve(gram, A.transpose(1, 2) @ (v * target)[:, :, None])[..., 0]
    del gram

    # Newton steps with per-row step halving; converged rows leave the working set
    out = beta.clone()
    rows = torch.arange(n)
    loss = _objective(A, pi, p, ridge, beta)
    A32 = A.float()
    for _ in range(int(max_iter)):
        s = (A @ beta[:, :, None])[..., 0]
        sig = torch.sigmoid(s)
        grad = (A.transpose(1, 2) @ (pi * (sig - p))[:, :, None])[..., 0] + ridge * beta
        h = pi * sig * (1 - sig)
        # the Hessian only steers the step (the gradient and the line search are float64),
        # so it is accumulated in float32, which is faster and converges to the same fit
        hess = ((A32 * h.float()[:, :, None]).transpose(1, 2) @ A32).double() + jitter
        step = torch.linalg.solve(hess, grad[:, :, None])[..., 0]
        small = step.abs().amax(dim=1) < tol  # converged: take the step, no line search
        t = torch.ones(len(rows), dtype=A.dtype)
        new_loss = _objective(A, pi, p, ridge, beta - step)
        slack = 1e-10 * (1 + loss.abs())
        for _ in range(30):
            worse = (new_loss > loss + slack) & ~small
            if not worse.any():
                break
            t = torch.where(worse, t / 2, t)
            trial = _objective(A, pi, p, ridge, beta - t[:, None] * step)
            new_loss = torch.where(worse, trial, new_loss)
        improved = (new_loss <= loss + slack) | small
        beta = torch.where(improved[:, None], beta - t[:, None] * step, beta)
        loss = torch.where(improved, new_loss, loss)
        out[rows] = beta
        done = ~improved | small
        if done.all():
            break
        if done.float().mean() > 0.2:  # shrink the working set
            keep = torch.nonzero(~done).reshape(-1)
            rows, A, A32, pi, p, beta, loss = (
                rows[keep],
                A[keep],
                A32[keep],
                pi[keep],
                p[keep],
                beta[keep],
                loss[keep],
            )
    return out


def _objective(
    A: torch.Tensor, pi: torch.Tensor, p: torch.Tensor, ridge: torch.Tensor, beta: torch.Tensor
) -> torch.Tensor:
    """Per row: weighted cross-entropy against the soft labels plus the ridge penalty."""
    s = (A @ beta[:, :, None])[..., 0]
    return (pi * (F.softplus(s) - p * s)).sum(dim=1) + 0.5 * (ridge * beta**2).sum(dim=1)
