import pandas as pd
import pytest

from recourse_bench.api import DataError
from recourse_bench.store import (
    COLUMNS,
    read_metadata,
    read_results,
    to_frame,
    validate,
    write_results,
)


def _row(**changes):
    row = dict.fromkeys(COLUMNS, "x")
    row.update(severity=float("nan"), seed=0, draw=None, value=0.5, n=10, status="ok", metric="m")
    row.update(changes)
    return row


def test_round_trip_keeps_types_order_and_metadata(tmp_path):
    frame = to_frame([_row(seed=1, draw=2), _row(seed=0, draw=None)])
    assert list(frame["seed"]) == [0, 1]  # sorted deterministically
    write_results(frame, tmp_path, {"config_name": "t", "wall_seconds": 1.5})
    back = read_results(tmp_path)
    pd.testing.assert_frame_equal(back, frame)
    assert read_metadata(tmp_path / "results.parquet")["config_name"] == "t"
    assert not list(tmp_path.glob(".*.tmp"))


def test_validation_names_missing_and_unexpected_columns():
    frame = to_frame([_row()])
    with pytest.raises(DataError, match="missing column\\(s\\): value"):
        validate(frame.drop(columns="value"))
    with pytest.raises(DataError, match="unexpected column\\(s\\): extra"):
        validate(frame.assign(extra=1))
    with pytest.raises(DataError, match="unknown status 'fine'"):
        to_frame([_row(status="fine")])
