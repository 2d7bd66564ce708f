"""Taiwan: default of credit card clients (Yeh and Lien 2009), UCI #350, not embedded.

Source: ``UCI_Credit_Card.csv`` (30,000 rows x 25 columns), the CSV rendition of the UCI
Machine Learning Repository dataset #350 ("default of credit card clients", CC BY 4.0) published
on Kaggle as "default-of-credit-card-clients-dataset". Clients of a Taiwanese bank, April to
September 2005; the target says whether the client defaulted on the payment of October 2005. The
UCI original is an ``.xls`` file with another checksum, so there is no download address for this
rendition: the user gets it from Kaggle and puts it in a data folder (``RECOURSE_BENCH_DATA``); it
is checked against the pinned sha256.

Cleaning and encoding, in order:

1. the ``ID`` column is dropped; no row is dropped: 30,000 rows kept, 23,364 (77.9 %) paid;
2. target: ``default.payment.next.month == 0`` (no default) is favourable (1);
3. ``EDUCATION`` codes 0, 5 and 6 (345 rows), which the codebook does not define, are mapped to
   4 (others); the labels are graduate school, university, high school, others;
4. ``MARRIAGE`` code 0 (54 rows), undefined, is mapped to 3 (others); the labels are married,
   single, others;
5. ``SEX`` 1 / 2 becomes male / female;
6. ``PAY_0`` and ``PAY_2`` .. ``PAY_6`` (repayment status from September back to April 2005:
   -2 no consumption, -1 paid duly, 0 revolving credit, 1..8 months of delay) are ordinal
   integers; ``LIMIT_BAL``, ``BILL_AMT1..6`` (negative for a credit balance) and ``PAY_AMT1..6``
   (whole NT dollars, written as floats in the file) are read as integers and kept with their
   long right tails (no clipping; the largest bill is 1,664,089); ``AGE`` is an integer;
7. integers are min-max scaled with training statistics, ``SEX`` is binary, ``EDUCATION`` and
   ``MARRIAGE`` are one-hot: 28 model-space features.

Actionability: ``SEX`` and ``MARRIAGE`` are immutable (a change of marital status is no
recommendation to give); ``AGE`` may only increase. ``EDUCATION``, the credit limit, the
repayment statuses, bills and payments are mutable: the history columns stand for the behaviour
over the next months, the usual convention of recourse benchmarks.
"""

from __future__ import annotations

import io

import pandas as pd

from ..api import DataError
from ..registry import register
from ._encoding import Column
from ._files import DataFile, read
from ._tabular import DatasetInfo, Frame, TabularDataset

TAIWAN_FILE = DataFile(
    name="UCI_Credit_Card.csv",
    sha256="a0f0ab49d6326671d6cd83be5c88dcf18007025fe9a53ecd699119c871176ca1",
    url=None,
    obtain='the Kaggle dataset "default-of-credit-card-clients-dataset" '
    "(https://www.kaggle.com/datasets/uciml/default-of-credit-card-clients-dataset, "
    "file UCI_Credit_Card.csv; CC BY 4.0, a CSV rendition of UCI #350)",
)
TARGET = "default.payment.next.month"
SEX = {1: "male", 2: "female"}
EDUCATION = {1: "graduate school", 2: "university", 3: "high school", 4: "others"}
EDUCATION_UNDEFINED = {0: 4, 5: 4, 6: 4}
MARRIAGE = {1: "married", 2: "single", 3: "others"}
MARRIAGE_UNDEFINED = {0: 3}
PAY = ("PAY_0", "PAY_2", "PAY_3", "PAY_4", "PAY_5", "PAY_6")
BILL = tuple(f"BILL_AMT{i}" for i in range(1, 7))
PAID = tuple(f"PAY_AMT{i}" for i in range(1, 7))
INTEGER = ("LIMIT_BAL", "AGE", *PAY, *BILL, *PAID)


@register("dataset", "taiwan")
class Taiwan(TabularDataset):
    """Default of credit card clients, Taiwan 2005: 30,000 clients, target no default."""

    info = DatasetInfo(
        source="UCI Machine Learning Repository #350, as UCI_Credit_Card.csv (Kaggle rendition)",
        licence="CC BY 4.0",
        citation="Yeh, I.-C. and Lien, C.-h. (2009). The comparisons of data mining techniques "
        "for the predictive accuracy of probability of default of credit card clients. Expert "
        "Systems with Applications 36(2), 2473-2480. https://doi.org/10.1016/j.eswa.2007.12.020",
        rows=30000,
        favourable=23364,
    )
    files = (TAIWAN_FILE,)

    def columns(self) -> list[Column]:
        """Amounts, statuses and age integers; sex binary; education and marriage one-hot."""
        return [
            *(Column(name, "integer", direction=1 if name == "AGE" else 0) for name in INTEGER),
            Column("SEX", "binary", immutable=True, categories=("female", "male")),
            Column("EDUCATION", "categorical", categories=tuple(EDUCATION.values())),
            Column("MARRIAGE", "categorical", immutable=True, categories=tuple(MARRIAGE.values())),
        ]

    def read_frame(self) -> Frame:
        """All rows; undefined codes merged into "others"; no default as class 1."""
        frame = pd.read_csv(io.BytesIO(read(TAIWAN_FILE))).drop(columns="ID")
        frame[list(INTEGER)] = frame[list(INTEGER)].astype(int)
        frame["SEX"] = frame["SEX"].map(SEX)
        frame["EDUCATION"] = frame["EDUCATION"].replace(EDUCATION_UNDEFINED).map(EDUCATION)
        frame["MARRIAGE"] = frame["MARRIAGE"].replace(MARRIAGE_UNDEFINED).map(MARRIAGE)
        if frame[["SEX", "EDUCATION", "MARRIAGE"]].isna().any().any():
            raise DataError(f"{TAIWAN_FILE.name} has unknown codes; replace it with the original")
        target = (frame[TARGET] == 0).astype(int).to_numpy()
        return frame[[c.name for c in self.columns()]], target
