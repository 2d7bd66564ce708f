"""German credit: the UCI Statlog German Credit data (Hofmann 1994), embedded.

1,000 loan applicants described by 20 attributes in Hofmann's coding (A11 .. A202); the target is
credit risk, 1 = good (favourable, 700 rows), 2 = bad. The file ships inside the package (CC BY 4.0,
see ``data/NOTICE.md``), so this dataset needs no download.

Encoding: the 7 numeric attributes are integers scaled to [0, 1]; the qualitative ones are one-hot
(``telephone`` and ``foreign_worker`` are binary). ``personal_status_sex`` and
``foreign_worker`` are immutable, ``age`` may only increase.
"""

from __future__ import annotations

import pandas as pd

from ..api import DataError
from ..registry import register
from ._encoding import Column
from ._files import DataFile, read
from ._tabular import DatasetInfo, Frame, TabularDataset

SHA256 = "b21f3d81db8071257d5ff1deaeba1fd4303b62712e6fcc9715c7a86202cb5871"

# Hofmann's codes, with the short labels of the codebook (german.doc).
CATEGORIES: dict[str, dict[str, str]] = {
    "status": {"A11": "< 0 DM", "A12": "0-200 DM", "A13": ">= 200 DM", "A14": "no account"},
    "credit_history": {
        "A30": "none taken / all paid",
        "A31": "all paid at this bank",
        "A32": "existing paid duly",
        "A33": "past delays",
        "A34": "critical account",
    },
    "purpose": {
        "A40": "car (new)",
        "A41": "car (used)",
        "A42": "furniture",
        "A43": "radio/tv",
        "A44": "appliances",
        "A45": "repairs",
        "A46": "education",
        "A47": "vacation",
        "A48": "retraining",
        "A49": "business",
        "A410": "others",
    },
    "savings": {
        "A61": "< 100 DM",
        "A62": "100-500 DM",
        "A63": "500-1000 DM",
        "A64": ">= 1000 DM",
        "A65": "unknown / none",
    },
    "employment_duration": {
        "A71": "unemployed",
        "A72": "< 1 year",
        "A73": "1-4 years",
        "A74": "4-7 years",
        "A75": ">= 7 years",
    },
    "personal_status_sex": {
        "A91": "male divorced",
        "A92": "female div/married",
        "A93": "male single",
        "A94": "male married/widowed",
        "A95": "female single",
    },
    "other_debtors": {"A101": "none", "A102": "co-applicant", "A103": "guarantor"},
    "property": {
        "A121": "real estate",
        "A122": "savings agreement / insurance",
        "A123": "car or other",
        "A124": "unknown / none",
    },
    "other_installment_plans": {"A141": "bank", "A142": "stores", "A143": "none"},
    "housing": {"A151": "rent", "A152": "own", "A153": "for free"},
    "job": {
        "A171": "unskilled non-resident",
        "A172": "unskilled resident",
        "A173": "skilled",
        "A174": "management",
    },
    "telephone": {"A191": "none", "A192": "yes"},
    "foreign_worker": {"A202": "no", "A201": "yes"},
}

RAW_COLUMNS = (
    "status duration credit_history purpose amount savings employment_duration installment_rate "
    "personal_status_sex other_debtors present_residence property age other_installment_plans "
    "housing number_credits job people_liable telephone foreign_worker credit_risk"
).split()

INTEGER = (
    "duration",
    "amount",
    "installment_rate",
    "present_residence",
    "age",
    "number_credits",
    "people_liable",
)
IMMUTABLE = ("personal_status_sex", "foreign_worker")
INCREASE_ONLY = ("age",)


def columns() -> list[Column]:
    """The encoding of every feature, in file order."""
    out = []
    for name in RAW_COLUMNS[:-1]:
        if name in INTEGER:
            out.append(Column(name, "integer", direction=1 if name in INCREASE_ONLY else 0))
        else:
            labels = tuple(CATEGORIES[name].values())
            kind = "binary" if len(labels) == 2 else "categorical"
            out.append(Column(name, kind, immutable=name in IMMUTABLE, categories=labels))
    return out


GERMAN_DATA = DataFile(
    name="german.data",
    sha256=SHA256,
    url="https://archive.ics.uci.edu/ml/machine-learning-databases/statlog/german/german.data",
    embedded=True,
)


def parse(data: bytes) -> pd.DataFrame:
    """Hofmann's file -> a frame with readable category labels and a 0/1 target."""
    rows = [line.split() for line in data.decode("ascii").splitlines() if line.strip()]
    frame = pd.DataFrame(rows, columns=list(RAW_COLUMNS))
    for name in INTEGER:
        frame[name] = frame[name].astype(int)
    for name, labels in CATEGORIES.items():
        frame[name] = frame[name].map(labels)
    frame["credit_risk"] = (frame["credit_risk"] == "1").astype(int)
    if frame.isna().any().any():
        raise DataError("german.data has unknown codes; replace it with the original file")
    return frame


@register("dataset", "german")
class German(TabularDataset):
    """UCI Statlog German credit (Hofmann 1994): 1,000 applicants, target good credit risk."""

    info = DatasetInfo(
        source="UCI Machine Learning Repository #144, german.data (embedded)",
        licence="CC BY 4.0",
        citation="Hofmann, H. (1994). Statlog (German Credit Data). UCI ML Repository. "
        "https://doi.org/10.24432/C5NC77",
        rows=1000,
        favourable=700,
    )
    files = (GERMAN_DATA,)

    def columns(self) -> list[Column]:
        """Integers scaled, qualitative attributes one-hot (two-valued ones binary)."""
        return columns()

    def read_frame(self) -> Frame:
        """All 1,000 rows; no cleaning is needed."""
        frame = parse(read(GERMAN_DATA))
        return frame.drop(columns="credit_risk"), frame["credit_risk"].to_numpy()
