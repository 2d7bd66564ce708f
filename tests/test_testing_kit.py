"""The conformance kit (recourse_bench.testing): built-in methods pass it, broken ones fail it.

Every built-in method passes every check; a deliberately broken method fails exactly the checks
of its faults, with messages that say what was expected; the pytest parametrisation has
readable ids and strict xfail marks; expected failures are strict.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from recourse_bench import registry
from recourse_bench.api import Interval, MethodTags, RecourseMethod
from recourse_bench.methods.nearest_neighbour import NearestNeighbour
from recourse_bench.testing import (
    CHECKS,
    CheckResult,
    check_method,
    parametrize_with_checks,
    run_check,
    toy_problem,
)

from .conftest import builtin_methods


def statuses(results: list[CheckResult], status: str) -> set[str]:
    return {r.name for r in results if r.status == status}


# ------------------------------------------------------------------------------ test methods
class LeakyNeighbour(RecourseMethod):
    """The closest accepted training point that only lowers decrease-only columns.

    Three deliberate faults: it writes the recourses into its input array, it ignores immutable
    columns, and it seeds numpy's global random state for its tie-breaking jitter. Everything
    else (bounds, directions, groups, grid, validity, determinism, pickling, errors) is right.
    """

    name = "leaky-neighbour"
    parameter_constraints = {"random_state": (Interval("int"), None)}

    def __init__(self, random_state: int | None = None):
        self.random_state = random_state

    def fit(self, model, splits):
        super().fit(model, splits)
        X = splits.X_train
        self.candidates_ = X[model.predict(X) == 1].copy()
        return self

    def generate(self, X):
        self.check_fitted()
        checked = self.check_factuals(X)
        np.random.seed(0 if self.random_state is None else self.random_state)  # noqa: NPY002
        jitter = np.random.uniform(0, 1e-9, size=len(self.candidates_))  # noqa: NPY002
        direction = np.asarray(self.schema_.direction)
        for i, x in enumerate(checked):
            delta = self.candidates_ - x
            allowed = (delta[:, direction < 0] <= 0).all(axis=1)
            allowed &= (delta[:, direction > 0] >= 0).all(axis=1)
            cost = np.abs(delta).sum(axis=1) + jitter
            cost[~allowed] = np.inf
            best = int(np.argmin(cost))
            X[i] = self.candidates_[best] if np.isfinite(cost[best]) else np.nan
        return X


LEAKY_FAILS = {
    "check_inputs_not_mutated": "writes the recourses into X",
    "check_immutables_kept": "searches every column",
    "check_no_global_rng": "seeds np.random",
}


class InitSetsState(NearestNeighbour):
    def __init__(self, pool: str = "accepted", cost: str = "l1", random_state: int | None = None):
        super().__init__(pool=pool, cost=cost, random_state=random_state)
        self.candidates_ = None


class FitReturnsNothing(NearestNeighbour):
    def fit(self, model, splits):
        super().fit(model, splits)


class NoFittedCheck(NearestNeighbour):
    def check_fitted(self):
        pass


class NoFactualCheck(NearestNeighbour):
    def check_factuals(self, X):
        return np.array(X, dtype=float)


class TouchesModel(NearestNeighbour):
    def fit(self, model, splits):
        model.net.train()  # flips the model's mode: predictions stay, the model still changed
        return super().fit(model, splits)


class PartialRows(NearestNeighbour):
    tags = MethodTags(trains=True)  # not batch invariant: the first row of each call breaks

    def generate(self, X):
        out = super().generate(X)
        out[0, 0] = np.nan
        return out


class BadSets(NearestNeighbour):
    """Offers sets of the wrong width."""

    def recourse_sets(self):
        return np.zeros((30, 2, 3))


class InfeasibleSets(NearestNeighbour):
    """Offers each factual itself with an immutable changed."""

    def generate(self, X):
        out = super().generate(X)
        sets = np.stack([X, X], axis=1)
        sets[:, 1, 3] = 1 - sets[:, 1, 3]  # the toy problem's immutable "fixed"
        self.sets_ = sets
        return out

    def recourse_sets(self):
        return self.sets_


class FreshEntropy(NearestNeighbour):
    def generate(self, X):
        out = super().generate(X)
        found = np.isfinite(out).all(axis=1)
        noise = np.random.default_rng().uniform(-1e-9, 1e-9, found.sum())
        out[found, 0] = np.clip(out[found, 0] + noise, 0.0, 1.0)
        return out


class Unpicklable(NearestNeighbour):
    def fit(self, model, splits):
        super().fit(model, splits)
        self.distance_ = lambda a, b: np.abs(a - b).sum()
        return self


class BudgetPerCall(NearestNeighbour):
    tags = MethodTags(trains=True, batch_invariant=True)  # wrong: only 20 rows are searched

    def generate(self, X):
        out = super().generate(X)
        out[20:] = np.nan
        return out


class InvariantNeighbour(NearestNeighbour):
    tags = MethodTags(trains=True, batch_invariant=True)


class NonLinearOnly(NearestNeighbour):
    def skip_reason(self, model):
        if getattr(model, "linear", False):
            return "non-linear-only needs a non-linear model"
        return super().skip_reason(model)


class RefusesEveryModel(NearestNeighbour):
    def skip_reason(self, model):
        return "needs a quantum computer"


class WantsTestParams(NearestNeighbour):
    _test_params = {"cost": "l2"}

    def fit(self, model, splits):
        if self.cost != "l2":
            raise RuntimeError("the kit did not apply _test_params")
        return super().fit(model, splits)


# ------------------------------------------------------------------------------ toy problem
def test_toy_problem_has_every_constraint_and_is_cached():
    start = time.perf_counter()
    problem = toy_problem()
    schema = problem.schema
    assert any(schema.immutable) and -1 in schema.direction
    assert any(s > 0 for s, imm in zip(schema.steps, schema.immutable, strict=True) if not imm)
    mutability = {all(schema.immutable[j] for j in g) for g in schema.groups}
    assert mutability == {True, False}  # a mutable and an immutable one-hot group
    assert set(schema.lower) == {0.0} and set(schema.upper) == {1.0}
    assert problem.model.differentiable and problem.model.linear
    assert problem.factuals.shape == (30, schema.n_features)
    assert (problem.model.predict(problem.factuals) == 0).all()

    problem.factuals[:] = -1.0  # a copy: the cache is not corrupted
    again = toy_problem()
    assert (again.factuals >= 0).all()
    assert time.perf_counter() - start < 10
    cached = time.perf_counter()
    toy_problem()
    assert time.perf_counter() - cached < 0.5
    assert not np.array_equal(toy_problem(seed=1).splits.X_train, again.splits.X_train)


# -------------------------------------------------------------------------- built-in methods
@pytest.mark.parametrize("name", builtin_methods())
def test_every_builtin_method_passes_the_kit(name):
    cls = registry.get("method", name)
    method = cls()
    params = method.get_params()
    results = check_method(method)
    assert [r.name for r in results] == list(CHECKS)
    assert {r.status for r in results} <= {"passed", "skipped"}
    assert statuses(results, "skipped") <= {"check_batch_invariance"}
    assert not hasattr(method, "model_") and method.get_params() == params  # never mutated


# --------------------------------------------------------------------------- broken methods
@pytest.fixture(scope="module")
def leaky_results():
    return check_method(LeakyNeighbour(), raise_on_failure=False)


def test_a_broken_method_fails_exactly_its_faults(leaky_results):
    assert statuses(leaky_results, "failed") == set(LEAKY_FAILS)
    assert statuses(leaky_results, "skipped") == {"check_batch_invariance"}
    assert statuses(leaky_results, "passed") == set(CHECKS) - set(LEAKY_FAILS) - {
        "check_batch_invariance"
    }
    assert all(r.passed == (r.name not in LEAKY_FAILS) for r in leaky_results)
    assert {r.model for r in leaky_results if r.name in LEAKY_FAILS} == {"logreg"}


def test_failure_messages_say_what_was_expected_and_how_to_fix(leaky_results):
    messages = {r.name: r.message for r in leaky_results if not r.passed}
    for message in messages.values():
        assert message.startswith("expected ") and "; got " in message and "To fix: " in message
    assert "generate changed the factuals X" in messages["check_inputs_not_mutated"]
    assert "self.check_factuals(X)" in messages["check_inputs_not_mutated"]
    assert "immutable columns (fixed, h=x, h=y)" in messages["check_immutables_kept"]
    assert "->" in messages["check_immutables_kept"]  # an example of a changed value
    assert "numpy's global random state" in messages["check_no_global_rng"]
    assert "np.random.default_rng(self.random_state)" in messages["check_no_global_rng"]


def test_check_method_raises_with_every_unexpected_failure():
    state = np.random.get_state()  # noqa: NPY002
    with pytest.raises(AssertionError) as info:
        check_method(LeakyNeighbour())
    report = str(info.value)
    assert f"failed 3 of {len(CHECKS)} conformance checks" in report
    for name in LEAKY_FAILS:
        assert f"- {name}: expected" in report
    assert "check_valid_recourses" not in report
    after = np.random.get_state()  # noqa: NPY002
    assert np.array_equal(state[1], after[1]) and state[2] == after[2]  # the kit restored it


FAULTS = [
    (InitSetsState(), {"check_init_stores_params"}),
    (FitReturnsNothing(), {"check_fit_returns_self"}),
    (NoFittedCheck(), {"check_not_fitted_error"}),
    (NoFactualCheck(), {"check_bad_factuals_raise"}),
    (TouchesModel(), {"check_inputs_not_mutated"}),
    (PartialRows(), {"check_output_shape"}),
    (BadSets(), {"check_offered_sets"}),
    (InfeasibleSets(), {"check_offered_sets"}),
    (FreshEntropy(), {"check_reproducible", "check_pickle_round_trip"}),
    (Unpicklable(), {"check_pickle_round_trip"}),
    (BudgetPerCall(), {"check_batch_invariance"}),
]


@pytest.mark.parametrize(
    ("method", "fails"), [pytest.param(m, f, id=type(m).__name__) for m, f in FAULTS]
)
def test_each_fault_fails_its_own_check(method, fails):
    results = check_method(method, raise_on_failure=False)
    assert statuses(results, "failed") == fails
    for result in results:
        if not result.passed:
            assert "expected " in result.message and "To fix: " in result.message


def test_declared_batch_invariance_is_checked():
    results = check_method(InvariantNeighbour())
    assert statuses(results, "passed") == set(CHECKS)


def test_the_kit_applies_test_params_on_clones_only():
    method = WantsTestParams()
    check_method(method)
    assert method.cost == "l1"

    class MisnamedTestParams(NearestNeighbour):
        _test_params = {"n_steps": 3}

    results = check_method(MisnamedTestParams(), raise_on_failure=False)
    assert all(not r.passed for r in results)
    assert "_test_params to name parameters of __init__; got n_steps" in results[0].message


def test_a_method_refusing_the_toy_model_falls_back_to_one_it_accepts():
    results = check_method(NonLinearOnly())
    assert {r.model for r in results if r.name in ("check_feasible", "check_reproducible")} == {
        "mlp"
    }
    assert statuses(results, "failed") == set()


def test_a_method_refusing_every_toy_model_gets_its_fitting_checks_skipped():
    results = check_method(RefusesEveryModel())
    assert statuses(results, "passed") == {
        "check_init_stores_params",
        "check_parameter_constraints",
        "check_params_round_trip",
        "check_not_fitted_error",
    }
    skipped = [r for r in results if r.skipped]
    assert len(skipped) == len(CHECKS) - 4
    assert all("needs a quantum computer" in r.message and "forest" in r.message for r in skipped)


def test_run_check_runs_one_check_and_reports_unexpected_errors():
    result = run_check(NoFactualCheck(), "check_valid_recourses")
    assert result.status == "passed" and result.model == "logreg"
    with pytest.raises(ValueError, match="unknown check 'check_everything'"):
        run_check(NearestNeighbour(), "check_everything")


# ------------------------------------------------------------------ expected failed checks
def test_expected_failures_are_strict():
    results = check_method(LeakyNeighbour(), expected_failed_checks=LEAKY_FAILS)
    assert statuses(results, "xfailed") == set(LEAKY_FAILS)
    assert all(r.ok for r in results)
    assert {r.expected_failure for r in results if r.status == "xfailed"} == set(
        LEAKY_FAILS.values()
    )

    partial = dict(LEAKY_FAILS)
    del partial["check_no_global_rng"]
    with pytest.raises(AssertionError) as info:
        check_method(LeakyNeighbour(), expected_failed_checks=partial)
    message = str(info.value)
    assert f"failed 1 of {len(CHECKS)}" in message and "check_no_global_rng" in message
    assert "check_immutables_kept" not in str(info.value)

    stale = {"check_valid_recourses": "thought it never found one"}
    with pytest.raises(AssertionError, match="remove them from it") as info:
        check_method(NearestNeighbour(), expected_failed_checks=stale)
    assert "check_valid_recourses (listed because: thought it never found one)" in str(info.value)
    results = check_method(NearestNeighbour(), expected_failed_checks=stale, raise_on_failure=False)
    (xpassed,) = [r for r in results if r.name == "check_valid_recourses"]
    assert xpassed.status == "xpassed" and not xpassed.ok


def test_expected_failures_may_be_a_callable_and_names_are_checked():
    def expected(method):
        return LEAKY_FAILS if isinstance(method, LeakyNeighbour) else None

    check_method(LeakyNeighbour(), expected_failed_checks=expected)
    check_method(NearestNeighbour(), expected_failed_checks=expected)
    with pytest.raises(ValueError, match="unknown checks check_speed"):
        check_method(NearestNeighbour(), expected_failed_checks={"check_speed": "slow"})
    with pytest.raises(TypeError, match=r"pass an instance, e.g. NearestNeighbour\(\)"):
        check_method(NearestNeighbour)


# ------------------------------------------------------------------- pytest parametrisation
def test_parametrize_with_checks_ids_and_marks():
    decorator = parametrize_with_checks(
        [NearestNeighbour(), LeakyNeighbour()],
        expected_failed_checks=lambda m: LEAKY_FAILS if isinstance(m, LeakyNeighbour) else {},
    )
    argnames, params = decorator.mark.args[:2]
    assert tuple(argnames) == ("method", "check")
    ids = [p.id for p in params]
    assert len(ids) == 2 * len(CHECKS)
    assert ids[0] == "nearest-neighbour-check_init_stores_params"
    assert "leaky-neighbour-check_immutables_kept" in ids
    for param in params:
        method, check = param.values
        xfails = [m for m in param.marks if m.name == "xfail"]
        if isinstance(method, LeakyNeighbour) and check.name in LEAKY_FAILS:
            (mark,) = xfails
            assert mark.kwargs == {"strict": True, "reason": LEAKY_FAILS[check.name]}
        else:
            assert not xfails
    with pytest.raises(ValueError, match="unknown checks"):
        parametrize_with_checks([NearestNeighbour()], {"check_typo": "x"})


@parametrize_with_checks(
    [InvariantNeighbour(), LeakyNeighbour()],
    expected_failed_checks=lambda m: LEAKY_FAILS if isinstance(m, LeakyNeighbour) else None,
)
def test_parametrize_with_checks_runs_each_check(method, check):
    check(method)


def test_a_check_that_does_not_apply_skips_the_test():
    class Undeclared(NearestNeighbour):
        tags = MethodTags(trains=True)  # batch_invariant not declared

    index = list(CHECKS).index("check_batch_invariance")
    method, check = parametrize_with_checks([Undeclared()]).mark.args[1][index].values
    assert check.name == "check_batch_invariance"
    with pytest.raises(pytest.skip.Exception, match="batch_invariant=True"):
        check(method)


class HiddenWachter(NearestNeighbour):
    """Obtains Wachter from the registry in fit, without declaring it in ``uses``."""

    def fit(self, model, splits):
        registry.get("method", "wachter")
        return super().fit(model, splits)


def test_a_component_obtained_from_the_registry_must_be_declared():
    hidden = run_check(HiddenWachter(), "check_declared_uses")
    assert hidden.status == "failed"
    assert "add `uses = (('method', 'wachter'),)` to HiddenWachter" in hidden.message

    class DeclaredWachter(HiddenWachter):
        uses = (("method", "wachter"),)

    assert run_check(DeclaredWachter(), "check_declared_uses").status == "passed"
