from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from recourse_bench import cli

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
    if os.environ.get("CI") and not Path(os.environ.get(DATA_ENV, "")).is_dir():
        raise pytest.UsageError(f"CI needs the reference data: set {DATA_ENV} to a folder")


def data_available() -> bool:
    """Whether a data folder with the reference files is configured."""
    return Path(os.environ.get(DATA_ENV, "")).is_dir()


TINY = {
    "name": "tiny",
    "seeds": 2,
    "n_factuals": 20,
    "datasets": [{"name": "synthetic-gaussians", "params": {"n_samples": 300}}],
    "models": [{"name": "logreg", "params": {"epochs": 100}}],
    "methods": [{"name": "wachter", "params": {"n_rounds": 6, "steps": 50}}],
    "shifts": [{"name": "retrain-seed", "params": {"n_models": 3}}],
}


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
