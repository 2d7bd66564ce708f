"""Linear SVM with Platt-scaled probabilities, the model of the ROAR paper (CATALOGUE.md A6).

Upadhyay, Joshi and Lakkaraju (NeurIPS 2021), "Towards robust and reliable algorithmic
recourse" (arXiv:2102.13620), train ``sklearn.svm.LinearSVC()`` (C = 1, squared hinge, L2
penalty, intercept penalised as a weight on a constant feature of 1) and calibrate it with
Platt scaling: a one-feature logistic regression on the decision function. We train the same
objective in torch and expose the calibrated log-odds as a linear model.

Training (deterministic, full batch):

1. the training rows are split, per class, into a fitting part and a held-out calibration part
   of share ``calibration`` (a permutation seeded by ``seed``; ``calibration=0`` calibrates on
   the fitting rows themselves, as the ROAR code does);
2. on the fitting part, with labels y in {-1, +1}, minimise LinearSVC's primal objective ::

       0.5 * (||w||^2 + b^2) + C * sum_i loss(y_i (w^T x_i + b))

   with loss(m) = max(0, 1 - m)^2 (``"squared_hinge"``, LinearSVC's default) or max(0, 1 - m)
   (``"hinge"``), divided by C n (the same minimiser, better scaled), from (w, b) = 0 until the
   largest partial derivative falls below ``tol`` or after ``max_iter`` iterations: the
   squared hinge by the generalised Newton method (:mod:`recourse_bench.models._newton`,
   LIBLINEAR's choice for this primal; K models of a shift solved as one batch, about 6
   iterations and 0.05 s on Adult against 0.5 to 1.6 s for the L-BFGS used before), the hinge,
   which has no second derivative, by torch's L-BFGS with a strong-Wolfe line search;
3. Platt scaling (Platt 1999) on the calibration part: (A, B) minimising the cross-entropy of
   sigma(A f + B) against Platt's smoothed targets (N+ + 1) / (N+ + 2) and 1 / (N- + 2), f
   the decision function w^T x + b, by Newton's method with step halving (scikit-learn's
   ``CalibratedClassifierCV(method="sigmoid")`` fits the same; the ROAR code fits an
   L2-penalised ``LogisticRegression()`` on hard labels instead);
4. the classifier's log-odds are the composition A (w^T x + b) + B, a linear model with
   ``coef_ = A w`` and ``intercept_ = A b + B``: differentiable (``logits``) and ``linear``, so
   gradient methods, ROAR's closed form and AR's exact program see the boundary that
   ``predict`` uses (``predict_proba`` >= 0.5; the raw SVM's sign is
   :meth:`SVMClassifier.svm_decision_function`).

Shifts. ``finetune`` (:class:`~recourse_bench.api.Finetunable`): the solver continues from the
trained (w, b) on the new data's fitting part for ``round(severity * max_iter)`` iterations at
most, then Platt scaling is refitted on its calibration part (severity 0: an exact copy). The
objective is strictly convex, so a fine-tuned SVM that converges is the SVM of the new data
(warm-started): an SVM has no training path to resume. ``weight-perturbation``
(:class:`~recourse_bench.api.Perturbable`): the calibrated log-odds parameters (A w, A b + B)
are perturbed, as a logistic regression's, so severity is in the same units for every linear
model (log-odds per unit of a [0, 1] feature; ROAR's box around the model ROAR sees). The
``hyperparameters`` shift perturbs ``C`` (the optimum depends on nothing else; the solver
runs to convergence, the variants as one Newton batch with a penalty each). ``architecture``
is skipped: a linear model has no architecture to vary. ``retrain-seed`` and ``bootstrap``
retrain; the seed only moves the calibration split.

Hyperparameters and defaults: ``C=1.0`` (LinearSVC's and ROAR's), ``loss="squared_hinge"``
(LinearSVC's default, ROAR's), ``calibration=0.2`` (ours: ROAR calibrates on the training data
itself, which overstates the SVM's confidence; ``0`` reproduces it), ``max_iter=500``,
``tol=1e-8``. Against ``LinearSVC(dual=False, tol=1e-12)`` on the same rows the decision
functions agree to 1.2e-7 on the toy data and to 3.8e-7 on Adult (scale 10).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import Any, ClassVar, cast

import numpy as np
import torch
from torch import nn

from ..api import ConfigError, Interval, Options, Trainer, check_many
from ..registry import register
from ..seeding import numpy_rng
from ._newton import SQUARED_HINGE, fit_linear
from ._torch import (
    DTYPE,
    TorchClassifier,
    all_but,
    as_tensor,
    fit_in_groups,
    pick,
    untouched_global_rng,
)

log = logging.getLogger(__name__)

LOSSES = ("squared_hinge", "hinge")
#: Smoothing widths of the hinge, stage after stage (see ``LinearSVM.train_hyperplane``).
SMOOTHING = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)


class SVMClassifier(TorchClassifier):
    """A linear SVM composed with its Platt scaling: log-odds A (w^T x + b) + B.

    ``net`` is the composed linear layer (so ``logits``, ``predict_proba``, ``coef_``,
    ``intercept_`` and ``perturbed`` are those of a logistic regression with these weights).

    Attributes
    ----------
    svm_coef_ : ndarray (d,)
        w, the SVM's weights.
    svm_intercept_ : float
        b, the SVM's bias.
    platt_ : tuple of float
        (A, B), the Platt scaling of the decision function.
    """

    def __init__(self, svm_coef: np.ndarray, svm_intercept: float, platt: tuple[float, float]):
        self.svm_coef_ = np.asarray(svm_coef, dtype=float).reshape(-1).copy()
        self.svm_intercept_ = float(svm_intercept)
        self.platt_ = (float(platt[0]), float(platt[1]))
        a, c = self.platt_
        with untouched_global_rng():
            layer = nn.Linear(len(self.svm_coef_), 1).to(DTYPE)  # before the weights
        with torch.no_grad():
            layer.weight.copy_(as_tensor(a * self.svm_coef_)[None, :])
            layer.bias.fill_(a * self.svm_intercept_ + c)
        super().__init__(layer)

    def svm_decision_function(self, X: np.ndarray) -> np.ndarray:
        """The SVM's own decision function w^T x + b (before Platt scaling)."""
        return np.asarray(X, dtype=float) @ self.svm_coef_ + self.svm_intercept_

    def __repr__(self) -> str:
        a, c = self.platt_
        return f"SVMClassifier(d={len(self.svm_coef_)}, platt=({a:.4g}, {c:.4g}))"


@register("model", "svm")
class LinearSVM(Trainer):
    """Linear SVM (LinearSVC's objective, trained in torch) with Platt-scaled probabilities.

    Parameters
    ----------
    C : float, default 1.0
        Weight of the summed loss against 0.5 ||(w, b)||^2 (LinearSVC's C).
    loss : {"squared_hinge", "hinge"}, default "squared_hinge"
        The margin loss.
    calibration : float, default 0.2
        Share of the training rows (per class) held out to fit Platt scaling; 0 fits it on
        the training rows themselves (the ROAR code).
    max_iter : int, default 500
        Newton (squared hinge) or L-BFGS (hinge) iterations at most.
    tol : float, default 1e-8
        Training stops once no partial derivative of the objective divided by C n exceeds
        this.

    Attributes
    ----------
    tunable_hyperparameters : tuple of str
        ``("C",)``, perturbed by the ``hyperparameters`` shift.
    """

    classifier_type: ClassVar[type] = SVMClassifier
    model_capabilities: ClassVar[frozenset[str]] = frozenset({"gradients", "linear"})
    tunable_hyperparameters: ClassVar[tuple[str, ...]] = ("C",)

    parameter_constraints = {
        "C": (Interval("float", low=0, open_low=True),),
        "loss": (Options(LOSSES),),
        "calibration": (Interval("float", low=0, high=1, open_high=True),),
        "max_iter": (Interval("int", low=1),),
        "tol": (Interval("float", low=0),),
    }

    def __init__(
        self,
        C: float = 1.0,
        loss: str = "squared_hinge",
        calibration: float = 0.2,
        max_iter: int = 500,
        tol: float = 1e-8,
    ):
        self.C = C
        self.loss = loss
        self.calibration = calibration
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, X: np.ndarray, y: np.ndarray, seed: int) -> SVMClassifier:
        """Train on model-space data; ``seed`` draws the calibration split."""
        return self.fit_many([(X, y)], [seed])[0]

    def fit_many(
        self, samples: Sequence[tuple[np.ndarray, np.ndarray]], seeds: Sequence[int]
    ) -> list[Any]:
        """Model k trained on ``samples[k]`` with ``seeds[k]``, as :meth:`fit` would.

        With the squared hinge the K hyperplanes are solved as one batch of Newton's method
        (each model its own rows, calibration split and stopping); the hinge trains them one
        after the other.
        """
        check_many(samples, seeds)
        return _fit_calibrated([self] * len(samples), samples, seeds)

    def fit_each(
        self,
        trainers: Sequence[Trainer],
        samples: Sequence[tuple[np.ndarray, np.ndarray]],
        seeds: Sequence[int],
    ) -> list[Any]:
        """Model k trained by ``trainers[k]``, in the order of ``trainers``.

        Squared-hinge SVMs that differ at most in ``C`` (the ``hyperparameters`` shift's
        variants) are solved as one batch, each with its own penalty; any other trainer goes
        to :meth:`Trainer.fit_each`.
        """
        check_many(samples, seeds, trainers)

        def batch(ks: list[int]) -> list[SVMClassifier]:
            return _fit_calibrated(*pick(ks, trainers, samples, seeds))

        def rest(ks: list[int]) -> list[Any]:
            return super(LinearSVM, self).fit_each(*pick(ks, trainers, samples, seeds))

        return fit_in_groups(trainers, _is_squared_hinge, all_but("C"), batch, rest)

    def architecture_variants(self) -> list[dict[str, Any]]:
        """None: a linear model has no architecture to vary (the shift is skipped)."""
        return []

    def finetune(
        self, classifier: SVMClassifier, X: np.ndarray, y: np.ndarray, seed: int, severity: float
    ) -> SVMClassifier:
        """Continue training a copy of ``classifier`` on ``(X, y)``; ``classifier`` is unchanged.

        The solver restarts from the classifier's (w, b) for ``round(severity * max_iter)``
        iterations at most on the fitting part of ``(X, y)``, then Platt scaling is refitted
        on its calibration part (split with ``seed`` as in :meth:`fit`). Severity 0 returns an
        exact copy.
        """
        if isinstance(severity, bool) or not float(severity) >= 0:
            raise ConfigError(f"finetune severity must be a number >= 0, got {severity!r}")
        iterations = round(float(severity) * int(self.max_iter))
        if iterations == 0:
            return copy.deepcopy(classifier)
        fit_rows, calibration_rows = self.split(y, seed)
        start = np.append(classifier.svm_coef_, classifier.svm_intercept_)
        w, b = self.train_hyperplane(X[fit_rows], y[fit_rows], start, iterations)
        f = X[calibration_rows] @ w + b
        return SVMClassifier(w, b, platt_scaling(f, y[calibration_rows]))

    # ------------------------------------------------------------------------------ pieces
    def split(self, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Row indices of the fitting and the calibration parts (step 1)."""
        y = np.asarray(y)
        share = float(self.calibration)
        if share == 0:
            every = np.arange(len(y))
            return every, every
        rng = numpy_rng(seed)
        held: list[np.ndarray] = []
        for label in np.unique(y):
            rows = rng.permutation(np.flatnonzero(y == label))
            take = round(share * len(rows))
            held.append(rows[: min(take, len(rows) - 1)])  # keep one row of it for fitting
        calibration_rows = np.sort(np.concatenate(held)) if held else np.arange(0)
        mask = np.ones(len(y), dtype=bool)
        mask[calibration_rows] = False
        return np.flatnonzero(mask), calibration_rows

    def train_hyperplane(
        self, X: np.ndarray, y: np.ndarray, start: np.ndarray, max_iter: int
    ) -> tuple[np.ndarray, float]:
        """Step 2: (w, b) minimising the primal objective from ``start`` = (w, b)."""
        if self.loss == "squared_hinge":
            ((w, b),) = self.hyperplanes([(X, y)], [float(self.C)], start[None, :], max_iter)
            return w, b
        return self.hinge_hyperplane(X, y, start, max_iter)

    def hyperplanes(
        self,
        samples: Sequence[tuple[np.ndarray, np.ndarray]],
        Cs: Sequence[float],
        start: np.ndarray | None,
        max_iter: int,
    ) -> list[tuple[np.ndarray, float]]:
        """Squared-hinge (w, b) of each sample, ``Cs[k]`` its C, by batched Newton.

        The objective divided by C n is :mod:`._newton`'s f with the squared hinge and
        ``lam = 1 / (C n)`` on every coordinate, the intercept included.
        """
        pairs = zip(samples, Cs, strict=True)
        penalties = [1.0 / (float(C) * max(len(y), 1)) for (_, y), C in pairs]
        result = fit_linear(
            samples,
            penalties,
            loss=SQUARED_HINGE,
            tol=float(self.tol),
            max_iter=int(max_iter),
            start=start,
        )
        log.debug("svm: Newton stopped after %s iterations", result.iterations.tolist())
        return [(w.copy(), float(b)) for w, b in zip(result.coef, result.intercept, strict=True)]

    def hinge_hyperplane(
        self, X: np.ndarray, y: np.ndarray, start: np.ndarray, max_iter: int
    ) -> tuple[np.ndarray, float]:
        """The hinge's (w, b) by L-BFGS through smoothed hinges, from ``start``.

        The hinge loss is not differentiable where a margin is 1, which stalls L-BFGS short of
        the optimum; it is minimised through smoothed hinges instead (quadratic within ``mu``
        of the kink, linear beyond, so at most ``mu / 2`` from the hinge), ``mu`` going down
        :data:`SMOOTHING`, each stage started where the previous one ended.
        """
        X_t = as_tensor(np.asarray(X, dtype=float))
        signs = as_tensor(2.0 * np.asarray(y, dtype=float) - 1.0)
        theta = as_tensor(np.asarray(start, dtype=float)).clone().requires_grad_(True)
        scale = 1.0 / (2.0 * float(self.C) * max(len(X_t), 1))

        for mu in SMOOTHING:

            def objective(mu: float = mu) -> torch.Tensor:
                slack = torch.clamp(1.0 - signs * (X_t @ theta[:-1] + theta[-1]), min=0.0)
                data = torch.where(slack < mu, slack**2 / (2 * mu), slack - mu / 2)
                return data.mean() + scale * (theta**2).sum()

            optimiser = torch.optim.LBFGS(
                [theta],
                lr=1.0,
                max_iter=int(max_iter),
                max_eval=int(max_iter) * 2,
                tolerance_grad=float(self.tol),
                tolerance_change=1e-15,
                history_size=20,
                line_search_fn="strong_wolfe",
            )

            def closure(optimiser=optimiser, objective=objective) -> torch.Tensor:
                optimiser.zero_grad()
                value = objective()
                value.backward()
                return value

            with torch.enable_grad():
                optimiser.step(closure)  # type: ignore[no-untyped-call]
            done = optimiser.state[theta].get("n_iter", 0)
            log.debug("svm: L-BFGS (mu=%s) stopped after %d iterations", mu, done)
        out = theta.detach().numpy().astype(np.float64)
        return out[:-1].copy(), float(out[-1])


def _is_squared_hinge(trainer: Trainer) -> bool:
    return type(trainer) is LinearSVM and trainer.loss == "squared_hinge"


def _fit_calibrated(
    trainers: Sequence[Trainer],
    samples: Sequence[tuple[np.ndarray, np.ndarray]],
    seeds: Sequence[int],
) -> list[SVMClassifier]:
    """Steps 1 to 4 for trainers that agree on all but C: split, hyperplanes, Platt scaling.

    Squared-hinge hyperplanes are solved as one Newton batch; hinge ones one at a time.
    """
    svms = [cast(LinearSVM, trainer) for trainer in trainers]
    if not svms:
        return []
    first = svms[0]
    for svm in svms:
        svm.validate_params()
    splits = [svm.split(y, seed) for svm, (_, y), seed in zip(svms, samples, seeds, strict=True)]
    fitting = [(X[rows], y[rows]) for (X, y), (rows, _) in zip(samples, splits, strict=True)]
    starts = [np.zeros(np.shape(X)[1] + 1) for X, _ in samples]
    if first.loss == "squared_hinge":
        Cs = [float(svm.C) for svm in svms]
        planes = first.hyperplanes(fitting, Cs, None, int(first.max_iter))
    else:
        planes = [
            svm.hinge_hyperplane(X, y, start, int(svm.max_iter))
            for svm, (X, y), start in zip(svms, fitting, starts, strict=True)
        ]
    models = []
    for (X, y), (_, held), (w, b) in zip(samples, splits, planes, strict=True):
        f = X[held] @ w + b
        models.append(SVMClassifier(w, b, platt_scaling(f, y[held])))
    return models


def platt_scaling(
    f: np.ndarray, y: np.ndarray, max_iter: int = 100, tol: float = 1e-12
) -> tuple[float, float]:
    """Platt's (A, B): sigma(A f + B) fitted to smoothed targets by Newton's method.

    Minimises the cross-entropy of p = sigma(A f + B) against the targets (N+ + 1) / (N+ + 2)
    for positives and 1 / (N- + 2) for negatives (Platt 1999), starting from A = 0 and B the
    log-odds of the positive share; each Newton step is halved until the loss does not rise.

    Parameters
    ----------
    f : ndarray (n,)
        Decision values.
    y : ndarray (n,)
        0/1 labels.

    Returns
    -------
    tuple of float
        (A, B).
    """
    f = np.asarray(f, dtype=float)
    y = np.asarray(y).astype(bool)
    positives, negatives = int(y.sum()), int((~y).sum())
    target = np.where(y, (positives + 1.0) / (positives + 2.0), 1.0 / (negatives + 2.0))
    design = np.column_stack([f, np.ones_like(f)])

    def loss(theta: np.ndarray) -> float:
        s = design @ theta
        return float(np.sum(np.logaddexp(0.0, s) - target * s))

    theta = np.array([0.0, np.log((positives + 1.0) / (negatives + 1.0))])
    current = loss(theta)
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-(design @ theta)))
        grad = design.T @ (p - target)
        hess = (design * (p * (1 - p))[:, None]).T @ design + 1e-12 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while t > 1e-10:
            trial = loss(theta - t * step)
            if trial <= current:
                break
            t /= 2
        else:
            break
        theta, previous, current = theta - t * step, current, trial
        if previous - current <= tol * (1.0 + abs(current)):
            break
    return float(theta[0]), float(theta[1])
