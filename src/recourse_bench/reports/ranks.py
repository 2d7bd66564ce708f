"""Rankings across cells: average ranks, the Friedman test, Nemenyi's post-hoc test, CD diagrams.

For one metric, every cell (dataset x model, and x shift for a metric measured per shift) ranks
the methods by their mean over seeds: rank 1 is the best value (the metric's direction), tied
methods share the mean of their ranks. Following Demšar (2006, "Statistical comparisons of
classifiers over multiple data sets", JMLR 7), the methods are compared by

* their **average rank** over the cells;
* the **Friedman test** of the hypothesis that every method has the same expected rank
  (``scipy.stats.friedmanchisquare``, with its correction for ties; it needs three methods);
* **Nemenyi's post-hoc test** of every pair, which controls the family-wise error over all
  pairs by itself (no further correction): two methods differ when their average ranks differ
  by at least the critical difference ``CD = q_alpha sqrt(k (k + 1) / (6 N))``, ``q_alpha``
  the studentized range's quantile for ``k`` means over sqrt(2) (``scipy.stats
  .studentized_range``); the p-value of a pair is the studentized range's survival function
  at ``sqrt(2) |R_i - R_j| / sqrt(k (k + 1) / (6 N))``;
* the **critical-difference diagram**: the methods on the rank axis, those not significantly
  different joined by a bar.

The test treats the cells as independent blocks, as Demšar's data sets are; the shifts of one
dataset and model share its data and base model, so with shifts among the cells read the
p-values and the CD as a guide rather than exact error rates (the report says so).

These tests need every method in every cell (the cells are the test's blocks). A cell where a
method has no value (skipped, failed, not run) is left out of the test, and where that would
leave fewer than half of the cells, the methods missing from the most cells are left out of
the ranking first, one at a time. Nothing is dropped silently: :class:`Ranking` keeps the cells
and methods left out with the reason, and the report prints them beside the ranks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from .data import ReportData

ALPHA = 0.05
CELL_KEYS = ["dataset_label", "model_label", "shift_label"]
MIN_METHODS = 2


@dataclass
class Ranking:
    """The ranks of the methods on one metric and the tests on them.

    Attributes
    ----------
    metric : str
        The metric ranked.
    values : pandas.DataFrame
        Mean over seeds per cell (rows: dataset, model, shift; "" for a static metric) and
        method (columns), the complete cells and kept methods only.
    ranks : pandas.DataFrame
        The rank of each method in each of those cells (1 is best).
    mean_ranks : pandas.Series
        Average rank per method, best first.
    statistic, p_value : float
        The Friedman test (NaN with fewer than three methods or two cells).
    critical_difference : float
        Nemenyi's CD at :data:`ALPHA` (NaN where the ranking has fewer than two methods).
    pairwise : pandas.DataFrame
        Nemenyi p-values, methods x methods.
    cells_total : int
        Cells with a value of at least one method.
    incomplete_cells : list of str
        Cells left out, each with the methods it lacks.
    methods_left_out : list of str
        Methods left out of the ranking, each with the cells it ran in.
    """

    metric: str
    values: pd.DataFrame
    ranks: pd.DataFrame
    mean_ranks: pd.Series
    statistic: float
    p_value: float
    critical_difference: float
    pairwise: pd.DataFrame
    cells_total: int
    incomplete_cells: list[str] = field(default_factory=list)
    methods_left_out: list[str] = field(default_factory=list)

    @property
    def n_cells(self) -> int:
        """Cells the ranks and tests are computed over."""
        return len(self.ranks)

    @property
    def n_methods(self) -> int:
        """Methods ranked."""
        return self.ranks.shape[1]

    def sentence(self) -> str:
        """What was ranked and tested, in one sentence (for the index and the page)."""
        test = (
            f"Friedman chi2 = {self.statistic:.3g}, p = {self.p_value:.2g}"
            if math.isfinite(self.statistic)
            else "no Friedman test (it needs three methods and two cells)"
        )
        verdict = ""
        if math.isfinite(self.p_value) and self.p_value >= ALPHA:
            verdict = " The Friedman test finds no difference, so no pair is called different."
        return (
            f"{self.n_methods} methods over {self.n_cells} of {self.cells_total} cell(s); "
            f"{test}; CD = {self.critical_difference:.3g}.{verdict}"
        )

    @property
    def differences_shown(self) -> bool:
        """Whether pairs may be called different: the Friedman test rejected at :data:`ALPHA`."""
        return math.isfinite(self.p_value) and self.p_value < ALPHA

    def cliques(self) -> list[list[str]]:
        """Maximal runs of methods (by average rank) whose ranks differ by less than the CD."""
        if not math.isfinite(self.critical_difference):
            return []
        names = list(self.mean_ranks.index)
        ranks = self.mean_ranks.to_numpy()
        runs = []
        for i in range(len(names)):
            j = i
            while j + 1 < len(names) and ranks[j + 1] - ranks[i] < self.critical_difference:
                j += 1
            if j > i and not any(a <= i and j <= b for a, b in runs):
                runs.append((i, j))
        return [names[a : b + 1] for a, b in runs]


def value_matrix(data: ReportData, metric: str) -> pd.DataFrame:
    """Mean over seeds per cell (rows) and method (columns); NaN where a method has none."""
    summary = data.summary[data.summary["metric"] == metric].copy()
    summary["shift_label"] = summary["shift_label"].fillna("").astype(str)
    return summary.pivot_table(
        index=CELL_KEYS, columns="method_label", values="mean", aggfunc="first", dropna=False
    ).dropna(how="all")


def rank_rows(values: pd.DataFrame, higher_is_better: bool) -> pd.DataFrame:
    """Per row, the rank of each column (1 is best; ties share their mean rank)."""
    signed = -values.to_numpy(dtype=float) if higher_is_better else values.to_numpy(dtype=float)
    ranks = stats.rankdata(signed, axis=1, method="average")
    return pd.DataFrame(ranks, index=values.index, columns=values.columns)


def critical_difference(k: int, n: int, alpha: float = ALPHA) -> float:
    """Nemenyi's critical difference of average ranks for ``k`` methods over ``n`` cells."""
    if k < 2 or n < 1:
        return math.nan
    q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6.0 * n)))


def nemenyi(mean_ranks: pd.Series, n: int) -> pd.DataFrame:
    """Nemenyi p-values of every pair of methods (``mean_ranks`` over ``n`` cells)."""
    k = len(mean_ranks)
    names = list(mean_ranks.index)
    if k < 2 or n < 1:
        return pd.DataFrame(np.nan, index=names, columns=names)
    scale = math.sqrt(k * (k + 1) / (6.0 * n))
    ranks = mean_ranks.to_numpy()
    q = math.sqrt(2) * np.abs(ranks[:, None] - ranks[None, :]) / scale
    p = stats.studentized_range.sf(q, k, np.inf)
    np.fill_diagonal(p, 1.0)
    return pd.DataFrame(np.clip(p, 0.0, 1.0), index=names, columns=names)


def friedman(ranked: pd.DataFrame) -> tuple[float, float]:
    """Friedman's statistic and p-value over the rows of ``ranked`` (values, one column each)."""
    if ranked.shape[1] < 3 or ranked.shape[0] < 2:
        return math.nan, math.nan
    columns = [ranked[c].to_numpy(dtype=float) for c in ranked.columns]
    if all(np.array_equal(columns[0], c) for c in columns[1:]):
        return 0.0, 1.0  # every method equal in every cell: nothing to tell apart
    result = stats.friedmanchisquare(*columns)
    return float(result.statistic), float(result.pvalue)


def _describe(cell: tuple[str, str, str]) -> str:
    return " / ".join(part for part in cell if part)


def _complete(values: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The methods kept (and the cells where one of them ran), the methods left out.

    Methods are left out, the one in the fewest cells first, while fewer than half of the
    cells where a kept method ran have every kept method (see the module docstring).
    """
    kept, left_out = values, []
    while kept.shape[1] > MIN_METHODS and kept.notna().all(axis=1).sum() * 2 < len(kept):
        ran = kept.notna().sum()
        worst = min(ran.index, key=lambda m: (ran[m], str(m)))
        left_out.append(f"{worst} (ran in {ran[worst]} of {len(values)} cells)")
        kept = kept.drop(columns=worst).dropna(how="all")
    return kept, left_out


def rank_methods(data: ReportData, metric: str, alpha: float = ALPHA) -> Ranking | None:
    """The :class:`Ranking` of ``metric``, or None without two methods, a direction or a cell."""
    higher = data.higher_is_better(metric)
    values = value_matrix(data, metric)
    if higher is None or values.shape[1] < MIN_METHODS or values.empty:
        return None
    kept, methods_left_out = _complete(values)
    complete = kept.notna().all(axis=1)
    incomplete = [
        f"{_describe(cell)} (no {', '.join(map(str, kept.columns[kept.loc[cell].isna()]))})"
        for cell in kept.index[~complete]
    ] + [
        f"{_describe(cell)} (only methods left out ran)"
        for cell in values.index.difference(kept.index, sort=False)
    ]
    kept = kept[complete]
    ranks = rank_rows(kept, bool(higher))
    mean_ranks = ranks.mean().sort_values(kind="mergesort")
    statistic, p_value = friedman(ranks)
    return Ranking(
        metric=metric,
        values=kept,
        ranks=ranks,
        mean_ranks=mean_ranks,
        statistic=statistic,
        p_value=p_value,
        critical_difference=critical_difference(len(mean_ranks), len(ranks), alpha),
        pairwise=nemenyi(mean_ranks, len(ranks)),
        cells_total=len(values),
        incomplete_cells=incomplete,
        methods_left_out=methods_left_out,
    )


def rankings(data: ReportData, alpha: float = ALPHA) -> dict[str, Ranking]:
    """The ranking of every metric that can be ranked, in the report's metric order."""
    found = {m: rank_methods(data, m, alpha) for m in data.ordered_metrics()}
    return {m: r for m, r in found.items() if r is not None and r.n_cells > 0}


def ranks_table(found: dict[str, Ranking]) -> pd.DataFrame:
    """``stats/ranks.csv``: one row per metric and method, with the metric's tests."""
    columns = [
        *("metric", "method", "mean_rank", "n_cells", "n_methods", "friedman_statistic"),
        *("friedman_p", "critical_difference", "cells_total", "cells_left_out"),
        "methods_left_out",
    ]
    rows = [
        (
            metric,
            method,
            float(rank),
            ranking.n_cells,
            ranking.n_methods,
            ranking.statistic,
            ranking.p_value,
            ranking.critical_difference,
            ranking.cells_total,
            len(ranking.incomplete_cells),
            "; ".join(ranking.methods_left_out),
        )
        for metric, ranking in found.items()
        for method, rank in ranking.mean_ranks.items()
    ]
    return pd.DataFrame(rows, columns=columns)


def pairwise_table(found: dict[str, Ranking], alpha: float = ALPHA) -> pd.DataFrame:
    """``stats/nemenyi.csv``: every pair of ranked methods per metric, with its p-value.

    ``better`` names the better-ranked method of a pair whose p-value is below ``alpha``, and
    only where the Friedman test rejected (Demšar's procedure: no post-hoc claim without it;
    with two methods there is no Friedman test here, and the paired Wilcoxon tests apply).
    """
    rows = []
    for metric, ranking in found.items():
        names = list(ranking.mean_ranks.index)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                p = float(ranking.pairwise.loc[a, b])
                better = a if p < alpha and ranking.differences_shown else ""
                rows.append(
                    (
                        metric,
                        a,
                        b,
                        float(ranking.mean_ranks[a]),
                        float(ranking.mean_ranks[b]),
                        p,
                        better,
                    )
                )
    columns = ["metric", "method_a", "method_b", "rank_a", "rank_b", "p_nemenyi", "better"]
    return pd.DataFrame(rows, columns=columns)
