"""recourse-bench: benchmark the robustness of algorithmic recourse to model updates and shifts."""

from importlib.metadata import PackageNotFoundError, version

from .api import (
    Classifier,
    ConfigError,
    Dataset,
    MethodTags,
    NotFittedError,
    RecourseMethod,
    Schema,
    Shift,
    Splits,
    Trainer,
)
from .config import load_config, plan
from .harness import run_benchmark
from .registry import available, get, register

try:
    __version__ = version("recourse-bench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "Classifier",
    "ConfigError",
    "Dataset",
    "MethodTags",
    "NotFittedError",
    "RecourseMethod",
    "Schema",
    "Shift",
    "Splits",
    "Trainer",
    "__version__",
    "available",
    "get",
    "load_config",
    "plan",
    "register",
    "run_benchmark",
]
