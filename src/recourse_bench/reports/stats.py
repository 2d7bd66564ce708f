"""Paired statistics between methods: Wilcoxon signed-rank tests with Holm's correction.

Two methods are compared on the units they share: the same factuals and models, that is the same
(dataset, model, seed) for a static metric and the same (dataset, model, shift, seed, updated
model) for an update metric (a shift metric such as worst-case validity has one unit per
(dataset, model, shift, seed)). Within each (dataset, model, shift) block and for each metric,
every pair of methods gets a two-sided Wilcoxon signed-rank test on its paired differences; the
p-values of all the tests returned are then corrected together with Holm's step-down method.
Only rows with status ``ok`` and a defined value count.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .data import registered_info

BLOCK = ["dataset_label", "model_label", "shift_label", "metric"]
UNIT = ["seed", "draw"]
COLUMNS = [
    "dataset",
    "model",
    "shift",
    "metric",
    "method_a",
    "method_b",
    "n_pairs",
    "median_diff",
    "statistic",
    "p_value",
    "p_holm",
    "better",
    "note",
]


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values; NaNs stay NaN and do not count as tests.

    With the ``m`` defined p-values sorted increasingly, ``p_(1) <= ... <= p_(m)``, the adjusted
    value of the ``i``-th is ``max_{j <= i} min(1, (m - j + 1) p_(j))``: the smallest
    family-wise level at which Holm's procedure rejects that hypothesis.

    Parameters
    ----------
    pvalues : sequence of float
        Raw p-values, in any order (NaN for tests that could not be run).

    Returns
    -------
    numpy.ndarray
        The adjusted p-values, in the input order.
    """
    p = np.asarray(pvalues, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    defined = np.flatnonzero(~np.isnan(p))
    m = defined.size
    if m == 0:
        return adjusted
    order = defined[np.argsort(p[defined], kind="mergesort")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


def wilcoxon_pair(
    a: np.ndarray, b: np.ndarray, *, min_pairs: int = 6
) -> tuple[float, float, float, str]:
    """Two-sided Wilcoxon signed-rank test of paired samples ``a`` and ``b``.

    Parameters
    ----------
    a, b : numpy.ndarray
        Paired values (same length, no NaN).
    min_pairs : int
        Fewer pairs, or fewer non-zero differences (zeros are dropped by the test), give no test.

    Returns
    -------
    tuple
        ``(median of a - b, statistic, p-value, note)``; the statistic and p-value are NaN, with a
        note saying why, when the test cannot be run.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    diff = a - b
    median = float(np.median(diff)) if diff.size else math.nan
    nonzero = int(np.count_nonzero(diff))
    if diff.size < min_pairs:
        return median, math.nan, math.nan, f"only {diff.size} pair(s) (< {min_pairs})"
    if nonzero == 0:
        return median, math.nan, math.nan, "all differences are zero"
    if nonzero < min_pairs:
        return median, math.nan, math.nan, f"only {nonzero} non-zero difference(s)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = stats.wilcoxon(a, b, alternative="two-sided")
    except ValueError as exc:
        return median, math.nan, math.nan, f"no test: {exc}"
    return median, float(result.statistic), float(result.pvalue), ""


def _better(method_a: str, method_b: str, diff: np.ndarray, higher_is_better: bool | None) -> str:
    """The better method, from the sign of the median (or, when 0, mean) difference a - b."""
    if higher_is_better is None or diff.size == 0:
        return ""
    centre = float(np.median(diff)) or float(np.mean(diff))
    if centre == 0:
        return ""
    return method_a if (centre > 0) == higher_is_better else method_b


def paired_tests(
    results: pd.DataFrame,
    *,
    metrics: Sequence[str] | None = None,
    alpha: float = 0.05,
    min_pairs: int = 6,
    directions: Callable[[str], bool | None] | None = None,
) -> pd.DataFrame:
    """Wilcoxon signed-rank tests between every pair of methods, Holm-corrected.

    Parameters
    ----------
    results : pandas.DataFrame
        A results frame (see :mod:`recourse_bench.store`).
    metrics : sequence of str, optional
        The metrics to test (default: all present). The Holm correction runs over every test
        returned, so this choice sets the family.
    alpha : float
        Family-wise level: ``better`` names the better method when ``p_holm < alpha``.
    min_pairs : int
        Blocks with fewer pairs (or non-zero differences) get ``p_value`` NaN and a note.
    directions : callable, optional
        ``metric -> higher_is_better`` (True, False or None when unknown); by default the
        registry's (a report passes the run metadata's through ``ReportData``).

    Returns
    -------
    pandas.DataFrame
        One row per (dataset, model, shift, metric, pair of methods), with columns ``dataset``,
        ``model``, ``shift`` (null for static metrics), ``metric``, ``method_a``, ``method_b``,
        ``n_pairs`` (units both methods have), ``median_diff`` (median of a - b), ``statistic``,
        ``p_value``, ``p_holm``, ``better`` (a method label, or "") and ``note``.
    """
    ok = results[(results["status"] == "ok") & results["metric"].notna() & results["value"].notna()]
    if metrics is not None:
        ok = ok[ok["metric"].isin(list(metrics))]
    ok = ok.assign(draw=ok["draw"].astype("Int64").fillna(-1))  # static and shift metrics: no draw
    direction_of = directions or (lambda metric: registered_info(metric).higher_is_better)
    higher = {m: direction_of(str(m)) for m in ok["metric"].unique()}
    records = []
    for key, block in ok.groupby(BLOCK, dropna=False, sort=True):
        dataset, model, shift, metric = key
        wide = block.pivot_table(
            index=UNIT, columns="method_label", values="value", aggfunc="mean", dropna=False
        )
        methods = sorted(str(m) for m in block["method_label"].unique())
        for method_a, method_b in itertools.combinations(methods, 2):
            both = wide[[method_a, method_b]].dropna()
            a = both[method_a].to_numpy(dtype=float)
            b = both[method_b].to_numpy(dtype=float)
            median, statistic, p_value, note = wilcoxon_pair(a, b, min_pairs=min_pairs)
            records.append(
                {
                    "dataset": dataset,
                    "model": model,
                    "shift": None if pd.isna(shift) else shift,
                    "metric": metric,
                    "method_a": method_a,
                    "method_b": method_b,
                    "n_pairs": len(both),
                    "median_diff": median,
                    "statistic": statistic,
                    "p_value": p_value,
                    "better": _better(method_a, method_b, a - b, higher[metric]),
                    "note": note,
                }
            )
    table = pd.DataFrame(records, columns=[c for c in COLUMNS if c != "p_holm"])
    table.insert(COLUMNS.index("p_holm"), "p_holm", holm(table["p_value"].to_numpy(dtype=float)))
    significant = table["p_holm"] < alpha
    table["better"] = table["better"].where(significant, "")
    unknown = table["metric"].map(lambda m: higher.get(m) is None)
    table.loc[unknown & significant, "note"] = "direction unknown (metric not registered)"
    return table.astype({"n_pairs": int})


__all__ = ["holm", "paired_tests", "wilcoxon_pair"]
