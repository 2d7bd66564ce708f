"""The ``recourse-bench`` command line.

Exit codes: 0 success, 1 some cells failed (results still written), 2 bad usage or configuration.
Any recourse-bench error is reported as one line naming the problem and the fix (``--debug`` shows
the traceback).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__, registry
from .api import ConfigError, RecourseBenchError
from .config import load_config, plan
from .datasets import _files as files_module
from .harness.runner import BACKENDS, default_cache_dir, run_benchmark
from .reports.tables import markdown_report
from .store import read_metadata, read_results

LIST_KINDS = {
    "datasets": "dataset",
    "models": "model",
    "methods": "method",
    "shifts": "shift",
    "metrics": "metric",
}
REPORT_FILE = "report.md"


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
    run.add_argument("-j", "--jobs", type=int, default=1, help="parallel workers (-1: all cores)")
    run.add_argument("--backend", choices=BACKENDS, default="loky", help="joblib backend")
    run.add_argument("--cache-dir", help="cache folder (default: beside the run folder)")
    run.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="KIND=NAMES",
        help="restrict a section, e.g. --only method=wachter,roar (repeatable)",
    )
    run.add_argument(
        "--plugin", action="append", default=[], metavar="FILE", help="load plugins from a file"
    )
    run.add_argument("--no-report", action="store_true", help="do not write report.md")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    report = sub.add_parser("report", help="tables from a finished run")
    report.add_argument("results", help="run folder or results.parquet")
    report.add_argument("--out", help="folder to write report.md into (default: print only)")

    data = sub.add_parser("data", help="dataset files: fetch, verify, or show where they are")
    data.add_argument("action", choices=("fetch", "verify", "where"))
    data.add_argument("name", nargs="?", help="one dataset (default: all)")

    listing = sub.add_parser("list", help="list registered plugins")
    listing.add_argument("kind", nargs="?", choices=sorted(LIST_KINDS), help="one kind only")
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
        commands = {"run": _run, "report": _report, "list": _list, "data": _data}
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
    config = load_config(args.config)
    for kind, names in _parse_only(args.only):
        config = config.only(kind, names)
    if args.jobs == 0 or args.jobs < -1:
        raise ConfigError(f"-j {args.jobs}: use a positive number of workers, or -1 for all cores")
    out = _writable_folder(Path(args.out) if args.out else Path("runs") / config.name, "--out")
    cache_dir = Path(args.cache_dir) if args.cache_dir else default_cache_dir(out)
    _writable_folder(cache_dir, "--cache-dir")
    n_cells = len(plan(config))
    if not args.quiet:
        print(f"recourse-bench: {config.name}: {n_cells} cells -> {out}", file=sys.stderr)
    result = run_benchmark(
        config,
        out,
        n_jobs=args.jobs,
        backend=args.backend,
        cache_dir=cache_dir,
        plugin_files=args.plugin,
        progress=not args.quiet,
    )
    if not args.no_report:
        timings = result.metadata.get("recourse_timings")
        text = markdown_report(result.results, title=config.name, timings=timings)
        (out / REPORT_FILE).write_text(text, encoding="utf-8")
        print(text)
    stages = result.metadata["stages"]
    cached = sum(s["cached"] for s in stages.values())
    units = sum(s["units"] for s in stages.values())
    print(
        f"recourse-bench: wrote {out / 'results.parquet'} ({len(result.results)} rows; "
        f"{cached}/{units} units from cache; {result.metadata['wall_seconds']:.1f} s)",
        file=sys.stderr,
    )
    errors = result.results[result.results["status"].isin(["error", "timeout"])]
    if len(errors) or result.metadata["failed_units"]:
        for _, row in errors.drop_duplicates(["dataset", "model", "method", "seed"]).iterrows():
            print(
                f"recourse-bench: error in {row['dataset']}/{row['model']}/{row['method_label']} "
                f"seed {row['seed']}: {row['reason']}",
                file=sys.stderr,
            )
        return 1
    return 0


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
    results = read_results(args.results)
    metadata = read_metadata(args.results)
    name = metadata.get("config_name", "recourse-bench")
    text = markdown_report(results, title=name, timings=metadata.get("recourse_timings"))
    if args.out:
        out = _writable_folder(Path(args.out), "--out")
        (out / REPORT_FILE).write_text(text, encoding="utf-8")
    print(text)
    return 0


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
    return 0


if __name__ == "__main__":
    sys.exit(main())
