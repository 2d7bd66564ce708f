"""Student: UCI Student Performance, Portuguese course (Cortez and Silva 2008), geospatial shift.

Source: UCI Machine Learning Repository #320, ``student-por.csv`` (649 rows x 33 columns, ``;``
separated), inside ``student.zip`` inside the dataset archive, which is downloaded on first use
(CC BY 4.0). Students of two Portuguese secondary schools: Gabriel Pereira (GP, 423 rows) and
Mousinho da Silveira (MS, 226 rows).

Cleaning and encoding, in order:

1. no value is missing and every code is the codebook's (integer codes are checked against its
   ranges, the other values by the encoder), so no row is dropped;
2. target: a final grade ``G3 >= 10`` (a pass on the 0..20 scale) is favourable (1); the period
   grades ``G1`` and ``G2`` are dropped (they are earlier marks of the same course and all but
   give the final grade away), and so is ``G3`` itself;
3. natural shift (geospatial): the base data are the students of school GP only, 423 rows, 391
   (92.4 %) pass; the future split is the students of both schools (GP + MS, all 649 rows in file
   order), 549 (84.6 %) pass. ``school`` defines the shift and is dropped from the features;
4. the ordinal codes (``Medu``, ``Fedu`` 0..4; ``traveltime``, ``studytime`` 1..4; ``failures``
   0..3; ``famrel``, ``freetime``, ``goout``, ``Dalc``, ``Walc``, ``health`` 1..5), ``age`` and
   ``absences`` are integers, min-max scaled with training statistics (future rows outside the
   training range are clipped into it);
5. the yes/no attributes (no 0, yes 1) and the two-valued ``sex`` (F 0, M 1), ``address`` (R 0,
   U 1), ``famsize`` (GT3 0, LE3 1) and ``Pstatus`` (A 0, T 1) are binary; the nominal ``Mjob``,
   ``Fjob``, ``reason`` and ``guardian`` are one-hot.

Model space: 13 integer, 12 binary and 17 one-hot columns, 42 in all.

Actionability:

* immutable, as the student's background or past: ``sex``, ``address``, ``famsize``, ``Pstatus``,
  ``Medu``, ``Fedu``, ``Mjob``, ``Fjob``, ``guardian`` (family background), ``reason`` (why this
  school was chosen), ``traveltime`` (set by home and school), ``failures`` (past failed classes)
  and ``nursery`` (attended nursery school);
* ``age`` may only increase;
* actionable either way: ``studytime``, ``absences``, ``schoolsup``, ``famsup``, ``paid``,
  ``activities``, ``higher``, ``internet``, ``romantic``, ``famrel``, ``freetime``, ``goout``,
  ``Dalc``, ``Walc`` and ``health`` (``famrel`` and ``health`` are states the student can work on
  rather than direct actions).
"""

from __future__ import annotations

import io

import pandas as pd

from ..api import DataError
from ..registry import register
from ._encoding import Column
from ._files import DataFile, read
from ._tabular import DatasetInfo, Frame, TabularDataset

STUDENT_POR = DataFile(
    name="student-por.csv",
    sha256="a7594a11d7771c0efe1a740824e0e833da9c4cad07c39a9766a874575563fb3f",
    url="https://archive.ics.uci.edu/static/public/320/student+performance.zip",
    members=("student.zip", "student-por.csv"),
)
BASE_SCHOOL = "GP"
PASS_GRADE = 10

# (name, lowest code, highest code, immutable, direction): codes from the codebook (student.txt).
INTEGER = (
    ("age", 15, 22, False, 1),
    ("Medu", 0, 4, True, 0),
    ("Fedu", 0, 4, True, 0),
    ("traveltime", 1, 4, True, 0),
    ("studytime", 1, 4, False, 0),
    ("failures", 0, 3, True, 0),
    ("famrel", 1, 5, False, 0),
    ("freetime", 1, 5, False, 0),
    ("goout", 1, 5, False, 0),
    ("Dalc", 1, 5, False, 0),
    ("Walc", 1, 5, False, 0),
    ("health", 1, 5, False, 0),
    ("absences", 0, 93, False, 0),
)
YES_NO = ("no", "yes")
BINARY = {
    "sex": ("F", "M"),
    "address": ("R", "U"),
    "famsize": ("GT3", "LE3"),
    "Pstatus": ("A", "T"),
    "schoolsup": YES_NO,
    "famsup": YES_NO,
    "paid": YES_NO,
    "activities": YES_NO,
    "nursery": YES_NO,
    "higher": YES_NO,
    "internet": YES_NO,
    "romantic": YES_NO,
}
JOBS = ("at_home", "health", "other", "services", "teacher")
CATEGORIES = {
    "Mjob": JOBS,
    "Fjob": JOBS,
    "reason": ("course", "home", "other", "reputation"),
    "guardian": ("father", "mother", "other"),
}
IMMUTABLE = frozenset(
    {"sex", "address", "famsize", "Pstatus", "nursery", "Mjob", "Fjob", "reason", "guardian"}
)


def _parse(data: bytes) -> pd.DataFrame:
    """All 649 students in file order, integer codes checked against the codebook."""
    frame = pd.read_csv(io.BytesIO(data), sep=";")
    names = [name for name, *_ in INTEGER]
    low = pd.Series({name: low for name, low, *_ in INTEGER})
    high = pd.Series({name: high for name, _, high, *_ in INTEGER})
    outside = ((frame[names] < low) | (frame[names] > high)).any()
    if outside.any():
        bad = list(outside[outside].index)
        raise DataError(f"{STUDENT_POR.name}: codes outside the codebook's range in {bad}")
    return frame


@register("dataset", "student")
class Student(TabularDataset):
    """UCI Student Performance, Portuguese: school GP (423 rows) -> GP + MS (649), G3 >= 10."""

    info = DatasetInfo(
        source="UCI Machine Learning Repository #320, student-por.csv (in student.zip)",
        licence="CC BY 4.0",
        citation="Cortez, P. and Silva, A. (2008). Using data mining to predict secondary school "
        "student performance. In Proc. 5th FUture BUsiness TEChnology Conference (FUBUTEC 2008), "
        "pp. 5-12. https://doi.org/10.24432/C5TG7T",
        rows=423,
        favourable=391,
        future_rows=649,
        future_favourable=549,
        future="geospatial: GP -> GP + MS",
    )
    files = (STUDENT_POR,)

    def columns(self) -> list[Column]:
        """Ordinal codes, age and absences as integers; two-valued binary; nominal one-hot."""
        integer = [
            Column(name, "integer", immutable=fixed, direction=direction)
            for name, _, _, fixed, direction in INTEGER
        ]
        binary = [
            Column(name, "binary", immutable=name in IMMUTABLE, categories=labels)
            for name, labels in BINARY.items()
        ]
        categorical = [
            Column(name, "categorical", immutable=name in IMMUTABLE, categories=labels)
            for name, labels in CATEGORIES.items()
        ]
        return integer + binary + categorical

    def _read(self, base_only: bool) -> Frame:
        frame = _parse(read(STUDENT_POR))
        if base_only:
            frame = frame[frame["school"] == BASE_SCHOOL].reset_index(drop=True)
        target = (frame["G3"] >= PASS_GRADE).astype(int).to_numpy()
        keep = [c.name for c in self.columns()]
        return frame[keep], target

    def read_frame(self) -> Frame:
        """Students of school GP, a pass (``G3 >= 10``) as class 1."""
        return self._read(base_only=True)

    def read_future(self) -> Frame:
        """Students of both schools (GP + MS), in the same columns."""
        return self._read(base_only=False)
