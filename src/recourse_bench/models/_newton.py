"""L2-penalised linear models by Newton's method, K models at once, in float64.

Two losses share the solver: the logistic loss (``logreg``) and the squared hinge (``svm``,
LinearSVC's primal). The objective of model k, with rows ``x_i`` (i = 1..n_k) of its sample,
0/1 labels ``y_i``, scores ``s_i = w^T x_i + b`` and penalty strength ``lam_k`` ::

    f_k(w, b) = (1 / n_k) * sum_i loss(s_i, y_i) + (lam_k / 2) * (||w||^2 [+ b^2])

with ``loss(s, y) = log(1 + exp(s)) - y s`` (:data:`LOGISTIC`; the intercept is not
penalised) or ``loss(s, y) = max(0, 1 - t s)^2``, ``t = 2 y - 1`` (:data:`SQUARED_HINGE`; the
intercept is penalised as a weight on a constant feature, as LinearSVC does). Both are convex,
and strictly convex for ``lam_k > 0`` (the logistic Hessian's quadratic form ``(1/n) sum_i p_i
(1 - p_i) (x_i^T u + c)^2 + lam ||u||^2`` vanishes only at (u, c) = 0; the squared hinge's
penalty covers every coordinate), so the minimiser is unique and does not depend on where the
solver starts.

Algorithm (Newton's method with a line search; for the logistic loss this is iteratively
reweighted least squares, for the squared hinge the generalised Newton method of Mangasarian
(2002) and of LIBLINEAR's primal solver, whose Hessian counts the rows inside the margin):

1. the K samples are stacked into one (K, N, d + 1) tensor, a column of ones appended for the
   intercept and shorter samples padded with zero rows of weight 0 (N the largest n_k), so
   every step is a batched tensor operation whatever the row counts (models are taken in
   batches of at most :data:`BATCH_BYTES` of design; they never interact);
2. from theta = (w, b) (zero, or a warm start), each iteration computes the gradient and the
   (generalised) Hessian ``(1/n) X~^T diag(loss'') X~ + diag(lam)`` of every model, and the
   Newton direction by a batched Cholesky solve (the Hessian damped by ``1e-12`` times its
   largest diagonal entry, which leaves the fixed point alone; where the factorisation still
   fails, as it may for ``lam = 0`` on collinear one-hot columns, the direction is the steepest
   descent ``-gradient``);
3. a backtracking line search halves each model's step from 1 until the Armijo condition
   ``f(theta + t d) <= f(theta) + 1e-4 t g^T d`` holds (up to the float64 rounding of f, so
   that steps at the optimum's precision floor are taken rather than rejected);
4. a model stops once its largest absolute partial derivative is at most ``tol``, after
   ``max_iter`` iterations, or when the line search finds no step that does not increase f;
   stopped models are frozen while the others go on, so model k of a batch takes the same
   iterations as model k alone.

Newton's method converges quadratically near the optimum (the squared hinge, piecewise
quadratic, in finitely many steps once the margin's active set settles): on Adult (31,655 rows,
46 columns) seven logistic iterations reach a largest partial derivative of 3e-12 (0.07 s on one
thread). With ``lam = 0`` and separable data the logistic optimum does not exist and the
weights grow until ``max_iter``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

log = logging.getLogger(__name__)

DTYPE = torch.float64
#: Armijo's sufficient-decrease constant of the line search.
ARMIJO = 1e-4
#: Halvings of the step the line search tries before giving up on a model.
HALVINGS = 40
#: Damping of the Hessian, relative to its largest diagonal entry.
DAMPING = 1e-12


@dataclass(frozen=True)
class Loss:
    """A per-row loss of the score s and the 0/1 label y, with its first two derivatives in s.

    Attributes
    ----------
    name : str
        What it is called in messages.
    value, slope, curvature : callable (s, y) -> tensor
        loss(s, y), d loss / d s and d^2 loss / d s^2 (the generalised second derivative
        where the loss has a kink), elementwise.
    penalise_intercept : bool
        Whether the L2 penalty also covers the intercept.
    """

    name: str
    value: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    slope: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    curvature: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    penalise_intercept: bool


def _margin_slack(s: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.clamp(1.0 - (2.0 * y - 1.0) * s, min=0.0)


#: The logistic loss (log-odds s); the intercept is not penalised (scikit-learn's choice).
LOGISTIC = Loss(
    "logistic",
    value=lambda s, y: torch.logaddexp(s, torch.zeros((), dtype=DTYPE)) - y * s,
    slope=lambda s, y: torch.sigmoid(s) - y,
    curvature=lambda s, y: torch.sigmoid(s) * (1.0 - torch.sigmoid(s)),
    penalise_intercept=False,
)
#: LinearSVC's squared hinge (decision value s); the intercept is penalised, as there.
SQUARED_HINGE = Loss(
    "squared_hinge",
    value=lambda s, y: _margin_slack(s, y) ** 2,
    slope=lambda s, y: -2.0 * (2.0 * y - 1.0) * _margin_slack(s, y),
    curvature=lambda s, y: 2.0 * (_margin_slack(s, y) > 0).to(DTYPE),
    penalise_intercept=True,
)


@dataclass(frozen=True)
class NewtonResult:
    """What :func:`fit_logistic` returns.

    Attributes
    ----------
    coef : ndarray (K, d)
        Weights w of each model.
    intercept : ndarray (K,)
        Intercepts b.
    iterations : ndarray (K,)
        Newton iterations each model took.
    gradient : ndarray (K,)
        Largest absolute partial derivative of f_k at the returned parameters.
    """

    coef: np.ndarray
    intercept: np.ndarray
    iterations: np.ndarray
    gradient: np.ndarray


@dataclass(frozen=True)
class _Problem:
    """The stacked samples: design (K, N, d + 1), labels and row weights (K, N), counts (K,)."""

    design: torch.Tensor
    labels: torch.Tensor
    rows: torch.Tensor
    counts: torch.Tensor
    penalty: torch.Tensor  # (K, d + 1): lam_k on the weights (and on the intercept, or 0)
    loss: Loss


def _stack(
    samples: Sequence[tuple[np.ndarray, np.ndarray]], penalty: np.ndarray, loss: Loss
) -> _Problem:
    """Step 1: pad and stack the samples, append the intercept column (``penalty``: (K,))."""
    d = np.shape(samples[0][0])[1]
    K, N = len(samples), max(len(y) for _, y in samples)
    design = torch.zeros((K, N, d + 1), dtype=DTYPE)
    labels = torch.zeros((K, N), dtype=DTYPE)
    rows = torch.zeros((K, N), dtype=DTYPE)
    for k, (X, y) in enumerate(samples):  # a loop over models, never over rows
        n = len(y)
        design[k, :n, :d] = torch.as_tensor(np.asarray(X, dtype=float), dtype=DTYPE)
        design[k, :n, d] = 1.0
        labels[k, :n] = torch.as_tensor(np.asarray(y, dtype=float), dtype=DTYPE)
        rows[k, :n] = 1.0
    lam = torch.as_tensor(np.array(penalty, dtype=float))
    strength = lam[:, None].expand(K, d + 1).clone()
    if not loss.penalise_intercept:
        strength[:, d] = 0.0
    counts = rows.sum(dim=1)
    return _Problem(design, labels, rows, counts, strength, loss)


def _scores(problem: _Problem, theta: torch.Tensor) -> torch.Tensor:
    """The scores X~ theta of every row (log-odds, decision values), shape (K, N)."""
    return torch.einsum("knd,kd->kn", problem.design, theta)


def _value(problem: _Problem, theta: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """f_k at ``theta`` whose scores are ``s``, shape (K,); padded rows weigh 0."""
    losses = problem.loss.value(s, problem.labels)
    data = (problem.rows * losses).sum(dim=1) / problem.counts
    return data + 0.5 * (problem.penalty * theta**2).sum(dim=1)


def objective(problem: _Problem, theta: torch.Tensor) -> torch.Tensor:
    """f_k(theta_k) for every model, shape (K,)."""
    return _value(problem, theta, _scores(problem, theta))


def _gradient(problem: _Problem, theta: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Gradient (K, d + 1) of f at ``theta``, ``s`` the scores there."""
    residual = problem.rows * problem.loss.slope(s, problem.labels) / problem.counts[:, None]
    return torch.einsum("knd,kn->kd", problem.design, residual) + problem.penalty * theta


def gradient_norm(problem: _Problem, theta: torch.Tensor) -> torch.Tensor:
    """Largest absolute partial derivative of f_k at ``theta``, shape (K,)."""
    return _gradient(problem, theta, _scores(problem, theta)).abs().amax(dim=1)


def _derivatives(
    problem: _Problem, theta: torch.Tensor, s: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient (K, d + 1) and Hessian (K, d + 1, d + 1) of f at ``theta`` (scores ``s``)."""
    gradient = _gradient(problem, theta, s)
    curvature = problem.rows * problem.loss.curvature(s, problem.labels)
    curvature = curvature / problem.counts[:, None]
    hessian = problem.design.transpose(1, 2) @ (problem.design * curvature[:, :, None])
    hessian = hessian + torch.diag_embed(problem.penalty)
    return gradient, hessian


def _newton_direction(gradient: torch.Tensor, hessian: torch.Tensor) -> torch.Tensor:
    """Step 2: -H^{-1} g by a batched Cholesky solve (steepest descent where it fails)."""
    diagonal = torch.diagonal(hessian, dim1=1, dim2=2)
    damping = DAMPING * diagonal.amax(dim=1).clamp_min(1e-300)
    eye = torch.eye(hessian.shape[-1], dtype=DTYPE)
    factor, info = torch.linalg.cholesky_ex(hessian + damping[:, None, None] * eye)
    direction = -gradient.clone()
    good = info == 0
    if bool(good.any()):
        solved = torch.cholesky_solve(-gradient[good][:, :, None], factor[good])
        direction[good] = solved[:, :, 0]
    return direction


def _line_search(
    problem: _Problem,
    theta: torch.Tensor,
    s: torch.Tensor,
    direction: torch.Tensor,
    gradient: torch.Tensor,
    active: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Step 3: the step length t (K,) of every model and whether a step was found (K,).

    Only the ``active`` models search; the others count as accepted and are left alone. The
    trial scores are ``s + t X~ d``, so a trial costs no product with the design.
    """
    current = _value(problem, theta, s)
    slope = (gradient * direction).sum(dim=1)
    slack = 8.0 * torch.finfo(DTYPE).eps * current.abs()
    change = _scores(problem, direction)
    step = torch.ones_like(current)
    accepted = ~active
    for _ in range(HALVINGS):
        trial = _value(problem, theta + step[:, None] * direction, s + step[:, None] * change)
        accepted |= trial <= current + ARMIJO * step * slope + slack
        if bool(accepted.all()):
            break
        step = torch.where(accepted, step, step / 2)
    return step, accepted


def fit_linear(
    samples: Sequence[tuple[np.ndarray, np.ndarray]],
    penalty: float | Sequence[float],
    *,
    loss: Loss,
    tol: float,
    max_iter: int,
    start: np.ndarray | None = None,
) -> NewtonResult:
    """Minimise f_k for K samples at once (see the module docstring).

    The models are solved in batches whose stacked design stays within :data:`BATCH_BYTES`;
    they do not interact, so the batching changes nothing but the memory and time taken.

    Parameters
    ----------
    samples : sequence of (X, y)
        K samples, X of shape (n_k, d) (the same d) and 0/1 labels y of shape (n_k,).
    penalty : float or sequence of float
        lam, the L2 strength, one for all models or one per model (>= 0).
    loss : Loss
        :data:`LOGISTIC` or :data:`SQUARED_HINGE`.
    tol : float
        A model stops once no partial derivative of its f exceeds ``tol`` in absolute value.
    max_iter : int
        Newton iterations at most (0 returns ``start``).
    start : ndarray (K, d + 1) or None
        Starting (w, b) of each model; None starts from zero.

    Returns
    -------
    NewtonResult
        The parameters, iterations and final gradient norms.
    """
    widths = {np.shape(X)[1] for X, _ in samples}
    if len(widths) != 1:
        raise ValueError(f"samples need one number of columns (and at least one), got {widths}")
    K = len(samples)
    lam = np.broadcast_to(np.asarray(penalty, dtype=float), (K,))
    starts = None if start is None else np.asarray(start, dtype=float).reshape(K, -1)
    parts = [
        _solve(
            _stack([samples[k] for k in chunk], lam[chunk], loss),
            None if starts is None else starts[chunk],
            tol,
            int(max_iter),
        )
        for chunk in _chunks(samples)
    ]
    return NewtonResult(
        *(np.concatenate([getattr(part, name) for part in parts]) for name in _FIELDS)
    )


def fit_logistic(
    samples: Sequence[tuple[np.ndarray, np.ndarray]],
    penalty: float | Sequence[float],
    *,
    tol: float,
    max_iter: int,
    start: np.ndarray | None = None,
) -> NewtonResult:
    """:func:`fit_linear` with the logistic loss (penalty on the weights only)."""
    return fit_linear(samples, penalty, loss=LOGISTIC, tol=tol, max_iter=max_iter, start=start)


_FIELDS = ("coef", "intercept", "iterations", "gradient")
#: The most bytes of stacked design one batch of :func:`fit_linear` holds. Small problems
#: gain from batching (ten German models: 0.026 s batched, 0.043 s one by one), large ones
#: lose once the batch leaves the cache (ten Adult models, 12 MB each: 1.39 s in one batch,
#: 0.70 s one by one; measured on one thread, load 1.8), so a batch holds about 16 MB.
BATCH_BYTES = 2**24


def _chunks(samples: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[list[int]]:
    """Consecutive model indices, as many per batch as :data:`BATCH_BYTES` allows (>= 1)."""
    width = np.shape(samples[0][0])[1] + 1
    rows = max(len(y) for _, y in samples)
    per_batch = max(1, BATCH_BYTES // (8 * width * max(rows, 1)))
    return [
        list(range(k, min(k + per_batch, len(samples)))) for k in range(0, len(samples), per_batch)
    ]


def _solve(problem: _Problem, start: np.ndarray | None, tol: float, max_iter: int) -> NewtonResult:
    """Steps 2 to 4 for one batch of stacked models."""
    K, width = problem.design.shape[0], problem.design.shape[2]
    theta = torch.zeros((K, width), dtype=DTYPE)
    if start is not None:
        theta = torch.as_tensor(np.array(start, dtype=float).reshape(K, width), dtype=DTYPE)
    iterations = torch.zeros(K, dtype=torch.long)
    stalled = torch.zeros(K, dtype=torch.bool)
    for _ in range(max_iter):
        s = _scores(problem, theta)
        gradient, hessian = _derivatives(problem, theta, s)
        active = ~stalled & (gradient.abs().amax(dim=1) > tol)
        if not bool(active.any()):
            break
        direction = _newton_direction(gradient, hessian)
        step, accepted = _line_search(problem, theta, s, direction, gradient, active)
        moving = active & accepted
        theta = torch.where(moving[:, None], theta + step[:, None] * direction, theta)
        iterations += moving.long()
        stalled |= active & ~accepted
    largest = gradient_norm(problem, theta)
    log.debug("newton: iterations %s, largest gradient %s", iterations.tolist(), largest.tolist())
    out = theta.numpy()
    return NewtonResult(
        coef=out[:, :-1].copy(),
        intercept=out[:, -1].copy(),
        iterations=iterations.numpy().copy(),
        gradient=largest.numpy().copy(),
    )
