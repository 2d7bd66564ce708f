"""RNCE: robust nearest-neighbour counterfactuals, certified against a box of model changes.

J. Jiang, F. Leofante, A. Rago and F. Toni, "Interval Abstractions for Robust Counterfactual
Explanations", Artificial Intelligence (arXiv:2404.13736). Reference code read:
junqi-jiang/interval-abstractions@65a01a6 (``intabs/methods.py``: ``rnce``) and RobustX@f503bfa
(``generators/robust_CE_methods/RNCE.py``).

Algorithm:

1. ``fit``: the pool is the training points the model accepts that are Delta-robust for the box
   (every weight within ``delta``, every bias within ``delta_b`` of the model's;
   :func:`recourse_bench.certify.delta_certified`), at most ``max_pool`` of them (a seeded
   sub-sample, as the authors' 12,000), and inside the schema's bounds;
2. ``generate``: the nearest pool point the factual may reach (same immutables, inside its box
   of bounds and directions), L1 by default: the search of ``nearest-neighbour``, batched.

Every recourse is a training point carrying the certificate, so the ``delta-robustness`` metric
at the same box certifies it.

Hyperparameters and defaults: ``delta=0.005`` and ``delta_b=None`` (= ``delta``; RobustX's
default box, as ``mcer``), ``proof="ibp"``, ``max_pool=12000`` (authors), ``cost="l1"``
(authors: L1, a Manhattan KD-tree), ``random_state=None`` (seeds the sub-sample; None means 0).

Differences from the authors' code:

* the certificate of the pool: ``proof="ibp"`` (default) certifies with interval bound
  propagation, sound (an IBP-certified point is certified by the exact MILP) and batched over all
  training points; it is exact for linear models and one hidden layer, and for deeper networks it
  may leave out a few points the authors' MILP check would keep. ``proof="exact"`` runs the MILP
  on the points IBP does not certify (a program per point: slow on large data);
* a candidate must share the factual's immutable features and respect its directions (the
  authors' and RobustX's search does not look at them); RobustX ranks by Euclidean distance;
* the authors' RNCE-opt refinement (moving back towards the factual while the certificate holds)
  is not included: its intermediate points break one-hot groups and integer grids.
"""

from __future__ import annotations

import numpy as np

from ..api import Classifier, Interval, MethodTags, Options, Splits
from ..certify import DEFAULT_DELTA, PROOFS, Proof, box_model_reason, delta_certified
from ..registry import register
from ..seeding import numpy_rng
from ._search import COSTS, accepts
from .nearest_neighbour import NearestNeighbour


@register("method", "rnce")
class RNCE(NearestNeighbour):
    """The nearest training point the whole box of models around the model accepts.

    Parameters
    ----------
    delta : float, default 0.005
        Half-width of the box on every weight (``mcer``'s default).
    delta_b : float or None, default None
        Half-width on every bias (None: ``delta``).
    proof : {"ibp", "exact"}, default "ibp"
        How the pool is certified (see the module docstring).
    max_pool : int, default 12000
        At most this many accepted training points are checked (a seeded sub-sample).
    cost : {"l1", "l2"}, default "l1"
        Distance in model space that ranks the candidates.
    random_state : int or None, default None
        Seeds the sub-sample (used only when more than ``max_pool`` points are accepted; None
        seeds it with 0, so the method stays deterministic).

    Attributes
    ----------
    candidates_ : ndarray (m, d)
        The certified pool, in training order.
    """

    tags = MethodTags(requires_differentiable=True, trains=True, batch_invariant=True)

    parameter_constraints = {
        "delta": (Interval("float", low=0),),
        "delta_b": (Interval("float", low=0), None),
        "proof": (Options(PROOFS),),
        "max_pool": (Interval("int", low=1),),
        "cost": (Options(COSTS),),
        "random_state": (Interval("int"), None),
    }

    def __init__(
        self,
        delta: float = DEFAULT_DELTA,
        delta_b: float | None = None,
        proof: Proof = "ibp",
        max_pool: int = 12000,
        cost: str = "l1",
        random_state: int | None = None,
    ):
        self.delta = delta
        self.delta_b = delta_b
        self.proof = proof
        self.max_pool = max_pool
        self.cost = cost
        self.random_state = random_state

    def skip_reason(self, model: Classifier) -> str | None:
        """Also refuse a torch model that is neither linear nor a ReLU MLP."""
        return super().skip_reason(model) or box_model_reason(self.name, model)

    def fit(self, model: Classifier, splits: Splits) -> RNCE:
        """Certify the accepted training points and keep those that pass as the pool."""
        super(NearestNeighbour, self).fit(model, splits)
        X = np.asarray(splits.X_train, dtype=float)
        schema = splits.schema
        inside = ((X >= schema.lower_array) & (X <= schema.upper_array)).all(axis=1)
        rows = np.flatnonzero(accepts(model, X) & inside)
        if len(rows) > self.max_pool:
            chosen = numpy_rng(self.random_state or 0).choice(
                len(rows), self.max_pool, replace=False
            )
            rows = rows[np.sort(chosen)]
        certified, _ = delta_certified(model, X[rows], self.delta, self.delta_b, self.proof)
        self.candidates_ = X[rows[certified]].copy()
        return self
