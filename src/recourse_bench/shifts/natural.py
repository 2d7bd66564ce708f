"""Natural shift: retrain on the dataset's future split, 5 folds as in the ROAR paper.

ALGORITHMS.md, "Model updates and distribution shifts": ``natural`` applies to datasets that ship
a future split (German -> corrected South German: correction; SBA before 2006 -> all years:
temporal; Student school GP -> GP + MS: geospatial; ``synthetic-drift``: a rotated concept) and
retrains the same model class on the future data with 5 folds, as Upadhyay, Joshi and Lakkaraju
(NeurIPS 2021, "Towards robust and reliable algorithmic recourse", ROAR) do: each shifted model
is trained on the shifted data minus one of 5 folds.

What it computes. Let (X_f, y_f) be the future split in the training split's model space. The
draw seeds ``s_0 .. s_{K-1}`` come from :meth:`~recourse_bench.api.Shift.draw_seeds` with the
shift's seed. Updated model k (k = 0 .. n_models - 1) belongs to repetition r = k // 5 and
leaves out fold f = k % 5:

1. the future split is cut into 5 stratified folds (scikit-learn's ``StratifiedKFold`` with
   shuffling, ``random_state = derive_seed(seed, "natural", "folds", r)``; so each repetition
   r uses a new fold split derived from the shift's seed);
2. the base model's trainer is fit on the future split minus fold f, with seed ``s_k``.

With the default ``n_models = 5`` this is exactly the ROAR protocol: the 5 models together leave
out every future row once, and each is trained on about 4/5 of the future split. With more
models the protocol cycles over new fold splits (models 5..9 use repetition 1, and so on).

Severity: none (the size of the shift is the dataset's); the harness records it as NaN.

A dataset without a future split raises :class:`~recourse_bench.api.NotApplicable` (recorded as
skipped), as does a future split with fewer than 5 rows of a class; a deferred future split whose
file is missing raises the :class:`~recourse_bench.api.DataError` of
:meth:`~recourse_bench.api.Splits.future_split`.

Parameters: ``n_models`` (default 5).
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedKFold

from ..api import Classifier, Interval, NotApplicable, Shift, Splits, Trainer
from ..registry import register
from ..seeding import derive_seed
from .new_data import require_future

N_FOLDS = 5


@register("shift", "natural")
class Natural(Shift):
    """Retrain on the future split minus one of 5 stratified folds (the ROAR protocol).

    Parameters
    ----------
    n_models : int, default 5
        Number K of updated models; beyond 5 the folds are cut again with new seeds.
    """

    parameter_constraints = {
        "n_models": (Interval("int", low=1),),
    }

    def __init__(self, n_models: int = 5):
        self.n_models = n_models

    def reads_future(self) -> bool:
        """Whether the updates read the future split."""
        return True

    def training_rows(self, y_future: np.ndarray, seed: int) -> list[np.ndarray]:
        """Per updated model, the indices of the future rows it is trained on.

        Parameters
        ----------
        y_future : ndarray
            Labels of the future split.
        seed : int
            The shift's seed.

        Returns
        -------
        list of ndarray
            ``n_models`` index arrays: the future split minus one fold each.
        """
        counts = np.bincount(np.asarray(y_future, dtype=int), minlength=2)
        if counts.min() < N_FOLDS:
            raise NotApplicable(
                f"{self.name}: the future split has {counts.min()} rows of a class, fewer than "
                f"the {N_FOLDS} folds"
            )
        rows: list[np.ndarray] = []
        repetition = 0
        while len(rows) < int(self.n_models):
            fold_seed = derive_seed(seed, self.name, "folds", repetition)
            folds = StratifiedKFold(N_FOLDS, shuffle=True, random_state=fold_seed)
            rows.extend(train for train, _ in folds.split(np.zeros((len(y_future), 1)), y_future))
            repetition += 1
        return rows[: int(self.n_models)]

    def updates(
        self, splits: Splits, trainer: Trainer, base_model: Classifier, seed: int
    ) -> list[Classifier]:
        """K models, each trained on the future split minus one fold."""
        X_future, y_future = require_future(self.name, splits)
        draws = self.draw_seeds(seed, self.n_models)
        rows = self.training_rows(y_future, seed)
        return trainer.fit_many([(X_future[r], y_future[r]) for r in rows], draws)
