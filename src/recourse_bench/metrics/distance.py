"""Static metrics of where the recourses lie: sparsity, L2 distance, CARLA's yNN, diversity.

Each is computed once per recourse set, against the base model, on the feasible recourses found
(``EvalContext.found``; ``n`` is their number), and is NaN with ``n`` 0 when none was found.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

from ..api import FEASIBILITY_TOLERANCE, EvalContext, MetricValue, NotApplicable, Schema
from ._define import metric

#: Neighbours of each recourse in ``ynn`` (CARLA's benchmark uses y = 5).
YNN_NEIGHBOURS = 5


def changed_features(schema: Schema, factuals: np.ndarray, recourses: np.ndarray) -> np.ndarray:
    """Per row, the number of features a recourse changes; a one-hot group counts as one.

    A column counts as changed when it moves by more than 1e-6 (the feasibility tolerance of
    model space); a one-hot group counts once when any of its columns changed.
    """
    changed = np.abs(recourses - factuals) > FEASIBILITY_TOLERANCE
    in_group = np.zeros(schema.n_features, dtype=bool)
    count = np.zeros(len(changed), dtype=int)
    for group in schema.groups:
        columns = list(group)
        in_group[columns] = True
        count += changed[:, columns].any(axis=1)
    return count + changed[:, ~in_group].sum(axis=1)


@metric("sparsity", stage="static", higher_is_better=False, bounds=(0.0, float("inf")))
def sparsity(ctx: EvalContext) -> MetricValue:
    """Mean number of features changed per found recourse (n = recourses found).

    A feature counts as changed when its model-space value moves by more than 1e-6; a
    categorical feature (a one-hot group) counts as one feature however many of its columns
    change. The L0 "sparsity" of CARLA and DiCE, where CARLA counts one-hot columns one by one
    (a change of category then counts 2) with a tolerance of 1e-5.

    >>> import numpy as np
    >>> from recourse_bench.api import EvalContext
    >>> from recourse_bench.testing import toy_splits
    >>> splits = toy_splits()  # columns 4-6 are the one-hot group g
    >>> x = splits.X_test[:2]
    >>> recourse = x.copy()
    >>> recourse[0, 0] += 0.1  # one continuous feature
    >>> recourse[1, 4:7] = recourse[1, [5, 6, 4]]  # another category: one feature
    >>> sparsity(EvalContext(x, recourse, None, splits))
    MetricValue(value=1.0, n=2)
    """
    found = ctx.found
    n = int(found.sum())
    if not n:
        return MetricValue(float("nan"), 0)
    counts = changed_features(ctx.splits.schema, ctx.factuals[found], ctx.recourses[found])
    return MetricValue(float(counts.mean()), n)


@metric("distance-l2", stage="static", higher_is_better=False, bounds=(0.0, float("inf")))
def distance_l2(ctx: EvalContext) -> MetricValue:
    """Mean Euclidean (L2) distance in model space between factual and recourse (n = found).

    The norm itself, not its square (CARLA's ``l2_distance`` reports the squared distance).

    >>> import numpy as np
    >>> from recourse_bench.api import EvalContext
    >>> ctx = EvalContext(np.zeros((2, 2)), np.array([[0.3, 0.4], [np.nan, np.nan]]), None, None)
    >>> distance_l2(ctx)
    MetricValue(value=0.5, n=1)
    """
    found = ctx.found
    n = int(found.sum())
    if not n:
        return MetricValue(float("nan"), 0)
    distance = np.linalg.norm(ctx.recourses[found] - ctx.factuals[found], axis=1)
    return MetricValue(float(distance.mean()), n)


@metric("ynn", stage="static", higher_is_better=True)
def ynn(ctx: EvalContext) -> MetricValue:
    """CARLA's yNN: share of each recourse's 5 nearest data points the model labels 1 (n = found).

    From CARLA (Pawelczyk et al., NeurIPS 2021 datasets track), ``evaluation/catalog/ynn.py``:
    yNN = 1 - 1/(N y) sum_i sum_{j in kNN_y(x'_i)} |1 - h(x_j)|, with y = 5 neighbours, N the
    recourses left once missing ones are removed, and h the deployed model's predicted label.
    As in CARLA, the neighbours are searched among all the dataset's rows (``data.df``: the
    training and the test split together) with exact Euclidean nearest neighbours
    (scikit-learn's ``NearestNeighbors``) in model space, and the recourses the model rejects
    are not removed first. A high value means the recourse lies among points the model accepts.
    NaN with ``n`` 0 when no recourse was found or the data has fewer than 5 rows.
    """
    found = ctx.found
    n = int(found.sum())
    data = np.vstack([ctx.splits.X_train, ctx.splits.X_test]).astype(float)
    if not n or len(data) < YNN_NEIGHBOURS:
        return MetricValue(float("nan"), 0)
    neighbours = NearestNeighbors(n_neighbors=YNN_NEIGHBOURS).fit(data)
    index = neighbours.kneighbors(ctx.recourses[found], return_distance=False)
    rows, position = np.unique(index, return_inverse=True)
    labels = np.asarray(ctx.model.predict(data[rows])) == 1
    return MetricValue(float(labels[position.reshape(index.shape)].mean()), n)


@metric("diversity", stage="static", higher_is_better=True, bounds=(0.0, float("inf")))
def diversity(ctx: EvalContext) -> MetricValue:
    """Mean pairwise L1 distance within each factual's set of counterfactuals (DiCE's diversity).

    For a method that returns several counterfactuals per factual
    (:meth:`~recourse_bench.api.RecourseMethod.recourse_sets`, e.g. ``dice`` with ``k > 1``):
    per factual, the mean L1 distance in model space over the pairs of its members that are
    feasible and that the model accepts; then the mean over the factuals with at least two
    such members (``n``). The paper's "Diversity" (Mothilal, Sharma and Tan 2020, eq. 6) with
    the plain L1 distance of model space where the paper divides by the MAD of each feature
    (model space is already scaled to [0, 1]). NaN with ``n`` 0 when no factual has two;
    skipped, with the reason, for a method that returns one recourse per factual.

    >>> import numpy as np
    >>> from recourse_bench.api import EvalContext
    >>> from recourse_bench.models import linear_classifier
    >>> sets = np.array([[[0.0, 1.0], [1.0, 1.0], [1.0, 0.0]]])  # three members, one rejected
    >>> model = linear_classifier(np.array([0.0, 1.0]), -0.5)  # accepts b > 0.5
    >>> diversity(EvalContext(np.zeros((1, 2)), sets[:, 0], model, None, sets=sets))
    MetricValue(value=1.0, n=1)
    """
    if ctx.sets is None:
        raise NotApplicable(
            "diversity needs several counterfactuals per factual; this method returns one "
            "(use e.g. dice with k > 1)"
        )
    n_rows, k, d = ctx.sets.shape
    flat = ctx.sets.reshape(n_rows * k, d)
    usable = ~np.isnan(flat).any(axis=1)
    if usable.any():
        usable[usable] = np.asarray(ctx.model.predict(flat[usable])) == 1
    members = np.where(usable[:, None], flat, np.nan).reshape(n_rows, k, d)
    gaps = np.abs(members[:, :, None, :] - members[:, None, :, :]).sum(axis=3)  # (n, k, k)
    pairs = np.triu(np.ones((k, k), dtype=bool), 1)
    distances = gaps[:, pairs]  # (n, k (k - 1) / 2), NaN where a member is missing
    counted = (~np.isnan(distances)).sum(axis=1)
    scored = counted > 0
    if not scored.any():
        return MetricValue(float("nan"), 0)
    per_row = np.nansum(distances[scored], axis=1) / counted[scored]
    return MetricValue(float(per_row.mean()), int(scored.sum()))
