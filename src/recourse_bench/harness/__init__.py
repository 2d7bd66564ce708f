"""The harness: cached stages and the parallel runner."""

from .runner import RunResult, run_benchmark
from .stages import Stages

__all__ = ["RunResult", "Stages", "run_benchmark"]
