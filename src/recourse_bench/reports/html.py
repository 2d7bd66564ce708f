"""``index.html``: the whole report as one static page that opens from disk.

No server and no network: the styles and the script are inline, the figures are the report's
PNG files beside the page (``figures/``), and nothing is fetched from anywhere else. The page
is plain HTML that reads without its script; the script (a few dozen lines, no library) only
makes every table sortable (click a header; again to reverse) and filterable (a menu per
dataset, model, method, shift and metric column, and a text box over all columns).

Sections: an overview (the run's counts, a method x shift heat map of the mean invalidation
rate in colour, and the cost-versus-invalidation front), the results table (every cell's mean
over seeds with its 95 % interval), every figure with its caption, the rankings (average
ranks, the Friedman test, critical-difference diagrams), the paired tests, the compatibility
matrix, the rows that are not ok with their reasons, and the provenance of each run (config,
versions, git revision, machine, times).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from .data import ReportData
from .ranks import Ranking

FILTERED = ("dataset", "model", "method", "shift", "metric", "status", "method_a", "method_b")
"""Columns that get a filter menu wherever a table has them."""
INVALIDATION = "invalidation-rate"
COST_FIGURE = "cost-vs-invalidation"

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d1d1f}
header{background:#17324d;color:#fff;padding:14px 24px}header h1{margin:0;font-size:22px}
nav{padding:6px 24px;background:#eef2f6;position:sticky;top:0;z-index:1}
nav a{margin-right:14px;color:#17324d}main{padding:0 24px 40px}
h2{border-bottom:1px solid #ccd;margin-top:32px}h3{margin-top:22px}
table{border-collapse:collapse;font-size:13px;margin:6px 0 14px}
th,td{border:1px solid #d5d9de;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f3f5f7;cursor:pointer;user-select:none;white-space:nowrap}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr[hidden]{display:none}.filters{margin:8px 0;display:flex;gap:8px;flex-wrap:wrap}
.filters select,.filters input{font:inherit;padding:2px 4px}.count{color:#555}
.wide{max-width:100%;overflow:auto}figure{margin:12px 0}img{max-width:100%;height:auto}
figcaption{color:#444;max-width:60em}figure img{max-width:min(100%,1000px)}
pre{background:#f6f8fa;padding:8px;overflow:auto}
.heat td.num{color:#000}.note{color:#555;max-width:60em}
"""

SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var head = table.tHead.rows[0], body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var bar = document.createElement("div"), menus = [];
  bar.className = "filters";
  Array.prototype.forEach.call(head.cells, function (th, i) {
    th.tabIndex = 0;
    th.addEventListener("click", function () { sortBy(i); });
    th.addEventListener("keydown", function (e) { if (e.key === "Enter") sortBy(i); });
    if (th.dataset.filter === undefined) return;
    var values = Array.from(new Set(rows.map(function (r) { return r.cells[i].textContent; })));
    if (values.length < 2) return;
    var menu = document.createElement("select");
    menu.setAttribute("aria-label", "filter " + th.textContent);
    menu.dataset.column = th.textContent;
    menu.add(new Option("every " + th.textContent, ""));
    values.sort().forEach(function (v) { menu.add(new Option(v, v)); });
    menu.addEventListener("change", apply);
    menus.push([i, menu]);
    bar.appendChild(menu);
  });
  var search = document.createElement("input");
  search.type = "search"; search.placeholder = "filter rows";
  search.setAttribute("aria-label", "filter rows");
  search.addEventListener("input", apply);
  var count = document.createElement("span");
  count.className = "count";
  bar.appendChild(search); bar.appendChild(count);
  table.parentNode.insertBefore(bar, table);
  function apply() {
    var text = search.value.toLowerCase(), shown = 0;
    rows.forEach(function (r) {
      var ok = menus.every(function (m) {
        return !m[1].value || r.cells[m[0]].textContent === m[1].value;
      }) && (!text || r.textContent.toLowerCase().indexOf(text) >= 0);
      r.hidden = !ok;
      if (ok) shown += 1;
    });
    count.textContent = shown + " of " + rows.length + " rows";
  }
  function key(r, i) {
    var cell = r.cells[i], raw = cell.dataset.sort;
    if (raw === undefined) raw = cell.textContent;
    var n = Number(raw);
    return raw !== "" && !isNaN(n) ? n : raw;
  }
  function sortBy(i) {
    var th = head.cells[i], up = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(head.cells, function (c) { c.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", up ? "ascending" : "descending");
    rows.sort(function (a, b) {
      var x = key(a, i), y = key(b, i);
      var c = typeof x === "number" && typeof y === "number" ? x - y
        : String(x).localeCompare(String(y));
      return up ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  apply();
});
"""


@dataclass
class Page:
    """What the page shows, as the report computed it (see :func:`write_html`)."""

    data: ReportData
    figures: Mapping[str, Sequence[Path]]
    captions: Mapping[str, str]
    rankings: Mapping[str, Ranking]
    diagrams: Mapping[str, Sequence[Path]]
    tests: pd.DataFrame
    compatibility: pd.DataFrame
    not_ok: pd.DataFrame
    sources: Sequence[str] = ()
    provenance: Sequence[Mapping[str, Any]] = field(default_factory=list)


def write_html(page: Page, out: Path, name: str = "index.html") -> Path:
    """Write ``out/name`` (the figures' paths are made relative to ``out``)."""
    sections = [
        ("overview", "Overview", _overview(page, out)),
        ("results", "Results", _results(page.data)),
        ("figures", "Figures", _figures(page, out)),
        ("rankings", "Rankings", _rankings(page, out)),
        ("tests", "Paired tests", _tests(page.tests)),
        ("compatibility", "Compatibility", _table(page.compatibility, "compatibility")),
        ("not-ok", "Rows not ok", _not_ok(page.not_ok)),
        ("provenance", "Provenance", _provenance(page)),
    ]
    nav = "".join(f'<a href="#{key}">{title}</a>' for key, title, _ in sections)
    body = "".join(
        f'<section id="{key}"><h2>{title}</h2>{content}</section>'
        for key, title, content in sections
    )
    title = html.escape(page.data.title)
    text = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{STYLE}</style></head><body><header><h1>{title}</h1></header><nav>{nav}</nav>"
        f"<main>{body}</main><script>{SCRIPT}</script></body></html>\n"
    )
    path = out / name
    path.write_text(text, encoding="utf-8")
    return path


# -- pieces ----------------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _is_missing(value: Any) -> bool:
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def _sort_key(value: float) -> str:
    """A number as JavaScript's ``Number()`` reads it (``inf`` is ``Infinity`` there)."""
    if math.isfinite(value):
        return repr(float(value))
    return "Infinity" if value > 0 else "-Infinity"


def _cell(value: Any) -> str:
    if _is_missing(value):
        return "<td></td>"
    if isinstance(value, bool):
        return f"<td>{value}</td>"
    if isinstance(value, int | float):
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        return f'<td class="num" data-sort="{_sort_key(value)}">{shown}</td>'
    return f"<td>{_e(value)}</td>"


def _table(frame: pd.DataFrame, key: str, note: str = "") -> str:
    """A sortable, filterable table of ``frame`` (headers named as its columns)."""
    if frame is None or frame.empty:
        return f'<p class="note">{_e(note) or "Nothing to show."}</p>'
    heads = "".join(
        f"<th{' data-filter' if str(c) in FILTERED else ''}>{_e(c)}</th>" for c in frame.columns
    )
    rows = "".join(
        "<tr>" + "".join(_cell(v) for v in record) + "</tr>"
        for record in frame.itertuples(index=False, name=None)
    )
    prefix = f'<p class="note">{_e(note)}</p>' if note else ""
    return (
        f'{prefix}<div class="wide"><table class="sortable" id="table-{_e(key)}">'
        f"<thead><tr>{heads}</tr></thead><tbody>{rows}</tbody></table></div>"
    )


def _address(path: Path, out: Path) -> str:
    """``path`` relative to the page, URL-quoted and HTML-escaped for an attribute."""
    return _e(quote(path.relative_to(out).as_posix()))


def _image(path: Path, out: Path, alt: str) -> str:
    return f'<img src="{_address(path, out)}" alt="{_e(alt)}">'


def _png(paths: Sequence[Path]) -> Path | None:
    return next((p for p in paths if p.suffix == ".png"), None)


def _overview(page: Page, out: Path) -> str:
    results = page.data.results
    counts = results["status"].value_counts()
    statuses = ("ok", "skipped", "error", "timeout")
    summary = ", ".join(f"{int(counts.get(s, 0))} {s}" for s in statuses)
    parts = [
        f"<p>{len(results)} result rows ({summary}); {results['dataset_label'].nunique()} "
        f"dataset(s), {results['model_label'].nunique()} model(s), "
        f"{results['method_label'].nunique()} method(s), "
        f"{results['shift_label'].dropna().nunique()} shift(s), {results['seed'].nunique()} "
        "seed(s).</p>"
    ]
    if len(page.sources) > 1:
        parts.append("<p>Merged from: " + ", ".join(f"<code>{_e(s)}</code>" for s in page.sources))
    parts.append(_heat(page.data))
    cost = _png(page.figures.get(COST_FIGURE, ()))
    if cost is not None:
        parts.append(
            f"<figure>{_image(cost, out, COST_FIGURE)}<figcaption>"
            f"{_e(page.captions.get(COST_FIGURE, ''))}</figcaption></figure>"
        )
    return "".join(parts)


def _heat(data: ReportData) -> str:
    """Mean invalidation rate per method (rows) and shift (columns), coloured 0 (white) to 1."""
    summary = data.summary[data.summary["metric"] == INVALIDATION]
    if summary.empty:
        return '<p class="note">No invalidation rate was measured.</p>'
    matrix = summary.pivot_table(
        index="method_label", columns="shift_label", values="mean", aggfunc="mean"
    )
    matrix = matrix.reindex(
        index=data.styles.order(matrix.index),
        columns=[s for s in data.shift_order["shift_label"] if s in matrix.columns],
    )
    heads = "".join(f"<th>{_e(c)}</th>" for c in matrix.columns)
    rows = []
    for method, values in matrix.iterrows():
        cells = []
        for value in values:
            if _is_missing(value):
                cells.append('<td class="num">n/a</td>')
                continue
            shade = round(255 - 175 * min(max(float(value), 0.0), 1.0))
            cells.append(
                f'<td class="num" data-sort="{_sort_key(float(value))}" '
                f'style="background:rgb(255,{shade},{shade})">{float(value):.3f}</td>'
            )
        rows.append(f"<tr><td>{_e(method)}</td>{''.join(cells)}</tr>")
    return (
        "<h3>Invalidation rate, method x shift</h3><p class='note'>Mean over datasets, models "
        "and seeds of each method's invalidation rate under each shift (white 0, red 1); per cell "
        "values with intervals are in the results table.</p>"
        f'<div class="wide"><table class="sortable heat" id="table-heat"><thead><tr>'
        f"<th>method</th>{heads}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _results(data: ReportData) -> str:
    summary = data.summary.rename(
        columns={
            "dataset_label": "dataset",
            "model_label": "model",
            "method_label": "method",
            "shift_label": "shift",
        }
    )
    summary = summary.assign(shift=summary["shift"].fillna("(static)"))
    columns = ["dataset", "model", "method", "shift", "metric", "mean", "low", "high", "n_seeds"]
    note = (
        "Every cell: the mean over seeds and its 95 % percentile-bootstrap interval (low, high); "
        "update metrics are first averaged over the updated models of a seed. Click a header to "
        "sort; choose in the menus to filter."
    )
    return _table(summary[columns], "results", note)


def _figures(page: Page, out: Path) -> str:
    if not page.figures:
        return '<p class="note">No figures (no update metric, or no PNG format asked for).</p>'
    parts = []
    for name, paths in page.figures.items():
        png = _png(paths)
        links = ", ".join(f'<a href="{_address(p, out)}">{p.suffix[1:]}</a>' for p in paths)
        shown = _image(png, out, name) if png is not None else ""
        parts.append(
            f"<figure id='figure-{_e(name)}'><h3>{_e(name)}</h3>{shown}<figcaption>"
            f"{_e(page.captions.get(name, ''))} ({links})</figcaption></figure>"
        )
    return "".join(parts)


def _rankings(page: Page, out: Path) -> str:
    if not page.rankings:
        return '<p class="note">No metric could be ranked (fewer than two methods).</p>'
    parts = [
        "<p class='note'>Methods ranked in every cell (dataset x model, x shift where measured "
        "per shift) by their mean over seeds, 1 best; the Friedman test over the cells and "
        "Nemenyi's critical difference (CD, alpha 0.05): methods joined by a bar in a diagram "
        "are not significantly different. Cells and methods left out are named. The shifts of "
        "one dataset and model share its data, so such cells are not independent blocks: read "
        "the p-values and the CD as a guide.</p>"
    ]
    for metric, ranking in page.rankings.items():
        ranks = ranking.mean_ranks.rename("mean rank").rename_axis("method").reset_index()
        parts.append(
            f"<h3>{_e(metric)} ({_e(page.data.info(metric).direction)})</h3>"
            f"<p>{_e(ranking.sentence())}</p>"
        )
        png = _png(page.diagrams.get(metric, ()))
        if png is not None:
            parts.append(f"<figure>{_image(png, out, f'cd-{metric}')}</figure>")
        parts.append(_table(ranks, f"ranks-{metric}"))
        for what, items in (
            ("Methods left out", ranking.methods_left_out),
            ("Cells left out", ranking.incomplete_cells),
        ):
            if items:
                parts.append(f"<p class='note'>{what}: {_e('; '.join(items))}.</p>")
    return "".join(parts)


def _tests(tests: pd.DataFrame) -> str:
    note = (
        "Wilcoxon signed-rank tests between every two methods on the same factuals and models, "
        "Holm-corrected; 'better' names the better method where the corrected p-value is below "
        "0.05."
    )
    return _table(tests, "tests", note)


def _not_ok(counts: pd.DataFrame) -> str:
    return _table(counts, "not-ok", "" if not counts.empty else "Every row is ok.")


def _provenance(page: Page) -> str:
    if not page.provenance:
        return '<p class="note">No run metadata was given to the report.</p>'
    parts = []
    for record in page.provenance:
        name = record.get("config_name", "run")
        facts = {
            "git revision": record.get("git_revision"),
            "wall seconds": record.get("wall_seconds"),
            "backend": record.get("backend"),
            "workers": record.get("n_jobs"),
            "machine": record.get("machine"),
            "versions": record.get("versions"),
            "stages": record.get("stages"),
            "invocation": record.get("invocation"),
            "merged from": record.get("merged_from"),
        }
        rows = "".join(
            f"<tr><th>{_e(k)}</th><td><code>{_e(_compact(v))}</code></td></tr>"
            for k, v in facts.items()
            if v not in (None, {}, [])
        )
        config = json.dumps(record.get("config") or {}, indent=2, default=str)
        parts.append(
            f"<h3>{_e(name)}</h3><table>{rows}</table><details><summary>config</summary>"
            f"<pre>{_e(config)}</pre></details>"
        )
    return "".join(parts)


def _compact(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_compact(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_compact(v) for v in value)
    return str(value)
