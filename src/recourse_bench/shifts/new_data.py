"""New data: retrain on the training split plus a share of the dataset's future split.

ALGORITHMS.md, "Model updates and distribution shifts": ``new-data`` retrains on the original data
plus a growing share of the future split, as the protocol of RBR does with 50 % (Nguyen, Bui and
Nguyen, "Robust Bayesian recourse", UAI 2022: the shifted models are trained on the present data
together with half of the shifted data). The future split is the dataset's natural-shift data
(German -> corrected South German, SBA before 2006 -> all years, Student GP -> GP + MS, the
rotated concept of ``synthetic-drift``), encoded in the training split's model space.

What it computes. Let (X_f, y_f) be the future split, with N_f rows, and
m = round(severity * N_f) (Python's round, half to even). For each of the ``n_models`` updated
models k, with the seed ``s_k`` drawn by :meth:`~recourse_bench.api.Shift.draw_seeds` from the
shift's seed:

1. m rows of the future split are drawn uniformly *without* replacement (a generator seeded by
   ``s_k``);
2. the base model's trainer is fit with seed ``s_k`` on the training split (all n rows, in
   order) followed by those m rows: n + m rows in all.

Severity: ``severity`` in [0, 1] is the share of the future split added. Severity 0 retrains on
the training split alone (the unshifted distribution, as ``retrain-seed``); 0.5 is RBR's setting;
1 adds the whole future split (then the K models differ only by their training seed and row
order).

A dataset without a future split raises :class:`~recourse_bench.api.NotApplicable` (recorded as
skipped); a deferred future split whose file is missing raises the
:class:`~recourse_bench.api.DataError` of :meth:`~recourse_bench.api.Splits.future_split`, which
says how to get the file.

Parameters: ``severity`` (default 0.5), ``n_models`` (default 10).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..api import Classifier, Interval, NotApplicable, Splits, Trainer
from ..registry import register
from ._resampling import ResamplingShift


def require_future(shift_name: str, splits: Splits) -> tuple[np.ndarray, np.ndarray]:
    """The splits' future split, or :class:`NotApplicable` if the dataset has none.

    Parameters
    ----------
    shift_name : str
        The shift asking (named in the reason).
    splits : Splits
        The dataset.

    Returns
    -------
    tuple of ndarray
        ``(X_future, y_future)`` in model space.
    """
    if not splits.has_future:
        raise NotApplicable(
            f"{shift_name}: dataset {splits.name!r} has no future split (natural-shift data); "
            f"use a dataset that ships one, such as german, student, sba or synthetic-drift"
        )
    future = splits.future_split()
    if future is None:  # pragma: no cover - has_future promised one
        raise NotApplicable(f"{shift_name}: dataset {splits.name!r} returned no future split")
    return future


@register("shift", "new-data")
class NewData(ResamplingShift):
    """Retrain on the training split plus a share ``severity`` of the future split.

    Parameters
    ----------
    severity : float, default 0.5
        In [0, 1]: the share of the future split added, drawn without replacement per model
        (0.5 as in RBR, Nguyen et al. 2022).
    n_models : int, default 10
        Number K of updated models.
    """

    parameter_constraints = {
        "severity": (Interval("float", low=0, high=1),),
        "n_models": (Interval("int", low=1),),
    }

    def __init__(self, severity: float = 0.5, n_models: int = 10):
        self.severity = severity
        self.n_models = n_models

    def reads_future(self) -> bool:
        """Whether the updates read the future split."""
        return True

    def updates(
        self, splits: Splits, trainer: Trainer, base_model: Classifier, seed: int
    ) -> list[Classifier]:
        """K models; a deferred future split is read once, not once per model."""
        future = require_future(self.name, splits)
        return super().updates(replace(splits, future=future), trainer, base_model, seed)

    def sample(self, splits: Splits, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The training split followed by ``round(severity * N_f)`` future rows."""
        X_future, y_future = require_future(self.name, splits)
        m = round(float(self.severity) * len(y_future))
        rows = rng.choice(len(y_future), size=m, replace=False)
        X = np.concatenate([splits.X_train, X_future[rows]])
        y = np.concatenate([splits.y_train, y_future[rows]])
        return X, y
