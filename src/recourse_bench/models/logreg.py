"""Logistic regression, trained to convergence by Newton's method (or, on request, by Adam).

The model is one linear layer: log-odds ``w^T x + b``, a :class:`TorchClassifier` with
``linear=True``, ``coef_`` = w and ``intercept_`` = b (differentiable for gradient methods,
linear for ROAR's closed form and AR's exact program).

Training (``solver="newton"``, the default). (w, b) minimises ::

    (1 / n) * sum_i [log(1 + exp(w^T x_i + b)) - y_i (w^T x_i + b)] + (weight_decay / 2) ||w||^2

the mean log-loss plus an L2 penalty on the weights, by full-batch Newton iterations with a
backtracking line search in float64 from (w, b) = 0 until no partial derivative exceeds
``tol`` (:mod:`recourse_bench.models._newton`). The objective is strictly convex for
``weight_decay > 0``, so the model is *the* optimum of the data, whatever the seed:
retraining with another seed on the same data gives the same model (bit for bit: the seed is
not used), and the ``retrain-seed`` shift then invalidates nothing, which is the truth for a
convex model. ``weight_decay`` keeps the meaning it has for Adam (whose ``weight_decay=wd``
adds ``wd * w`` to the gradient of the mean loss, i.e. the penalty ``wd / 2 ||w||^2``), with
one difference: the intercept is not penalised (torch's Adam decays the bias too). We follow
scikit-learn here: a penalised intercept pulls every prediction towards probability 1/2
instead of towards the base rate and makes the model depend on where the features' origin
lies; with the default ``weight_decay=1e-4`` the difference is small either way. The result
equals ``sklearn.linear_model.LogisticRegression(C=1 / (n * weight_decay))`` (which minimises
``0.5 ||w||^2 + C * sum_i loss_i``, the same objective times ``C n``) up to the solvers'
tolerances.

Training (``solver="adam"``): the former default, kept unchanged — ``epochs`` passes of Adam
(``lr``, ``batch_size``, ``weight_decay``) from a seeded initialisation, by the shared torch
loop (:class:`~recourse_bench.models._torch.TorchTrainer`). Adam for 300 full-batch epochs
stops short of the optimum on Adult: models retrained with other seeds differ, an artefact of
the optimiser rather than of the data.

Shifts (newton). ``finetune``: Newton's method continues, warm-started from the trained
(w, b), on the new data for ``round(severity * max_iter)`` iterations at most (severity 0: an
exact copy); a fine-tuned model that converges is the new data's optimum, since a convex
model has no training path to resume (as for ``svm``). ``hyperparameters`` perturbs
``weight_decay``, the only thing the optimum depends on. ``weight-perturbation`` adds noise
to (w, b) (:meth:`TorchClassifier.perturbed`). ``architecture`` is skipped: a linear model
has no architecture to vary. With ``solver="adam"`` the shifts act as on any torch trainer
(``finetune`` resumes Adam, ``hyperparameters`` perturbs ``lr`` and ``epochs``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, ClassVar, cast

import numpy as np
from torch import nn

from ..api import ConfigError, Interval, Options, Trainer, check_many
from ..registry import register
from ._newton import fit_logistic
from ._torch import (
    Schedule,
    TorchClassifier,
    TorchTrainer,
    all_but,
    fit_in_groups,
    linear_classifier,
    pick,
)

SOLVERS = ("newton", "adam")


@register("model", "logreg")
class LogReg(TorchTrainer):
    """Logistic regression (linear and differentiable), by default trained to convergence.

    Parameters
    ----------
    solver : {"newton", "adam"}, default "newton"
        ``"newton"``: the penalised log-loss minimised to ``tol`` (the seed is not used);
        ``"adam"``: ``epochs`` of Adam from a seeded initialisation (the former training).
    tol : float, default 1e-10
        Newton stops once no partial derivative of the objective exceeds this.
    max_iter : int, default 100
        Newton iterations at most (fine-tuning runs ``round(severity * max_iter)``).
    epochs : int, default 300
        Adam only: passes over the training data.
    lr : float, default 0.05
        Adam only: learning rate.
    batch_size : int or None, default None
        Adam only: mini-batch size; None trains full-batch.
    weight_decay : float, default 1e-4
        L2 strength ``lam``: the penalty ``lam / 2 ||w||^2`` on the weights (newton; the
        intercept is not penalised), Adam's weight decay (adam; the bias decays too).

    Attributes
    ----------
    tunable_hyperparameters : tuple of str
        What the ``hyperparameters`` shift perturbs: ``("weight_decay",)`` for newton,
        ``("lr", "epochs")`` for adam.
    """

    model_capabilities: ClassVar[frozenset[str]] = frozenset({"gradients", "linear"})
    parameter_constraints = {
        **TorchTrainer.parameter_constraints,
        "solver": (Options(SOLVERS),),
        "tol": (Interval("float", low=0),),
        "max_iter": (Interval("int", low=1),),
    }

    def __init__(
        self,
        solver: str = "newton",
        tol: float = 1e-10,
        max_iter: int = 100,
        epochs: int = 300,
        lr: float = 0.05,
        batch_size: int | None = None,
        weight_decay: float = 1e-4,
    ):
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay

    @property
    def tunable_hyperparameters(self) -> tuple[str, ...]:  # type: ignore[override]
        """``("weight_decay",)`` for newton (the optimum depends on nothing else)."""
        return ("weight_decay",) if self.solver == "newton" else ("lr", "epochs")

    def network(self, n_features: int) -> nn.Module:
        """One linear layer (the adam solver's network)."""
        return nn.Linear(n_features, 1)

    def schedule(self) -> Schedule:
        """Adam's settings (``tol`` is Newton's: adam never stops early, as before)."""
        return Schedule(
            epochs=int(self.epochs),
            lr=float(self.lr),
            weight_decay=float(self.weight_decay),
            batch_size=self.batch_size,
        )

    def fit(self, X: np.ndarray, y: np.ndarray, seed: int) -> TorchClassifier:
        """Train on model-space data; newton ignores ``seed`` (the optimum is unique)."""
        if self.solver == "adam":
            return super().fit(X, y, seed)
        return self.newton([(X, y)], None, int(self.max_iter))[0]

    def fit_many(
        self, samples: Sequence[tuple[np.ndarray, np.ndarray]], seeds: Sequence[int]
    ) -> list[Any]:
        """Train model k on ``samples[k]`` with ``seeds[k]``, as :meth:`fit` would.

        Newton solves the K problems as one batch (samples of different sizes are padded with
        rows of weight 0); adam trains them as one batched network (the torch trainer's).
        """
        if self.solver == "adam":
            return super().fit_many(samples, seeds)
        check_many(samples, seeds)
        return self.newton(samples, None, int(self.max_iter)) if len(samples) else []

    def fit_each(
        self,
        trainers: Sequence[Trainer],
        samples: Sequence[tuple[np.ndarray, np.ndarray]],
        seeds: Sequence[int],
    ) -> list[Any]:
        """Model k trained by ``trainers[k]``, in the order of ``trainers``.

        Newton trainers that differ at most in ``weight_decay`` (the ``hyperparameters``
        shift's variants) are solved as one batch, each model with its own penalty; any other
        trainer goes to :meth:`TorchTrainer.fit_each`.
        """
        check_many(samples, seeds, trainers)

        def batch(ks: list[int]) -> list[TorchClassifier]:
            group = [cast(LogReg, trainers[k]) for k in ks]
            for trainer in group:
                trainer.validate_params()
            penalties = [float(trainer.weight_decay) for trainer in group]
            first = group[0]
            return first.newton(pick(ks, samples)[0], None, int(first.max_iter), penalties)

        def rest(ks: list[int]) -> list[Any]:
            return super(LogReg, self).fit_each(*pick(ks, trainers, samples, seeds))

        return fit_in_groups(trainers, _is_newton, all_but("weight_decay"), batch, rest)

    def finetune(
        self, classifier: TorchClassifier, X: np.ndarray, y: np.ndarray, seed: int, severity: float
    ) -> TorchClassifier:
        """Continue training a copy of ``classifier`` on ``(X, y)``; ``classifier`` is unchanged.

        Newton: ``round(severity * max_iter)`` iterations at most, warm-started from the
        classifier's (w, b) (severity 0: an exact copy; the seed is not used). Adam: the torch
        trainer's resumed optimisation for ``round(severity * epochs)`` epochs.
        """
        if self.solver == "adam":
            return super().finetune(classifier, X, y, seed, severity)
        if isinstance(severity, bool) or not float(severity) >= 0:
            raise ConfigError(f"finetune severity must be a number >= 0, got {severity!r}")
        iterations = round(float(severity) * int(self.max_iter))
        if iterations == 0:
            return copy.deepcopy(classifier)
        start = np.append(classifier.coef_, classifier.intercept_)[None, :]
        return self.newton([(X, y)], start, iterations)[0]

    def architecture_variants(self) -> list[dict[str, Any]]:
        """None: a linear model has no architecture to vary (the shift is skipped)."""
        return []

    def newton(
        self,
        samples: Sequence[tuple[np.ndarray, np.ndarray]],
        start: np.ndarray | None,
        max_iter: int,
        penalties: Sequence[float] | None = None,
    ) -> list[TorchClassifier]:
        """Classifiers minimising the penalised log-loss of each sample (Newton, batched).

        ``penalties`` gives each sample its own L2 strength (default: ``weight_decay``).
        """
        result = fit_logistic(
            samples,
            float(self.weight_decay) if penalties is None else penalties,
            tol=float(self.tol),
            max_iter=max_iter,
            start=start,
        )
        return [
            linear_classifier(coef, float(b))
            for coef, b in zip(result.coef, result.intercept, strict=True)
        ]


def _is_newton(trainer: Trainer) -> bool:
    return type(trainer) is LogReg and trainer.solver == "newton"
