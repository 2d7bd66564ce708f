"""Model update by weight perturbation: the trained parameters are shifted by noise, no retraining.

ALGORITHMS.md, "Model updates and distribution shifts": ``weight-perturbation`` perturbs the
trained parameters inside ROAR's box Delta = {(dw, db): |each coordinate| <= delta} (Upadhyay,
Joshi and Lakkaraju, "Towards robust and reliable algorithmic recourse", NeurIPS 2021) or with
Gaussian noise. Severity = delta. The updated models are random points of that neighbourhood
(not ROAR's worst case), so they measure how recourses fare under small, undirected changes of
the parameters.

What it computes. For each of the ``n_models`` updated models k, with the seed ``s_k`` drawn by
:meth:`~recourse_bench.api.Shift.draw_seeds` from the shift's seed, the shift returns
``base_model.perturbed(severity, kind, numpy.random.default_rng(s_k))``, a perturbed deep copy
(the base model is never modified). Per noise value ``e``: ``kind="uniform"`` draws
``e ~ U(-severity, severity)`` (a uniformly random point of the box of radius ``severity``),
``kind="gaussian"`` draws ``e ~ N(0, severity**2)``. What gets ``e``:

- torch models (``logreg``, ``mlp``): every parameter, i.e. every weight and bias of every
  layer, gets its own ``e`` (in ``net.parameters()`` order). For ``logreg`` this is exactly a
  point of ROAR's box around (w, b).
- ``forest`` (and any scikit-learn tree or forest of classification trees): every node of every
  tree; a node's class-1 fraction ``f`` (``tree_.value``, which holds class fractions since
  scikit-learn 1.4) becomes ``clip(f + e, 0, 1)`` and its class-0 fraction ``1 - clip(f + e, 0,
  1)``. The forest's probability of class 1 is the mean of its trees' leaf fractions, so it moves
  by the mean of the (clipped) leaf shifts.
- ``boosting`` (``HistGradientBoostingClassifier``): ``e`` is added to the value of every node of
  every tree. Leaf values are additive log-odds contributions already scaled by the learning
  rate, so a row's log-odds move by the sum of its leaves' noise over the ``max_iter`` trees
  (standard deviation ``severity * sqrt(max_iter / 3)`` for uniform noise). The intercept is not
  perturbed.

See :meth:`~recourse_bench.models._torch.TorchClassifier.perturbed` and
:meth:`~recourse_bench.models._sklearn.SklearnClassifier.perturbed`. A model without a
``perturbed`` method raises :class:`~recourse_bench.api.NotApplicable` (recorded as skipped).

Severity: ``severity`` >= 0 is delta, the box radius (uniform) or standard deviation (gaussian)
in the units of the perturbed values (weights, class fractions or log-odds). Severity 0 returns
copies that predict exactly as the base model.

Parameters: ``severity`` (default 0.05), ``kind`` (default ``"uniform"``), ``n_models``
(default 10).
"""

from __future__ import annotations

from ..api import Classifier, Interval, Options, Perturbable, Shift, Splits, Trainer
from ..registry import register
from ..seeding import numpy_rng


@register("shift", "weight-perturbation")
class WeightPerturbation(Shift):
    """Perturb the trained parameters of the base model with noise of size ``severity``.

    Parameters
    ----------
    severity : float, default 0.05
        delta >= 0: the box radius (``uniform``) or standard deviation (``gaussian``).
    kind : {"uniform", "gaussian"}, default "uniform"
        Uniform noise in ROAR's box, or Gaussian noise.
    n_models : int, default 10
        Number K of updated models.
    """

    model_needs = (Perturbable,)

    parameter_constraints = {
        "severity": (Interval("float", low=0),),
        "kind": (Options(("uniform", "gaussian")),),
        "n_models": (Interval("int", low=1),),
    }

    def __init__(self, severity: float = 0.05, kind: str = "uniform", n_models: int = 10):
        self.severity = severity
        self.kind = kind
        self.n_models = n_models

    def updates(
        self, splits: Splits, trainer: Trainer, base_model: Classifier, seed: int
    ) -> list[Classifier]:
        """K perturbed copies of ``base_model``, one noise draw each."""
        self.check_applies(trainer, base_model)
        assert isinstance(base_model, Perturbable)
        return [
            base_model.perturbed(float(self.severity), self.kind, numpy_rng(draw_seed))
            for draw_seed in self.draw_seeds(seed, self.n_models)
        ]
