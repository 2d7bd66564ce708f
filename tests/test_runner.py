import logging

import numpy as np
import pandas as pd
import pytest

from recourse_bench import load_config, run_benchmark
from recourse_bench.api import DataError
from recourse_bench.store import COLUMNS, read_metadata, read_results

from .conftest import PLUGINS, TINY

MLP = {"name": "mlp", "params": {"epochs": 50}}


def test_tiny_matrix_produces_the_long_table(tmp_path, tiny_config):
    result = run_benchmark(load_config(tiny_config), tmp_path / "run", progress=False)
    frame = read_results(tmp_path / "run")
    pd.testing.assert_frame_equal(frame, result.results)
    assert list(frame.columns) == list(COLUMNS)
    assert (frame["status"] == "ok").all()
    static = frame[frame["shift"].isna()]
    assert sorted(static["metric"].unique()) == ["cost-l1", "coverage", "validity", "violations"]
    assert static["draw"].isna().all()
    update = frame[frame["metric"] == "invalidation-rate"]
    assert len(update) == 2 * 3  # 2 seeds x 3 updated models
    assert sorted(update["draw"].unique()) == [0, 1, 2]
    # n of the invalidation rate = recourses valid before the update = validity * factuals
    for seed, group in update.groupby("seed"):
        validity = static[(static["seed"] == seed) & (static["metric"] == "validity")].iloc[0]
        assert (group["n"] == round(validity["value"] * validity["n"])).all()
    assert frame["value"].between(0, 10).all()
    assert read_metadata(tmp_path / "run")["config_name"] == "tiny"


def test_second_run_is_served_from_the_cache(tmp_path, tiny_config, caplog):
    config = load_config(tiny_config)
    first = run_benchmark(config, tmp_path / "run", progress=False)
    caplog.set_level(logging.DEBUG, logger="recourse_bench.harness.stages")
    second = run_benchmark(config, tmp_path / "run", progress=False)
    computed = [r.getMessage() for r in caplog.records if r.name.endswith("stages")]
    assert computed == []  # no stage ran again
    assert all(s["cached"] == s["units"] for s in second.metadata["stages"].values())
    pd.testing.assert_frame_equal(first.results, second.results)


def test_adding_a_method_computes_only_that_method(tmp_path, tiny_config, caplog):
    run_benchmark(load_config(tiny_config), tmp_path / "run", progress=False)
    tiny_config["methods"].append({"name": "wachter", "params": {"cost": "l2", "n_rounds": 6}})
    caplog.set_level(logging.DEBUG, logger="recourse_bench.harness.stages")
    run_benchmark(load_config(tiny_config), tmp_path / "run", progress=False)
    computed = [r.getMessage() for r in caplog.records if r.name.endswith("stages")]
    assert computed and all(message.startswith("running wachter") for message in computed)
    assert len(computed) == 2  # one per seed


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """The tiny matrix with an MLP, run in this process (sequential, no child processes)."""
    config = load_config({**TINY, "models": [*TINY["models"], MLP]})
    folder = tmp_path_factory.mktemp("reference")
    result = run_benchmark(
        config, folder / "run", backend="sequential", cache_dir=folder / "cache", progress=False
    )
    assert result.metadata["isolated"] is False
    return config, folder / "cache", result


@pytest.mark.parametrize(
    ("backend", "n_jobs"), [("loky", None), ("loky", 2), ("threading", 2)], ids=str
)
def test_every_backend_and_worker_count_gives_exactly_the_same_numbers(
    tmp_path, reference_run, backend, n_jobs
):
    """Units in a forked child (loky at -j 1 and 2) or on threads: the same numbers."""
    import torch

    config, _, reference = reference_run
    threads = torch.get_num_threads()
    result = run_benchmark(
        config,
        tmp_path / "run",
        n_jobs=n_jobs,
        backend=backend,
        cache_dir=tmp_path / "cache",
        progress=False,
    )
    assert torch.get_num_threads() == threads
    assert result.metadata["isolated"] is (backend == "loky")  # never from worker threads
    assert result.metadata["stages"]["recourse"]["cached"] == 0
    pd.testing.assert_frame_equal(reference.results, result.results, check_exact=True)


def test_a_rerun_from_the_cache_gives_exactly_the_same_numbers(tmp_path, reference_run):
    config, cache, reference = reference_run
    rerun = run_benchmark(config, tmp_path / "run", n_jobs=2, cache_dir=cache, progress=False)
    stages = rerun.metadata["stages"]
    assert all(s["cached"] == s["units"] for s in stages.values()), stages
    pd.testing.assert_frame_equal(reference.results, rerun.results, check_exact=True)


def test_a_failing_method_becomes_error_rows_and_the_rest_completes(tmp_path, tiny_config):
    tiny_config["datasets"].append("german")
    tiny_config["methods"].append("fails-on-german")
    result = _run_with_test_plugins(tiny_config, tmp_path)
    frame = result.results
    errors = frame[frame["status"] == "error"]
    assert set(errors["method"]) == {"fails-on-german"}
    assert set(errors["dataset"]) == {"german"}
    assert (errors["reason"] == "RuntimeError: deliberate failure on german").all()
    ok = frame[frame["status"] == "ok"]
    assert set(ok["method"]) == {"wachter", "fails-on-german"}
    assert set(ok[ok["method"] == "wachter"]["dataset"]) == {"german", "synthetic-gaussians"}
    assert result.n_failed == 2  # one row per failed cell: 2 seeds x 1 shift


def test_a_failure_after_generation_still_leaves_error_rows(tmp_path, tiny_config):
    tiny_config["metrics"] = ["validity", "explodes"]
    result = _run_with_test_plugins(tiny_config, tmp_path)
    frame = result.results
    assert len(frame) == 2  # one row per cell (2 seeds x 1 shift), none lost
    assert (frame["status"] == "error").all()
    assert (frame["reason"] == "ValueError: metric exploded").all()
    assert result.n_failed == 2


def test_a_method_that_cannot_run_on_a_model_is_skipped_with_a_reason(tmp_path, tiny_config):
    tiny_config["models"].append("threshold-stump")
    result = _run_with_test_plugins(tiny_config, tmp_path)
    skipped = result.results[result.results["status"] == "skipped"]
    assert set(skipped["model"]) == {"threshold-stump"}
    assert skipped["reason"].str.contains("needs a differentiable model").all()
    assert result.n_failed == 0


def _run_with_test_plugins(config, tmp_path):
    from recourse_bench import registry

    plugin = PLUGINS / "faulty.py"
    registry.load_plugin_file(plugin)
    return run_benchmark(
        load_config(config), tmp_path / "run", plugin_files=[plugin], progress=False
    )


@pytest.mark.slow
def test_quick_benchmark_runs_end_to_end(tmp_path):
    from .conftest import ROOT

    result = run_benchmark(load_config(ROOT / "benchmarks" / "quick.yaml"), tmp_path / "q")
    frame = result.results
    assert (frame["status"] == "ok").all()
    validity = frame[frame["metric"] == "validity"]["value"]
    assert np.all(validity >= 0.9)
    from recourse_bench.reports.report import write_report

    write_report(frame, tmp_path / "q")  # the report folder has the page, the ranks and a CD
    for name in ("index.html", "stats/ranks.csv", "figures/cd-invalidation-rate.pdf"):
        assert (tmp_path / "q" / name).stat().st_size > 0


def test_config_data_dir_finds_the_files(tmp_path, tiny_config, monkeypatch):
    from .conftest import SHARED_DATA

    if not (SHARED_DATA / "SBAcase.11.13.17.csv.gz").is_file():
        pytest.skip("needs the reference SBAcase.11.13.17.csv.gz")
    monkeypatch.delenv("RECOURSE_BENCH_DATA", raising=False)
    monkeypatch.setenv("RECOURSE_BENCH_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr("recourse_bench.datasets._tabular._FRAMES", {})
    tiny_config["datasets"] = ["sba"]  # no download address: the data folder is the only way
    tiny_config["seeds"] = 1
    with pytest.raises(DataError, match=r"SBAcase\.11\.13\.17\.csv not found"):  # the run stops
        run_benchmark(load_config(tiny_config), tmp_path / "a", progress=False)
    tiny_config["data_dir"] = str(SHARED_DATA)
    result = run_benchmark(load_config(tiny_config), tmp_path / "b", progress=False)
    assert (result.results["status"] == "ok").all()


def test_config_data_dir_also_serves_the_future_split(tmp_path, tiny_config, monkeypatch):
    from .conftest import SHARED_DATA

    if not (SHARED_DATA / "SouthGermanCredit.asc.gz").is_file():
        pytest.skip("needs the reference SouthGermanCredit.asc.gz")
    monkeypatch.delenv("RECOURSE_BENCH_DATA", raising=False)
    monkeypatch.setenv("RECOURSE_BENCH_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr("recourse_bench.datasets._tabular._FRAMES", {})
    monkeypatch.setattr("urllib.request.urlopen", _no_network)
    tiny_config.update(datasets=["german"], seeds=1, data_dir=str(SHARED_DATA))
    tiny_config["shifts"] = [{"name": "natural", "params": {"n_models": 2}}]
    result = run_benchmark(load_config(tiny_config), tmp_path / "run", progress=False)
    assert (result.results["status"] == "ok").all(), result.results["reason"].unique()


def _no_network(*args, **kwargs):
    raise OSError("network disabled in this test")


def test_fit_and_generate_times_go_to_the_metadata_not_the_results(tmp_path, tiny_config):
    tiny_config["methods"].append({"name": "nearest-neighbour"})
    result = run_benchmark(load_config(tiny_config), tmp_path / "run", progress=False)
    timings = read_metadata(tmp_path / "run")["recourse_timings"]
    assert len(timings) == 2 * 2  # methods x seeds
    assert {t["method"] for t in timings} == {"wachter(n_rounds=6, steps=50)", "nearest-neighbour"}
    factuals = result.results.query("metric == 'coverage'").set_index(["method", "seed"])["n"]
    for t in timings:
        method = t["method"].split("(")[0]
        assert t["factuals"] == factuals[method, t["seed"]]
        assert t["fit_seconds"] >= 0 and t["generate_seconds"] > 0
    # a cached rerun reports the times of the first computation
    again = run_benchmark(load_config(tiny_config), tmp_path / "run", progress=False)
    assert again.metadata["recourse_timings"] == timings


def test_a_method_that_finds_in_fit_it_cannot_apply_is_skipped_with_its_reason(
    tmp_path, tiny_config
):
    tiny_config["methods"].append("cannot-learn")
    result = _run_with_test_plugins(tiny_config, tmp_path)
    frame = result.results
    skipped = frame[frame["method"] == "cannot-learn"]
    assert len(skipped) == 2  # one row per cell: 2 seeds x 1 shift
    assert (skipped["status"] == "skipped").all()
    assert (skipped["reason"] == "cannot-learn found nothing to learn from").all()
    assert (frame[frame["method"] == "wachter"]["status"] == "ok").all()
    assert result.n_failed == 0
