"""DiCE: diverse counterfactual explanations, the gradient method ("DiverseCF").

Mothilal, Sharma and Tan (2020), "Explaining machine learning classifiers through diverse
counterfactual explanations", FAT* 2020, arXiv:1905.07697; reference code interpretml/DiCE
(``dice_ml/explainer_interfaces/dice_pytorch.py`` and ``explainer_base.py``).

Algorithm (all factuals in one batched tensor computation: the k counterfactuals of the n
factuals are one (n, k, d) tensor; every step below acts on each factual's set on its own):

1. start the k counterfactuals of a factual x at c_i = x + 0.01 i on its mutable features (x on
   the others), clipped to the per-row box (bounds and directions);
2. minimise with Adam, per factual,

       L(C) = 1/k sum_i yloss(c_i) + proximity_weight / (k d) sum_i dist(c_i, x)
              - diversity_weight * div(C)
              + categorical_penalty * sum_i sum_G (sum_{j in G} c_ij - 1)^2,

   where yloss is the hinge loss relu(1 - f(c)) on the model's log-odds f, dist(a, b) =
   sum_j w_j |a_j - b_j| with w_j = round(1 / MAD_j, 2) for numeric features (MAD in model space
   on the training data, 1 where it is 0) and 1 for one-hot and binary columns, and div the DPP
   diversity det(K) with K_ij = 1 / (1 + dist(c_i, c_j)) (+1e-4 on the diagonal), 0 for k = 1.
   Immutable (and pinned) coordinates get no gradient; after each step every coordinate is
   clipped to the per-row box. One-hot groups are only pulled towards a sum of 1 by the penalty
   (as in DiCE; no simplex projection);
3. after every step round a copy of the set (as ``schema.snap`` does: integer grids, argmax per
   one-hot group) and keep, as a backup, the rounded set that is entirely valid (probability >=
   ``stopping_threshold``) with the smallest mean distance of its probabilities to the threshold;
4. a factual stops after at least ``min_iter`` steps once its loss changed by at most
   ``loss_diff_thres`` for ``loss_converge_maxiter`` consecutive steps and its whole rounded set is
   valid, or after ``max_iter`` steps. Its rounded final set is kept if entirely valid, otherwise
   the backup if there is one; counterfactuals the model rejects (probability below
   ``stopping_threshold`` or ``predict`` 0) are dropped (NaN);
5. post-hoc sparsity: for each numeric mutable feature, in decreasing order of its threshold
   min(quantile_q of |v - median| over the feature's distinct training values, MAD), every valid
   counterfactual within that threshold of the factual on the feature is moved back towards the
   factual's value as far as it stays valid (first the whole way, else a 20-step bisection);
6. one counterfactual per factual goes to the harness (see *Which counterfactual*); all k are kept
   in ``last_counterfactuals_``, shape (n, k, d), NaN where a counterfactual is not valid, and the
   index chosen in ``last_selected_`` (-1 where none).

Which counterfactual: with ``select="first"`` (the default) the valid counterfactual of lowest
index, i.e. the first row of the ``final_cfs_df`` that DiCE returns for the factual (DiCE lists
only the valid counterfactuals, in index order). That is the row CARLA's wrapper hands on: it
concatenates the ``final_cfs_df`` frames of the factuals and reads one row per factual (it asks
DiCE for ``num=1``, where the first row is the only one). The paper scores whole sets and never
picks one; GenRe's k = 2 variant picks one by a fair coin, which would make the method stochastic
for no gain. The first counterfactual starts at the factual itself, so it is usually the
cheapest of its set. ``select="closest"`` returns the valid one nearest the factual in DiCE's
own distance instead. Unlike CARLA's wrapper, which reads the frame before post-hoc sparsity, we
return the sparsified counterfactual, as DiCE displays by default.

Hyperparameters (ours = authors' default unless said):

- ``k=4``: DiCE's ``total_CFs``, the user's choice in DiCE; 4 is the value of DiCE's examples;
- ``proximity_weight=0.5``, ``diversity_weight=1.0``, ``categorical_penalty=0.1``;
- ``yloss_type="hinge_loss"`` (also ``"log_loss"``, ``"l2_loss"``): computed on the model's
  log-odds directly, where DiCE recovers them from the probability as log((p - 1e-6) / (1 - (p -
  1e-6))) (a difference of order 1e-6);
- ``diversity_loss_type="dpp_style:inverse_dist"`` (also ``"avg_dist"``: 1 - mean over pairs of
  1 / (1 + dist));
- ``feature_weights="inverse_mad"`` (also ``"unit"``: every weight 1, plain L1);
- ``learning_rate=0.05`` (Adam, torch's betas and eps);
- ``min_iter=500``, ``max_iter=5000``, ``loss_diff_thres=1e-5``, ``loss_converge_maxiter=1``
  (the DiCE docstring says the paper used 2);
- ``stopping_threshold=0.5`` (DiCE raises a value below 0.5 to 0.75 for the favourable class; we
  refuse values below 0.5);
- ``posthoc_sparsity_param=0.1`` (0 disables it; DiCE's linear algorithm);
- ``select="first"`` (ours; see above), ``random_state=None`` (accepted for the uniform
  interface; the search is deterministic).

Where we differ from the authors' code, and why:

- immutables are DiCE's ``features_to_vary`` complement; directions (age may only grow) and
  per-row bounds, which DiCE cannot state, are enforced by the clip of every step and the final
  ``schema.snap``; DiCE also rounds real-valued features to the data's decimal precision in raw
  units, which model space does not carry: only integer and ordinal grids are rounded;
- binary columns (one model-space column) are rounded on their {0, 1} grid and weighted 1, as DiCE
  weighs one-hot columns; DiCE would encode them as a two-level one-hot group;
- ``post-hoc sparsity`` walks each feature back by bisection rather than DiCE's steps of one unit
  of precision (at most 10,000): the same end point where validity is monotone along the segment,
  found in 21 model calls per feature, and always valid; its thresholds are computed in model
  space, where DiCE uses raw units (the ratio of a feature's threshold to its range is the same);
- the computation is float64 (the models are) and batched: each factual keeps its own stopping
  rule, backup and Adam state, so a factual's counterfactuals do not depend on the other rows;
- DiCE's alternative random initialisation (``RandomInitCF``) and ``tie_random`` are not offered:
  the method is deterministic.

``fit`` reads the training data for the MADs and the sparsity thresholds (hence the ``trains``
tag); no model is trained.

Pitfalls avoided (CATALOGUE A1): CARLA's "dice" is DiCE's *random* sampler with every feature
mutable, and GenRe's ``DICEDiv`` adds the diversity term with the wrong sign, measures proximity
to x + 0.01 and never rounds one-hot groups; here groups are rounded by argmax per group, never
per column.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch.nn import functional as F

from ..api import (
    Classifier,
    ConfigError,
    Interval,
    MethodTags,
    Options,
    RecourseMethod,
    Schema,
    Splits,
)
from ..models._torch import as_tensor
from ..registry import register
from ._search import accepts

YLOSS_TYPES = ("hinge_loss", "log_loss", "l2_loss")
DIVERSITY_TYPES = ("dpp_style:inverse_dist", "avg_dist")
FEATURE_WEIGHTS = ("inverse_mad", "unit")
SELECTIONS = ("first", "closest")

#: Kinds of column DiCE treats as continuous: inverse-MAD weights and post-hoc sparsity.
NUMERIC_KINDS = ("continuous", "integer", "ordinal")
#: Added to the diagonal of the DPP kernel, as in DiCE.
DPP_JITTER = 1e-4
#: Offset between the initial counterfactuals of one factual (DiCE's init_near_query_instance).
INIT_OFFSET = 0.01
#: Bisection steps of the post-hoc sparsity search.
SPARSITY_STEPS = 20
#: Adam's constants (torch's defaults, which DiCE uses).
BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


# ------------------------------------------------------------------------ the loss, by parts
def feature_weights(schema: Schema, X_train: np.ndarray, kind: str = "inverse_mad") -> np.ndarray:
    """DiCE's per-column distance weights, shape (d,).

    ``inverse_mad``: round(1 / MAD_j, 2) for a numeric column (MAD of the training data in model
    space; a MAD of 0 counts as 1), 1 for one-hot and binary columns. ``unit``: all 1.
    """
    weights = np.ones(schema.n_features)
    if kind == "unit":
        return weights
    for j, column_kind in enumerate(schema.kinds):
        if column_kind in NUMERIC_KINDS:
            weights[j] = round(1.0 / _mad(X_train[:, j]), 2)
    return weights


def _mad(values: np.ndarray) -> float:
    """Median absolute deviation; 1 where it is 0 (DiCE's ``get_valid_mads``)."""
    mad = float(np.median(np.abs(values - np.median(values))))
    return mad if mad > 0 else 1.0


def sparsity_thresholds(schema: Schema, X_train: np.ndarray, quantile: float) -> np.ndarray:
    """Per column, how close to the factual a counterfactual must be for post-hoc sparsity.

    For a mutable numeric column: min(quantile ``quantile`` of |v - median| over the column's
    distinct training values, MAD), as in DiCE's ``do_posthoc_sparsity_enhancement``; NaN for
    the other columns (one-hot, binary, immutable), which the search leaves alone.
    """
    thresholds = np.full(schema.n_features, np.nan)
    if quantile <= 0:
        return thresholds
    for j, column_kind in enumerate(schema.kinds):
        if column_kind in NUMERIC_KINDS and not schema.immutable[j]:
            distinct = np.unique(X_train[:, j])
            spread = np.quantile(np.abs(distinct - np.median(distinct)), quantile)
            thresholds[j] = min(float(spread), _mad(X_train[:, j]))
    return thresholds


def weighted_distance(a: torch.Tensor, b: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """DiCE's ``compute_dist``: sum_j w_j |a_j - b_j| over the last axis (broadcasting)."""
    return ((a - b).abs() * weights).sum(dim=-1)


def y_loss(logits: torch.Tensor, kind: str = "hinge_loss") -> torch.Tensor:
    """Loss of the favourable class, elementwise on log-odds ``f``.

    ``hinge_loss``: relu(1 - f); ``log_loss``: -log sigmoid(f); ``l2_loss``: (sigmoid(f) - 1)^2.
    """
    if kind == "hinge_loss":
        return F.relu(1.0 - logits)
    if kind == "log_loss":
        return F.softplus(-logits)
    return (torch.sigmoid(logits) - 1.0) ** 2


def diversity(Z: torch.Tensor, weights: torch.Tensor, kind: str) -> torch.Tensor:
    """Diversity of each factual's set of counterfactuals ``Z`` (n, k, d), shape (n,).

    ``dpp_style:inverse_dist``: det K with K_ij = 1 / (1 + dist(c_i, c_j)) and 1e-4 added to the
    diagonal; ``avg_dist``: 1 - mean over pairs i < j of 1 / (1 + dist(c_i, c_j)). 0 for k = 1.
    """
    n, k, _ = Z.shape
    if k == 1:
        return Z.new_zeros(n)
    kernel = 1.0 / (1.0 + weighted_distance(Z[:, :, None, :], Z[:, None, :, :], weights))
    if kind == "avg_dist":
        upper = torch.triu_indices(k, k, offset=1)
        return 1.0 - kernel[:, upper[0], upper[1]].mean(dim=1)
    return torch.linalg.det(kernel + DPP_JITTER * torch.eye(k, dtype=Z.dtype))


class _Rounding:
    """``schema.snap``'s rounding in torch, for candidates (..., d) already inside their box.

    Integer and ordinal columns go to their grid (clipped to the box again), each one-hot
    group to its largest member (the first on a tie), as :meth:`Schema.snap` does.
    """

    def __init__(self, schema: Schema):
        steps = np.asarray(schema.steps, dtype=float)
        on_grid = steps > 0
        self.grid = torch.as_tensor(np.flatnonzero(on_grid))
        self.step = as_tensor(steps[on_grid])
        self.lower = as_tensor(schema.lower_array[on_grid])
        groups = [list(g) for g in schema.groups]
        width = max((len(g) for g in groups), default=0)
        self.index = torch.tensor([g + g[:1] * (width - len(g)) for g in groups], dtype=torch.long)
        self.member = torch.tensor([[i < len(g) for i in range(width)] for g in groups])

    def __call__(self, Z: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
        """The rounded candidates (a new tensor); ``lo`` and ``hi`` broadcast against ``Z``."""
        out = Z.clone()
        if len(self.grid):
            units = torch.round((out[..., self.grid] - self.lower) / self.step)
            cells = self.lower + units * self.step
            low, high = lo[..., self.grid], hi[..., self.grid]
            out[..., self.grid] = torch.minimum(torch.maximum(cells, low), high)
        if len(self.index):
            blocks = out[..., self.index].masked_fill(~self.member, float("-inf"))
            winner = blocks.argmax(dim=-1, keepdim=True)
            onehot = torch.zeros_like(blocks).scatter_(-1, winner, 1.0)
            out[..., self.index[self.member]] = onehot[..., self.member]
        return out


# ---------------------------------------------------------------------------------- method
@register("method", "dice")
class Dice(RecourseMethod):
    """DiCE's gradient method: k diverse counterfactuals per factual, one returned.

    Parameters
    ----------
    k : int, default 4
        Counterfactuals optimised together per factual (DiCE's ``total_CFs``).
    proximity_weight : float, default 0.5
        Weight of the mean weighted L1 distance to the factual.
    diversity_weight : float, default 1.0
        Weight of the diversity term (subtracted from the loss).
    categorical_penalty : float, default 0.1
        Weight of the penalty pulling each one-hot group towards a sum of 1.
    yloss_type : {"hinge_loss", "log_loss", "l2_loss"}, default "hinge_loss"
        Loss of the favourable class.
    diversity_loss_type : {"dpp_style:inverse_dist", "avg_dist"}, default "dpp_style:inverse_dist"
        Diversity term.
    feature_weights : {"inverse_mad", "unit"}, default "inverse_mad"
        Weights of the distance (proximity and diversity).
    learning_rate : float, default 0.05
        Adam's learning rate.
    min_iter, max_iter : int, default 500 and 5000
        Least and most Adam steps per factual.
    loss_diff_thres : float, default 1e-5
        A factual's loss has converged when it changes by at most this much in a step.
    loss_converge_maxiter : int, default 1
        Consecutive converged steps needed (with a valid rounded set) to stop.
    stopping_threshold : float, default 0.5
        Least probability of the favourable class for a counterfactual to count as valid.
    posthoc_sparsity_param : float, default 0.1
        Quantile of the post-hoc sparsity thresholds (0 disables post-hoc sparsity).
    select : {"first", "closest"}, default "first"
        Which valid counterfactual of the set is returned (see the module docstring).
    random_state : int or None, default None
        Unused: the search is deterministic. Accepted so that every method has the parameter.

    Attributes
    ----------
    feature_weights_ : ndarray of shape (d,)
        The distance weights (after ``fit``).
    sparsity_thresholds_ : ndarray of shape (d,)
        Post-hoc sparsity threshold per column, NaN where the search leaves it alone.
    last_counterfactuals_ : ndarray of shape (n, k, d)
        All k counterfactuals of each factual of the last ``generate``, NaN where not valid.
    last_selected_ : ndarray of shape (n,)
        Index of the returned counterfactual in its set, -1 where none was valid.
    last_n_iter_ : ndarray of shape (n,)
        Adam steps each factual of the last ``generate`` ran.
    """

    tags = MethodTags(requires_differentiable=True, trains=True, batch_invariant=True)

    parameter_constraints: ClassVar[dict[str, Any]] = {
        "k": (Interval("int", low=1),),
        "proximity_weight": (Interval("float", low=0),),
        "diversity_weight": (Interval("float", low=0),),
        "categorical_penalty": (Interval("float", low=0),),
        "yloss_type": (Options(YLOSS_TYPES),),
        "diversity_loss_type": (Options(DIVERSITY_TYPES),),
        "feature_weights": (Options(FEATURE_WEIGHTS),),
        "learning_rate": (Interval("float", low=0, open_low=True),),
        "min_iter": (Interval("int", low=0),),
        "max_iter": (Interval("int", low=1),),
        "loss_diff_thres": (Interval("float", low=0),),
        "loss_converge_maxiter": (Interval("int", low=1),),
        "stopping_threshold": (Interval("float", low=0.5, high=1, open_high=True),),
        "posthoc_sparsity_param": (Interval("float", low=0, high=1),),
        "select": (Options(SELECTIONS),),
        "random_state": (Interval("int"), None),
    }

    #: A shorter budget for the conformance kit and the registry-wide tests.
    _test_params: ClassVar[dict[str, Any]] = {"min_iter": 50, "max_iter": 500}

    def __init__(
        self,
        k: int = 4,
        proximity_weight: float = 0.5,
        diversity_weight: float = 1.0,
        categorical_penalty: float = 0.1,
        yloss_type: str = "hinge_loss",
        diversity_loss_type: str = "dpp_style:inverse_dist",
        feature_weights: str = "inverse_mad",
        learning_rate: float = 0.05,
        min_iter: int = 500,
        max_iter: int = 5000,
        loss_diff_thres: float = 1e-5,
        loss_converge_maxiter: int = 1,
        stopping_threshold: float = 0.5,
        posthoc_sparsity_param: float = 0.1,
        select: str = "first",
        random_state: int | None = None,
    ):
        self.k = k
        self.proximity_weight = proximity_weight
        self.diversity_weight = diversity_weight
        self.categorical_penalty = categorical_penalty
        self.yloss_type = yloss_type
        self.diversity_loss_type = diversity_loss_type
        self.feature_weights = feature_weights
        self.learning_rate = learning_rate
        self.min_iter = min_iter
        self.max_iter = max_iter
        self.loss_diff_thres = loss_diff_thres
        self.loss_converge_maxiter = loss_converge_maxiter
        self.stopping_threshold = stopping_threshold
        self.posthoc_sparsity_param = posthoc_sparsity_param
        self.select = select
        self.random_state = random_state

    def validate_params(self) -> None:
        """Check every parameter, and that ``min_iter`` does not exceed ``max_iter``."""
        super().validate_params()
        if self.min_iter > self.max_iter:
            raise ConfigError(
                f"{self.name}: min_iter ({self.min_iter}) must not exceed max_iter "
                f"({self.max_iter})"
            )

    def fit(self, model: Classifier, splits: Splits) -> Dice:
        """Attach the model; compute the distance weights and sparsity thresholds from X_train."""
        super().fit(model, splits)
        X_train = np.asarray(splits.X_train, dtype=float)
        self.feature_weights_ = feature_weights(splits.schema, X_train, self.feature_weights)
        self.sparsity_thresholds_ = sparsity_thresholds(
            splits.schema, X_train, float(self.posthoc_sparsity_param)
        )
        return self

    # ----------------------------------------------------------------------------- generate
    def generate(self, X: np.ndarray) -> np.ndarray:
        """One recourse per row of ``X`` (NaN rows where DiCE found no valid counterfactual)."""
        self.check_fitted()
        X = self.check_factuals(X)
        n, d = X.shape
        k = int(self.k)
        if not n:
            self.last_counterfactuals_ = np.full((0, k, d), np.nan)
            self.last_selected_ = np.zeros(0, dtype=int)
            self.last_n_iter_ = np.zeros(0, dtype=int)
            return X.copy()
        with torch.enable_grad():
            sets = self._optimise(X)  # (n, k, d), snapped
        factuals = np.repeat(X, k, axis=0)
        flat = sets.reshape(n * k, d)
        valid = self._valid(flat)
        flat[valid] = self._sparsify(flat[valid], factuals[valid])
        flat[~valid] = np.nan
        sets = flat.reshape(n, k, d)
        self.last_counterfactuals_ = sets
        self.last_selected_ = self._choose(sets, X)
        out = np.full_like(X, np.nan)
        chosen = self.last_selected_ >= 0
        out[chosen] = sets[chosen, self.last_selected_[chosen]]
        return out

    def recourse_sets(self) -> np.ndarray | None:
        """All k counterfactuals of each factual of the last ``generate`` (NaN: not valid)."""
        return getattr(self, "last_counterfactuals_", None)

    def _valid(self, C: np.ndarray) -> np.ndarray:
        """Rows of ``C`` the model accepts with probability >= ``stopping_threshold``."""
        ok = accepts(self.model_, C, float(self.stopping_threshold))
        if ok.any():
            ok[ok] = np.asarray(self.model_.predict(C[ok])) == 1
        return ok

    def _logits(self, Z: torch.Tensor) -> torch.Tensor:
        """The model's log-odds of rows ``Z`` (a differentiable model, by the tags)."""
        model: Any = self.model_
        return model.logits(Z)

    def _loss(
        self, Z: torch.Tensor, x: torch.Tensor, weights: torch.Tensor, membership: torch.Tensor
    ) -> torch.Tensor:
        """DiCE's loss of each factual's set ``Z`` (m, k, d) given its factuals ``x`` (m, d).

        ``membership`` (d, G) marks the columns of each one-hot group.
        """
        m, k, d = Z.shape
        logits = self._logits(Z.reshape(m * k, d)).reshape(m, k)
        loss = y_loss(logits, self.yloss_type).mean(dim=1)
        if self.proximity_weight > 0:
            distance = weighted_distance(Z, x[:, None, :], weights).sum(dim=1)
            loss = loss + self.proximity_weight * distance / (k * d)
        if self.diversity_weight > 0:
            loss = loss - self.diversity_weight * diversity(Z, weights, self.diversity_loss_type)
        if self.schema_.groups and self.categorical_penalty > 0:
            sums = Z @ membership
            loss = loss + self.categorical_penalty * ((sums - 1.0) ** 2).sum(dim=(1, 2))
        return loss

    def _optimise(self, X: np.ndarray) -> np.ndarray:
        """Adam on every factual's set at once, with DiCE's per-factual stopping and backup.

        Returns the snapped sets, shape (n, k, d): the final set of each factual where it is
        entirely valid, else its backup where it has one, else the (invalid) final set.
        """
        schema, k = self.schema_, int(self.k)
        n, d = X.shape
        threshold = float(self.stopping_threshold)
        weights = as_tensor(self.feature_weights_)
        membership = torch.zeros(d, len(schema.groups), dtype=weights.dtype)
        for g, group in enumerate(schema.groups):
            membership[list(group), g] = 1.0
        rounding = _Rounding(schema)
        lo, hi = (as_tensor(b)[:, None, :] for b in schema.bounds_for(X))
        free = lo < hi  # coordinates a step may move (immutables and pinned ones are frozen)
        mutable = torch.as_tensor(schema.mutable_mask)
        offsets = INIT_OFFSET * torch.arange(k, dtype=lo.dtype)[None, :, None]
        x_all = as_tensor(X)

        # the state of the factuals still optimised, whose indices are `rows`
        rows = np.arange(n)
        z = torch.minimum(torch.maximum(x_all[:, None, :] + offsets * mutable, lo), hi)
        first, second = torch.zeros_like(z), torch.zeros_like(z)  # Adam's moments
        previous = torch.zeros(n, dtype=z.dtype)
        change = torch.ones(n, dtype=z.dtype)  # DiCE starts with a loss difference of 1
        converged_for = np.zeros(n, dtype=int)
        rounded_valid: np.ndarray = np.zeros(n, dtype=bool)

        final = np.empty((n, k, d))
        steps_run = np.zeros(n, dtype=int)
        backup = np.full((n, k, d), np.nan)
        backup_gap = np.full(n, np.inf)
        for step in range(int(self.max_iter) + 1):
            # DiCE's stop_loop, per factual
            if step >= self.min_iter:
                stop = np.ones(len(rows), dtype=bool)
                if step < self.max_iter:
                    small = change.numpy() <= self.loss_diff_thres
                    converged_for = np.where(small, converged_for + 1, 0)
                    stop = small & (converged_for >= self.loss_converge_maxiter) & rounded_valid
                if stop.any():
                    final[rows[stop]] = z[torch.as_tensor(stop)].numpy()
                    steps_run[rows[stop]] = step
                    keep, kept = ~stop, torch.as_tensor(~stop)
                    rows, converged_for = rows[keep], converged_for[keep]
                    z, first, second = z[kept], first[kept], second[kept]
                    lo, hi, free = lo[kept], hi[kept], free[kept]
                    previous, change = previous[kept], change[kept]
                    if not len(rows):
                        break
            # one Adam step (torch's update, written out so that finished rows can leave)
            current = z.clone().requires_grad_(True)
            loss = self._loss(current, x_all[rows], weights, membership)
            (gradient,) = torch.autograd.grad(loss.sum(), current)
            with torch.no_grad():
                gradient = gradient * free
                first.mul_(BETAS[0]).add_(gradient, alpha=1 - BETAS[0])
                second.mul_(BETAS[1]).addcmul_(gradient, gradient, value=1 - BETAS[1])
                t = step + 1
                denominator = (second.sqrt() / (1 - BETAS[1] ** t) ** 0.5).add_(ADAM_EPS)
                z = z - (self.learning_rate / (1 - BETAS[0] ** t)) * first / denominator
                z = torch.minimum(torch.maximum(z, lo), hi)
                change = (loss.detach() - previous).abs()
                previous = loss.detach()
                # round a copy; back up the entirely valid set nearest the threshold
                rounded = rounding(z, lo, hi)
                proba = torch.sigmoid(self._logits(rounded.reshape(-1, d)))
                proba_np = proba.reshape(len(rows), k).numpy()
            rounded_valid = np.asarray((proba_np >= threshold).all(axis=1))
            gap = np.abs(proba_np - threshold).mean(axis=1)
            better = rounded_valid & (gap < backup_gap[rows])
            if better.any():
                backup_gap[rows[better]] = gap[better]
                backup[rows[better]] = rounded[torch.as_tensor(better)].numpy()

        all_valid = self._valid(schema.snap(final.reshape(-1, d), np.repeat(X, k, axis=0)))
        fall_back = ~all_valid.reshape(n, k).all(axis=1) & np.isfinite(backup_gap)
        final[fall_back] = backup[fall_back]
        self.last_n_iter_ = steps_run
        return schema.snap(final.reshape(-1, d), np.repeat(X, k, axis=0)).reshape(n, k, d)

    def _sparsify(self, C: np.ndarray, X: np.ndarray) -> np.ndarray:
        """DiCE's post-hoc sparsity on valid counterfactuals ``C`` of factuals ``X`` (rows)."""
        thresholds = self.sparsity_thresholds_
        columns = np.flatnonzero(np.isfinite(thresholds))
        if not len(C) or not len(columns):
            return C
        C = C.copy()
        for j in columns[np.argsort(-thresholds[columns], kind="stable")]:
            gap = X[:, j] - C[:, j]
            rows = np.flatnonzero((np.abs(gap) <= thresholds[j]) & (gap != 0))
            if not len(rows):
                continue

            def moved(t: np.ndarray, rows: np.ndarray = rows, j: int = j) -> np.ndarray:
                """The counterfactuals ``rows`` with column j moved a share t towards X."""
                candidate = C[rows].copy()
                step = C[rows, j] + t * (X[rows, j] - C[rows, j])
                candidate[:, j] = np.where(t == 1, X[rows, j], step)
                return self.schema_.snap(candidate, X[rows])

            back = moved(np.ones(len(rows)))  # the factual's own value
            whole = self._valid(back)
            C[rows[whole]] = back[whole]
            rows = rows[~whole]
            low, high = np.zeros(len(rows)), np.ones(len(rows))
            for _ in range(SPARSITY_STEPS if len(rows) else 0):
                mid = (low + high) / 2
                valid = self._valid(moved(mid, rows))
                low, high = np.where(valid, mid, low), np.where(valid, high, mid)
            if len(rows):
                C[rows] = moved(low, rows)
        return C

    def _choose(self, sets: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Index of the returned counterfactual of each set (-1 where none is valid)."""
        valid = ~np.isnan(sets).any(axis=2)
        if self.select == "closest":
            cost = (np.abs(sets - X[:, None, :]) * self.feature_weights_).sum(axis=2)
            choice = np.argmin(np.where(valid, cost, np.inf), axis=1)
        else:
            choice = np.argmax(valid, axis=1)
        return np.where(valid.any(axis=1), choice, -1)
