"""The COMPAS, HELOC, Give Me Some Credit and Taiwan loaders, on the shared reference files."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

import recourse_bench.datasets.compas
import recourse_bench.datasets.gmsc
import recourse_bench.datasets.heloc
import recourse_bench.datasets.taiwan
from recourse_bench import registry
from recourse_bench.api import DataError
from recourse_bench.datasets import _files, _tabular

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "raw"
pytestmark = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"the reference data folder {DATA} is absent (no raw files)"
)

NAMES = ("compas", "heloc", "gmsc", "taiwan")
MODULES = {
    "compas": recourse_bench.datasets.compas,
    "heloc": recourse_bench.datasets.heloc,
    "gmsc": recourse_bench.datasets.gmsc,
    "taiwan": recourse_bench.datasets.taiwan,
}
FILES = {
    "compas": recourse_bench.datasets.compas.COMPAS_FILE,
    "heloc": recourse_bench.datasets.heloc.HELOC_FILE,
    "gmsc": recourse_bench.datasets.gmsc.GMSC_FILE,
    "taiwan": recourse_bench.datasets.taiwan.TAIWAN_FILE,
}
N_FEATURES = {"compas": 9, "heloc": 21, "gmsc": 10, "taiwan": 28}
IMMUTABLE = {
    "compas": {"sex", "race", "juv_fel_count", "juv_misd_count", "juv_other_count"},
    "heloc": {"ExternalRiskEstimate"},
    "gmsc": set(),
    "taiwan": {"SEX", "MARRIAGE"},
}
INCREASE_ONLY = {
    "compas": {"age"},
    "heloc": {"NumTrades60Ever2DerogPubRec", "NumTrades90Ever2DerogPubRec"},
    "gmsc": {"age"},
    "taiwan": {"AGE"},
}
OBTAIN = {
    "heloc": "community.fico.com",
    "gmsc": "kaggle.com/c/GiveMeSomeCredit",
    "taiwan": "default-of-credit-card-clients-dataset",
}


@pytest.fixture(autouse=True)
def data_folder(monkeypatch):
    monkeypatch.setenv("RECOURSE_BENCH_DATA", str(DATA))


@pytest.fixture(scope="module")
def frames():
    """Each file parsed once (``read_frame`` directly), also serving ``load`` in this module."""
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECOURSE_BENCH_DATA", str(DATA))
        for name in NAMES:
            cls = registry.get("dataset", name)
            out[name] = cls().read_frame()
            mp.setitem(_tabular._FRAMES, (cls.__name__, "base"), out[name])
        yield out


@pytest.fixture(scope="module")
def splits(frames):
    return {name: registry.get("dataset", name)().load(0) for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_rows_and_favourable_match_info(frames, name):
    dataset = registry.get("dataset", name)()
    features, target = frames[name]
    assert list(features.columns) == [c.name for c in dataset.columns()]
    assert len(features) == len(target) == dataset.info.rows
    assert int(target.sum()) == dataset.info.favourable
    assert set(np.unique(target)) == {0, 1}
    assert np.issubdtype(target.dtype, np.integer)
    assert not features.isna().any().any()


@pytest.mark.parametrize("name", NAMES)
def test_splits_are_float32_finite_scaled_and_complete(frames, splits, name):
    s = splits[name]
    rows = registry.get("dataset", name).info.rows
    assert len(s.X_train) + len(s.X_test) == rows
    assert len(s.y_train) + len(s.y_test) == rows
    assert len(s.X_test) == pytest.approx(0.3 * rows, abs=1)
    assert s.schema.n_features == N_FEATURES[name]
    for X in (s.X_train, s.X_test):
        assert X.dtype == np.float32
        assert np.isfinite(X).all()
        assert X.min() >= 0 and X.max() <= 1
    for y in (s.y_train, s.y_test):
        assert set(np.unique(y)) <= {0, 1}
    share = frames[name][1].mean()
    assert s.y_train.mean() == pytest.approx(share, abs=1e-3)  # stratified
    for group in s.schema.groups:
        np.testing.assert_array_equal(s.X_train[:, list(group)].sum(axis=1), 1.0)


@pytest.mark.parametrize("name", NAMES)
def test_load_depends_on_the_seed_only(frames, name):
    dataset = registry.get("dataset", name)()
    first, again, other = dataset.load(1), dataset.load(1), dataset.load(2)
    np.testing.assert_array_equal(first.X_train, again.X_train)
    np.testing.assert_array_equal(first.y_test, again.y_test)
    assert not np.array_equal(first.X_train, other.X_train)


@pytest.mark.parametrize("name", NAMES)
def test_inverse_transform_gives_the_raw_rows_back(frames, splits, name):
    dataset = registry.get("dataset", name)()
    features, target = frames[name]
    train, _, _, _ = train_test_split(
        features, target, test_size=dataset.test_size, random_state=0, stratify=target
    )
    s = splits[name]
    rows = [0, 1, 2, 3, 4, len(train) // 2, len(train) - 1]
    back = s.encoder.inverse_transform(s.X_train[rows])
    expected = train.iloc[rows].reset_index(drop=True)
    for col in dataset.columns():
        if col.kind in ("integer", "continuous"):
            span = s.encoder.span(col.name)
            np.testing.assert_allclose(
                back[col.name].to_numpy(dtype=float),
                expected[col.name].to_numpy(dtype=float),
                atol=1e-6 * span,
                err_msg=col.name,
            )
        else:
            assert list(back[col.name]) == list(expected[col.name]), col.name


@pytest.mark.parametrize("name", NAMES)
def test_immutables_and_directions_are_as_documented(splits, name):
    schema = splits[name].schema
    immutable = {
        f.split("=")[0] for f, i in zip(schema.features, schema.immutable, strict=True) if i
    }
    assert immutable == IMMUTABLE[name]
    increase = {f for f, d in zip(schema.features, schema.direction, strict=True) if d == 1}
    assert increase == INCREASE_ONLY[name]
    assert -1 not in schema.direction


def test_compas_filter_and_features(frames):
    features, _ = frames["compas"]
    assert set(features["race"]) == {"African-American", "Other"}
    assert (features["race"] == "African-American").sum() == 3175
    assert set(features["c_charge_degree"]) == {"F", "M"}
    assert features["length_of_stay"].between(0, 800).all()
    assert features["age"].min() >= 18


def test_heloc_has_no_special_values_left(frames):
    features, _ = frames["heloc"]
    assert (features >= 0).all().all()
    assert not set(recourse_bench.datasets.heloc.DROPPED) & set(features.columns)


def test_gmsc_caps_and_codes(frames):
    features, _ = frames["gmsc"]
    for name, cap in recourse_bench.datasets.gmsc.CAPS.items():
        assert features[name].between(0, cap).all(), name
    assert (features[list(recourse_bench.datasets.gmsc.PAST_DUE)] < 96).all().all()
    assert features["MonthlyIncome"].min() > 1
    assert features["age"].min() >= 18


def test_taiwan_undefined_codes_become_others(frames):
    features, _ = frames["taiwan"]
    assert features["EDUCATION"].value_counts()["others"] == 123 + 345  # 4, plus 0, 5 and 6
    assert features["MARRIAGE"].value_counts()["others"] == 323 + 54  # 3, plus 0
    assert features["PAY_0"].between(-2, 8).all()
    assert pd.api.types.is_integer_dtype(features["BILL_AMT1"])


@pytest.mark.parametrize("name", NAMES)
def test_missing_file_names_it_and_where_to_get_it(monkeypatch, tmp_path, name):
    empty, cache = tmp_path / "data", tmp_path / "cache"
    empty.mkdir()
    cache.mkdir()
    monkeypatch.setenv("RECOURSE_BENCH_DATA", str(empty))
    monkeypatch.setenv("RECOURSE_BENCH_CACHE", str(cache))
    monkeypatch.setattr("recourse_bench.datasets._tabular._FRAMES", {})

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    file = FILES[name]
    with pytest.raises(DataError, match=file.name.replace(".", r"\.")) as caught:
        registry.get("dataset", name)().load(0)
    if name == "compas":  # public origin: a download is tried and its failure explained
        assert "no network in tests" in str(caught.value)
        assert not list(cache.iterdir())  # nothing half-written
        with pytest.raises(DataError, match="recourse-bench data fetch"):
            _files.read(file, download=False)
    else:
        assert file.url is None
        assert OBTAIN[name] in str(caught.value)
        assert "RECOURSE_BENCH_DATA" in str(caught.value)


def test_the_four_are_registered_under_their_names():
    for name, module in MODULES.items():
        cls = registry.get("dataset", name)
        assert cls.__module__ == module.__name__
        assert cls.info.citation and cls.info.licence and cls.info.source
