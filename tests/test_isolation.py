"""Isolation of units: failures, hangs and runaway memory cost only their own cells."""

from __future__ import annotations

import logging
import os
import signal
import time
import warnings
from functools import partial

import numpy as np
import pandas as pd
import pytest

from recourse_bench.api import ConfigError
from recourse_bench.config import Limits, parse_size, parse_timeout
from recourse_bench.harness import isolation
from recourse_bench.harness.isolation import CAN_FORK, format_size, run_isolated

from .conftest import PLUGINS

pytestmark = pytest.mark.skipif(not CAN_FORK, reason="isolation needs fork")


def _raise() -> None:
    raise ValueError("first line\nsecond line")


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _sleep_and_record(path) -> None:
    path.write_text(str(os.getpid()))
    time.sleep(600)


def _hoard() -> float:
    return float(np.ones(2**29).sum())  # 4 GiB


def _unsendable():
    return lambda: None


def _pid() -> int:
    return os.getpid()


def _log_unpicklable_and_return() -> int:
    logging.getLogger("recourse_bench.test").warning("odd extra", extra={"hook": lambda: 0})
    warnings.warn("from the unit", UserWarning, stacklevel=1)
    return 5


def _die_leaving_a_grandchild_on_the_pipe() -> None:
    if os.fork() == 0:  # the grandchild keeps the pipe open
        time.sleep(60)
        os._exit(0)
    os.kill(os.getpid(), signal.SIGKILL)


# ----------------------------------------------------------------------------- the child process
def test_a_value_comes_back_from_the_child():
    big = run_isolated(partial(np.arange, 3_000_000), Limits())  # 24 MB: many pipe buffers
    assert big.status == "ok" and np.array_equal(big.value, np.arange(3_000_000))


def test_an_exception_is_an_error_with_its_first_line():
    result = run_isolated(_raise, Limits())
    assert (result.status, result.reason) == ("error", "ValueError: first line")


def test_a_hang_is_stopped_at_the_timeout_and_its_process_is_gone(tmp_path):
    pid_file = tmp_path / "pid"
    start = time.monotonic()
    result = run_isolated(partial(_sleep_and_record, pid_file), Limits(timeout=1.0))
    assert result.status == "timeout" and "1 s timeout" in result.reason
    assert time.monotonic() - start < 30
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_a_runaway_allocation_fails_at_the_memory_limit():
    """4 GiB would fit on the machine, but not under a 256 MiB limit."""
    start = time.monotonic()
    result = run_isolated(_hoard, Limits(memory=256 * 2**20))
    assert result.status == "error" and "memory_limit of 256 MiB" in result.reason
    assert time.monotonic() - start < 30


def test_the_result_survives_a_log_record_that_cannot_be_sent(caplog):
    with pytest.warns(UserWarning, match="from the unit"):
        result = run_isolated(_log_unpicklable_and_return, Limits())
    assert result.value == 5
    assert "odd extra" in caplog.text  # the record came back, without its extra


def test_a_dead_child_is_noticed_while_a_process_it_started_holds_the_pipe():
    start = time.monotonic()
    result = run_isolated(_die_leaving_a_grandchild_on_the_pipe, Limits())
    assert result.status == "error" and "SIGKILL" in result.reason
    assert time.monotonic() - start < 10


def test_a_child_killed_by_a_signal_is_an_error_naming_it():
    result = run_isolated(_kill_self, Limits())
    assert result.status == "error" and "SIGKILL" in result.reason


def test_the_child_serves_unit_after_unit_and_is_replaced_after_a_kill():
    """One child per thread stays up between calls (what it loaded stays loaded)."""
    first, second = run_isolated(_pid, Limits()).value, run_isolated(_pid, Limits()).value
    assert first == second != os.getpid()
    assert run_isolated(_kill_self, Limits()).status == "error"
    assert run_isolated(_pid, Limits()).value not in (first, os.getpid())
    isolation.shutdown()
    with pytest.raises(ProcessLookupError):
        os.kill(first, 0)


def test_a_result_that_cannot_be_sent_is_an_error():
    result = run_isolated(_unsendable, Limits())
    assert result.status == "error" and "cannot be sent" in result.reason


# ------------------------------------------------------------------------------------ the limits
@pytest.mark.parametrize(
    ("text", "size"),
    [("8GiB", 8 * 2**30), ("512 MB", 512 * 2**20), ("2g", 2 * 2**30), (2**30, 2**30)],
)
def test_memory_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "0", "12", True, float("nan"), "-1GiB", "8 GiBs"])
def test_bad_memory_sizes_are_config_errors(text):
    with pytest.raises(ConfigError, match="memory_limit"):
        parse_size(text)


@pytest.mark.parametrize("value", [0, -5, True, "soon", float("inf"), float("nan")])
def test_bad_timeouts_are_config_errors(value):
    with pytest.raises(ConfigError, match="timeout"):
        parse_timeout(value)


def test_format_size():
    assert (format_size(3 * 2**30), format_size(1536 * 2**20), format_size(10)) == (
        "3 GiB",
        "1.5 GiB",
        "10 B",
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--timeout", "0"], "--timeout must be a number of seconds > 0"),
        (["--timeout", "soon"], "--timeout must be a number of seconds > 0"),
        (["--memory-limit", "lots"], "--memory-limit 'lots' is not a memory size"),
    ],
)
def test_bad_limit_flags_are_one_line(flags, message, tiny_config, write_config, run_cli):
    code, _, err = run_cli("run", write_config(tiny_config), "--dry-run", *flags)
    assert code == 2 and err.count("\n") == 1 and message in err


@pytest.mark.parametrize("backend", ["threading", "dask"])
def test_limits_on_a_thread_based_backend_are_one_line(backend, tiny_config, write_config, run_cli):
    args = ("run", write_config(tiny_config), "--dry-run", "--backend", backend)
    code, _, err = run_cli(*args, "--timeout", "60")
    assert code == 2 and err.count("\n") == 1 and "need --backend loky or sequential" in err
    assert run_cli(*args)[0] == 0


def test_limits_in_the_config(tiny_config, write_config, run_cli):
    tiny_config |= {"timeout": 60, "memory_limit": "2GiB"}
    code, _, _ = run_cli("run", write_config(tiny_config), "--dry-run", "--timeout", "30")
    assert code == 0
    tiny_config["timeout"] = "an hour"
    code, _, err = run_cli("run", write_config(tiny_config), "--dry-run")
    assert code == 2 and "timeout must be a number of seconds" in err


# -------------------------------------------------------------------------- fault injection, e2e
FAULTY_MATRIX = {
    "name": "faults",
    "seeds": 1,
    "n_factuals": 20,
    "datasets": [
        "german",  # the method raises
        {"name": "synthetic-moons", "params": {"n_samples": 300}},  # it hangs
        {"name": "synthetic-gaussians", "params": {"n_samples": 300}},  # it hoards memory
        {"name": "synthetic-drift", "params": {"n_samples": 300}},  # it works
    ],
    "models": [{"name": "logreg", "params": {"epochs": 100}}],
    "methods": [
        "breaks-by-dataset",
        {"name": "wachter", "params": {"n_rounds": 3, "steps": 50}},
    ],
    "shifts": [{"name": "retrain-seed", "params": {"n_models": 2}}],
    "timeout": 8,
    "memory_limit": "1GiB",
}


def test_a_method_that_raises_hangs_and_hoards_fails_only_its_cells(
    tmp_path, write_config, run_cli
):
    """The run completes: error and timeout rows for the broken cells, the rest intact."""
    config = write_config(FAULTY_MATRIX)
    plugin = PLUGINS / "faulty.py"
    start = time.monotonic()
    code, _, err = run_cli(
        "run", config, "--out", tmp_path / "run", "-q", "--no-report", "-j", "2", "--plugin", plugin
    )
    assert code == 1
    assert time.monotonic() - start < 120  # the hang was stopped
    frame = pd.read_parquet(tmp_path / "run" / "results.parquet")
    broken = frame[frame["method"] == "breaks-by-dataset"].groupby("dataset")
    statuses = broken["status"].unique().map(list).to_dict()
    assert statuses == {
        "german": ["error"],
        "synthetic-moons": ["timeout"],
        "synthetic-gaussians": ["error"],
        "synthetic-drift": ["ok"],
    }
    reasons = broken["reason"].unique().map(list).to_dict()
    assert reasons["german"] == ["RuntimeError: deliberate failure on german"]
    assert "after the 8 s timeout" in reasons["synthetic-moons"][0]
    assert "used more than the memory_limit of 1 GiB" in reasons["synthetic-gaussians"][0]

    # the summary names each failed cell with its first error line
    assert "3 of 16 units failed" in err
    for line in (
        "error: recourse german/logreg/breaks-by-dataset seed 0: RuntimeError: deliberate",
        "timeout: recourse synthetic-moons/logreg/breaks-by-dataset seed 0: still running",
        "error: recourse synthetic-gaussians/logreg/breaks-by-dataset seed 0: used more than",
    ):
        assert line in err

    # every other cell is exactly what a run without the broken method gives
    clean = FAULTY_MATRIX | {"methods": FAULTY_MATRIX["methods"][1:], "name": "clean"}
    code, _, _ = run_cli(
        "run", write_config(clean, "clean.yaml"), "--out", tmp_path / "clean", "-q", "--no-report"
    )
    assert code == 0
    expected = pd.read_parquet(tmp_path / "clean" / "results.parquet")
    kept = frame[frame["method"] == "wachter"].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, expected, check_exact=True)
