"""HELOC: FICO's home equity line of credit data (Explainable ML Challenge 2018), not embedded.

Source: ``heloc_dataset_v1.csv`` (10,459 rows x 24 columns) from the FICO Explainable Machine
Learning Challenge: anonymised credit-bureau features of applicants for a home equity line of
credit, and ``RiskPerformance`` (``Bad``: 90 days past due or worse at least once within 24 months
of opening the account). FICO's terms forbid redistribution and the file has no public address:
the user downloads it from FICO after registering and puts it in a data folder
(``RECOURSE_BENCH_DATA``); it is checked against the pinned sha256.

The features carry three special values: -9 no bureau record or no investigation, -8 no usable
or valid trades or inquiries, -7 condition not met (e.g. no delinquency, no inquiry).

Cleaning and encoding, in order:

1. the 588 rows whose every feature is -9 (no bureau record at all) are dropped, as CARLA does
   (9,871 rows left);
2. the 10 further rows without a bureau score (``ExternalRiskEstimate == -9``) are dropped:
   9,861 rows kept, 4,733 (48.0 %) are ``Good``;
3. target: ``RiskPerformance == 'Good'`` is favourable (1);
4. ``MSinceMostRecentDelq`` and ``MSinceMostRecentInqexcl7days`` are dropped: they are the only
   columns with -7 ("never": 4,658 and 1,853 rows, besides 176 and 476 rows at -8), and no number
   of months stands honestly for "never" without an arbitrary cap. Delinquency history stays in
   ``MaxDelqEver``, ``MaxDelq2PublicRecLast12M``, ``PercentTradesNeverDelq`` and the two
   ``NumTrades*Ever2DerogPubRec`` counts; inquiries in ``NumInqLast6M`` and
   ``NumInqLast6Mexcl7days``;
5. the remaining special value, -8 ("no usable or valid trades") in ``MSinceOldestTradeOpen``,
   ``NetFractionRevolvingBurden``, ``NetFractionInstallBurden``, ``NumRevolvingTradesWBalance``,
   ``NumInstallTradesWBalance``, ``NumBank2NatlTradesWHighUtilization`` and
   ``PercentTradesWBalance`` (from 11 rows in the last to 3,412 in ``NetFractionInstallBurden``),
   is replaced by 0: no usable trade of that kind means no such trade, no balance and no burden.
   This is a fixed rule, the same for every split (imputing a training statistic is not possible
   before the split without leaking the test rows);
6. all 21 kept features are integers, min-max scaled with training statistics (the codes
   ``MaxDelq2PublicRecLast12M`` 0..9 and ``MaxDelqEver`` 2..8 as ordinal integers): 21
   model-space features.

Actionability: ``ExternalRiskEstimate`` (a bureau score computed from the file) is immutable;
``NumTrades60Ever2DerogPubRec`` and ``NumTrades90Ever2DerogPubRec`` count derogatory events ever
recorded and may only increase; every other feature is mutable.
"""

from __future__ import annotations

import io

import pandas as pd

from ..registry import register
from ._encoding import Column
from ._files import DataFile, read
from ._tabular import DatasetInfo, Frame, TabularDataset

HELOC_FILE = DataFile(
    name="heloc_dataset_v1.csv",
    sha256="e5a914f742ad7f8472c5417902ec06b321ebc5de1d68ec13f136d62c87a7fbf3",
    url=None,
    obtain="the FICO Explainable Machine Learning Challenge page "
    "(https://community.fico.com/s/explainable-machine-learning-challenge, free registration, "
    "file heloc_dataset_v1.csv)",
)
TARGET = "RiskPerformance"
DROPPED = ("MSinceMostRecentDelq", "MSinceMostRecentInqexcl7days")
NO_USABLE_TRADES = (
    "MSinceOldestTradeOpen",
    "NetFractionRevolvingBurden",
    "NetFractionInstallBurden",
    "NumRevolvingTradesWBalance",
    "NumInstallTradesWBalance",
    "NumBank2NatlTradesWHighUtilization",
    "PercentTradesWBalance",
)
FEATURES = (
    "ExternalRiskEstimate",
    "MSinceOldestTradeOpen",
    "MSinceMostRecentTradeOpen",
    "AverageMInFile",
    "NumSatisfactoryTrades",
    "NumTrades60Ever2DerogPubRec",
    "NumTrades90Ever2DerogPubRec",
    "PercentTradesNeverDelq",
    "MaxDelq2PublicRecLast12M",
    "MaxDelqEver",
    "NumTotalTrades",
    "NumTradesOpeninLast12M",
    "PercentInstallTrades",
    "NumInqLast6M",
    "NumInqLast6Mexcl7days",
    "NetFractionRevolvingBurden",
    "NetFractionInstallBurden",
    "NumRevolvingTradesWBalance",
    "NumInstallTradesWBalance",
    "NumBank2NatlTradesWHighUtilization",
    "PercentTradesWBalance",
)
IMMUTABLE = ("ExternalRiskEstimate",)
INCREASE_ONLY = ("NumTrades60Ever2DerogPubRec", "NumTrades90Ever2DerogPubRec")


@register("dataset", "heloc")
class Heloc(TabularDataset):
    """FICO HELOC (Explainable ML Challenge 2018): 9,861 applicants, target good risk."""

    info = DatasetInfo(
        source="FICO Explainable Machine Learning Challenge (2018), heloc_dataset_v1.csv",
        licence="FICO terms of use (no redistribution)",
        citation="FICO (2018). Explainable Machine Learning Challenge: Home Equity Line of Credit "
        "(HELOC) dataset. https://community.fico.com/s/explainable-machine-learning-challenge",
        rows=9861,
        favourable=4733,
    )
    files = (HELOC_FILE,)

    def columns(self) -> list[Column]:
        """Every kept feature is an integer; the bureau score is immutable."""
        return [
            Column(
                name,
                "integer",
                immutable=name in IMMUTABLE,
                direction=1 if name in INCREASE_ONLY else 0,
            )
            for name in FEATURES
        ]

    def read_frame(self) -> Frame:
        """Rows with a bureau record and score; -8 read as 0; ``Good`` as class 1."""
        raw = pd.read_csv(io.BytesIO(read(HELOC_FILE)))
        features = raw.drop(columns=TARGET)
        keep = ~(features == -9).all(axis=1) & (raw["ExternalRiskEstimate"] != -9)
        frame = raw[keep].drop(columns=list(DROPPED)).reset_index(drop=True)
        no_usable = list(NO_USABLE_TRADES)
        frame[no_usable] = frame[no_usable].mask(frame[no_usable] == -8, 0)
        target = (frame[TARGET] == "Good").astype(int).to_numpy()
        return frame[list(FEATURES)], target
