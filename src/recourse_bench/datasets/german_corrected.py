"""German credit, corrected: South German Credit (Groemping 2019), in the schema of ``german``.

Source: UCI Machine Learning Repository #522, ``SouthGermanCredit.asc`` inside the dataset's zip
(CC BY 4.0), read from the user's data folder (``RECOURSE_BENCH_DATA``) or downloaded from UCI and
checked against the pinned sha256. Groemping (2019) showed that the code table of the Statlog
German credit data (``german``) is wrong for 8 of its 13 qualitative attributes and published this
corrected version with a correct code table (``codetable.txt``); the rows are those of
``german.data`` in another order, with a few values changed (listed below).

Reading and mapping, in order (one function, :func:`german.read_corrected`, serves this dataset and
the future split of ``german``):

1. the whitespace-separated file with its German header (``laufkont ... kredit``) is read and the
   header checked;
2. the columns are renamed to the names of ``german`` (laufkont = status, laufzeit = duration,
   moral = credit_history, verw = purpose, hoehe = amount, sparkont = savings, beszeit =
   employment_duration, rate = installment_rate, famges = personal_status_sex, buerge =
   other_debtors, wohnzeit = present_residence, verm = property, alter = age, weitkred =
   other_installment_plans, wohn = housing, bishkred = number_credits, beruf = job, pers =
   people_liable, telef = telephone, gastarb = foreign_worker, kredit = credit_risk);
3. each qualitative code becomes the label of its category in ``german.CODES``: the label of the
   corrected code table, which ``german`` gives to the corresponding Hofmann code (the full table,
   Hofmann code -> corrected code -> label, is in the documentation of ``german``);
4. the integer attributes are kept, except ``pers`` (1 = 3 or more people liable, 2 = 0 to 2),
   which takes the values of ``german.data`` (1 = 0 to 2, 2 = 3 or more): pers 1 -> 2, 2 -> 1;
5. target: ``kredit`` 1 (good) is favourable (1), 0 (bad) is 0.

No value is missing and no row is dropped: 1,000 rows, 700 (70.0 %) good. The encoding, and so
the model space, is that of ``german`` (the same ``schema.features``); ``personal_status_sex`` and
``foreign_worker`` are immutable, ``age`` may only increase.

What differs from ``german.data`` (after the mapping, matching each row to the row of the other file
that differs in the fewest values; the matching is unique): 947 rows are identical, 53 differ in one
value (50 rows) or two (3 rows):

- ``other_installment_plans``, 35 rows (bank <-> none 23, stores <-> none 11, stores -> bank 1);
  the count of each category is unchanged;
- ``foreign_worker``, 10 rows (5 each way; still 37 foreign workers);
- ``age``, 6 rows (50 -> 40 twice, 26 -> 36, 27 -> 37, 37 -> 34, 25 -> 24);
- ``amount``, 4 rows (731 -> 713, 932 -> 935, 3913 -> 3919, 4042 -> 4041);
- ``housing``, 1 row (own -> rent: rent 713 -> 714, own 108 -> 107).

No row changed class. As a shift this is small; the large one that reading ``german.doc``'s labels
at face value suggests (e.g. 39.4 % -> 27.4 % without a checking account, as in the ROAR authors'
recoding of ``german.data``) is an artefact of the wrong code table, not a change in the data.
"""

from __future__ import annotations

from ..registry import register
from ._encoding import Column
from ._tabular import DatasetInfo, Frame, TabularDataset
from .german import SOUTH_GERMAN_CREDIT, columns, read_corrected


@register("dataset", "german-corrected")
class GermanCorrected(TabularDataset):
    """South German Credit (Groemping 2019): the corrected German credit data, 1,000 applicants."""

    info = DatasetInfo(
        source="UCI Machine Learning Repository #522, SouthGermanCredit.asc",
        licence="CC BY 4.0",
        citation="Groemping, U. (2019). South German Credit Data: Correcting a Widely Used Data "
        "Set. Report 4/2019, Reports in Mathematics, Physics and Chemistry, Beuth University of "
        "Applied Sciences Berlin. Data: South German Credit, UCI ML Repository, "
        "https://archive.ics.uci.edu/dataset/522/south+german+credit",
        rows=1000,
        favourable=700,
    )
    files = (SOUTH_GERMAN_CREDIT,)

    def columns(self) -> list[Column]:
        """The encoding of ``german``: integers scaled, qualitative attributes one-hot."""
        return columns()

    def read_frame(self) -> Frame:
        """All 1,000 rows in german's raw columns and labels."""
        return read_corrected()
