"""The plugin registry: one name space per kind of plugin.

Built-in plugins register themselves with ``@register(kind)``; third-party packages declare an entry
point in the group ``recourse_bench.plugins`` (a module to import); a local file is loaded with
:func:`load_plugin_file` (``--plugin path.py`` on the command line). No other code is imported: a
configuration names registered plugins only, never a file or a module.

Registration checks each plugin against the contract of its kind (a subclass of the kind's base
class that implements its required methods, or a :class:`~recourse_bench.api.Metric`), so that a
broken plugin fails when it is loaded, in one line naming its file and line, rather than in the
middle of a run.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import sys
import traceback
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, get_args

from .api import (
    Dataset,
    DuplicateNameError,
    Metric,
    RecourseBenchError,
    RecourseMethod,
    Shift,
    Stage,
    Trainer,
    UnknownNameError,
)

KINDS = ("dataset", "model", "method", "shift", "metric")
ENTRY_POINT_GROUP = "recourse_bench.plugins"
_BUILTIN_PACKAGES = ("datasets", "models", "methods", "shifts", "metrics")
_PLUGIN_MODULE_PREFIX = "recourse_bench_plugin_"
_FORBIDDEN_IN_NAMES = (",", "=", ":")

# Per class kind: the base class, the methods a plugin must have, and those of them whose base
# implementation only raises NotImplementedError (so a plugin has to define them itself).
CONTRACTS: dict[str, tuple[type, tuple[str, ...], tuple[str, ...]]] = {
    "dataset": (Dataset, ("load",), ("load",)),
    "model": (Trainer, ("fit",), ("fit",)),
    "method": (RecourseMethod, ("fit", "generate"), ("generate",)),
    "shift": (Shift, ("updates",), ("updates",)),
}
_SIGNATURES = {
    "load": "load(seed) -> Splits",
    "fit": "fit(model, splits) -> self",
    "generate": "generate(X) -> X_cf",
    "updates": "updates(splits, trainer, base_model, seed) -> list of classifiers",
}
_TRAINER_FIT = "fit(X, y, seed) -> Classifier"

_REGISTRY: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
_loaded_files: dict[Path, types.ModuleType] = {}
_builtins_loaded = False

T = TypeVar("T")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise UnknownNameError(f"Unknown plugin kind {kind!r}; valid kinds: {', '.join(KINDS)}")


def register(kind: str, name: str | None = None) -> Callable[[T], T]:
    """Class (or metric) decorator that registers a plugin under ``name``.

    Parameters
    ----------
    kind : str
        One of ``dataset``, ``model``, ``method``, ``shift``, ``metric``.
    name : str, optional
        The registered name; defaults to the object's ``name`` attribute.

    Raises
    ------
    DuplicateNameError
        If another plugin of the kind has the name.
    RecourseBenchError
        If the name is empty or unusable, or the plugin breaks its kind's contract (see
        :func:`check_contract`).
    """
    _check_kind(kind)

    def decorate(obj: T) -> T:
        key = name or getattr(obj, "name", "")
        if not key:
            raise RecourseBenchError(
                f"the {kind} plugin {_origin(obj)} needs a name: @register({kind!r}, 'name')"
            )
        _check_name(kind, key, obj)
        existing = _REGISTRY[kind].get(key)
        if existing is not None and existing is not obj and not _redefinition(existing, obj):
            raise DuplicateNameError(
                f"{kind} {key!r} is already registered by {_origin(existing)}; "
                f"choose another name for {_origin(obj)}"
            )
        check_contract(kind, key, obj)
        if isinstance(obj, type):
            obj.name = key  # type: ignore[attr-defined]
        _REGISTRY[kind][key] = obj
        return obj

    return decorate


def _check_name(kind: str, key: Any, obj: Any) -> None:
    """A registered name is a string that the config and the command line can spell."""
    bad = not isinstance(key, str) or not key.strip() or key != key.strip()
    bad = bad or any(c.isspace() or c in _FORBIDDEN_IN_NAMES for c in str(key))
    if bad:
        raise RecourseBenchError(
            f"{kind} name {key!r} of {_origin(obj)} is not usable: a name is a string without "
            f"spaces, commas, '=' or ':'; use letters, digits and hyphens, e.g. 'my-{kind}'"
        )


def check_contract(kind: str, name: str, obj: Any) -> None:
    """Raise :class:`RecourseBenchError` unless ``obj`` can serve as a ``kind`` plugin.

    Datasets, models, methods and shifts are classes that subclass the kind's base class in
    :mod:`recourse_bench.api` (:class:`Dataset`, :class:`Trainer`, :class:`RecourseMethod`,
    :class:`Shift`) and implement its required methods (``load``; ``fit``; ``fit`` and
    ``generate``; ``updates``). A metric is a :class:`Metric` (``@metric(...)`` makes one) with a
    callable function and a valid stage.
    """
    what = f"{kind} {name!r} ({_origin(obj)})"
    if kind == "metric":
        _check_metric(what, obj)
        return
    base, required, abstract = CONTRACTS[kind]
    base_name = f"recourse_bench.{base.__name__}"
    if not isinstance(obj, type):
        raise RecourseBenchError(
            f"{what} is a {type(obj).__name__}, not a class: register a class that subclasses "
            f"{base_name}"
        )
    if not issubclass(obj, base):
        raise RecourseBenchError(
            f"{what} does not subclass {base_name}: declare it as "
            f"`class {obj.__name__}({base.__name__})`"
        )
    for method in required:
        value = inspect.getattr_static(obj, method, None)
        inherited = getattr(base, method) if method in abstract else None
        if not callable(value) and not isinstance(value, staticmethod | classmethod):
            missing = True
        else:
            missing = getattr(obj, method) is inherited
        if missing:
            signature = _TRAINER_FIT if kind == "model" else _SIGNATURES[method]
            raise RecourseBenchError(
                f"{what} does not define {method}(): a {kind} must implement {signature}"
            )


def _check_metric(what: str, obj: Any) -> None:
    if not isinstance(obj, Metric):
        raise RecourseBenchError(
            f"{what} is a {type(obj).__name__}, not a Metric: decorate the function with "
            "@metric(name, stage=..., higher_is_better=...) from recourse_bench.metrics"
        )
    if not callable(obj.func):
        raise RecourseBenchError(f"{what} has a function that is not callable: {obj.func!r}")
    stages = get_args(Stage)
    if obj.stage not in stages:
        raise RecourseBenchError(
            f"{what} has the stage {obj.stage!r}; use one of {', '.join(stages)}"
        )


def _definition(obj: Any) -> Any:
    """What defines a plugin: the class, or a metric's function."""
    return obj.func if isinstance(obj, Metric) else obj


def defining_module(plugin: Any) -> str:
    """The name of the module that defines a registered plugin (a metric: its function's)."""
    return str(getattr(_definition(plugin), "__module__", ""))


def _redefinition(existing: Any, obj: Any) -> bool:
    """Whether ``obj`` is ``existing`` defined again by re-running the same plugin file."""
    old, new = _definition(existing), _definition(obj)
    module = getattr(new, "__module__", None) or ""
    return (
        module.startswith(_PLUGIN_MODULE_PREFIX)
        and getattr(old, "__module__", None) == module
        and getattr(old, "__qualname__", None) == getattr(new, "__qualname__", None)
    )


def _origin(obj: Any) -> str:
    """Where a plugin is defined: ``module.Class``, or ``Class in file.py:line`` for a file."""
    target = _definition(obj)
    module = getattr(target, "__module__", None) or type(target).__module__
    qualname = getattr(target, "__qualname__", None) or getattr(obj, "name", None) or repr(obj)
    if not module.startswith(_PLUGIN_MODULE_PREFIX):
        return f"{module}.{qualname}"
    try:
        file = inspect.getsourcefile(target)
        line = inspect.getsourcelines(target)[1]
    except (OSError, TypeError):
        module_file = getattr(sys.modules.get(module), "__file__", None)
        return f"{qualname} in {module_file}" if module_file else qualname
    return f"{qualname} in {file}:{line}"


def suggest(name: str, valid: list[str]) -> str:
    """A "did you mean" hint for a misspelled ``name`` (empty when nothing is close)."""
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def get(kind: str, name: str) -> Any:
    """The plugin registered as ``name``; unknown names raise with the valid ones listed."""
    _check_kind(kind)
    load_plugins()
    try:
        plugin = _REGISTRY[kind][name]
    except KeyError:
        valid = available(kind)
        raise UnknownNameError(
            f"Unknown {kind} {name!r}; {suggest(name, valid)}valid {kind}s: {', '.join(valid)}"
        ) from None
    for looked_up in _TRACES:
        looked_up.add((kind, name))
    return plugin


def available(kind: str) -> list[str]:
    """Sorted names registered for ``kind``."""
    _check_kind(kind)
    load_plugins()
    return sorted(_REGISTRY[kind])


def load_plugins() -> None:
    """Import the built-in plugins and the installed entry points (once)."""
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    for package in _BUILTIN_PACKAGES:
        importlib.import_module(f"recourse_bench.{package}")
    load_entry_points()


def load_entry_points() -> list[str]:
    """Import the modules that installed packages declare in ``recourse_bench.plugins``.

    Returns the names of the entry points loaded.
    """
    loaded = []
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry.load()
        except Exception as exc:
            raise RecourseBenchError(
                f"plugin entry point {entry.name!r} ({entry.value}) failed to import: "
                f"{_describe(exc)}{_elsewhere(exc, None)}; fix or uninstall that package"
            ) from exc
        loaded.append(entry.name)
    return loaded


def load_plugin_file(path: str | Path, *, require_plugins: bool = True) -> types.ModuleType:
    """Import a local Python file whose ``@register`` decorators add plugins (once per path).

    Parameters
    ----------
    path : str or Path
        The ``.py`` file; the user names it (``--plugin``), nothing else is ever imported.
    require_plugins : bool, default True
        Refuse a file that registers no plugin (a forgotten ``@register``, or the wrong file).

    Returns
    -------
    module
        The imported module (the same object when the path was loaded before).

    Raises
    ------
    RecourseBenchError
        One line naming the file (and the line, where there is one), the problem and the fix:
        a path that is missing, a folder or not a ``.py`` file; a syntax error, a failed import
        or any other exception while the file runs; a plugin that breaks its kind's contract or
        reuses a registered name; no plugin registered. Whatever the file registered before the
        failure is unregistered again.
    """
    load_plugins()
    given = path
    path = Path(path).resolve()
    if path in _loaded_files:
        return _loaded_files[path]
    if path.is_dir():
        raise RecourseBenchError(
            f"plugin file {str(given)!r} is a folder; name the .py file that registers the plugins"
        )
    if not path.is_file():
        raise RecourseBenchError(f"plugin file {str(given)!r} does not exist; check the path")
    if path.suffix != ".py":
        raise RecourseBenchError(
            f"plugin file {str(given)!r} is not a Python file (.py); name the .py file that "
            "registers the plugins"
        )
    module_name = f"{_PLUGIN_MODULE_PREFIX}{hashlib.sha1(str(path).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has a loader
        raise RecourseBenchError(f"plugin file {str(given)!r} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    before = {kind: dict(plugins) for kind, plugins in _REGISTRY.items()}
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        del sys.modules[module_name]
        _unregister(before, module_name)
        where = _location(exc, path)
        if isinstance(exc, RecourseBenchError):  # keep the class where it is one of ours
            ours = type(exc).__module__ == RecourseBenchError.__module__
            error = type(exc) if ours else RecourseBenchError
            message = _one_line(str(exc))  # it names the file where it names the plugin
            raise error(
                message if str(path) in message else f"plugin file {where}: {message}"
            ) from exc
        raise RecourseBenchError(
            f"plugin file {where} failed to import: {_describe(exc)}{_elsewhere(exc, path)}; "
            f"{_fix(exc)}"
        ) from exc
    added = [
        name
        for kind, plugins in _REGISTRY.items()
        for name, plugin in plugins.items()
        if before[kind].get(name) is not plugin
    ]
    if require_plugins and not added:
        del sys.modules[module_name]
        raise RecourseBenchError(
            f"plugin file {str(given)!r} registers no plugin; decorate each plugin class with "
            "@register(kind, 'name') (from recourse_bench import register), or each metric "
            "function with @metric(...)"
        )
    _loaded_files[path] = module
    return module


def _unregister(before: dict[str, dict[str, Any]], module_name: str) -> None:
    """Undo what a failed plugin module registered (its own plugins, not those it imported)."""
    for kind, plugins in _REGISTRY.items():
        for name, plugin in list(plugins.items()):
            if before[kind].get(name) is plugin:
                continue
            if getattr(_definition(plugin), "__module__", None) != module_name:
                continue
            if name in before[kind]:
                plugins[name] = before[kind][name]
            else:
                del plugins[name]


def _one_line(text: str) -> str:
    """``text`` on one line: its non-empty lines joined with ``; ``."""
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def _describe(exc: BaseException) -> str:
    """``Type: message`` on one line (a syntax error without its location, given apart)."""
    if isinstance(exc, SyntaxError):
        message = exc.msg or "invalid syntax"
    elif isinstance(exc, SystemExit):
        message = f"the file called sys.exit({exc.code!r}) while loading"
    else:
        message = _one_line(str(exc)) or "(no message)"
    return f"{type(exc).__name__}: {message}"


def _location(exc: BaseException, path: Path) -> str:
    """``path:line`` of the plugin file's line that failed (``path`` alone if none did).

    That is the line of a syntax error in the file, else the file's deepest frame in the
    traceback (the line that called whatever raised).
    """
    if isinstance(exc, SyntaxError) and exc.filename and Path(str(exc.filename)) == path:
        return f"{path}:{exc.lineno}" if exc.lineno else str(path)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
    return f"{path}:{frames[-1].lineno}" if frames else str(path)


def _elsewhere(exc: BaseException, path: Path | None) -> str:
    """`` (in file:line)`` for a syntax error in another file than ``path`` (else empty)."""
    if not isinstance(exc, SyntaxError) or not exc.filename:
        return ""
    if path is not None and Path(str(exc.filename)) == path:
        return ""
    return f" (in {exc.filename}:{exc.lineno})" if exc.lineno else f" (in {exc.filename})"


def _fix(exc: BaseException) -> str:
    """The fix to suggest for an exception raised while a plugin file ran."""
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return f"install the package that provides {exc.name!r}, or fix the import"
    if isinstance(exc, ImportError):
        return "fix the import (run with --debug for the traceback)"
    if isinstance(exc, SyntaxError):
        if exc.lineno:
            return "fix the syntax on that line"
        return "the file is not Python source; name the .py file that registers the plugins"
    return "fix the plugin file (run with --debug for the traceback)"


INFRASTRUCTURE = (
    "recourse_bench",
    "recourse_bench.registry",
    "recourse_bench.config",
    "recourse_bench.cli",
    "recourse_bench.store",
    "recourse_bench.provenance",
    "recourse_bench.describe",
    "recourse_bench.harness",
    "recourse_bench.reports",
    "recourse_bench.testing",
)
"""Modules (and packages) that never enter a code version: how results are found, run, stored
and shown, not what they are. Editing one of them recomputes nothing."""


def is_infrastructure(name: str) -> bool:
    """Whether the module ``name`` is (inside) one of :data:`INFRASTRUCTURE`."""
    return any(
        name == prefix or (prefix != "recourse_bench" and name.startswith(prefix + "."))
        for prefix in INFRASTRUCTURE
    )


def code_version(obj: Any) -> str:
    """A hash of the source of ``obj``'s module and of every module whose code it runs.

    The modules are followed transitively through the module's globals (imported modules,
    classes and functions) among recourse-bench's own and the plugin file's, except the
    :data:`INFRASTRUCTURE` (the registry, config, command line, harness, store, reports), which
    decides how results are computed and kept but not what they are. ``obj``'s own module
    always counts, even where it is infrastructure (the harness's stage functions). Only
    sources count, not where a file lies. Components obtained from the registry are not
    globals: :func:`component_version` adds those a plugin declares in ``uses``.
    """
    module = inspect.getmodule(obj)
    if module is None:
        return "unknown"
    return _module_version(module)


@functools.cache
def _module_version(module: types.ModuleType) -> str:
    """:func:`code_version` of a module, once per process (sources do not change under a run)."""
    used = _modules_used(module).values()
    sources = sorted(hashlib.sha256(_module_source(m)).digest() for m in used)
    return hashlib.sha256(b"".join(sources)).hexdigest()[:16]


def _modules_used(module: types.ModuleType) -> dict[str, types.ModuleType]:
    """``module`` and the recourse-bench (or plugin) modules it reaches through its globals.

    A metric object found in the globals counts as the module of its function (its class,
    :class:`~recourse_bench.api.Metric`, is infrastructure). The walk does not enter
    :data:`INFRASTRUCTURE` modules.
    """
    found = {module.__name__: module}
    pending = [module]
    while pending:
        for value in vars(pending.pop()).values():
            value = _definition(value)
            used = value if isinstance(value, types.ModuleType) else inspect.getmodule(value)
            if used is None or used.__name__ in found:
                continue
            own = used.__name__.startswith(("recourse_bench", module.__name__))
            if own and not is_infrastructure(used.__name__):
                found[used.__name__] = used
                pending.append(used)
    return found


def uses(plugin: Any) -> tuple[tuple[str, str], ...]:
    """The components a plugin obtains from the registry, as it declares them (``uses``)."""
    return tuple(getattr(plugin, "uses", ()) or ())


def component_version(kind: str, name: str) -> str:
    """The code version of a registered component: its own and that of every one it uses.

    A plugin that obtains another from the registry (T-Rex starts from Wachter's recourse)
    declares it in the class attribute ``uses = (("method", "wachter"),)``; the conformance kit
    checks that every component a method obtains during ``fit`` and ``generate`` is declared.
    """
    return _component_version(kind, name, ())


def _component_version(kind: str, name: str, seen: tuple[tuple[str, str], ...]) -> str:
    if (kind, name) in seen:
        raise RecourseBenchError(
            f"{kind} {name!r} uses itself through {' -> '.join(n for _, n in seen)}; "
            "remove the cycle from the plugins' `uses`"
        )
    plugin = get(kind, name)
    parts = [code_version(_definition(plugin))]
    for used_kind, used_name in sorted(uses(plugin)):
        parts.append(_component_version(used_kind, used_name, (*seen, (kind, name))))
    if len(parts) == 1:
        return parts[0]
    return hashlib.sha256("-".join(parts).encode()).hexdigest()[:16]


def dependencies(kind: str, name: str) -> dict[str, list[str]]:
    """What a component's code version covers: its modules and the components it uses.

    Returns ``{"modules": [...], "uses": ["kind:name", ...]}`` (sorted), the used components'
    own modules included in ``modules``.
    """
    plugin = get(kind, name)
    module = inspect.getmodule(_definition(plugin))
    modules = set(_modules_used(module)) if module is not None else set()
    used = []
    for used_kind, used_name in sorted(uses(plugin)):
        used.append(f"{used_kind}:{used_name}")
        inner = dependencies(used_kind, used_name)
        modules |= set(inner["modules"])
        used += inner["uses"]
    return {"modules": sorted(modules), "uses": sorted(set(used))}


_TRACES: list[set[tuple[str, str]]] = []


@contextlib.contextmanager
def trace_lookups() -> Iterator[set[tuple[str, str]]]:
    """Record every (kind, name) that :func:`get` returns within the block."""
    looked_up: set[tuple[str, str]] = set()
    _TRACES.append(looked_up)
    try:
        yield looked_up
    finally:
        _TRACES.remove(looked_up)


def _module_source(module: types.ModuleType) -> bytes:
    file = getattr(module, "__file__", None)
    if file and Path(file).is_file():
        return Path(file).read_bytes()
    return module.__name__.encode()
