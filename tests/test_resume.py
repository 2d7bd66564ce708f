"""Resume: a run killed (SIGKILL) or interrupted (Ctrl-C) mid-way continues with the same command,
recomputing nothing that finished, and ends with exactly the results of an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
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


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> pd.DataFrame:
    """The results of the matrix run once without interruption."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    config = load_config(MATRIX)
    return run_benchmark(config, folder / "run", cache_dir=folder / "cache", progress=False).results


def _session_ends(session: int, within: float = 30.0) -> bool:
    """Whether every process of the session is gone within ``within`` seconds.

    The session, not the process group: a unit's child leads a process group of its own.
    """
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not _members(session):
            return True
        time.sleep(0.1)
    return False


def _members(session: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


@pytest.mark.parametrize(
    ("signum", "jobs"),
    [(signal.SIGKILL, "1"), (signal.SIGINT, "2")],
    ids=["SIGKILL-j1", "SIGINT-j2"],
)
def test_a_killed_or_interrupted_run_resumes_to_the_uninterrupted_results(
    tmp_path, signum, jobs, uninterrupted
):
    """SIGKILL (kill -9, a crash) or SIGINT (Ctrl-C) to the whole process group mid-way.

    At ``-j 1`` the units run in a child of the main process, at ``-j 2`` in children of the
    pool's workers; no process of the run may outlive it.
    """
    config = tmp_path / "resume.yaml"
    config.write_text(yaml.safe_dump(MATRIX), encoding="utf-8")
    out, cache = tmp_path / "runs" / "resume", tmp_path / "runs" / ".recourse-bench-cache"
    args = [*command(config, out), "-q", "--no-report", "-j", jobs]
    started = subprocess.Popen(args, start_new_session=True, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while finished_recourse_units(cache) < 3 and time.monotonic() < deadline:
        assert started.poll() is None, started.stderr.read().decode()
        time.sleep(0.05)
    os.killpg(started.pid, signum)  # the whole process group, as a terminal does
    _, err = started.communicate(timeout=60)
    if signum == signal.SIGINT:
        assert started.returncode == 130
        assert err.decode().strip().splitlines()[-1] == (
            "recourse-bench: interrupted; finished units are cached, rerun to resume"
        )
    assert _session_ends(started.pid), "a worker or a unit's child outlived the run"
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
    pd.testing.assert_frame_equal(uninterrupted, read_results(out), check_exact=True)


def test_a_main_process_killed_alone_takes_its_workers_and_their_children_along(tmp_path):
    """kill -9 of the main process only (not its group): nothing of the run keeps running."""
    config = tmp_path / "resume.yaml"
    config.write_text(yaml.safe_dump(MATRIX), encoding="utf-8")
    out, cache = tmp_path / "runs" / "resume", tmp_path / "runs" / ".recourse-bench-cache"
    args = [*command(config, out), "-q", "--no-report", "-j", "2"]
    started = subprocess.Popen(args, start_new_session=True, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while finished_recourse_units(cache) < 1 and time.monotonic() < deadline:
        assert started.poll() is None, started.stderr.read().decode()
        time.sleep(0.05)
    assert len(_members(started.pid)) > 2  # the main process, its workers and their children
    started.kill()
    started.communicate(timeout=60)
    assert _session_ends(started.pid), "a worker or a unit's child outlived the main process"
