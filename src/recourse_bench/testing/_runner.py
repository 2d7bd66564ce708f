"""Running the checks: one result per check, a report, and a pytest parametrisation."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sklearn.base import clone

from ..api import Dataset, Metric, NotApplicable, RecourseMethod, Shift, Trainer
from ._checks import CHECKS, NEEDS_MODEL
from ._common import CheckFailed, SkipCheck
from ._kit_dataset import CHECKS as DATASET_CHECKS
from ._kit_metric import CHECKS as METRIC_CHECKS
from ._kit_model import CHECKS as MODEL_CHECKS
from ._kit_shift import CHECKS as SHIFT_CHECKS
from ._kit_shift import N_MODELS
from ._problem import problem_for, toy_problem

ExpectedFailures = Mapping[str, str] | Callable[[RecourseMethod], Mapping[str, str] | None] | None


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one method.

    Attributes
    ----------
    name : str
        The check, e.g. ``check_immutables_kept``.
    passed : bool
        False only when the check ran and failed (a skipped check has ``passed=True``).
    message : str
        Why it failed (what was expected, what happened, how to fix it) or why it was skipped;
        empty when it passed.
    skipped : bool
        The check does not apply (e.g. batch invariance that is not declared, or no toy model
        the method accepts).
    expected_failure : str or None
        The reason given in ``expected_failed_checks`` when the check was listed there.
    model : str or None
        The toy model the check ran on (``logreg``, ``mlp`` or ``forest``); None for checks that
        need no model.
    seconds : float
        Wall time of the check.
    """

    name: str
    passed: bool
    message: str = ""
    skipped: bool = False
    expected_failure: str | None = None
    model: str | None = None
    seconds: float = 0.0

    @property
    def status(self) -> str:
        """``passed``, ``failed``, ``skipped``, ``xfailed`` or ``xpassed``.

        ``xfailed``: listed in ``expected_failed_checks`` and failed; ``xpassed``: listed there
        but passed (an error, as with ``pytest.mark.xfail(strict=True)``).
        """
        if self.skipped:
            return "skipped"
        if self.expected_failure is not None:
            return "xpassed" if self.passed else "xfailed"
        return "passed" if self.passed else "failed"

    @property
    def ok(self) -> bool:
        """True unless the status is ``failed`` or ``xpassed``."""
        return self.status not in ("failed", "xpassed")

    def __str__(self) -> str:
        text = f"{self.name}: {self.status}"
        if self.message and (not self.passed or self.skipped):
            text += f" ({self.message})"
        return text


def _prepare(method: RecourseMethod, random_state: int | None = 0) -> RecourseMethod:
    """A fresh clone with the class's ``_test_params`` set and ``random_state`` fixed."""
    try:
        prepared = clone(method)
    except Exception as exc:
        raise CheckFailed(
            f"expected sklearn.base.clone(method) to copy the method; got "
            f"{type(exc).__name__}: {exc}. To fix: __init__ must store each parameter unchanged "
            "under its own name (see check_init_stores_params)"
        ) from exc
    test_params = dict(getattr(prepared, "_test_params", None) or {})
    unknown = sorted(set(test_params) - set(prepared.get_params(deep=False)))
    if unknown:
        raise CheckFailed(
            f"expected {type(method).__name__}._test_params to name parameters of __init__; got "
            f"{', '.join(unknown)}. To fix: list only parameters of "
            f"{type(method).__name__}.__init__ in _test_params"
        )
    if test_params:
        prepared.set_params(**test_params)
    if "random_state" in prepared.get_params(deep=False):
        prepared.set_params(random_state=random_state)
    return prepared


_ENTRY_POINTS = {
    "method": "fit and generate",
    "dataset": "load",
    "model": "fit",
    "shift": "updates",
    "metric": "the metric",
}


def _unexpected(name: str, exc: BaseException, kind: str = "method") -> str:
    """A failure message for an exception that the check did not anticipate."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}" if frames else ""
    return (
        f"expected {name} to run without errors; got {type(exc).__name__}: {exc}{where}. "
        f"To fix: make {_ENTRY_POINTS[kind]} work on recourse_bench.testing.toy_problem() (run "
        "by hand to see the full traceback)"
    )


#: The checks of each kind of plugin, by name, in the order they run.
KITS: dict[str, dict[str, Callable[..., None]]] = {
    "method": CHECKS,
    "dataset": DATASET_CHECKS,
    "model": MODEL_CHECKS,
    "shift": SHIFT_CHECKS,
    "metric": METRIC_CHECKS,
}
_KIND_OF: tuple[tuple[type, str], ...] = (
    (RecourseMethod, "method"),
    (Dataset, "dataset"),
    (Trainer, "model"),
    (Shift, "shift"),
    (Metric, "metric"),
)


def kind_of(component: Any) -> str:
    """The plugin kind of an instance (or a metric); a TypeError for anything else."""
    if isinstance(component, type):
        raise TypeError(
            f"pass an instance, e.g. {component.__name__}(), not the class {component.__name__}"
        )
    for base, kind in _KIND_OF:
        if isinstance(component, base):
            return kind
    raise TypeError(
        "expected a recourse method, dataset, trainer, shift or metric of recourse_bench.api, "
        f"got {type(component).__name__}"
    )


def _prepare_component(component: Any) -> Any:
    """A fresh clone with ``_test_params`` set (a shift asks for a few updated models)."""
    if isinstance(component, Metric):
        return component
    prepared = clone(component)
    test_params = dict(getattr(prepared, "_test_params", None) or {})
    params = prepared.get_params(deep=False)
    if isinstance(prepared, Shift) and "n_models" in params and "n_models" not in test_params:
        test_params["n_models"] = N_MODELS
    unknown = sorted(set(test_params) - set(params))
    if unknown:
        raise CheckFailed(
            f"expected {type(component).__name__}._test_params to name parameters of __init__; "
            f"got {', '.join(unknown)}. To fix: list only parameters of __init__ in _test_params"
        )
    return prepared.set_params(**test_params) if test_params else prepared


def run_component_check(
    component: Any, name: str, *, seed: int = 0, expected_failure: str | None = None
) -> CheckResult:
    """Run one check of the component's kit on a fresh clone (never raises); see run_check."""
    kind = kind_of(component)
    if kind == "method":
        return run_check(component, name, seed=seed, expected_failure=expected_failure)
    checks = KITS[kind]
    if name not in checks:
        raise ValueError(f"unknown {kind} check {name!r}; valid checks: {', '.join(checks)}")
    start = time.perf_counter()

    def result(passed: bool, message: str = "", skipped: bool = False) -> CheckResult:
        seconds = round(time.perf_counter() - start, 4)
        return CheckResult(name, passed, message, skipped, expected_failure, None, seconds)

    try:
        checks[name](_prepare_component(component), toy_problem(seed))
    except SkipCheck as exc:
        return result(True, str(exc), skipped=True)
    except NotApplicable as exc:  # the component says it cannot apply to the toy problem
        return result(True, f"does not apply to the toy problem: {exc}", skipped=True)
    except CheckFailed as exc:
        return result(False, str(exc))
    except Exception as exc:
        return result(False, _unexpected(name, exc, kind))
    return result(True)


def check_component(
    component: Any,
    *,
    expected_failed_checks: Mapping[str, str] | None = None,
    raise_on_failure: bool = True,
    seed: int = 0,
) -> list[CheckResult]:
    """Run the conformance kit of a plugin of any kind: method, dataset, model, shift, metric.

    A recourse method gets :func:`check_method`; a dataset, a trainer, a shift or a metric the
    checks of its kind (``recourse_bench.testing.KITS``), each on a fresh clone with the class's
    ``_test_params`` applied (a shift is asked for three updated models).

    Parameters
    ----------
    component : Dataset, Trainer, Shift, Metric or RecourseMethod
        An instance (a metric as registered).
    expected_failed_checks : dict, optional
        ``{check_name: reason}`` of checks known to fail (strict, as in :func:`check_method`).
    raise_on_failure : bool, default True
        Raise an ``AssertionError`` listing every unexpected failure.
    seed : int, default 0
        Seed of the toy problem.

    Returns
    -------
    list of CheckResult
        One result per check of the kit, in order.
    """
    kind = kind_of(component)
    if kind == "method":
        return check_method(
            component,
            expected_failed_checks=expected_failed_checks,
            raise_on_failure=raise_on_failure,
            seed=seed,
        )
    checks = KITS[kind]
    expected = dict(expected_failed_checks or {})
    unknown = sorted(set(expected) - set(checks))
    if unknown:
        raise ValueError(f"expected_failed_checks names unknown {kind} checks {', '.join(unknown)}")
    results = [
        run_component_check(component, name, seed=seed, expected_failure=expected.get(name))
        for name in checks
    ]
    if raise_on_failure:
        failed = [r for r in results if r.status == "failed"]
        xpassed = [r for r in results if r.status == "xpassed"]
        if failed or xpassed:
            raise AssertionError(_report(component, failed, xpassed, len(checks)))
    return results


def run_check(
    method: RecourseMethod, name: str, *, seed: int = 0, expected_failure: str | None = None
) -> CheckResult:
    """Run one check on a fresh clone of ``method`` and return its result (never raises).

    Parameters
    ----------
    method : RecourseMethod
        The method to check; it is cloned and never modified.
    name : str
        A key of :data:`CHECKS`.
    seed : int, default 0
        Seed of the toy problem.
    expected_failure : str, optional
        The reason the check is expected to fail (recorded in the result).

    Returns
    -------
    CheckResult
    """
    if name not in CHECKS:
        raise ValueError(f"unknown check {name!r}; valid checks: {', '.join(CHECKS)}")
    start = time.perf_counter()
    model = None

    def result(passed: bool, message: str = "", skipped: bool = False) -> CheckResult:
        return CheckResult(
            name,
            passed,
            message,
            skipped,
            expected_failure,
            model,
            round(time.perf_counter() - start, 4),
        )

    try:
        prepared = _prepare(method)
        if name in NEEDS_MODEL:
            problem, refusals = problem_for(prepared, seed)
            if problem is None:
                return result(True, f"no toy model that {prepared.name} accepts ({refusals})", True)
            model = problem.model_name
        else:
            problem = toy_problem(seed)
        CHECKS[name](prepared, problem)
    except SkipCheck as exc:
        return result(True, str(exc), skipped=True)
    except CheckFailed as exc:
        return result(False, str(exc))
    except Exception as exc:
        return result(False, _unexpected(name, exc))
    return result(True)


def _method_id(method: RecourseMethod) -> str:
    return getattr(method, "name", "") or type(method).__name__


def _require_instance(method: Any) -> None:
    if isinstance(method, type):
        raise TypeError(
            f"pass an instance, e.g. {method.__name__}(), not the class {method.__name__}"
        )
    if not isinstance(method, RecourseMethod):
        raise TypeError(
            f"expected a recourse_bench.api.RecourseMethod instance, got {type(method).__name__}"
        )


def _expected_for(method: RecourseMethod, expected: ExpectedFailures) -> dict[str, str]:
    """The ``{check: reason}`` expected to fail for ``method``; unknown names raise."""
    if expected is None:
        found: Mapping[str, str] | None = {}
    elif callable(expected):
        found = expected(method)
    else:
        found = expected
    found = dict(found or {})
    unknown = sorted(set(found) - set(CHECKS))
    if unknown:
        raise ValueError(
            f"expected_failed_checks names unknown checks {', '.join(unknown)}; "
            f"valid checks: {', '.join(CHECKS)}"
        )
    return {name: str(reason) for name, reason in found.items()}


def check_method(
    method: RecourseMethod,
    *,
    expected_failed_checks: ExpectedFailures = None,
    raise_on_failure: bool = True,
    seed: int = 0,
) -> list[CheckResult]:
    """Run every conformance check on fresh clones of ``method``.

    Each check gets its own ``sklearn.base.clone`` of ``method`` (which is never modified), with
    the class attribute ``_test_params`` (a dict, if any) applied through ``set_params`` to keep
    the checks fast, and ``random_state=0`` where the method has that parameter. Checks that fit
    run on the first toy model the method accepts (``skip_reason(model) is None``): ``logreg``,
    else ``mlp``, else ``forest``; a method that refuses all three gets those checks skipped.

    Parameters
    ----------
    method : RecourseMethod
        An instance, configured as it should be checked.
    expected_failed_checks : dict or callable, optional
        ``{check_name: reason}`` of checks known to fail, or a callable ``method -> dict``.
        Unknown check names raise ``ValueError``. Expected failures are strict, as with
        ``pytest.mark.xfail(strict=True)``: a listed check that passes is reported as
        ``xpassed`` and, with ``raise_on_failure``, raises, so that stale entries get removed.
    raise_on_failure : bool, default True
        Raise an ``AssertionError`` listing every unexpected failure and every check that was
        expected to fail but passed.
    seed : int, default 0
        Seed of the toy problem.

    Returns
    -------
    list of CheckResult
        One result per check, in the order of :data:`CHECKS`.

    Raises
    ------
    AssertionError
        With ``raise_on_failure``, when a check failed unexpectedly or passed unexpectedly.

    Examples
    --------
    >>> from recourse_bench.methods.nearest_neighbour import NearestNeighbour
    >>> results = check_method(NearestNeighbour())
    >>> sorted({r.status for r in results})
    ['passed', 'skipped']
    """
    _require_instance(method)
    expected = _expected_for(method, expected_failed_checks)
    results = [
        run_check(method, name, seed=seed, expected_failure=expected.get(name)) for name in CHECKS
    ]
    if raise_on_failure:
        failed = [r for r in results if r.status == "failed"]
        xpassed = [r for r in results if r.status == "xpassed"]
        if failed or xpassed:
            raise AssertionError(_report(method, failed, xpassed, len(CHECKS)))
    return results


def _report(
    component: Any, failed: list[CheckResult], xpassed: list[CheckResult], n_checks: int
) -> str:
    label = getattr(component, "label", None) or getattr(component, "name", "") or "component"
    lines = []
    if failed:
        lines.append(f"{label} failed {len(failed)} of {n_checks} conformance checks:")
        lines += [f"- {r.name}: {r.message}" for r in failed]
    if xpassed:
        lines.append(
            f"{label} passed {len(xpassed)} of the checks listed in expected_failed_checks; "
            "remove them from it:"
        )
        lines += [f"- {r.name} (listed because: {r.expected_failure})" for r in xpassed]
    return "\n".join(lines)


class MethodCheck:
    """One named check, callable on a method inside a pytest test (see parametrize_with_checks).

    Calling it runs the check on a fresh clone: a failure raises ``AssertionError`` with the
    check's message and a check that does not apply calls ``pytest.skip``.
    """

    def __init__(self, name: str, seed: int = 0):
        self.name = name
        self.seed = seed

    def __call__(self, method: RecourseMethod) -> None:
        """Run the check on ``method``."""
        result = run_check(method, self.name, seed=self.seed)
        if result.skipped:
            import pytest

            pytest.skip(result.message)
        if not result.passed:
            raise AssertionError(f"{self.name}: {result.message}")

    def __repr__(self) -> str:
        return self.name


def parametrize_with_checks(
    methods: Iterable[RecourseMethod],
    expected_failed_checks: ExpectedFailures = None,
    *,
    seed: int = 0,
) -> Any:
    """A ``pytest.mark.parametrize`` decorator over every (method, check) pair.

    The test receives ``method`` and ``check`` and calls ``check(method)``; ids read
    ``<method name>-<check name>``, e.g. ``wachter-check_immutables_kept``. A check listed in
    ``expected_failed_checks`` gets ``pytest.mark.xfail(strict=True, reason=...)``: it must fail,
    and a pass fails the test.

    Parameters
    ----------
    methods : iterable of RecourseMethod
        Instances to check (each check clones them; they are never modified).
    expected_failed_checks : dict or callable, optional
        ``{check_name: reason}`` applied to every method, or a callable
        ``method -> {check_name: reason}`` (None or ``{}`` for none).
    seed : int, default 0
        Seed of the toy problem.

    Returns
    -------
    pytest.MarkDecorator
        Parametrises the argument names ``method`` and ``check``.

    Examples
    --------
    >>> from recourse_bench.methods.wachter import Wachter
    >>> @parametrize_with_checks([Wachter()])
    ... def test_conformance(method, check):
    ...     check(method)
    """
    import pytest

    params = []
    for method in methods:
        _require_instance(method)
        expected = _expected_for(method, expected_failed_checks)
        for name in CHECKS:
            marks = (
                [pytest.mark.xfail(strict=True, reason=expected[name])] if name in expected else []
            )
            params.append(
                pytest.param(
                    method, MethodCheck(name, seed), marks=marks, id=f"{_method_id(method)}-{name}"
                )
            )
    return pytest.mark.parametrize(("method", "check"), params)
