"""The batched search blocks of ``methods/_search.py``: projections and the Adam loop."""

import numpy as np
import pytest
import torch

from recourse_bench.methods._search import (
    FeasibleSet,
    _simplex_blocks,
    adam_search,
    project_simplex,
)

from .conftest import continuous_schema


def sorted_projection(V: torch.Tensor) -> torch.Tensor:
    """Reference: the textbook sort / support-size / gather projection onto the simplex."""
    k = V.shape[-1]
    u, _ = torch.sort(V, dim=-1, descending=True)
    cumulative = u.cumsum(dim=-1) - 1.0
    support = u - cumulative / torch.arange(1, k + 1, dtype=V.dtype) > 0
    rho = support.sum(dim=-1, keepdim=True) - 1
    theta = cumulative.gather(-1, rho) / (rho + 1).to(V.dtype)
    return torch.clamp(V - theta, min=0.0)


@pytest.mark.parametrize("width", [1, 2, 5, 14])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_projection_matches_the_sort_and_gather_reference(width, dtype):
    generator = torch.Generator().manual_seed(width)
    V = torch.randn(500, 3, width, generator=generator, dtype=dtype) * 2
    V[:50] = V[:50].round()  # ties
    V[50:100] = (V[50:100] > 0.5).to(dtype) + 1e-3 * V[50:100]  # near one-hot
    got, want = project_simplex(V), sorted_projection(V)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert (got - want).abs().max() <= tol
    assert (got >= 0).all()
    assert (got.sum(-1) - 1).abs().max() <= 10 * tol


def test_groups_are_split_into_contiguous_blocks_and_scattered_ones():
    groups = [[0, 1, 2], [3, 4, 5], [6, 7], [9, 10], [11, 13], [15, 16, 17]]
    blocks, scattered = _simplex_blocks(groups)
    assert blocks == [(0, 2, 3), (6, 1, 2), (9, 1, 2), (15, 1, 3)]
    assert scattered == [[11, 13]]


def test_feasible_projection_matches_a_group_by_group_reference():
    groups = ((0, 1, 2), (3, 4, 5), (6, 7), (9, 10), (11, 13), (15, 16, 17))
    X = np.zeros((200, 18))
    feasible = FeasibleSet(continuous_schema(18, groups), X)
    Z = torch.randn(200, 18, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    want = Z.clone()
    for g in groups:
        want[:, list(g)] = sorted_projection(want[:, list(g)])
    want = want.clamp(0, 1)
    feasible.project_(Z)
    assert torch.allclose(Z, want, atol=1e-12)


def test_stopped_rows_stay_where_they_stopped():
    X = np.full((6, 3), 0.2)
    feasible = FeasibleSet(continuous_schema(3), X)

    def objective(z):
        return ((z - 0.8) ** 2).sum(dim=1)

    def finished(z):
        return torch.arange(len(z)) < 3  # the first three rows are done at the first check

    z = adam_search(torch.as_tensor(X), objective, feasible, steps=40, lr=0.05, finished=finished)
    assert (z[:3] == 0.2).all()
    assert (z[3:] > 0.5).all()
