"""Shared settings of the timing suites."""

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The harness runs torch on one thread per worker; time it the same way."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
