"""MCER: Delta-robust counterfactuals by mixed-integer programming.

J. Jiang, F. Leofante, A. Rago and F. Toni (AAAI 2023), "Formalising the Robustness of
Counterfactual Explanations for Neural Networks" (arXiv:2208.14878): the MILP-R method, called
MCER in RobustX. Reference code read: junqi-jiang/robust-ce-inn@c4678bb (``optsolver.py``,
``expnns/utilexp.py``: ``run_ours_one_delta_robust``) and RobustX@f503bfa
(``generators/robust_CE_methods/MCER.py``, ``generators/CE_methods/MCE.py``, ``lib/OptSolver.py``).

Algorithm, one program per factual (a MILP does not batch across factuals; the constraints are
built with array operations):

1. **CFX-MILP** on the nominal network: variables the recourse ``x'`` and the post-ReLU value
   of every hidden node; a binary per node whose sign the input box leaves open (big-M
   constants from interval bounds over the row's box, so stable nodes need no binary); the
   output log-odds at least ``eps``; minimise the L1 distance ``||x' - x||_1`` (the suite's
   cost). ``x'`` keeps the schema by construction: the row's box (bounds, immutables fixed,
   directions) as variable bounds, each one-hot group as binaries summing to 1, each integer,
   binary or ordinal column on its grid (``x'_j = lower_j + step_j k_j``, ``k_j`` integer);
2. **robustness loop** (MILP-R): solve with ``eps = eps0``; while the solution is not Delta-robust
   (the exact check of :mod:`recourse_bench.certify`: closed form, IBP, MILP) and ``eps <=
   eps_max``, raise ``eps`` and solve again. The last solution the model accepts is returned even
   when it is not certified (as the authors' code); the ``delta-robustness`` metric says which.

Hyperparameters and defaults: ``delta=0.005``, ``delta_b=None`` (= ``delta``; RobustX's default
box for both, the authors choose delta per dataset from the parameter change of partial
retraining: 0.054 on their German credit network), ``eps0=0.01`` and ``eps_step=0.2`` and
``eps_max=20`` (the authors'), ``max_levels=1000``, ``node_limit=1000`` branch-and-bound nodes
per program (a work limit, not a time limit, so the result does not depend on the machine),
``random_state=None`` (unused: the method is deterministic).

Differences from the authors' code:

* the objective is the suite's L1 distance in model space (the authors divide by the number of
  features and count a categorical change once, max over its one-hot columns; here it costs 2);
* ``eps`` grows by ``max(eps_step, shortfall)``, the shortfall being how far below 0 the
  certificate's worst-case log-odds was: the margin the network must gain, so the loop reaches a
  certified solution in a few programs instead of up to 100;
* the robustness check is exact for any depth (IBP first, then the interval network's MILP),
  with big-M constants from interval bounds instead of M = 10000; Gurobi is replaced by HiGHS
  (scipy's ``milp``);
* a grid column with more than ``max_levels`` levels (German's credit amount has 15,669) is a
  continuous variable, snapped to its grid afterwards; the snapped recourse is checked again;
* immutables, directions and one-hot groups are constraints of the program (RobustX's MCE treats
  every feature as continuous within the training range).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy.optimize import Bounds, LinearConstraint

from ..api import Classifier, Interval, MethodTags, RecourseMethod, Schema, Splits
from ..certify import (
    DEFAULT_DELTA,
    Layers,
    box_model_reason,
    delta_certified,
    relu_layers,
    solve_milp,
    worst_case_logit,
)
from ..registry import register
from ._search import accepts


def box_bounds(layers: Layers, lo: np.ndarray, hi: np.ndarray) -> list[tuple[np.ndarray, ...]]:
    """Interval bounds ``(L, U)`` of every hidden layer's pre-activation for inputs in [lo, hi]."""
    bounds = []
    low, high = lo, hi
    for W, b in layers[:-1]:
        positive, negative = np.maximum(W, 0.0), np.minimum(W, 0.0)
        L = positive @ low + negative @ high + b
        U = positive @ high + negative @ low + b
        bounds.append((L, U))
        low, high = np.maximum(L, 0.0), np.maximum(U, 0.0)
    return bounds


class _Program:
    """The CFX-MILP of one factual; :meth:`solve` re-solves it for a margin ``eps``."""

    def __init__(
        self,
        layers: Layers,
        schema: Schema,
        x: np.ndarray,
        lo: np.ndarray,
        hi: np.ndarray,
        max_levels: int,
    ):
        d = len(x)
        widths = [len(b) for _, b in layers[:-1]]
        self.d, self.x = d, x
        # variables: x' (d) | t >= |x' - x| (d) | k (grid levels, d) | n and a per hidden node
        self.n_start = 3 * d + np.concatenate([[0], np.cumsum(widths)]).astype(int)
        a_base = int(self.n_start[-1])
        self.a_start = a_base + np.concatenate([[0], np.cumsum(widths)]).astype(int)
        n_vars = int(self.a_start[-1])
        lower, upper = np.zeros(n_vars), np.zeros(n_vars)
        integrality = np.zeros(n_vars)
        lower[:d], upper[:d] = lo, hi
        upper[d : 2 * d] = np.inf
        rows, row_lo, row_hi = [], [], []

        def add(coefficients: dict[int, float] | np.ndarray, low: float, high: float) -> None:
            row = np.zeros(n_vars)
            if isinstance(coefficients, dict):
                for i, c in coefficients.items():
                    row[i] += c
            else:
                row[: len(coefficients)] = coefficients
            rows.append(row)
            row_lo.append(low)
            row_hi.append(high)

        for j in range(d):  # t_j >= x'_j - x_j and t_j >= x_j - x'_j
            add({d + j: 1.0, j: -1.0}, -x[j], np.inf)
            add({d + j: 1.0, j: 1.0}, x[j], np.inf)
        steps = np.asarray(schema.steps, dtype=float)
        base = schema.lower_array
        grouped = {j for group in schema.groups for j in group}
        for j in np.flatnonzero(steps > 0):
            if j in grouped or lo[j] == hi[j]:
                continue
            first = np.ceil((lo[j] - base[j]) / steps[j] - 1e-9)
            last = np.floor((hi[j] - base[j]) / steps[j] + 1e-9)
            if last - first + 1 > max_levels:
                continue  # continuous here, snapped afterwards
            k = 2 * d + j
            lower[k], upper[k], integrality[k] = first, last, 1
            add({j: 1.0, k: -steps[j]}, base[j], base[j])  # x'_j = lower_j + step_j k_j
        for group in schema.groups:
            cols = list(group)
            integrality[cols] = 1
            if (lo[cols] < hi[cols]).any():
                add(dict.fromkeys(cols, 1.0), 1.0, 1.0)
        previous = list(range(d))
        for layer, ((W, b), (L, U)) in enumerate(
            zip(layers[:-1], box_bounds(layers, lo, hi), strict=True)
        ):
            for j in range(len(b)):
                n_j, a_j = int(self.n_start[layer]) + j, int(self.a_start[layer]) + j
                pre = {i: -float(W[j, c]) for c, i in enumerate(previous)}
                upper[n_j] = max(U[j], 0.0)
                if U[j] <= 0:  # always off: n_j = 0
                    continue
                if L[j] >= 0:  # always on: n_j = W v + b
                    add({**pre, n_j: 1.0}, b[j], b[j])
                    continue
                integrality[a_j], upper[a_j] = 1, 1.0
                add({**pre, n_j: 1.0}, b[j], np.inf)  # n >= W v + b
                add({**pre, n_j: 1.0, a_j: float(L[j])}, -np.inf, b[j])  # n <= W v + b + M2 a
                add({n_j: 1.0, a_j: U[j]}, -np.inf, U[j])  # n <= M1 (1 - a)
            previous = list(range(int(self.n_start[layer]), int(self.n_start[layer + 1])))
        W_out, b_out = layers[-1]
        self.output = np.zeros(n_vars)
        self.output[previous] = W_out[0]
        self.b_out = float(b_out[0])
        self.rows, self.row_lo, self.row_hi = rows, row_lo, row_hi
        self.bounds = Bounds(lower, upper)
        self.integrality = integrality
        self.objective = np.zeros(n_vars)
        self.objective[d : 2 * d] = 1.0

    def solve(self, eps: float, node_limit: int, time_limit: float) -> np.ndarray | None:
        """The cheapest ``x'`` whose nominal log-odds are >= ``eps``, or None (infeasible)."""
        A = np.vstack([*self.rows, self.output]) if self.rows else self.output[None, :]
        low = [*self.row_lo, eps - self.b_out]
        high = [*self.row_hi, np.inf]
        result = solve_milp(
            self.objective,
            constraints=[LinearConstraint(A, low, high)],
            integrality=self.integrality,
            bounds=self.bounds,
            options={"node_limit": node_limit, "time_limit": time_limit},
        )
        if result.x is None:
            return None
        return np.asarray(result.x[: self.d], dtype=float)


@register("method", "mcer")
class MCER(RecourseMethod):
    """Delta-robust counterfactuals by MILP (MILP-R): the cheapest recourse a box of models accepts.

    Parameters
    ----------
    delta : float, default 0.005
        Half-width of the box on every weight (RobustX's default; see the module docstring).
    delta_b : float or None, default None
        Half-width on every bias (None: ``delta``).
    eps0 : float, default 0.01
        First margin on the nominal log-odds (authors' value).
    eps_step : float, default 0.2
        Smallest increase of the margin between programs (authors' value).
    eps_max : float, default 20.0
        The loop stops once the margin exceeds this (authors' value).
    max_levels : int, default 1000
        Grid columns with more levels are continuous in the program and snapped afterwards.
    node_limit : int, default 1000
        Branch-and-bound nodes per program (HiGHS); the best solution found within them is used.
        A work limit rather than a time limit, so that results do not depend on the machine.
    time_limit : float, default 120.0
        Seconds per program, a safeguard: where it binds (large networks; see the README) the
        result depends on the machine's speed.
    random_state : int or None, default None
        Unused (deterministic); accepted for the uniform interface.

    Notes
    -----
    Runs on a linear model or a ReLU MLP (the box is around their parameters); a forest is
    skipped with the reason. A factual whose program is infeasible, or whose solution the model
    rejects after snapping, gets a NaN row.
    """

    tags = MethodTags(requires_differentiable=True, batch_invariant=True)
    # the conformance tests' budget: short programs (the defaults run in the benchmarks)
    _test_params: ClassVar[dict[str, Any]] = {"node_limit": 20, "time_limit": 1.0, "eps_max": 0.5}

    parameter_constraints = {
        "delta": (Interval("float", low=0),),
        "delta_b": (Interval("float", low=0), None),
        "eps0": (Interval("float", low=0),),
        "eps_step": (Interval("float", low=0, open_low=True),),
        "eps_max": (Interval("float", low=0),),
        "max_levels": (Interval("int", low=1),),
        "node_limit": (Interval("int", low=1),),
        "time_limit": (Interval("float", low=0, open_low=True),),
        "random_state": (Interval("int"), None),
    }

    def __init__(
        self,
        delta: float = DEFAULT_DELTA,
        delta_b: float | None = None,
        eps0: float = 0.01,
        eps_step: float = 0.2,
        eps_max: float = 20.0,
        max_levels: int = 1000,
        node_limit: int = 1000,
        time_limit: float = 120.0,
        random_state: int | None = None,
    ):
        self.delta = delta
        self.delta_b = delta_b
        self.eps0 = eps0
        self.eps_step = eps_step
        self.eps_max = eps_max
        self.max_levels = max_levels
        self.node_limit = node_limit
        self.time_limit = time_limit
        self.random_state = random_state

    def skip_reason(self, model: Classifier) -> str | None:
        """Also refuse a torch model that is neither linear nor a ReLU MLP."""
        return super().skip_reason(model) or box_model_reason(self.name, model)

    def fit(self, model: Classifier, splits: Splits) -> MCER:
        """Read the model's layers (nothing is trained)."""
        super().fit(model, splits)
        self.layers_ = relu_layers(model)
        return self

    def _box(self) -> tuple[float, float]:
        delta = float(self.delta)
        return delta, delta if self.delta_b is None else float(self.delta_b)

    def _robust_recourse(self, x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """MILP-R for one factual: the last accepted solution (NaN if none)."""
        schema, model = self.schema_, self.model_
        delta, delta_b = self._box()
        program = _Program(self.layers_, schema, x, lo, hi, int(self.max_levels))
        best = np.full_like(x, np.nan)
        eps = float(self.eps0)
        while eps <= self.eps_max:
            solution = program.solve(eps, int(self.node_limit), float(self.time_limit))
            if solution is None:
                break
            candidate = schema.snap(solution[None, :], x[None, :])
            if not accepts(model, candidate)[0]:
                eps += float(self.eps_step)
                continue
            best = candidate[0]
            worst, _ = worst_case_logit(model, candidate, delta, delta_b)
            if worst[0] >= 0:
                break
            eps += max(float(self.eps_step), -float(worst[0]))
        return best

    def generate(self, X: np.ndarray) -> np.ndarray:
        """Recourses for all rows of ``X`` (NaN rows where no accepted solution was found)."""
        self.check_fitted()
        X = self.check_factuals(X)
        result = np.full_like(X, np.nan)
        if len(X) == 0:
            return result
        lo, hi = self.schema_.bounds_for(X)
        certified, _ = delta_certified(self.model_, X, *self._box())
        for i in range(len(X)):  # one program per factual
            if accepts(self.model_, X[i : i + 1])[0] and certified[i]:
                result[i] = X[i]  # already robustly accepted: no change needed
                continue
            result[i] = self._robust_recourse(X[i], lo[i], hi[i])
        return result
