"""Timing of whole runs: the embedded quick config cold and cached, and roar-shifts (slow).

Run with ``python -m pytest benchmarks/perf/test_perf_harness.py`` (add ``-m slow`` for the
roar-shifts run, which needs the SBA and Student files in the data folder and takes about half
an hour on 2 cores). Every run starts from an empty cache folder unless it says "cached".
"""

from __future__ import annotations

from pathlib import Path

import pytest

from recourse_bench import load_config, run_benchmark

CONFIGS = Path(__file__).resolve().parents[1]


def cold_run(config, folder: Path, n_jobs: int):
    """A run into a fresh cache (each round gets its own folder)."""
    folder.mkdir(parents=True)
    return run_benchmark(
        config, folder / "run", n_jobs=n_jobs, cache_dir=folder / "cache", progress=False
    )


def test_quick_cold_at_2_workers(benchmark, tmp_path):
    config = load_config(CONFIGS / "quick.yaml")
    rounds = iter(range(100))
    result = benchmark.pedantic(
        lambda: cold_run(config, tmp_path / str(next(rounds)), 2), rounds=2, iterations=1
    )
    assert result.metadata["stages"]["recourse"]["cached"] == 0
    assert (result.results["status"] == "ok").mean() > 0.9


def test_quick_served_from_cache(benchmark, tmp_path):
    config = load_config(CONFIGS / "quick.yaml")
    run_benchmark(config, tmp_path / "run", progress=False)  # cold: fills the cache
    result = benchmark.pedantic(
        run_benchmark, args=(config, tmp_path / "run"), kwargs={"progress": False}, rounds=3
    )
    assert all(s["cached"] == s["units"] for s in result.metadata["stages"].values())


@pytest.mark.slow
def test_roar_shifts_cold_at_2_workers(benchmark, tmp_path):
    config = load_config(CONFIGS / "roar-shifts.yaml")
    result = benchmark.pedantic(cold_run, args=(config, tmp_path / "0", 2), rounds=1)
    benchmark.extra_info["target_seconds"] = 600
    seconds = {}
    for timing in result.metadata["recourse_timings"]:
        spent = timing["fit_seconds"] + timing["generate_seconds"]
        seconds[timing["method"]] = seconds.get(timing["method"], 0) + spent
    benchmark.extra_info["method_seconds"] = seconds
    assert result.n_failed == 0
