"""Checks every built-in dataset must pass (the file-based ones read the reference data folder)."""

import numpy as np
import pytest

from recourse_bench import registry
from recourse_bench.datasets._catalogue import builtin_datasets, catalogue_markdown
from recourse_bench.testing import check_component

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


def test_every_dataset_passes_the_dataset_kit(loaded):
    """The generic checks (unit box, schema, scaling, determinism, pickling, future split)."""
    _, dataset, _ = loaded
    check_component(dataset)


def test_features_are_float32_and_the_encoder_round_trips(loaded):
    _, _, splits = loaded
    future = splits.future_split()
    for X in [splits.X_train, splits.X_test] + ([future[0]] if future else []):
        assert X.dtype == np.float32
    raw = splits.encoder.inverse_transform(splits.X_train[:50])
    np.testing.assert_allclose(splits.encoder.transform(raw), splits.X_train[:50], atol=1e-6)


def test_another_seed_gives_another_split(loaded):
    name, _, splits = loaded
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
