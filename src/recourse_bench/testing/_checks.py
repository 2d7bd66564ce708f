"""The conformance checks: small functions of a fresh method clone and the toy problem.

Each check raises :class:`CheckFailed` (an ``AssertionError``) with a message that says what was
expected, what happened and how to fix it, or :class:`SkipCheck` when it does not apply.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import pickle
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sklearn.base import clone

from .. import registry
from ..api import (
    Component,
    ContractError,
    DataError,
    NotFittedError,
    RecourseMethod,
    Schema,
    admits,
    check_recourse_output,
    contract_message,
    same_value,
)
from ._problem import ToyProblem

#: Least share of the toy factuals that must get a recourse (see :func:`check_valid_recourses`).
MIN_COVERAGE = 0.5

Check = Callable[[RecourseMethod, ToyProblem], None]

#: Every check by name, in the order they run.
CHECKS: dict[str, Check] = {}

#: Names of the checks that need a fitted method (and hence a toy model the method accepts).
NEEDS_MODEL: set[str] = set()


class CheckFailed(AssertionError):
    """A conformance check failed; the message says what was expected and how to fix it."""


class SkipCheck(Exception):
    """A check does not apply to this method; the message says why."""


def _check(needs_model: bool = True) -> Callable[[Check], Check]:
    """Register a check function under its own name."""

    def register(func: Check) -> Check:
        CHECKS[func.__name__] = func
        if needs_model:
            NEEDS_MODEL.add(func.__name__)
        return func

    return register


def _fail(expected: str, got: str, fix: str) -> CheckFailed:
    """A failure with the three parts every message has."""
    return CheckFailed(contract_message(expected, got, fix))


def _rows(mask: np.ndarray, limit: int = 5, noun: bool = False) -> str:
    """The first row numbers where ``mask`` is True, e.g. ``"3, 7 and 2 more"``.

    With ``noun``, prefixed by ``row`` or ``rows`` as the count requires.
    """
    rows = np.flatnonzero(mask)
    shown = ", ".join(map(str, rows[:limit]))
    shown += f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"{'row' if len(rows) == 1 else 'rows'} {shown}" if noun else shown


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _fit(method: RecourseMethod, problem: ToyProblem) -> RecourseMethod:
    """Fit ``method`` on the toy problem; returns the method itself (not fit's return value)."""
    method.fit(problem.model, problem.splits)
    return method


def _generate(method: RecourseMethod, factuals: np.ndarray) -> np.ndarray:
    """``generate`` on ``factuals``; fail readably when the output is not an (n, d) float array."""
    out = method.generate(factuals)
    if not isinstance(out, np.ndarray) or out.shape != factuals.shape:
        shape = getattr(out, "shape", None)
        raise _fail(
            f"generate(X) to return an ndarray of shape {factuals.shape}",
            f"{type(out).__name__} of shape {shape} (see check_output_shape)",
            "return an array with one row per factual, NaN rows where no recourse was found",
        )
    return np.asarray(out, dtype=float)


def _recourses(method: RecourseMethod, problem: ToyProblem) -> tuple[np.ndarray, np.ndarray]:
    """Fit, generate on a copy of the factuals; return (recourses, rows found)."""
    _fit(method, problem)
    out = _generate(method, problem.factuals.copy())
    return out, np.isfinite(out).all(axis=1)


def _same_output(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))


def _difference(a: np.ndarray, b: np.ndarray) -> str:
    """Which rows of two outputs differ, e.g. ``"rows 0, 4 differ (largest change 0.31)"``."""
    if a.shape != b.shape:
        return f"shapes {a.shape} and {b.shape}"
    differ = ~((a == b) | (np.isnan(a) & np.isnan(b))).all(axis=1)
    details = []
    one_sided = np.isnan(a).all(axis=1) != np.isnan(b).all(axis=1)
    if one_sided.any():
        details.append(f"{one_sided.sum()} found in one output and NaN in the other")
    both = np.isfinite(a) & np.isfinite(b)
    if (both & (a != b)).any():
        details.append(f"largest change {float(np.abs(a - b)[both].max()):.3g}")
    return f"{_rows(differ, noun=True)} differ" + (f" ({'; '.join(details)})" if details else "")


# -------------------------------------------------------------------------- construction
@_check(needs_model=False)
def check_init_stores_params(method: RecourseMethod, problem: ToyProblem) -> None:
    """``__init__`` only stores its keyword parameters, unchanged, under their own names.

    ``get_params()`` keys equal the ``__init__`` signature; a new instance built from those
    parameters holds each one as the very object passed (what ``sklearn.base.clone`` needs); it
    sets no public attribute that is not a parameter and none ending with ``_`` (fitted state).
    """
    cls = type(method)
    fix = (
        f"make {cls.__name__}.__init__ take keyword parameters only and do nothing but "
        "'self.<name> = <name>' for each; validate in validate_params and compute in fit"
    )
    signature = inspect.signature(cls.__init__)
    names = {p for p in signature.parameters if p != "self"}
    kinds = {p.kind for name, p in signature.parameters.items() if name != "self"}
    if kinds & {inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD}:
        raise _fail("an __init__ without *args or **kwargs", f"signature {signature}", fix)
    params = method.get_params(deep=False)
    if set(params) != names:
        raise _fail(
            f"get_params() keys to equal the __init__ parameters {sorted(names)}",
            f"{sorted(params)}",
            fix,
        )
    try:
        fresh = cls(**params)
    except Exception as exc:
        raise _fail(
            f"{cls.__name__}(**method.get_params()) to build a copy", _describe(exc), fix
        ) from exc
    changed = [name for name in sorted(names) if getattr(fresh, name, _MISSING) is not params[name]]
    if changed:
        shown = ", ".join(
            f"{name}={params[name]!r} stored as {getattr(fresh, name, '<nothing>')!r}"
            for name in changed
        )
        raise _fail("__init__ to store each parameter unchanged", shown, fix)
    state = vars(fresh)
    fitted = sorted(k for k in state if k.endswith("_") and not k.startswith("__"))
    extra = sorted(k for k in state if k not in names and not k.startswith("_"))
    bad = sorted(set(fitted) | set(extra))
    if bad:
        raise _fail(
            "__init__ to set no attribute but its parameters",
            f"attributes {', '.join(bad)} after __init__",
            fix,
        )


_MISSING = object()


@_check(needs_model=False)
def check_parameter_constraints(method: RecourseMethod, problem: ToyProblem) -> None:
    """Every parameter has declared constraints, which admit its default.

    ``parameter_constraints`` names exactly the keys of ``get_params()``, so the harness can
    refuse a bad value in one line before any work (and ``recourse-bench list`` can show the
    allowed values).
    """
    check_constraints_cover_params(method)


def check_constraints_cover_params(component: Component) -> None:
    """The shared body of every kit's ``check_parameter_constraints``."""
    cls = type(component)
    declared = set(cls.parameter_constraints)
    params = set(component.get_params(deep=False))
    fix = (
        f"declare `parameter_constraints = {{name: (Interval(...), Options(...), None, ...)}}` on "
        f"{cls.__name__} with one entry per __init__ parameter (see recourse_bench.api)"
    )
    if declared != params:
        missing, extra = sorted(params - declared), sorted(declared - params)
        got = "; ".join(
            part
            for part in (
                f"no constraint for {', '.join(missing)}" if missing else "",
                f"constraints for {', '.join(extra)}, which are no parameters" if extra else "",
            )
            if part
        )
        raise _fail("a constraint for each parameter, and for nothing else", got, fix)
    defaults = cls.param_defaults()
    refused = [
        f"{name}={defaults[name]!r}"
        for name, allowed in cls.parameter_constraints.items()
        if name in defaults and not any(admits(c, defaults[name]) for c in allowed)
    ]
    if refused:
        raise _fail(
            "the constraints to admit the defaults", f"they refuse {', '.join(refused)}", fix
        )


@_check()
def check_stochastic_tag(method: RecourseMethod, problem: ToyProblem) -> None:
    """The ``stochastic`` tag tells the truth.

    A method that is not tagged ``stochastic`` gives the same recourses with ``random_state``
    0 and 1 (where it has the parameter); a stochastic one takes ``random_state``.
    """
    has_seed = "random_state" in method.get_params(deep=False)
    if method.tags.stochastic:
        if not has_seed:
            raise _fail(
                "a method tagged stochastic to take random_state",
                "no random_state parameter",
                "add `random_state: int | None = None` to __init__ and draw every random "
                "number from it",
            )
        return
    if not has_seed:
        raise SkipCheck(f"{type(method).__name__} has no random_state to vary")
    first, _ = _recourses(_with_random_state(method, 0), problem)
    second, _ = _recourses(_with_random_state(method, 1), problem)
    if not _same_output(first, second):
        again, _ = _recourses(_with_random_state(method, 0), problem)
        if not _same_output(first, again):
            raise SkipCheck(
                "the same random_state gives different recourses: see check_reproducible"
            )
        raise _fail(
            "a method not tagged stochastic to ignore random_state",
            f"random_state 0 and 1 give different recourses ({_difference(first, second)})",
            "declare `tags = MethodTags(stochastic=True)` (or stop drawing random numbers)",
        )


@_check(needs_model=False)
def check_params_round_trip(method: RecourseMethod, problem: ToyProblem) -> None:
    """``get_params``, ``set_params`` and ``clone`` agree; ``set_params`` returns ``self``."""
    fix = "store each __init__ parameter under its own name and do not override get_params"
    params = method.get_params(deep=False)
    copy = clone(method)
    cloned = copy.get_params(deep=False)
    differ = [k for k in params if k not in cloned or not same_value(params[k], cloned[k])]
    if set(cloned) != set(params) or differ:
        raise _fail(
            "clone(method).get_params() to equal method.get_params()",
            f"differences in {', '.join(sorted(set(differ) | (set(cloned) ^ set(params))))}",
            fix,
        )
    returned = copy.set_params(**params)
    if returned is not copy:
        raise _fail(
            "set_params(**params) to return the method itself",
            repr(returned)[:200],
            "do not override set_params, or end it with 'return self'",
        )
    again = copy.get_params(deep=False)
    differ = [k for k in params if not same_value(params[k], again.get(k, _MISSING))]
    if differ:
        raise _fail(
            "set_params(**get_params()) to leave the parameters unchanged",
            f"changed {', '.join(differ)}",
            fix,
        )


@_check(needs_model=False)
def check_not_fitted_error(method: RecourseMethod, problem: ToyProblem) -> None:
    """``generate`` before ``fit`` raises :class:`recourse_bench.api.NotFittedError`."""
    fix = "call self.check_fitted() first in generate"
    try:
        out = method.generate(problem.factuals.copy())
    except NotFittedError:
        return
    except Exception as exc:
        raise _fail(
            "generate(X) before fit to raise recourse_bench.api.NotFittedError", _describe(exc), fix
        ) from exc
    raise _fail(
        "generate(X) before fit to raise recourse_bench.api.NotFittedError",
        f"no error (it returned {type(out).__name__})",
        fix,
    )


# ----------------------------------------------------------------------------------- fitting
@_check()
def check_fit_returns_self(method: RecourseMethod, problem: ToyProblem) -> None:
    """``fit(model, splits)`` returns the method itself, so that ``fit(...).generate(X)`` works."""
    returned = method.fit(problem.model, problem.splits)
    if returned is not method:
        raise _fail(
            "fit(model, splits) to return the method itself",
            repr(returned)[:200],
            "end fit with 'return self' (and call super().fit(model, splits) first)",
        )


def _model_state(model: Any) -> dict[str, Any]:
    """Copies of the torch parameters, buffers and flags and the arrays a model holds."""
    state: dict[str, Any] = {}
    try:
        attributes = vars(model)
    except TypeError:
        return state
    for key, value in attributes.items():
        if isinstance(value, torch.nn.Module):
            for name, tensor in value.state_dict().items():
                state[f"{key}.{name}"] = tensor.detach().clone()
            for name, p in value.named_parameters():
                state[f"{key}.{name}.requires_grad"] = p.requires_grad
                state[f"{key}.{name}.grad"] = p.grad is None
            state[f"{key}.training"] = value.training
        elif isinstance(value, np.ndarray):
            state[key] = value.copy()
    return state


def _state_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    changed = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key, _MISSING), after.get(key, _MISSING)
        if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
            same = a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a, b))
        elif isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
            same = a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))
        else:
            same = a is b or a == b
        if not same:
            changed.append(key)
    return changed


@_check()
def check_inputs_not_mutated(method: RecourseMethod, problem: ToyProblem) -> None:
    """``fit`` and ``generate`` leave the factuals, the splits' arrays and the model unchanged.

    The model is compared through its predicted probabilities on all toy rows and, for a torch
    model, its parameters, buffers, ``requires_grad`` flags and training mode.
    """
    splits, model, factuals = problem.splits, problem.model, problem.factuals
    arrays = {
        "splits.X_train": splits.X_train,
        "splits.y_train": splits.y_train,
        "splits.X_test": splits.X_test,
        "splits.y_test": splits.y_test,
    }
    saved = {name: array.copy() for name, array in arrays.items()}
    saved_factuals = factuals.copy()
    probe = np.vstack([splits.X_train, splits.X_test])
    proba = np.asarray(model.predict_proba(probe)).copy()
    state = _model_state(model)

    def compare(step: str) -> None:
        changed = [n for n, a in arrays.items() if not np.array_equal(a, saved[n], equal_nan=True)]
        if step == "generate" and not np.array_equal(factuals, saved_factuals, equal_nan=True):
            rows = _rows(~((factuals == saved_factuals).all(axis=1)), noun=True)
            changed.insert(0, f"the factuals X ({rows})")
        new_proba = np.asarray(model.predict_proba(probe))
        if not np.array_equal(new_proba, proba):
            changed.append("the model's predictions")
        changed += [f"model {key}" for key in _state_changes(state, _model_state(model))]
        if changed:
            raise _fail(
                f"{step} to leave its inputs unchanged",
                f"{step} changed {', '.join(changed)}",
                "work on copies: X = self.check_factuals(X) returns a new array; never write to "
                "the splits' arrays; use the model only through predict_proba, predict and "
                "logits (wrap any parameter change in copy.deepcopy(model))",
            )

    method.fit(model, splits)
    compare("fit")
    method.generate(factuals)
    compare("generate")


# ------------------------------------------------------------------------------------ output
@_check()
def check_output_shape(method: RecourseMethod, problem: ToyProblem) -> None:
    """``generate`` returns a float ndarray of shape (n, d); each row all finite or all NaN.

    This is :func:`recourse_bench.api.check_recourse_output`, by which the harness judges
    every method's output in a run too.
    """
    _fit(method, problem)
    factuals = problem.factuals.copy()
    try:
        check_recourse_output(method.generate(factuals), factuals)
    except ContractError as exc:
        raise CheckFailed(str(exc)) from None


@_check()
def check_immutables_kept(method: RecourseMethod, problem: ToyProblem) -> None:
    """Every recourse keeps the factual's value in each immutable column."""
    out, found = _recourses(method, problem)
    schema, factuals = problem.schema, problem.factuals
    frozen = ~schema.mutable_mask
    changed = found & (out[:, frozen] != factuals[:, frozen]).any(axis=1)
    if changed.any():
        row = int(np.flatnonzero(changed)[0])
        columns = np.flatnonzero(frozen & (out[row] != factuals[row]))
        example = ", ".join(
            f"{schema.features[j]} {factuals[row, j]:g} -> {out[row, j]:g}" for j in columns
        )
        immutable = ", ".join(np.asarray(schema.features)[frozen])
        raise _fail(
            f"the immutable columns ({immutable}) of each recourse to equal the factual's",
            f"{changed.sum()} of {found.sum()} recourses change them (row {row}: {example})",
            "search only the mutable columns (schema.mutable_mask), or pin the others with "
            "schema.bounds_for(X) / schema.snap(X_cf, X)",
        )


def _relaxed(schema: Schema) -> Schema:
    """The schema with every column mutable (immutables are check_immutables_kept's concern)."""
    return dataclasses.replace(schema, immutable=(False,) * schema.n_features)


@_check()
def check_feasible(method: RecourseMethod, problem: ToyProblem) -> None:
    """Every recourse keeps the bounds, the directions, the one-hot groups and the integer grid.

    Judged by :meth:`recourse_bench.api.Schema.broken_constraints`, as the harness judges every
    recourse of a run. Immutable columns are left to :func:`check_immutables_kept`, so that
    each fault fails one check.
    """
    out, _ = _recourses(method, problem)
    schema, factuals = problem.schema, problem.factuals
    broken = _relaxed(schema).broken_constraints(out, factuals)
    problems = [
        _broken_example(kind, cells, schema, factuals, out)
        for kind, cells in broken.items()
        if cells.any()
    ]
    if problems:
        raise _fail(
            "recourses inside schema.bounds_for(X), with one-hot groups of one 1 and integer "
            "columns on their grid",
            "; ".join(problems),
            "project candidates with schema.snap(X_cf, X), which clips to the bounds and "
            "directions and rounds integers and one-hot groups",
        )


def _broken_example(
    kind: str, cells: np.ndarray, schema: Schema, factuals: np.ndarray, out: np.ndarray
) -> str:
    """How many recourses break one kind of constraint, and the first of them."""
    i, j = map(int, np.argwhere(cells)[0])
    name, before, after = schema.features[j], factuals[i, j], out[i, j]
    count = int(cells.any(axis=1).sum())
    if kind == "direction":
        way = "increase" if schema.direction[j] > 0 else "decrease"
        return (
            f"{count} recourses break a direction (row {i}: {name} may only {way} but went "
            f"{before:g} -> {after:g})"
        )
    if kind == "bound":
        return (
            f"{count} recourses break a bound (row {i}: {name} = {after:g} outside "
            f"[{schema.lower[j]:g}, {schema.upper[j]:g}])"
        )
    if kind == "one-hot":
        group = next(g for g in schema.groups if j in g)
        names = ", ".join(schema.features[k] for k in group)
        block = np.round(out[i, list(group)], 3).tolist()
        return f"{count} recourses break the one-hot group {names} (row {i} holds {block})"
    return (
        f"{count} recourses put the integer column {name} off its grid of step "
        f"{schema.steps[j]:g} (row {i}: {after:g})"
    )


@_check()
def check_valid_recourses(method: RecourseMethod, problem: ToyProblem) -> None:
    """Every recourse is accepted by the model, and at least half of the factuals get one.

    The toy problem is easy (every built-in method finds a recourse for all 30 factuals), so a
    coverage below :data:`MIN_COVERAGE` (0.5) points to a bug rather than a hard problem.
    """
    out, found = _recourses(method, problem)
    if found.any():
        rejected = found.copy()
        rejected[found] = np.asarray(problem.model.predict(out[found])) != 1
        if rejected.any():
            raise _fail(
                "every recourse (row without NaN) to be accepted by the model (predict == 1)",
                f"the model rejects {rejected.sum()} of the {found.sum()} recourses found "
                f"({_rows(rejected, noun=True)})",
                "check model.predict(candidates) == 1 after snapping and return NaN for rows "
                "without an accepted candidate",
            )
    coverage = float(found.mean())
    if coverage < MIN_COVERAGE:
        raise _fail(
            f"a recourse for at least {MIN_COVERAGE:.0%} of the {len(out)} toy factuals",
            f"{found.sum()} ({coverage:.0%})",
            "the toy problem is easy: check the search direction (towards class 1) and its "
            "budget, or lower the budget through _test_params only as far as it still works",
        )


@_check()
def check_declared_uses(method: RecourseMethod, problem: ToyProblem) -> None:
    """Every component that ``fit`` and ``generate`` obtain from the registry is declared.

    A method built on another one (T-Rex starts from Wachter) declares it in ``uses``, so that
    editing the other one's code recomputes this method's cached recourses too.
    """
    with registry.trace_lookups() as looked_up:
        _recourses(method, problem)
    undeclared = sorted(looked_up - set(registry.uses(type(method))) - {("method", method.name)})
    if undeclared:
        shown = ", ".join(f"({kind!r}, {name!r})" for kind, name in undeclared)
        raise _fail(
            "every component obtained from the registry to be declared in `uses`",
            f"fit/generate obtained {shown}",
            f"add `uses = ({shown},)` to {type(method).__name__}",
        )


# ------------------------------------------------------------------------------ randomness
def _with_random_state(method: RecourseMethod, value: int | None) -> RecourseMethod:
    copy = clone(method)
    if "random_state" in copy.get_params(deep=False):
        copy.set_params(random_state=value)
    return copy


@_check()
def check_reproducible(method: RecourseMethod, problem: ToyProblem) -> None:
    """Two clones with ``random_state=0`` fitted on the same data give identical recourses.

    A method without a ``random_state`` parameter must be deterministic.
    """
    first, _ = _recourses(_with_random_state(method, 0), problem)
    second, _ = _recourses(_with_random_state(method, 0), problem)
    if not _same_output(first, second):
        raise _fail(
            "two fits with random_state=0 to give identical recourses",
            _difference(first, second),
            "draw every random number from generators seeded by random_state, e.g. "
            "np.random.default_rng(self.random_state) or "
            "torch.Generator().manual_seed(seed), created in fit or generate",
        )


def _global_states() -> dict[str, Any]:
    return {
        "numpy": np.random.get_state(legacy=True),  # noqa: NPY002 (the state under test)
        "random": random.getstate(),
        "torch": torch.get_rng_state(),
    }


def _changed_states(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    changed = []
    a, b = before["numpy"], after["numpy"]
    if a[0] != b[0] or not np.array_equal(a[1], b[1]) or tuple(a[2:]) != tuple(b[2:]):
        changed.append("numpy's global random state (np.random.seed / np.random.rand ...)")
    if before["random"] != after["random"]:
        changed.append("the random module's state (random.random / random.seed ...)")
    if not torch.equal(before["torch"], after["torch"]):
        changed.append("torch's default generator (torch.manual_seed / torch.rand / layer init)")
    return changed


def _scramble_global_states() -> None:
    """Seed every global generator from fresh entropy.

    A method that reseeds a global generator with a fixed seed and draws the same numbers every
    call would leave it exactly as an earlier call did; starting each run from an unrelated state
    exposes it.
    """
    seeds = np.random.default_rng().integers(2**32, size=3)
    np.random.seed(int(seeds[0]))  # noqa: NPY002 (the state under test)
    random.seed(int(seeds[1]))
    torch.default_generator.manual_seed(int(seeds[2]))


@_check()
def check_no_global_rng(method: RecourseMethod, problem: ToyProblem) -> None:
    """``fit`` and ``generate`` leave numpy's, ``random``'s and torch's global states unchanged.

    Runs with ``random_state=0`` and, where the method has the parameter, with None too (the
    fresh-entropy path, where a global generator is most tempting). Each run starts from global
    states seeded with fresh entropy (so that reseeding with a fixed seed is caught too); the
    states found are restored afterwards.
    """
    values = [0, None] if "random_state" in method.get_params(deep=False) else [0]
    for value in values:
        found = _global_states()
        try:
            _scramble_global_states()
            before = _global_states()
            _recourses(_with_random_state(method, value), problem)
            changed = _changed_states(before, _global_states())
        finally:
            np.random.set_state(found["numpy"])  # noqa: NPY002 (restored as found)
            random.setstate(found["random"])
            torch.set_rng_state(found["torch"])
        if changed:
            raise _fail(
                "fit and generate to leave every global random state unchanged",
                f"with random_state={value!r} they changed {'; '.join(changed)}",
                "use local generators: np.random.default_rng(self.random_state), "
                "torch.Generator().manual_seed(seed) passed as generator=..., and build torch "
                "layers inside torch.random.fork_rng(devices=[])",
            )


# ----------------------------------------------------------------------------------- batches
@_check()
def check_batch_invariance(method: RecourseMethod, problem: ToyProblem) -> None:
    """Where declared, a factual's recourse does not depend on the other rows of the batch.

    A method declares it with the tag ``MethodTags(batch_invariant=True)``; the check is skipped
    otherwise. ``generate`` on all factuals must equal ``generate`` on row chunks (one row, then
    chunks of 8), up to 1e-8.
    """
    if not method.tags.batch_invariant:
        raise SkipCheck(
            f"{type(method).__name__} does not declare MethodTags(batch_invariant=True) (a "
            "recourse may depend on the other rows of the batch)"
        )
    _fit(method, problem)
    factuals = problem.factuals
    whole = _generate(method, factuals.copy())
    bounds = [0, 1, *range(9, len(factuals), 8), len(factuals)]
    chunks = [_generate(method, factuals[a:b].copy()) for a, b in itertools.pairwise(bounds)]
    chunked = np.vstack(chunks)
    same_found = np.array_equal(np.isnan(whole), np.isnan(chunked))
    if not same_found or not np.allclose(whole, chunked, rtol=0, atol=1e-8, equal_nan=True):
        raise _fail(
            "generate on the whole batch to equal generate on row chunks (batch_invariant=True)",
            _difference(whole, chunked),
            "give each row its own budget and random stream, or remove batch_invariant=True",
        )


# ----------------------------------------------------------------------------- persistence
@_check()
def check_pickle_round_trip(method: RecourseMethod, problem: ToyProblem) -> None:
    """A fitted method survives ``pickle`` and the copy generates the same recourses."""
    _fit(method, problem)
    try:
        restored = pickle.loads(pickle.dumps(method))
    except Exception as exc:
        raise _fail(
            "a fitted method to pickle and unpickle",
            _describe(exc),
            "keep no lambdas, local functions, open files, locks or generators of other "
            "processes on the method (store seeds and rebuild them in generate)",
        ) from exc
    original = _generate(method, problem.factuals.copy())
    copy = _generate(restored, problem.factuals.copy())
    if not _same_output(original, copy):
        raise _fail(
            "the unpickled method to generate exactly what the original does",
            _difference(original, copy),
            "keep every fitted state in attributes ending with '_' that pickle restores, and "
            "seed the randomness of generate from random_state",
        )


# --------------------------------------------------------------------------------- bad input
@_check()
def check_bad_factuals_raise(method: RecourseMethod, problem: ToyProblem) -> None:
    """``generate`` raises :class:`DataError` for a 1-D row, a wrong width and a NaN."""
    _fit(method, problem)
    factuals = problem.factuals[:3].copy()
    with_nan = factuals.copy()
    with_nan[1, 0] = np.nan
    cases = {
        f"a 1-D factual (shape {factuals[0].shape})": factuals[0].copy(),
        f"factuals with one column too few (shape {factuals[:, :-1].shape})": factuals[:, :-1],
        "factuals with a NaN": with_nan,
    }
    wrong = []
    for what, X in cases.items():
        try:
            out = method.generate(X.copy())
        except DataError:
            continue
        except Exception as exc:
            wrong.append(f"{what}: {_describe(exc)}")
        else:
            wrong.append(f"{what}: no error (it returned shape {getattr(out, 'shape', None)})")
    if wrong:
        raise _fail(
            "generate to raise recourse_bench.api.DataError for unusable factuals",
            "; ".join(wrong),
            "start generate with X = self.check_factuals(X)",
        )
