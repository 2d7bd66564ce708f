"""The report folder of a run: Markdown and LaTeX tables, figures, paired tests, and an index.

:func:`write_report` turns a results frame (one run, or several merged with
:func:`recourse_bench.store.merge_results`) into a folder::

    index.html               the whole report as one static page (sortable, filterable tables,
                             every figure, rankings, tests, provenance; reports.html)
    index.md                 every table and figure below, one sentence each, and the row counts
    report.md                the invalidation table (and the time table) for the terminal
    tables/<metric>.tex      booktabs tables, methods as rows (``tex``)
    tables/<metric>.md       the same tables in Markdown (``md``)
    tables/main.tex|md       the config's ``table:`` metrics side by side per dataset, methods
                             as rows (the layout of a paper's main table; only with ``table:``)
    figures/<name>.pdf|png   the four figures (``pdf``, ``png``)
    figures/cd-<metric>.pdf|png  critical-difference diagram of the methods' average ranks
    stats/paired-tests.csv   Wilcoxon signed-rank tests between methods, Holm-corrected
    stats/ranks.csv          average rank of every method per metric over the cells, with the
                             Friedman test and Nemenyi's critical difference (reports.ranks)
    stats/nemenyi.csv        Nemenyi's p-value of every pair of methods per metric
    tables/compatibility.csv which method ran on which dataset and model, or why not (and .md)

Rows that are not ``ok`` (skipped, error, timeout) are never dropped silently: ``index.md``
counts them per method and reason, and the tables mark the cells they affect.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from .data import ReportData, as_report_data
from .html import Page, write_html
from .latex import (
    MAIN_TABLE,
    PaperTable,
    main_table,
    paper_tables,
    split_table,
    to_latex,
    to_markdown_table,
)
from .ranks import ALPHA as RANK_ALPHA
from .ranks import Ranking, pairwise_table, rankings, ranks_table
from .stats import paired_tests
from .tables import compatibility_matrix, markdown_report, to_markdown

FORMATS = ("md", "tex", "pdf", "png")
INDEX_FILE = "index.md"
PAGE_FILE = "index.html"
REPORT_FILE = "report.md"
STATS_FILE = "paired-tests.csv"
RANKS_FILE = "ranks.csv"
NEMENYI_FILE = "nemenyi.csv"
COMPATIBILITY = "compatibility"
REPORT_ENTRIES = (PAGE_FILE, INDEX_FILE, REPORT_FILE, "tables", "figures", "stats")
"""What a report consists of in its folder: replaced together, never piecemeal."""
ALPHA = 0.05
SHOWN_TEST_COLUMNS = [
    *("dataset", "model", "shift", "metric", "method_a", "method_b"),
    *("n_pairs", "median_diff", "p_holm", "better"),
]


def check_formats(formats: Iterable[str]) -> tuple[str, ...]:
    """The formats asked for, in a fixed order; a ValueError names an unknown one."""
    wanted = tuple(dict.fromkeys(f.strip().lower() for f in formats if f.strip()))
    unknown = [f for f in wanted if f not in FORMATS]
    if unknown or not wanted:
        raise ValueError(
            f"unknown report format(s) {', '.join(unknown) or '(none)'}; "
            f"choose from {','.join(FORMATS)}"
        )
    return tuple(f for f in FORMATS if f in wanted)


def status_counts(results: pd.DataFrame) -> pd.DataFrame:
    """Rows that are not ``ok``, counted per method, status and reason (for the index)."""
    bad = results[results["status"] != "ok"]
    columns = ["method", "status", "rows", "seeds", "reason"]
    if bad.empty:
        return pd.DataFrame(columns=columns)
    grouped = bad.groupby(["method_label", "status", "reason"], dropna=False, sort=True)
    counts = grouped.agg(rows=("status", "size"), seeds=("seed", "nunique")).reset_index()
    counts = counts.rename(columns={"method_label": "method"})
    counts["reason"] = counts["reason"].fillna("").map(_short)
    return counts[columns]


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def write_report(
    data: ReportData | pd.DataFrame,
    out_dir: str | Path,
    *,
    formats: Sequence[str] = FORMATS,
    sources: Sequence[str] = (),
    duplicates: int = 0,
) -> Path:
    """Write the report folder of ``data`` into ``out_dir`` and return the index's path.

    Parameters
    ----------
    data : ReportData or pandas.DataFrame
        The report's aggregated data (:meth:`ReportData.build`, with the title, the timings and
        the run metadata's metric records), or a results frame to aggregate with defaults.
    out_dir : str or Path
        The report folder (created if needed). The report is written into a temporary folder
        inside it and swapped in: every old report entry (:data:`REPORT_ENTRIES`) is replaced
        as a whole, so no table or figure of an earlier report survives.
    formats : sequence of str
        Any of ``md``, ``tex``, ``pdf``, ``png``; ``index.md`` and ``report.md`` are always
        written, the Markdown tables only with ``md``.
    sources : sequence of str
        The results files merged into the data (listed in the index).
    duplicates : int
        Measurements that appeared in more than one source (the later one was kept).
    """
    data = as_report_data(data)
    formats = check_formats(formats)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".report-", dir=out))
    try:
        _write_files(data, staging, formats, sources, duplicates)
        _swap_in(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out / INDEX_FILE


def remove_report(out_dir: str | Path) -> None:
    """Remove a folder's report files (:data:`REPORT_ENTRIES`), leaving everything else."""
    for name in REPORT_ENTRIES:
        _remove(Path(out_dir) / name)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _swap_in(staging: Path, out: Path) -> None:
    """Replace the report entries of ``out`` by those written in ``staging``, as a whole.

    Each old entry is first moved aside (a rename), then the new one renamed into place, so no
    file of an old report survives beside a new one, and a report that failed to be written
    leaves the old one untouched.
    """
    aside = staging / ".replaced"
    aside.mkdir()
    for name in REPORT_ENTRIES:
        old, new = out / name, staging / name
        if old.exists() or old.is_symlink():
            os.replace(old, aside / name)
        if new.exists():
            os.replace(new, old)


def _write_files(
    data: ReportData,
    out: Path,
    formats: Sequence[str],
    sources: Sequence[str],
    duplicates: int,
) -> None:
    """Write every report file into ``out`` (a fresh staging folder)."""
    from .figures import FIGURES, write_cd_diagrams, write_figures  # matplotlib: only here

    (out / REPORT_FILE).write_text(markdown_report(data), encoding="utf-8")
    tables = paper_tables(data)
    main, why_not = _main(data)
    if main is not None:
        if "tex" in formats:
            _write(out / "tables" / f"{MAIN_TABLE}.tex", _main_latex(main))
        if "md" in formats:
            _write(out / "tables" / f"{MAIN_TABLE}.md", _main_markdown(main))
    for metric, table in tables.items():
        if "tex" in formats:
            _write(out / "tables" / f"{metric}.tex", to_latex(table))
        if "md" in formats:
            _write(out / "tables" / f"{metric}.md", to_markdown_table(table))
    image_formats = [f for f in formats if f in ("pdf", "png")]
    figures = write_figures(data, out / "figures", image_formats) if image_formats else {}
    captions = {name: spec.caption for name, spec in FIGURES.items()}
    tests = paired_tests(data.results, alpha=ALPHA, directions=data.higher_is_better)
    _write(out / "stats" / STATS_FILE, tests.to_csv(index=False))
    found = rankings(data)
    _write(out / "stats" / RANKS_FILE, ranks_table(found).to_csv(index=False))
    _write(out / "stats" / NEMENYI_FILE, pairwise_table(found).to_csv(index=False))
    diagrams = (
        write_cd_diagrams(found, data.styles, out / "figures", image_formats)
        if image_formats
        else {}
    )
    compatibility = compatibility_matrix(data.results)
    _write(out / "tables" / f"{COMPATIBILITY}.csv", compatibility.to_csv(index=False))
    if "md" in formats:
        _write(out / "tables" / f"{COMPATIBILITY}.md", to_markdown(compatibility))
    index = _index(data, tables, figures, captions, tests, out, sources, duplicates)
    index += _ranks_section(data, found, diagrams, out) + _compatibility_section(compatibility)
    page = Page(
        data, figures, captions, found, diagrams, tests, compatibility,
        status_counts(data.results), sources, data.provenance,
    )  # fmt: skip
    write_html(page, out, PAGE_FILE)
    title, rest = index.split("\n", 1)
    _write(out / INDEX_FILE, f"{title}\n{_main_section(main, why_not)}{rest}")


def _main(data: ReportData) -> tuple[PaperTable | None, str]:
    """The main table of the config's ``table:`` metrics, or None and why there is none."""
    if not data.table:
        return None, ""
    try:
        return main_table(data, data.table), ""
    except ValueError as exc:
        return None, str(exc)


def _main_latex(main: PaperTable) -> str:
    """One ``table*`` per model (as papers print one table per model class), else one."""
    parts = split_table(main, "model")
    return "\n".join(
        to_latex(part, label=f"tab:{MAIN_TABLE}-{model}" if model else None, split=False)
        for model, part in parts.items()
    )


def _main_markdown(main: PaperTable) -> str:
    return "\n".join(to_markdown_table(part) for part in split_table(main, "model").values())


def _main_section(main: PaperTable | None, why_not: str) -> str:
    """The index's first section: the main table (empty when the config asks for none)."""
    if main is None:
        return f"\nNo main table: {why_not}.\n" if why_not else ""
    return f"\n## Main table\n\n{_main_markdown(main)}\n"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _index(
    data: ReportData,
    tables: dict[str, PaperTable],
    figures: dict[str, list[Path]],
    captions: dict[str, str],
    tests: pd.DataFrame,
    out: Path,
    sources: Sequence[str],
    duplicates: int,
) -> str:
    results = data.results
    parts = [f"# {data.title}\n", _overview(results, sources, duplicates)]
    parts.append("## Figures\n")
    if not figures:
        parts.append("No figures (no update metric to plot, or no image format asked for).\n")
    for name, paths in figures.items():
        shown = next((p for p in paths if p.suffix == ".png"), paths[0])
        links = ", ".join(f"[{p.suffix[1:]}]({p.relative_to(out).as_posix()})" for p in paths)
        parts.append(f"### {name}\n\n{captions.get(name, '')} ({links})\n")
        if shown.suffix == ".png":
            parts.append(f"![{name}]({shown.relative_to(out).as_posix()})\n")
    parts.append("## Tables\n")
    parts.append(
        "Each cell: mean over seeds +- half the width of the 95 % percentile-bootstrap "
        "interval (update metrics are first averaged over the updated models of each seed); "
        "bold marks the best value of each column. LaTeX versions (booktabs) are in `tables/`.\n"
    )
    for metric, table in tables.items():
        direction = data.info(metric).direction
        parts.append(f"### {metric} ({direction})\n\n{to_markdown_table(table)}\n")
    parts.append(_stats_section(tests))
    return "\n".join(parts)


def _overview(results: pd.DataFrame, sources: Sequence[str], duplicates: int) -> str:
    counts = results["status"].value_counts()
    summary = ", ".join(
        f"{int(counts.get(s, 0))} {s}" for s in ("ok", "skipped", "error", "timeout")
    )
    lines = [
        f"{len(results)} result rows ({summary}); "
        f"{results['dataset_label'].nunique()} dataset(s), {results['model_label'].nunique()} "
        f"model(s), {results['method_label'].nunique()} method(s), "
        f"{results['shift_label'].dropna().nunique()} shift(s), {results['seed'].nunique()} "
        "seed(s). The full tables for the terminal are in [report.md](report.md).\n"
    ]
    if len(sources) > 1:
        lines.append("Merged from: " + ", ".join(f"`{s}`" for s in sources) + ".\n")
        if duplicates:
            lines.append(
                f"{duplicates} measurement(s) appeared in more than one file; the later file's "
                "value was kept.\n"
            )
    bad = status_counts(results)
    if not bad.empty:
        lines.append(
            "Rows that are not `ok` are left out of every mean below and counted here (the "
            "tables mark the cells they affect):\n\n" + to_markdown(bad)
        )
    return "\n".join(lines)


def _stats_section(tests: pd.DataFrame) -> str:
    text = [
        "## Paired tests\n",
        "Wilcoxon signed-rank tests between every two methods on the same factuals and models "
        "(units: seeds for static metrics; seeds x updated models for update metrics), "
        f"Holm-corrected over all {len(tests)} tests; `better` is named where the corrected "
        f"p-value is below {ALPHA}. The updated models of one seed share its base model and "
        "factuals, yet count as separate units here: with few seeds, read these tests as a "
        "guide, and the tables' intervals (over seeds) as the evidence. All tests, with notes "
        f"on the ones that could not be run, are in [stats/{STATS_FILE}](stats/{STATS_FILE}).\n",
    ]
    significant = tests[tests["better"] != ""]
    if significant.empty:
        text.append("No difference is significant at this level.\n")
        return "\n".join(text)
    shown = significant[SHOWN_TEST_COLUMNS].copy()
    shown["shift"] = shown["shift"].fillna("")
    shown["median_diff"] = shown["median_diff"].map(lambda v: f"{v:.3g}")
    shown["p_holm"] = shown["p_holm"].map(lambda v: f"{v:.2g}")
    text.append(to_markdown(shown))
    return "\n".join(text)


def _ranks_section(
    data: ReportData, found: dict[str, Ranking], diagrams: dict[str, list[Path]], out: Path
) -> str:
    text = [
        "\n## Rankings\n",
        "Per metric, the methods ranked in every cell (dataset x model, x shift for metrics "
        "measured per shift) by their mean over seeds (1 is best), the Friedman test over the "
        f"cells and Nemenyi's critical difference at alpha = {RANK_ALPHA} (Demšar 2006): two "
        "methods whose average ranks differ by less than the CD are not significantly "
        "different (joined by a bar in the diagram). The tests need every method in every "
        "cell, so cells where one lacks a value are left out, and named here. The shifts of one "
        "dataset and model share its data, so such cells are not independent blocks: read the "
        "p-values and the CD as a guide. All ranks are in "
        f"[stats/{RANKS_FILE}](stats/{RANKS_FILE}), every pair's p-value in "
        f"[stats/{NEMENYI_FILE}](stats/{NEMENYI_FILE}).\n",
    ]
    if not found:
        text.append("No metric could be ranked (fewer than two methods with a value).\n")
    for metric, ranking in found.items():
        lines = [f"### {metric} ({data.info(metric).direction})\n", f"{ranking.sentence()}\n"]
        paths = diagrams.get(metric, [])
        if paths:
            links = ", ".join(f"[{p.suffix[1:]}]({p.relative_to(out).as_posix()})" for p in paths)
            lines.append(f"Critical-difference diagram ({links})\n")
            png = next((p for p in paths if p.suffix == ".png"), None)
            if png is not None:
                lines.append(f"![cd-{metric}]({png.relative_to(out).as_posix()})\n")
        ranks = ranking.mean_ranks.rename("mean rank").reset_index()
        ranks.columns = ["method", "mean rank"]
        ranks["mean rank"] = ranks["mean rank"].map(lambda v: f"{v:.2f}")
        lines.append(to_markdown(ranks))
        if ranking.methods_left_out:
            lines.append("Methods left out: " + "; ".join(ranking.methods_left_out) + ".\n")
        if ranking.incomplete_cells:
            lines.append("Cells left out: " + "; ".join(ranking.incomplete_cells) + ".\n")
        text.append("\n".join(lines))
    return "\n".join(text)


def _compatibility_section(table: pd.DataFrame) -> str:
    if table.empty:
        return ""
    return (
        "\n## Compatibility\n\nWhich method ran on which dataset and model, and the reason "
        f"where it did not (also in tables/{COMPATIBILITY}.csv):\n\n" + to_markdown(table)
    )
