"""Time recourse-bench's methods against DiCE on the same model and the same factuals.

A standalone script, not a test: CI never runs it and nothing depends on it. It trains the MLP on
Adult (split seed 0, model seed 0), takes the test rows the model rejects as factuals and asks
every method for one counterfactual per factual:

* recourse-bench: wachter, roar-gradient (roar with surrogate="gradient"), roar-lime (roar with its
  default LIME surrogate), growing-spheres, probe and nearest-neighbour, on ``--factuals`` factuals
  (default 1000), ``fit`` and ``generate`` timed separately;
* DiCE (``dice-ml``): the model-agnostic "random" and "genetic" methods over a scikit-learn style
  wrapper of the same model, and the PyTorch "gradient" method over the same network, on the
  first ``--dice-factuals`` of those factuals (default 50), because DiCE explains one factual at a
  time. A variant that cannot be built is skipped with the reason printed.

DiCE sees the data in its own terms, much as it would see raw data: each one-hot group of the
schema becomes one categorical feature, binary columns are categorical ("0"/"1"), an integer
column becomes an int feature counting its grid steps (one raw unit each, offset from its lower
bound), and a real-valued column stays the model-space value in [0, 1], which DiCE rounds to
``--dice-precision`` decimals (default 2; this is also the step of DiCE's post-hoc sparsity
search, whose cost grows tenfold with every decimal). Immutable features are left out of
``features_to_vary``, and a feature that may only increase (or decrease) gets the factual as its
lower (upper) bound through DiCE's per-query ``permitted_range``. DiCE is asked for
``total_CFs=1`` with ``desired_class="opposite"`` and its other defaults (post-hoc sparsity
included); its counterfactual (the sparse one where DiCE made it) is mapped back to model space
and checked with recourse-bench's own ``model.predict``. A factual with no counterfactual counts
as invalid (DiCE's genetic method raises ``UserConfigValidationException`` when it finds none; such
a query counts the same). What DiCE prints or logs is collected and summarised after the table.

Known DiCE behaviour the ``infeasible`` column shows: with a ``permitted_range`` narrower than the
data's range, dice-ml 0.12's gradient method rounds its candidates with the permitted bounds as
if they were the data's min and max, so a counterfactual can land below a factual's value of a
feature that may only increase (a related report: interpretml/DiCE issue 106).

Columns of the table: ``fit s`` (building the explainer: ``Method.fit`` or ``dice_ml.Dice``),
``generate s``, ``total s`` (the two together), ``ms/CF`` (generate seconds / factuals, one
counterfactual asked per factual), ``valid`` (share of factuals with a counterfactual the model
accepts), ``L1`` (mean model-space L1 distance of the valid counterfactuals to their factuals),
``infeasible`` (share of the returned counterfactuals that break the schema: an immutable, a bound,
a direction or a one-hot group), ``valid@D`` and ``L1@D`` (the same on the first D factuals, the
ones DiCE saw) and ``x <variant>`` (speed-up: that DiCE variant's seconds per counterfactual / this
method's).

Torch runs on one thread, as in the harness. Timings are wall-clock on a possibly shared machine:
read them as upper bounds.

Install DiCE without its xgboost/lightgbm dependencies (xgboost pulls a large CUDA package; the
methods used here import neither)::

    pip install --no-deps dice-ml raiutils

Run (Adult is embedded; a few minutes on one core)::

    export RECOURSE_BENCH_DATA=/path/to/data
    python benchmarks/perf/compare_dice.py --factuals 1000 --dice-factuals 50 --out dice.json
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import json
import logging
import os
import re
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from recourse_bench import registry

INSTALL = "pip install --no-deps dice-ml raiutils"
OURS = [
    ("wachter", "wachter", {}),
    ("roar-gradient", "roar", {"surrogate": "gradient"}),
    ("roar-lime", "roar", {}),
    ("growing-spheres", "growing-spheres", {}),
    ("probe", "probe", {}),
    ("nearest-neighbour", "nearest-neighbour", {}),
]
DICE_VARIANTS = ["random", "genetic", "gradient"]
OUTCOME = "label"


# ------------------------------------------------------------------------------------ set-up
def import_dice() -> Any:
    """Import ``dice_ml`` or exit with code 2 and one line saying how to install it.

    Returns
    -------
    module
        The ``dice_ml`` package.
    """
    try:
        import dice_ml
    except Exception as exc:  # ImportError, or a broken dependency of it
        print(f"compare_dice: cannot import dice_ml ({exc}); install it with: {INSTALL}")
        raise SystemExit(2) from None
    return dice_ml


def version(package: str) -> str:
    """Installed version of ``package`` or ``"?"``."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def machine_info() -> dict[str, Any]:
    """CPU count, torch threads and package versions."""
    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "dice_ml": version("dice-ml"),
        "torch": version("torch"),
        "recourse_bench": version("recourse-bench"),
        "pandas": version("pandas"),
    }


def load(n_factuals: int) -> tuple[Any, Any, np.ndarray]:
    """Adult splits, the MLP trained on them and the first rejected test rows.

    Parameters
    ----------
    n_factuals : int
        How many rejected test rows to keep.

    Returns
    -------
    splits, model, factuals
    """
    splits = registry.get("dataset", "adult")().load(0)
    model = registry.get("model", "mlp")().fit(splits.X_train, splits.y_train, seed=0)
    X_test = np.asarray(splits.X_test, dtype=float)
    rejected = X_test[model.predict(X_test) == 0]
    return splits, model, rejected[:n_factuals]


# ------------------------------------------------------------------------------- DiCE's view
@dataclass(frozen=True)
class Feature:
    """One DiCE feature and the model-space columns behind it.

    Attributes
    ----------
    name : str
        DiCE's column name.
    columns : tuple of int
        Model-space columns (one for a continuous or binary feature, a group for a categorical).
    levels : tuple of str
        Category labels, one per column of a group, ``("0", "1")`` for a binary feature, empty for
        a continuous one.
    mutable : bool
        Whether a recourse may change it.
    direction : int
        +1 may only increase, -1 only decrease, 0 either way (continuous features only).
    lower, upper : float
        Bounds of a continuous feature in model space.
    step : float
        Grid step of an integer feature in model space (one raw unit), 0 for a real-valued one.
        DiCE sees an integer feature as its grid index (an int column), as it would see raw
        integers, and a real-valued one as the model-space value.
    """

    name: str
    columns: tuple[int, ...]
    levels: tuple[str, ...]
    mutable: bool
    direction: int = 0
    lower: float = 0.0
    upper: float = 1.0
    step: float = 0.0

    @property
    def continuous(self) -> bool:
        """True for a continuous (or integer) feature."""
        return not self.levels

    @property
    def binary(self) -> bool:
        """True for a single 0/1 column shown to DiCE as a category."""
        return len(self.columns) == 1 and bool(self.levels)

    def to_dice(self, values: np.ndarray) -> np.ndarray:
        """Model-space values of a continuous feature in DiCE's units."""
        values = np.asarray(values, dtype=float)
        if self.step > 0:
            return np.rint((values - self.lower) / self.step).astype(np.int64)
        return values

    def from_dice(self, values: np.ndarray) -> np.ndarray:
        """DiCE's values of a continuous feature in model space."""
        values = np.asarray(values, dtype=float)
        return self.lower + values * self.step if self.step > 0 else values


def group_feature(schema: Any, group: tuple[int, ...], index: int) -> Feature:
    """The categorical :class:`Feature` of one one-hot group (columns named ``name=level``)."""
    names = [schema.features[j] for j in group]
    prefixes = {n.split("=", 1)[0] for n in names}
    name = prefixes.pop() if len(prefixes) == 1 and all("=" in n for n in names) else None
    levels = tuple(n.split("=", 1)[1] if name else str(k) for k, n in enumerate(names))
    mutable = not all(schema.immutable[j] for j in group)
    return Feature(name or f"group{index}", tuple(group), levels, mutable)


def column_feature(schema: Any, j: int) -> Feature:
    """The :class:`Feature` of one column outside the one-hot groups."""
    levels = ("0", "1") if schema.kinds[j] == "binary" else ()
    direction = 0 if levels else int(schema.direction[j])
    return Feature(
        schema.features[j],
        (j,),
        levels,
        not schema.immutable[j],
        direction,
        float(schema.lower[j]),
        float(schema.upper[j]),
        float(schema.steps[j]),
    )


class DiceSpace:
    """Maps model-space arrays to DiCE's data frames and back.

    Parameters
    ----------
    schema : recourse_bench.api.Schema
        The model-space schema.
    """

    def __init__(self, schema: Any):
        self.n_columns = schema.n_features
        in_group = {j for group in schema.groups for j in group}
        first = {group[0]: (k, group) for k, group in enumerate(schema.groups)}
        features = []
        for j in range(self.n_columns):
            if j in first:
                features.append(group_feature(schema, first[j][1], first[j][0]))
            elif j not in in_group:
                features.append(column_feature(schema, j))
        self.features = features

    @property
    def names(self) -> list[str]:
        """DiCE column names."""
        return [f.name for f in self.features]

    @property
    def continuous(self) -> list[str]:
        """Names of the continuous features."""
        return [f.name for f in self.features if f.continuous]

    @property
    def to_vary(self) -> list[str]:
        """Names of the features a recourse may change."""
        return [f.name for f in self.features if f.mutable]

    def precisions(self, decimals: int) -> dict[str, int]:
        """DiCE's rounding of continuous features: 0 for integer ones, ``decimals`` otherwise."""
        return {f.name: 0 if f.step > 0 else decimals for f in self.features if f.continuous}

    def frame(self, X: np.ndarray) -> pd.DataFrame:
        """Model-space rows as a DiCE data frame (categories as strings)."""
        X = np.asarray(X, dtype=float)
        data = {}
        for f in self.features:
            block = X[:, list(f.columns)]
            if f.continuous:
                data[f.name] = f.to_dice(block[:, 0])
            elif f.binary:
                data[f.name] = np.where(block[:, 0] >= 0.5, "1", "0").astype(object)
            else:
                data[f.name] = np.asarray(f.levels, dtype=object)[block.argmax(axis=1)]
        return pd.DataFrame(data)

    def array(self, frame: pd.DataFrame) -> np.ndarray:
        """A DiCE data frame as model-space rows (NaN rows for unknown categories)."""
        X = np.zeros((len(frame), self.n_columns))
        for f in self.features:
            values = frame[f.name].to_numpy()
            if f.continuous:
                X[:, f.columns[0]] = f.from_dice(values.astype(float))
                continue
            labels = np.asarray([str(v) for v in values])
            if f.binary:
                X[:, f.columns[0]] = labels == "1"
                X[~np.isin(labels, f.levels), :] = np.nan
                continue
            for column, level in zip(f.columns, f.levels, strict=True):
                X[:, column] = labels == level
            X[~np.isin(labels, f.levels), :] = np.nan
        return X

    def permitted_range(self, x: np.ndarray) -> dict[str, list[float]]:
        """DiCE's per-query range of every continuous feature, enforcing the schema's directions.

        Every continuous feature is listed (DiCE's gradient method requires all of them); one
        that may only increase (decrease) starts (ends) at the factual's value.
        """
        ranges = {}
        for f in self.features:
            if not f.continuous:
                continue
            lo, hi, value = f.to_dice([f.lower, f.upper, x[f.columns[0]]]).tolist()
            if f.mutable and f.direction > 0:
                lo = value
            elif f.mutable and f.direction < 0:
                hi = value
            ranges[f.name] = [lo, hi]
        return ranges

    def encoded_map(self, encoded: list[str], lo: np.ndarray, hi: np.ndarray) -> tuple:
        """Affine map from DiCE's one-hot, min-max scaled columns to model space.

        Parameters
        ----------
        encoded : list of str
            DiCE's encoded column names (``feature`` or ``feature_level``).
        lo, hi : ndarray
            Per model-space column, the minimum and maximum DiCE scaled with.

        Returns
        -------
        matrix, scale, offset : ndarray
            ``model_x = (encoded_x @ matrix) * scale + offset``.
        """
        position = {name: k for k, name in enumerate(encoded)}
        matrix = np.zeros((len(encoded), self.n_columns))
        scale, offset = np.ones(self.n_columns), np.zeros(self.n_columns)
        for f in self.features:
            if f.continuous:
                j = f.columns[0]
                matrix[position[f.name], j] = 1.0
                scale[j], offset[j] = hi[j] - lo[j], lo[j]
                continue
            for column, level in zip(f.columns, f.levels[-len(f.columns) :], strict=True):
                matrix[position[f"{f.name}_{level}"], column] = 1.0
        return matrix, scale, offset


class FrameModel:
    """A scikit-learn style view of a recourse-bench classifier over DiCE data frames.

    Parameters
    ----------
    model : recourse_bench classifier
        Has ``predict_proba`` over model-space arrays.
    space : DiceSpace
        Maps the frames to model space.
    """

    def __init__(self, model: Any, space: DiceSpace):
        self.model = model
        self.space = space
        self.classes_ = np.array([0, 1])

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Class probabilities, shape (n, 2)."""
        return self.model.predict_proba(self.space.array(frame))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """0/1 predictions."""
        return self.predict_proba(frame).argmax(axis=1)


class EncodedProba(nn.Module):
    """The MLP as DiCE's gradient method needs it: encoded float32 rows to P(class 1), (n, 1).

    Parameters
    ----------
    model : recourse_bench TorchClassifier
        Has a differentiable ``logits`` over float64 model-space tensors.
    matrix, scale, offset : ndarray
        The affine map of :meth:`DiceSpace.encoded_map`.
    """

    def __init__(self, model: Any, matrix: np.ndarray, scale: np.ndarray, offset: np.ndarray):
        super().__init__()
        self.model = model
        self.register_buffer("matrix", torch.as_tensor(matrix, dtype=torch.float64))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float64))
        self.register_buffer("offset", torch.as_tensor(offset, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Probability of the favourable class, float32 of shape (n, 1)."""
        z = (x.to(torch.float64).reshape(-1, self.matrix.shape[0]) @ self.matrix) * self.scale
        return torch.sigmoid(self.model.logits(z + self.offset)).reshape(-1, 1).float()


# --------------------------------------------------------------------------------- metrics
def summarise(model: Any, schema: Any, cfs: np.ndarray, factuals: np.ndarray) -> dict[str, Any]:
    """Validity, mean L1 cost of the valid counterfactuals and share breaking the schema.

    Parameters
    ----------
    model : recourse_bench classifier
        Judges validity.
    schema : Schema
        Judges feasibility.
    cfs : ndarray
        Counterfactuals, NaN rows where none was returned.
    factuals : ndarray
        The factuals, row for row.

    Returns
    -------
    dict
        ``valid``, ``l1`` (None if no valid counterfactual) and ``infeasible`` (None if none found).
    """
    found = ~np.isnan(cfs).any(axis=1)
    valid = np.zeros(len(cfs), dtype=bool)
    if found.any():
        valid[found] = model.predict(cfs[found]) == 1
    cost = np.abs(cfs - factuals).sum(axis=1)
    bad = schema.violations(cfs[found], factuals[found]) if found.any() else np.array([])
    return {
        "found": float(found.mean()),
        "valid": float(valid.mean()),
        "l1": float(cost[valid].mean()) if valid.any() else None,
        "infeasible": float(bad.mean()) if found.any() else None,
    }


def row(label: str, fit_s: float, gen_s: float, n: int, stats: dict, subset: dict) -> dict:
    """One table row: timings, the metrics on all factuals and on DiCE's subset."""
    return {
        "method": label,
        "factuals": n,
        "fit_s": fit_s,
        "generate_s": gen_s,
        "total_s": fit_s + gen_s,
        "s_per_cf": gen_s / n,
        **stats,
        "valid_at_d": subset["valid"],
        "l1_at_d": subset["l1"],
    }


# --------------------------------------------------------------------------- our methods
def run_ours(
    label: str, name: str, params: dict, model: Any, splits: Any, factuals: np.ndarray, d: int
) -> dict:
    """Fit and run one recourse-bench method, timing both steps.

    Parameters
    ----------
    label, name, params
        Table label, registry name and constructor parameters.
    model, splits
        The classifier and the data it was trained on.
    factuals : ndarray
        The factuals.
    d : int
        Size of DiCE's subset (the first ``d`` factuals).

    Returns
    -------
    dict
        A table row.
    """
    start = time.perf_counter()
    method = registry.get("method", name)(random_state=0, **params).fit(model, splits)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    cfs = method.generate(factuals)
    gen_s = time.perf_counter() - start
    stats = summarise(model, splits.schema, cfs, factuals)
    subset = summarise(model, splits.schema, cfs[:d], factuals[:d])
    return row(label, fit_s, gen_s, len(factuals), stats, subset)


# ------------------------------------------------------------------------------------ DiCE
def dice_data(dice_ml: Any, space: DiceSpace, splits: Any, precision: int) -> Any:
    """DiCE's data interface over the training rows in DiCE's view.

    ``precision`` is the number of decimals DiCE rounds continuous features to, which is also the
    step of its post-hoc sparsity search.
    """
    frame = space.frame(splits.X_train)
    frame[OUTCOME] = np.asarray(splits.y_train, dtype=int)
    return dice_ml.Data(
        dataframe=frame,
        continuous_features=space.continuous,
        outcome_name=OUTCOME,
        continuous_features_precision=space.precisions(precision),
    )


def dice_explainer(dice_ml: Any, variant: str, data: Any, space: DiceSpace, model: Any) -> Any:
    """A ``dice_ml.Dice`` explainer for ``variant`` (random, genetic or gradient)."""
    if variant != "gradient":
        wrapped = dice_ml.Model(model=FrameModel(model, space), backend="sklearn")
        return dice_ml.Dice(data, wrapped, method=variant)
    encoded = list(data.get_ohe_min_max_normalized_data(data.data_df.iloc[[0]]).columns)
    encoded = [c for c in encoded if c != OUTCOME]
    X = np.asarray(space.array(data.data_df), dtype=float)
    matrix, scale, offset = space.encoded_map(encoded, X.min(axis=0), X.max(axis=0))
    net = EncodedProba(model, matrix, scale, offset)
    wrapped = dice_ml.Model(model=net, backend="PYT", func="ohe-min-max")
    return dice_ml.Dice(data, wrapped, method="gradient")


@contextlib.contextmanager
def captured() -> Iterator[io.StringIO]:
    """Collect what DiCE prints or logs (stdout, stderr, the root logger) instead of showing it."""
    out = io.StringIO()
    root = logging.getLogger()
    handlers = root.handlers[:]
    root.handlers = [logging.StreamHandler(out)]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            yield out
    finally:
        root.handlers = handlers


def message_lines(text: str) -> list[str]:
    """The lines of captured output without tqdm progress bars, digits shown as ``#``."""
    lines = (line.rsplit("it/s]", 1)[-1].strip() for line in text.split("\n"))
    return [re.sub(r"\d+", "#", line) for line in lines if line and "%|" not in line]


def dice_one(explainer: Any, space: DiceSpace, x: np.ndarray, seed: int) -> tuple:
    """DiCE's counterfactual for one factual in model space (NaN if none) and what it printed."""
    query = space.frame(x[None, :])
    kwargs = {"random_seed": seed} if type(explainer).__name__ == "DiceRandom" else {}
    with captured() as out:
        result = explainer.generate_counterfactuals(
            query,
            total_CFs=1,
            desired_class="opposite",
            features_to_vary=space.to_vary,
            permitted_range=space.permitted_range(x),
            **kwargs,
        )
    example = result.cf_examples_list[0]
    cfs = example.final_cfs_df_sparse
    if cfs is None or len(cfs) == 0:
        cfs = example.final_cfs_df
    if cfs is None or len(cfs) == 0:
        return np.full(len(x), np.nan), out.getvalue()
    return space.array(cfs.iloc[[0]])[0], out.getvalue()


def dice_loop(explainer: Any, space: DiceSpace, factuals: np.ndarray) -> tuple:
    """Counterfactuals for every factual, one DiCE call each, with the problems met.

    Returns
    -------
    cfs : ndarray
        Model-space counterfactuals (NaN rows where none).
    notes : dict
        ``errors`` (calls that raised), ``first_error`` and ``messages`` (distinct lines DiCE
        printed, with counts).
    """
    cfs = np.full(factuals.shape, np.nan)
    errors, first_error, messages = 0, None, {}
    for i, x in enumerate(factuals):
        np.random.seed(i)  # noqa: NPY002 -- DiCE's genetic method draws from the global RNG
        torch.manual_seed(i)
        try:
            cfs[i], text = dice_one(explainer, space, x, seed=i)
        except Exception as exc:  # DiCE may raise on a single query; count it as no CF
            errors += 1
            first_error = first_error or f"{type(exc).__name__}: {exc}"
            continue
        for line in message_lines(text):
            messages[line] = messages.get(line, 0) + 1
    return cfs, {"errors": errors, "first_error": first_error, "messages": messages}


def run_dice(
    dice_ml: Any, variant: str, data: Any, space: DiceSpace, model: Any, schema: Any, X: np.ndarray
) -> tuple[dict | None, dict]:
    """Build and run one DiCE variant on factuals ``X``; None and the reason if it cannot run."""
    label = f"DiCE {variant}"
    start = time.perf_counter()
    try:
        explainer = dice_explainer(dice_ml, variant, data, space, model)
    except Exception as exc:  # e.g. a backend that cannot handle this model
        return None, {"skipped": f"{type(exc).__name__}: {exc}"}
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    cfs, notes = dice_loop(explainer, space, X)
    gen_s = time.perf_counter() - start
    stats = summarise(model, schema, cfs, X)
    return row(label, fit_s, gen_s, len(X), stats, stats), notes


# ---------------------------------------------------------------------------------- report
def fmt(value: Any, spec: str) -> str:
    """Format a number, or ``-`` for None."""
    return "-" if value is None else format(value, spec)


COLUMNS = [
    ("fit s", "fit_s", 1, ".2f"),
    ("generate s", "generate_s", 1, ".2f"),
    ("total s", "total_s", 1, ".2f"),
    ("ms/CF", "s_per_cf", 1000, ".2f"),
    ("valid", "valid", 1, ".3f"),
    ("L1", "l1", 1, ".3f"),
    ("infeasible", "infeasible", 1, ".3f"),
    ("valid@D", "valid_at_d", 1, ".3f"),
    ("L1@D", "l1_at_d", 1, ".3f"),
]


def table(rows: list[dict], dice_rows: list[dict]) -> str:
    """The markdown table, with one speed-up column per DiCE variant that ran."""
    head = ["method", "factuals"] + [c[0] for c in COLUMNS]
    head += [f"x {r['method']}" for r in dice_rows]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["method"], str(r["factuals"])]
        cells += [fmt(None if r[k] is None else f * r[k], spec) for _, k, f, spec in COLUMNS]
        cells += [fmt(d["s_per_cf"] / r["s_per_cf"], ".1f") for d in dice_rows]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description="Time recourse-bench's methods against DiCE on Adult's MLP (see the docstring)."
    )
    parser.add_argument("--factuals", type=int, default=1000, help="factuals for our methods")
    parser.add_argument("--dice-factuals", type=int, default=50, help="factuals for DiCE")
    parser.add_argument(
        "--methods", nargs="*", default=None, choices=[m[0] for m in OURS], help="our methods"
    )
    parser.add_argument(
        "--dice", nargs="*", default=DICE_VARIANTS, choices=DICE_VARIANTS, help="DiCE variants"
    )
    parser.add_argument(
        "--dice-precision",
        type=int,
        default=2,
        help="decimals DiCE rounds real-valued features to (integer ones: whole units)",
    )
    parser.add_argument("--out", default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.factuals < 1 or args.dice_factuals < 1:
        parser.error("--factuals and --dice-factuals must be >= 1")
    return args


def run_all_dice(dice_ml: Any, args: argparse.Namespace, splits: Any, model: Any, X: np.ndarray):
    """Every requested DiCE variant: table rows and per-variant notes."""
    space = DiceSpace(splits.schema)
    data = dice_data(dice_ml, space, splits, args.dice_precision)
    rows, notes = [], {}
    for variant in args.dice:
        print(f"... DiCE {variant} on {len(X)} factuals", flush=True)
        result, notes[variant] = run_dice(dice_ml, variant, data, space, model, splits.schema, X)
        if result is None:
            print(f"    skipped DiCE {variant}: {notes[variant]['skipped']}", flush=True)
        else:
            rows.append(result)
    return rows, notes


def print_notes(notes: dict) -> None:
    """What DiCE raised or printed, per variant."""
    for variant, note in notes.items():
        if note.get("errors"):
            first = note["first_error"]
            print(f"DiCE {variant}: {note['errors']} queries raised (no CF); first: {first}")
        for line, count in note.get("messages", {}).items():
            print(f"DiCE {variant} printed x{count}: {line[:160]}")


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print (and optionally save) the table."""
    args = parse_args(argv)
    dice_ml = import_dice()
    torch.set_num_threads(1)
    info = machine_info()
    print(" ".join(f"{k}={v}" for k, v in info.items()), flush=True)
    wall = time.perf_counter()
    splits, model, factuals = load(args.factuals)
    d = min(args.dice_factuals, len(factuals))
    print(f"Adult MLP: {len(factuals)} rejected test rows as factuals, DiCE on the first {d}")
    ours = [m for m in OURS if args.methods is None or m[0] in args.methods]
    rows = []
    for label, name, params in ours:
        print(f"... {label} on {len(factuals)} factuals", flush=True)
        rows.append(run_ours(label, name, params, model, splits, factuals, d))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dice_rows, notes = run_all_dice(dice_ml, args, splits, model, factuals[:d])
    print()
    print(table(rows + dice_rows, dice_rows))
    total = time.perf_counter() - wall
    print(f"\nD = {d}; timings are wall-clock upper bounds; total {total:.0f} s")
    print_notes(notes)
    kinds = sorted(
        {f"{w.category.__name__}: {str(w.message).splitlines()[0][:120]}" for w in caught}
    )
    for text in kinds:
        print(f"warning during DiCE: {text}")
    if args.out:
        payload = {"machine": info, "dice_factuals": d, "rows": rows + dice_rows, "notes": notes}
        payload["warnings"] = kinds
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
