"""Shared settings of the timing suites."""

import numpy as np
import pytest
import torch

from recourse_bench import registry

N_RESAMPLES = 10


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The harness runs torch on one thread per worker; time it the same way."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def adult_resamples():
    """Adult's training split (float64) and ``N_RESAMPLES`` bootstrap resamples of it."""
    splits = registry.get("dataset", "adult")().load(0)
    X, y = splits.X_train.astype(np.float64), splits.y_train
    rng = np.random.default_rng(0)
    rows = [rng.integers(0, len(X), len(X)) for _ in range(N_RESAMPLES)]
    return X, y, [(X[r], y[r]) for r in rows]
