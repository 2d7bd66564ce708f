"""Reports are built once: one aggregation for every renderer, metric metadata from the run."""

import json
import subprocess
import sys

import pandas as pd

from recourse_bench.reports import data as report_data
from recourse_bench.reports.data import ReportData
from recourse_bench.reports.figures import FIGURES
from recourse_bench.reports.report import write_report

from .results_frames import make_results

PLUGIN_METRIC = '''
import numpy as np
from recourse_bench.api import MetricValue
from recourse_bench.metrics import metric

@metric("closeness", stage="static", higher_is_better=True, bounds=(0.0, 10.0))
def closeness(ctx):
    """One over one plus the mean L1 cost: higher is closer."""
    found = ctx.found
    if not found.any():
        return MetricValue(float("nan"), 0)
    cost = np.abs(ctx.recourses[found] - ctx.factuals[found]).sum(axis=1).mean()
    return MetricValue(float(1.0 / (1.0 + cost)), int(found.sum()))
'''


def test_a_report_aggregates_the_results_once(tmp_path, monkeypatch):
    results = make_results({}, seeds=3, draws=2, severities=(0.1, 0.5))
    calls = []
    original = report_data.per_seed_values
    monkeypatch.setattr(
        report_data, "per_seed_values", lambda frame: calls.append(len(frame)) or original(frame)
    )
    data = ReportData.build(results, title="once")
    write_report(data, tmp_path)
    assert calls == [len(results)]  # every table, figure and the index used that one aggregation


def test_the_index_captions_every_figure_from_the_registry(tmp_path):
    results = make_results({}, seeds=2, draws=2, severities=(0.1, 0.5))
    index = write_report(ReportData.build(results), tmp_path).read_text(encoding="utf-8")
    for name, spec in FIGURES.items():
        assert f"### {name}\n\n{spec.caption}" in index


def test_a_plugin_metrics_direction_travels_with_the_run(tmp_path, tiny_config, write_config):
    plugin = tmp_path / "closeness.py"
    plugin.write_text(PLUGIN_METRIC, encoding="utf-8")
    tiny_config["methods"].append("nearest-neighbour")
    tiny_config["metrics"] = ["validity", "closeness"]
    run = tmp_path / "run"
    command = [sys.executable, "-m", "recourse_bench.cli"]
    done = subprocess.run(
        [*command, "run", str(write_config(tiny_config)), "--out", str(run), "-q",
         "--plugin", str(plugin), "--no-report"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    recorded = json.loads((run / "run.json").read_text(encoding="utf-8"))["metrics"]
    assert recorded["closeness"] == {"stage": "static", "higher_is_better": True, "bounds": [0, 10]}
    # a later report, in a process that never loads the plugin, still knows which is best
    done = subprocess.run(
        [*command, "report", str(run), "--out", str(tmp_path / "rep"), "--format", "md"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    table = (tmp_path / "rep" / "tables" / "closeness.md").read_text(encoding="utf-8")
    assert table.startswith("closeness (higher is better)")
    frame = pd.read_parquet(run / "results.parquet")
    means = frame[frame["metric"] == "closeness"].groupby("method")["value"].mean()
    best = means.idxmax()
    best_row = next(line for line in table.splitlines() if line.startswith(f"| {best}"))
    assert "**" in best_row
