"""Where a run came from: package versions, git revision and machine (stored with the results)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

PACKAGES = ("recourse-bench", "numpy", "pandas", "scikit-learn", "torch", "joblib", "pyarrow")


def package_versions() -> dict[str, str]:
    """Installed versions of recourse-bench and its main dependencies."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_revision(path: Path | None = None) -> str | None:
    """The git commit of the source tree recourse-bench runs from, if it is a checkout."""
    where = path or Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment() -> dict[str, Any]:
    """Versions, git revision and machine description."""
    return {
        "versions": package_versions(),
        "git_revision": git_revision(),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "processor": platform.machine(),
            "cpu_count": os.cpu_count(),
        },
    }
