"""Benchmark integrity: whatever a method returns is checked, and a broken recourse never scores.

A run over German credit with plugins whose output breaks the contract (a list, a wrong shape,
infinities) or the schema (X + 5; immutable features changed). Each must give the documented
rows: ``error`` rows naming the problem and the fix, or ``violations`` > 0 with the infeasible
recourses counted as not found, never as valid, and never marked best in a table.
"""

import contextlib
import io

import numpy as np
import pandas as pd
import pytest
import yaml

from recourse_bench import cli
from recourse_bench.api import (
    CONSTRAINTS,
    ContractError,
    EvalContext,
    Schema,
    Splits,
    check_recourse_output,
)

from .conftest import PLUGINS

BROKEN = ("plus-five", "ignores-immutables", "returns-inf", "returns-list", "wrong-shape")
CONFIG = {
    "name": "integrity",
    "seeds": 2,
    "n_factuals": 30,
    "datasets": ["german"],
    "models": [{"name": "logreg", "params": {"epochs": 100}}],
    "methods": [*BROKEN, "nearest-neighbour"],
    "shifts": [{"name": "retrain-seed", "params": {"n_models": 3}}],
}


@pytest.fixture(scope="module")
def broken_run(tmp_path_factory):
    """The run of every broken plugin beside nearest neighbour: (exit code, stdout, folder)."""
    folder = tmp_path_factory.mktemp("integrity")
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        plugin = str(PLUGINS / "broken_outputs.py")
        code = cli.main(
            ["run", str(config), "--out", str(folder / "run"), "-q", "--plugin", plugin]
        )
    return code, out.getvalue(), err.getvalue(), folder / "run"


def _rows(run, method, metric=None):
    frame = pd.read_parquet(run / "results.parquet")
    rows = frame[frame["method"] == method]
    return rows if metric is None else rows[rows["metric"] == metric]


def test_a_broken_contract_is_an_error_row_naming_the_fix(broken_run):
    code, _, err, run = broken_run
    assert code == 1  # some cells failed; the rest of the matrix is complete
    expected = {
        "returns-inf": "partly NaN or infinite",
        "returns-list": "return a numpy array; got list",
        "wrong-shape": "an output of shape (30, 60) (n, d); got shape (29, 60)",
    }
    for method, problem in expected.items():
        rows = _rows(run, method)
        assert (rows["status"] == "error").all() and len(rows) == 2  # one per seed
        for reason in rows["reason"]:
            assert reason.startswith(f"ContractError: {method}.generate: expected")
            assert problem in reason and "To fix:" in reason and "\n" not in reason
        assert f"recourse german/logreg/{method} seed 0: ContractError" in err
    assert (_rows(run, "nearest-neighbour")["status"] == "ok").all()


def test_recourses_outside_the_schema_count_as_not_found(broken_run):
    _, _, _, run = broken_run

    def values(method, metric):
        rows = _rows(run, method, metric)
        assert (rows["status"] == "ok").all()
        return rows

    plus_five = {m: values("plus-five", m) for m in ("violations", "coverage", "validity")}
    assert (plus_five["violations"]["value"] == 1.0).all()
    assert (plus_five["violations"]["n"] == 30).all()  # every factual got an (infeasible) row
    assert (plus_five["coverage"]["value"] == 0.0).all()
    assert (plus_five["validity"]["value"] == 0.0).all()  # accepted by the model, yet not valid
    cost = values("plus-five", "cost-l1")
    assert cost["value"].isna().all() and (cost["n"] == 0).all()
    assert values("plus-five", "invalidation-rate")["value"].isna().all()
    for reason in plus_five["violations"]["reason"]:
        kind = reason.split(":")[0]
        assert kind in CONSTRAINTS and "30 of 30 recourses break a constraint" in reason

    violations = values("ignores-immutables", "violations")
    assert (violations["value"] > 0).all() and (violations["value"] < 1).all()
    assert violations["reason"].str.contains("immutable").all()
    feasible = (1 - violations["value"].to_numpy()) * 30
    coverage = values("ignores-immutables", "coverage")["value"].to_numpy()
    np.testing.assert_allclose(coverage * 30, feasible)  # the infeasible ones are not found
    validity = values("ignores-immutables", "validity")["value"].to_numpy()
    assert (validity <= coverage).all()
    np.testing.assert_array_equal(values("ignores-immutables", "cost-l1")["n"], feasible)
    assert (values("nearest-neighbour", "violations")["value"] == 0).all()


def test_no_table_marks_a_method_with_violations_best(broken_run):
    _, summary, _, run = broken_run
    latex = (run / "tables" / "cost-l1.tex").read_text(encoding="utf-8")
    row = next(line for line in latex.splitlines() if line.startswith("ignores-immutables"))
    assert r"\textbf" not in row and r"\textsuperscript{" in row  # cheaper, but footnoted
    assert "break a constraint" in latex
    nearest = next(line for line in latex.splitlines() if line.startswith("nearest-neighbour"))
    assert r"\textbf" in nearest  # the best among the methods whose recourses are feasible
    markdown = (run / "tables" / "cost-l1.md").read_text(encoding="utf-8")
    assert "**" not in next(line for line in markdown.splitlines() if "ignores-immutables" in line)
    report = (run / "report.md").read_text(encoding="utf-8")
    assert "infeasible recourses, counted as not found" in report
    assert "violations" in summary.splitlines()[2]  # the terminal summary's header row


def test_every_config_measures_violations(tmp_path, write_config, run_cli):
    config = dict(CONFIG, methods=["nearest-neighbour"], metrics=["validity"], seeds=1)
    code, _, err = run_cli("run", write_config(config), "--out", tmp_path / "run", "-q")
    assert code == 0, err
    frame = pd.read_parquet(tmp_path / "run" / "results.parquet")
    assert set(frame["metric"].dropna()) == {"validity", "violations"}


# ------------------------------------------------------------------------------ the contracts
SCHEMA = Schema(
    features=("sex", "age", "income", "job=a", "job=b", "children"),
    kinds=("binary", "integer", "continuous", "categorical", "categorical", "integer"),
    immutable=(True, False, False, False, False, False),
    direction=(0, 1, 0, 0, 0, -1),
    lower=(0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    upper=(1.0, 1.0, 0.8, 1.0, 1.0, 1.0),
    steps=(0.0, 0.1, 0.0, 0.0, 0.0, 0.25),
    groups=((3, 4),),
)
FACTUAL = np.array([1.0, 0.3, 0.5, 1.0, 0.0, 0.5])


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        ({0: 0.0}, "immutable"),
        ({1: 0.2}, "direction"),  # age may only increase
        ({5: 0.75}, "direction"),  # children may only decrease
        ({2: 0.9}, "bound"),
        ({3: 0.0}, "one-hot"),  # no member set
        ({4: 1.0}, "one-hot"),  # two members set
        ({3: 0.5, 4: 0.5}, "one-hot"),
        ({1: 0.35}, "integer"),
        ({5: 0.3}, "integer"),
    ],
)
def test_each_kind_of_broken_constraint_is_found(change, kind):
    recourse = FACTUAL.copy()
    for column, value in change.items():
        recourse[column] = value
    broken = SCHEMA.broken_constraints(recourse[None], FACTUAL[None])
    assert [k for k, cells in broken.items() if cells.any()][:1] == [kind]
    assert SCHEMA.violations(recourse[None], FACTUAL[None]).tolist() == [True]
    assert SCHEMA.first_violation(recourse[None], FACTUAL[None]).tolist() == [kind]


def test_feasible_recourses_within_the_tolerance_break_nothing():
    ok = FACTUAL.copy()
    ok[[1, 2, 3, 4, 5]] = [0.4 + 1e-7, 0.8 + 5e-7, 0.0, 1.0 - 1e-7, 0.25]
    missing = np.full_like(FACTUAL, np.nan)
    rows = np.stack([ok, FACTUAL, missing])
    assert SCHEMA.violations(rows, np.stack([FACTUAL] * 3)).tolist() == [False] * 3
    assert SCHEMA.first_violation(rows, np.stack([FACTUAL] * 3)).tolist() == [""] * 3


def test_a_factuals_own_value_outside_its_bound_is_not_held_against_the_method():
    factual = FACTUAL.copy()
    factual[2] = 0.95  # above income's upper bound, as the data came
    recourse = factual.copy()
    recourse[1] = 0.5  # only age changed
    assert not SCHEMA.violations(recourse[None], factual[None]).any()


def test_the_harness_context_counts_infeasible_recourses_as_not_found():
    splits = Splits(np.zeros((2, 6)), np.zeros(2), np.zeros((2, 6)), np.zeros(2), SCHEMA)
    factuals = np.stack([FACTUAL] * 3)
    returned = factuals.copy()
    returned[0, 1] = 0.5  # feasible
    returned[1, 0] = 0.0  # immutable changed
    returned[2] = np.nan  # none found
    ctx = EvalContext.feasible_only(factuals, returned, None, splits)
    assert ctx.found.tolist() == [True, False, False]
    np.testing.assert_array_equal(ctx.returned_recourses, returned)


@pytest.mark.parametrize(
    ("output", "problem"),
    [
        ([[0.1, 0.2]], "return a numpy array; got list"),
        (np.zeros((1, 3)), "got shape (1, 3)"),
        (np.zeros((1, 2), dtype=int), "got dtype int64"),
        (np.array([[0.1, np.inf]]), "row 0 partly NaN or infinite"),
        (np.array([[0.1, np.nan]]), "row 0 partly NaN or infinite"),
    ],
)
def test_the_output_contract_names_the_problem_and_the_fix(output, problem):
    with pytest.raises(ContractError, match="To fix:") as caught:
        check_recourse_output(output, np.zeros((1, 2)))
    assert problem in str(caught.value)


def test_the_output_contract_accepts_recourses_and_missing_rows():
    out = np.array([[0.1, 0.2], [np.nan, np.nan]], dtype=np.float32)
    checked = check_recourse_output(out, np.zeros((2, 2)))
    assert checked.dtype == np.float64
    np.testing.assert_array_equal(checked, out.astype(float))
