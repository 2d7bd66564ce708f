"""The results table: one row per measurement (long format), stored as parquet with run metadata.

Columns (see ``COLUMNS``): the components of the cell and their labels, the shift's severity, the
seed index, the updated model's index ``draw`` (null for static metrics), the metric, its ``value``
and denominator ``n``, the ``status`` (``ok``, ``skipped``, ``error``, ``timeout``) with a
``reason``, and the parameters of each component as JSON. Run metadata (config, package versions,
git revision, machine, wall times) travels in the parquet metadata and in ``run.json`` beside it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .api import DataError

RESULTS_FILE = "results.parquet"
RUN_FILE = "run.json"
METADATA_KEY = b"recourse_bench"
STATUSES = ("ok", "skipped", "error", "timeout")


def _column(dtype: str) -> Any:
    return field(metadata={"dtype": dtype})


@dataclass(frozen=True)
class Failure:
    """Why a cell has no value: ``skipped`` (it does not apply), ``error`` or ``timeout``."""

    status: str
    reason: str


@dataclass(frozen=True)
class Row:
    """One measurement: the row type of the results table (its columns, in order, and dtypes)."""

    dataset: str = _column("string")
    dataset_label: str = _column("string")
    model: str = _column("string")
    model_label: str = _column("string")
    method: str = _column("string")
    method_label: str = _column("string")
    shift: str | None = _column("string")
    shift_label: str | None = _column("string")
    severity: float = _column("float64")
    seed: int = _column("int64")
    draw: int | None = _column("Int64")
    metric: str | None = _column("string")
    value: float = _column("float64")
    n: int | None = _column("Int64")
    status: str = _column("string")
    reason: str = _column("string")
    dataset_params: str = _column("string")
    model_params: str = _column("string")
    method_params: str = _column("string")
    shift_params: str = _column("string")


COLUMNS: dict[str, str] = {f.name: f.metadata["dtype"] for f in fields(Row)}
"""Column -> pandas dtype of the results table, from :class:`Row`."""


RUN_CELL = ["dataset_label", "model_label", "method_label", "seed"]
# One measurement: the sort order of a results frame.
MEASUREMENT = [
    *("dataset_label", "model_label", "method_label", "shift_label"),
    *("seed", "metric", "draw"),
]


def to_frame(rows: Sequence[Row | Mapping[str, Any]]) -> pd.DataFrame:
    """Rows -> a typed, validated, deterministically sorted results frame.

    Each row is a :class:`Row`, or a mapping with exactly the columns of :data:`COLUMNS` (a
    missing or unexpected key is a :class:`DataError`, never dropped silently).
    """
    names = list(COLUMNS)
    records = []
    for row in rows:
        if isinstance(row, Row):
            records.append(tuple(getattr(row, name) for name in names))
            continue
        if set(row) != set(names):
            missing = ", ".join(c for c in names if c not in row) or "none"
            unexpected = ", ".join(str(c) for c in row if c not in COLUMNS) or "none"
            raise DataError(
                f"a results row has missing ({missing}) or unexpected ({unexpected}) keys"
            )
        records.append(tuple(row[name] for name in names))
    return _typed(pd.DataFrame.from_records(records, columns=names))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.astype(COLUMNS)
    frame = frame.sort_values(MEASUREMENT, na_position="first", kind="mergesort").reset_index(
        drop=True
    )
    validate(frame)
    return frame


def merge_results(frames: Sequence[pd.DataFrame]) -> tuple[pd.DataFrame, int]:
    """Several results frames as one, and how many of their rows were replaced.

    The last frame that measured something wins: a shift's rows of a run cell (dataset, model,
    method, seed) are dropped from earlier frames when a later one has rows for that cell and
    shift (values, or a skip or error), and a cell's static rows when a later frame has any row
    for that cell. So a rerun listed after a failed run replaces its error rows, and a failed
    rerun hides the older numbers. Rows within one frame are never dropped.
    """
    if not frames:
        raise DataError("no results to merge; give at least one results file")
    stacked = pd.concat(
        [f[list(COLUMNS)].assign(_source=i) for i, f in enumerate(frames)], ignore_index=True
    )
    cell = [stacked[c].astype("string").fillna("<NA>") for c in RUN_CELL]
    shift = stacked["shift_label"].astype("string").fillna("<static>")
    latest_in_cell = stacked.groupby(cell, sort=False)["_source"].transform("max")
    latest_in_shift = stacked.groupby([*cell, shift], sort=False)["_source"].transform("max")
    static = stacked["shift_label"].isna()
    replaced = (static & (stacked["_source"] < latest_in_cell)) | (
        ~static & (stacked["_source"] < latest_in_shift)
    )
    merged = stacked[~replaced].drop(columns="_source")
    return _typed(merged), int(replaced.sum())


def validate(frame: pd.DataFrame) -> None:
    """Raise :class:`DataError` naming missing or unexpected columns, or unknown statuses."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"results table is missing column(s): {', '.join(missing)}")
    unexpected = [c for c in frame.columns if c not in COLUMNS]
    if unexpected:
        raise DataError(f"results table has unexpected column(s): {', '.join(unexpected)}")
    bad = sorted(set(frame["status"].dropna()) - set(STATUSES))
    if bad:
        raise DataError(
            f"results table has unknown status {bad[0]!r}; valid: {', '.join(STATUSES)}"
        )


def write_results(frame: pd.DataFrame, out_dir: str | Path, metadata: Mapping[str, Any]) -> Path:
    """Write ``results.parquet`` (with metadata) and ``run.json`` atomically into ``out_dir``."""
    validate(frame)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(metadata, indent=2, sort_keys=True, default=str)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), METADATA_KEY: text})
    path = out / RESULTS_FILE
    _atomic(path, lambda tmp: pq.write_table(table, tmp))
    _atomic(out / RUN_FILE, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))
    return path


def _atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def results_path(path: str | Path) -> Path:
    """The results file of a run folder (or the file itself)."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.is_file():
        raise DataError(f"no results at {str(path)!r}; run `recourse-bench run CONFIG` first")
    return path


def read_results(path: str | Path) -> pd.DataFrame:
    """Read a results table from a run folder or a parquet file, with column checks."""
    try:
        frame = pd.read_parquet(results_path(path))
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot read results from {str(path)!r}: {exc}") from None
    validate(frame)
    return frame


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The run metadata stored in a results file."""
    raw = pq.read_schema(results_path(path)).metadata or {}
    return json.loads(raw.get(METADATA_KEY, b"{}"))


def canonical(value: Any) -> Any:
    """``value`` as JSON would give it back (tuples as lists, keys as strings)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def holds_results(folder: str | Path) -> bool:
    """Whether a folder holds the results of a run or a merged report."""
    folder = Path(folder)
    return (folder / RESULTS_FILE).is_file() or (folder / RUN_FILE).is_file()


def recorded_identity(folder: str | Path) -> Any:
    """The identity in a folder's ``run.json`` (None where none is recorded or readable)."""
    try:
        metadata = json.loads((Path(folder) / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return metadata.get("identity") if isinstance(metadata, dict) else None


def differences(recorded: Any, wanted: Mapping[str, Any]) -> list[str]:
    """The top-level entries (and config settings) in which two identities differ."""
    if not isinstance(recorded, Mapping):
        return ["no recorded config"]
    found = []
    for key in sorted(set(recorded) | set(wanted)):
        old, new = recorded.get(key), wanted.get(key)
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            found += [f"{key}.{k}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        elif old != new:
            found.append(key)
    return found
