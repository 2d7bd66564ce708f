"""Actionable Recourse (AR): the cheapest action on a grid that flips a linear classifier, by MILP.

Ustun, Spangher and Liu (FAT* 2019), "Actionable recourse in linear classification"
(arXiv:1809.06514); authors' code: github.com/ustunb/actionable-recourse (``ActionSet``,
``RecourseBuilder``, ``Flipset``). We solve the paper's integer program with the open solver
HiGHS through ``scipy.optimize.milp`` (the authors use CPLEX or python-mip/CBC).

The problem, for a factual x and a linear model of the log-odds s(x) = w^T x + b::

    a* = argmin_{a in A(x)} cost(a; x)   subject to   w^T (x + a) + b >= margin

where A(x) is the product of per-feature action grids. Algorithm (every step batched over all
factuals, except the one small program per factual of step 5):

1. ``fit``: the *grid* of every column from the training data, as the authors' ``ActionSet``
   defaults: ``grid_size + 1`` evenly spaced values between the column's 1st and 99th
   training percentiles (``grid_percentiles``; None spans the schema's bounds); an integer or
   ordinal column (``schema.steps``) keeps only values of its own grid, with a stride of
   ceil(range / grid_size / step) steps (the authors' ceiled integer step); a binary column and
   each member of a one-hot group get {0, 1}. The *percentiles* Q_j of every column on its
   grid (only the percentile costs use them): a Gaussian KDE of the training values (scipy's
   ``gaussian_kde`` with Scott's bandwidth, computed over the distinct values) evaluated on the
   grid, cumulated and normalised with 1e-6 buffers at both ends, as the authors do, and
   linearly interpolated in between;
2. the linear model of each factual: a linear classifier's own ``coef_`` and ``intercept_``
   (declared by ``model.linear``; exact AR), otherwise a local linear surrogate of the log-odds
   around x, ``surrogate="lime"`` (default; only ``predict_proba`` is needed, so it runs on
   forests and boosting too) or ``"gradient"`` (differentiable models), both from
   :mod:`._surrogate`, shared with ROAR;
3. the *items* among which a factual chooses, each taking one option or none ("no action"):
   a mutable column outside one-hot groups (its grid values inside the per-row box of
   ``schema.bounds_for``, so immutables, bounds and directions hold) and a one-hot group (its
   levels whose columns all fit the box: exactly one level is active; a group with no level
   set must take one). As the authors' ``drop_suboptimal``, only options that raise the score
   are kept (the others never lower the cost); options whose percentile cost is not positive
   are dropped (the authors' ``bug_idx``: a flat percentile would make a move free);
4. the cost of an option, from the costs of the columns it changes: ``"l1"`` (default)
   sum_j |x'_j - x_j| in model space; ``"max-percentile"`` (the authors' ``'max'``)
   max_j |Q_j(x'_j) - Q_j(x_j)|; ``"total-log-percentile"`` (``'local'``) sum_j
   |log(1 - Q_j(x'_j)) - log(1 - Q_j(x_j))|; ``"total-percentile"`` (``'total'``) sum_j
   |Q_j(x'_j) - Q_j(x_j)|. A one-hot option changes two columns (the old level off, the new
   on): its cost is their sum (for the max, the larger). Exact reductions follow (they never
   remove an optimal action): options dominated within their item (another raises the score
   at least as much for no more cost) go; known actions (every item at its largest raise,
   the best single-item action, the least max cost found by bisection, a Lagrangian action
   and its one-item completions) give an upper bound of the optimum, and Lagrangian
   relaxation of the score constraint (its multiplier bracketed by bisection) a lower bound
   of the objective of any action taking a given option; options whose bound exceeds the
   known action go. A factual whose largest raises together fall short gets NaN;
5. one integer program per remaining factual, over binaries u_ik ("item i takes option k")::

       min  sum_ik c_ik u_ik                       (max cost: t + eps sum_ik c_ik u_ik)
       s.t. sum_k u_ik <= 1 for each item          (= 1 for a group with no level set)
            sum_ik ds_ik u_ik >= margin - s(x)     (ds_ik: the raise of the score)
            t >= sum_k c_ik u_ik for each item     (max cost only)
            sum_ik u_ik <= max_changes             (if set)

   where for the max cost eps is the authors' tie-break, (smallest cost increment within an
   item) / (sum of the items' largest costs), so the max is minimised first and the total
   breaks ties. A program with at most :data:`ENUMERATE_LIMIT` actions left is solved by
   evaluating them all (exact; most factuals on Adult); the others by HiGHS
   (``scipy.optimize.milp``, relative gap 1e-9, so optimal up to HiGHS's absolute gap of
   1e-6);
6. the recourse x + a is checked on the TRUE model: a row it accepts (``predict`` == 1) is
   returned. With a non-linear model, where it rejects the action found under the surrogate,
   a new surrogate is fitted around that action and step 3-6 run again from the factual, up
   to ``refits`` times. Rows still without an accepted action are NaN ("no recourse found").

Hyperparameters and defaults: ``cost="l1"``, ``grid_size=100`` (the authors' relative step
0.01), ``grid_percentiles=(1.0, 99.0)`` (the authors' default bounds), ``margin=1e-4``,
``max_changes=None`` (the authors' ``max_items``: no limit), ``time_limit=None`` (no limit per
program), ``refits=3``, ``surrogate="lime"``, ``n_perturbations=300``, ``lime_scale=0.3``,
``kernel_width=None``, ``lime_alpha=0.1`` (ROAR's LIME settings; see :mod:`.roar` for how they
relate to stock LIME's), ``random_state=None``.

Where we differ from the authors' code:

- default cost: the authors' ``RecourseBuilder`` minimises the max percentile shift and their
  ``Flipset`` the total log-percentile shift; both are offered, but the default is the L1
  distance in model space, as in ROAR's AR baseline (``mip_cost_type='l1'``, the comparison
  this benchmark reproduces) and as every other method here minimises and every report
  measures. The percentile costs also move many features at once, which a surrogate of a
  non-linear model extrapolates badly (on Adult's MLP, 23 % of 1,000 factuals got an accepted
  recourse with the max percentile shift, 92 % with L1);
- solver: HiGHS, free, instead of CPLEX or CBC; the action variables a_j are eliminated (only
  the binaries remain), "no action" is the all-zero choice of an item instead of a variable,
  and the exact reductions of step 4 (ours) and the enumeration of small programs shrink the
  work: on Adult's logistic regression, 1,000 factuals take about 3 s instead of about 40 s
  for one HiGHS call on the full grid each. HiGHS runs without presolve, which was 1.5 to 3
  times faster on these small programs;
- one-hot groups: the authors give each member column its own action (and can bound how many
  are on with ``add_subset_limit_constraint``, off by default); we choose one level per
  group, so exactly one member is 1 in every recourse. ``max_changes`` counts a group as one
  feature;
- margin: the authors require w^T (x + a) + b >= 0; ``margin=1e-4`` (log-odds) keeps the
  recourse accepted by the model despite the solver's feasibility tolerance (1e-7);
- we return only the cheapest action (the first item of the authors' flipset), without the
  "at least one feature changes" constraint (a factual the model accepts is its own recourse);
  features with a zero weight only have "no action" (the authors refuse zero weights);
- non-linear models: the paper is for linear classifiers; as ROAR and CARLA do, we linearise
  other models with LIME, re-implemented batched and on the log-odds scale
  (``._surrogate.lime_surrogate``, shared with ROAR, whose docstring lists the differences with
  stock LIME; CARLA's AR uses stock LIME's coefficients of standardised features and its
  probability intercept as if they were a raw-space score). CARLA walks the flipset until the
  true model accepts an item; we refit the surrogate where the true model rejected the action
  (``refits``; 0 is a single surrogate around the factual): on Adult's MLP, the share of 1,000
  factuals with an accepted recourse rises from about 82 % to 92 %;
- randomness: each row's LIME perturbations come from a stream seeded by ``random_state`` and
  the values of the point linearised around, so a recourse does not depend on the other rows
  of the batch (``batch_invariant``); with a linear model there is no randomness at all.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from ..api import (
    Classifier,
    ConfigError,
    Interval,
    ListOf,
    MethodTags,
    Options,
    RecourseMethod,
    Splits,
)
from ..registry import register
from ._surrogate import gradient_surrogate, lime_surrogate

log = logging.getLogger(__name__)

COSTS = ("l1", "max-percentile", "total-log-percentile", "total-percentile")
SURROGATES = ("lime", "gradient")
#: Buffers of the percentile tables (the authors' ``left_buffer`` and ``right_buffer``).
BUFFER = 1e-6
#: Relative optimality gap asked of HiGHS (its default, 1e-4, would not be exact).
MIP_GAP = 1e-9
#: A factual whose reduced program has at most this many actions is solved by evaluating
#: them all (exact, and much faster than a solver call); larger ones go to HiGHS.
ENUMERATE_LIMIT = 2**16
#: Multiples of the best Lagrange multiplier at which every option's bound is also evaluated.
LAMBDA_FACTORS = (0.0, *np.exp2(np.linspace(-4.0, 4.0, 33)))
#: Slack of the comparisons with the per-row box (grid values are exact; factuals may be not).
TOL = 1e-9


# ----------------------------------------------------------------------- grids and percentiles
def column_grid(
    values: np.ndarray,
    kind: str,
    lower: float,
    upper: float,
    step: float,
    grid_size: int,
    percentiles: tuple[float, float] | None,
    one_hot: bool,
) -> np.ndarray:
    """The sorted action grid of one column (step 1 of the module docstring).

    Parameters
    ----------
    values : ndarray (n,)
        The column's training values.
    kind : str
        Its schema kind.
    lower, upper : float
        Its schema bounds.
    step : float
        Its schema grid step (0 for continuous columns).
    grid_size : int
        Intervals between the grid's end points.
    percentiles : (float, float) or None
        Training percentiles of the end points; None uses ``lower`` and ``upper``.
    one_hot : bool
        Whether the column is a member of a one-hot group (then the grid is {0, 1}).

    Returns
    -------
    ndarray
        The grid, inside [lower, upper].
    """
    if one_hot or kind == "binary":
        return np.unique([lower, upper]).astype(float)
    if percentiles is None:
        lo, hi = lower, upper
    else:
        lo, hi = (float(v) for v in np.percentile(values, percentiles))
        lo, hi = max(lo, lower), min(hi, upper)
    if step > 0:
        first = math.floor((lo - lower) / step + 1e-9)
        last = math.ceil((hi - lower) / step - 1e-9)
        stride = max(1, math.ceil((last - first) / grid_size - 1e-9))
        units = np.arange(first, last + stride, stride)
        grid = lower + units * step
        return np.unique(grid[(grid >= lower - TOL) & (grid <= upper + TOL)])
    return np.unique(np.linspace(lo, hi, int(grid_size) + 1))


def percentile_table(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Percentiles Q of a column on its grid: a Gaussian KDE, cumulated, with 1e-6 buffers.

    The KDE is scipy's ``gaussian_kde`` with its default (Scott's) bandwidth, std(ddof=1) *
    n ** (-1/5), computed over the distinct training values (a one-hot column has two); its
    density on the grid is cumulated and normalised with :data:`BUFFER` at both ends, as the
    authors do. A column whose training values are constant gets its empirical CDF.
    """
    values = np.asarray(values, dtype=float)
    grid = np.asarray(grid, dtype=float)
    distinct, counts = np.unique(values, return_counts=True)
    if len(distinct) < 2:
        density = np.diff((grid >= distinct[0]).astype(float), prepend=0.0)
    else:
        width = float(np.std(values, ddof=1)) * len(values) ** (-1 / 5)
        z = (grid[:, None] - distinct[None, :]) / width
        density = np.exp(-0.5 * z**2) @ counts / (len(values) * width * math.sqrt(2 * math.pi))
    cumulative = np.cumsum(density)
    return (BUFFER + cumulative) / (cumulative[-1] + 2 * BUFFER)


# ------------------------------------------------------------------------------- the options
@dataclass
class _Options:
    """The options of every item for every factual, as (n, K) arrays over K option columns.

    Option column g belongs to item ``owner[g]``; choosing it sets the columns
    ``targets[g]`` to ``values[g]`` (static: grid values and one-hot levels).
    """

    raise_: np.ndarray  # (n, K) score raise
    total: np.ndarray  # (n, K) summed column cost
    peak: np.ndarray  # (n, K) largest column cost
    valid: np.ndarray  # (n, K) bool
    must: np.ndarray  # (n, n_items) bool: the item has no "no action" (an unset group)
    owner: np.ndarray  # (K,) item of each option column
    blocks: list[tuple[int, int]]  # option columns [a, b) of each item
    targets: list[np.ndarray]
    values: list[np.ndarray]


@register("method", "ar")
class ActionableRecourse(RecourseMethod):
    """The cheapest grid action that flips the (local) linear model, by one MILP per factual.

    ``generate`` returns NaN rows where no action on the grid flips the linear model, or where
    the true model rejects the result (a non-linear model's surrogate was wrong).

    Parameters
    ----------
    cost : {"l1", "max-percentile", "total-log-percentile", "total-percentile"}, default "l1"
        The cost of an action (see the module docstring).
    grid_size : int, default 100
        Intervals of a continuous column's grid between its end points (authors: 0.01 steps).
    grid_percentiles : (float, float) or None, default (1.0, 99.0)
        Training percentiles of the grid's end points; None spans the schema's bounds.
    margin : float, default 1e-4
        The recourse must reach log-odds ``margin`` under the linear model.
    max_changes : int or None, default None
        Most features (a one-hot group counts as one) an action may change; None: no limit.
    time_limit : float or None, default None
        Seconds per MILP; a factual whose MILP runs out keeps the best solution found (not
        proven optimal), or NaN if there is none. None: no limit.
    refits : int, default 3
        Non-linear models only: where the true model rejects the action found under the
        surrogate, fit a new surrogate around that action and solve again from the factual,
        at most this many times (0: one surrogate, around the factual).
    surrogate : {"lime", "gradient"}, default "lime"
        Local linear model of a non-linear classifier (linear ones use their own weights).
    n_perturbations : int, default 300
        LIME samples per factual (the factual included).
    lime_scale : float, default 0.3
        Standard deviation of LIME's Gaussian perturbation of the mutable features.
    kernel_width : float or None, default None
        LIME kernel width in units of ``lime_scale``; None is LIME's 0.75 * sqrt(d).
    lime_alpha : float, default 0.1
        L2 penalty of the LIME logistic regression.
    random_state : int or None, default None
        Seeds the LIME sampling (the only randomness; none for a linear model).

    Attributes
    ----------
    grids_ : list of ndarray
        The action grid of every column (fitted).
    percentiles_ : list of ndarray
        The percentiles Q of every column on its grid (fitted).
    items_ : list of tuple of int
        The columns of every item: a one-hot group, or a single column.
    epsilon_ : ndarray
        Per factual of the last ``generate``, the tie-break weight of the max cost (NaN for
        the other costs and where no MILP was solved).
    """

    tags = MethodTags(stochastic=True, batch_invariant=True, trains=True)

    parameter_constraints = {
        "cost": (Options(COSTS),),
        "grid_size": (Interval("int", low=1),),
        "grid_percentiles": (ListOf(Interval("float", low=0, high=100)), None),
        "margin": (Interval("float", low=0),),
        "max_changes": (Interval("int", low=1), None),
        "time_limit": (Interval("float", low=0, open_low=True), None),
        "refits": (Interval("int", low=0),),
        "surrogate": (Options(SURROGATES),),
        "n_perturbations": (Interval("int", low=2),),
        "lime_scale": (Interval("float", low=0, open_low=True),),
        "kernel_width": (Interval("float", low=0, open_low=True), None),
        "lime_alpha": (Interval("float", low=0),),
        "random_state": (Interval("int"), None),
    }

    def __init__(
        self,
        cost: str = "l1",
        grid_size: int = 100,
        grid_percentiles: tuple[float, float] | None = (1.0, 99.0),
        margin: float = 1e-4,
        max_changes: int | None = None,
        time_limit: float | None = None,
        refits: int = 3,
        surrogate: str = "lime",
        n_perturbations: int = 300,
        lime_scale: float = 0.3,
        kernel_width: float | None = None,
        lime_alpha: float = 0.1,
        random_state: int | None = None,
    ):
        self.cost = cost
        self.grid_size = grid_size
        self.grid_percentiles = grid_percentiles
        self.margin = margin
        self.max_changes = max_changes
        self.time_limit = time_limit
        self.refits = refits
        self.surrogate = surrogate
        self.n_perturbations = n_perturbations
        self.lime_scale = lime_scale
        self.kernel_width = kernel_width
        self.lime_alpha = lime_alpha
        self.random_state = random_state

    def validate_params(self) -> None:
        """The parameter constraints, and ``grid_percentiles`` an increasing pair."""
        super().validate_params()
        pair = self.grid_percentiles
        if pair is not None and (len(pair) != 2 or not pair[0] < pair[1]):
            raise ConfigError(
                f"{self.name}: grid_percentiles must be two increasing percentiles such as "
                f"(1.0, 99.0), or null, got {pair!r}"
            )

    def skip_reason(self, model: Classifier) -> str | None:
        """Why AR cannot run on ``model`` (None if it can).

        Only ``surrogate="gradient"`` on a model that is neither linear nor differentiable.
        """
        reason = super().skip_reason(model)
        if reason is not None:
            return reason
        if (
            self.surrogate == "gradient"
            and not getattr(model, "linear", False)
            and not getattr(model, "differentiable", False)
        ):
            return (
                f"{self.name} with surrogate='gradient' needs a differentiable model; "
                f"{type(model).__name__} is not (surrogate='lime' needs only predict_proba)"
            )
        return None

    # ------------------------------------------------------------------------------- step 1
    def fit(self, model: Classifier, splits: Splits) -> ActionableRecourse:
        """Attach the model and build every column's grid and percentiles from ``X_train``."""
        super().fit(model, splits)
        schema, X = splits.schema, splits.X_train
        in_group = np.zeros(schema.n_features, dtype=bool)
        for group in schema.groups:
            in_group[list(group)] = True
        pair = None if self.grid_percentiles is None else tuple(self.grid_percentiles)
        self.grids_ = [
            column_grid(
                X[:, j],
                schema.kinds[j],
                schema.lower[j],
                schema.upper[j],
                float(schema.steps[j]),
                int(self.grid_size),
                pair,  # type: ignore[arg-type]
                bool(in_group[j]),
            )
            for j in range(schema.n_features)
        ]
        self.percentiles_ = [percentile_table(X[:, j], grid) for j, grid in enumerate(self.grids_)]
        first = {group[0]: tuple(group) for group in schema.groups}
        self.items_ = [
            first.get(j, (j,)) for j in range(schema.n_features) if j in first or not in_group[j]
        ]
        return self

    # ------------------------------------------------------------------------------- step 2
    def local_models(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The linear model ``(W, b)`` of the log-odds around every row of ``X``.

        A linear classifier's own weights; otherwise the surrogate around each row.
        """
        self.check_fitted()
        X = self.check_factuals(X)
        model, schema = self.model_, self.schema_
        if getattr(model, "linear", False):
            linear: Any = model
            W = np.tile(np.asarray(linear.coef_, dtype=float).reshape(-1), (len(X), 1))
            return W, np.full(len(X), float(linear.intercept_))
        if self.surrogate == "gradient":
            return gradient_surrogate(model, X)
        W = np.zeros_like(X)
        b = np.zeros(len(X))
        for i, rng in enumerate(self._row_generators(X)):
            W[i : i + 1], b[i : i + 1] = lime_surrogate(
                model,
                X[i : i + 1],
                n_samples=self.n_perturbations,
                scale=self.lime_scale,
                kernel_width=self.kernel_width,
                alpha=self.lime_alpha,
                free=schema.mutable_mask,
                lower=schema.lower_array,
                upper=schema.upper_array,
                rng=rng,
            )
        return W, b

    def _row_generators(self, X: np.ndarray) -> list[np.random.Generator]:
        """One generator per row, seeded by ``random_state`` and the row's values."""
        base = np.random.default_rng(self.random_state).integers(2**63)
        return [
            np.random.default_rng(
                [int(base), *np.frombuffer(hashlib.sha256(row.tobytes()).digest(), np.uint32)]
            )
            for row in np.ascontiguousarray(X)
        ]

    # ---------------------------------------------------------------------------- steps 3-4
    def _column_cost(self, j: int, x: np.ndarray, V: np.ndarray) -> np.ndarray:
        """Cost of moving column ``j`` from ``x`` (n,) to ``V`` (n, ...) for every row."""
        x = x.reshape((-1,) + (1,) * (V.ndim - 1))
        if self.cost == "l1":
            return np.abs(V - x)
        grid, table = self.grids_[j], self.percentiles_[j]

        def q(v: np.ndarray) -> np.ndarray:
            return np.interp(v, grid, table, left=BUFFER, right=1 - BUFFER)

        if self.cost == "total-log-percentile":
            return np.abs(np.log1p(-q(V)) - np.log1p(-q(x)))
        return np.abs(q(V) - q(x))

    def options(self, X: np.ndarray, W: np.ndarray) -> _Options:
        """Steps 3-4 for all factuals: every item's options, their raises and costs."""
        schema = self.schema_
        n = len(X)
        lo, hi = schema.bounds_for(X)
        parts: list[tuple[np.ndarray, ...]] = []
        owner: list[np.ndarray] = []
        targets: list[np.ndarray] = []
        values: list[np.ndarray] = []
        must = np.zeros((n, len(self.items_)), dtype=bool)
        positive_only = self.cost != "l1"
        for i, cols in enumerate(self.items_):
            if len(cols) == 1 and not any(cols[0] in g for g in schema.groups):
                j = cols[0]
                grid = self.grids_[j]
                V = np.broadcast_to(grid, (n, len(grid)))
                raise_ = W[:, j : j + 1] * (V - X[:, j : j + 1])
                cost = self._column_cost(j, X[:, j], V)
                valid = (V >= lo[:, j : j + 1] - TOL) & (V <= hi[:, j : j + 1] + TOL)
                valid &= raise_ > 0
                if positive_only:
                    valid &= cost > 0
                parts.append((raise_, cost, cost, valid))
                owner.append(np.full(len(grid), i))
                targets += [np.array([j])] * len(grid)
                values += [np.array([v]) for v in grid]
                continue
            idx = np.array(cols)
            k = len(idx)
            levels = np.eye(k)
            xg, wg = X[:, idx], W[:, idx]
            fits = (levels[None] >= lo[:, None, idx] - TOL) & (
                levels[None] <= hi[:, None, idx] + TOL
            )
            fits = fits.all(axis=2)  # (n, level)
            raise_ = wg - (wg * xg).sum(axis=1, keepdims=True)
            column_costs = np.stack(
                [
                    self._column_cost(int(j), xg[:, m], np.broadcast_to(levels[:, m], (n, k)))
                    for m, j in enumerate(idx)
                ],
                axis=2,
            )  # (n, level, member)
            total, peak = column_costs.sum(axis=2), column_costs.max(axis=2)
            current = np.abs(levels[None] - xg[:, None, :]).max(axis=2) <= TOL  # (n, level)
            is_set = current.any(axis=1)
            must[:, i] = ~is_set
            valid = fits & ~current
            helpful = raise_ > 0
            if positive_only:
                helpful &= total > 0
            valid &= helpful | ~is_set[:, None]
            parts.append((raise_, total, peak, valid))
            owner.append(np.full(k, i))
            targets += [idx] * k
            values += list(levels)
        raise_, total, peak, valid = (np.concatenate(p, axis=1) for p in zip(*parts, strict=True))
        ends = np.cumsum([len(o) for o in owner])
        blocks = [(int(e - len(o)), int(e)) for e, o in zip(ends, owner, strict=True)]
        return _Options(
            raise_, total, peak, valid, must, np.concatenate(owner), blocks, targets, values
        )

    # ---------------------------------------------------------------------------- steps 5-6
    def generate(self, X: np.ndarray) -> np.ndarray:
        """Recourses for all rows of ``X`` (NaN rows where none was found)."""
        self.check_fitted()
        X = self.check_factuals(X)
        n = len(X)
        result = np.full_like(X, np.nan)
        self.epsilon_ = np.full(n, np.nan)
        if n == 0:
            return result
        exact = bool(getattr(self.model_, "linear", False))
        todo = np.arange(n)
        at = X  # where the linear models are taken
        for attempt in range(1 if exact else 1 + int(self.refits)):
            W, b = self.local_models(at)
            candidates = self._actions(X[todo], W, b, todo)
            found = ~np.isnan(candidates).any(axis=1)
            broken = np.zeros(len(todo), dtype=bool)
            broken[found] = self.schema_.violations(candidates[found], X[todo][found])
            if broken.any():  # by construction this does not happen
                log.warning("ar: %d recourses broke the schema, dropped", int(broken.sum()))
            found &= ~broken
            accepted = np.zeros(len(todo), dtype=bool)
            if found.any():
                accepted[found] = np.asarray(self.model_.predict(candidates[found])) == 1
            result[todo[accepted]] = candidates[accepted]
            retry = found & ~accepted  # the surrogate was wrong there: linearise there
            if attempt:
                log.debug("ar: refit %d accepted %d recourses", attempt, int(accepted.sum()))
            todo, at = todo[retry], candidates[retry]
            if len(todo) == 0:
                break
        return result

    def _actions(self, X: np.ndarray, W: np.ndarray, b: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Steps 3-5: the best action on the grid under the linear models ``(W, b)``.

        Returns ``X`` plus the action per row, NaN where no action reaches the margin;
        ``rows`` are the factuals' positions (for ``epsilon_``).
        """
        required = float(self.margin) - (np.einsum("nd,nd->n", W, X) + b)
        opts = self.options(X, W)
        weight, eps, infeasible = self._prune(opts, required)
        self.epsilon_[rows] = eps
        out = np.full_like(X, np.nan)
        for r in np.flatnonzero(~infeasible):
            chosen = self._solve(opts, int(r), float(required[r]), weight)
            if chosen is not None:
                out[r] = X[r]
                for g in chosen:
                    out[r, opts.targets[g]] = opts.values[g]
        return out

    def _prune(
        self, opts: _Options, required: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The exact reductions of step 4, in place on ``opts.valid``.

        Drops options dominated within their item, then every option whose lower bound on
        the objective of an action taking it exceeds the objective of a known action. Returns
        the objective weight of every option (the total cost, or eps times it for the max
        cost), eps per row (NaN for the other costs) and the rows that no action can flip.
        """
        n = len(required)
        valid = opts.valid
        maximum = self.cost == "max-percentile"
        blocks = opts.blocks
        if maximum:
            eps = _tie_break(opts.total, valid, blocks)
            weight = eps[:, None] * opts.total
        else:
            eps = np.full(n, np.nan)
            weight = opts.total
        for i, (a, b) in enumerate(blocks):
            if b - a > 1:
                three = maximum and len(self.items_[i]) > 1
                valid[:, a:b] &= ~_dominated(
                    opts.raise_[:, a:b], opts.total[:, a:b], opts.peak[:, a:b], valid[:, a:b], three
                )

        # every item at its largest raise: the most any action reaches (without a limit on
        # the number of changes, it decides feasibility), and a first known action
        every = _pick_best(np.where(valid, -opts.raise_, np.inf), opts.must, blocks)
        infeasible = ~_reaches(every, opts.raise_, opts.must, required)
        if self.max_changes is not None:  # then only the solver decides
            infeasible[:] = False
        valid[infeasible] = False

        def objective(chosen: np.ndarray) -> np.ndarray:
            """The objective of the actions ``chosen`` (inf where one does not flip)."""
            value = _sum_of(chosen, weight)
            if maximum:
                value = value + _max_of(chosen, opts.peak)
            if self.max_changes is not None:
                value[(chosen >= 0).sum(axis=1) > int(self.max_changes)] = np.inf
            return np.where(_reaches(chosen, opts.raise_, opts.must, required), value, np.inf)

        best = objective(every)
        alone = (opts.peak + weight) if maximum else weight  # an action taking the option
        single = np.where(valid & (opts.raise_ >= required[:, None]), alone, np.inf).min(axis=1)
        single[opts.must.any(axis=1)] = np.inf
        best = np.minimum(best, single)
        floor = np.zeros(n)
        if maximum:
            # the least max cost any action needs (exact), and the action that reaches it
            floor, reaching = _least_peak(opts, required, blocks)
            best = np.minimum(best, objective(reaching))
            valid &= opts.peak <= best[:, None] * (1 + 1e-9) + 1e-12
        bound, chosen, below = _lagrangian(weight, opts.raise_, valid, opts.must, blocks, required)
        best = np.minimum(best, objective(chosen))
        # the action that falls short, completed by changing one item (as rounding the LP
        # solution's fractional item up)
        alone_ = np.where(valid, alone, np.inf)
        for candidate in _completions(below, opts.raise_, alone_, blocks, required):
            best = np.minimum(best, objective(candidate))
        if maximum:
            bound = bound + np.maximum(floor[:, None], opts.peak)
        valid &= bound <= best[:, None] + 1e-9 * (1 + np.abs(best[:, None]))
        return weight, eps, infeasible

    def _solve(
        self, opts: _Options, r: int, required: float, weight: np.ndarray
    ) -> list[int] | None:
        """The option columns chosen for factual ``r`` (None: no action reaches the margin)."""
        must = opts.must[r]
        if required <= 0 and not must.any():
            return []  # already accepted: no action
        cols = np.flatnonzero(opts.valid[r])
        if len(cols) == 0:
            return None
        owner = opts.owner[cols]
        present, item = np.unique(owner, return_inverse=True)
        if (must & ~np.isin(np.arange(len(must)), present)).any():
            return None  # an unset one-hot group with no level left
        sizes = np.bincount(item) + ~must[present]
        if np.prod(sizes.astype(float)) <= ENUMERATE_LIMIT:
            return self._enumerate(opts, r, required, weight, cols, item, must[present])
        m, k = len(present), len(cols)
        maximum = self.cost == "max-percentile"
        pick = sparse.csr_matrix((np.ones(k), (item, np.arange(k))), shape=(m, k))
        width = k + 1 if maximum else k
        c = np.zeros(width)
        c[:k] = weight[r, cols]
        constraints = []
        if maximum:
            c[k] = 1.0
            pick = sparse.hstack([pick, sparse.csr_matrix((m, 1))]).tocsr()
            peak = sparse.csr_matrix((opts.peak[r, cols], (item, np.arange(k))), shape=(m, k))
            top = sparse.hstack([-peak, sparse.csr_matrix(np.ones((m, 1)))])
            constraints.append(LinearConstraint(top, 0.0, np.inf))
        constraints.append(LinearConstraint(pick, must[present].astype(float), 1.0))
        score = np.zeros(width)
        score[:k] = opts.raise_[r, cols]
        constraints.append(LinearConstraint(score[None, :], required, np.inf))
        if self.max_changes is not None:
            changes = np.zeros(width)
            changes[:k] = 1.0
            constraints.append(LinearConstraint(changes[None, :], 0.0, float(self.max_changes)))
        integrality = np.ones(width)
        upper = np.ones(width)
        if maximum:
            integrality[k], upper[k] = 0, np.inf
        options: dict[str, Any] = {
            "mip_rel_gap": MIP_GAP,
            "presolve": False,  # 1.5-3 times faster on these small programs (Adult)
        }
        if self.time_limit is not None:
            options["time_limit"] = float(self.time_limit)
        res = milp(
            c,
            integrality=integrality,
            bounds=Bounds(np.zeros(width), upper),
            constraints=constraints,
            options=options,
        )
        if res.x is None:
            return None
        if res.status != 0:
            log.info("ar: factual %d: %s (best solution kept)", r, res.message)
        return [int(g) for g in cols[res.x[:k] > 0.5]]

    def _enumerate(
        self,
        opts: _Options,
        r: int,
        required: float,
        weight: np.ndarray,
        cols: np.ndarray,
        item: np.ndarray,
        must: np.ndarray,
    ) -> list[int] | None:
        """The best action of factual ``r`` by evaluating every combination of its options.

        ``cols`` are the valid option columns and ``item`` their item (0, 1, ...); ``must``
        per item whether it has no "no action". The first of equally good actions wins.
        """
        maximum = self.cost == "max-percentile"
        raise_ = np.zeros(1)
        value = np.zeros(1)
        peak = np.zeros(1)
        changes = np.zeros(1, dtype=int)
        picks = np.zeros((1, 0), dtype=int)
        for i, forced in enumerate(must):
            own = cols[item == i]
            choices = own if forced else np.concatenate([[-1], own])
            taken = choices >= 0
            at = np.maximum(choices, 0)
            add_raise = np.where(taken, opts.raise_[r, at], 0.0)
            add_value = np.where(taken, weight[r, at], 0.0)
            add_peak = np.where(taken, opts.peak[r, at], 0.0)
            raise_ = (raise_[:, None] + add_raise[None]).reshape(-1)
            value = (value[:, None] + add_value[None]).reshape(-1)
            peak = np.maximum(peak[:, None], add_peak[None]).reshape(-1)
            changes = (changes[:, None] + taken[None]).reshape(-1)
            picks = np.concatenate(
                [np.repeat(picks, len(choices), axis=0), np.tile(choices, len(picks))[:, None]],
                axis=1,
            )
        objective = value + peak if maximum else value
        ok = raise_ >= required
        if self.max_changes is not None:
            ok &= changes <= int(self.max_changes)
        if not ok.any():
            return None
        best = int(np.argmin(np.where(ok, objective, np.inf)))
        return [int(g) for g in picks[best] if g >= 0]


def _dominated(
    raise_: np.ndarray, total: np.ndarray, peak: np.ndarray, valid: np.ndarray, three: bool
) -> np.ndarray:
    """Options (n, K) of one item that another valid option of it dominates.

    An option is dominated if another raises the score at least as much for no more total
    cost (and, with ``three``, no more peak cost), strictly better in one of them or equal and
    earlier. Without ``three`` the options are sorted by (total, -raise) and an option is kept
    only if it raises more than every option before it; with ``three`` (a one-hot group under
    the max cost, where the peak is not a function of the total) every pair is compared.
    """
    n, k = raise_.shape
    if not three:
        t = np.where(valid, total, np.inf)
        r = np.where(valid, raise_, -np.inf)
        order = np.lexsort((-r, t), axis=1)
        r_sorted = np.take_along_axis(r, order, axis=1)
        before = np.maximum.accumulate(r_sorted, axis=1)
        before = np.concatenate([np.full((n, 1), -np.inf), before[:, :-1]], axis=1)
        keep_sorted = r_sorted > before
        keep = np.zeros_like(valid)
        np.put_along_axis(keep, order, keep_sorted, axis=1)
        return valid & ~keep
    a_r, b_r = raise_[:, :, None], raise_[:, None, :]
    a_t, b_t = total[:, :, None], total[:, None, :]
    a_p, b_p = peak[:, :, None], peak[:, None, :]
    at_least = (a_r >= b_r) & (a_t <= b_t) & (a_p <= b_p) & valid[:, :, None]
    strictly = (a_r > b_r) | (a_t < b_t) | (a_p < b_p)
    earlier = np.triu(np.ones((k, k), dtype=bool), k=1)  # earlier[a, b]: a < b
    return valid & (at_least & (strictly | earlier[None])).any(axis=1)


def _pick_best(score: np.ndarray, must: np.ndarray, blocks: list[tuple[int, int]]) -> np.ndarray:
    """Per row and item, the option column of the least ``score`` (n, items); -1: none.

    An item that may take no action takes its best option only where the score is negative
    (no action scores 0); an item that must choose takes its best option (-1 if it has none,
    i.e. its score is inf).
    """
    n = len(score)
    rows = np.arange(n)
    chosen = np.full((n, len(blocks)), -1)
    for i, (a, b) in enumerate(blocks):
        k = score[:, a:b].argmin(axis=1)
        value = score[rows, a + k]
        take = np.where(must[:, i], np.isfinite(value), value < 0)
        chosen[:, i] = np.where(take, a + k, -1)
    return chosen


def _gather(chosen: np.ndarray, values: np.ndarray, empty: float) -> np.ndarray:
    """``values`` at the chosen option columns (n, items); ``empty`` where none."""
    picked = np.take_along_axis(values, np.maximum(chosen, 0), axis=1)
    return np.where(chosen >= 0, picked, empty)


def _raise_of(chosen: np.ndarray, raise_: np.ndarray) -> np.ndarray:
    """The raise of the score by each row's chosen action."""
    return _gather(chosen, raise_, 0.0).sum(axis=1)


def _reaches(
    chosen: np.ndarray, raise_: np.ndarray, must: np.ndarray, required: np.ndarray
) -> np.ndarray:
    """Whether each row's chosen action is complete (every must-item chose) and flips."""
    complete = ~((chosen < 0) & must).any(axis=1)
    return complete & (_raise_of(chosen, raise_) >= required)


def _sum_of(chosen: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The sum of ``values`` over each row's chosen options."""
    return _gather(chosen, values, 0.0).sum(axis=1)


def _max_of(chosen: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The largest of ``values`` over each row's chosen options (0 for no action)."""
    return _gather(chosen, values, 0.0).max(axis=1, initial=0.0)


def _tie_break(total: np.ndarray, valid: np.ndarray, blocks: list[tuple[int, int]]) -> np.ndarray:
    """The authors' eps of the max cost, per row.

    The smallest positive increment between the costs of one item's options (no action
    included), divided by the sum over items of their largest option cost (0 if undefined).
    """
    n = len(total)
    smallest = np.full(n, np.inf)
    largest = np.zeros(n)
    for a, b in blocks:
        cost = np.where(valid[:, a:b], total[:, a:b], np.inf)
        ordered = np.sort(np.concatenate([np.zeros((n, 1)), cost], axis=1), axis=1)
        with np.errstate(invalid="ignore"):  # inf - inf past the valid options
            gaps = np.diff(ordered, axis=1)
        gaps = np.where(np.isfinite(gaps) & (gaps > 1e-12), gaps, np.inf)
        smallest = np.minimum(smallest, gaps.min(axis=1))
        largest += np.where(np.isfinite(cost), cost, 0.0).max(axis=1)
    return np.where(np.isfinite(smallest) & (largest > 0), smallest / largest, 0.0)


def _least_peak(
    opts: _Options, required: np.ndarray, blocks: list[tuple[int, int]]
) -> tuple[np.ndarray, np.ndarray]:
    """The least largest option cost of an action that reaches ``required``, and that action.

    Exact: the largest raise with every option cost at most T grows with T, so a bisection
    over each row's sorted option costs finds the least T; the action takes each item's
    largest raise among the options that cost at most T. Rows no action flips get inf (and
    the action of their largest raises).
    """
    n = len(required)
    rows = np.arange(n)
    peak = np.where(opts.valid, opts.peak, np.inf)
    candidates = np.sort(np.concatenate([np.zeros((n, 1)), peak], axis=1), axis=1)

    def action(T: np.ndarray) -> np.ndarray:
        allowed = opts.valid & (opts.peak <= T[:, None])
        return _pick_best(np.where(allowed, -opts.raise_, np.inf), opts.must, blocks)

    def reaches(T: np.ndarray) -> np.ndarray:
        return _reaches(action(T), opts.raise_, opts.must, required)

    lo = np.full(n, -1)  # candidates[lo] does not reach (-1: below every candidate)
    hi = np.isfinite(candidates).sum(axis=1) - 1  # the largest finite candidate
    ok = reaches(candidates[rows, hi])
    while True:
        open_ = ok & (hi - lo > 1)
        if not open_.any():
            break
        mid = np.where(open_, (lo + hi) // 2, hi)
        good = reaches(candidates[rows, np.maximum(mid, 0)])
        hi = np.where(open_ & good, mid, hi)
        lo = np.where(open_ & ~good, mid, lo)
    floor = np.where(ok, candidates[rows, hi], np.inf)
    return floor, action(np.where(ok, floor, np.inf))


def _lagrangian(
    weight: np.ndarray,
    raise_: np.ndarray,
    valid: np.ndarray,
    must: np.ndarray,
    blocks: list[tuple[int, int]],
    required: np.ndarray,
    iterations: int = 50,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lagrangian bounds of  min sum w u  s.t. sum r u >= required  (one option per item).

    For a multiplier lam >= 0 of the score constraint, L(lam) = lam * required + sum_i m_i,
    m_i the least of w - lam r over item i's options (and 0, no action, where allowed), is
    a lower bound of the optimum, and an action taking option k of item i costs at least
    L(lam) + (w_k - lam r_k - m_i) (its reduced cost), for every lam. The best lam is found
    by doubling, then bisection on whether the Lagrangian action reaches ``required`` (the
    action at the upper end of the bracket does, and is returned as a known solution); each
    option's bound is the largest over :data:`LAMBDA_FACTORS` times the best lam.

    Returns
    -------
    bound : ndarray (n, K)
        Per option, a lower bound of the objective of any action taking it (inf if invalid).
    chosen : ndarray (n, items)
        A Lagrangian action that reaches ``required`` where one exists.
    below : ndarray (n, items)
        The Lagrangian action at the lower end of the bracket (it falls short).
    """
    n = len(required)

    def evaluate(lam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        score = np.where(valid, weight - lam[:, None] * raise_, np.inf)
        chosen = _pick_best(score, must, blocks)
        value = lam * required + _gather(chosen, score, 0.0).sum(axis=1)
        return value, _reaches(chosen, raise_, must, required), chosen

    lo, hi = np.zeros(n), np.ones(n)
    best_value, _, below = evaluate(lo)  # below: the action at lo, which does not reach
    best_lam = lo.copy()
    value, reached, chosen = evaluate(hi)
    for _ in range(60):  # doubling until the action at hi reaches
        better = value > best_value
        best_value, best_lam = np.where(better, value, best_value), np.where(better, hi, best_lam)
        if reached.all():
            break
        lo = np.where(reached, lo, hi)
        below = np.where(reached[:, None], below, chosen)
        hi = np.where(reached, hi, 2 * hi)
        value, new_reached, new_chosen = evaluate(hi)
        chosen = np.where(reached[:, None], chosen, new_chosen)
        reached = reached | new_reached
    for _ in range(iterations):
        mid = (lo + hi) / 2
        value, ok, mid_chosen = evaluate(mid)
        better = value > best_value
        best_value, best_lam = np.where(better, value, best_value), np.where(better, mid, best_lam)
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
        chosen = np.where(ok[:, None], mid_chosen, chosen)
        below = np.where(ok[:, None], below, mid_chosen)
    # per option, the best bound over multipliers around the best one: an action taking
    # option k of item i costs at least L(lam) + (w_k - lam r_k - m_i(lam)) for every lam
    bound = np.full(valid.shape, -np.inf)
    for factor in LAMBDA_FACTORS:
        lam = best_lam * factor
        score = np.where(valid, weight - lam[:, None] * raise_, np.inf)
        least = np.empty((n, len(blocks)))
        for i, (a, b) in enumerate(blocks):
            m = score[:, a:b].min(axis=1)
            least[:, i] = np.where(must[:, i], m, np.minimum(m, 0.0))
        value = lam * required + least.sum(axis=1)
        for i, (a, b) in enumerate(blocks):
            with np.errstate(invalid="ignore"):  # inf - inf where an item has no option
                here = value[:, None] + score[:, a:b] - least[:, i : i + 1]
            bound[:, a:b] = np.maximum(bound[:, a:b], here)
    bound[~valid] = np.inf
    return bound, chosen, below


def _completions(
    base: np.ndarray,
    raise_: np.ndarray,
    cost: np.ndarray,
    blocks: list[tuple[int, int]],
    required: np.ndarray,
) -> list[np.ndarray]:
    """Actions that differ from ``base`` in one item, each reaching ``required`` if it can.

    For every item, the others keep their options of ``base`` and the item takes its
    cheapest option (by ``cost``, inf where invalid) that raises enough, or none if the
    others reach without it.
    """
    n = len(required)
    rows = np.arange(n)
    total = _raise_of(base, raise_)
    out = []
    for i, (a, b) in enumerate(blocks):
        own = np.where(base[:, i] >= 0, raise_[rows, np.maximum(base[:, i], 0)], 0.0)
        need = required - (total - own)
        price = np.where(raise_[:, a:b] >= need[:, None], cost[:, a:b], np.inf)
        k = price.argmin(axis=1)
        found = np.isfinite(price[rows, k])
        candidate = base.copy()
        candidate[:, i] = np.where(need <= 0, -1, np.where(found, a + k, base[:, i]))
        out.append(candidate)
    return out
