"""The report folder: index, tables, figures and tests; formats; merging several runs."""

from __future__ import annotations

import pandas as pd
import pytest

from recourse_bench.cli import main
from recourse_bench.reports.data import ReportData
from recourse_bench.reports.figures import FIGURES
from recourse_bench.reports.report import check_formats, write_report
from recourse_bench.store import merge_results, read_results, to_frame, write_results

from .results_frames import make_results, row


@pytest.fixture(scope="module")
def partial_results():
    """Three methods on two datasets with a severity sweep, plus a skipped and a failed cell."""
    frame = make_results({}, severities=(0.0, 0.1, 0.2), seeds=2, draws=2)
    skipped = [
        row("german", "mlp", "probe", s, None, float("nan"), shift="retrain-seed",
            severity=0.1, status="skipped", reason="needs gradients")
        for s in range(2)
    ]  # fmt: skip
    failed = row("adult", "mlp", "trex", 0, None, float("nan"), status="error", reason="boom")
    rows = [*frame.to_dict("records"), *skipped, failed]
    return to_frame(rows)


def test_the_report_folder_has_every_table_figure_and_test_with_one_sentence_each(
    tmp_path, partial_results
):
    index = write_report(ReportData.build(partial_results, title="demo"), tmp_path)
    text = index.read_text(encoding="utf-8")
    for name, caption in ((n, f.caption) for n, f in FIGURES.items()):
        assert (tmp_path / "figures" / f"{name}.pdf").stat().st_size > 0
        assert (tmp_path / "figures" / f"{name}.png").stat().st_size > 0
        assert f"figures/{name}.png" in text and caption in text
    metrics = set(partial_results["metric"].dropna())
    for metric in metrics:
        assert (tmp_path / "tables" / f"{metric}.tex").read_text().startswith("\\begin{table")
        assert (tmp_path / "tables" / f"{metric}.md").exists()
        assert f"### {metric} (" in text
    tests = pd.read_csv(tmp_path / "stats" / "paired-tests.csv")
    assert {"method_a", "method_b", "p_value", "p_holm", "better"} <= set(tests.columns)
    assert (tmp_path / "report.md").read_text().startswith("# demo")


def test_rows_that_are_not_ok_are_counted_in_the_index(tmp_path, partial_results):
    text = write_report(partial_results, tmp_path).read_text(encoding="utf-8")
    assert "2 skipped, 1 error, 0 timeout" in text
    assert "| probe | skipped | 2 | 2 | needs gradients |" in text
    assert "| trex | error | 1 | 1 | boom |" in text


def test_formats_choose_the_files(tmp_path, partial_results):
    write_report(partial_results, tmp_path, formats=["tex"])
    assert list((tmp_path / "tables").glob("*.md")) == []
    assert list((tmp_path / "tables").glob("*.tex"))
    assert not (tmp_path / "figures").exists()
    assert (tmp_path / "index.md").exists()
    assert check_formats(["png", "md", "png"]) == ("md", "png")
    with pytest.raises(ValueError, match="unknown report format"):
        check_formats(["svg"])


def test_merging_keeps_the_later_measurement_and_counts_replacements():
    first = make_results({}, methods=("wachter",), seeds=2, draws=2)
    second = make_results({}, methods=("wachter", "roar"), seeds=1, draws=2, random_state=1)
    merged, replaced = merge_results([first, second])
    shared = second[second["method_label"] == "wachter"]
    assert replaced == len(shared)  # seed 0 of wachter was measured twice
    assert len(merged) == len(first) + len(second) - replaced
    key = ["method_label", "shift_label", "seed", "metric", "draw", "dataset_label"]
    got = merged.merge(shared[[*key, "value"]], on=key, suffixes=("", "_second"))
    assert (got["value"] == got["value_second"]).all()  # the later file wins
    alone, none = merge_results([first])
    assert none == 0 and len(alone) == len(first)


def test_report_command_merges_runs_and_writes_the_folder(tmp_path, capsys):
    first = make_results({}, methods=("wachter",), seeds=2, draws=2)
    second = make_results({}, methods=("roar",), seeds=2, draws=2)
    write_results(first, tmp_path / "a", {"config_name": "a"})
    write_results(second, tmp_path / "b", {"config_name": "b"})
    code = main(["report", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "r")])
    assert code == 0
    text = (tmp_path / "r" / "index.md").read_text(encoding="utf-8")
    assert text.startswith("# a + b") and "Merged from:" in text
    assert "roar" in text and "wachter" in text
    assert len(read_results(tmp_path / "a")) == len(first)  # the inputs are untouched


def test_an_unknown_format_is_one_clear_line(tmp_path, capsys):
    write_results(make_results({}, seeds=1, draws=1), tmp_path / "a", {"config_name": "a"})
    code = main(["report", str(tmp_path / "a"), "--out", str(tmp_path / "r"), "--format", "svg"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--format" in err[0] and "md,tex,pdf,png" in err[0]


def test_a_rerun_replaces_a_failed_cell_and_a_failed_rerun_hides_the_old_numbers():
    ok = make_results({}, methods=("wachter",), datasets=("german",), seeds=1, draws=2)
    failed = to_frame(
        [row("german", "mlp", "wachter", 0, None, float("nan"), shift="retrain-seed",
             status="error", reason="boom")]
    )  # fmt: skip
    merged, replaced = merge_results([failed, ok])  # the fix, run after the failure
    assert (merged["status"] == "ok").all() and replaced == 1 and len(merged) == len(ok)
    merged, replaced = merge_results([ok, failed])  # a failed rerun
    assert list(merged["status"]) == ["error"] and replaced == len(ok)


# ---------------------------------------------------------------------- the main (paper) table
MAIN_METRICS = ["cost-l1", "validity", "invalidation-rate"]


def test_main_table_puts_the_metrics_side_by_side_per_dataset_with_their_own_cells():
    from recourse_bench.reports.latex import main_table, paper_table, to_latex

    frame = make_results({("adult", "genre", "cost-l1"): 0.2, ("adult", "roar", "validity"): 0.9})
    data = ReportData.build(frame, table=MAIN_METRICS)
    table = main_table(data, MAIN_METRICS)
    assert table.methods == paper_table(frame, "cost-l1").methods  # methods are the rows
    assert sorted(table.methods) == ["genre", "roar", "wachter"]
    assert table.columns == ("dataset", "metric")
    assert table.keys == [(d, m) for d in ("adult", "german") for m in MAIN_METRICS]
    for metric in MAIN_METRICS:
        own = paper_table(frame, metric, columns=("dataset",))
        for method in table.methods:
            for dataset in ("german", "adult"):
                mine, theirs = table.cell(method, dataset, metric), own.cell(method, dataset)
                assert mine["text"] == theirs["text"] and mine["best"] == theirs["best"]
    assert table.cell("genre", "adult", "cost-l1")["best"]  # lowest cost
    assert table.cell("roar", "adult", "validity")["best"]  # highest validity
    latex = to_latex(table, split=False)
    assert latex.count(r"\begin{table*}") == 1  # one table across the page, not one per dataset
    assert r"\multicolumn{3}{c}{german}" in latex and r"\multicolumn{3}{c}{adult}" in latex


def test_main_table_merges_the_notes_of_its_metrics_and_fills_missing_cells():
    from recourse_bench.reports.latex import main_table, to_markdown_table

    frame = make_results({}, methods=("wachter", "roar"))
    failed = [
        row("adult", "mlp", "trex", s, None, float("nan"), status="error", reason="boom")
        for s in range(3)
    ]
    frame = to_frame([*frame.to_dict("records"), *failed])
    table = main_table(frame, MAIN_METRICS)
    assert "trex" in table.methods
    assert [text for _, text in table.notes] == [  # once each, though every metric has them
        "error in 1 cell(s), 3 seed run(s) in all: boom",
        "missing in 1 cell(s): no results",
    ]
    assert table.cell("trex", "adult", "cost-l1")["marker"] == "a"
    assert table.cell("trex", "german", "validity")["text"] == "--"
    assert table.cell("trex", "german", "validity")["marker"] == "b"
    text = to_markdown_table(table)
    assert "| method | adult / cost-l1 |" in text and "(a) error in 1 cell(s)" in text


def test_main_table_without_results_for_its_metrics_is_a_clear_error():
    from recourse_bench.reports.latex import main_table

    with pytest.raises(ValueError, match="no results for any metric"):
        main_table(make_results({}), ["oracle-validity"])


def test_the_report_writes_the_main_table_only_when_the_config_names_one(tmp_path):
    frame = make_results({})
    index = write_report(ReportData.build(frame, table=MAIN_METRICS), tmp_path / "with")
    text = index.read_text(encoding="utf-8")
    assert text.startswith("# recourse-bench\n\n## Main table\n")
    assert (tmp_path / "with" / "tables" / "main.tex").read_text().startswith(r"\begin{table*}")
    assert (tmp_path / "with" / "tables" / "main.md").exists()
    write_report(ReportData.build(frame), tmp_path / "without")
    assert not (tmp_path / "without" / "tables" / "main.tex").exists()


def test_a_main_table_over_several_models_prints_one_table_per_model(tmp_path):
    from recourse_bench.reports.latex import main_table, split_table

    frame = make_results({})
    other = frame.assign(model="logreg", model_label="logreg")
    both = to_frame([*frame.to_dict("records"), *other.to_dict("records")])
    table = main_table(both, MAIN_METRICS)
    assert table.columns == ("dataset", "model", "metric")
    parts = split_table(table, "model")
    assert list(parts) == ["mlp", "logreg"] or list(parts) == ["logreg", "mlp"]
    for model, part in parts.items():
        assert part.columns == ("dataset", "metric") and "Model: " + model in part.caption
        for method in part.methods:
            for dataset, metric in part.keys:
                assert (
                    part.cell(method, dataset, metric)["text"]
                    == (table.cell(method, dataset, model, metric)["text"])
                )
    write_report(ReportData.build(both, table=MAIN_METRICS), tmp_path)
    latex = (tmp_path / "tables" / "main.tex").read_text()
    assert latex.count(r"\begin{table*}") == 2
    assert r"\label{tab:main-mlp}" in latex and r"\label{tab:main-logreg}" in latex


def test_the_terminal_summary_counts_the_cells_it_averages():
    from recourse_bench.reports.tables import terminal_summary

    frame = make_results({})  # 2 datasets x 1 model x 1 shift
    assert "mean over 2 (dataset, model, shift) cells" in terminal_summary(frame)
    static = frame[frame["shift"].isna()]  # a run with static metrics only
    assert "mean over 2 (dataset, model) cells" in terminal_summary(static)


def test_the_main_table_heads_datasets_by_name_when_that_is_unambiguous():
    from recourse_bench.reports.latex import main_table

    frame = make_results({})
    labelled = frame.assign(dataset_label=frame["dataset"].map(lambda d: f"{d}(labels='gold')"))
    table = main_table(labelled, MAIN_METRICS)
    assert {key[0] for key in table.keys} == {"adult", "german"}
    assert (
        table.cell("roar", "adult", "validity")["text"]
        == (main_table(frame, MAIN_METRICS).cell("roar", "adult", "validity")["text"])
    )
    twice = to_frame(
        [*labelled.to_dict("records"), *frame[frame["dataset"] == "adult"].to_dict("records")]
    )
    assert "adult(labels='gold')" in {key[0] for key in main_table(twice, MAIN_METRICS).keys}
