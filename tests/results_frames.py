"""Hand-made results frames for report tests: known values, so expected numbers are computable."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from recourse_bench.store import to_frame

STATIC_METRICS = ("coverage", "validity", "cost-l1")
UPDATE_METRICS = ("invalidation-rate", "validity-after-update")


def row(
    dataset: str,
    model: str,
    method: str,
    seed: int,
    metric: str,
    value: float,
    *,
    shift: str | None = None,
    severity: float | None = None,
    draw: int | None = None,
    status: str = "ok",
    reason: str = "",
    n: int = 50,
) -> dict[str, Any]:
    """One results row; labels equal names (a swept shift's label carries its severity)."""
    shift_label = None
    if shift is not None:
        shift_label = shift if severity is None else f"{shift}(severity={severity})"
    return {
        "dataset": dataset,
        "dataset_label": dataset,
        "model": model,
        "model_label": model,
        "method": method,
        "method_label": method,
        "shift": shift,
        "shift_label": shift_label,
        "severity": np.nan if severity is None else float(severity),
        "seed": seed,
        "draw": draw,
        "metric": metric,
        "value": value,
        "n": n,
        "status": status,
        "reason": reason,
        "dataset_params": "{}",
        "model_params": "{}",
        "method_params": "{}",
        "shift_params": "{}" if severity is None else f'{{"severity": {severity}}}',
    }


def make_results(
    values: Mapping[tuple[str, str, str], float],
    *,
    methods: Iterable[str] = ("wachter", "roar", "genre"),
    datasets: Iterable[str] = ("german", "adult"),
    seeds: int = 3,
    draws: int = 4,
    severities: Iterable[float | None] = (None,),
    noise: float = 0.02,
    random_state: int = 0,
) -> pd.DataFrame:
    """A complete results frame for dataset x mlp x method x retrain-seed shift x seeds.

    ``values[(dataset, method, metric)]`` is the centre of each metric (default 0.5); every
    seed/draw gets uniform noise of half-width ``noise`` around it (update metrics grow by
    ``severity`` when a sweep is given), so tests can recompute the aggregates from the frame.
    """
    rng = np.random.default_rng(random_state)
    rows = []
    for dataset in datasets:
        for method in methods:
            for seed in range(seeds):
                for metric in STATIC_METRICS:
                    value = values.get((dataset, method, metric), 0.5) + noise * rng.uniform(-1, 1)
                    rows.append(row(dataset, "mlp", method, seed, metric, value))
                for severity in severities:
                    for d in range(draws):
                        for metric in UPDATE_METRICS:
                            centre = values.get((dataset, method, metric), 0.5)
                            centre += 0.0 if severity is None else float(severity)
                            value = centre + noise * rng.uniform(-1, 1)
                            rows.append(
                                row(dataset, "mlp", method, seed, metric, value,
                                    shift="retrain-seed", severity=severity, draw=d)
                            )  # fmt: skip
    return to_frame(rows)
