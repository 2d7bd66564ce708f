"""Backends: a real Dask cluster on loopback gives exactly the numbers of the loky run."""

import importlib.util
import itertools
from pathlib import Path

import pandas as pd
import pytest
import yaml

from recourse_bench import load_config, registry, run_benchmark
from recourse_bench.api import ConfigError
from recourse_bench.harness import backends
from recourse_bench.store import read_metadata, read_results

from .conftest import TINY

distributed = pytest.importorskip("distributed")
# the module's cluster holds Dask's default HTTP port, so a second one says it takes another
pytestmark = pytest.mark.filterwarnings("ignore:Port .* is already in use:UserWarning")
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "shrunk_neighbour.py"


def small_matrix() -> dict:
    """Two models, three methods (one from a plugin file), two shifts: 24 units."""
    config = yaml.safe_load(yaml.safe_dump(TINY))
    config["models"].append({"name": "mlp", "params": {"epochs": 50}})
    config["methods"] += ["nearest-neighbour", "shrunk-neighbour"]
    config["shifts"].append({"name": "weight-perturbation", "params": {"severity": 0.05}})
    return config


@pytest.fixture(scope="module")
def loky_run(tmp_path_factory):
    """The reference: the matrix on joblib's loky backend with two workers."""
    registry.load_plugin_file(EXAMPLE)
    folder = tmp_path_factory.mktemp("loky")
    return run_benchmark(
        load_config(small_matrix()),
        folder / "run",
        n_jobs=2,
        cache_dir=folder / "cache",
        plugin_files=[EXAMPLE],
        progress=False,
    )


@pytest.fixture(scope="module")
def cluster():
    """A real two-worker Dask cluster, separate processes, on the loopback interface."""
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as local:
        yield local


def test_a_dask_cluster_gives_exactly_the_numbers_of_the_loky_run(tmp_path, loky_run, cluster):
    with distributed.Client(cluster) as observer, distributed.get_task_stream(observer) as stream:
        result = run_benchmark(
            load_config(small_matrix()),
            tmp_path / "run",
            backend="dask",
            scheduler=cluster.scheduler_address,
            cache_dir=tmp_path / "cache",
            plugin_files=[EXAMPLE],
            progress=False,
        )
    units = sum(s["units"] for s in result.metadata["stages"].values())
    assert units == 4 + 8 + 12 and result.metadata["stages"]["recourse"]["cached"] == 0
    workers = {task["worker"] for task in stream.data}
    assert len(workers) == 2  # both workers computed units
    assert (result.results["status"] == "ok").all()
    assert "shrunk-neighbour" in set(result.results["method"])  # the plugin ran on the workers
    pd.testing.assert_frame_equal(loky_run.results, result.results, check_exact=True)
    metadata = read_metadata(tmp_path / "run")
    assert metadata["backend"] == "dask"
    assert metadata["scheduler"] == cluster.scheduler_address


def test_j_caps_the_parallel_units_on_a_cluster(tmp_path, cluster):
    """joblib's Dask backend ignores n_jobs; -j 1 must still run one unit at a time."""
    with distributed.Client(cluster) as observer, distributed.get_task_stream(observer) as stream:
        run_benchmark(
            load_config(yaml.safe_load(yaml.safe_dump(TINY))),
            tmp_path / "run",
            n_jobs=1,
            backend="dask",
            scheduler=cluster.scheduler_address,
            cache_dir=tmp_path / "cache",
            progress=False,
        )
    spans = sorted(
        (part["start"], part["stop"])
        for task in stream.data
        for part in task["startstops"]
        if part["action"] == "compute"
    )
    assert len(spans) >= 6
    assert all(stop <= start for (_, stop), (start, _) in itertools.pairwise(spans))


def test_cli_backend_dask_without_a_scheduler_starts_a_local_cluster(
    tmp_path, loky_run, run_cli, write_config
):
    config = write_config(small_matrix())
    args = ["run", config, "--out", tmp_path / "run", "--plugin", EXAMPLE, "--no-report", "-q"]
    code, _, err = run_cli(*args, "--backend", "dask", "-j", "2")
    assert code == 0, err
    assert "distributed" not in err  # Dask's own log lines stay quiet
    pd.testing.assert_frame_equal(
        loky_run.results, read_results(tmp_path / "run"), check_exact=True
    )
    metadata = read_metadata(tmp_path / "run")
    assert (metadata["backend"], metadata["n_jobs"], metadata["scheduler"]) == ("dask", 2, None)


def test_scheduler_without_a_cluster_backend_is_one_line(tmp_path, run_cli, write_config):
    config = write_config(yaml.safe_load(yaml.safe_dump(TINY)))
    code, _, err = run_cli("run", config, "--out", tmp_path / "run", "--scheduler", "tcp://x:1")
    assert code == 2
    assert err.strip().count("\n") == 0
    assert "--scheduler only applies to --backend dask or ray" in err
    assert not (tmp_path / "run" / "results.parquet").exists()


def test_an_unreachable_scheduler_is_one_line(tmp_path, run_cli, write_config, monkeypatch):
    monkeypatch.setattr(backends, "CONNECT_TIMEOUT", 1)
    config = write_config(yaml.safe_load(yaml.safe_dump(TINY)))
    args = ["run", config, "--out", tmp_path / "run", "--backend", "dask"]
    code, _, err = run_cli(*args, "--scheduler", "tcp://127.0.0.1:9", "-q")
    assert code == 2
    assert err.strip().count("\n") == 0
    assert "cannot reach a Dask scheduler" in err and "dask scheduler" in err


def test_a_path_a_worker_cannot_see_is_named():
    with pytest.raises(ConfigError, match=r"cannot see /shared/cache.*--cache-dir"):
        backends._check_paths_on_workers({"tcp://a:1": [], "tcp://b:1": ["/shared/cache"]})
    assert backends._missing_paths([str(EXAMPLE), "/no/such/folder"]) == ["/no/such/folder"]


def test_ray_without_ray_installed_names_the_extra(tmp_path, run_cli, write_config):
    if importlib.util.find_spec("ray") is not None:
        pytest.skip("ray is installed: the missing-extra message cannot show")
    config = write_config(yaml.safe_load(yaml.safe_dump(TINY)))
    code, _, err = run_cli("run", config, "--out", tmp_path / "run", "--backend", "ray", "-q")
    assert code == 2
    assert 'pip install "recourse-bench[ray]"' in err


@pytest.mark.parametrize(
    ("name", "n_jobs", "scheduler", "message"),
    [
        ("spark", None, None, "unknown backend 'spark'"),
        ("loky", 0, None, "-j 0"),
        ("threading", None, "tcp://a:1", "--scheduler only applies"),
    ],
)
def test_bad_backend_settings_are_refused(name, n_jobs, scheduler, message):
    with pytest.raises(ConfigError, match=message):
        backends.Backend(name, n_jobs, scheduler)


def test_default_workers():
    assert backends.Backend("loky").local_workers == 1
    assert backends.Backend("dask").local_workers >= 1
    assert backends.Backend("loky", 3).local_workers == 3
