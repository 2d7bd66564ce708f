"""Paper tables: numbers against an independent computation, best marks, escaping, LaTeX."""

from __future__ import annotations

import re
import shutil
import subprocess
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from recourse_bench.reports.data import summarise
from recourse_bench.reports.latex import (
    escape_latex,
    paper_table,
    paper_tables,
    to_latex,
    to_markdown_table,
)
from recourse_bench.store import to_frame

from .results_frames import make_results, row

METHODS = ("wachter", "roar", "genre")


def _expected(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean over draws within seed, then mean and percentile-bootstrap half-width over seeds."""
    ok = results[(results["status"] == "ok") & (results["metric"] == metric)]
    keys = ["dataset_label", "model_label", "method_label", "shift_label"]
    per_seed = ok.groupby([*keys, "seed"], dropna=False)["value"].mean().reset_index()
    records = []
    for key, group in per_seed.groupby(keys, dropna=False):
        values = group["value"].to_numpy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ci = stats.bootstrap(
                (values,),
                np.mean,
                confidence_level=0.95,
                n_resamples=2000,
                method="percentile",
                rng=np.random.default_rng(0),
            ).confidence_interval
        records.append((*key, values.mean(), (ci.high - ci.low) / 2, len(values)))
    return pd.DataFrame(records, columns=[*keys, "mean", "half", "n"])


def _two_models(results: pd.DataFrame) -> pd.DataFrame:
    other = results.copy()
    other["model"] = other["model_label"] = "logreg"
    other["value"] = other["value"] + 0.1
    return to_frame(pd.concat([results, other]).to_dict("records"))


# ------------------------------------------------------------------------------------ numbers
@pytest.mark.parametrize("metric", ["invalidation-rate", "cost-l1"])
def test_cells_match_an_independent_computation(metric):
    results = make_results({}, seeds=4, draws=3, severities=(0.1, 0.3), noise=0.05)
    table = paper_table(results, metric)
    expected = _expected(results, metric)
    shifted = metric == "invalidation-rate"
    assert table.columns == (("dataset", "shift") if shifted else ("dataset",))
    assert len(table.cells) == len(expected) == len(table.keys) * len(table.methods)
    for record in expected.itertuples(index=False):
        key = (record.dataset_label, record.shift_label) if shifted else (record.dataset_label,)
        cell = table.cell(record.method_label, *key)
        assert cell["mean"] == pytest.approx(record.mean, abs=1e-12)
        assert cell["half_width"] == pytest.approx(record.half, abs=1e-12)
        assert cell["n_seeds"] == 4
        assert cell["text"] == f"{record.mean:.3f} ± {record.half:.3f}"


def test_interval_agrees_with_summarise_and_sweeps_are_ordered_by_severity():
    results = make_results({}, seeds=3, draws=2, severities=(10.0, 2.0, 0.5))
    table = paper_table(results, "validity-after-update", digits=4)
    assert [k[1] for k in table.keys[:3]] == [
        f"retrain-seed(severity={s})" for s in (0.5, 2.0, 10.0)
    ]
    summary = summarise(results)
    summary = summary[summary["metric"] == "validity-after-update"]
    for record in summary.itertuples(index=False):
        cell = table.cell(record.method_label, record.dataset_label, record.shift_label)
        assert cell["mean"] == record.mean
        assert (cell["low"], cell["high"]) == (record.low, record.high)


def test_a_single_seed_prints_a_plain_mean():
    results = make_results({("german", "roar", "validity"): 0.75}, seeds=1, noise=0.0)
    table = paper_table(results, "validity")
    assert table.cell("roar", "german")["text"] == "0.750"
    assert "±" not in to_markdown_table(table).split("\n\n", 1)[1]


def test_static_metric_gets_a_column_per_dataset_and_model():
    results = _two_models(make_results({}, seeds=2, draws=2))
    static = paper_table(results, "coverage")
    assert static.columns == ("dataset", "model")
    assert len(static.keys) == 4
    update = paper_table(results, "invalidation-rate")
    assert update.columns == ("dataset", "model")  # a single shift: named in the caption
    assert "Shift: retrain-seed" in update.caption
    with pytest.raises(ValueError, match="model"):
        paper_table(results, "coverage", columns=["dataset"])


def test_paper_tables_covers_every_metric():
    results = make_results({}, seeds=2, draws=2)
    tables = paper_tables(results)
    assert set(tables) == set(results["metric"].dropna())
    assert next(iter(tables)) == "invalidation-rate"


# --------------------------------------------------------------------------------------- best
def test_best_is_the_lowest_for_cost_with_ties_on_printed_values():
    values = {
        ("german", "wachter", "cost-l1"): 0.3001,
        ("german", "roar", "cost-l1"): 0.8,
        ("german", "genre", "cost-l1"): 0.3004,  # prints as 0.300 too: a tie
        ("adult", "roar", "cost-l1"): 0.2,
    }
    table = paper_table(make_results(values, noise=0.0), "cost-l1")
    best = {(c["method"], c["dataset"]) for _, c in table.cells.iterrows() if c["best"]}
    assert best == {("wachter", "german"), ("genre", "german"), ("roar", "adult")}
    text = to_latex(table)
    assert text.count(r"\textbf{") == 3
    assert r"\textbf{0.300 $\pm$ 0.000}" in text
    markdown = to_markdown_table(table)
    assert markdown.count("**") == 6
    assert "| roar | **0.200 ± 0.000** | 0.800 ± 0.000 |" in markdown


def test_best_is_the_highest_for_validity_and_the_lowest_for_invalidation():
    values = {
        ("german", "roar", "validity"): 0.9,
        ("german", "roar", "invalidation-rate"): 0.6,
        ("german", "genre", "invalidation-rate"): 0.1,
    }
    results = make_results(values, noise=0.01)
    validity = paper_table(results, "validity")
    best_german = validity.cells[(validity.cells["dataset"] == "german") & validity.cells["best"]]
    assert best_german["method"].tolist() == ["roar"]
    invalidation = paper_table(results, "invalidation-rate")
    cells = invalidation.cells
    assert cells[(cells["dataset"] == "german") & cells["best"]]["method"].tolist() == ["genre"]
    assert cells[(cells["dataset"] == "german") & (cells["method"] == "roar")]["best"].sum() == 0


# -------------------------------------------------------------------------------- missing data
def _with_problems() -> pd.DataFrame:
    results = make_results({}, seeds=3, draws=2)
    keep = ~((results["dataset"] == "adult") & (results["method"] == "genre"))
    keep &= ~((results["dataset"] == "german") & (results["method"] == "roar")
              & (results["seed"] == 2))  # fmt: skip
    rows = results[keep].to_dict("records")
    why = "no source agrees on the immutable features"
    rows += [row("adult", "mlp", "genre", s, None, np.nan, shift="retrain-seed",
                 status="skipped", reason=why) for s in range(3)]  # fmt: skip
    rows.append(row("german", "mlp", "roar", 2, None, np.nan, shift="retrain-seed",
                    status="error", reason="ValueError: boom"))  # fmt: skip
    return to_frame(rows)


def test_skipped_and_failed_cells_show_a_dash_and_are_counted():
    results = _with_problems()
    for metric in ("invalidation-rate", "validity"):
        table = paper_table(results, metric)
        key = ("adult", "retrain-seed") if metric == "invalidation-rate" else ("adult",)
        key = key[: len(table.columns)]
        missing = table.cell("genre", *key)
        assert missing["text"] == "--"
        assert missing["marker"]
        partial = table.cell("roar", "german")  # two seeds of three are left
        assert partial["n_seeds"] == 2 and partial["text"] != "--" and partial["marker"]
        notes = dict(table.notes)
        assert "skipped in 1 cell(s), 3 seed run(s) in all" in notes[missing["marker"]]
        assert "ValueError: boom" in notes[partial["marker"]]
        assert sum(bool(m) for m in table.cells["marker"]) == 2
        markdown = to_markdown_table(table)
        assert "-- (" in markdown and "no source agrees" in markdown
        latex = to_latex(table)
        assert r"--\textsuperscript{" in latex and "seed run(s)" in latex
        _check_structure(latex)


def test_a_failed_shift_does_not_mark_static_metrics():
    results = make_results({}, methods=("wachter", "roar"), seeds=2, draws=2)
    rows = results[~((results["method"] == "roar") & results["shift"].notna())].to_dict("records")
    rows += [row("german", "mlp", "roar", s, None, np.nan, shift="retrain-seed", status="error",
                 reason="RuntimeError: updates failed") for s in range(2)]  # fmt: skip
    results = to_frame(rows)
    assert not paper_table(results, "validity").cells["marker"].any()
    update = paper_table(results, "invalidation-rate")
    assert update.cell("roar", "german")["text"] == "--"
    assert update.cell("roar", "adult")["text"] == "--"  # no rows at all
    notes = [text for _, text in update.notes]
    assert any("updates failed" in t for t in notes) and any("no results" in t for t in notes)


# ----------------------------------------------------------------------------------- escaping
def test_escape_latex():
    assert escape_latex("a_b 50% & #1 {x}") == r"a\_b 50\% \& \#1 \{x\}"
    assert escape_latex("x~y^z\\") == r"x\textasciitilde{}y\textasciicircum{}z\textbackslash{}"


def test_labels_are_escaped_in_the_table():
    results = make_results({}, methods=("my_method", "r&d"), datasets=("set#1",), seeds=2)
    results["dataset_label"] = "set#1 {50%}"
    latex = to_latex(paper_table(results, "invalidation-rate"), caption="Cost_{l1} & 5%")
    assert r"my\_method &" in latex and r"r\&d &" in latex
    assert r"set\#1 \{50\%\}" in latex
    assert r"\caption{Cost\_\{l1\} \& 5\%}" in latex
    _check_structure(latex)


# ----------------------------------------------------------------------------- LaTeX structure
def _strip_escapes(text: str) -> str:
    return re.sub(r"\\[{}&%#_$]", "", text)


def _check_structure(latex: str) -> None:
    """Balanced braces, booktabs rules, as many cells per row as the column spec says."""
    plain = _strip_escapes(latex)
    depth = 0
    for char in plain:
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0
    assert depth == 0
    env = "table*" if latex.startswith(r"\begin{table*}") else "table"
    assert latex.startswith(rf"\begin{{{env}}}") and latex.rstrip().endswith(rf"\end{{{env}}}")
    for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
        assert latex.count(rule) == 1
    spec = re.search(r"\\begin\{tabular\}\{([lcr]+)\}", latex)
    assert spec is not None
    n_columns = len(spec.group(1))
    body = latex[latex.index(r"\toprule") : latex.index(r"\bottomrule")]
    rows = [line for line in body.splitlines() if line.rstrip().endswith(r"\\")]
    assert len(rows) >= 2
    for line in rows:
        cells = _strip_escapes(line).count("&") + 1
        spans = [int(k) for k in re.findall(r"\\multicolumn\{(\d+)\}", line)]
        assert cells - len(spans) + sum(spans) == n_columns, line
    for first, last in re.findall(r"\\cmidrule\(lr\)\{(\d+)-(\d+)\}", latex):
        assert 2 <= int(first) <= int(last) <= n_columns
    assert latex.index(r"\toprule") < latex.index(r"\midrule") < latex.index(r"\bottomrule")


def _engine() -> list[str] | None:
    for name in ("pdflatex", "lualatex", "tectonic"):
        path = shutil.which(name)
        if path:
            if name == "tectonic":
                return [path]
            return [path, "-interaction=nonstopmode", "-halt-on-error"]
    return None


def test_latex_structure_and_compilation(tmp_path):
    results = _two_models(make_results({}, seeds=3, draws=2, severities=(0.1, 0.5)))
    table = paper_table(results, "invalidation-rate")
    assert table.columns == ("dataset", "model", "shift")
    latex = to_latex(table, label="tab:inv")
    _check_structure(latex)
    assert latex.count(r"\multicolumn{4}{c}") == 2  # datasets over 2 models x 2 shifts
    assert latex.count(r"\multicolumn{2}{c}") == 4  # models over 2 shifts
    assert r"\cmidrule(lr){2-5} \cmidrule(lr){6-9}" in latex
    assert r"\label{tab:inv}" in latex
    engine = _engine()
    if engine is None:
        pytest.skip("no TeX engine on PATH (pdflatex, lualatex, tectonic): structure checked only")
    tables = [latex, to_latex(paper_table(_with_problems(), "validity"))]
    wide = _wide_results()
    tables.append(to_latex(paper_table(wide, "invalidation-rate")))  # split per dataset
    document = "\n".join(
        [r"\documentclass[twocolumn]{article}", r"\usepackage{booktabs,graphicx}",
         r"\begin{document}", *tables, r"\end{document}"]
    )  # fmt: skip
    (tmp_path / "t.tex").write_text(document, encoding="utf-8")
    done = subprocess.run(
        [*engine, "t.tex"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert (tmp_path / "t.pdf").is_file()


# ------------------------------------------------------------------------------ fitting a page
def _wide_results():
    """Two datasets x five severities: ten data columns, wider than one table should be."""
    return make_results({}, seeds=2, draws=2, severities=(0.1, 0.2, 0.3, 0.4, 0.5))


def _environments(latex: str) -> list[str]:
    return re.findall(r"\\begin\{table\*?\}.*?\\end\{table\*?\}", latex, flags=re.S)


def test_a_narrow_table_is_one_column_and_a_wider_one_spans_the_page_scaled_down():
    results = make_results({}, seeds=2, draws=2, severities=(0.1, 0.5))
    narrow = to_latex(paper_table(results, "validity"))  # two datasets
    assert narrow.startswith(r"\begin{table}[t]") and r"\resizebox" not in narrow
    wide = to_latex(paper_table(results, "invalidation-rate"))  # 2 datasets x 2 severities
    assert wide.startswith(r"\begin{table*}[t]") and wide.rstrip().endswith(r"\end{table*}")
    assert r"\resizebox{\ifdim\width>\textwidth\textwidth\else\width\fi}{!}{%" in wide
    _check_structure(narrow)
    _check_structure(wide)


def test_a_table_too_wide_for_the_page_is_split_per_dataset():
    table = paper_table(_wide_results(), "invalidation-rate")
    assert len(table.keys) == 10
    latex = to_latex(table, label="tab:inv")
    parts = _environments(latex)
    assert len(parts) == 2
    for part, dataset in zip(parts, ("adult", "german"), strict=True):
        _check_structure(part)
        assert rf"\label{{tab:inv-{dataset}}}" in part and f"Dataset: {dataset}." in part
        assert part.count(r"\multicolumn{5}{c}") == 1
