"""RBR: Robust Bayesian Recourse, a KDE-odds surrogate minimised in an L1 ball around the factual.

Nguyen, Bui, Nguyen, Yue and Nguyen (UAI 2022, PMLR 180), "Robust Bayesian Recourse",
arXiv:2206.10833. Reference code read: VinAIResearch/robust-bayesian-recourse@8eaa8c2, files
``rbr/rbr.py`` (boundary search, ball sampling, projected gradient, L1-ball projection),
``rbr/rbr_loss.py`` (the optimistic and pessimistic likelihoods and their inner solvers),
``expt/expt_config.py`` and ``expt/expt_5.py`` (defaults), ``utils/funcs.py`` (max distance).

The method needs only predicted labels and the training data: the gradients it follows are of a
kernel-density surrogate of the model built from labelled samples, never of the model itself, so
it runs on every model (logistic regression, MLP, SVM, forests, boosting).

Algorithm (batched over all factuals x0; ``fit`` keeps the training points the model accepts,
clipped to the schema's bounds, and the training set's largest pairwise L2 distance):

1. boundary point: for every factual, the ``num_cfacts`` accepted training points closest in L1
   after projecting them onto the factual's box (``schema.bounds_for``: immutables pinned,
   directions and bounds kept); along each segment x0 + lam (c - x0), lam in
   linspace(0, 1, ``n_lambdas``), the first grid point whose *snapped* version
   (``schema.snap``: one-hot groups, integer grids) the model accepts gives that candidate's
   boundary point, ranked by lam ||c - x0||_1; the factual keeps the cheapest, snapped: x_b,
   itself a feasible recourse. The budget is delta = ||x_b - x0||_1 + ``delta_plus``. Computed
   exactly but cheaply: the pairs (candidate, lam) are visited in increasing cost, in blocks for
   all factuals at once, and the first accepted pair is the answer (for one candidate the first
   accepted lam is also its cheapest), so no pair dearer than the answer is evaluated;
2. feasible set: ``num_samples`` points uniform in the L2 ball of radius
   r = ``perturb_radius`` x (largest pairwise L2 distance of the training set) around x_b, over
   the row's free coordinates (mutable and not pinned by a direction) only: direction
   N(0, I) normalised, radius r U^(1/k) with k the number of free coordinates. The model's
   labels split them into positives X+ and negatives X-. One (n, num_samples, d) tensor;
3. surrogate, with c = ||x - x_s||_2 and p = k (the kernel's dimension)::

       F(x) = logsumexp_{x- in X-} ( -L_op(v*, c) ) - logsumexp_{x+ in X+} ( L_pe(u*, c) )
       L_op(v) = log(v2 + s) + (c - v1)^2 / (2 (v2 + s)^2) + (p - 1) log s
       L_pe(u) = -log(u2 + s) - (c + sqrt(p) u1)^2 / (2 (u2 + s)^2) - (p - 1) log(f + s),
       f = sqrt((1e-6 + eps_pe^2 - p u1^2 - u2^2) / (p - 1))

   with s = ``sigma``; v* minimises L_op over {v >= 0, ||v||_2 <= eps_op} and u* minimises
   L_pe over {u >= 0, ||u||_2 <= eps_pe / sqrt(p)}, per sample, by projected gradient (step
   1/sqrt(``inner_max_iter``), halved for a sample whose loss the step would raise; at most
   ``inner_max_iter`` steps, a row stopping after 10 steps whose summed loss did not decrease
   by more than 1e-10), then held fixed (detached) while F is differentiated in x. With
   eps_op = eps_pe = 0 (the defaults) v* = u* = 0 exactly and the solvers are skipped: F is
   then the Gaussian-KDE log-odds, log sum_{X-} exp(-c^2 / 2 s^2) - log sum_{X+}
   exp(-c^2 / 2 s^2), plus a constant (:func:`rbr_surrogate`);
4. outer loop, all rows at once, each stopping on its own: from x = x_b, for at most
   ``max_iter`` steps: stop the row once ||x - x0||_1 >= delta; otherwise
   x <- x0 + P_delta(x - ``step_size`` grad F(x) - x0) (gradient zero on frozen coordinates;
   P_delta the Euclidean projection onto the L1 ball of radius delta, Duchi et al.'s sort-based
   algorithm, :func:`project_l1_ball`), then clip to the row's box (which contains x0, so
   the point stays in the L1 ball); the row also stops after 10 steps in a row in which F did
   not decrease by more than 1e-10;
5. snap the final points to the schema (``schema.snap``: one-hot groups, integer grids) and
   return NaN where the model rejects the snapped point. A factual the model already accepts
   is its own recourse; a factual with no boundary point (no accepted point on any segment)
   gets NaN.

Hyperparameters and defaults (VinAI's ``Expt5``): ``delta_plus=0.2``, ``sigma=1.0``,
``epsilon_op=0.0``, ``epsilon_pe=0.0``, ``num_samples=200``, ``perturb_radius=0.2`` (times the
largest pairwise L2 distance of the training set), ``max_iter=500``, ``num_cfacts=1000`` (fixed
in ``generate_recourse``), ``n_lambdas=100`` and ``step_size=1/sqrt(1000)`` (constants of their
code), ``inner_max_iter=1000`` (their inner solvers' constant), ``random_state=None``.

Differences from the authors' code, with the reasons:

- the schema: the candidates are projected onto the factual's box before the line search, the
  ball is sampled over the free coordinates only (so p is their number, not d), the gradient is
  zero on frozen coordinates and every iterate is clipped to the box; the result is snapped
  (one-hot groups, integer grids) and re-checked. Their ``reconstruct_encoding_constraints`` is
  never called; every recourse of this benchmark must keep the schema;
- the line search judges snapped grid points and the descent starts from the snapped boundary
  point. Judging the raw interpolations (theirs) puts x_b at fractional one-hot values that
  snapping reverts: on German (100 rejected test factuals) no snapped x_b was accepted by the
  logistic model and 15 % by the MLP, and only 32 % / 71 % of the final recourses survived
  snapping, against 83 % / 86 % this way. The one-hot relaxation is only clipped to [0, 1]
  during the descent (a simplex projection could leave the L1 ball);
- the pessimistic gradient: their analytic d L_pe / d u1 has the wrong sign on the term from
  -(p - 1) log(f + s) (it is +p u1 / (f (f + s)), theirs -p u1 / (f (f + s))); we use the
  correct derivative (tested against autograd and ``scipy.optimize.minimize``). Irrelevant at
  the default eps_pe = 0;
- the inner step halves for a sample whose loss it would raise: with the correct gradient the
  pessimistic loss has an infinite slope where f -> 0 (the boundary of its set), and the fixed
  step 1/sqrt(1000) cycles there (0 -> 0.19 -> 0.3 -> 0 for c = 3, p = 4, eps_pe = 0.6) and
  stops at a point 0.27 above the constrained minimum found by SLSQP;
- an empty side of the ball (no negative or no positive sample) contributes a constant 0 to F
  instead of -inf (theirs then yields NaN gradients), so the other side alone drives the step;
- the stopping test ||x - x0||_1 >= delta allows 1e-12 of rounding (a point projected onto the
  sphere may land a hair inside it and take further useless steps otherwise);
- the largest pairwise distance is exact for up to 4,096 training rows (their double loop is
  exact); beyond that it is the diameter of 4,096 evenly spaced rows raised by four farthest-point
  sweeps over all rows (a lower bound at least half the true value, and in practice close);
- the boundary search visits (candidate, lam) pairs in order of cost instead of candidate by
  candidate; the result is the same (ties go to the nearer candidate, as theirs), the work is
  much smaller. lam = 0 (the factual, which the model rejects) is not evaluated;
- float64 throughout (theirs float32); one generator stream for the whole batch (so a factual's
  samples depend on the other rows: ``batch_invariant`` is False).

Cost: with the defaults, about 15 s per 100 German factuals on one CPU thread (the line search
and the 500 outer steps about half each; most rows use all 500 steps, as F keeps decreasing
inside the L1 ball). Positive radii add two inner solves per outer step and are much slower.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..api import Classifier, Interval, MethodTags, RecourseMethod, Schema, Splits
from ..models._torch import as_tensor
from ..registry import register
from ..seeding import generator_for
from ._search import accepts

STABLE_STEPS = 10  # steps without a decrease > MIN_DECREASE before a row stops (authors')
MIN_DECREASE = 1e-10
ZETA = 1e-6  # the authors' constant inside f of the pessimistic likelihood
EXACT_DISTANCE_ROWS = 4096
BLOCK_ELEMENTS = 2**22  # float64 values per block of the boundary search (32 MB)
_TINY = 1e-30


# ------------------------------------------------------------------------------ geometry
def max_pairwise_distance(X: np.ndarray, exact_rows: int = EXACT_DISTANCE_ROWS) -> float:
    """Largest L2 distance between two rows of ``X``.

    Exact for at most ``exact_rows`` rows. For more, the diameter of ``exact_rows`` evenly
    spaced rows, raised by four farthest-point sweeps over all rows from the ends of that pair:
    a deterministic lower bound, at least half of the true value.
    """
    X_t = as_tensor(np.asarray(X, dtype=float))
    n = len(X_t)
    if n < 2:
        return 0.0
    rows = np.arange(n) if n <= exact_rows else np.linspace(0, n - 1, exact_rows).astype(int)
    S = X_t[rows]
    best, end = 0.0, int(rows[0])
    chunk = max(1, BLOCK_ELEMENTS // len(S))
    for start in range(0, len(S), chunk):
        D = torch.cdist(S[start : start + chunk], S, compute_mode="donot_use_mm_for_euclid_dist")
        value, flat = D.max(), int(D.argmax())
        if float(value) > best:
            best, end = float(value), int(rows[start + flat // len(S)])
    if n > exact_rows:
        for _ in range(4):  # from one end, the farthest point of the whole data, and back
            D = torch.linalg.vector_norm(X_t - X_t[end], dim=1)
            end = int(D.argmax())
            best = max(best, float(D[end]))
    return best


def project_l1_ball(V: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Euclidean projection of every row of ``V`` (n, d) onto the L1 ball of ``radius`` (n,).

    Duchi, Shalev-Shwartz, Singer and Chandra (ICML 2008), sort-based: rows already inside are
    returned unchanged; the others are soft-thresholded, |v| - theta clipped at 0 with their
    signs, theta chosen so that the L1 norm equals the radius. A radius of 0 gives 0.
    """
    radius = torch.as_tensor(radius, dtype=V.dtype).reshape(-1)
    magnitude = V.abs()
    mu, _ = torch.sort(magnitude, dim=1, descending=True)
    cumulative = mu.cumsum(dim=1)
    k = torch.arange(1, V.shape[1] + 1, dtype=V.dtype)
    support = mu * k > cumulative - radius[:, None]  # true on a prefix of the sorted entries
    rho = support.sum(dim=1, keepdim=True).clamp(min=1)
    theta = (cumulative.gather(1, rho - 1) - radius[:, None]) / rho.to(V.dtype)
    projected = torch.sign(V) * torch.clamp(magnitude - theta, min=0.0)
    projected = torch.where(radius[:, None] > 0, projected, torch.zeros_like(V))
    inside = magnitude.sum(dim=1) <= radius
    return torch.where(inside[:, None], V, projected)


def lambda_grid(n_lambdas: int) -> np.ndarray:
    """The authors' line-search grid, ``linspace(0, 1, n_lambdas)``."""
    return np.linspace(0.0, 1.0, int(n_lambdas))


def find_boundary(
    model: Classifier,
    X: np.ndarray,
    candidates: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    num_cfacts: int,
    n_lambdas: int,
    schema: Schema | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The L1-closest accepted point on the segments from each factual to its candidates.

    Parameters
    ----------
    model : Classifier
        Only ``predict_proba`` is used.
    X : ndarray (n, d)
        Factuals.
    candidates : ndarray (m, d)
        Accepted training points.
    lower, upper : ndarray (n, d)
        Each factual's box; candidates are clipped into it before the line search.
    num_cfacts : int
        Candidates per factual: the L1-closest after clipping.
    n_lambdas : int
        Size of the grid ``linspace(0, 1, n_lambdas)`` on each segment.
    schema : Schema, optional
        If given, every grid point is snapped (``schema.snap``) before the model sees it, and
        the boundary points are returned snapped; the pairs are still ranked by the distance
        lam_j ||c - x0||_1 of the grid point before snapping.

    Returns
    -------
    X_b : ndarray (n, d)
        Boundary points x0 + lam_j (c - x0), snapped if ``schema`` is given (NaN rows where
        none was found).
    found : bool ndarray (n,)
    step : int ndarray (n,)
        Index j of lam_j in the grid (-1 where none was found).
    target : ndarray (n, d)
        The clipped candidate c of each boundary point (NaN rows where none was found).
    """
    n, d = X.shape
    lam = torch.as_tensor(lambda_grid(n_lambdas))[1:]  # lam = 0 is the rejected factual
    G = len(lam)
    X_b = np.full((n, d), np.nan)
    target = np.full((n, d), np.nan)
    step = np.full(n, -1)
    if n == 0 or len(candidates) == 0 or G == 0:
        return X_b, np.zeros(n, dtype=bool), step, target
    C = as_tensor(candidates)
    k = min(int(num_cfacts), len(C))
    lo_all, hi_all = as_tensor(lower), as_tensor(upper)
    X_all = as_tensor(X)
    # columns where some factual's box is tighter than the candidates' range need a clip per
    # row; on the others the clipped distance is a plain L1 distance (immutables contribute 0)
    moving = (lo_all < hi_all).any(dim=0)
    tight = moving & (
        (lo_all > C.min(dim=0).values).any(dim=0) | (hi_all < C.max(dim=0).values).any(dim=0)
    )
    plain = moving & ~tight
    tight_cols = torch.nonzero(tight).flatten().tolist()
    rows_per_chunk = max(1, min(BLOCK_ELEMENTS // len(C), BLOCK_ELEMENTS // (k * G)))
    for start in range(0, n, rows_per_chunk):
        rows = slice(start, start + rows_per_chunk)
        x, lo, hi = X_all[rows], lo_all[rows], hi_all[rows]
        D = torch.cdist(x[:, plain], C[:, plain], p=1.0) if plain.any() else 0 * x[:, :1]
        D = D.expand(len(x), len(C)).clone()
        for j in tight_cols:
            clipped = torch.minimum(torch.maximum(C[None, :, j], lo[:, j, None]), hi[:, j, None])
            D += (clipped - x[:, j, None]).abs()
        D_k, index = torch.topk(D, k, dim=1, largest=False, sorted=True)
        D_k = torch.where(D_k > 0, D_k, torch.full_like(D_k, torch.inf))  # c == x0: no segment
        cost = (D_k[:, :, None] * lam).reshape(len(x), k * G)
        sorted_cost, order = torch.sort(cost, dim=1, stable=True)
        _line_search(
            model, schema, x, lo, hi, C, index, sorted_cost, order, lam, start, X_b, step, target
        )
    return X_b, step >= 0, step, target


def _line_search(
    model: Classifier,
    schema: Schema | None,
    x: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
    C: torch.Tensor,
    index: torch.Tensor,
    sorted_cost: torch.Tensor,
    order: torch.Tensor,
    lam: torch.Tensor,
    offset: int,
    X_b: np.ndarray,
    step: np.ndarray,
    target: np.ndarray,
) -> None:
    """Visit each row's (candidate, lam) pairs by increasing cost until the model accepts one."""
    d = x.shape[1]
    G = len(lam)
    total = order.shape[1]
    active = torch.isfinite(sorted_cost[:, 0])
    position, block = 0, 64
    while active.any() and position < total:
        rows = torch.nonzero(active).flatten()
        width = min(block, total - position, max(1, BLOCK_ELEMENTS // (len(rows) * d)))
        pairs = order[rows, position : position + width]
        usable = torch.isfinite(sorted_cost[rows, position : position + width])
        which, grid = pairs // G, pairs % G
        c = C[index[rows[:, None], which]]  # (r, width, d)
        c = torch.minimum(torch.maximum(c, lo[rows, None, :]), hi[rows, None, :])
        t = lam[grid][..., None]
        points = x[rows, None, :] + t * (c - x[rows, None, :])
        if schema is not None:
            points = _snap_inside(points, schema, lo[rows, None, :], hi[rows, None, :])
        flip = torch.zeros(usable.shape, dtype=torch.bool)
        flat = points[usable].numpy()
        flip[usable] = torch.as_tensor(accepts(model, flat))
        hit = flip.any(dim=1)
        first = flip.to(torch.uint8).argmax(dim=1)
        for name, value in (("points", points), ("c", c)):
            chosen = value[torch.arange(len(rows)), first][hit].numpy()
            out = X_b if name == "points" else target
            out[offset + rows[hit].numpy()] = chosen
        step[offset + rows[hit].numpy()] = grid[torch.arange(len(rows)), first][hit].numpy() + 1
        active[rows[hit]] = False
        active[rows[~usable.all(dim=1)]] = False  # past its last finite pair: nothing flips
        position += width
        block = min(2 * block, 4096)


def _snap_inside(
    Z: torch.Tensor, schema: Schema, lo: torch.Tensor, hi: torch.Tensor
) -> torch.Tensor:
    """``schema.snap`` for points already inside their box (lo, hi broadcast to ``Z``), in torch.

    Rounds grid columns (clipped back into the box) and each one-hot group to its first largest
    member, as ``schema.snap`` does; faster on the line search's large batches.
    """
    shape = Z.shape
    d = shape[-1]
    Z = Z.reshape(-1, d).clone()
    steps = np.asarray(schema.steps, dtype=float)
    grid = np.flatnonzero(steps > 0)
    if grid.size:
        step_t = torch.as_tensor(steps[grid])
        base = torch.as_tensor(schema.lower_array[grid])
        rounded = base + torch.round((Z[:, grid] - base) / step_t) * step_t
        lo_g = lo.expand(shape).reshape(-1, d)[:, grid]
        hi_g = hi.expand(shape).reshape(-1, d)[:, grid]
        Z[:, grid] = torch.minimum(torch.maximum(rounded, lo_g), hi_g)
    if schema.groups:
        groups = [list(g) for g in schema.groups]
        width = max(len(g) for g in groups)
        index = torch.tensor([g + [g[0]] * (width - len(g)) for g in groups])
        member = torch.tensor([[i < len(g) for i in range(width)] for g in groups])
        blocks = Z[:, index].masked_fill(~member, -torch.inf)  # (N, groups, width)
        winner = blocks.argmax(dim=2, keepdim=True)
        onehot = (torch.arange(width) == winner).to(Z.dtype)
        Z[:, index[member]] = onehot[:, member]
    return Z.reshape(shape)


def sample_ball(
    centres: np.ndarray,
    free: np.ndarray,
    radius: float,
    num_samples: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Offsets (n, num_samples, d) uniform in the L2 ball of ``radius`` around each row.

    Only the row's ``free`` coordinates move (the offsets are zero elsewhere), and the ball has
    their dimension; add the offsets to ``centres`` for the points.
    """
    n, d = centres.shape
    free_t = torch.as_tensor(free, dtype=torch.float64)
    k = free_t.sum(dim=1).clamp(min=1.0)
    direction = torch.randn((n, num_samples, d), generator=generator, dtype=torch.float64)
    direction = direction * free_t[:, None, :]
    norm = torch.linalg.vector_norm(direction, dim=2, keepdim=True).clamp(min=_TINY)
    u = torch.rand((n, num_samples), generator=generator, dtype=torch.float64)
    length = radius * u ** (1.0 / k[:, None])
    return direction / norm * length[..., None]


# ----------------------------------------------------------------------------- surrogate
def optimistic_loss(
    v: torch.Tensor, c: torch.Tensor, sigma: float, p: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """L_op(v; c) and its gradient in v (last axis: v1, v2)."""
    dd = v[..., 1] + sigma
    gap = c - v[..., 0]
    loss = torch.log(dd) + gap**2 / (2 * dd**2) + (p - 1) * math.log(sigma)
    grad = torch.stack([-gap / dd**2, 1 / dd - gap**2 / dd**3], dim=-1)
    return loss, grad


def pessimistic_loss(
    u: torch.Tensor, c: torch.Tensor, sigma: float, eps: float, p: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """L_pe(u; c) and its (correct) gradient in u (last axis: u1, u2).

    The -(p - 1) log(f + sigma) term is absent where p = 1 (no other dimension).
    """
    dd = u[..., 1] + sigma
    root_p = torch.sqrt(p)
    gap = c + root_p * u[..., 0]
    loss = -torch.log(dd) - gap**2 / (2 * dd**2)
    g1 = -root_p * gap / dd**2
    g2 = -1 / dd + gap**2 / dd**3
    many = p > 1
    rest = torch.where(many, p - 1, torch.ones_like(p))
    inner = (ZETA + eps**2 - p * u[..., 0] ** 2 - u[..., 1] ** 2).clamp(min=_TINY) / rest
    f = torch.sqrt(inner)
    zero = torch.zeros_like(loss)
    loss = loss - torch.where(many, (p - 1) * torch.log(f + sigma), zero)
    g1 = g1 + torch.where(many, p * u[..., 0] / (f * (f + sigma)), zero)
    g2 = g2 + torch.where(many, u[..., 1] / (f * (f + sigma)), zero)
    return loss, torch.stack([g1, g2], dim=-1)


def _project_inner(w: torch.Tensor, radius: float | torch.Tensor) -> torch.Tensor:
    """Projection onto {w >= 0, ||w||_2 <= radius} (clip, then scale into the ball).

    ``w`` is (n, S, 2); ``radius`` a number or a tensor of one radius per row, (n, 1).
    """
    if isinstance(radius, torch.Tensor):
        radius = radius.reshape(-1, 1, 1)
    w = w.clamp(min=0.0)
    norm = torch.linalg.vector_norm(w, dim=-1, keepdim=True)
    scale = torch.where(norm > radius, radius / norm.clamp(min=_TINY), torch.ones_like(norm))
    return w * scale


def solve_inner(
    loss_fn,
    c: torch.Tensor,
    mask: torch.Tensor,
    radius: float | torch.Tensor,
    max_iter: int,
) -> torch.Tensor:
    """Projected gradient on the 2-vector of every sample, rows stopping on their own.

    ``loss_fn(w, c)`` returns the per-sample loss (n, S) and its gradient (n, S, 2); a row stops
    after :data:`STABLE_STEPS` steps whose loss summed over its samples in ``mask`` did not
    decrease by more than :data:`MIN_DECREASE` (the authors' rule). The step is
    1/sqrt(max_iter) (the authors'), halved for a sample whose loss it would raise and doubled
    back (up to 1/sqrt(max_iter)) after a step it takes.
    """
    n, S = c.shape
    w = torch.zeros((n, S, 2), dtype=c.dtype)
    rate = 1.0 / math.sqrt(max_iter)
    step = torch.full((n, S, 1), rate, dtype=c.dtype)
    loss, grad = loss_fn(w, c)
    best = torch.full((n,), torch.inf, dtype=c.dtype)
    stable = torch.zeros(n, dtype=torch.long)
    moving = torch.ones(n, dtype=torch.bool)
    for _ in range(int(max_iter)):
        trial = _project_inner(w - step * grad, radius)
        trial_loss, trial_grad = loss_fn(trial, c)
        # a sample takes the step only if its loss does not rise; otherwise its step halves
        # (near the boundary of the pessimistic set f -> 0 and the fixed step would cycle)
        ok = (trial_loss <= loss) & moving[:, None]
        w = torch.where(ok[..., None], trial, w)
        loss = torch.where(ok, trial_loss, loss)
        grad = torch.where(ok[..., None], trial_grad, grad)
        step = torch.where(ok[..., None], (2 * step).clamp(max=rate), step / 2)
        total = (loss * mask).sum(dim=1)
        stable = torch.where(best - total <= MIN_DECREASE, stable + 1, torch.zeros_like(stable))
        best = torch.minimum(best, total)
        moving &= stable < STABLE_STEPS
        if not moving.any():
            break
    return w


def _masked_logsumexp(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Row-wise logsumexp over the entries in ``mask``; 0 (a constant) for an empty row."""
    empty = ~mask.any(dim=1)
    filled = torch.where(mask, values, torch.full_like(values, -torch.inf))
    filled = torch.where(empty[:, None], torch.zeros_like(values), filled)
    return torch.where(empty, torch.zeros_like(empty, dtype=values.dtype), filled.logsumexp(1))


def rbr_surrogate(
    y: torch.Tensor,
    offsets: torch.Tensor,
    positive: torch.Tensor,
    p: torch.Tensor,
    sigma: float,
    epsilon_op: float = 0.0,
    epsilon_pe: float = 0.0,
    inner_max_iter: int = 1000,
    offsets_sq: torch.Tensor | None = None,
) -> torch.Tensor:
    """RBR's objective F (n,) at the points x = x_b + y, differentiable in ``y``.

    Parameters
    ----------
    y : tensor (n, d)
        Points relative to their ball's centre x_b.
    offsets : tensor (n, S, d)
        The ball's samples relative to x_b.
    positive : bool tensor (n, S)
        Samples the model accepts (X+); the others are X-.
    p : tensor (n,)
        Dimension of each row's kernel.
    sigma, epsilon_op, epsilon_pe : float
        Kernel bandwidth and the radii of the optimistic and pessimistic ambiguity sets.
    inner_max_iter : int
        Budget of the inner solvers (unused when both radii are 0).
    offsets_sq : tensor (n, S), optional
        The squared norms of ``offsets`` if already computed.

    Returns
    -------
    tensor (n,)
        logsumexp_{X-}(-L_op) - logsumexp_{X+}(L_pe), the inner solutions held fixed. With
        both radii 0 this is log sum_{X-} exp(-c^2/2s^2) - log sum_{X+} exp(-c^2/2s^2) + (p - 1)
        log(1 + sqrt(1e-6/(p - 1)) / s) (the last term absent where p = 1).
    """
    p_col = p[:, None]
    # squared distances to the samples, ||y||^2 - 2 y.o + ||o||^2, as one batched product
    c2 = (y * y).sum(dim=1, keepdim=True) - 2 * torch.bmm(offsets, y[:, :, None]).squeeze(2)
    if offsets_sq is None:
        offsets_sq = (offsets * offsets).sum(dim=2)
    c2 = (c2 + offsets_sq).clamp(min=0.0)
    if epsilon_op > 0 or epsilon_pe > 0:
        c = torch.sqrt(c2 + _TINY)
        c_fixed = c.detach()
    if epsilon_op > 0:
        v = solve_inner(
            lambda w, cc: optimistic_loss(w, cc, sigma, p_col),
            c_fixed,
            ~positive,
            epsilon_op,
            inner_max_iter,
        )
        op, _ = optimistic_loss(v, c, sigma, p_col)
    else:  # v* = 0: L_op = log s + c^2 / 2s^2 + (p - 1) log s, written with c^2 (no sqrt)
        op = math.log(sigma) + c2 / (2 * sigma**2) + (p_col - 1) * math.log(sigma)
    if epsilon_pe > 0:
        u = solve_inner(
            lambda w, cc: pessimistic_loss(w, cc, sigma, epsilon_pe, p_col),
            c_fixed,
            positive,
            epsilon_pe / torch.sqrt(p_col),
            inner_max_iter,
        )
        pe, _ = pessimistic_loss(u, c, sigma, epsilon_pe, p_col)
    else:
        zero = torch.zeros((*c2.shape, 2), dtype=c2.dtype)
        constant, _ = pessimistic_loss(zero, torch.zeros_like(c2), sigma, 0.0, p_col)
        pe = constant - c2 / (2 * sigma**2)
    return _masked_logsumexp(-op, ~positive) - _masked_logsumexp(pe, positive)


# -------------------------------------------------------------------------------- method
@register("method", "rbr")
class RBR(RecourseMethod):
    """Minimise a robust KDE log-odds surrogate of the model in an L1 ball around the factual.

    Parameters
    ----------
    delta_plus : float, default 0.2
        Budget added to the boundary point's L1 distance: delta = ||x_b - x0||_1 + delta_plus.
    sigma : float, default 1.0
        Bandwidth of the Gaussian kernel.
    epsilon_op, epsilon_pe : float, default 0.0
        Radii of the optimistic (negatives) and pessimistic (positives) ambiguity sets; 0 gives
        the plain KDE log-odds.
    num_samples : int, default 200
        Points sampled in the ball around the boundary point.
    perturb_radius : float, default 0.2
        Radius of that ball as a fraction of the largest pairwise L2 distance of the training
        set.
    max_iter : int, default 500
        Most projected-gradient steps of the outer loop (0 returns the boundary point).
    num_cfacts : int, default 1000
        Accepted training points per factual whose segments are line-searched.
    n_lambdas : int, default 100
        Grid points on each segment (``linspace(0, 1, n_lambdas)``).
    step_size : float, default 1/sqrt(1000)
        Step of the outer projected gradient (the authors' constant).
    inner_max_iter : int, default 1000
        Most steps of each inner solver (used only with a positive epsilon).
    random_state : int or None, default None
        Seeds the generator of the ball samples (one stream for the whole batch).

    Attributes
    ----------
    candidates_ : ndarray (m, d)
        Accepted training points, clipped to the schema's bounds.
    max_distance_ : float
        Largest pairwise L2 distance of the training points (see :func:`max_pairwise_distance`).

    Notes
    -----
    Rows whose snapped result the model rejects, and rows without a boundary point, are NaN.
    """

    tags = MethodTags(trains=True, stochastic=True)

    parameter_constraints = {
        "delta_plus": (Interval("float", low=0),),
        "sigma": (Interval("float", low=0, open_low=True),),
        "epsilon_op": (Interval("float", low=0),),
        "epsilon_pe": (Interval("float", low=0),),
        "num_samples": (Interval("int", low=1),),
        "perturb_radius": (Interval("float", low=0, open_low=True),),
        "max_iter": (Interval("int", low=0),),
        "num_cfacts": (Interval("int", low=1),),
        "n_lambdas": (Interval("int", low=2),),
        "step_size": (Interval("float", low=0, open_low=True),),
        "inner_max_iter": (Interval("int", low=1),),
        "random_state": (Interval("int"), None),
    }

    _test_params = {"num_samples": 50, "max_iter": 50, "num_cfacts": 50}

    def __init__(
        self,
        delta_plus: float = 0.2,
        sigma: float = 1.0,
        epsilon_op: float = 0.0,
        epsilon_pe: float = 0.0,
        num_samples: int = 200,
        perturb_radius: float = 0.2,
        max_iter: int = 500,
        num_cfacts: int = 1000,
        n_lambdas: int = 100,
        step_size: float = 1 / math.sqrt(1000),
        inner_max_iter: int = 1000,
        random_state: int | None = None,
    ):
        self.delta_plus = delta_plus
        self.sigma = sigma
        self.epsilon_op = epsilon_op
        self.epsilon_pe = epsilon_pe
        self.num_samples = num_samples
        self.perturb_radius = perturb_radius
        self.max_iter = max_iter
        self.num_cfacts = num_cfacts
        self.n_lambdas = n_lambdas
        self.step_size = step_size
        self.inner_max_iter = inner_max_iter
        self.random_state = random_state

    def fit(self, model: Classifier, splits: Splits) -> RBR:
        """Keep the accepted training points and the training set's largest distance."""
        super().fit(model, splits)
        X = np.asarray(splits.X_train, dtype=float)
        schema = splits.schema
        accepted = X[accepts(model, X)]
        self.candidates_ = np.clip(accepted, schema.lower_array, schema.upper_array)
        self.max_distance_ = max_pairwise_distance(X)
        return self

    def generate(self, X: np.ndarray) -> np.ndarray:
        """Recourses for all rows of ``X`` (NaN rows where none was found)."""
        self.check_fitted()
        X = self.check_factuals(X)
        schema, model = self.schema_, self.model_
        result = np.full_like(X, np.nan)
        own = schema.snap(X, X)
        already = accepts(model, own)
        result[already] = own[already]
        lo, hi = schema.bounds_for(X)
        free = lo < hi
        todo = np.flatnonzero(~already & free.any(axis=1))
        if not todo.size:
            return result

        # 1. boundary points and budgets
        X_b, found, _, _ = find_boundary(
            model,
            X[todo],
            self.candidates_,
            lo[todo],
            hi[todo],
            self.num_cfacts,
            self.n_lambdas,
            schema,
        )
        todo = todo[found]
        if not todo.size:
            return result
        x0, x_b = X[todo], X_b[found]
        delta = np.abs(x_b - x0).sum(axis=1) + float(self.delta_plus)

        # 2. the ball around each boundary point, labelled by the model
        generator = generator_for(self.random_state)
        radius = float(self.perturb_radius) * self.max_distance_
        S = int(self.num_samples)
        offsets = sample_ball(x_b, free[todo], radius, S, generator)
        points = (as_tensor(x_b)[:, None, :] + offsets).reshape(-1, X.shape[1]).numpy()
        positive = torch.as_tensor(accepts(model, points).reshape(len(todo), S))

        # 3-4. projected gradient on the surrogate, all rows at once
        x = self._descend(x0, x_b, delta, offsets, positive, lo[todo], hi[todo], free[todo])

        # 5. snap and keep what the model accepts
        snapped = schema.snap(x, x0)
        valid = accepts(model, snapped)
        result[todo[valid]] = snapped[valid]
        return result

    def _descend(
        self,
        x0: np.ndarray,
        x_b: np.ndarray,
        delta: np.ndarray,
        offsets: torch.Tensor,
        positive: torch.Tensor,
        lo: np.ndarray,
        hi: np.ndarray,
        free: np.ndarray,
    ) -> np.ndarray:
        """The outer loop of step 4; rows stop on the L1 budget or after stable steps."""
        n = len(x0)
        X0, XB = as_tensor(x0), as_tensor(x_b)
        LO, HI = as_tensor(lo), as_tensor(hi)
        FREE = torch.as_tensor(free, dtype=torch.float64)
        DELTA = as_tensor(delta)
        x = XB.clone()
        # the working set: rows still moving, plus stopped ones until it is worth compacting
        work = torch.arange(n)
        samples, labels, dims = offsets, positive, FREE.sum(dim=1)
        norms = (offsets * offsets).sum(dim=2)
        moving = torch.ones(n, dtype=torch.bool)
        best = torch.full((n,), torch.inf, dtype=torch.float64)
        stable = torch.zeros(n, dtype=torch.long)
        with torch.enable_grad():
            for _ in range(int(self.max_iter)):
                if not moving.any():
                    break
                if moving.sum() < 0.75 * len(work):
                    work, samples, labels, dims, norms = (
                        work[moving],
                        samples[moving],
                        labels[moving],
                        dims[moving],
                        norms[moving],
                    )
                    best, stable, moving = best[moving], stable[moving], moving[moving]
                y = (x[work] - XB[work]).requires_grad_(True)
                F = rbr_surrogate(
                    y,
                    samples,
                    labels,
                    dims,
                    float(self.sigma),
                    float(self.epsilon_op),
                    float(self.epsilon_pe),
                    int(self.inner_max_iter),
                    norms,
                )
                (grad,) = torch.autograd.grad(F.sum(), y)
                with torch.no_grad():
                    base, current = X0[work], x[work]
                    reached = (current - base).abs().sum(dim=1) >= DELTA[work] - 1e-12
                    step = moving & ~reached
                    moved = current - float(self.step_size) * grad * FREE[work]
                    moved = base + project_l1_ball(moved - base, DELTA[work])
                    moved = torch.minimum(torch.maximum(moved, LO[work]), HI[work])
                    x[work] = torch.where(step[:, None], moved, current)
                    value = F.detach()
                    stable = torch.where(best - value <= MIN_DECREASE, stable + 1, 0)
                    best = torch.minimum(best, value)
                    moving = step & (stable < STABLE_STEPS)
        return x.numpy()
