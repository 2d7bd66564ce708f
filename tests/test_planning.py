"""Planning before running: dry runs that check inputs and estimate, a progress bar that holds."""

import importlib.util
import json

import pytest

from recourse_bench.config import load_config
from recourse_bench.harness import estimates
from recourse_bench.harness.estimates import Progress, UnitTimes, fill_unknown, unit_key
from recourse_bench.harness.plan import base_tasks, recourse_tasks, update_tasks

from .conftest import TINY


def test_dry_run_refuses_a_missing_data_file_with_the_fetch_hint(
    tmp_path, monkeypatch, write_config, run_cli
):
    monkeypatch.setenv("RECOURSE_BENCH_DATA", str(tmp_path / "empty-data"))
    monkeypatch.setenv("RECOURSE_BENCH_CACHE", str(tmp_path / "empty-cache"))
    (tmp_path / "empty-data").mkdir()
    config = write_config(dict(TINY, datasets=["compas"]))
    code, out, err = run_cli("run", config, "--out", tmp_path / "run", "--dry-run")
    assert code == 2 and out == ""
    line = err.strip()
    assert "\n" not in line and "compas-scores-two-years.csv not found" in line
    assert "recourse-bench data fetch compas" in line
    assert not (tmp_path / "run").exists()


def test_dry_run_checks_the_future_split_only_where_a_shift_reads_it(
    tmp_path, monkeypatch, write_config, run_cli
):
    monkeypatch.setenv("RECOURSE_BENCH_DATA", str(tmp_path))
    monkeypatch.setenv("RECOURSE_BENCH_CACHE", str(tmp_path / "cache"))
    german = dict(TINY, datasets=["german"])  # german.data is embedded
    assert run_cli("run", write_config(german), "--dry-run")[0] == 0
    natural = dict(german, shifts=["natural"])  # needs the corrected file
    code, _, err = run_cli("run", write_config(natural, "n.yaml"), "--dry-run")
    assert code == 2 and "SouthGermanCredit.asc not found" in err


def test_dry_run_refuses_a_backend_that_is_not_installed(monkeypatch, write_config, run_cli):
    found = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else found(name, *a)
    )
    code, _, err = run_cli("run", write_config(TINY), "--backend", "ray", "--dry-run")
    assert code == 2 and 'pip install "recourse-bench[ray]"' in err


def test_dry_run_after_a_run_counts_the_cached_units_and_estimates(tmp_path, write_config, run_cli):
    config = write_config(TINY)
    assert run_cli("run", config, "--out", tmp_path / "run", "-q")[0] == 0
    times = json.loads((tmp_path / ".recourse-bench-cache" / "unit-times.json").read_text())
    assert len(times) == 2 + 2 + 2  # every unit of the first run was measured
    code, out, _ = run_cli("run", config, "--out", tmp_path / "run", "--dry-run")
    assert code == 0
    assert "  base models: 2 (1 dataset(s) x 1 model(s) x 2 seed(s)), 2 cached; about" in out
    assert (
        "recourse units: 2 (1 dataset(s) x 1 model(s) x 1 method(s) x 2 seed(s)), 2 cached" in out
    )
    assert "cannot estimate" not in out and "estimated" in out
    # a new method is not cached; a unit of a measured kind (another seed) is estimated
    code, out, _ = run_cli(
        "run", config, "--out", tmp_path / "run", "--set", "seeds=3", "--dry-run"
    )
    assert (
        "recourse units: 3 (1 dataset(s) x 1 model(s) x 1 method(s) x 3 seed(s)), 2 cached" in out
    )
    assert "cannot estimate" not in out
    code, out, _ = run_cli(
        "run", config, "--out", tmp_path / "run", "--only", "method=roar", "--dry-run"
    )
    assert "recourse units: 2 (" in out and "0 cached; cannot estimate 2 unit(s)" in out


def test_unit_times_estimate_a_unit_by_itself_then_by_its_kind(tmp_path):
    config = load_config(dict(TINY, seeds=3))
    tasks = recourse_tasks(config)
    times = UnitTimes(tmp_path)
    assert times.estimate(tasks[0]) is None
    times.record([(tasks[0], 4.0), (tasks[1], 8.0)])
    again = UnitTimes(tmp_path)  # read back from the file
    assert again.estimate(tasks[0]) == 4.0
    assert again.estimate(tasks[2]) == 6.0  # same kind, another seed: the median
    other = recourse_tasks(load_config(dict(TINY, methods=["roar"])))[0]
    assert again.estimate(other) is None
    (tmp_path / estimates.TIMES_FILE).write_text("{broken", encoding="utf-8")
    assert UnitTimes(tmp_path).estimate(tasks[0]) is None  # a damaged file is ignored


def test_the_time_left_weighs_units_by_their_estimates():
    config = load_config(TINY)
    tasks = [*base_tasks(config), *update_tasks(config), *recourse_tasks(config)]
    expected = {unit_key(t): 1.0 for t in tasks[:4]} | {unit_key(t): 20.0 for t in tasks[4:]}
    now = [0.0]
    with Progress(expected, "tiny", disable=True, clock=lambda: now[0]) as bar:
        assert bar.time_left() is None  # nothing done yet
        now[0] = 2.0
        for task in tasks[:4]:  # the four quick units took 2 s
            bar.done(task)
        # 40 estimated seconds are left for 4 done in 2 s: 20 s, not the 2 s that counting
        # units would promise
        assert bar.time_left() == pytest.approx(2.0 * 40 / 4)
        bar.drop(tasks[4:5])
        assert bar.bar.total == 5


def test_units_nobody_measured_count_the_mean_of_their_stage():
    filled = fill_unknown({"recourse|a": 2.0, "recourse|b": None, "base|c": None})
    assert filled == {
        "recourse|a": 2.0,
        "recourse|b": 2.0,
        "base|c": estimates.DEFAULT_SECONDS["base"],
    }
