"""FeatureTweak: the cheapest epsilon-satisfactory move into a positive leaf of a tree ensemble.

Tolomei, Silvestri, Haines and Lalmas (2017), "Interpretable Predictions of Tree-based Ensembles
via Actionable Feature Tweaking", KDD 2017 (arXiv:1706.06691). Exact for a random forest (or a
single decision tree) of scikit-learn: it reads the trees (``model.trees``), so it declares
``MethodTags(requires_trees=True)`` and is skipped on every other model. That includes
``boosting``: scikit-learn's histogram gradient boosting sums regression trees of the log-odds,
whose leaves are not class votes, so a "positive path" of one of its trees does not exist and
the paper's search does not apply (boosting gets growing spheres, FACE, and AR and ROAR with
their LIME surrogates instead).

Algorithm (CATALOGUE.md, A5):

1. every root-to-leaf path of every tree whose leaf predicts the favourable class (a *positive
   path*) is a box: per feature, the intersection (lo, hi] of the path's conditions
   (``x_f <= t`` on the left, ``x_f > t`` on the right; the trees compare float32 values, and
   so does every test here);
2. the epsilon-satisfactory tweak of a factual x for a positive path: every feature already
   inside its interval keeps its value; one below it moves to lo + ``epsilon``, one above it
   to hi - ``epsilon`` (to the interval's midpoint where it is narrower than 2 ``epsilon``).
   The schema is kept feature by feature: an integer or ordinal feature goes to the grid
   point nearest that value inside the interval; the value is clipped to the factual's box
   (bounds and directions; an immutable feature's box is the factual's value), and the path is
   *infeasible* for x when the result no longer satisfies the interval (it needs an immutable
   feature changed, or a move against a direction). A one-hot group is one unit: its
   conditions on the group's columns (each column 0 or 1) leave a set of levels; the level is
   kept if allowed, else switched to the path's required level (or the first allowed one),
   and the path is infeasible if no level is allowed or the group is immutable;
3. the cost of a tweak is its distance to x (``cost``: L2, CARLA's and the catalogue's
   default, or L1; a level switch of a one-hot group counts as its two changed columns);
4. the recourse is the cheapest tweak, over the positive paths of *all* trees, that the whole
   forest accepts (``predict_proba >= 0.5``, the model's own rule), snapped with
   ``schema.snap`` and checked once more; NaN where no tweak is accepted.

Batched (no loop over factuals): the cost of every (path, factual) pair comes from one pass
down the trees, level by level, over all trees at once: a node's cost is its parent's cost
with the term of the parent's split unit (feature or one-hot group) replaced by the term of the
node's tighter interval, an (nodes of the level x factuals) array operation per level. The
paths are then tried in increasing order of cost per factual, a block of candidates per
factual at a time, each block as one ``predict_proba`` call, until the first accepted one.
Exhaustive over the paths, so the result is the exact minimum of the definition above.

Hyperparameters and defaults: ``epsilon=0.1`` (CARLA's; the paper's default was not found, and
in our [0, 1] model space 0.1 is a tenth of a feature's range: a margin that makes tweaks more
robust to a retrained forest, and more costly; lower it for cheaper recourse),
``cost="l2"`` (CARLA's ``_L2_cost_func``), ``batch_size=64`` (candidates tried per factual and
block; speed only, the result does not depend on it), ``random_state=None`` (unused: the method
is deterministic).

Where we differ from the paper and CARLA's implementation:

- the paper tweaks only the trees that vote with the ensemble against the target; we take the
  positive paths of every tree (a superset of candidates, so the recourse is never costlier);
- CARLA overwrites every feature on the path, even those already satisfied, root last (so a
  feature tested twice keeps the root's threshold and may break a deeper condition), and
  accepts a tweak when the single tree predicts the target; we intersect the conditions, move
  only the features outside their interval, and require the ensemble's acceptance (as the
  paper does);
- neither handles immutable features, directions, bounds, grids or one-hot groups; we do, as
  in 2 above;
- a one-hot group that must leave its level goes to the path's required level or else to the
  first allowed one in column order (all cost the same; the others are not tried).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..api import Classifier, Interval, MethodTags, Options, RecourseMethod, Schema, Splits
from ..registry import register
from ._search import COSTS, accepts

#: Largest (nodes x factuals) float64 block of the level-wise pass (128 MB).
BLOCK_ELEMENTS = 2**24


@dataclass(frozen=True)
class _Units:
    """The boxes of many nodes, each on one unit (a feature, or a one-hot group).

    ``feature`` is the split feature and ``lo``/``hi`` the box's interval (lo, hi] on it. A
    plain feature's tweak goes to ``up`` from below the interval and to ``down`` from above
    it, where ``up_ok``/``down_ok`` say whether that value is inside the bounds and the
    interval. For a one-hot unit ``group`` is its group's index (-1 for a plain feature),
    ``feasible`` whether any level is allowed, ``forced`` the column (in the group) that must
    be 1 or -1, ``allowed`` (n, width) the levels the box allows.
    """

    feature: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    up: np.ndarray
    up_ok: np.ndarray
    down: np.ndarray
    down_ok: np.ndarray
    group: np.ndarray
    feasible: np.ndarray
    forced: np.ndarray
    allowed: np.ndarray


@register("method", "feature-tweak")
class FeatureTweak(RecourseMethod):
    """The cheapest epsilon-satisfactory tweak into a positive leaf that the forest accepts.

    Parameters
    ----------
    epsilon : float > 0, default 0.1
        Margin by which a tweaked feature passes a split threshold (model space).
    cost : {"l2", "l1"}, default "l2"
        Distance that ranks the tweaks.
    batch_size : int, default 64
        Candidates per factual checked by the forest at a time (speed only).
    random_state : int or None, default None
        Unused: the method is deterministic. Accepted so that every method has the parameter.

    Attributes
    ----------
    n_positive_paths_ : int
        Positive root-to-leaf paths over all trees, set by :meth:`fit`.

    Notes
    -----
    Rows without a tweak that the forest accepts are NaN: every positive path is infeasible
    for them (immutables, directions) or no feasible tweak flips the forest.
    """

    tags = MethodTags(requires_trees=True, batch_invariant=True)

    parameter_constraints = {
        "epsilon": (Interval("float", low=0, open_low=True),),
        "cost": (Options(COSTS),),
        "batch_size": (Interval("int", low=1),),
        "random_state": (Interval("int"), None),
    }

    def __init__(
        self,
        epsilon: float = 0.1,
        cost: str = "l2",
        batch_size: int = 64,
        random_state: int | None = None,
    ):
        self.epsilon = epsilon
        self.cost = cost
        self.batch_size = batch_size
        self.random_state = random_state

    # ------------------------------------------------------------------------------------- fit
    def fit(self, model: Classifier, splits: Splits) -> FeatureTweak:
        """Read the schema's units and the trees: every node's box and the positive leaves."""
        super().fit(model, splits)
        schema = splits.schema
        d = schema.n_features
        groups = [list(g) for g in schema.groups]
        self.group_of_ = np.full(d, -1)
        for g, cols in enumerate(groups):
            self.group_of_[cols] = g
        width = max((len(g) for g in groups), default=1)
        self.group_columns_ = np.array([g + [-1] * (width - len(g)) for g in groups] or [[-1]])
        self.group_size_ = np.array([len(g) for g in groups] or [0])
        immutable = ~schema.mutable_mask
        self.group_frozen_ = np.array([bool(immutable[g].any()) for g in groups] or [False])
        self.steps_ = np.asarray(schema.steps, dtype=float)
        direction = np.asarray(schema.direction)
        self.may_rise_ = schema.mutable_mask & (direction >= 0)
        self.may_fall_ = schema.mutable_mask & (direction <= 0)

        self._read_trees(model, schema)
        return self

    #: Fitted attributes rebuilt from the model's trees rather than pickled (about 100 MB for
    #: Adult's default forest of 100 trees; rebuilding takes a second or two).
    _REBUILT = ("levels_", "parent_", "is_left_", "roots_", "split_", "threshold_", "positive_")

    def __getstate__(self) -> dict:
        """Pickle without the arrays read from the trees (:meth:`generate` reads them again)."""
        state = super().__getstate__()
        for name in self._REBUILT:
            state.pop(name, None)
        return state

    def _ensure_trees(self) -> None:
        """Read the trees again after unpickling."""
        if "levels_" not in self.__dict__:
            self._read_trees(self.model_, self.schema_)

    def _read_trees(self, model: Classifier, schema: Schema) -> None:
        """Every node's split and box on it, level by level, and the positive leaves."""
        d = schema.n_features
        groups = [list(g) for g in schema.groups]
        # all trees as one forest of nodes: split feature, threshold, children, positive leaves
        feature, threshold, left, right, positive, roots = [], [], [], [], [], []
        offset = 0
        for tree in getattr(model, "trees", None) or []:  # the tag ensures there are some
            t = tree.tree_
            classes = list(np.asarray(tree.classes_).tolist())
            value = t.value[:, 0, :]
            fav = (
                classes.index(schema.favourable_class) if schema.favourable_class in classes else -1
            )
            leaf = t.children_left < 0
            if fav >= 0 and value.shape[1] > 1:
                others = np.delete(value, fav, axis=1).max(axis=1)
                positive.append(leaf & (value[:, fav] > others))
            else:
                positive.append(np.zeros(t.node_count, dtype=bool))
            feature.append(np.where(leaf, -1, t.feature))
            threshold.append(t.threshold.astype(float))
            left.append(np.where(leaf, -1, t.children_left + offset))
            right.append(np.where(leaf, -1, t.children_right + offset))
            roots.append(offset)
            offset += t.node_count
        if not roots:
            feature, threshold, left, right, positive = ([np.zeros(0, dtype=int)],) * 5
        split = np.concatenate(feature).astype(int)
        cut = np.concatenate(threshold).astype(float)
        lefts, rights = np.concatenate(left).astype(int), np.concatenate(right).astype(int)
        is_positive = np.concatenate(positive).astype(bool)

        # levels, top down; keep only nodes above a positive leaf
        levels = [np.array(roots, dtype=int)]
        while levels[-1].size:
            nodes = levels[-1]
            inner = nodes[split[nodes] >= 0]
            levels.append(np.concatenate([lefts[inner], rights[inner]]))
        levels.pop()
        useful = is_positive.copy()
        for nodes in reversed(levels):
            inner = nodes[split[nodes] >= 0]
            useful[inner] |= useful[lefts[inner]] | useful[rights[inner]]

        # per level: kept nodes, their parent's position in the previous level, the row (in
        # the order nodes are listed, level after level) of the node whose term holds the
        # parent's box on the parent's split unit (-1: the unit is unconstrained, term 0),
        # and the node's box on that unit. A unit is a plain feature or a one-hot group.
        unit_of = np.where(self.group_of_ >= 0, d + self.group_of_, np.arange(d))
        self.levels_: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, _Units]] = []
        self.parent_ = np.full(len(split), -1)
        self.is_left_ = np.zeros(len(split), dtype=bool)
        kept = np.array([r for r in roots if useful[r]], dtype=int)
        lo = np.full((len(kept), d), -np.inf)
        hi = np.full((len(kept), d), np.inf)
        last = np.full((len(kept), d + len(groups)), -1)  # row of the last tightening per unit
        self.roots_ = kept
        n_rows = 0
        while kept.size:
            inner = np.flatnonzero(split[kept] >= 0)
            parents = kept[inner]
            children, position, go_left = [], [], []
            for side, child in ((True, lefts[parents]), (False, rights[parents])):
                ok = useful[child]
                children.append(child[ok])
                position.append(inner[ok])
                go_left.append(np.full(ok.sum(), side))
            child = np.concatenate(children)
            if not child.size:
                break
            at = np.concatenate(position)  # row of the parent in this level's arrays
            left_side = np.concatenate(go_left)
            f = split[kept[at]]
            self.parent_[child] = kept[at]
            self.is_left_[child] = left_side
            parents_at, inverse = np.unique(at, return_inverse=True)
            parent_rows = last[parents_at, unit_of[split[kept[parents_at]]]]
            rows = np.arange(len(child))
            lo, hi, last = lo[at].copy(), hi[at].copy(), last[at].copy()
            t = cut[kept[at]]
            hi[rows, f] = np.where(left_side, np.minimum(hi[rows, f], t), hi[rows, f])
            lo[rows, f] = np.where(left_side, lo[rows, f], np.maximum(lo[rows, f], t))
            last[rows, unit_of[f]] = n_rows + rows
            n_rows += len(child)
            self.levels_.append(
                (child, parents_at, inverse.reshape(-1), parent_rows, self._units(lo, hi, f))
            )
            kept = child
        self.n_rows_ = n_rows
        self.split_ = split
        self.threshold_ = cut
        self.positive_ = is_positive
        self.n_positive_paths_ = int(is_positive.sum())

    def _units(self, lo: np.ndarray, hi: np.ndarray, feature: np.ndarray) -> _Units:
        """Describe boxes ``lo``/``hi`` (n, d) on the units of the features ``feature`` (n,)."""
        n = len(feature)
        rows = np.arange(n)
        group = self.group_of_[feature] if n else np.zeros(0, dtype=int)
        cols = self.group_columns_[np.maximum(group, 0)]  # (n, width), -1 padding
        member = (cols >= 0) & (group[:, None] >= 0)
        safe = np.maximum(cols, 0)
        glo, ghi = lo[rows[:, None], safe], hi[rows[:, None], safe]
        allow0 = (glo < 0) & (ghi >= 0) | ~member
        allow1 = (glo < 1) & (ghi >= 1) & member
        must1 = ~allow0 & allow1
        feasible = (allow0 | allow1).all(axis=1) & (must1.sum(axis=1) <= 1) & allow1.any(axis=1)
        forced = np.where(must1.any(axis=1), must1.argmax(axis=1), -1)
        allowed = np.where((forced >= 0)[:, None], must1, allow1)
        flo, fhi = lo[rows, feature], hi[rows, feature]
        up, up_ok, down, down_ok = self._targets(flo, fhi, feature)
        return _Units(
            feature=feature,
            lo=flo,
            hi=fhi,
            up=up,
            up_ok=up_ok,
            down=down,
            down_ok=down_ok,
            group=group,
            feasible=feasible,
            forced=forced,
            allowed=allowed,
        )

    # ------------------------------------------------------------------------------- generate
    def generate(self, X: np.ndarray) -> np.ndarray:
        """Recourses for all rows of ``X`` (NaN rows where no tweak is accepted)."""
        self.check_fitted()
        X = self.check_factuals(X)
        self._ensure_trees()
        result = np.full_like(X, np.nan)
        n_pos = self.n_positive_paths_
        if not len(X) or not n_pos:
            return result
        chunk = max(1, BLOCK_ELEMENTS // (self.n_rows_ + 1))  # the terms of every node
        for start in range(0, len(X), chunk):
            rows = slice(start, start + chunk)
            result[rows] = self._search(X[rows])
        return result

    def _search(self, X: np.ndarray) -> np.ndarray:
        """Recourses of one block of factuals: costs of all paths, then the forest's checks.

        Candidates are tried in the total order (cost, path index), ``batch_size`` per factual
        and round, so the first one the forest accepts is the exact minimum.
        """
        leaves, costs = self.path_costs(X)
        out = np.full_like(X, np.nan)
        open_rows = np.flatnonzero(np.isfinite(costs).any(axis=0))
        while open_rows.size:
            sub = costs[:, open_rows]
            m = min(int(self.batch_size), len(leaves))
            # the first m paths per factual in the order (cost, index): all below the m-th
            # smallest cost, then those equal to it in index order
            cut = np.partition(sub, m - 1, axis=0)[m - 1]
            chosen = sub < cut
            room = m - chosen.sum(axis=0)  # taken from the ties at the cut, first index first
            tie_col, tie_row = np.nonzero((sub == cut).T)
            rank = np.arange(len(tie_col)) - np.searchsorted(tie_col, tie_col)
            keep = rank < room[tie_col]
            chosen[tie_row[keep], tie_col[keep]] = True
            _, row = np.nonzero(chosen.T)  # m per factual, in index order
            top = row.reshape(len(open_rows), m)
            top_cost = np.take_along_axis(sub, top.T, axis=0).T
            order = np.lexsort((top, top_cost), axis=1)
            top = np.take_along_axis(top, order, axis=1)
            top_cost = np.take_along_axis(top_cost, order, axis=1)
            pair_leaf, pair_row = top.reshape(-1), np.repeat(open_rows, m)
            finite = np.isfinite(top_cost.reshape(-1))
            tweaks = np.full((len(pair_leaf), X.shape[1]), np.nan)
            if finite.any():
                factuals = X[pair_row[finite]]
                snapped = self.schema_.snap(
                    self.tweak(factuals, leaves[pair_leaf[finite]]), factuals
                )
                tweaks[finite] = np.where(accepts(self.model_, snapped)[:, None], snapped, np.nan)
            hit = np.isfinite(tweaks).all(axis=1).reshape(len(open_rows), m)
            found = hit.any(axis=1)
            picks = np.arange(len(open_rows)) * m + hit.argmax(axis=1)
            out[open_rows[found]] = tweaks[picks[found]]
            # the tried candidates are spent; rows found or out of candidates close
            np.put_along_axis(sub, top.T, np.inf, axis=0)
            costs[:, open_rows] = sub
            open_rows = open_rows[~found & np.isfinite(sub).any(axis=0)]
        return out

    # ------------------------------------------------------------------------------- helpers
    def path_costs(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The positive leaves and the cost of each one's tweak for each factual.

        Returns
        -------
        leaves : ndarray of int (p,)
            Node index (in the concatenated trees) of every positive leaf.
        costs : ndarray (p, n)
            Cost of the epsilon-satisfactory tweak of factual j into leaf i (inf where it is
            infeasible); the cost before the square root for ``cost="l2"``.
        """
        self._ensure_trees()
        X = np.asarray(X, dtype=float)
        n = len(X)
        active = np.stack(
            [
                np.argmax(X[:, cols[:size]], axis=1)
                for cols, size in zip(self.group_columns_, self.group_size_, strict=True)
                if size
            ]
            or [np.zeros(n, dtype=int)],
            axis=1,
        )
        # factuals as columns: a feature's values are one contiguous row
        XT = np.ascontiguousarray(X.T)
        context = (XT, XT.astype(np.float32), np.ascontiguousarray(active.T))
        leaf_list, cost_list = [], []
        current = np.zeros((len(self.roots_), n))
        root_positive = self.positive_[self.roots_]
        if root_positive.any():
            leaf_list.append(self.roots_[root_positive])
            cost_list.append(current[root_positive])
        # every node's term, by row; the extra last row is the 0 of an unconstrained unit
        terms = np.empty((self.n_rows_ + 1, n))
        terms[-1] = 0.0
        row = 0
        for nodes, parents_at, inverse, parent_rows, node_units in self.levels_:
            # a node's cost is the sum of its box's terms over the units: its parent's cost with
            # the term of the parent's split unit replaced; an infinite parent stays infinite
            # (boxes only shrink down a path)
            parent = current[parents_at]
            with np.errstate(invalid="ignore"):
                base = np.where(np.isfinite(parent), parent - terms[parent_rows], np.inf)
            own = terms[row : row + len(nodes)]
            own[:] = self._terms(node_units, context)
            row += len(nodes)
            current = base[inverse] + own
            pos = self.positive_[nodes]
            if pos.any():
                leaf_list.append(nodes[pos])
                cost_list.append(current[pos])
        if not leaf_list:
            return np.zeros(0, dtype=int), np.zeros((0, n))
        return np.concatenate(leaf_list), np.concatenate(cost_list)

    def _terms(self, units: _Units, context: tuple) -> np.ndarray:
        """Per unit (row) and factual (column): the cost term of moving into the unit's box."""
        X, X32, active = context
        power = 1 if self.cost == "l1" else 2
        out = np.empty((len(units.feature), X.shape[1]))
        plain = units.group < 0
        if plain.any():
            f = units.feature[plain]
            x, x32 = X[f], X32[f]
            below = x32 <= units.lo[plain, None]
            above = x32 > units.hi[plain, None]
            # an infeasible move goes "to infinity", so that its term is infinite
            up = np.where(units.up_ok[plain] & self.may_rise_[f], units.up[plain], np.inf)
            down = np.where(units.down_ok[plain] & self.may_fall_[f], units.down[plain], -np.inf)
            move = np.where(below, up[:, None], np.where(above, down[:, None], x))
            move -= x
            if power == 1:
                np.abs(move, out=move)
            else:
                np.multiply(move, move, out=move)
            out[plain] = move
        if (~plain).any():
            g = units.group[~plain]
            level = active[g]  # (units, factuals)
            kept = np.take_along_axis(units.allowed[~plain], level, axis=1)
            switch = np.where(self.group_frozen_[g], np.inf, 2.0)[:, None]
            term = np.where(kept, 0.0, switch)
            out[~plain] = np.where(units.feasible[~plain, None], term, np.inf)
        return out

    def _targets(
        self, lo: np.ndarray, hi: np.ndarray, feature: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Where a feature outside (lo, hi] is tweaked to, from below and from above.

        lo + epsilon from below and hi - epsilon from above (the midpoint of an interval
        narrower than 2 epsilon); an integer or ordinal feature's nearest grid point, moved
        inside (lo, hi] if it can be; clipped to the feature's bounds. Returns (up, up_ok,
        down, down_ok), ``_ok`` where the value satisfies (lo, hi] (as float32, as the trees
        compare).
        """
        eps = float(self.epsilon)
        lower = self.schema_.lower_array[feature]
        upper = self.schema_.upper_array[feature]
        step = self.steps_[feature]
        grid = step > 0
        out = []
        with np.errstate(invalid="ignore"):  # (lo + hi) / 2 of an unbounded interval
            middle = (lo + hi) / 2
            for value in (np.minimum(lo + eps, middle), np.maximum(hi - eps, middle)):
                if grid.any():
                    unit = np.where(grid, step, 1.0)
                    snapped = lower + np.round((value - lower) / unit) * unit
                    snapped = np.where(snapped.astype(np.float32) <= lo, snapped + unit, snapped)
                    snapped = np.where(snapped.astype(np.float32) > hi, snapped - unit, snapped)
                    value = np.where(grid, snapped, value)
                value = np.clip(value, lower, upper)
                v32 = value.astype(np.float32)
                out += [value, (v32 > lo) & (v32 <= hi)]
        return out[0], out[1], out[2], out[3]

    def tweak(self, X: np.ndarray, leaves: np.ndarray) -> np.ndarray:
        """The epsilon-satisfactory tweak of each row of ``X`` into the matching leaf.

        Rows whose leaf is infeasible for them come back as they were (the caller tests them
        against the forest, which rejects them when the factual is rejected).
        """
        self._ensure_trees()
        X = np.asarray(X, dtype=float)
        n, d = X.shape
        lo = np.full((n, d), -np.inf)
        hi = np.full((n, d), np.inf)
        rows = np.arange(n)
        node = np.asarray(leaves, dtype=int).copy()
        while True:
            climbing = self.parent_[node] >= 0
            if not climbing.any():
                break
            r, child = rows[climbing], node[climbing]
            parent = self.parent_[child]
            f, t = self.split_[parent], self.threshold_[parent]
            left = self.is_left_[child]
            hi[r, f] = np.where(left, np.minimum(hi[r, f], t), hi[r, f])
            lo[r, f] = np.where(left, lo[r, f], np.maximum(lo[r, f], t))
            node[climbing] = parent
        features = np.broadcast_to(np.arange(d), (n, d))
        up, up_ok, down, down_ok = self._targets(lo, hi, features)
        X32 = X.astype(np.float32)
        below = (X32 <= lo) & up_ok & self.may_rise_
        above = (X32 > hi) & down_ok & self.may_fall_
        out = np.where(below, up, np.where(above, down, X))
        for g, (cols, size) in enumerate(zip(self.group_columns_, self.group_size_, strict=True)):
            if not size:
                continue
            cols = cols[:size]
            units = self._units(lo, hi, np.full(n, cols[0]))
            level = np.argmax(X[:, cols], axis=1)
            kept = units.allowed[rows, level]
            first = np.where(units.forced >= 0, units.forced, units.allowed.argmax(axis=1))
            new = np.where(kept, level, first)
            change = units.feasible & ~kept & ~self.group_frozen_[g]
            block = X[:, cols].copy()
            block[change] = np.eye(size)[new[change]]
            out[:, cols] = block
        return out
