"""The stage cache writes entries atomically with a content hash and checks them before unpickling.

A truncated, corrupted, foreign or out-of-folder entry is discarded and recomputed with one
warning line, and nothing in it is ever unpickled.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import shutil
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from recourse_bench import load_config, run_benchmark
from recourse_bench.harness import cache as store
from recourse_bench.harness.cache import MAGIC, CacheEntryError
from recourse_bench.harness.stages import in_cache, memoized, memory

LOGGER = "recourse_bench.harness.cache"
CALLS: list[int] = []


def squares(n: int) -> np.ndarray:
    CALLS.append(n)
    return np.arange(n, dtype=float) ** 2


class Payload:
    """Unpickling this writes a marker file: what a hostile cache entry could do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "executed"))


@pytest.fixture
def cached(tmp_path):
    """``squares`` cached in a fresh cache folder (through the harness's ``memory``)."""
    CALLS.clear()
    return memory(str(tmp_path / "cache")).cache(squares)


def entry_file(tmp_path: Path) -> Path:
    (path,) = (tmp_path / "cache").glob("joblib/**/output.pkl")
    return path


def is_valid(path: Path) -> bool:
    """Checked independently of the store: the header's digest is the payload's sha256."""
    data = path.read_bytes()
    header, _, payload = data.partition(b"\n")
    digest = header.removeprefix(MAGIC).decode()
    return header.startswith(MAGIC) and hashlib.sha256(payload).hexdigest() == digest


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def assert_recomputed(cached, tmp_path, caplog, reason: str) -> None:
    """The damaged entry is discarded with one warning line, recomputed and stored valid."""
    caplog.clear()
    calls = len(CALLS)
    with caplog.at_level(logging.WARNING):
        np.testing.assert_array_equal(cached(500), np.arange(500.0) ** 2)
    assert len(CALLS) == calls + 1
    (message,) = warnings_of(caplog)  # ours only: no joblib traceback
    assert caplog.records[0].name == LOGGER
    assert message.startswith("cache entry joblib/") and reason in message
    assert message.endswith("; discarded, recomputing")
    assert "\n" not in message
    path = entry_file(tmp_path)
    assert path.is_file() and not path.is_symlink() and is_valid(path)
    cached(500)
    assert len(CALLS) == calls + 1  # the new entry is used


def test_round_trip_writes_one_hashed_file_and_no_temporary(cached, tmp_path):
    np.testing.assert_array_equal(cached(500), np.arange(500.0) ** 2)
    np.testing.assert_array_equal(cached(500), np.arange(500.0) ** 2)
    assert CALLS == [500]
    path = entry_file(tmp_path)
    assert path.read_bytes().startswith(MAGIC) and is_valid(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["metadata.json", "output.pkl"]
    assert cached.check_call_in_cache(500)


def test_a_truncated_entry_is_discarded_and_recomputed(cached, tmp_path, caplog):
    cached(500)
    path = entry_file(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert_recomputed(cached, tmp_path, caplog, "content hash mismatch")


def test_an_entry_cut_inside_its_header_is_discarded_and_recomputed(cached, tmp_path, caplog):
    cached(500)
    path = entry_file(tmp_path)
    path.write_bytes(path.read_bytes()[:10])
    assert_recomputed(cached, tmp_path, caplog, "no recourse-bench header")


def test_one_flipped_byte_is_detected(cached, tmp_path, caplog):
    cached(500)
    path = entry_file(tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    assert_recomputed(cached, tmp_path, caplog, "content hash mismatch")


def test_a_link_to_a_file_outside_the_cache_is_refused(cached, tmp_path, caplog):
    cached(500)
    path = entry_file(tmp_path)
    outside = tmp_path / "outside.pkl"
    shutil.copy(path, outside)  # a well-formed entry: only where it lies is wrong
    path.unlink()
    path.symlink_to(outside)
    assert_recomputed(cached, tmp_path, caplog, "outside the cache folder")
    assert outside.is_file() and is_valid(outside)  # followed nowhere, removed nowhere


def test_an_entry_folder_linked_outside_the_cache_is_refused(cached, tmp_path, caplog):
    cached(500)
    folder = entry_file(tmp_path).parent
    outside = tmp_path / "outside"
    shutil.move(folder, outside)
    folder.symlink_to(outside, target_is_directory=True)
    assert_recomputed(cached, tmp_path, caplog, "outside the cache folder")
    assert sorted(p.name for p in outside.iterdir()) == ["metadata.json", "output.pkl"]


def test_an_old_format_entry_without_header_is_recomputed(cached, tmp_path, caplog):
    cached(500)
    path = entry_file(tmp_path)
    joblib.dump(np.zeros(3), path)  # what joblib's own store writes
    assert_recomputed(cached, tmp_path, caplog, "no recourse-bench header")


def test_a_pickle_that_runs_code_is_never_unpickled(cached, tmp_path, caplog):
    marker = tmp_path / "marker"
    hostile = pickle.dumps(Payload(marker))
    pickle.loads(hostile)  # the payload works: unpickling it writes the marker
    assert marker.read_text() == "executed"
    marker.unlink()
    cached(500)
    path = entry_file(tmp_path)
    path.write_bytes(hostile)  # no header
    assert_recomputed(cached, tmp_path, caplog, "no recourse-bench header")
    wrong_digest = hashlib.sha256(b"something else").hexdigest().encode()
    entry_file(tmp_path).write_bytes(MAGIC + wrong_digest + b"\n" + hostile)
    assert_recomputed(cached, tmp_path, caplog, "content hash mismatch")
    assert not marker.exists()


def test_loading_checks_again_and_raises(cached, tmp_path):
    """An entry damaged after joblib's check and before the load is refused, not unpickled."""
    marker = tmp_path / "marker"
    result = cached.call_and_shelve(500)  # checked, not loaded
    path = entry_file(tmp_path)
    header = path.read_bytes()[: len(MAGIC) + 65]
    path.write_bytes(header + pickle.dumps(Payload(marker)))
    with pytest.raises(CacheEntryError, match="content hash mismatch"):
        result.get()
    assert not marker.exists()
    assert not path.parent.exists()  # discarded


def test_an_entry_is_hashed_once_for_the_check_and_the_load(cached, tmp_path, monkeypatch):
    cached(500)
    store._verified.clear()  # as in a new process
    hashed = []
    sha256 = hashlib.sha256

    def counting(*args):
        hashed.append(args)
        return sha256(*args)

    monkeypatch.setattr(store.hashlib, "sha256", counting)
    assert cached.check_call_in_cache(500)
    cached(500)
    cached(500)
    assert len(hashed) == 1
    assert CALLS == [500]


# ------------------------------------------------------------------------ through the runner
def test_an_interrupted_read_of_the_source_never_empties_a_stage_cache(tmp_path, monkeypatch):
    """joblib reads a cached function's source under a bare ``except``: a Ctrl-C landing in
    that read is swallowed and a stand-in returned (a hash of the code object, line -1),
    which joblib's own check takes for changed code, emptying the function's whole cache (a
    resumed run recomputed finished units). The stage functions skip that check: their keys
    carry the code versions."""
    folder = str(tmp_path / "cache")
    CALLS.clear()
    np.testing.assert_array_equal(memoized(folder, squares, [])(500), np.arange(500.0) ** 2)

    def interrupted(func):  # what joblib.func_inspect.get_func_code returns when its read fails
        return str(func.__code__.__hash__()), None, -1

    monkeypatch.setattr(joblib.memory, "get_func_code", interrupted)
    again = memoized(folder, squares, [])
    assert in_cache(again, 500)
    np.testing.assert_array_equal(again(500), np.arange(500.0) ** 2)
    assert CALLS == [500] and is_valid(entry_file(tmp_path))


def test_a_run_recomputes_its_damaged_entries_to_the_same_results(tmp_path, tiny_config, capfd):
    config = load_config(tiny_config)
    cache = tmp_path / "cache"
    options = {"cache_dir": cache, "progress": False, "backend": "sequential"}
    first = run_benchmark(config, tmp_path / "first", **options)
    entries = sorted(cache.glob("joblib/**/output.pkl"))
    functions = {p.parent.parent for p in entries}  # every stage, and the evaluated rows
    assert len(functions) == 5
    half = [p for f in functions for p in sorted(f.glob("*/output.pkl"))[::2]]
    damaged = {os.path.relpath(p.parent, cache): p for p in half}
    for path in damaged.values():  # truncate half of the entries of each function
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    # Uncached units may run in forked children: read the warnings where a user sees them, on
    # stderr (captured at the file descriptor), not from records kept in this process.
    capfd.readouterr()
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    logging.getLogger().addHandler(handler)
    try:
        second = run_benchmark(config, tmp_path / "second", **options)
    finally:
        logging.getLogger().removeHandler(handler)
    err = capfd.readouterr().err

    pd.testing.assert_frame_equal(first.results, second.results)
    assert "Exception while loading" not in err  # joblib's own traceback warning
    lines = [line for line in err.splitlines() if "cache entry" in line]
    warned = [line.split()[2] for line in lines]  # "cache entry <folder> is ..."
    assert all(line.endswith("; discarded, recomputing") for line in lines)
    assert len(set(warned)) == len(warned)  # one line per entry
    recomputed = {folder for folder, path in damaged.items() if is_valid(path)}
    assert set(warned) == recomputed  # the others were not needed and are left as they were
    own = {f for f in damaged if f.split("/")[-2] != "load_splits"}  # a unit's own result
    assert own and own <= recomputed
    assert all(is_valid(p) for p in entries if os.path.relpath(p.parent, cache) not in damaged)
    stages = second.metadata["stages"]
    for stage, func in {"base": "fit_base", "updates": "fit_updates"}.items():
        hit = sum(f.split("/")[-2] == func for f in damaged)
        assert stages[stage]["cached"] == stages[stage]["units"] - hit
    assert stages["recourse"]["cached"] < stages["recourse"]["units"]

    third = run_benchmark(config, tmp_path / "third", **options)
    assert all(s["cached"] == s["units"] for s in third.metadata["stages"].values())
    pd.testing.assert_frame_equal(first.results, third.results)
