"""COMPAS: ProPublica's two-year recidivism data (Angwin et al. 2016), not embedded.

Source: github.com/propublica/compas-analysis, ``compas-scores-two-years.csv`` (7,214 rows x 53
columns): defendants screened with COMPAS in Broward County, Florida, in 2013-2014, followed for
two years. The repository states no licence, so the file is not shipped with the package: it is
read from the user's data folder (``RECOURSE_BENCH_DATA``) or downloaded from its public address
into the cache, and always checked against the pinned sha256.

Cleaning and encoding, in order:

1. ProPublica's filter (their ``Compas Analysis`` notebook): keep rows with
   ``days_b_screening_arrest`` within [-30, 30] (drops missing values too), ``is_recid != -1``,
   ``c_charge_degree != 'O'`` (ordinary traffic offences) and a ``score_text`` other than
   ``N/A``: 6,172 rows kept, 3,363 (54.5 %) did not reoffend within two years;
2. target: ``two_year_recid == 0`` (no new offence within two years) is favourable (1);
3. ``length_of_stay``: calendar days from the date of ``c_jail_in`` to the date of
   ``c_jail_out`` (0 = released the same day, 0..800); ProPublica's timestamp difference in
   whole days would give -1 for 183 rows whose release time stamp precedes the booking time
   stamp of the same day;
4. ``race`` is binarised to African-American / Other (51.4 % African-American), as CARLA does;
   ProPublica's headline comparison is between African-American and white defendants, and four of
   the six groups hold under 10 % of the rows (Asian 31 rows, Native American 11);
5. kept features: ``age``, ``priors_count``, ``juv_fel_count``, ``juv_misd_count``,
   ``juv_other_count``, ``length_of_stay`` (integers, min-max scaled with training statistics),
   ``sex``, ``race`` and ``c_charge_degree`` (F felony / M misdemeanour), binary. Every COMPAS
   output (scores, deciles) and every column about the outcome (``is_recid``, ``r_*``, ``vr_*``,
   ``event``) is left out. 9 model-space features.

Actionability: ``sex`` and ``race`` are immutable; so are the three juvenile counts (every
defendant is at least 18, so the juvenile record is closed). ``age`` may only increase (a later
assessment). ``priors_count``, ``c_charge_degree`` and ``length_of_stay`` are mutable: they
describe the criminal record and the current case, so recourse on them is a benchmark convention
(CARLA, Pawelczyk et al. 2021, uses the same features) rather than an action open to a defendant.
"""

from __future__ import annotations

import io

import pandas as pd

from ..registry import register
from ._encoding import Column
from ._files import DataFile, read
from ._tabular import DatasetInfo, Frame, TabularDataset

COMPAS_FILE = DataFile(
    name="compas-scores-two-years.csv",
    sha256="c451db85908b2f7fef1d83203bedf6b71ecda0d5af468d82ae62178f91d0cc7d",
    url="https://raw.githubusercontent.com/propublica/compas-analysis/master/"
    "compas-scores-two-years.csv",
    obtain="https://github.com/propublica/compas-analysis (compas-scores-two-years.csv)",
)
INTEGER = ("priors_count", "length_of_stay")
JUVENILE = ("juv_fel_count", "juv_misd_count", "juv_other_count")
READ_COLUMNS = [
    "age",
    "sex",
    "race",
    *JUVENILE,
    "priors_count",
    "days_b_screening_arrest",
    "c_jail_in",
    "c_jail_out",
    "c_charge_degree",
    "is_recid",
    "score_text",
    "two_year_recid",
]


@register("dataset", "compas")
class Compas(TabularDataset):
    """ProPublica COMPAS two-year recidivism: 6,172 defendants, target no reoffence in 2 years."""

    info = DatasetInfo(
        source="ProPublica compas-analysis (GitHub), compas-scores-two-years.csv",
        licence="none stated (research use; not redistributed)",
        citation="Angwin, J., Larson, J., Mattu, S. and Kirchner, L. (2016). Machine Bias. "
        "ProPublica. https://www.propublica.org/article/machine-bias-risk-assessments-in-"
        "criminal-sentencing",
        rows=6172,
        favourable=3363,
    )
    files = (COMPAS_FILE,)

    def columns(self) -> list[Column]:
        """Counts and length of stay scaled; sex, race and charge degree binary."""
        return [
            Column("age", "integer", direction=1),
            *(Column(name, "integer") for name in INTEGER),
            *(Column(name, "integer", immutable=True) for name in JUVENILE),
            Column("sex", "binary", immutable=True, categories=("Female", "Male")),
            Column("race", "binary", immutable=True, categories=("Other", "African-American")),
            Column("c_charge_degree", "binary", categories=("M", "F")),
        ]

    def read_frame(self) -> Frame:
        """ProPublica's filter, ``two_year_recid == 0`` as class 1."""
        raw = pd.read_csv(io.BytesIO(read(COMPAS_FILE)), usecols=READ_COLUMNS)
        keep = (
            raw["days_b_screening_arrest"].between(-30, 30)
            & (raw["is_recid"] != -1)
            & (raw["c_charge_degree"] != "O")
            & raw["score_text"].notna()
            & (raw["score_text"] != "N/A")
        )
        frame = raw[keep].reset_index(drop=True)
        jail_in = pd.to_datetime(frame["c_jail_in"]).dt.normalize()
        jail_out = pd.to_datetime(frame["c_jail_out"]).dt.normalize()
        frame["length_of_stay"] = (jail_out - jail_in).dt.days.astype(int)
        frame["race"] = frame["race"].where(frame["race"] == "African-American", "Other")
        target = (frame["two_year_recid"] == 0).astype(int).to_numpy()
        return frame[[c.name for c in self.columns()]], target
