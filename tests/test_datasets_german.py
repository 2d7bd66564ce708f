"""German credit and its correction (South German Credit): one schema, the future split, ROAR."""

import gzip
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linear_sum_assignment

import recourse_bench.datasets.german_corrected  # noqa: F401  (registers german-corrected)
from recourse_bench import registry
from recourse_bench.api import DataError
from recourse_bench.datasets import _files, german

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
RAW = SHARED / "raw"
ROAR = SHARED / "preprocessed" / "roar"
CODETABLE = SHARED / "docs" / "SouthGermanCredit_codetable.txt.gz"
FEATURES = german.RAW_COLUMNS[:-1]


@pytest.fixture(autouse=True)
def data_folder(request, monkeypatch):
    """The reference copies as the data folder (tests with their own folders set them)."""
    if "empty_folders" in request.fixturenames:
        return
    if not (RAW / "SouthGermanCredit.asc.gz").is_file():
        pytest.skip(f"reference data absent: {RAW}")
    monkeypatch.setenv(_files.DATA_ENV, str(RAW))


@pytest.fixture
def empty_folders(tmp_path, monkeypatch):
    data, cache = tmp_path / "data", tmp_path / "cache"
    data.mkdir()
    monkeypatch.setenv(_files.DATA_ENV, str(data))
    monkeypatch.setenv(_files.CACHE_ENV, str(cache))
    monkeypatch.setattr("recourse_bench.datasets._tabular._FRAMES", {})

    def offline(url, timeout):
        raise DataError(f"download of {url} failed (no network in tests)")

    monkeypatch.setattr(_files, "_download", offline)


def dataset(name):
    return registry.get("dataset", name)()


def frames():
    """(german, corrected) raw frames with the target as column credit_risk."""
    out = []
    for name in ("german", "german-corrected"):
        features, target = dataset(name).frame("base")
        out.append(features.assign(credit_risk=target))
    return tuple(out)


def read_roar(name):
    path = ROAR / f"{name}.csv.gz"
    if not path.is_file():
        pytest.skip(f"ROAR recoding absent: {path}")
    return pd.read_csv(path)


def counts(series):
    return series.value_counts().to_dict()


def corrected_codes(frame):
    """A frame in the shared labels -> the integer codes of the corrected file."""
    inverse = {
        name: {label: code for code, label in labels.items()}
        for name, labels in german.CORRECTED_CATEGORIES.items()
    }
    inverse["people_liable"] = {v: k for k, v in german.CORRECTED_INTEGERS["people_liable"].items()}
    out = frame.copy()
    for name, codes in inverse.items():
        out[name] = frame[name].map(codes)
    return out


@pytest.mark.parametrize("name", ["german", "german-corrected"])
def test_counts_equal_info(name):
    data = dataset(name)
    features, target = data.frame("base")
    assert (len(features), int(target.sum())) == (data.info.rows, data.info.favourable)
    assert (data.info.rows, data.info.favourable) == (1000, 700)
    assert list(features.columns) == list(FEATURES)


def test_german_future_split_is_the_corrected_file_in_model_space():
    info = dataset("german").info
    assert (info.future_rows, info.future_favourable) == (1000, 700)
    assert info.future == "correction: Hofmann coding -> corrected South German Credit"
    splits = dataset("german").load(3)
    assert splits.has_future
    X, y = splits.future_split()
    assert X.dtype == np.float32 and X.shape == (1000, splits.schema.n_features)
    assert np.isfinite(X).all() and X.min() >= 0.0 and X.max() <= 1.0
    assert (len(y), int(y.sum())) == (info.future_rows, info.future_favourable)
    for group in splits.schema.groups:
        np.testing.assert_array_equal(X[:, list(group)].sum(axis=1), 1.0)
    # the future rows are the corrected file, encoded with the german training statistics
    features, _ = dataset("german-corrected").frame("base")
    np.testing.assert_array_equal(X, splits.encoder.transform(features))


def test_both_datasets_share_one_model_space():
    a, b = dataset("german").load(0).schema, dataset("german-corrected").load(0).schema
    assert a.features == b.features
    assert (a.kinds, a.immutable, a.direction, a.groups) == (
        b.kinds,
        b.immutable,
        b.direction,
        b.groups,
    )
    immutable = {f.split("=")[0] for f, i in zip(b.features, b.immutable, strict=True) if i}
    assert immutable == {"personal_status_sex", "foreign_worker"}
    assert b.direction[b.features.index("age")] == 1
    assert "personal_status_sex=female non-single or male single" in b.features
    assert not any(f.split("=")[-1] == "male single" for f in b.features)


def test_every_corrected_value_maps_to_a_known_label():
    _, corrected = frames()
    assert not corrected.isna().any().any()
    for name, labels in german.CATEGORIES.items():
        assert set(corrected[name]) <= set(labels.values()), name
    # both codings are bijections onto the same labels
    for name, rows in german.CODES.items():
        assert len({h for h, _, _ in rows}) == len({c for _, c, _ in rows}) == len(rows)
        assert set(german.CATEGORIES[name].values()) == set(
            german.CORRECTED_CATEGORIES[name].values()
        )
    assert set(corrected["people_liable"]) == {1, 2}
    assert corrected["installment_rate"].between(1, 4).all()


def test_the_mapping_covers_the_corrected_code_table():
    if not CODETABLE.is_file():
        pytest.skip(f"code table absent: {CODETABLE}")
    text = gzip.decompress(CODETABLE.read_bytes()).decode("utf-8")
    table = {}
    for block in re.split(r"\$`", text)[1:]:
        head, _, body = block.partition("`")
        german_name, english = (s.strip() for s in head.split("="))
        table[english] = (german_name, {int(c) for c in re.findall(r"^\s*(\d+)\s*:", body, re.M)})
    assert [table[n][0] for n in german.RAW_COLUMNS] == german.CORRECTED_COLUMNS
    for name, codes in german.CORRECTED_CATEGORIES.items():
        assert set(codes) == table[name][1], name
    assert set(german.CORRECTED_INTEGERS["people_liable"]) == table["people_liable"][1]


def test_unknown_corrected_codes_are_refused():
    table = pd.DataFrame([[1] * 21], columns=german.RAW_COLUMNS)
    table["personal_status_sex"] = 5  # german.doc's "male single" reading of ROAR: no such code
    with pytest.raises(DataError, match="personal_status_sex"):
        german.decode_corrected(table)


def test_the_docstring_table_is_the_mapping():
    for rows in german.CODES.values():
        for hofmann, corrected, label in rows:
            assert f"{hofmann:<5}  {corrected!s:<4}  {label}" in german.__doc__


def test_category_counts_agree_between_the_files_but_for_one_housing_row():
    # the evidence for the code correspondence: Hofmann's A codes are the corrected codes in order
    original, corrected = frames()
    for name in german.CATEGORIES:
        if name != "housing":
            assert counts(original[name]) == counts(corrected[name]), name
    assert counts(original["housing"]) == {"rent": 713, "for free": 179, "own": 108}
    assert counts(corrected["housing"]) == {"rent": 714, "for free": 179, "own": 107}
    assert counts(original["credit_risk"]) == counts(corrected["credit_risk"]) == {1: 700, 0: 300}


def test_the_files_differ_in_53_rows():
    original, corrected = frames()
    a = Counter(original.itertuples(index=False, name=None))
    b = Counter(corrected.itertuples(index=False, name=None))
    only_a, only_b = np.array(list((a - b).elements())), np.array(list((b - a).elements()))
    assert len(only_a) == len(only_b) == 53  # 947 rows are identical
    distance = (only_a[:, None, :] != only_b[None, :, :]).sum(axis=2)
    rows, cols = linear_sum_assignment(distance)
    assert Counter(distance[rows, cols].tolist()) == {1: 50, 2: 3}
    changed = Counter(
        original.columns[k]
        for i, j in zip(rows, cols, strict=True)
        for k in np.flatnonzero(only_a[i] != only_b[j])
    )
    assert changed == {
        "other_installment_plans": 35,
        "foreign_worker": 10,
        "age": 6,
        "amount": 4,
        "housing": 1,
    }
    assert original["age"].sum() != corrected["age"].sum()
    assert original["amount"].sum() != corrected["amount"].sum()


def test_the_corrected_mapping_agrees_with_roar():
    roar = german.decode_corrected(read_roar("corrected_german")[german.RAW_COLUMNS])
    _, corrected = frames()
    for name in german.RAW_COLUMNS:
        assert counts(roar[name]) == counts(corrected[name]), name


# ROAR's recoding of german.data takes german.doc's labels at face value: Hofmann code -> the
# corrected code whose label german.doc gave it. We deliberately differ on these attributes.
ROAR_READING = {
    "status": {"A11": 2, "A12": 3, "A13": 4, "A14": 1},
    "credit_history": {"A30": 2, "A31": 4, "A32": 3, "A33": 0, "A34": 1},
    "purpose": {
        "A40": 1,
        "A41": 2,
        "A42": 3,
        "A43": 4,
        "A44": 5,
        "A45": 6,
        "A46": 7,
        "A47": 8,
        "A48": 9,
        "A49": 10,
        "A410": 0,
    },
    "savings": {"A61": 2, "A62": 3, "A63": 4, "A64": 5, "A65": 1},
    "personal_status_sex": {"A91": 1, "A92": 2, "A93": 5, "A94": 3},  # 5: "male single", no code
    "property": {"A121": 4, "A122": 3, "A123": 2, "A124": 1},
    "housing": {"A151": 2, "A152": 3, "A153": 1},
    "foreign_worker": {"A201": 1, "A202": 2},
    "people_liable": {1: 1, 2: 2},  # german.data's numbers kept, though pers 1 means "3 or more"
}


def test_the_original_mapping_agrees_with_roar_where_german_doc_was_right():
    roar = read_roar("german")
    original, _ = frames()
    ours, hofmann = corrected_codes(original), original.copy()
    for name, labels in german.CATEGORIES.items():
        hofmann[name] = original[name].map({label: code for code, label in labels.items()})
    agree = [n for n in german.RAW_COLUMNS if n not in ROAR_READING]
    assert set(agree) == {
        "duration",
        "amount",
        "employment_duration",
        "installment_rate",
        "other_debtors",
        "present_residence",
        "age",
        "other_installment_plans",
        "number_credits",
        "job",
        "telephone",
        "credit_risk",
    }
    for name in agree:
        assert counts(roar[name]) == counts(ours[name]), name
    for name, reading in ROAR_READING.items():
        # ROAR's codes are german.doc's reading of Hofmann's codes ...
        assert counts(roar[name]) == counts(hofmann[name].map(reading)), name
        # ... not ours (the corrected code table's)
        assert counts(roar[name]) != counts(ours[name]), name
    # so in ROAR's pair the files seem to differ where they do not: 39.4 % -> 27.4 % "no account"
    roar_corrected = read_roar("corrected_german")
    assert counts(roar["status"])[1] == 394 and counts(roar_corrected["status"])[1] == 274
    assert counts(ours["status"])[1] == 274


def test_a_missing_corrected_file_is_named(empty_folders):
    with pytest.raises(DataError, match=r"SouthGermanCredit\.asc"):
        dataset("german-corrected").load(0)
    splits = dataset("german").load(0)  # the embedded base data need no file ...
    assert splits.has_future and len(splits.X_train) == 700
    with pytest.raises(DataError, match=r"SouthGermanCredit\.asc"):
        splits.future_split()  # ... only the correction shift does
