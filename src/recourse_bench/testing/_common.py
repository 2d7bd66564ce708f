"""What every conformance kit shares: failures, skips, and the checks of any component.

Each check raises :class:`CheckFailed` (an ``AssertionError``) with a message that says what was
expected, what happened and how to fix it (:func:`fail`), or :class:`SkipCheck` when it does
not apply. The checks of ``__init__``, ``get_params``/``clone`` and ``parameter_constraints``
hold for every kind of plugin; the global random states and a model's state are compared the
same way in every kit.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from sklearn.base import clone

from ..api import Component, admits, contract_message, same_value


class CheckFailed(AssertionError):
    """A conformance check failed; the message says what was expected and how to fix it."""


class SkipCheck(Exception):
    """A check does not apply to this component; the message says why."""


def fail(expected: str, got: str, fix: str) -> CheckFailed:
    """A failure with the three parts every message has."""
    return CheckFailed(contract_message(expected, got, fix))


def describe_exception(exc: BaseException) -> str:
    """``Type: message`` of an exception."""
    return f"{type(exc).__name__}: {exc}"


MISSING = object()


def init_stores_params(component: Component) -> None:
    """``__init__`` only stores its keyword parameters, unchanged, under their own names.

    ``get_params()`` keys equal the ``__init__`` signature; a new instance built from those
    parameters holds each one as the very object passed (what ``sklearn.base.clone`` needs); it
    sets no public attribute that is not a parameter and none ending with ``_`` (fitted state).
    """
    cls = type(component)
    fix = (
        f"make {cls.__name__}.__init__ take keyword parameters only and do nothing but "
        "'self.<name> = <name>' for each; validate in validate_params and compute in fit"
    )
    if cls.__init__ is object.__init__:  # no parameters at all
        return
    signature = inspect.signature(cls.__init__)
    names = {p for p in signature.parameters if p != "self"}
    kinds = {p.kind for name, p in signature.parameters.items() if name != "self"}
    if kinds & {inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD}:
        raise fail("an __init__ without *args or **kwargs", f"signature {signature}", fix)
    params = component.get_params(deep=False)
    if set(params) != names:
        raise fail(
            f"get_params() keys to equal the __init__ parameters {sorted(names)}",
            f"{sorted(params)}",
            fix,
        )
    try:
        fresh = cls(**params)
    except Exception as exc:
        raise fail(
            f"{cls.__name__}(**get_params()) to build a copy", describe_exception(exc), fix
        ) from exc
    changed = [name for name in sorted(names) if getattr(fresh, name, MISSING) is not params[name]]
    if changed:
        shown = ", ".join(
            f"{name}={params[name]!r} stored as {getattr(fresh, name, '<nothing>')!r}"
            for name in changed
        )
        raise fail("__init__ to store each parameter unchanged", shown, fix)
    state = vars(fresh)
    fitted = sorted(k for k in state if k.endswith("_") and not k.startswith("__"))
    extra = sorted(k for k in state if k not in names and not k.startswith("_"))
    bad = sorted(set(fitted) | set(extra))
    if bad:
        raise fail(
            "__init__ to set no attribute but its parameters",
            f"attributes {', '.join(bad)} after __init__",
            fix,
        )


def params_round_trip(component: Component) -> None:
    """``get_params``, ``set_params`` and ``clone`` agree; ``set_params`` returns ``self``."""
    fix = "store each __init__ parameter under its own name and do not override get_params"
    params = component.get_params(deep=False)
    copy = clone(component)
    cloned = copy.get_params(deep=False)
    differ = [k for k in params if k not in cloned or not same_value(params[k], cloned[k])]
    if set(cloned) != set(params) or differ:
        raise fail(
            "clone(component).get_params() to equal its get_params()",
            f"differences in {', '.join(sorted(set(differ) | (set(cloned) ^ set(params))))}",
            fix,
        )
    returned = copy.set_params(**params)
    if returned is not copy:
        raise fail(
            "set_params(**params) to return the component itself",
            repr(returned)[:200],
            "do not override set_params, or end it with 'return self'",
        )
    again = copy.get_params(deep=False)
    differ = [k for k in params if not same_value(params[k], again.get(k, MISSING))]
    if differ:
        raise fail(
            "set_params(**get_params()) to leave the parameters unchanged",
            f"changed {', '.join(differ)}",
            fix,
        )


def constraints_cover_params(component: Component) -> None:
    """Every parameter has declared ``parameter_constraints``, which admit its default."""
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
        raise fail("a constraint for each parameter, and for nothing else", got, fix)
    defaults = cls.param_defaults()
    refused = [
        f"{name}={defaults[name]!r}"
        for name, allowed in cls.parameter_constraints.items()
        if name in defaults and not any(admits(c, defaults[name]) for c in allowed)
    ]
    if refused:
        raise fail(
            "the constraints to admit the defaults", f"they refuse {', '.join(refused)}", fix
        )


def model_state(model: Any) -> dict[str, Any]:
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


def state_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    changed = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key, MISSING), after.get(key, MISSING)
        if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
            same = a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a, b))
        elif isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
            same = a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))
        else:
            same = a is b or a == b
        if not same:
            changed.append(key)
    return changed


def global_states() -> dict[str, Any]:
    return {
        "numpy": np.random.get_state(legacy=True),  # noqa: NPY002 (the state under test)
        "random": random.getstate(),
        "torch": torch.get_rng_state(),
    }


def changed_states(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    changed = []
    a, b = before["numpy"], after["numpy"]
    if a[0] != b[0] or not np.array_equal(a[1], b[1]) or tuple(a[2:]) != tuple(b[2:]):
        changed.append("numpy's global random state (np.random.seed / np.random.rand ...)")
    if before["random"] != after["random"]:
        changed.append("the random module's state (random.random / random.seed ...)")
    if not torch.equal(before["torch"], after["torch"]):
        changed.append("torch's default generator (torch.manual_seed / torch.rand / layer init)")
    return changed


def scramble_global_states() -> None:
    """Seed every global generator from fresh entropy.

    A method that reseeds a global generator with a fixed seed and draws the same numbers every
    call would leave it exactly as an earlier call did; starting each run from an unrelated state
    exposes it.
    """
    seeds = np.random.default_rng().integers(2**32, size=3)
    np.random.seed(int(seeds[0]))  # noqa: NPY002 (the state under test)
    random.seed(int(seeds[1]))
    torch.default_generator.manual_seed(int(seeds[2]))


def rng_changes(run: Callable[[], Any]) -> list[str]:
    """The global random states that ``run()`` changed (each restored as it was found).

    The run starts from states seeded with fresh entropy, so that a component that reseeds a
    global generator with a fixed seed is caught too.
    """
    found = global_states()
    try:
        scramble_global_states()
        before = global_states()
        run()
        return changed_states(before, global_states())
    finally:
        np.random.set_state(found["numpy"])  # noqa: NPY002 (restored as found)
        random.setstate(found["random"])
        torch.set_rng_state(found["torch"])


def check_init_stores_params(component: Component, problem: Any) -> None:
    """``__init__`` only stores its keyword parameters (as for every plugin)."""
    init_stores_params(component)


def check_parameter_constraints(component: Component, problem: Any) -> None:
    """Every parameter has declared constraints, which admit its default."""
    constraints_cover_params(component)


def check_params_round_trip(component: Component, problem: Any) -> None:
    """``get_params``, ``set_params`` and ``clone`` agree."""
    params_round_trip(component)


COMPONENT_CHECKS = (check_init_stores_params, check_parameter_constraints, check_params_round_trip)
"""The checks every kit of a class plugin starts with."""


def run_without_global_rng(run: Callable[[], Any], what: str, fix: str) -> None:
    """Run ``run()``; fail when it changed a global random state (``what`` did it)."""
    changed = rng_changes(run)
    if changed:
        raise fail(
            f"{what} to leave every global random state unchanged",
            f"it changed {'; '.join(changed)}",
            fix,
        )


def checks_registry(
    first: Iterable[Callable[..., None]] = (),
) -> tuple[dict[str, Callable[..., None]], Callable[..., Any]]:
    """A kit's ``CHECKS`` dict (starting with ``first``) and the decorator that adds to it."""
    checks: dict[str, Callable[..., None]] = {func.__name__: func for func in first}

    def add(func: Callable[..., None]) -> Callable[..., None]:
        checks[func.__name__] = func
        return func

    return checks, add
