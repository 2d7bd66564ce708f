"""The ``recourse-bench`` command line.

Exit codes: 0 success, 1 some cells failed (results still written), 2 bad usage or configuration.
Any recourse-bench error is reported as one line naming the problem and the fix (``--debug`` shows
the traceback).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from . import __version__, registry
from .api import ConfigError, RecourseBenchError, RecourseMethod
from .config import BenchmarkConfig, load_config, parse_size, parse_timeout, parse_yaml, plan
from .datasets import _files as files_module
from .describe import describe, method_needs, shift_summary
from .harness.backends import BACKENDS, Backend
from .harness.isolation import check_limits
from .harness.plan import check_data_files
from .harness.runner import default_cache_dir, plan_summary, run_benchmark, run_identity
from .provenance import environment
from .reports.data import ReportData
from .reports.report import FORMATS, REPORT_FILE, check_formats, remove_report, write_report
from .reports.tables import markdown_report, terminal_summary, to_markdown
from .store import (
    RESULTS_FILE,
    canonical,
    differences,
    holds_results,
    merge_results,
    read_metadata,
    read_results,
    recorded_identity,
    results_path,
    write_results,
)

LIST_KINDS = {
    "datasets": "dataset",
    "models": "model",
    "methods": "method",
    "shifts": "shift",
    "metrics": "metric",
}
FORMAT_HELP = f"report formats, comma-separated (default: {','.join(FORMATS)})"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(
        prog="recourse-bench",
        description="Benchmark how recourse survives model updates and distribution shifts.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a benchmark matrix from a YAML config")
    run.add_argument("config", help="benchmark YAML file (e.g. benchmarks/quick.yaml)")
    run.add_argument("--out", help="run folder (default: runs/<config name>)")
    run.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=None,
        help="parallel workers (-1: all cores; default 1, or every worker of a cluster)",
    )
    run.add_argument(
        "--backend",
        choices=BACKENDS,
        default="loky",
        help="where units run: joblib's local backends, a Dask cluster or Ray (default: loky)",
    )
    run.add_argument(
        "--scheduler",
        metavar="ADDR",
        help="Dask scheduler (or Ray cluster) address; without it dask/ray start a local cluster",
    )
    run.add_argument("--cache-dir", help="cache folder (default: beside the run folder)")
    run.add_argument(
        "--timeout",
        metavar="SECONDS",
        help="stop a unit still running after this long: timeout rows (overrides the config's)",
    )
    run.add_argument(
        "--memory-limit",
        metavar="SIZE",
        help="memory one unit may allocate, e.g. 8GiB: error rows beyond (overrides the config's)",
    )
    run.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="KIND=NAMES",
        help=(
            "restrict a section (dataset, model, method, shift) to these names, e.g. --only "
            "method=wachter,roar (repeatable); a registered name the config lacks is added "
            "with its default parameters; a method from a file needs --plugin FILE"
        ),
    )
    run.add_argument(
        "--plugin", action="append", default=[], metavar="FILE", help="load plugins from a file"
    )
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a top-level config setting, VALUE in YAML, e.g. --set seeds=2 (repeatable)",
    )
    run.add_argument(
        "--force",
        action="store_true",
        help="replace the results and report of another run in --out (default: refuse)",
    )
    run.add_argument(
        "--no-report", action="store_true", help="do not write the report (tables, figures)"
    )
    run.add_argument("--format", default=",".join(FORMATS), help=FORMAT_HELP)
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="check the config, flags, data files and backend; print the plan per stage with "
        "what is cached and an estimated time; write nothing",
    )

    report = sub.add_parser("report", help="tables, figures and tests from finished runs")
    report.add_argument(
        "results", nargs="+", help="run folder(s) or results.parquet file(s); several are merged"
    )
    report.add_argument(
        "--out", help="report folder (index.md, tables, figures); default: print report.md only"
    )
    report.add_argument("--format", default=",".join(FORMATS), help=FORMAT_HELP)
    report.add_argument(
        "--force",
        action="store_true",
        help="replace the results of another run or merge held in --out (default: refuse)",
    )

    check = sub.add_parser(
        "check-method", help="run the conformance kit on a recourse method (pass/fail table)"
    )
    check.add_argument(
        "method",
        nargs="?",
        help="module:Class, or a registered method name (default: every method of --plugin)",
    )
    check.add_argument(
        "--plugin", action="append", default=[], metavar="FILE", help="load plugins from a file"
    )

    check_any = sub.add_parser(
        "check",
        help="run the conformance kit of every plugin a file registers (or of one registered)",
    )
    check_any.add_argument(
        "kind", nargs="?", choices=sorted(LIST_KINDS), help="with NAME: one registered plugin"
    )
    check_any.add_argument("name", nargs="?", help="the registered name")
    check_any.add_argument(
        "--plugin", action="append", default=[], metavar="FILE", help="load plugins from a file"
    )

    data = sub.add_parser("data", help="dataset files: fetch, verify, or show where they are")
    data.add_argument("action", choices=("fetch", "verify", "where"))
    data.add_argument("name", nargs="?", help="one dataset (default: all)")

    listing = sub.add_parser(
        "list", help="list registered plugins, or describe one (list KIND NAME)"
    )
    listing.add_argument("kind", nargs="?", choices=sorted(LIST_KINDS), help="one kind only")
    listing.add_argument(
        "name", nargs="?", help="one plugin: its summary, parameters, defaults and allowed values"
    )
    listing.add_argument(
        "--plugin", action="append", default=[], metavar="FILE", help="load plugins from a file"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        commands = {
            "run": _run,
            "report": _report,
            "list": _list,
            "data": _data,
            "check-method": _check_method,
            "check": _check,
        }
        return commands[args.command](args)
    except RecourseBenchError as exc:
        if args.debug:
            raise
        print(f"recourse-bench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "recourse-bench: interrupted; finished units are cached, rerun to resume",
            file=sys.stderr,
        )
        return 130


def _parse_only(values: list[str]) -> list[tuple[str, list[str]]]:
    parsed = []
    for value in values:
        kind, sep, names = value.partition("=")
        if not sep or not names:
            raise ConfigError(
                f"--only {value!r}: expected KIND=NAME[,NAME...], e.g. method=wachter"
            )
        parsed.append((kind.strip(), [n.strip() for n in names.split(",") if n.strip()]))
    return parsed


def _run(args: argparse.Namespace) -> int:
    for path in args.plugin:
        registry.load_plugin_file(path)
    overrides = _parse_set(args.set)
    config = load_config(args.config, overrides)
    formats = _formats(args.format)  # checked before any work
    only = _parse_only(args.only)
    for kind, names in only:
        config = config.only(kind, names)
    config = _with_limits(config, args.timeout, args.memory_limit)
    backend = Backend(args.backend, args.jobs, args.scheduler)  # checked before any work
    check_limits(config.limits, args.backend)
    out = Path(args.out) if args.out else Path("runs") / config.name
    cache_dir = Path(args.cache_dir) if args.cache_dir else default_cache_dir(out)
    if args.dry_run:
        check_data_files(config)
        backend.check_installed()
        print(plan_summary(config, cache_dir, args.plugin))
        return 0
    _check_out_folder(out, run_identity(config, args.plugin), args.force, "run")
    _writable_folder(out, "--out")
    _writable_folder(cache_dir, "--cache-dir")
    if not args.quiet:
        print(f"recourse-bench: {config.name}: {len(plan(config))} cells -> {out}", file=sys.stderr)
    invocation = {
        "config_file": str(Path(args.config).resolve()),
        "set": overrides,
        "only": [f"{kind}={','.join(names)}" for kind, names in only],
        "timeout": args.timeout,
        "memory_limit": args.memory_limit,
        "force": args.force,
    }
    result = run_benchmark(
        config,
        out,
        n_jobs=args.jobs,
        backend=args.backend,
        scheduler=args.scheduler,
        cache_dir=cache_dir,
        plugin_files=args.plugin,
        progress=not args.quiet,
        invocation=invocation,
    )
    if args.no_report:
        remove_report(out)  # an earlier report would no longer match these results
    else:
        data = ReportData.build(
            result.results,
            title=config.name,
            timings=result.metadata.get("recourse_timings"),
            metrics=result.metadata.get("metrics"),
            table=config.table,
            provenance=[result.metadata],
        )
        index = write_report(data, out, formats=formats)
        print(terminal_summary(data))
        print(
            f"recourse-bench: full tables in {out / REPORT_FILE}; tables and figures: {index}",
            file=sys.stderr,
        )
    stages = result.metadata["stages"]
    cached = sum(s["cached"] for s in stages.values())
    units = sum(s["units"] for s in stages.values())
    print(
        f"recourse-bench: wrote {out / 'results.parquet'} ({len(result.results)} rows; "
        f"{cached}/{units} units from cache; {result.metadata['wall_seconds']:.1f} s)",
        file=sys.stderr,
    )
    return _failure_summary(result.metadata["failed_units"], units)


def _parse_set(values: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` flags as settings; VALUE is read as YAML (``3``, ``[a, b]``)."""
    settings: dict[str, Any] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {value!r}: expected KEY=VALUE, e.g. --set seeds=2")
        settings[key.strip()] = parse_yaml(text, f"--set {key.strip()}")
    return settings


def _check_out_folder(out: Path, identity: dict[str, Any], force: bool, command: str) -> None:
    """Refuse to write into a folder that holds the results of another run (unless ``force``).

    Nothing in the folder is touched before the check. The same config (a rerun, or a run
    resumed after a crash) may write there.
    """
    if force or not holds_results(out):
        return
    recorded = recorded_identity(out)
    wanted = canonical(identity)
    if recorded == wanted:
        return
    differ = ", ".join(differences(recorded, wanted)) or "its recorded run"
    merge = (
        f"write to another --out and merge with `recourse-bench report {out} NEW --out MERGED`"
        if command == "run"
        else "choose another --out"
    )
    what = "run" if command == "run" else "run or merge"
    raise ConfigError(
        f"--out {str(out)!r} holds the results of another {what} (they differ in {differ}); "
        f"add --force to replace them, or {merge}"
    )


def _with_limits(
    config: BenchmarkConfig, timeout: str | None, memory: str | None
) -> BenchmarkConfig:
    """The config with the limits given as flags (``--timeout``, ``--memory-limit``)."""
    changes: dict[str, Any] = {}
    if timeout is not None:
        try:
            seconds: Any = float(timeout)
        except ValueError:
            seconds = timeout
        changes["timeout"] = parse_timeout(seconds, "--timeout")
    if memory is not None:
        changes["memory_limit"] = parse_size(memory, "--memory-limit")
    return dataclasses.replace(config, **changes)


def _failure_summary(failed_units: list[dict[str, Any]], units: int) -> int:
    """Name every failed unit with its first error line; the exit code (1 if any failed)."""
    if not failed_units:
        return 0
    print(
        f"recourse-bench: {len(failed_units)} of {units} units failed; their cells are "
        "error/timeout rows in the results, the rest of the matrix is complete:",
        file=sys.stderr,
    )
    for failure in sorted(failed_units, key=lambda f: f["unit"]):
        print(
            f"recourse-bench: {failure['status']}: {failure['unit']}: {failure['error']}",
            file=sys.stderr,
        )
    return 1


def _writable_folder(path: Path, flag: str) -> Path:
    """Create ``path`` up front, so that a bad folder fails before any work, in one line."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".recourse-bench-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"{flag} {str(path)!r} is not a writable folder ({exc.strerror or exc}); "
            f"choose another {flag}"
        ) from None
    return path


def _report(args: argparse.Namespace) -> int:
    formats = _formats(args.format)
    sources = [results_path(path).resolve() for path in args.results]
    frames = [read_results(path) for path in sources]
    metadata = [read_metadata(path) for path in sources]
    results, replaced = merge_results(frames)
    names = list(dict.fromkeys(m.get("config_name", "recourse-bench") for m in metadata))
    title = " + ".join(names)
    timings = [t for m in metadata for t in m.get("recourse_timings") or []]
    metrics = {name: record for m in metadata for name, record in (m.get("metrics") or {}).items()}
    table = list(dict.fromkeys(name for m in metadata for name in _table_of(m)))
    data = ReportData.build(
        results, title=title, timings=timings, metrics=metrics, table=table, provenance=metadata
    )
    if replaced:
        print(
            f"recourse-bench: {replaced} measurement(s) appear in more than one results file; "
            "the later file's values are kept",
            file=sys.stderr,
        )
    if not args.out:
        print(markdown_report(data))
        print("recourse-bench: add --out DIR for LaTeX tables, figures and tests", file=sys.stderr)
        return 0
    out = Path(args.out)
    own = sources == [(out / RESULTS_FILE).resolve()]  # a run's report written again in place
    if not own:
        identity = {"merged_from": [str(path) for path in sources]}
        _check_out_folder(out, identity, args.force, "report")
    _writable_folder(out, "--out")
    if not own:  # the merged results beside their report, so the folder is itself a source
        merged = {
            "config_name": title,
            "identity": identity,
            "merged_from": identity["merged_from"],
            "replaced_measurements": replaced,
            "recourse_timings": timings,
            "metrics": metrics,
            "table": table,
            **environment(),
        }
        write_results(results, out, merged)
    index = write_report(
        data, out, formats=formats, sources=[str(path) for path in sources], duplicates=replaced
    )
    print(terminal_summary(data))
    print(f"recourse-bench: wrote {out / RESULTS_FILE} and {index}", file=sys.stderr)
    return 0


def _table_of(metadata: Mapping[str, Any]) -> list[str]:
    """The main table's metrics a results file's metadata names (a run's config, or a merge)."""
    config = metadata.get("config") or {}
    return list(metadata.get("table") or config.get("table") or [])


def _formats(text: str) -> tuple[str, ...]:
    """``--format`` as a tuple of formats; one clear line for an unknown one."""
    try:
        return check_formats(text.split(","))
    except ValueError as exc:
        raise ConfigError(f"--format {text!r}: {exc}") from None


def _check_method(args: argparse.Namespace) -> int:
    return _run_kits(_methods_to_check(args))


def _check(args: argparse.Namespace) -> int:
    """``check --plugin FILE``: the kits of what the files register; ``check KIND NAME``: one."""
    modules = [registry.load_plugin_file(path) for path in args.plugin]
    if args.kind and args.name:
        return _run_kits([_plugin_instance(LIST_KINDS[args.kind], args.name)])
    if args.kind or args.name:
        raise ConfigError("check: give KIND and NAME (e.g. `check shifts bootstrap`), or --plugin")
    names = {module.__name__ for module in modules}
    found = [
        _plugin_instance(kind, name)
        for kind in registry.KINDS
        for name in registry.available(kind)
        if registry.defining_module(registry.get(kind, name)) in names
    ]
    if not found:
        raise ConfigError(
            "check: pass --plugin FILE with a file that registers a plugin, or KIND NAME"
        )
    return _run_kits(found)


def _plugin_instance(kind: str, name: str) -> Any:
    """A registered plugin ready for its kit: a metric as registered, others with defaults."""
    plugin = registry.get(kind, name)
    return plugin if kind == "metric" else _instance(plugin)


def _run_kits(components: list[Any]) -> int:
    """Run each component's kit and print a pass/fail table per component; 1 if any failed."""
    from .testing import check_component, kind_of

    failed = 0
    for component in components:
        results = check_component(component, raise_on_failure=False)
        rows = [
            {
                "check": r.name,
                "status": r.status,
                "model": r.model or "",
                "seconds": f"{r.seconds:.2f}",
                "message": r.message if r.status != "passed" else "",
            }
            for r in results
        ]
        bad = [r for r in results if not r.ok]
        failed += bool(bad)
        verdict = "passes" if not bad else f"fails {len(bad)} of {len(results)} checks"
        label = getattr(component, "label", None) or component.name
        kind = kind_of(component)
        print(f"## {kind} {label}: {verdict}\n\n{to_markdown(pd.DataFrame(rows))}")
    return 1 if failed else 0


def _methods_to_check(args: argparse.Namespace) -> list[Any]:
    """The method instances named on the command line (defaults of their classes)."""
    modules = [registry.load_plugin_file(path) for path in args.plugin]
    if args.method and ":" in args.method:
        module_name, _, class_name = args.method.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except Exception as exc:  # ImportError, AttributeError, or the module's own error
            raise ConfigError(
                f"check-method {args.method!r}: cannot import it ({type(exc).__name__}: {exc}); "
                "give module:Class with the module on the Python path, or use --plugin FILE"
            ) from None
        if not (isinstance(cls, type) and issubclass(cls, RecourseMethod)):
            raise ConfigError(
                f"check-method {args.method!r} is not a RecourseMethod subclass; "
                "name the method's class"
            )
        return [_instance(cls)]
    if args.method:
        return [_instance(registry.get("method", args.method))]
    names = [
        name
        for name in registry.available("method")
        if any(
            registry.defining_module(registry.get("method", name)) == m.__name__ for m in modules
        )
    ]
    if not names:
        raise ConfigError(
            "check-method: name a method (module:Class or a registered name), or pass "
            "--plugin FILE with a file that registers at least one method"
        )
    return [_instance(registry.get("method", name)) for name in names]


def _instance(cls: type) -> Any:
    """The plugin with its default parameters; one line if it has none to construct with."""
    try:
        return cls()
    except Exception as exc:
        raise ConfigError(
            f"check: {cls.__name__}() failed ({type(exc).__name__}: {exc}); give every "
            "__init__ parameter a default, as the kit and the harness construct plugins that way"
        ) from None


def _data(args: argparse.Namespace) -> int:
    names = [args.name] if args.name else registry.available("dataset")
    problems = 0
    for name in names:
        dataset = registry.get("dataset", name)
        files = getattr(dataset, "files", ())
        if not files:
            print(f"{name}: generated, no files")
            continue
        for file in files:
            if args.action == "fetch":
                try:
                    files_module.read(file)
                    state, path = "ok", files_module.locate(file)
                except RecourseBenchError as exc:
                    state, path = str(exc), None
            else:
                state, path = files_module.status(file)
            if args.action == "where" and path is None:
                looked = ", ".join(str(p) for p in files_module.candidates(file))
                print(f"{name}: {file.name}: missing (looked in {looked})")
            else:
                print(f"{name}: {file.name}: {state}" + (f" ({path})" if path else ""))
            problems += state != "ok"
    return 1 if problems and args.action != "where" else 0


def _list(args: argparse.Namespace) -> int:
    for path in args.plugin:
        registry.load_plugin_file(path)
    if args.name:
        if not args.kind:
            raise ConfigError(
                "list NAME needs the kind first, e.g. `recourse-bench list methods roar`"
            )
        print(describe(LIST_KINDS[args.kind], args.name), end="")
        return 0
    kinds = [args.kind] if args.kind else sorted(LIST_KINDS)
    for plural in kinds:
        kind = LIST_KINDS[plural]
        print(f"{plural}:")
        for name in registry.available(kind):
            plugin = registry.get(kind, name)
            doc = (plugin.__doc__ or "").strip().splitlines()
            line = doc[0] if doc else ""
            info = getattr(plugin, "info", None)
            if info is not None:
                line = f"{line} [{info.summary}]"
            print(f"  {name:<22} {line}")
            if kind == "model":
                print(f"  {'':<22} {shift_summary(plugin)}")
            if kind == "method":
                print(f"  {'':<22} {'; '.join(method_needs(plugin))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
