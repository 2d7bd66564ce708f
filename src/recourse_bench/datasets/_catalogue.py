"""The dataset catalogue (``docs/datasets.md``), generated from each dataset's code and docstring.

Regenerate with ``python -m recourse_bench.datasets._catalogue > docs/datasets.md``; a test keeps
the page equal to what the code says.
"""

from __future__ import annotations

import inspect
import sys

from .. import registry


def builtin_datasets() -> list[str]:
    """Names of the datasets that ship with recourse-bench."""
    return [
        name
        for name in registry.available("dataset")
        if registry.get("dataset", name).__module__.startswith("recourse_bench.datasets.")
    ]


def catalogue_markdown() -> str:
    """The catalogue page: a summary table, then every dataset's documentation."""
    lines = [
        "# Datasets",
        "",
        "Generated from the code by `python -m recourse_bench.datasets._catalogue`; every number",
        "is asserted by the test suite. Files are looked up in the package, then in the data",
        "folder (`RECOURSE_BENCH_DATA` or the config key `data_dir`), then in the download cache;",
        "`recourse-bench data where|verify|fetch` shows and fetches them.",
        "",
        "| name | rows | favourable | natural shift (future split) | licence |",
        "|---|---|---|---|---|",
    ]
    sections = []
    for name in builtin_datasets():
        plugin = registry.get("dataset", name)
        info = getattr(plugin, "info", None)
        module_doc = inspect.getdoc(sys.modules[plugin.__module__]) or ""
        if info is None:
            lines.append(f"| {name} | generated | | {_future(plugin)} | |")
        else:
            share = f"{info.favourable} ({info.favourable / info.rows:.1%})"
            future = info.future or ""
            if info.future_rows:
                future += f"; {info.future_rows} rows, {info.future_favourable} favourable"
            lines.append(f"| {name} | {info.rows} | {share} | {future} | {info.licence} |")
        section = [f"## {name}", "", module_doc, ""]
        if info is not None:
            section += [f"Source: {info.source}. Citation: {info.citation}", ""]
        files = getattr(plugin, "files", ())
        for file in files:
            origin = file.url or f"no download: {file.obtain}"
            where = "embedded" if file.embedded else origin
            section.append(f"- `{file.name}`: sha256 `{file.sha256}`; {where}")
        sections.append("\n".join(section).rstrip() + "\n")
    return "\n".join(lines) + "\n\n" + "\n".join(sections)


def _future(plugin: type) -> str:
    return "synthetic drift" if "future" in (plugin.load.__doc__ or "") else ""


if __name__ == "__main__":
    sys.stdout.write(catalogue_markdown())
