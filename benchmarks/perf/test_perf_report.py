"""Timing of report writing: every table, figure (PDF and PNG) and test of a run's report.

Run with ``python -m pytest benchmarks/perf/test_perf_report.py``. The small run is the test
suite's tiny matrix grown to two datasets and two methods (56 result rows; target 2 s); the
quick run is ``benchmarks/quick.yaml`` (about 7,000 rows). Each run is computed once, outside
the timing; only :func:`write_report` is timed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from recourse_bench import load_config, run_benchmark
from recourse_bench.reports.data import ReportData
from recourse_bench.reports.report import write_report

CONFIGS = Path(__file__).resolve().parents[1]
SMALL = {
    "name": "small",
    "seeds": 2,
    "n_factuals": 20,
    "datasets": [{"name": "synthetic-gaussians", "params": {"n_samples": 300}}, "german"],
    "models": [{"name": "logreg", "params": {"epochs": 100}}],
    "methods": [{"name": "wachter", "params": {"n_rounds": 6, "steps": 50}}, "nearest-neighbour"],
    "shifts": [{"name": "retrain-seed", "params": {"n_models": 3}}],
}


@pytest.mark.parametrize(
    ("config", "target"),
    [(SMALL, 2.0), (CONFIGS / "quick.yaml", None)],
    ids=["small", "quick"],
)
def test_write_report(benchmark, tmp_path, config, target):
    result = run_benchmark(load_config(config), tmp_path / "run", n_jobs=2, progress=False)
    timings = result.metadata["recourse_timings"]
    rounds = iter(range(100))

    def write() -> object:  # the whole report: the aggregation, every table, figure and test
        data = ReportData.build(result.results, timings=timings)
        return write_report(data, tmp_path / f"r{next(rounds)}")

    index = benchmark.pedantic(
        write,
        rounds=3,
        iterations=1,
        warmup_rounds=1,
    )
    benchmark.extra_info["rows"] = len(result.results)
    benchmark.extra_info["target_seconds"] = target
    assert index.is_file()
