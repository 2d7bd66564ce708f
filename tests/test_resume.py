"""Resume: a run killed with SIGKILL mid-way continues with the same command, recomputing nothing
that finished, and ends with exactly the results of an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

from recourse_bench import load_config, run_benchmark
from recourse_bench.store import read_metadata, read_results

MATRIX = {
    "name": "resume",
    "seeds": 3,
    "n_factuals": 30,
    "datasets": [{"name": "synthetic-gaussians", "params": {"n_samples": 400}}],
    "models": [
        {"name": "logreg", "params": {"epochs": 100}},
        {"name": "mlp", "params": {"epochs": 60}},
    ],
    "methods": [
        {"name": "wachter", "params": {"n_rounds": 6, "steps": 60}},
        "growing-spheres",
        "nearest-neighbour",
    ],
    "shifts": [{"name": "retrain-seed", "params": {"n_models": 3}}],
}
UNITS = 6 + 6 + 18  # base models, updated models, recourse units


def command(config: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "recourse_bench.cli", "run", str(config), "--out", str(out)]


def finished_recourse_units(cache: Path) -> int:
    return len(list(cache.glob("joblib/**/evaluate_rows/*/output.pkl")))


def test_a_run_killed_with_sigkill_resumes_to_the_uninterrupted_results(tmp_path):
    config = tmp_path / "resume.yaml"
    config.write_text(yaml.safe_dump(MATRIX), encoding="utf-8")
    out, cache = tmp_path / "runs" / "resume", tmp_path / "runs" / ".recourse-bench-cache"
    args = [*command(config, out), "-q", "--no-report"]
    started = subprocess.Popen(args, start_new_session=True, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while finished_recourse_units(cache) < 3 and time.monotonic() < deadline:
        assert started.poll() is None, started.stderr.read().decode()
        time.sleep(0.05)
    os.killpg(started.pid, signal.SIGKILL)  # the whole process group, workers included
    started.wait()
    done_before = finished_recourse_units(cache)
    assert 3 <= done_before < 18, "the kill must land mid-way"
    assert not (out / "results.parquet").exists()

    resumed = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    stages = read_metadata(out)["stages"]
    assert stages["recourse"]["cached"] >= done_before  # what finished was not recomputed
    assert stages["base"]["cached"] + stages["updates"]["cached"] >= 2
    recomputed = sum(s["units"] - s["cached"] for s in stages.values())
    print(f"killed after {done_before}/18 recourse units; the resumed run recomputed {recomputed}")
    assert recomputed == UNITS - 12 - done_before  # only the unfinished recourse units

    reference = run_benchmark(
        load_config(MATRIX), tmp_path / "reference", cache_dir=tmp_path / "cache", progress=False
    )
    pd.testing.assert_frame_equal(reference.results, read_results(out), check_exact=True)
