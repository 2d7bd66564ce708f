"""Certified robustness of recourse to model changes: the Delta-robustness check.

J. Jiang, F. Leofante, A. Rago and F. Toni (AAAI 2023), "Formalising the Robustness of
Counterfactual Explanations for Neural Networks" (arXiv:2208.14878). Reference code read:
junqi-jiang/robust-ce-inn@c4678bb (``optsolver.py``: the interval network and its MILP) and
RobustX@f503bfa (``robustness_evaluations/DeltaRobustnessEvaluator.py``).

A recourse ``x`` is *Delta-robust* when every model whose weights lie within ``delta`` and whose
biases lie within ``delta_b`` of the base model's (an L-infinity box around its parameters)
accepts it: the smallest log-odds over the box is >= 0 (our models accept at log-odds >= 0, the
authors' convention; RobustX asks > 0). Three proofs, all of the same quantity:

* **closed form** for a linear model (logistic regression, the linear SVM, whose box is around
  its Platt-composed weights, the ones it predicts with): ``w.x + b - delta ||x||_1 - delta_b``;
* **interval bound propagation** (IBP) for a ReLU MLP: a lower bound, so a certificate is sound;
  exact for one hidden layer, a relaxation for deeper networks (a node's value is decoupled
  across the nodes it feeds);
* **MILP** over the interval network (the authors' "mode 1", solved with scipy's ``milp``, HiGHS):
  exact for any depth. Each hidden node's value is any point of ``[relu(L_j(v)), relu(U_j(v))]``,
  with ``L_j``/``U_j`` the smallest and largest pre-activation the box allows given the previous
  layer's values ``v >= 0``; a binary per unstable node encodes the ReLU with big-M constants
  taken from the IBP bounds (tighter than the authors' fixed M = 10000). The first layer needs no
  binary (its input is the fixed ``x``), and ``x`` may have any sign there (the authors' ``lb * x``
  assumes ``x >= 0``).

:func:`worst_case_logit` picks the proof per model (``proof="exact"``: closed form, IBP for one
hidden layer, IBP then MILP on the rows IBP does not certify for deeper networks, which gives the
exact answer since IBP-certified implies MILP-certified; ``proof="ibp"``: IBP only, sound and
batched).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, OptimizeResult, milp
from torch import nn

from .api import Classifier, NotApplicable

Proof = Literal["exact", "ibp"]
PROOFS: tuple[str, ...] = ("exact", "ibp")
#: The default box half-width of ``mcer`` and of the ``delta-robustness`` metric (RobustX's
#: default for weights and biases; inputs in [0, 1]).
DEFAULT_DELTA = 0.005
Layers = list[tuple[np.ndarray, np.ndarray]]

#: A node whose IBP interval is this close to 0 on one side is treated as stable.
_STABLE = 0.0


@contextlib.contextmanager
def _stdout_silenced() -> Iterator[None]:
    """Send file descriptor 1 to /dev/null for the duration (not Python's ``sys.stdout`` only).

    HiGHS 1.12 prints a debug line (``HighsMipSolverData::transformNewIntegerFeasibleSolution
    tmpSolver.run();``, ERGO-Code/HiGHS#2783) from C++ straight to the process's stdout whenever
    it repairs a solution, whatever its output options say.
    """
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no file descriptor 1 (an embedded interpreter): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def solve_milp(objective: np.ndarray, **kwargs: Any) -> OptimizeResult:
    """Solve with ``scipy.optimize.milp`` (HiGHS), its stray debug output silenced."""
    with _stdout_silenced():
        return milp(objective, **kwargs)


def relu_layers(model: Classifier) -> Layers:
    """The ``(W, b)`` of every layer of a linear model or a ReLU MLP (``W`` of shape (out, in)).

    Raises :class:`NotApplicable` for any other model (a forest, a network with another
    activation): the Delta-box is a box around these parameters.
    """
    net = getattr(model, "net", None)
    modules = [net] if isinstance(net, nn.Linear) else list(getattr(net, "children", list)())
    linear = [m for m in modules if isinstance(m, nn.Linear)]
    others = [m for m in modules if not isinstance(m, (nn.Linear, nn.ReLU))]
    alternating = all(
        isinstance(m, nn.Linear) == (i % 2 == 0) for i, m in enumerate(modules)
    ) and isinstance(modules[-1] if modules else None, nn.Linear)
    if not linear or others or not alternating or linear[-1].out_features != 1:
        raise NotApplicable(
            f"the Delta-robustness check needs a linear model or a ReLU MLP; "
            f"{type(model).__name__} is not one"
        )
    return [
        (m.weight.detach().double().numpy().copy(), m.bias.detach().double().numpy().copy())
        for m in linear
    ]


def box_model_reason(name: str, model: Classifier) -> str | None:
    """Why method ``name`` cannot put a Delta-box around ``model`` (None when it can)."""
    try:
        relu_layers(model)
    except NotApplicable as exc:
        return f"{name}: {exc}"
    return None


def interval_bounds(
    layers: Layers, X: np.ndarray, delta: float, delta_b: float
) -> list[tuple[np.ndarray, np.ndarray]]:
    """IBP bounds ``(L, U)`` (each (n, width)) of every layer's pre-activation, for all rows.

    The last entry is the output log-odds, shape (n, 1). Sound: every model in the box gives a
    pre-activation inside ``[L, U]`` at every node.
    """
    X = np.asarray(X, dtype=float)
    W, b = layers[0]
    centre = X @ W.T + b
    spread = delta * np.abs(X).sum(axis=1, keepdims=True) + delta_b
    bounds = [(centre - spread, centre + spread)]
    for W, b in layers[1:]:
        low, high = (np.maximum(v, 0.0) for v in bounds[-1])  # the ReLU of the layer before
        lower_w, upper_w = W - delta, W + delta
        L = np.minimum(low[:, None, :] * lower_w, high[:, None, :] * lower_w).sum(axis=2)
        U = np.maximum(low[:, None, :] * upper_w, high[:, None, :] * upper_w).sum(axis=2)
        bounds.append((L + b - delta_b, U + b + delta_b))
    return bounds


def ibp_worst_logit(layers: Layers, X: np.ndarray, delta: float, delta_b: float) -> np.ndarray:
    """IBP's lower bound on the smallest log-odds over the box, per row.

    Exact for at most one hidden layer; for a linear model it is the closed form
    ``w.x + b - delta ||x||_1 - delta_b``.
    """
    return interval_bounds(layers, X, delta, delta_b)[-1][0][:, 0]


def milp_worst_logit(
    layers: Layers, x: np.ndarray, delta: float, delta_b: float
) -> tuple[float, list[np.ndarray]]:
    """The exact smallest log-odds at ``x`` over the box, and the hidden values attaining it.

    Solves the interval network's MILP for one point (a program per point: a MILP does not batch).

    Returns
    -------
    value : float
        The minimum of the output log-odds over every model in the box.
    hidden : list of ndarray
        The post-ReLU values of each hidden layer at the minimiser (for rebuilding a model of the
        box that attains ``value``; see :func:`adversarial_layers`).
    """
    x = np.asarray(x, dtype=float).reshape(1, -1)
    bounds = [(L[0], U[0]) for L, U in interval_bounds(layers, x, delta, delta_b)]
    if len(layers) == 1:
        return float(bounds[0][0][0]), []
    widths = [len(b) for _, b in layers[:-1]]
    # variables: every hidden layer's values n, then a binary a per node of layers 2.. (the
    # first layer's values only need bounds: its pre-activation interval is a constant)
    n_start = np.concatenate([[0], np.cumsum(widths)])
    n_values = int(n_start[-1])
    a_start = n_values + np.concatenate([[0], np.cumsum(widths[1:])])
    n_vars = int(a_start[-1]) if len(widths) > 1 else n_values
    lower, upper = np.zeros(n_vars), np.zeros(n_vars)
    integrality = np.zeros(n_vars)
    L1, U1 = bounds[0]
    lower[: widths[0]], upper[: widths[0]] = np.maximum(L1, 0.0), np.maximum(U1, 0.0)
    rows: list[np.ndarray] = []
    row_lo: list[float] = []
    row_hi: list[float] = []
    for k in range(1, len(widths)):
        W, b = layers[k]
        L, U = bounds[k]
        prev = slice(int(n_start[k - 1]), int(n_start[k]))
        for j in range(widths[k]):
            n_j, a_j = int(n_start[k]) + j, int(a_start[k - 1]) + j
            upper[n_j] = max(U[j], 0.0)
            integrality[a_j] = 1
            lower[a_j] = 1.0 if U[j] <= _STABLE else 0.0  # always off
            upper[a_j] = 0.0 if L[j] >= _STABLE else 1.0  # always on
            # n_j >= sum (W - delta) v + b - delta_b
            row = np.zeros(n_vars)
            row[n_j] = 1.0
            row[prev] = -(W[j] - delta)
            rows.append(row)
            row_lo.append(b[j] - delta_b)
            row_hi.append(np.inf)
            # n_j <= sum (W + delta) v + b + delta_b + M2 a_j
            row = np.zeros(n_vars)
            row[n_j] = 1.0
            row[prev] = -(W[j] + delta)
            row[a_j] = -max(-L[j], 0.0)
            rows.append(row)
            row_lo.append(-np.inf)
            row_hi.append(b[j] + delta_b)
            # n_j <= M1 (1 - a_j)
            row = np.zeros(n_vars)
            row[n_j] = 1.0
            row[a_j] = max(U[j], 0.0)
            rows.append(row)
            row_lo.append(-np.inf)
            row_hi.append(max(U[j], 0.0))
    W_out, b_out = layers[-1]
    objective = np.zeros(n_vars)
    objective[int(n_start[-2]) : int(n_start[-1])] = W_out[0] - delta
    constraints = [LinearConstraint(np.array(rows), row_lo, row_hi)] if rows else []
    result = solve_milp(
        objective,
        constraints=constraints,
        integrality=integrality,
        bounds=Bounds(lower, upper),
        options={"mip_rel_gap": 1e-9},
    )
    if not result.success:  # the program is always feasible; a solver failure is a bug
        raise RuntimeError(f"Delta-robustness MILP failed: {result.message}")
    hidden = [result.x[int(n_start[k]) : int(n_start[k + 1])] for k in range(len(widths))]
    return float(result.fun + b_out[0] - delta_b), hidden


def adversarial_layers(
    layers: Layers, x: np.ndarray, hidden: list[np.ndarray], delta: float, delta_b: float
) -> Layers:
    """A model of the box whose hidden values at ``x`` are ``hidden`` (from the MILP).

    Node by node, the weights and bias are the all-lower ones moved towards the all-upper ones
    until the pre-activation reaches the value the MILP chose (the inputs are >= 0 after the first
    layer, so the pre-activation grows monotonically along that path); the output layer takes its
    lower weights. Its plain forward pass at ``x`` gives :func:`milp_worst_logit`'s value: the
    certificate's counterexample when that value is negative.
    """
    x = np.asarray(x, dtype=float)
    inputs, built = x, []
    for (W, b), values in zip(layers[:-1], hidden, strict=True):
        if inputs is x:  # first layer: sign-aware ends of the box
            low_w, high_w = W - delta * np.sign(x), W + delta * np.sign(x)
        else:
            low_w, high_w = W - delta, W + delta
        low = low_w @ inputs + b - delta_b
        high = high_w @ inputs + b + delta_b
        target = np.where(values > 0, values, np.minimum(low, 0.0))
        t = np.clip((target - low) / np.where(high > low, high - low, 1.0), 0.0, 1.0)
        built.append((low_w + t[:, None] * (high_w - low_w), b - delta_b + t * 2 * delta_b))
        inputs = np.maximum(built[-1][0] @ inputs + built[-1][1], 0.0)
    W, b = layers[-1]
    built.append((W - delta, b - delta_b))
    return built


def worst_case_logit(
    model: Classifier,
    X: np.ndarray,
    delta: float,
    delta_b: float | None = None,
    proof: Proof = "exact",
) -> tuple[np.ndarray, str]:
    """The smallest log-odds of each row of ``X`` over the box, and how it was proved.

    Parameters
    ----------
    model : Classifier
        A linear model or a ReLU MLP (:func:`relu_layers`); anything else raises
        :class:`NotApplicable`.
    X : ndarray (n, d)
        Points in model space (NaN rows give NaN).
    delta, delta_b : float
        Half-widths of the box on every weight and on every bias (``delta_b`` defaults to
        ``delta``, as the authors).
    proof : {"exact", "ibp"}
        ``exact``: closed form or IBP where they are exact (0 or 1 hidden layer), else IBP then
        the MILP on every row IBP does not certify; ``ibp``: the sound IBP bound only.

    Returns
    -------
    values : ndarray (n,)
        Exact minima, or IBP's lower bounds (for deeper networks with ``proof="ibp"``, or on the
        rows IBP already certifies: there the exact minimum is >= the bound >= 0).
    how : str
        The proof, for the row's note: ``closed form (linear)``, ``IBP (exact for one hidden
        layer)``, ``IBP (sound)``, or ``IBP + MILP (exact)``.
    """
    if proof not in PROOFS:
        raise ValueError(f"proof must be one of {', '.join(PROOFS)}, got {proof!r}")
    delta_b = delta if delta_b is None else delta_b
    layers = relu_layers(model)
    X = np.asarray(X, dtype=float)
    values = np.full(len(X), np.nan)
    rows = ~np.isnan(X).any(axis=1)
    if rows.any():
        values[rows] = ibp_worst_logit(layers, X[rows], delta, delta_b)
    if len(layers) == 1:
        return values, "closed form (linear)"
    if len(layers) == 2:
        return values, "IBP (exact for one hidden layer)"
    if proof == "ibp":
        return values, "IBP (sound)"
    for i in np.flatnonzero(rows & (values < 0)):
        values[i] = milp_worst_logit(layers, X[i], delta, delta_b)[0]
    return values, "IBP + MILP (exact)"


def delta_certified(
    model: Classifier,
    X: np.ndarray,
    delta: float,
    delta_b: float | None = None,
    proof: Proof = "exact",
) -> tuple[np.ndarray, str]:
    """Whether every model of the box accepts each row (False for NaN rows), and the proof."""
    values, how = worst_case_logit(model, X, delta, delta_b, proof)
    return np.nan_to_num(values, nan=-np.inf) >= 0, how
