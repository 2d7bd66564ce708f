"""The file layer: data folders, verification, and downloads from a loopback HTTP server."""

import gzip
import io
import zipfile
from dataclasses import replace

import pytest

from recourse_bench.api import DataError
from recourse_bench.datasets import _files
from recourse_bench.datasets._files import DataFile, fetch, read, sha256_of

CONTENT = b"a,b,target\n1,2,1\n3,4,0\n" * 50


@pytest.fixture
def folders(tmp_path, monkeypatch):
    data, cache = tmp_path / "data", tmp_path / "cache"
    data.mkdir()
    monkeypatch.setenv(_files.DATA_ENV, str(data))
    monkeypatch.setenv(_files.CACHE_ENV, str(cache))
    return data, cache


def served_file(serve, path="/t.csv", body=CONTENT, **changes):
    return DataFile(name="t.csv", sha256=sha256_of(CONTENT), url=serve.add(path, body), **changes)


def cache_listing(cache):
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_download_is_verified_cached_and_reused(serve, folders):
    _, cache = folders
    file = served_file(serve)
    assert read(file) == CONTENT
    assert cache_listing(cache) == ["t.csv"]
    assert read(file) == CONTENT
    assert serve.requests == ["/t.csv"]  # the second read came from the cache


def test_corrupted_download_is_rejected_and_nothing_is_cached(serve, folders):
    _, cache = folders
    file = served_file(serve, body=CONTENT.replace(b"1", b"7"))
    with pytest.raises(DataError, match=r"has sha256 .* expected .*nothing was saved"):
        read(file)
    assert cache_listing(cache) == []


def test_interrupted_download_leaves_nothing(serve, folders):
    _, cache = folders
    file = served_file(serve)
    serve.truncate.add("/t.csv")
    with pytest.raises(DataError, match="interrupted"):
        fetch(file)
    assert cache_listing(cache) == []


def test_unreachable_source_is_one_clear_error(serve, folders):
    file = DataFile(name="t.csv", sha256=sha256_of(CONTENT), url=serve.url("/absent.csv"))
    with pytest.raises(DataError, match=r"download of .*absent.csv failed .*RECOURSE_BENCH_DATA"):
        read(file)


def test_zip_members_are_extracted_and_unsafe_paths_refused(serve, folders):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("t.csv", CONTENT)
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w") as archive:
        archive.writestr("inner.zip", inner.getvalue())
    file = served_file(serve, "/a.zip", outer.getvalue(), members=("inner.zip", "t.csv"))
    assert read(file) == CONTENT
    bad = replace(file, name="u.csv", members=("../inner.zip", "t.csv"))
    with pytest.raises(DataError, match="refusing the archive member path"):
        fetch(bad)


def test_data_folder_is_searched_first_plain_or_gzip(serve, folders):
    data, cache = folders
    file = served_file(serve)
    (data / "t.csv.gz").write_bytes(gzip.compress(CONTENT))
    assert read(file) == CONTENT
    assert serve.requests == [] and cache_listing(cache) == []


def test_corrupted_or_truncated_user_file_names_the_file_and_the_fix(folders):
    data, _ = folders
    file = DataFile(name="t.csv", sha256=sha256_of(CONTENT), obtain="the test suite")
    (data / "t.csv").write_bytes(CONTENT[:-10])
    with pytest.raises(DataError, match=r"t\.csv'.* has sha256 .*truncated, corrupted"):
        read(file)
    (data / "t.csv").unlink()
    (data / "t.csv.gz").write_bytes(gzip.compress(CONTENT)[:-20])
    with pytest.raises(DataError, match=r"cannot read .*replace it with the original file"):
        read(file)


def test_missing_file_without_download_says_where_to_get_it(folders):
    data, cache = folders
    file = DataFile(name="t.csv", sha256=sha256_of(CONTENT), obtain="https://example.org/t")
    with pytest.raises(DataError) as info:
        read(file)
    message = str(info.value)
    assert "t.csv not found" in message and str(data / "t.csv") in message
    assert str(cache / "t.csv") in message and "get it from https://example.org/t" in message


def test_bad_cache_entry_is_discarded_and_downloaded_again(serve, folders):
    _, cache = folders
    file = served_file(serve)
    cache.mkdir()
    (cache / "t.csv").write_bytes(b"garbage")
    assert read(file) == CONTENT
    assert (cache / "t.csv").read_bytes() == CONTENT


def test_config_data_dir_takes_precedence(tmp_path, folders):
    other = tmp_path / "other"
    other.mkdir()
    (other / "t.csv").write_bytes(CONTENT)
    file = DataFile(name="t.csv", sha256=sha256_of(CONTENT))
    with _files.data_dir(other):
        assert read(file) == CONTENT
    with pytest.raises(DataError, match="not found"):
        read(file)


def test_damaged_gzip_stream_is_one_clear_error(folders):
    data, _ = folders
    packed = bytearray(gzip.compress(CONTENT * 20))
    packed[20:60] = bytes(40)  # damage the deflate stream, keep the header
    (data / "t.csv.gz").write_bytes(bytes(packed))
    file = DataFile(name="t.csv", sha256=sha256_of(CONTENT))
    with pytest.raises(DataError, match=r"t\.csv: cannot read .*t\.csv\.gz"):
        read(file)
