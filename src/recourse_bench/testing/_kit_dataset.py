"""The conformance checks of a dataset plugin: ``load(seed)`` gives splits the harness can use.

Lifted from the project's own dataset tests: the features are finite, scaled to [0, 1] with
training statistics, and match their schema (one-hot groups, binary columns, integer grids,
bounds); the labels are 0/1 with both classes in training; a seed always gives the same
splits, without touching global random states; the splits pickle (the harness caches them); a
future split, where there is one, lies in the same model space; the declared data files carry
a sha256.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np

from ..api import DataError, Dataset, Splits
from ._common import (
    COMPONENT_CHECKS,
    SkipCheck,
    checks_registry,
    describe_exception,
    fail,
    run_without_global_rng,
)

CHECKS, _check = checks_registry(COMPONENT_CHECKS)

TOLERANCE = 1e-6


def _load(dataset: Dataset, seed: int = 0) -> Splits:
    """``load(seed)``; a failure says what came back when it is not :class:`Splits`."""
    splits = dataset.load(seed)
    if not isinstance(splits, Splits):
        raise fail(
            "load(seed) to return recourse_bench.api.Splits",
            type(splits).__name__,
            "build the splits with Splits(X_train, y_train, X_test, y_test, schema, name=...)",
        )
    return splits


@_check
def check_features_in_the_unit_box(dataset: Dataset, problem: Any) -> None:
    """Training and test features are finite floats in [0, 1]; labels are 0/1, both in training."""
    splits = _load(dataset)
    fix = (
        "scale every feature to [0, 1] with the training split's minimum and maximum and clip "
        "the test rows (recourse_bench.datasets._encoding.encode_splits does it); labels 1 for "
        "the favourable class, 0 otherwise"
    )
    for part in ("X_train", "X_test"):
        X = getattr(splits, part)
        if not np.issubdtype(X.dtype, np.floating):
            raise fail(f"{part} of floats", f"dtype {X.dtype}", fix)
        if X.size and (X.min() < -TOLERANCE or X.max() > 1 + TOLERANCE):
            raise fail(f"{part} within [0, 1]", f"values in [{X.min():g}, {X.max():g}]", fix)
    for part in ("y_train", "y_test"):
        y = getattr(splits, part)
        values = set(np.unique(y).tolist())
        if not values <= {0, 1} or len(y) != len(getattr(splits, part.replace("y", "X"))):
            raise fail(f"{part}: one 0/1 label per row", f"labels {sorted(values)[:5]}", fix)
    if set(np.unique(splits.y_train).tolist()) != {0, 1}:
        raise fail("both classes among the training labels", "a single class", fix)


@_check
def check_schema_matches_the_columns(dataset: Dataset, problem: Any) -> None:
    """The schema describes the columns: names, one-hot groups, binary, integer columns, bounds."""
    splits = _load(dataset)
    schema, X = splits.schema, splits.X_train
    fix = "build the schema from the encoded columns (see recourse_bench.datasets._encoding)"
    if len(set(schema.features)) != schema.n_features:
        raise fail("distinct feature names", "a name used twice", fix)
    for group in schema.groups:
        block = X[:, list(group)]
        if not (np.isin(block, (0.0, 1.0)).all() and np.allclose(block.sum(axis=1), 1.0)):
            names = ", ".join(schema.features[j] for j in group)
            raise fail(f"the one-hot group {names} to hold one 1 per row", "other values", fix)
    binary = [j for j, kind in enumerate(schema.kinds) if kind == "binary"]
    if binary and not np.isin(X[:, binary], (0.0, 1.0)).all():
        raise fail("binary columns of 0 and 1", "other values", fix)
    outside = (X < schema.lower_array - TOLERANCE) | (X > schema.upper_array + TOLERANCE)
    if outside.any():
        j = int(np.flatnonzero(outside.any(axis=0))[0])
        raise fail(
            "training rows inside the schema's bounds",
            f"{schema.features[j]} outside [{schema.lower[j]:g}, {schema.upper[j]:g}]",
            fix,
        )
    steps = np.asarray(schema.steps, dtype=float)
    for j in np.flatnonzero(steps > 0):
        units = (X[:, j] - schema.lower[j]) / steps[j]
        if not np.allclose(units, np.round(units), atol=1e-4):
            raise fail(
                f"the integer column {schema.features[j]} on its grid of step {steps[j]:g}",
                "values off the grid",
                fix,
            )


@_check
def check_scaled_on_the_training_split(dataset: Dataset, problem: Any) -> None:
    """Each continuous or integer column spans [0, 1] on the training split (unless constant)."""
    splits = _load(dataset)
    for j, kind in enumerate(splits.schema.kinds):
        column = splits.X_train[:, j]
        if kind in ("continuous", "integer") and np.ptp(column) > 0:
            if abs(column.min()) > TOLERANCE or abs(column.max() - 1) > TOLERANCE:
                raise fail(
                    f"{splits.schema.features[j]} scaled with the training split's statistics",
                    f"training values in [{column.min():g}, {column.max():g}]",
                    "fit the scaling on X_train only, then apply it to the test rows",
                )


@_check
def check_deterministic_for_a_seed(dataset: Dataset, problem: Any) -> None:
    """``load(seed)`` twice gives equal splits, and leaves the global random states alone."""
    first: list[Splits] = []
    run_without_global_rng(
        lambda: first.append(_load(dataset)),
        "load",
        "draw from np.random.default_rng(seed) (recourse_bench.seeding.numpy_rng)",
    )
    again = _load(dataset)
    for part in ("X_train", "y_train", "X_test", "y_test"):
        if not np.array_equal(getattr(first[0], part), getattr(again, part)):
            raise fail(
                "load(0) twice to give the same splits",
                f"different {part}",
                "derive every random draw of load from its seed",
            )


@_check
def check_splits_pickle(dataset: Dataset, problem: Any) -> None:
    """The splits survive pickle (the harness caches them on disk)."""
    splits = _load(dataset)
    try:
        restored = pickle.loads(pickle.dumps(splits))
    except Exception as exc:
        raise fail(
            "the splits to pickle",
            describe_exception(exc),
            "keep no lambdas, open files or generators in the splits or their encoder",
        ) from exc
    if not np.array_equal(restored.X_train, splits.X_train):
        raise fail("the unpickled splits to equal the original", "different X_train", "")


@_check
def check_future_split(dataset: Dataset, problem: Any) -> None:
    """A future split, where there is one, lies in the same model space with 0/1 labels."""
    splits = _load(dataset)
    if not splits.has_future:
        raise SkipCheck(f"{type(dataset).__name__} has no future split")
    try:
        X, y = splits.future_split()  # type: ignore[misc]
    except DataError as exc:
        raise SkipCheck(f"the future split's file is not here: {exc}") from None
    fix = "encode the future split with the training split's encoder"
    if X.ndim != 2 or X.shape[1] != splits.schema.n_features or not np.isfinite(X).all():
        raise fail(f"future rows of {splits.schema.n_features} finite features", f"{X.shape}", fix)
    if len(y) != len(X) or not set(np.unique(y).tolist()) <= {0, 1}:
        raise fail("one 0/1 label per future row", f"{len(y)} labels", fix)


@_check
def check_declared_files(dataset: Dataset, problem: Any) -> None:
    """Every declared data file names a sha256 the harness can verify it by."""
    from ..datasets._files import DataFile

    files = dataset.data_files(future=True)
    bad = [f for f in files if not isinstance(f, DataFile)]
    if bad:
        raise fail(
            "data_files() to return recourse_bench.datasets._files.DataFile entries",
            ", ".join(type(f).__name__ for f in bad),
            "declare files = (DataFile(name, sha256, url=...),) on the dataset class",
        )
