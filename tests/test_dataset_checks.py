"""Checks every built-in dataset must pass (the file-based ones read the reference data folder)."""

import numpy as np
import pytest

from recourse_bench import registry
from recourse_bench.datasets._catalogue import builtin_datasets, catalogue_markdown

from .conftest import ROOT, data_available

DATASETS = builtin_datasets()
DOCUMENTED = [n for n in DATASETS if getattr(registry.get("dataset", n), "info", None) is not None]


def _load(name, seed=0):
    dataset = registry.get("dataset", name)()
    if getattr(dataset, "files", ()) and not data_available():
        if not all(file.embedded for file in dataset.files):
            pytest.skip("no data folder: set RECOURSE_BENCH_DATA to the reference files")
    return dataset, dataset.load(seed)


@pytest.fixture(scope="module", params=DATASETS)
def loaded(request):
    dataset, splits = _load(request.param)
    return request.param, dataset, splits


def test_features_are_finite_float32_in_the_unit_box(loaded):
    _, _, splits = loaded
    future = splits.future_split()
    parts = [splits.X_train, splits.X_test] + ([future[0]] if future else [])
    for X in parts:
        assert X.dtype == np.float32
        assert X.ndim == 2 and X.shape[1] == splits.schema.n_features
        assert np.isfinite(X).all()
        assert X.min() >= 0.0 and X.max() <= 1.0
    labels = [splits.y_train, splits.y_test] + ([future[1]] if future else [])
    for y in labels:
        assert set(np.unique(y)) <= {0, 1}
    assert set(np.unique(splits.y_train)) == {0, 1}


def test_scaling_is_fitted_on_the_training_split(loaded):
    _, _, splits = loaded
    numeric = [i for i, k in enumerate(splits.schema.kinds) if k in ("continuous", "integer")]
    for i in numeric:
        column = splits.X_train[:, i]
        if np.ptp(column) > 0:
            assert column.min() == 0.0 and column.max() == pytest.approx(1.0)


def test_schema_matches_the_columns(loaded):
    _, _, splits = loaded
    schema, X = splits.schema, splits.X_train
    assert len(set(schema.features)) == schema.n_features
    for group in schema.groups:
        np.testing.assert_array_equal(X[:, list(group)].sum(axis=1), 1.0)
        assert all(schema.kinds[i] == "categorical" for i in group)
    binary = [i for i, k in enumerate(schema.kinds) if k == "binary"]
    assert np.isin(X[:, binary], (0.0, 1.0)).all()
    raw = splits.encoder.inverse_transform(X[:50])
    np.testing.assert_allclose(splits.encoder.transform(raw), X[:50], atol=1e-6)


def test_loading_is_deterministic_for_a_seed(loaded):
    name, _, splits = loaded
    _, again = _load(name, 0)
    np.testing.assert_array_equal(splits.X_train, again.X_train)
    np.testing.assert_array_equal(splits.y_test, again.y_test)
    _, other = _load(name, 1)
    assert not np.array_equal(splits.X_train, other.X_train)


@pytest.mark.parametrize("name", DOCUMENTED)
def test_documented_counts_hold(name):
    dataset, splits = _load(name)
    info = dataset.info
    features, target = dataset.frame("base")
    assert (len(features), int(target.sum())) == (info.rows, info.favourable)
    assert len(splits.X_train) + len(splits.X_test) == info.rows
    if info.future_rows is not None:
        X_future, y_future = splits.future_split()
        assert (len(X_future), int(y_future.sum())) == (info.future_rows, info.future_favourable)
    assert splits.has_future == bool(info.future)


def test_the_catalogue_page_is_up_to_date():
    page = (ROOT / "docs" / "datasets.md").read_text(encoding="utf-8")
    assert page == catalogue_markdown(), (
        "docs/datasets.md is stale: python -m recourse_bench.datasets._catalogue > docs/datasets.md"
    )
