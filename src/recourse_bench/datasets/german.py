"""German credit: UCI Statlog German Credit (Hofmann 1994), embedded, with corrected labels.

Source: UCI Machine Learning Repository #144, ``german.data``, embedded in the package (CC BY 4.0,
see ``data/NOTICE.md``): 1,000 loan applicants of a South German bank (1973-1975), 20 attributes
in Hofmann's coding (A11 .. A202); target credit risk, 1 = good (favourable), 2 = bad. All rows are
kept, none has a missing value: 1,000 rows, 700 (70.0 %) good.

Category labels. ``german.doc``, the code table distributed with ``german.data``, is wrong for 8 of
the 13 qualitative attributes (Groemping 2019, who published the corrected coding as South German
Credit, UCI #522, with the code table ``codetable.txt``). Hofmann's A codes are the original integer
codes in their order (A11 is code 1; A30 and A40 are code 0, A410 code 10); of the qualitative
attributes only ``foreign_worker`` is stored the other way round in the corrected file. The data
confirm this correspondence: under it every category has the same count in both files (but for one
housing row) and 947 of the 1,000 corrected rows equal a row of ``german.data`` in all 21 columns,
while ``german.doc``'s labels contradict the counts (its "no checking account", A14, has 394 rows;
the corrected file's "no checking account", 274). Each A code is therefore labelled with the meaning
of its corrected code (column SGC: the code in ``SouthGermanCredit.asc``), so that ``german`` and
``german-corrected`` share one schema; the last column shows what ``german.doc`` said where it
differs. ``personal_status_sex`` has the corrected file's four categories: ``german.doc``'s A95
"female single" occurs in neither file and is not a category, and A92 holds single men as well as
non-single women, so the attribute does not identify sex. Where the corrected labels are surprising
(property: "real estate" has the lowest share of good credits, 56 %), they are kept as published.

=======================  =====  ====  ================================  ========================
attribute                A      SGC   label (both files)                german.doc said
=======================  =====  ====  ================================  ========================
status                   A11    1     no account                        < 0 DM
                         A12    2     < 0 DM                            0-200 DM
                         A13    3     0-200 DM                          >= 200 DM
                         A14    4     >= 200 DM / salary                no account
credit_history           A30    0     past delays                       none taken / all paid
                         A31    1     critical account                  all paid at this bank
                         A32    2     none taken / all paid             existing paid duly
                         A33    3     existing paid duly                past delays
                         A34    4     all paid at this bank             critical account
purpose                  A40    0     others                            car (new)
                         A41    1     car (new)                         car (used)
                         A42    2     car (used)                        furniture
                         A43    3     furniture                         radio/tv
                         A44    4     radio/tv                          appliances
                         A45    5     appliances                        repairs
                         A46    6     repairs                           education
                         A47    7     education                         vacation
                         A48    8     vacation                          retraining
                         A49    9     retraining                        business
                         A410   10    business                          others
savings                  A61    1     unknown / none                    < 100 DM
                         A62    2     < 100 DM                          100-500 DM
                         A63    3     100-500 DM                        500-1000 DM
                         A64    4     500-1000 DM                       >= 1000 DM
                         A65    5     >= 1000 DM                        unknown / none
employment_duration      A71    1     unemployed
                         A72    2     < 1 year
                         A73    3     1-4 years
                         A74    4     4-7 years
                         A75    5     >= 7 years
personal_status_sex      A91    1     male divorced
                         A92    2     female non-single or male single  female div/married
                         A93    3     male married/widowed              male single
                         A94    4     female single                     male married/widowed
other_debtors            A101   1     none
                         A102   2     co-applicant
                         A103   3     guarantor
property                 A121   1     unknown / none                    real estate
                         A122   2     car or other                      savings agr. / insurance
                         A123   3     savings agreement / insurance     car or other
                         A124   4     real estate                       unknown / none
other_installment_plans  A141   1     bank
                         A142   2     stores
                         A143   3     none
housing                  A151   1     for free                          rent
                         A152   2     rent                              own
                         A153   3     own                               for free
job                      A171   1     unskilled non-resident
                         A172   2     unskilled resident
                         A173   3     skilled
                         A174   4     management
telephone                A191   1     none
                         A192   2     yes
foreign_worker           A201   2     no                                yes
                         A202   1     yes                               no
=======================  =====  ====  ================================  ========================

The integer attributes keep the values of ``german.data``; four of them are codes of ordered classes
(corrected code table): ``installment_rate`` 1 = at least 35 % of disposable income, 2 = 25-35 %,
3 = 20-25 %, 4 = below 20 % (a higher value is a lighter burden, not a higher rate);
``present_residence`` 1 = under 1 year, 2 = 1-4, 3 = 4-7, 4 = 7 years or more; ``number_credits``
1 = one, 2 = 2-3, 3 = 4-5, 4 = 6 or more; ``people_liable`` 1 = 0 to 2 people, 2 = 3 or more (the
corrected file stores these two classes the other way round, as ``pers`` 2 and 1).

Encoding: the 7 integer attributes are min-max scaled with training statistics; the qualitative
ones are one-hot (``telephone`` and ``foreign_worker`` binary, 1 = yes).

Actionability: ``personal_status_sex`` and ``foreign_worker`` are immutable; ``age`` may only
increase.

Natural shift (the future split): the data correction, ``german.data`` -> ``SouthGermanCredit.asc``
(UCI #522, CC BY 4.0), read by :func:`read_corrected` (which ``german-corrected`` uses too) into the
same raw columns and labels and encoded with the german training statistics: 1,000 rows, 700 good.
Loading ``german`` therefore needs that file (data folder, or downloaded from UCI). The rows are
in another order; after the mapping, 947 rows are identical and 53 differ in one or two values (the
list is in the documentation of ``german-corrected``).
"""

from __future__ import annotations

import io

import pandas as pd

from ..api import DataError
from ..registry import register
from ._encoding import Column
from ._files import DataFile, read
from ._tabular import DatasetInfo, Frame, TabularDataset

SHA256 = "b21f3d81db8071257d5ff1deaeba1fd4303b62712e6fcc9715c7a86202cb5871"

# The one schema of both files: per qualitative attribute, (Hofmann's code in german.data, the code
# of the same category in SouthGermanCredit.asc, the label from the corrected code table).
CODES: dict[str, tuple[tuple[str, int, str], ...]] = {
    "status": (
        ("A11", 1, "no account"),
        ("A12", 2, "< 0 DM"),
        ("A13", 3, "0-200 DM"),
        ("A14", 4, ">= 200 DM / salary"),
    ),
    "credit_history": (
        ("A30", 0, "past delays"),
        ("A31", 1, "critical account"),
        ("A32", 2, "none taken / all paid"),
        ("A33", 3, "existing paid duly"),
        ("A34", 4, "all paid at this bank"),
    ),
    "purpose": (
        ("A40", 0, "others"),
        ("A41", 1, "car (new)"),
        ("A42", 2, "car (used)"),
        ("A43", 3, "furniture"),
        ("A44", 4, "radio/tv"),
        ("A45", 5, "appliances"),
        ("A46", 6, "repairs"),
        ("A47", 7, "education"),
        ("A48", 8, "vacation"),
        ("A49", 9, "retraining"),
        ("A410", 10, "business"),
    ),
    "savings": (
        ("A61", 1, "unknown / none"),
        ("A62", 2, "< 100 DM"),
        ("A63", 3, "100-500 DM"),
        ("A64", 4, "500-1000 DM"),
        ("A65", 5, ">= 1000 DM"),
    ),
    "employment_duration": (
        ("A71", 1, "unemployed"),
        ("A72", 2, "< 1 year"),
        ("A73", 3, "1-4 years"),
        ("A74", 4, "4-7 years"),
        ("A75", 5, ">= 7 years"),
    ),
    "personal_status_sex": (
        ("A91", 1, "male divorced"),
        ("A92", 2, "female non-single or male single"),
        ("A93", 3, "male married/widowed"),
        ("A94", 4, "female single"),
    ),
    "other_debtors": (("A101", 1, "none"), ("A102", 2, "co-applicant"), ("A103", 3, "guarantor")),
    "property": (
        ("A121", 1, "unknown / none"),
        ("A122", 2, "car or other"),
        ("A123", 3, "savings agreement / insurance"),
        ("A124", 4, "real estate"),
    ),
    "other_installment_plans": (("A141", 1, "bank"), ("A142", 2, "stores"), ("A143", 3, "none")),
    "housing": (("A151", 1, "for free"), ("A152", 2, "rent"), ("A153", 3, "own")),
    "job": (
        ("A171", 1, "unskilled non-resident"),
        ("A172", 2, "unskilled resident"),
        ("A173", 3, "skilled"),
        ("A174", 4, "management"),
    ),
    "telephone": (("A191", 1, "none"), ("A192", 2, "yes")),
    "foreign_worker": (("A201", 2, "no"), ("A202", 1, "yes")),
}
# Hofmann's codes -> labels, and the corrected file's codes -> the same labels.
CATEGORIES: dict[str, dict[str, str]] = {
    name: {hofmann: label for hofmann, _, label in rows} for name, rows in CODES.items()
}
CORRECTED_CATEGORIES: dict[str, dict[int, str]] = {
    name: {corrected: label for _, corrected, label in rows} for name, rows in CODES.items()
}
# Integer attributes the corrected file stores differently: its code -> the value in german.data.
CORRECTED_INTEGERS: dict[str, dict[int, int]] = {"people_liable": {1: 2, 2: 1}}

RAW_COLUMNS = (
    "status duration credit_history purpose amount savings employment_duration installment_rate "
    "personal_status_sex other_debtors present_residence property age other_installment_plans "
    "housing number_credits job people_liable telephone foreign_worker credit_risk"
).split()
# The header of SouthGermanCredit.asc: Groemping's German names, in the order of RAW_COLUMNS.
CORRECTED_COLUMNS = (
    "laufkont laufzeit moral verw hoehe sparkont beszeit rate famges buerge wohnzeit verm alter "
    "weitkred wohn bishkred beruf pers telef gastarb kredit"
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
    """The encoding of every feature, in file order (the same for both files)."""
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
SOUTH_GERMAN_CREDIT = DataFile(
    name="SouthGermanCredit.asc",
    sha256="f0caee5ff54c4a4e9689bc10d5b23ccf5088862a846ab603f9536f135aae30d3",
    url="https://archive.ics.uci.edu/static/public/522/south+german+credit.zip",
    members=("SouthGermanCredit.asc",),
)


def parse(data: bytes) -> pd.DataFrame:
    """Hofmann's file -> a frame with the shared category labels and a 0/1 target."""
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


def decode_corrected(codes: pd.DataFrame) -> pd.DataFrame:
    """South German Credit integer codes (columns named as RAW_COLUMNS) -> the shared schema.

    Qualitative codes become the labels of :data:`CODES`, ``people_liable`` takes the values of
    ``german.data`` (:data:`CORRECTED_INTEGERS`), the other integers are kept, and ``kredit``
    1 (good) is the favourable class 1. Raises :class:`DataError` on any unknown code.
    """
    frame = pd.DataFrame(index=codes.index)
    for name in RAW_COLUMNS:
        values = pd.to_numeric(codes[name], errors="coerce")
        if name in CORRECTED_CATEGORIES:
            frame[name] = values.map(CORRECTED_CATEGORIES[name])
        elif name in CORRECTED_INTEGERS:
            frame[name] = values.map(CORRECTED_INTEGERS[name])
        elif name == "credit_risk":
            frame[name] = values.where(values.isin((0, 1)))
        else:
            frame[name] = values.where(values == values.round())
    bad = [name for name in RAW_COLUMNS if frame[name].isna().any()]
    if bad:
        raise DataError(
            f"SouthGermanCredit.asc has unknown codes in {bad}; replace it with the original file"
        )
    for name in [*INTEGER, "credit_risk"]:
        frame[name] = frame[name].astype(int)
    return frame


def parse_corrected(data: bytes) -> pd.DataFrame:
    """``SouthGermanCredit.asc`` (whitespace separated, German header) -> the shared schema."""
    table = pd.read_csv(io.BytesIO(data), sep=r"\s+")
    if list(table.columns) != CORRECTED_COLUMNS:
        raise DataError(
            f"SouthGermanCredit.asc has the header {list(table.columns)[:4]}..., expected "
            f"{CORRECTED_COLUMNS[:4]}...; replace it with the original file"
        )
    return decode_corrected(table.set_axis(RAW_COLUMNS, axis=1))


def read_corrected() -> Frame:
    """The corrected file in german's raw columns and labels, with its 0/1 target."""
    try:
        data = read(SOUTH_GERMAN_CREDIT)
    except DataError as exc:  # a failed download names only the archive: name the file too
        name = SOUTH_GERMAN_CREDIT.name
        raise (exc if name in str(exc) else DataError(f"{name} is needed: {exc}")) from None
    frame = parse_corrected(data)
    return frame.drop(columns="credit_risk"), frame["credit_risk"].to_numpy()


@register("dataset", "german")
class German(TabularDataset):
    """UCI Statlog German credit (Hofmann 1994): 1,000 applicants, target good credit risk."""

    info = DatasetInfo(
        source="UCI Machine Learning Repository #144, german.data (embedded); future split: "
        "#522, SouthGermanCredit.asc",
        licence="CC BY 4.0",
        citation="Hofmann, H. (1994). Statlog (German Credit Data). UCI ML Repository. "
        "https://doi.org/10.24432/C5NC77; labels and future split: Groemping, U. (2019). South "
        "German Credit Data: Correcting a Widely Used Data Set. Report 4/2019, Beuth University "
        "of Applied Sciences Berlin",
        rows=1000,
        favourable=700,
        future_rows=1000,
        future_favourable=700,
        future="correction: Hofmann coding -> corrected South German Credit",
    )
    files = (GERMAN_DATA, SOUTH_GERMAN_CREDIT)
    future_files = (SOUTH_GERMAN_CREDIT,)

    def columns(self) -> list[Column]:
        """Integers scaled, qualitative attributes one-hot (two-valued ones binary)."""
        return columns()

    def read_frame(self) -> Frame:
        """All 1,000 rows; no cleaning is needed."""
        frame = parse(read(GERMAN_DATA))
        return frame.drop(columns="credit_risk"), frame["credit_risk"].to_numpy()

    def read_future(self) -> Frame:
        """The corrected South German Credit file, mapped onto the same schema."""
        return read_corrected()
