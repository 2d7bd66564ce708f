from __future__ import annotations

import http.server
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from recourse_bench import cli, registry
from recourse_bench.api import Schema

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = Path(__file__).parent / "plugins"
SHARED_DATA = ROOT.parent / "shared" / "data" / "raw"
DATA_ENV = "RECOURSE_BENCH_DATA"


def pytest_configure(config):
    """Point the data folder at the shared reference copies when nothing else is set.

    On CI (``CI`` set) the folder must exist: dataset tests then never skip silently.
    """
    if not os.environ.get(DATA_ENV) and SHARED_DATA.is_dir():
        os.environ[DATA_ENV] = str(SHARED_DATA)
    if os.environ.get("CI") and not data_available():
        raise pytest.UsageError(f"CI needs the reference data: set {DATA_ENV} to a folder")


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Run torch on one thread, as the harness does in every worker.

    Small batches gain nothing from more threads, and two threads contending with other work on
    a 2-core machine made them several times slower.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def continuous_schema(d: int, groups: tuple = ()) -> Schema:
    """``d`` free continuous features in [0, 1] (and the one-hot ``groups`` given)."""
    return Schema(
        features=tuple(f"x{j}" for j in range(d)),
        kinds=("continuous",) * d,
        immutable=(False,) * d,
        direction=(0,) * d,
        lower=(0.0,) * d,
        upper=(1.0,) * d,
        steps=(0.0,) * d,
        groups=groups,
    )


def assert_recourse_contract(schema, model, factuals, recourses, min_coverage=0.0):
    """Assert what every method promises of its recourses; return the rows found.

    One row per factual, each a full recourse or all NaN; at least ``min_coverage`` found; no
    immutable, bound, direction or one-hot group broken; integer columns on their grid; every
    recourse accepted by ``model``.
    """
    assert recourses.shape == factuals.shape
    found = ~np.isnan(recourses).any(axis=1)
    assert np.isnan(recourses[~found]).all(), "a row is either a full recourse or all NaN"
    assert found.mean() >= min_coverage, f"coverage {found.mean():.3f} < {min_coverage}"
    assert not schema.violations(recourses[found], factuals[found]).any()
    frozen = ~schema.mutable_mask
    np.testing.assert_array_equal(recourses[found][:, frozen], factuals[found][:, frozen])
    steps = np.asarray(schema.steps, dtype=float)
    grid = steps > 0
    units = (recourses[found][:, grid] - schema.lower_array[grid]) / steps[grid]
    np.testing.assert_allclose(units, np.round(units), atol=1e-6, err_msg="integer off its grid")
    assert (model.predict(recourses[found]) == 1).all()
    return found


def builtin_methods() -> list[str]:
    """Every method registered by the package itself (test plugins excluded)."""
    return [
        name
        for name in registry.available("method")
        if registry.get("method", name).__module__.startswith("recourse_bench.methods")
    ]


def data_available() -> bool:
    """Whether a data folder with the reference files is configured.

    An unset or empty variable means no data folder (``Path("")`` would be the current folder).
    """
    folder = os.environ.get(DATA_ENV)
    return bool(folder) and Path(folder).is_dir()


TINY = {
    "name": "tiny",
    "seeds": 2,
    "n_factuals": 20,
    "datasets": [{"name": "synthetic-gaussians", "params": {"n_samples": 300}}],
    "models": [{"name": "logreg", "params": {"epochs": 100}}],
    "methods": [{"name": "wachter", "params": {"n_rounds": 6, "steps": 50}}],
    "shifts": [{"name": "retrain-seed", "params": {"n_models": 3}}],
}


def install_entry_point(folder: Path, module: str, source: str, entry_point: str) -> None:
    """Write ``module`` and a distribution that declares it as the plugin ``entry_point``.

    Both go in ``folder``; prepending the folder to ``sys.path`` installs them.
    """
    (folder / f"{module}.py").write_text(source, encoding="utf-8")
    dist = folder / f"{module}-1.0.dist-info"
    dist.mkdir()
    name = module.replace("_", "-")
    (dist / "METADATA").write_text(f"Name: {name}\nVersion: 1.0\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text(
        f"[recourse_bench.plugins]\n{entry_point} = {module}\n", encoding="utf-8"
    )


@pytest.fixture
def tiny_config() -> dict:
    """A matrix that runs in a few seconds."""
    return yaml.safe_load(yaml.safe_dump(TINY))


@pytest.fixture
def write_config(tmp_path):
    def write(config: dict, name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    return write


@pytest.fixture
def run_cli(capsys):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = cli.main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


class LoopbackServer:
    """Serves byte payloads over HTTP on 127.0.0.1 and records the paths requested.

    A path added with ``truncate=True`` announces its full length but sends half of it and
    closes (an interrupted download).
    """

    def __init__(self):
        self.payloads: dict[str, bytes] = {}
        self.truncate: set[str] = set()
        self.requests: list[str] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                owner.requests.append(self.path)
                body = owner.payloads.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if self.path in owner.truncate else body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def add(self, path: str, body: bytes, truncate: bool = False) -> str:
        """Serve ``body`` at ``path``; returns its address."""
        self.payloads[path] = body
        if truncate:
            self.truncate.add(path)
        return self.url(path)

    def url(self, path: str) -> str:
        """The address of ``path`` on this server."""
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve(monkeypatch):
    """A loopback HTTP server; proxies are bypassed so requests never leave the machine."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    server = LoopbackServer()
    yield server
    server.close()
