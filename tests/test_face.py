"""FACE: hand-computed shortest paths, a Floyd-Warshall oracle, a hand KDE weight and the kit."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from recourse_bench.api import ConfigError, Schema, Splits
from recourse_bench.methods.face import FACE
from recourse_bench.models import linear_classifier
from recourse_bench.testing import parametrize_with_checks, toy_problem, toy_splits

# ------------------------------------------------------------------------ a graph by hand
#: Six training points in the plane; the model accepts a >= 0.7, i.e. G and D.
POINTS = {
    "A": (0.0, 0.0),
    "B": (0.3, 0.0),
    "C": (0.6, 0.0),
    "D": (0.9, 0.0),
    "E": (0.0, 0.4),
    "G": (0.75, 0.25),
}
FACTUAL = np.array([[0.05, 0.05]])


def plane(direction_b: int = 0) -> Splits:
    schema = Schema(
        features=("a", "b"),
        kinds=("continuous", "continuous"),
        immutable=(False, False),
        direction=(0, direction_b),
        lower=(0.0, 0.0),
        upper=(1.0, 1.0),
        steps=(0.0, 0.0),
    )
    X = np.array(list(POINTS.values()))
    y = np.array([0, 0, 0, 1, 0, 1])
    return Splits(X, y, FACTUAL.copy(), np.array([0]), schema)


def step_model():
    """Accepts a >= 0.7 (log-odds 20 a - 14)."""
    return linear_classifier(np.array([20.0, 0.0]), -14.0)


def hand_face(**params) -> FACE:
    defaults = dict(mode="epsilon", epsilon=0.35, max_neighbors=None, t_density=0.0)
    return FACE(max_nodes=None, **{**defaults, **params})


def test_the_path_is_the_hand_computed_dijkstra():
    # Edges (length <= 0.35): x-A 0.0707, x-B 0.2550, A-B, B-C, C-D 0.3, C-G 0.2915, G-D 0.2915
    # (E is 0.3536 from x and 0.4 from A: isolated). Paths to a target (G or D):
    #   x B C G = 0.2550 + 0.3 + 0.2915 = 0.8465   <- shortest
    #   x B C D = 0.2550 + 0.3 + 0.3    = 0.8550
    #   x A B C G = 0.0707 + 0.3 + 0.3 + 0.2915 = 0.9622
    face = hand_face().fit(step_model(), plane())
    (path,) = face.paths(FACTUAL)
    expected = np.array([FACTUAL[0], POINTS["B"], POINTS["C"], POINTS["G"]])
    np.testing.assert_array_equal(path, expected)
    np.testing.assert_array_equal(face.generate(FACTUAL), [POINTS["G"]])
    cost = math.hypot(0.25, 0.05) + 0.3 + math.hypot(0.15, 0.25)
    first = np.flatnonzero((face.nodes_ == POINTS["B"]).all(axis=1))[0]
    assert face.cost_[first] + math.hypot(0.25, 0.05) == pytest.approx(cost)


def test_a_direction_removes_the_edges_against_it():
    # b may only decrease: C -> G (b 0 -> 0.25) is gone, so the path ends at D instead
    face = hand_face().fit(step_model(), plane(direction_b=-1))
    (path,) = face.paths(FACTUAL)
    expected = np.array([FACTUAL[0], POINTS["B"], POINTS["C"], POINTS["D"]])
    np.testing.assert_array_equal(path, expected)


def test_no_path_gives_nan():
    # with a radius of 0.2 the factual's only neighbour is A, a dead end
    face = hand_face(epsilon=0.2).fit(step_model(), plane())
    assert np.isnan(face.generate(FACTUAL)).all()
    assert face.paths(FACTUAL) == [None]


def test_one_kde_edge_weight_by_hand():
    # three points, bandwidth 0.5 (2 h^2 = 0.5); every point is accepted, so every edge stays
    X = np.array([[0.0, 0.0], [0.2, 0.0], [0.2, 0.2]])
    schema = plane().schema
    splits = Splits(X, np.array([0, 1, 1]), X[:1], np.array([0]), schema)
    accept_all = linear_classifier(np.zeros(2), 5.0)
    face = FACE(mode="kde", bandwidth=0.5, epsilon=1.0, max_neighbors=None, t_density=0.0)
    face.fit(accept_all, splits)
    # edge (0, 0) -> (0.2, 0): midpoint (0.1, 0) at squared distances 0.01, 0.01, 0.05
    share = (math.exp(-0.01 / 0.5) * 2 + math.exp(-0.05 / 0.5)) / 3  # 0.955078...
    expected = -math.log(share) * 0.2  # -log(0.955078) * 0.2 = 0.045962 * 0.2
    assert expected == pytest.approx(0.0091924, abs=1e-7)
    i = np.flatnonzero((face.nodes_ == [0.0, 0.0]).all(axis=1))[0]
    j = np.flatnonzero((face.nodes_ == [0.2, 0.0]).all(axis=1))[0]
    assert face.graph_[i, j] == pytest.approx(expected, rel=1e-9)


# ----------------------------------------------------------- Floyd-Warshall, brute force
def brute_force(face: FACE, splits: Splits, model, factuals: np.ndarray) -> np.ndarray:
    """The recourse of every factual by the definition, with loops and Floyd-Warshall."""
    schema = splits.schema
    nodes, counts = np.unique(splits.X_train, axis=0, return_counts=True)
    m, d = nodes.shape
    n_rows = counts.sum()
    frozen = ~schema.mutable_mask
    direction = np.asarray(schema.direction)
    eps, k, cap, h = face.epsilon, face.n_neighbors, face.max_neighbors, face.bandwidth

    def allowed(a, b):
        return (
            np.array_equal(a[frozen], b[frozen])
            and (b[direction > 0] >= a[direction > 0]).all()
            and (b[direction < 0] <= a[direction < 0]).all()
        )

    def out_edges(a, own=None):
        near = sorted(
            (float(np.linalg.norm(a - nodes[j])), j)
            for j in range(m)
            if j != own and allowed(a, nodes[j])
        )
        if face.mode == "knn":
            return near[:k]
        near = [(r, j) for r, j in near if r <= eps]
        return near[:cap] if cap is not None else near

    def share(p):  # the KDE relative to its peak
        return (
            sum(
                c * math.exp(-float(((p - q) ** 2).sum()) / (2 * h * h))
                for q, c in zip(nodes, counts, strict=True)
            )
            / n_rows
        )

    training_edges = [(i, j, r) for i in range(m) for r, j in out_edges(nodes[i], own=i)]
    r_min = min(r for _, _, r in training_edges if r > 0)

    def weight(a, b, r):
        if face.mode == "epsilon":
            return r
        if face.mode == "knn":
            return r * max(0.0, d * math.log(r / r_min)) if r > 0 else 0.0
        return r * max(0.0, -math.log(share((a + b) / 2)))

    # targets: accepted with probability >= t_prediction and density >= its quantile
    if face.mode == "kde":
        density = np.array([math.log(share(p)) for p in nodes])
    elif face.mode == "knn":
        density = np.array(
            [-d * math.log(np.sort(np.linalg.norm(nodes - p, axis=1))[k]) for p in nodes]
        )
    else:
        density = np.array(
            [math.log(counts[np.linalg.norm(nodes - p, axis=1) <= eps].sum()) for p in nodes]
        )
    proba = model.predict_proba(nodes)[:, 1]
    targets = (proba >= 0.5) & (proba >= face.t_prediction)
    targets &= density >= np.quantile(density, face.t_density)

    out = np.full_like(factuals, np.nan)
    for row, x in enumerate(factuals):
        D = np.full((m + 1, m + 1), np.inf)  # node m is the factual (out-edges only)
        np.fill_diagonal(D, 0.0)
        for i, j, r in training_edges:
            D[i, j] = weight(nodes[i], nodes[j], r)
        for r, j in out_edges(x):
            D[m, j] = weight(x, nodes[j], r)
        for via in range(m + 1):  # Floyd-Warshall
            D = np.minimum(D, D[:, via, None] + D[None, via, :])
        cost = np.where(targets, D[m, :m], np.inf)
        if np.isfinite(cost).any():
            out[row] = nodes[np.argmin(cost)]
    return out


@pytest.mark.parametrize(
    "params",
    [
        dict(mode="epsilon", epsilon=0.9, max_neighbors=None, t_density=0.2),
        dict(mode="epsilon", epsilon=1.6, max_neighbors=4, t_density=0.0),
        dict(mode="knn", n_neighbors=4, t_density=0.2, t_prediction=0.7),
        dict(mode="kde", epsilon=1.6, max_neighbors=6, bandwidth=0.3, t_density=0.1),
    ],
    ids=["epsilon", "epsilon-capped", "knn", "kde"],
)
def test_recourses_equal_floyd_warshall_by_brute_force(params):
    splits = toy_splits(3, n=90)  # 60 training rows
    model = splits.oracle
    factuals = np.vstack([splits.X_test, splits.X_train[:5] + 0.01])
    face = FACE(max_nodes=None, **params).fit(model, splits)
    got = face.generate(factuals)
    expected = brute_force(face, splits, model, factuals)
    assert (~np.isnan(expected).any(axis=1)).sum() >= 5  # the oracle is not vacuous
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_every_step_of_a_path_keeps_the_constraints():
    problem = toy_problem(0, "logreg")
    face = FACE(mode="epsilon", epsilon=1.6, random_state=0).fit(problem.model, problem.splits)
    schema = problem.schema
    recourses = face.generate(problem.factuals)
    paths = face.paths(problem.factuals)
    assert sum(p is not None for p in paths) >= 25
    for x, cf, path in zip(problem.factuals, recourses, paths, strict=True):
        if path is None:
            assert np.isnan(cf).all()
            continue
        np.testing.assert_array_equal(path[0], x)
        np.testing.assert_array_equal(path[-1], cf)
        for a, b in itertools.pairwise(path):
            assert np.linalg.norm(a - b) <= 1.6 + 1e-12
            assert not schema.violations(b[None], a[None]).any()  # immutables, directions
    assert problem.model.predict(recourses[~np.isnan(recourses).any(axis=1)]).all()


def test_max_nodes_draws_a_seeded_sample():
    problem = toy_problem(0, "logreg")
    fit = lambda seed: FACE(max_nodes=100, random_state=seed).fit(  # noqa: E731
        problem.model, problem.splits
    )
    first, again, other = fit(0), fit(0), fit(1)
    assert len(first.nodes_) <= 100
    np.testing.assert_array_equal(first.nodes_, again.nodes_)
    assert not np.array_equal(first.nodes_, other.nodes_)
    out = first.generate(problem.factuals)
    found = out[~np.isnan(out).any(axis=1)]
    assert all((first.nodes_ == row).all(axis=1).any() for row in found)  # recourses are nodes


@pytest.mark.parametrize(
    "params", [dict(t_prediction=0.4), dict(mode="geodesic"), dict(bandwidth="silverman")]
)
def test_bad_parameters_are_refused(params):
    with pytest.raises(ConfigError):
        FACE(**params).validate_params()


@parametrize_with_checks(
    [FACE(), FACE(mode="knn"), FACE(mode="epsilon", epsilon=1.6, max_nodes=200)]
)
def test_face_passes_the_method_kit(method, check):
    check(method)
