"""Give Me Some Credit: the Kaggle 2011 credit scoring competition data, not embedded.

Source: ``cs-training.csv`` (150,000 rows; an unnamed row id and 11 columns) from the Kaggle
competition "Give Me Some Credit": borrowers described by 10 credit features, and
``SeriousDlqin2yrs`` (90 days past due or worse within two years). The competition rules forbid
redistribution and the download needs a Kaggle account: the user gets the file from Kaggle and
puts it in a data folder (``RECOURSE_BENCH_DATA``); it is checked against the pinned sha256.

Cleaning and encoding, in order (every rule is fixed in advance, the same for every split, since
the encoder learns min/max from the training split only):

1. the unnamed row id column is dropped;
2. rows with a missing ``MonthlyIncome`` (29,731) or ``NumberOfDependents`` (3,924) are dropped,
   as CARLA keeps complete rows: 120,269 left;
3. rows with ``MonthlyIncome`` 0 or 1 (2,239) are dropped: the file then holds the monthly debt
   amount in ``DebtRatio`` (median 779.5) instead of a ratio;
4. rows with the codes 96 or 98 in the three past-due counts (139; the codes appear in all three
   at once and stand for unknown, not for 96 delinquencies in two years) are dropped;
5. rows aged under 18 (one row, age 0) are dropped: 117,890 rows kept, 109,698 (93.1 %) without
   a serious delinquency;
6. target: ``SeriousDlqin2yrs == 0`` is favourable (1);
7. heavy tails are clipped at fixed caps, so that min-max scaling does not squash the bulk of
   the rows: ``RevolvingUtilizationOfUnsecuredLines`` to [0, 2] (twice the credit limits; 275
   rows above, values above 10 are implausible), ``DebtRatio`` to [0, 5] (321 rows above; the
   99.9th percentile is about 11) and ``MonthlyIncome`` to [0, 50,000] (301 rows above; the
   largest is 3,008,750);
8. the two ratios are continuous, the other 8 features integers, all min-max scaled with
   training statistics: 10 model-space features.

Actionability: ``age`` may only increase (a later application); every other feature is
mutable.
"""

from __future__ import annotations

import io

import pandas as pd

from ..registry import register
from ._encoding import Column
from ._files import DataFile, read
from ._tabular import DatasetInfo, Frame, TabularDataset

GMSC_FILE = DataFile(
    name="cs-training.csv",
    sha256="1bd46da486a5708c58c7b01a034fae2a13b327f6f7b62ea7ba4fe3b5824b24ac",
    url=None,
    obtain='the Kaggle competition "Give Me Some Credit" '
    "(https://www.kaggle.com/c/GiveMeSomeCredit/data, sign-in and accepting the competition "
    "rules, file cs-training.csv)",
)
TARGET = "SeriousDlqin2yrs"
PAST_DUE = (
    "NumberOfTime30-59DaysPastDueNotWorse",
    "NumberOfTime60-89DaysPastDueNotWorse",
    "NumberOfTimes90DaysLate",
)
CAPS = {
    "RevolvingUtilizationOfUnsecuredLines": 2.0,
    "DebtRatio": 5.0,
    "MonthlyIncome": 50_000,
}
CONTINUOUS = ("RevolvingUtilizationOfUnsecuredLines", "DebtRatio")
INTEGER = (
    "age",
    "MonthlyIncome",
    "NumberOfOpenCreditLinesAndLoans",
    "NumberRealEstateLoansOrLines",
    "NumberOfDependents",
    *PAST_DUE,
)


@register("dataset", "gmsc")
class GiveMeSomeCredit(TabularDataset):
    """Kaggle Give Me Some Credit: 117,890 borrowers, target no serious delinquency in 2 years."""

    info = DatasetInfo(
        source="Kaggle competition Give Me Some Credit (2011), cs-training.csv",
        licence="Kaggle competition rules (no redistribution)",
        citation="Credit Fusion and Kaggle (2011). Give Me Some Credit. Kaggle competition. "
        "https://www.kaggle.com/c/GiveMeSomeCredit",
        rows=117890,
        favourable=109698,
    )
    files = (GMSC_FILE,)

    def columns(self) -> list[Column]:
        """Two ratios continuous, counts, age and income integers; age may only increase."""
        return [
            *(Column(name, "continuous") for name in CONTINUOUS),
            *(Column(name, "integer", direction=1 if name == "age" else 0) for name in INTEGER),
        ]

    def read_frame(self) -> Frame:
        """Complete, plausible rows with tails clipped; no serious delinquency as class 1."""
        raw = pd.read_csv(io.BytesIO(read(GMSC_FILE)), index_col=0)
        raw = raw.dropna(subset=["MonthlyIncome", "NumberOfDependents"])
        keep = (
            (raw["MonthlyIncome"] > 1) & (raw[list(PAST_DUE)] < 96).all(axis=1) & (raw["age"] >= 18)
        )
        frame = raw[keep].reset_index(drop=True)
        for name, cap in CAPS.items():
            frame[name] = frame[name].clip(0, cap)
        frame[list(INTEGER)] = frame[list(INTEGER)].astype(int)
        target = (frame[TARGET] == 0).astype(int).to_numpy()
        return frame[[c.name for c in self.columns()]], target
