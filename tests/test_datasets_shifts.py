"""Datasets with a natural-shift future split: student (geospatial) and SBA (temporal)."""

from __future__ import annotations

import gzip
import io
import re
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from recourse_bench import registry
from recourse_bench.api import DataError
from recourse_bench.datasets import _files, sba, student  # importing the modules registers them
from recourse_bench.datasets._encoding import TabularEncoder

RAW = Path(__file__).resolve().parents[2] / "shared" / "data" / "raw"
pytestmark = pytest.mark.skipif(
    not RAW.is_dir(), reason=f"reference data folder {RAW} is absent (needs ../shared/data/raw)"
)

NAMES = ("student", "sba")
# the raw columns documented as immutable, and those that may only increase
IMMUTABLE = {
    "student": {
        "sex",
        "address",
        "famsize",
        "Pstatus",
        "Medu",
        "Fedu",
        "Mjob",
        "Fjob",
        "reason",
        "guardian",
        "traveltime",
        "failures",
        "nursery",
    },
    "sba": {"New", "Franchise", "RealEstate", "UrbanRural", "Subsector"},
}
INCREASE_ONLY = {"student": {"age"}, "sba": set()}
# a raw column whose share of a value moves with the shift: (column, value, base, future)
SHIFTED = {"student": ("address", "U", 0.816, 0.696), "sba": ("RevLineCr", "Y", 0.232, 0.351)}


@pytest.fixture(autouse=True)
def data_folder(monkeypatch):
    monkeypatch.setenv("RECOURSE_BENCH_DATA", str(RAW))


@pytest.fixture
def empty_folders(tmp_path, monkeypatch):
    """No data folder and an empty cache, with no frame cached in this process."""
    for name in ("data", "cache"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv("RECOURSE_BENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("RECOURSE_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("recourse_bench.datasets._tabular._FRAMES", {})
    return tmp_path


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _dataset(name: str):
    return registry.get("dataset", name)()


@pytest.mark.parametrize("name", NAMES)
def test_base_and_future_counts_match_info(name):
    dataset = _dataset(name)
    info = dataset.info
    features, target = dataset.read_frame()
    future, future_target = dataset.read_future()
    assert (len(features), int(target.sum())) == (info.rows, info.favourable)
    assert (len(future), int(future_target.sum())) == (info.future_rows, info.future_favourable)
    assert list(future.columns) == list(features.columns) == [c.name for c in dataset.columns()]
    assert not features.isna().any().any() and not future.isna().any().any()
    assert info.future and info.future in info.summary


def test_documented_counts():
    assert (student.Student.info.rows, student.Student.info.favourable) == (423, 391)
    assert (student.Student.info.future_rows, student.Student.info.future_favourable) == (649, 549)
    assert student.Student.info.future == "geospatial: GP -> GP + MS"
    assert (sba.SBA.info.rows, sba.SBA.info.favourable) == (1159, 973)
    assert (sba.SBA.info.future_rows, sba.SBA.info.future_favourable) == (2102, 1416)
    assert sba.SBA.info.future == "temporal: before 2006 -> all years"


@pytest.mark.parametrize("name", NAMES)
def test_future_split_is_in_model_space(name):
    dataset = _dataset(name)
    splits = dataset.load(0)
    assert splits.has_future
    X_future, y_future = splits.future_split()
    assert X_future.dtype == np.float32 and splits.X_train.dtype == np.float32
    assert X_future.shape == (dataset.info.future_rows, splits.X_train.shape[1])
    assert np.isfinite(X_future).all()
    assert X_future.min() >= 0 and X_future.max() <= 1
    assert set(np.unique(y_future)) == {0, 1}
    assert int(y_future.sum()) == dataset.info.future_favourable
    for group in splits.schema.groups:
        np.testing.assert_array_equal(X_future[:, list(group)].sum(axis=1), 1.0)
    assert len(splits.X_train) + len(splits.X_test) == dataset.info.rows


@pytest.mark.parametrize("name", NAMES)
def test_future_is_encoded_with_training_statistics(name):
    dataset = _dataset(name)
    seed = 3
    splits = dataset.load(seed)
    features, target = dataset.read_frame()
    train, _, _, _ = train_test_split(
        features, target, test_size=dataset.test_size, random_state=seed, stratify=target
    )
    encoder = splits.encoder
    np.testing.assert_array_equal(encoder.transform(train), splits.X_train)
    numeric = [c.name for c in dataset.columns() if c.kind in ("integer", "continuous")]
    assert encoder.min_ == {n: float(train[n].min()) for n in numeric}
    assert encoder.max_ == {n: float(train[n].max()) for n in numeric}
    future, _ = dataset.read_future()
    np.testing.assert_array_equal(encoder.transform(future), splits.future_split()[0])
    # the future split plays no part in the statistics: fitting on train alone gives them
    alone = TabularEncoder(dataset.columns()).fit(train)
    np.testing.assert_array_equal(alone.transform(future), splits.future_split()[0])


@pytest.mark.parametrize("name", NAMES)
def test_loading_is_deterministic_per_seed(name):
    dataset = _dataset(name)
    first, again, other = dataset.load(1), dataset.load(1), dataset.load(2)
    for part in ("X_train", "y_train", "X_test", "y_test"):
        np.testing.assert_array_equal(getattr(first, part), getattr(again, part))
    np.testing.assert_array_equal(first.future_split()[0], again.future_split()[0])
    np.testing.assert_array_equal(first.future_split()[1], again.future_split()[1])
    assert not np.array_equal(first.X_train, other.X_train)


@pytest.mark.parametrize("name", NAMES)
def test_the_shift_is_real(name):
    dataset = _dataset(name)
    features, target = dataset.read_frame()
    future, future_target = dataset.read_future()
    assert future_target.mean() < target.mean() - 0.05  # fewer favourable outcomes
    column, value, base_share, future_share = SHIFTED[name]
    assert (features[column] == value).mean() == pytest.approx(base_share, abs=1e-3)
    assert (future[column] == value).mean() == pytest.approx(future_share, abs=1e-3)


def test_student_base_is_school_gp_and_grades_are_dropped():
    frame, _ = student.Student().read_frame()
    assert not {"school", "G1", "G2", "G3"} & set(frame.columns)
    raw = gzip.decompress((RAW / "student-por.csv.gz").read_bytes()).decode()
    assert raw.count('\n"GP";') == 423 and raw.count('\n"MS";') == 226


def test_sba_drops_identifiers_dates_and_outcome_columns():
    frame, _ = sba.SBA().read_frame()
    dropped = {
        "LoanNr_ChkDgt",
        "Name",
        "Zip",
        "Bank",
        "ApprovalFY",
        "ApprovalDate",
        "ChgOffDate",
        "ChgOffPrinGr",
        "MIS_Status",
        "Default",
        "Selected",
        "daysterm",
        "xx",
        "Recession",
    }
    assert not dropped & set(frame.columns)
    assert set(frame["RevLineCr"]) == set(frame["LowDoc"]) == {"N", "Y"}


@pytest.mark.parametrize("name", NAMES)
def test_immutables_and_directions_are_as_documented(name):
    schema = _dataset(name).load(0).schema
    raw = [f.split("=")[0] for f in schema.features]
    immutable = {f for f, fixed in zip(raw, schema.immutable, strict=True) if fixed}
    assert immutable == IMMUTABLE[name]
    increase = {f for f, d in zip(raw, schema.direction, strict=True) if d == 1}
    assert increase == INCREASE_ONLY[name]
    assert -1 not in schema.direction
    mutable = set(raw) - immutable
    assert mutable  # something is actionable
    assert ("studytime" in mutable) if name == "student" else ("Term" in mutable)


def test_model_space_widths():
    assert _dataset("student").load(0).schema.n_features == 42
    assert _dataset("sba").load(0).schema.n_features == 18


def test_missing_sba_file_says_where_to_get_it(empty_folders):
    with pytest.raises(DataError, match=re.escape("SBAcase.11.13.17.csv not found")) as err:
        _dataset("sba").load(0)
    assert "Li, Mickel and Taylor (2018)" in str(err.value)


def test_missing_student_file_is_named(empty_folders, monkeypatch):
    # without a download address (offline), the error names the file and where it was looked for
    monkeypatch.setattr(student, "STUDENT_POR", replace(student.STUDENT_POR, url=None))
    with pytest.raises(DataError, match=re.escape("student-por.csv not found")):
        _dataset("student").load(0)


def test_failed_student_download_raises_and_saves_nothing(empty_folders, monkeypatch, serve):
    url = serve.url("/student+performance.zip")  # answers 404
    monkeypatch.setattr(student, "STUDENT_POR", replace(student.STUDENT_POR, url=url))
    with pytest.raises(DataError, match=r"download of .*student\+performance\.zip failed"):
        _dataset("student").load(0)
    assert not any((empty_folders / "cache").iterdir())


def test_student_download_reads_the_nested_zip(empty_folders, monkeypatch, serve):
    content = gzip.decompress((RAW / "student-por.csv.gz").read_bytes())
    inner = _zip({"student-mat.csv": b"other course", "student-por.csv": content})
    outer = _zip({"README.txt": b"Student Performance", "student.zip": inner})
    url = serve.add("/static/public/320/student+performance.zip", outer)
    file = replace(student.STUDENT_POR, url=url)

    path = _files.fetch(file)
    assert path == empty_folders / "cache" / "student-por.csv"
    assert path.read_bytes() == content
    assert _files.status(file) == ("ok", path)
    assert _files.read(file, download=False) == content
    assert sorted(p.name for p in path.parent.iterdir()) == ["student-por.csv"]

    # end to end: a fresh cache, the loader downloads and loads the same counts
    monkeypatch.setenv("RECOURSE_BENCH_CACHE", str(empty_folders / "cache2"))
    monkeypatch.setattr(student, "STUDENT_POR", file)
    splits = _dataset("student").load(0)
    assert len(splits.X_train) + len(splits.X_test) == student.Student.info.rows
    assert (empty_folders / "cache2" / "student-por.csv").is_file()
