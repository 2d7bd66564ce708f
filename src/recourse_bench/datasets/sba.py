"""SBA: small business loans of the SBA case study (Li, Mickel and Taylor 2018), temporal shift.

Source: the supplementary data of Li, Mickel and Taylor (2018), Journal of Statistics Education
26(1), file ``SBAcase.11.13.17.csv`` (2,102 rows x 35 columns, UTF-8 with a byte-order mark, CRLF):
SBA 7(a) loans to California businesses in the Real Estate and Rental and Leasing sector (NAICS
53), approved in fiscal years 1989..2012. Public loan records; cite the article. There is no
stable public download address: the file has to be put in a data folder.

Cleaning and encoding, in order:

1. no row is dropped (every cleaning rule below maps a value instead);
2. target: ``Default`` 0 (paid in full) is favourable (1); ``Default`` is 1 exactly where
   ``MIS_Status`` is ``CHGOFF``;
3. natural shift (temporal): the base data are the loans approved before fiscal year 2006
   (``ApprovalFY < 2006``), 1,159 rows, 973 (84.0 %) paid in full; the future split is the loans
   of all years (all 2,102 rows in file order), 1,416 (67.4 %) paid in full. ``ApprovalFY``
   defines the shift and is not a feature;
4. dropped as identifiers: ``Selected`` (the article's sampling flag), ``LoanNr_ChkDgt``,
   ``Name``, ``City``, ``State`` (always CA), ``Zip``, ``Bank``, ``BankState``; as dates:
   ``ApprovalDate``, ``ApprovalFY``, ``DisbursementDate``, ``daysterm`` (``Term`` in days) and
   ``xx`` (the maturity date); as the outcome or known only after it: ``MIS_Status``,
   ``ChgOffDate``, ``ChgOffPrinGr``, ``BalanceGross`` (always 0); ``Recession`` (the loan was
   active during the Great Recession, computed from its dates, unknown at approval before 2006
   and a proxy of the approval period that defines the shift); ``SBA_Appv`` (equal to
   ``Portion * GrAppv``: redundant with the two kept);
5. ``NAICS`` is reduced to its subsector, the first three digits (``Subsector``: 531 real estate,
   532 rental and leasing, 533 lessors of intangible assets);
6. ``FranchiseCode`` becomes ``Franchise``: 1 unless the code is 0 or 1 (no franchise);
7. ``New`` is taken from the file: 1 where ``NewExist`` is 2 (new business), else 0, so the two
   rows with an undocumented ``NewExist`` (one 0, one missing) count as existing businesses;
8. ``RevLineCr`` and ``LowDoc``: the codebook defines only Y and N; only Y counts as yes, every
   other value is N (``RevLineCr``: 729 ``0``, 54 ``T``, 2 missing; ``LowDoc``: 3 ``S``, 1 ``A``,
   1 ``0``, 3 missing);
9. ``UrbanRural`` codes are labelled 1 urban, 2 rural, 0 undefined;
10. ``Term`` (months), ``NoEmp``, ``CreateJob`` and ``RetainedJob`` are integers, and
    ``DisbursementGross``, ``GrAppv`` (dollars) and ``Portion`` (the SBA-guaranteed share of
    ``GrAppv``) continuous, all min-max scaled with training statistics (future rows outside the
    training range are clipped into it); ``New``, ``Franchise``, ``RealEstate`` (backed by real
    estate: ``Term >= 240`` months), ``RevLineCr`` and ``LowDoc`` binary; ``UrbanRural`` and
    ``Subsector`` one-hot.

Model space: 4 integer, 3 continuous, 5 binary and 6 one-hot columns, 18 in all.

Actionability:

* immutable, as properties of the business: ``New``, ``Franchise``, ``RealEstate`` (real estate
  to pledge), ``UrbanRural`` and ``Subsector``;
* actionable either way, as terms of the loan or the business plan: ``Term``, ``NoEmp``,
  ``CreateJob``, ``RetainedJob``, ``DisbursementGross``, ``GrAppv``, ``Portion``, ``RevLineCr``
  and ``LowDoc``. ``RealEstate`` equals ``Term >= 240`` in the data; a recourse may change
  ``Term`` across 240 months while ``RealEstate`` stays as it is.
"""

from __future__ import annotations

import io

import pandas as pd

from ..registry import register
from ._encoding import Column
from ._files import DataFile, read
from ._tabular import DatasetInfo, Frame, TabularDataset

SBA_CASE = DataFile(
    name="SBAcase.11.13.17.csv",
    sha256="3fc1a6519ae8450cbf6721c9f37797224d77c755b5b52baf58ee046478f8932b",
    obtain="the supplementary data of Li, Mickel and Taylor (2018), 'Should This Loan be "
    "Approved or Denied?: A Large Dataset with Class Assignment Guidelines', Journal of "
    "Statistics Education 26(1), https://doi.org/10.1080/10691898.2018.1434342 "
    "(file SBAcase.11.13.17.csv)",
)
FUTURE_FROM = 2006  # base: loans approved in fiscal years before this one
INTEGER = ("Term", "NoEmp", "CreateJob", "RetainedJob")
CONTINUOUS = ("DisbursementGross", "GrAppv", "Portion")
BINARY = {
    "New": ((0, 1), True),
    "Franchise": ((0, 1), True),
    "RealEstate": ((0, 1), True),
    "RevLineCr": (("N", "Y"), False),
    "LowDoc": (("N", "Y"), False),
}
URBAN_RURAL = {0: "undefined", 1: "urban", 2: "rural"}
CATEGORIES = {
    "UrbanRural": tuple(URBAN_RURAL.values()),
    "Subsector": (531, 532, 533),
}


def _parse(data: bytes) -> pd.DataFrame:
    """All 2,102 loans in file order, cleaned into the feature columns (plus the rest)."""
    frame = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig")
    frame["Subsector"] = frame["NAICS"] // 1000
    frame["Franchise"] = (~frame["FranchiseCode"].isin((0, 1))).astype(int)
    for name in ("RevLineCr", "LowDoc"):
        frame[name] = frame[name].where(frame[name] == "Y", "N")
    frame["UrbanRural"] = frame["UrbanRural"].map(URBAN_RURAL)
    return frame


@register("dataset", "sba")
class SBA(TabularDataset):
    """SBA loans, California real estate: before 2006 (1,159 rows) -> all years (2,102)."""

    info = DatasetInfo(
        source="Li, Mickel and Taylor (2018), JSE 26(1), supplementary SBAcase.11.13.17.csv",
        licence="public loan records; cite the article",
        citation="Li, M., Mickel, A. and Taylor, S. (2018). Should This Loan be Approved or "
        "Denied?: A Large Dataset with Class Assignment Guidelines. Journal of Statistics "
        "Education 26(1), 55-66. https://doi.org/10.1080/10691898.2018.1434342",
        rows=1159,
        favourable=973,
        future_rows=2102,
        future_favourable=1416,
        future="temporal: before 2006 -> all years",
    )
    files = (SBA_CASE,)

    def columns(self) -> list[Column]:
        """Counts and term integers; amounts and share continuous; flags binary; codes one-hot."""
        numeric = [Column(name, "integer") for name in INTEGER]
        numeric += [Column(name, "continuous") for name in CONTINUOUS]
        binary = [
            Column(name, "binary", immutable=fixed, categories=labels)
            for name, (labels, fixed) in BINARY.items()
        ]
        categorical = [
            Column(name, "categorical", immutable=True, categories=labels)
            for name, labels in CATEGORIES.items()
        ]
        return numeric + binary + categorical

    def _read(self, base_only: bool) -> Frame:
        frame = _parse(read(SBA_CASE))
        if base_only:
            frame = frame[frame["ApprovalFY"] < FUTURE_FROM].reset_index(drop=True)
        target = (frame["Default"] == 0).astype(int).to_numpy()
        keep = [c.name for c in self.columns()]
        return frame[keep], target

    def read_frame(self) -> Frame:
        """Loans approved before fiscal year 2006, paid in full (``Default == 0``) as class 1."""
        return self._read(base_only=True)

    def read_future(self) -> Frame:
        """Loans of all approval years, in the same columns."""
        return self._read(base_only=False)
