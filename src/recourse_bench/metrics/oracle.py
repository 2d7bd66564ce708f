"""Static metrics against the data's ground truth: oracle validity, LOF plausibility, GenRe's score.

Both follow GenRe (Garg, Nagalapatti and Sarawagi, ICLR 2025), which reports validity under the
gold labeller and the share of recourses that a local outlier factor, fitted on the points the gold
labeller accepts, calls inliers. The ground truth is ``Splits.oracle``: the Bayes classifier of a
synthetic dataset, or the gold labeller of a real dataset loaded with ``labels: gold``
(:mod:`recourse_bench.datasets._gold`).
"""

from __future__ import annotations

import hashlib

import numpy as np
from sklearn.neighbors import LocalOutlierFactor

from ..api import EvalContext, MetricValue, NotApplicable, Splits, share
from ..seeding import derive_seed, numpy_rng
from ._define import metric
from .recourse import cost_l1

LOF_NEIGHBOURS = 5
LOF_MAX_REFERENCE = 20_000
ORACLE_PROBE_ROWS = 512  # rows whose oracle probabilities tell two oracles apart in the LOF cache


def no_oracle_reason(splits: Splits) -> str:
    """Why oracle metrics cannot be computed on ``splits`` (a dataset without ground truth)."""
    return f"dataset {splits.name!r} has no oracle; use labels: gold"


@metric("oracle-validity", stage="static", higher_is_better=True)
def oracle_validity(ctx: EvalContext) -> MetricValue:
    """Share of factuals whose recourse the data's oracle accepts (n = factuals).

    The oracle is ``splits.oracle``: the ground truth of a synthetic dataset, or the gold
    labeller of a real dataset loaded with ``labels: gold``. A factual without recourse counts as
    invalid. A dataset without an oracle raises :class:`~recourse_bench.api.NotApplicable`: the
    harness records a ``skipped`` row saying to use ``labels: gold``.

    >>> from dataclasses import replace
    >>> import numpy as np
    >>> from recourse_bench import registry
    >>> from recourse_bench.api import EvalContext
    >>> from recourse_bench.models import linear_classifier
    >>> splits = registry.get("dataset", "synthetic-gaussians")(n_samples=100).load(0)
    >>> truth = linear_classifier(np.array([1.0, 0.0]), -0.5)  # accepts x0 >= 0.5
    >>> recourses = np.array([[0.7, 0.1], [0.2, 0.9], [np.nan, np.nan]])
    >>> ctx = EvalContext(np.zeros((3, 2)), recourses, None, replace(splits, oracle=truth))
    >>> oracle_validity(ctx)
    MetricValue(value=0.3333333333333333, n=3)
    """
    oracle = ctx.splits.oracle
    if oracle is None:
        raise NotApplicable(no_oracle_reason(ctx.splits))
    return share(ctx.accepted_by(oracle))


def lof_reference(splits: Splits) -> np.ndarray:
    """The training points a plausible recourse should resemble.

    Those the oracle accepts (GenRe's choice: the gold labeller's positives), or, for a dataset
    without oracle, those labelled 1. More than :data:`LOF_MAX_REFERENCE` points are
    sub-sampled without replacement by a generator seeded from the dataset's name and the
    number of points, so that the metric stays a deterministic function of the splits.
    """
    if splits.oracle is not None:
        accepted = np.asarray(splits.oracle.predict(splits.X_train)) == 1
    else:
        accepted = np.asarray(splits.y_train) == 1
    reference = np.asarray(splits.X_train, dtype=float)[accepted]
    if len(reference) > LOF_MAX_REFERENCE:
        rng = numpy_rng(derive_seed(0, "plausibility-lof", splits.name, len(reference)))
        keep = np.sort(rng.choice(len(reference), size=LOF_MAX_REFERENCE, replace=False))
        reference = reference[keep]
    return reference


@metric("plausibility-lof", stage="static", higher_is_better=True)
def plausibility_lof(ctx: EvalContext) -> MetricValue:
    """Share of found recourses that a local outlier factor calls inliers (n = recourses found).

    scikit-learn's ``LocalOutlierFactor(n_neighbors=5, novelty=True)`` is fitted on
    :func:`lof_reference`: the training points the oracle accepts, or where the dataset has no
    oracle, the training points labelled 1; at most 20,000 of them (a seeded sub-sample). NaN
    with ``n`` 0 when no recourse was found or there are fewer than 6 reference points.

    Exact duplicates among the reference points have a local density of 1e10 (scikit-learn adds
    1e-10 to a zero reachability distance), so a recourse close to, but not on, a cluster of
    duplicates is an outlier: recourses that copy training points are favoured, as in GenRe's
    evaluation.
    """
    found = ctx.found
    n = int(found.sum())
    lof = fitted_lof(ctx.splits)
    if not n or lof is None:
        return MetricValue(float("nan"), 0)
    inlier = lof.predict(np.asarray(ctx.recourses[found], dtype=float)) == 1
    return MetricValue(float(inlier.mean()), n)


_LOF_CACHE: dict[str, LocalOutlierFactor | None] = {}


def fitted_lof(splits: Splits) -> LocalOutlierFactor | None:
    """The LOF of :func:`lof_reference` (None with too few points), fitted once per splits.

    Every method of a (dataset, model, seed) is scored against the same splits, so the fit
    (and the oracle's pass over the training points) is kept per process, keyed by a hash of
    the training data and of the oracle's probabilities on its first rows (two oracles on the
    same data get two entries); a few entries at most.
    """
    digest = hashlib.sha256(np.ascontiguousarray(splits.X_train).tobytes())
    digest.update(np.ascontiguousarray(splits.y_train).tobytes())
    if splits.oracle is not None:
        probe = np.asarray(splits.X_train[:ORACLE_PROBE_ROWS], dtype=float)
        digest.update(np.asarray(splits.oracle.predict_proba(probe), dtype=float).tobytes())
    key = f"{splits.name}:{splits.oracle is not None}:{digest.hexdigest()}"
    if key not in _LOF_CACHE:
        reference = lof_reference(splits)
        lof = None
        if len(reference) > LOF_NEIGHBOURS:
            lof = LocalOutlierFactor(n_neighbors=LOF_NEIGHBOURS, novelty=True).fit(reference)
        if len(_LOF_CACHE) >= 4:
            _LOF_CACHE.pop(next(iter(_LOF_CACHE)))
        _LOF_CACHE[key] = lof
    return _LOF_CACHE[key]


@metric("genre-score", stage="static", higher_is_better=True, bounds=(-1.0, 2.0))
def genre_score(ctx: EvalContext) -> MetricValue:
    """GenRe's summary score ``Val + LOF - Cost / d`` (n = factuals).

    The score of the GenRe paper's tables (Garg, Nagalapatti and Sarawagi, ICLR 2025): the
    share of factuals whose recourse the oracle accepts (``oracle-validity``), plus the share of
    found recourses that are LOF inliers (``plausibility-lof``), minus the mean L1 cost of the
    found recourses (``cost-l1``) divided by the number of model-space columns ``d``, which puts
    the cost in [0, 1] as well. The cost and LOF terms are those of the found recourses, so a
    method is not rewarded for finding none: NaN when no recourse was found. Like
    ``oracle-validity`` it needs an oracle (``labels: gold``). ``d`` depends on the encoding, as
    in the paper (13 ordinal columns on its Adult): compare scores within one encoding.
    """
    validity = oracle_validity(ctx)
    plausible = plausibility_lof(ctx)
    cost = cost_l1(ctx)
    d = ctx.factuals.shape[1]
    value = validity.value + plausible.value - cost.value / d if cost.n else float("nan")
    return MetricValue(float(value), validity.n)
