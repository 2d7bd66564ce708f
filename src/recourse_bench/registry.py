"""The plugin registry: one name space per kind of plugin.

Built-in plugins register themselves with ``@register(kind)``; third-party packages declare an entry
point in the group ``recourse_bench.plugins`` (a module to import); a local file is loaded with
:func:`load_plugin_file` (``--plugin path.py`` on the command line).
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .api import DuplicateNameError, RecourseBenchError, UnknownNameError

KINDS = ("dataset", "model", "method", "shift", "metric")
ENTRY_POINT_GROUP = "recourse_bench.plugins"
_BUILTIN_PACKAGES = ("datasets", "models", "methods", "shifts", "metrics")

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
    """
    _check_kind(kind)

    def decorate(obj: T) -> T:
        key = name or getattr(obj, "name", "")
        if not key:
            raise RecourseBenchError(f"a {kind} plugin needs a name: @register({kind!r}, 'name')")
        existing = _REGISTRY[kind].get(key)
        if existing is not None and existing is not obj:
            raise DuplicateNameError(
                f"{kind} {key!r} is already registered by {_origin(existing)}; "
                f"choose another name for {_origin(obj)}"
            )
        if isinstance(obj, type):
            obj.name = key  # type: ignore[attr-defined]
        _REGISTRY[kind][key] = obj
        return obj

    return decorate


def _origin(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or type(obj).__module__
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "name", repr(obj))
    return f"{module}.{qualname}"


def suggest(name: str, valid: list[str]) -> str:
    """A "did you mean" hint for a misspelled ``name`` (empty when nothing is close)."""
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def get(kind: str, name: str) -> Any:
    """The plugin registered as ``name``; unknown names raise with the valid ones listed."""
    _check_kind(kind)
    load_plugins()
    try:
        return _REGISTRY[kind][name]
    except KeyError:
        valid = available(kind)
        raise UnknownNameError(
            f"Unknown {kind} {name!r}; {suggest(name, valid)}valid {kind}s: {', '.join(valid)}"
        ) from None


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
                f"plugin entry point {entry.name!r} ({entry.value}) failed to import: {exc}; "
                "fix or uninstall that package"
            ) from exc
        loaded.append(entry.name)
    return loaded


def load_plugin_file(path: str | Path) -> types.ModuleType:
    """Import a local Python file whose ``@register`` decorators add plugins (once per path)."""
    load_plugins()
    path = Path(path).resolve()
    if path in _loaded_files:
        return _loaded_files[path]
    if not path.is_file():
        raise RecourseBenchError(f"plugin file {str(path)!r} does not exist; check the path")
    module_name = f"recourse_bench_plugin_{hashlib.sha1(str(path).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise RecourseBenchError(f"plugin file {str(path)!r} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except RecourseBenchError:
        del sys.modules[module_name]
        raise
    except Exception as exc:
        del sys.modules[module_name]
        raise RecourseBenchError(
            f"plugin file {str(path)!r} failed to import: {type(exc).__name__}: {exc}"
        ) from exc
    _loaded_files[path] = module
    return module


def code_version(obj: Any) -> str:
    """A hash of the source of ``obj``'s module and of every recourse-bench module it uses.

    The modules used are followed transitively through the module's globals (imported modules,
    classes and functions), so editing a helper invalidates everything built on it while editing
    one plugin leaves the others alone. Only sources count, not where a file lies. Cache keys
    include it.
    """
    module = inspect.getmodule(obj)
    if module is None:
        return "unknown"
    used = _modules_used(module).values()
    sources = sorted(hashlib.sha256(_module_source(m)).digest() for m in used)
    return hashlib.sha256(b"".join(sources)).hexdigest()[:16]


def _modules_used(module: types.ModuleType) -> dict[str, types.ModuleType]:
    """``module`` and the recourse-bench (or plugin) modules it reaches through its globals."""
    found = {module.__name__: module}
    pending = [module]
    while pending:
        for value in vars(pending.pop()).values():
            used = value if isinstance(value, types.ModuleType) else inspect.getmodule(value)
            if used is None or used.__name__ in found:
                continue
            if used.__name__.startswith(("recourse_bench", module.__name__)):
                found[used.__name__] = used
                pending.append(used)
    return found


def _module_source(module: types.ModuleType) -> bytes:
    file = getattr(module, "__file__", None)
    if file and Path(file).is_file():
        return Path(file).read_bytes()
    return module.__name__.encode()
