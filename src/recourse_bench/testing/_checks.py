"""The conformance checks: small functions of a fresh method clone and the toy problem.

Each check raises :class:`CheckFailed` (an ``AssertionError``) with a message that says what was
expected, what happened and how to fix it, or :class:`SkipCheck` when it does not apply.
"""

from __future__ import annotations

import dataclasses
import itertools
import pickle
from collections.abc import Callable

import numpy as np
from sklearn.base import clone

from .. import registry
from ..api import (
    ContractError,
    DataError,
    NotFittedError,
    RecourseMethod,
    Schema,
    check_recourse_output,
    check_recourse_sets,
)
from ._common import (
    COMPONENT_CHECKS,
    CheckFailed,
    SkipCheck,
    describe_exception,
    fail,
    model_state,
    rng_changes,
    state_changes,
)
from ._problem import ToyProblem

#: Least share of the toy factuals that must get a recourse (see :func:`check_valid_recourses`).
MIN_COVERAGE = 0.5

Check = Callable[[RecourseMethod, ToyProblem], None]

#: Every check by name, in the order they run.
CHECKS: dict[str, Check] = {}

#: Names of the checks that need a fitted method (and hence a toy model the method accepts).
NEEDS_MODEL: set[str] = set()


def _check(needs_model: bool = True) -> Callable[[Check], Check]:
    """Register a check function under its own name."""

    def register(func: Check) -> Check:
        CHECKS[func.__name__] = func
        if needs_model:
            NEEDS_MODEL.add(func.__name__)
        return func

    return register


def _rows(mask: np.ndarray, limit: int = 5, noun: bool = False) -> str:
    """The first row numbers where ``mask`` is True, e.g. ``"3, 7 and 2 more"``.

    With ``noun``, prefixed by ``row`` or ``rows`` as the count requires.
    """
    rows = np.flatnonzero(mask)
    shown = ", ".join(map(str, rows[:limit]))
    shown += f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"{'row' if len(rows) == 1 else 'rows'} {shown}" if noun else shown


def _fit(method: RecourseMethod, problem: ToyProblem) -> RecourseMethod:
    """Fit ``method`` on the toy problem; returns the method itself (not fit's return value)."""
    method.use_trainer(problem.trainer).fit(problem.model, problem.splits)
    return method


def _generate(method: RecourseMethod, factuals: np.ndarray) -> np.ndarray:
    """``generate`` on ``factuals``; fail readably when the output is not an (n, d) float array."""
    out = method.generate(factuals)
    if not isinstance(out, np.ndarray) or out.shape != factuals.shape:
        shape = getattr(out, "shape", None)
        raise fail(
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
for _component_check in COMPONENT_CHECKS:  # __init__, parameter constraints, get_params/clone
    _check(needs_model=False)(_component_check)


@_check()
def check_stochastic_tag(method: RecourseMethod, problem: ToyProblem) -> None:
    """The ``stochastic`` tag tells the truth.

    A method that is not tagged ``stochastic`` gives the same recourses with ``random_state``
    0 and 1 (where it has the parameter); a stochastic one takes ``random_state``.
    """
    has_seed = "random_state" in method.get_params(deep=False)
    if method.tags.stochastic:
        if not has_seed:
            raise fail(
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
        raise fail(
            "a method not tagged stochastic to ignore random_state",
            f"random_state 0 and 1 give different recourses ({_difference(first, second)})",
            "declare `tags = MethodTags(stochastic=True)` (or stop drawing random numbers)",
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
        raise fail(
            "generate(X) before fit to raise recourse_bench.api.NotFittedError",
            describe_exception(exc),
            fix,
        ) from exc
    raise fail(
        "generate(X) before fit to raise recourse_bench.api.NotFittedError",
        f"no error (it returned {type(out).__name__})",
        fix,
    )


# ----------------------------------------------------------------------------------- fitting
@_check()
def check_fit_returns_self(method: RecourseMethod, problem: ToyProblem) -> None:
    """``fit(model, splits)`` returns the method itself, so that ``fit(...).generate(X)`` works."""
    returned = method.use_trainer(problem.trainer).fit(problem.model, problem.splits)
    if returned is not method:
        raise fail(
            "fit(model, splits) to return the method itself",
            repr(returned)[:200],
            "end fit with 'return self' (and call super().fit(model, splits) first)",
        )


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
    state = model_state(model)

    def compare(step: str) -> None:
        changed = [n for n, a in arrays.items() if not np.array_equal(a, saved[n], equal_nan=True)]
        if step == "generate" and not np.array_equal(factuals, saved_factuals, equal_nan=True):
            rows = _rows(~((factuals == saved_factuals).all(axis=1)), noun=True)
            changed.insert(0, f"the factuals X ({rows})")
        new_proba = np.asarray(model.predict_proba(probe))
        if not np.array_equal(new_proba, proba):
            changed.append("the model's predictions")
        changed += [f"model {key}" for key in state_changes(state, model_state(model))]
        if changed:
            raise fail(
                f"{step} to leave its inputs unchanged",
                f"{step} changed {', '.join(changed)}",
                "work on copies: X = self.check_factuals(X) returns a new array; never write to "
                "the splits' arrays; use the model only through predict_proba, predict and "
                "logits (wrap any parameter change in copy.deepcopy(model))",
            )

    method.use_trainer(problem.trainer).fit(model, splits)
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
def check_offered_sets(method: RecourseMethod, problem: ToyProblem) -> None:
    """``recourse_sets()`` after ``generate`` is None, or an (n, k, d) array of feasible sets.

    The harness reads it right after ``generate`` (for the ``diversity`` metric) and judges it
    by :func:`recourse_bench.api.check_recourse_sets`; the members offered must keep the
    schema's constraints, as recourses do.
    """
    _fit(method, problem)
    factuals = problem.factuals.copy()
    method.generate(factuals)
    try:
        sets = check_recourse_sets(method.recourse_sets(), factuals)
    except ContractError as exc:
        raise CheckFailed(str(exc)) from None
    if sets is None:
        return
    n, k, d = sets.shape
    flat = sets.reshape(n * k, d)
    offered = ~np.isnan(flat).any(axis=1)
    broken = problem.schema.violations(flat[offered], np.repeat(factuals, k, axis=0)[offered])
    if broken.any():
        raise fail(
            "every member of recourse_sets() to keep the schema's constraints",
            f"{int(broken.sum())} of {int(offered.sum())} members break one",
            "snap each member with schema.snap(member, factual), as the recourses",
        )


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
        raise fail(
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
        raise fail(
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
            raise fail(
                "every recourse (row without NaN) to be accepted by the model (predict == 1)",
                f"the model rejects {rejected.sum()} of the {found.sum()} recourses found "
                f"({_rows(rejected, noun=True)})",
                "check model.predict(candidates) == 1 after snapping and return NaN for rows "
                "without an accepted candidate",
            )
    coverage = float(found.mean())
    if coverage < MIN_COVERAGE:
        raise fail(
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
        raise fail(
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
        raise fail(
            "two fits with random_state=0 to give identical recourses",
            _difference(first, second),
            "draw every random number from generators seeded by random_state, e.g. "
            "np.random.default_rng(self.random_state) or "
            "torch.Generator().manual_seed(seed), created in fit or generate",
        )


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
        copy = _with_random_state(method, value)
        changed = rng_changes(lambda copy=copy: _recourses(copy, problem))
        if changed:
            raise fail(
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
        raise fail(
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
        raise fail(
            "a fitted method to pickle and unpickle",
            describe_exception(exc),
            "keep no lambdas, local functions, open files, locks or generators of other "
            "processes on the method (store seeds and rebuild them in generate)",
        ) from exc
    original = _generate(method, problem.factuals.copy())
    copy = _generate(restored, problem.factuals.copy())
    if not _same_output(original, copy):
        raise fail(
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
            wrong.append(f"{what}: {describe_exception(exc)}")
        else:
            wrong.append(f"{what}: no error (it returned shape {getattr(out, 'shape', None)})")
    if wrong:
        raise fail(
            "generate to raise recourse_bench.api.DataError for unusable factuals",
            "; ".join(wrong),
            "start generate with X = self.check_factuals(X)",
        )
