"""Benchmark configurations: YAML -> validated :class:`BenchmarkConfig` -> :func:`plan`.

A configuration names the components of the matrix. Each component is a registered name, or a
mapping with ``name``, fixed ``params`` and a ``grid`` of swept values (the cartesian product)::

    name: quick
    seeds: 3                # seed repetitions (or an explicit list of indices)
    data_dir: ../data       # optional: folder of raw dataset files (relative to this file)
    n_factuals: 100         # at most this many rejected test points per cell
    datasets: [german, {name: synthetic-gaussians, params: {n_samples: 1000}}]
    models: [logreg, mlp]
    methods: [{name: wachter, grid: {lam: [0.1, 1.0]}}]
    shifts: [{name: retrain-seed, params: {n_models: 10}}]
    metrics: [coverage, validity, cost-l1, invalidation-rate]
    timeout: 3600           # optional: seconds one unit may run before it is stopped (timeout rows)
    memory_limit: 8GiB      # optional: memory one unit may add to its process's

Every key is checked: a misspelled key or parameter is an error naming the valid ones, never
silently dropped.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from . import registry
from .api import Component, ConfigError, same_value

COMPONENT_SECTIONS = {
    "datasets": "dataset",
    "models": "model",
    "methods": "method",
    "shifts": "shift",
}
TOP_LEVEL_KEYS = {"name", "description", "seed", "seeds", "n_factuals", "metrics", "data_dir"}
TOP_LEVEL_KEYS |= {"timeout", "memory_limit", "table"}
TOP_LEVEL_KEYS |= set(COMPONENT_SECTIONS)
ENTRY_KEYS = {"name", "params", "grid"}
DEFAULT_METRICS = ("coverage", "validity", "cost-l1", "invalidation-rate", "violations")
ALWAYS_MEASURED = ("violations",)
"""Metrics every run measures, listed or not: a broken recourse is never scored unseen."""
_SIZE_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def _freeze(value: Any) -> Any:
    """A hashable, canonical version of a YAML value (lists become tuples)."""
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True, order=True)
class ComponentSpec:
    """One fully specified component: a registered name and fixed parameter values."""

    kind: str
    name: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def params_dict(self) -> dict[str, Any]:
        """The parameters as a dictionary."""
        return dict(self.params)

    @property
    def params_json(self) -> str:
        """The parameters as canonical JSON (for the results table)."""
        return json.dumps({k: _jsonable(v) for k, v in self.params}, sort_keys=True)

    def build(self) -> Any:
        """A fresh instance of the plugin (metrics are returned as registered)."""
        plugin = registry.get(self.kind, self.name)
        if self.kind == "metric":
            return plugin
        return plugin(**self.params_dict)

    @property
    def label(self) -> str:
        """The component's readable label, e.g. ``wachter(lam=1.0)``."""
        return _label(self)

    def entry(self) -> str | dict[str, Any]:
        """The spec as a config entry: the name, or ``{name, params}`` (plain YAML values)."""
        if not self.params:
            return self.name
        return {"name": self.name, "params": {k: _jsonable(v) for k, v in self.params}}

    def code_version(self) -> str:
        """The plugin's code version (:func:`registry.component_version`), once per process."""
        return _code_version(self.kind, self.name)


@cache
def _label(spec: ComponentSpec) -> str:
    built = spec.build()
    return built.label if isinstance(built, Component) else spec.name


@cache
def _code_version(kind: str, name: str) -> str:
    return registry.component_version(kind, name)


@dataclass(frozen=True)
class Limits:
    """What one unit may use: wall seconds (``timeout``) and extra bytes (``memory``)."""

    timeout: float | None = None
    memory: int | None = None

    def __post_init__(self) -> None:
        if self.timeout is not None and not self.timeout > 0:
            raise ConfigError(f"timeout must be a number of seconds > 0, got {self.timeout!r}")
        if self.memory is not None and self.memory <= 0:
            raise ConfigError(f"memory_limit must be a size > 0, got {self.memory!r}")

    @property
    def active(self) -> bool:
        """Whether any limit is set."""
        return self.timeout is not None or self.memory is not None

    def describe(self) -> dict[str, Any]:
        """The limits for the run metadata."""
        return {"timeout": self.timeout, "memory_limit": self.memory}


def parse_size(value: Any, what: str = "memory_limit") -> int | None:
    """A memory size from a config or flag: ``8GiB``, ``512 MB``, ``2g`` or a number of bytes.

    Units are binary (``MB`` and ``MiB`` both mean 2**20 bytes). None stays None.
    """
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        size = float(value)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([kmgt]?)(?:i?b)?\s*", str(value).lower())
        if isinstance(value, bool) or match is None:
            raise ConfigError(
                f"{what} {value!r} is not a memory size; write it like 8GiB, 512MiB or 2g"
            )
        size = float(match.group(1)) * _SIZE_UNITS[match.group(2)]
    if not math.isfinite(size) or size < 2**20:
        raise ConfigError(
            f"{what} {value!r} is not a size of at least 1 MiB; write it like 8GiB or 512MiB"
        )
    return int(size)


@dataclass(frozen=True)
class BenchmarkConfig:
    """A validated benchmark matrix."""

    name: str
    seed: int
    seeds: tuple[int, ...]
    n_factuals: int
    datasets: tuple[ComponentSpec, ...]
    models: tuple[ComponentSpec, ...]
    methods: tuple[ComponentSpec, ...]
    shifts: tuple[ComponentSpec, ...]
    metrics: tuple[str, ...]
    data_dir: str | None = None
    timeout: float | None = None
    memory_limit: int | None = None
    table: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def limits(self) -> Limits:
        """What one unit may use (``timeout``, ``memory_limit``); checked here."""
        return Limits(self.timeout, self.memory_limit)

    def to_dict(self) -> dict[str, Any]:
        """The effective config as plain YAML values: grids expanded, ``--only`` applied.

        :func:`load_config` reads it back to the same config; the run metadata records it.
        """
        settings: dict[str, Any] = {
            "name": self.name,
            "seed": self.seed,
            "seeds": list(self.seeds),
            "n_factuals": self.n_factuals,
        }
        for section in COMPONENT_SECTIONS:
            settings[section] = [spec.entry() for spec in getattr(self, section)]
        settings["metrics"] = list(self.metrics)
        optional = {
            "data_dir": self.data_dir,
            "timeout": self.timeout,
            "memory_limit": self.memory_limit,
            "table": list(self.table) or None,
        }
        settings.update({key: value for key, value in optional.items() if value is not None})
        return settings

    def identity(self) -> dict[str, Any]:
        """What the results depend on: :meth:`to_dict` without limits, data folder and table.

        Two runs of equal identity compute the same numbers (files are identified by their
        sha256, not where they lie), so one may resume or replace the other in a run folder.
        """
        settings = self.to_dict()
        for key in ("data_dir", "timeout", "memory_limit", "table"):
            settings.pop(key, None)
        return settings

    def only(self, kind: str, names: Iterable[str]) -> BenchmarkConfig:
        """Restrict one section to the given names (``--only method=a,b``).

        The config's entries of those names are kept, with their parameters and grids. A
        registered name the config does not list (e.g. a method from ``--plugin``, or a dataset
        the study left out) is added with its default parameters, after them, so that a new
        component runs against the config's others and every stage they share comes from the
        cache. A name that is neither listed nor registered is refused, with a hint to
        ``--plugin`` for a component defined in a file.
        """
        section = {v: k for k, v in COMPONENT_SECTIONS.items()}.get(kind)
        if section is None:
            raise ConfigError(
                f"--only {kind}=...: unknown kind; "
                f"use one of {', '.join(COMPONENT_SECTIONS.values())}"
            )
        names = list(dict.fromkeys(names))
        present = {spec.name for spec in getattr(self, section)}
        registered = set(registry.available(kind))
        unknown = [n for n in names if n not in present | registered]
        if unknown:
            choices = sorted(present | registered)
            raise ConfigError(
                f"--only {kind}={','.join(names)}: {unknown[0]!r} is neither in this config nor "
                f"a registered {kind}; {registry.suggest(unknown[0], choices)}a {kind} defined "
                f"in a file needs --plugin FILE; registered {section}: {', '.join(choices)}"
            )
        kept = [spec for spec in getattr(self, section) if spec.name in names]
        added = [
            spec
            for name in names
            if name not in present
            for spec in _expand(name, kind, f"--only {kind}={name}")
        ]
        changes: dict[str, Any] = {section: tuple(kept + added)}
        return replace(self, **changes)


@dataclass(frozen=True, order=True)
class Cell:
    """One cell of the matrix: a (dataset, model, method, shift, seed) combination."""

    dataset: ComponentSpec
    model: ComponentSpec
    method: ComponentSpec
    shift: ComponentSpec
    seed: int


class DuplicateKeyError(yaml.YAMLError):
    """A YAML mapping names the same key twice (PyYAML would keep the last one silently)."""

    def __init__(self, key: Any, line: int, first_line: int):
        super().__init__(f"duplicate key {key!r} at line {line} (first at line {first_line})")
        self.key, self.line, self.first_line = key, line, first_line


class StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that repeats a key."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """The mapping of ``node``; raises :class:`DuplicateKeyError` for a repeated key."""
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                seen = first.get(key)
            except TypeError:  # an unhashable key: the base class says so
                break
            line = key_node.start_mark.line + 1
            if seen is not None:
                raise DuplicateKeyError(key, line, seen)
            first[key] = line
        return super().construct_mapping(node, deep=deep)


StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, StrictLoader.construct_mapping
)


def parse_yaml(text: str, where: str) -> Any:
    """YAML as Python values; one :class:`ConfigError` line for bad syntax or a repeated key."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # a SafeLoader: plain values only
    except DuplicateKeyError as exc:
        raise ConfigError(
            f"{where}: the key {exc.key!r} appears twice, at lines {exc.first_line} and "
            f"{exc.line}; keep one of them"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{where}: {problem}{line}; fix the YAML syntax") from None


def load_config(
    source: str | Path | Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> BenchmarkConfig:
    """Read and validate a configuration from a YAML file or a mapping.

    Parameters
    ----------
    source : path or mapping
        The YAML file (a mapping that repeats a key is refused), or the settings themselves.
    overrides : mapping, optional
        Top-level settings that replace the file's (``--set KEY=VALUE``); an unknown key is
        refused like a misspelled setting in the file.
    """
    where = "config"
    if isinstance(source, Mapping):
        raw: Any = dict(source)
    else:
        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise ConfigError(f"config file {where!r} does not exist; check the path")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {where!r}: {exc}") from None
        raw = parse_yaml(text, where)
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping of settings at the top level")
    if overrides:
        _check_keys(overrides, TOP_LEVEL_KEYS, "--set: unknown setting", "valid settings")
        raw = {**raw, **overrides}
    return _validate(raw, where)


def _validate(raw: Mapping[str, Any], where: str) -> BenchmarkConfig:
    _check_keys(raw, TOP_LEVEL_KEYS, f"{where}: unknown setting", "valid settings")
    for section in COMPONENT_SECTIONS:
        if section not in raw:
            raise ConfigError(f"{where}: missing section {section!r}; list at least one entry")
    seed = _integer(raw.get("seed", 0), f"{where}: seed", minimum=0)
    seeds_raw = raw.get("seeds", 1)
    if isinstance(seeds_raw, list):
        seeds = tuple(
            _integer(s, f"{where}: seeds[{i}]", minimum=0) for i, s in enumerate(seeds_raw)
        )
        if not seeds or len(set(seeds)) != len(seeds):
            raise ConfigError(f"{where}: seeds must be a non-empty list of distinct integers")
    else:
        seeds = tuple(range(_integer(seeds_raw, f"{where}: seeds", minimum=1)))
    n_factuals = _integer(raw.get("n_factuals", 100), f"{where}: n_factuals", minimum=1)
    sections = {
        section: _components(raw[section], kind, f"{where}: {section}")
        for section, kind in COMPONENT_SECTIONS.items()
    }
    metrics = _metric_names(raw.get("metrics", list(DEFAULT_METRICS)), f"{where}: metrics")
    table = _table_metrics(raw.get("table"), metrics, f"{where}: table")
    name = raw.get("name") or (Path(where).stem if where != "config" else "benchmark")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][\w.-]*", name):
        raise ConfigError(
            f"{where}: name must be a plain word (letters, digits, '.', '_', '-'), got {name!r}; "
            "it names the run folder"
        )
    data_dir = raw.get("data_dir")
    if data_dir is not None:
        if not isinstance(data_dir, str) or not data_dir:
            raise ConfigError(f"{where}: data_dir must be a folder path, got {data_dir!r}")
        base = Path(where).parent if where != "config" else Path.cwd()
        data_dir = str((base / Path(data_dir).expanduser()).resolve())
    timeout = parse_timeout(raw.get("timeout"), f"{where}: timeout")
    memory_limit = parse_size(raw.get("memory_limit"), f"{where}: memory_limit")
    return BenchmarkConfig(
        name=name,
        data_dir=data_dir,
        timeout=timeout,
        memory_limit=memory_limit,
        seed=seed,
        seeds=seeds,
        n_factuals=n_factuals,
        metrics=metrics,
        table=table,
        raw=dict(raw),
        **sections,
    )


def _check_keys(given: Iterable[Any], valid: Iterable[str], what: str, listing: str) -> None:
    valid = sorted(valid)
    for key in given:
        if key not in valid:
            raise ConfigError(
                f"{what} {key!r}; {registry.suggest(str(key), valid)}"
                f"{listing}: {', '.join(valid) or '(none)'}"
            )


def parse_timeout(value: Any, what: str = "timeout") -> float | None:
    """Seconds one unit may run: a number > 0, or None (no limit)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"{what} must be a number of seconds > 0 (or null), got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{what} must be a finite number of seconds (or null), got {value!r}")
    return float(value)


def _integer(value: Any, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return value


def _components(entries: Any, kind: str, where: str) -> tuple[ComponentSpec, ...]:
    if isinstance(entries, str | Mapping):
        entries = [entries]
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where}: expected a non-empty list of {kind} names or mappings")
    specs: list[ComponentSpec] = []
    for i, entry in enumerate(entries):
        specs.extend(_expand(entry, kind, f"{where}[{i}]"))
    duplicates = sorted({s.name for s in specs if specs.count(s) > 1})
    if duplicates:
        raise ConfigError(f"{where}: {kind} {duplicates[0]!r} is listed twice with the same params")
    return tuple(specs)


def _expand(entry: Any, kind: str, where: str) -> list[ComponentSpec]:
    """One config entry -> one spec per point of its grid."""
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, Mapping) or "name" not in entry:
        raise ConfigError(f"{where}: expected a {kind} name or a mapping with a 'name' key")
    _check_keys(entry, ENTRY_KEYS, f"{where}: unknown key", "valid keys")
    name = entry["name"]
    plugin = registry.get(kind, str(name))
    params = entry.get("params") or {}
    grid = entry.get("grid") or {}
    for part, value in (("params", params), ("grid", grid)):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} ({name}): {part} must be a mapping of parameter: value")
    valid = plugin.param_names()
    _check_keys(
        itertools.chain(params, grid),
        valid,
        f"{where} ({name}): unknown parameter",
        f"valid parameters of {name}",
    )
    both = sorted(set(params) & set(grid))
    if both:
        raise ConfigError(f"{where} ({name}): {both[0]!r} is in both params and grid; keep one")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where} ({name}): grid {key!r} must be a non-empty list of values")
    keys = sorted(grid)
    specs = []
    for values in itertools.product(*(grid[k] for k in keys)):
        merged = {**params, **dict(zip(keys, values, strict=True))}
        spec = _spec(kind, str(name), merged, plugin.param_defaults())
        try:
            built = spec.build()
            if isinstance(built, Component):
                built.validate_params()
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where} ({name}): invalid parameters {merged}: {exc}") from None
        specs.append(spec)
    return specs


def _spec(kind: str, name: str, params: dict[str, Any], defaults: dict[str, Any]) -> ComponentSpec:
    """A canonical spec: frozen values, sorted keys, parameters equal to their default dropped.

    Two entries that configure the same component (``wachter`` and ``wachter`` with
    ``lam: 0.1``, its default) thus get the same spec and the same label.
    """
    frozen = {key: _freeze(value) for key, value in params.items()}
    kept = {
        key: value
        for key, value in frozen.items()
        if key not in defaults or not same_value(defaults[key], value)
    }
    return ComponentSpec(kind, name, tuple(sorted(kept.items())))


def _metric_names(names: Any, where: str) -> tuple[str, ...]:
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not names:
        raise ConfigError(f"{where}: expected a non-empty list of metric names")
    for name in names:
        registry.get("metric", str(name))
    return tuple(dict.fromkeys([*(str(n) for n in names), *ALWAYS_MEASURED]))


def _table_metrics(names: Any, metrics: tuple[str, ...], where: str) -> tuple[str, ...]:
    """The metrics of the report's main table (``table:``), each one the run measures."""
    if names is None:
        return ()
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not names:
        raise ConfigError(f"{where}: expected a non-empty list of metric names (or no table)")
    for name in names:
        if str(name) not in metrics:
            registry.get("metric", str(name))  # an unknown name: the registry's suggestion
            raise ConfigError(
                f"{where}: {name!r} is not measured by this config; add it to metrics or "
                "remove it from table"
            )
    return tuple(dict.fromkeys(str(n) for n in names))


def plan(config: BenchmarkConfig) -> list[Cell]:
    """All cells of the matrix: datasets x models x methods x shifts x seeds."""
    return [
        Cell(dataset, model, method, shift, seed)
        for dataset, model, method, shift, seed in itertools.product(
            config.datasets, config.models, config.methods, config.shifts, config.seeds
        )
    ]
