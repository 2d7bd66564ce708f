r"""An example dataset, written as a plugin: synthetic loan applicants with a known concept.

Each applicant has an income (continuous), years employed (an integer that may only grow), an
age (immutable), a housing status (one-hot: rent, own, family) and whether they have a
guarantor (binary). The bank approves with probability sigma(score), a logistic function of
income, employment and home ownership, so the true concept is known; the splits carry it as
their ``oracle`` (for ``oracle-validity``). The raw table is encoded with recourse-bench's own
encoder: a stratified split, features scaled to [0, 1] on the training split, categoricals
one-hot, the schema with immutables and directions.

Try it (see docs/new-dataset.md)::

    recourse-bench check --plugin examples/loan_applicants.py
    recourse-bench run benchmarks/quick.yaml --plugin examples/loan_applicants.py \
        --only dataset=loan-applicants --out runs/loans
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from recourse_bench import Dataset, Splits, register
from recourse_bench.api import Interval
from recourse_bench.datasets import Column, encode_splits
from recourse_bench.models import linear_classifier
from recourse_bench.seeding import numpy_rng

COLUMNS = [
    Column("income", "continuous"),
    Column("years_employed", "integer", direction=1),
    Column("age", "integer", immutable=True),
    Column("housing", "categorical", categories=("rent", "own", "family")),
    Column("guarantor", "binary", categories=("no", "yes")),
]


@register("dataset", "loan-applicants")
class LoanApplicants(Dataset):
    """Synthetic loan applicants whose approval follows a known logistic concept.

    Parameters
    ----------
    n_samples : int, default 1000
        Applicants drawn.
    test_size : float, default 0.3
        Share held out as the test split (the factuals come from it).
    """

    parameter_constraints = {
        "n_samples": (Interval("int", low=50),),
        "test_size": (Interval("float", low=0, high=1, open_low=True, open_high=True),),
    }

    def __init__(self, n_samples: int = 1000, test_size: float = 0.3):
        self.n_samples = n_samples
        self.test_size = test_size

    def load(self, seed: int) -> Splits:
        """Draw the applicants with ``seed``, split, encode; the concept becomes the oracle."""
        rng = numpy_rng(seed)  # a local generator: the global random state is never touched
        n = int(self.n_samples)
        frame = pd.DataFrame(
            {
                "income": rng.gamma(4.0, 10_000.0, n),
                "years_employed": rng.integers(0, 30, n),
                "age": rng.integers(18, 70, n),
                "housing": rng.choice(["rent", "own", "family"], n),
                "guarantor": rng.choice(["no", "yes"], n),
            }
        )
        score = self.score(frame)
        approved = (rng.uniform(size=n) < 1 / (1 + np.exp(-score))).astype(int)
        splits = encode_splits(frame, approved, COLUMNS, seed, self.test_size, self.name)
        return replace(splits, oracle=self.oracle(splits))

    @staticmethod
    def score(frame: pd.DataFrame) -> np.ndarray:
        """The log-odds of approval in raw units."""
        income = frame["income"].to_numpy(float) / 10_000.0
        owns = (frame["housing"] == "own").to_numpy(float)
        return 0.8 * income + 0.1 * frame["years_employed"].to_numpy(float) + owns - 4.0

    def oracle(self, splits: Splits):
        """The concept as a linear classifier in model space (raw = min + x * span)."""
        encoder = splits.encoder
        coef = np.zeros(splits.schema.n_features)
        names = list(splits.schema.features)
        raw_slope = {"income": 0.8 / 10_000.0, "years_employed": 0.1}
        intercept = -4.0
        for name, slope in raw_slope.items():
            j = names.index(name)
            coef[j] = slope * encoder.span(name)
            intercept += slope * encoder.min_[name]
        coef[names.index("housing=own")] = 1.0
        return linear_classifier(coef, intercept)
