import gzip
import io
import json
import subprocess
import sys
import zipfile
from dataclasses import replace

import pandas as pd
import pytest

from .conftest import PLUGINS


def test_run_end_to_end_in_a_subprocess(tmp_path, tiny_config, write_config):
    config = write_config(tiny_config)
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "recourse_bench.cli", "run", str(config), "--out", str(out), "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert (out / "results.parquet").is_file() and (out / "run.json").is_file()
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "| wachter(n_rounds=6, steps=50) |" in done.stdout  # the short terminal summary
    assert report not in done.stdout and "report.md" in done.stderr  # the full table is there
    header = next(line for line in report.splitlines() if line.startswith("| dataset"))
    assert "invalidation-rate" in header and "validity" in header
    row = next(line for line in report.splitlines() if line.startswith("| synthetic-gaussians"))
    assert "| logreg(epochs=100) |" in row and "retrain-seed(n_models=3)" in row
    assert (tmp_path / ".recourse-bench-cache").is_dir()  # the default cache sits beside the run
    index = (out / "index.md").read_text(encoding="utf-8")  # the full report, by default
    for name in ("invalidation-by-shift", "cost-vs-invalidation", "invalidation-heatmap"):
        assert (out / "figures" / f"{name}.png").is_file() and f"figures/{name}.png" in index
    assert (out / "tables" / "invalidation-rate.tex").is_file()


def test_run_writes_only_the_formats_asked_for_or_no_report(
    tmp_path, tiny_config, write_config, run_cli
):
    config = write_config(tiny_config)
    code, _, _ = run_cli("run", config, "--out", tmp_path / "a", "-q", "--format", "tex")
    assert code == 0 and (tmp_path / "a" / "tables" / "validity.tex").is_file()
    assert not (tmp_path / "a" / "figures").exists()
    code, _, _ = run_cli("run", config, "--out", tmp_path / "b", "-q", "--no-report")
    assert code == 0 and (tmp_path / "b" / "results.parquet").is_file()
    assert not any((tmp_path / "b" / name).exists() for name in ("index.md", "report.md"))
    code, _, err = run_cli("run", config, "--out", tmp_path / "c", "--format", "svg")
    assert code == 2 and "--format" in err and not (tmp_path / "c" / "results.parquet").exists()


def test_report_command_rebuilds_the_table(tmp_path, tiny_config, write_config, run_cli):
    code, out, _ = run_cli("run", write_config(tiny_config), "--out", tmp_path / "run", "-q")
    assert code == 0
    code, summary, _ = run_cli("report", tmp_path / "run", "--out", tmp_path / "rep")
    assert code == 0
    assert summary == out  # the same terminal summary
    for name in ("report.md", "index.md"):
        rebuilt = (tmp_path / "rep" / name).read_text(encoding="utf-8")
        assert rebuilt == (tmp_path / "run" / name).read_text(encoding="utf-8")
    # the merged folder holds its results too, so it is itself a source for `report`
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "rep" / "results.parquet"),
        pd.read_parquet(tmp_path / "run" / "results.parquet"),
    )
    code, printed, _ = run_cli("report", tmp_path / "rep")
    assert code == 0 and printed.strip() == (tmp_path / "run" / "report.md").read_text().strip()


def test_failed_cells_exit_1_and_keep_the_results(tmp_path, tiny_config, write_config, run_cli):
    tiny_config["datasets"] = ["german"]
    tiny_config["methods"] = ["fails-on-german", {"name": "wachter", "params": {"n_rounds": 3}}]
    code, out, err = run_cli(
        "run",
        write_config(tiny_config),
        "--out",
        tmp_path / "run",
        "-q",
        "--plugin",
        PLUGINS / "faulty.py",
    )
    assert code == 1
    assert "error: recourse german/logreg/fails-on-german seed 0: RuntimeError: deliberate" in err
    frame = pd.read_parquet(tmp_path / "run" / "results.parquet")
    assert (frame[frame["method"] == "wachter"]["status"] == "ok").all()
    report = (tmp_path / "run" / "report.md").read_text(encoding="utf-8")
    assert "error (2 seed(s))" in report  # the report notes the failed cells
    assert "| fails-on-german | n/a | n/a | n/a | n/a | 2 |" in out  # and the summary counts


def test_only_flag_and_list_command(tmp_path, tiny_config, write_config, run_cli):
    tiny_config["methods"].append({"name": "wachter", "params": {"cost": "l2", "n_rounds": 3}})
    code, _, err = run_cli(
        "run", write_config(tiny_config), "--out", tmp_path / "r", "-q", "--only", "method=wachtr"
    )
    assert code == 2 and "did you mean 'wachter'" in err
    code, out, _ = run_cli("list", "methods")
    assert code == 0 and "wachter" in out
    code, out, _ = run_cli("list")
    for heading in ("datasets:", "models:", "methods:", "shifts:", "metrics:"):
        assert heading in out


def test_report_on_a_missing_run_is_one_clear_line(tmp_path, run_cli):
    code, _, err = run_cli("report", tmp_path / "nothing")
    assert code == 2
    assert err.strip().count("\n") == 0 and "run `recourse-bench run CONFIG` first" in err


def test_unusable_output_folder_fails_before_any_work(tmp_path, tiny_config, write_config, run_cli):
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    code, _, err = run_cli("run", write_config(tiny_config), "--out", blocker, "-q")
    assert code == 2
    assert err.count("\n") == 1 and "--out" in err and "not a writable folder" in err
    code, _, err = run_cli(
        "run", write_config(tiny_config), "--out", tmp_path / "ok", "--cache-dir", blocker, "-q"
    )
    assert code == 2 and "--cache-dir" in err
    assert not (tmp_path / "ok" / "results.parquet").exists()


def test_data_command_reports_each_file(run_cli, tmp_path, monkeypatch):
    code, out, _ = run_cli("data", "verify", "adult")
    assert code == 0 and "adult: adult.data: ok" in out and "adult: adult.test: ok" in out
    code, out, _ = run_cli("data", "where", "synthetic-moons")
    assert code == 0 and "generated, no files" in out
    code, _, err = run_cli("data", "verify", "nonexistent")
    assert code == 2 and "Unknown dataset 'nonexistent'" in err


def test_config_data_dir_is_resolved_against_the_config_file(tmp_path, tiny_config, write_config):
    from recourse_bench import load_config

    tiny_config["data_dir"] = "raw-files"
    config = load_config(write_config(tiny_config))
    assert config.data_dir == str((tmp_path / "raw-files").resolve())


def test_data_fetch_downloads_verifies_and_rejects(run_cli, serve, tmp_path, monkeypatch):
    from recourse_bench.datasets import german, german_corrected

    from .conftest import SHARED_DATA

    if not (SHARED_DATA / "SouthGermanCredit.asc.gz").is_file():
        pytest.skip("needs the reference SouthGermanCredit.asc.gz")
    content = gzip.decompress((SHARED_DATA / "SouthGermanCredit.asc.gz").read_bytes())
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("SouthGermanCredit.asc", content)
    monkeypatch.setenv("RECOURSE_BENCH_DATA", str(tmp_path / "no-data"))
    monkeypatch.setenv("RECOURSE_BENCH_CACHE", str(tmp_path / "cache"))
    good = replace(german.SOUTH_GERMAN_CREDIT, url=serve.add("/sgc.zip", archive.getvalue()))
    monkeypatch.setattr(german_corrected.GermanCorrected, "files", (good,))
    code, out, _ = run_cli("data", "fetch", "german-corrected")
    assert code == 0 and "SouthGermanCredit.asc: ok" in out
    assert (tmp_path / "cache" / "SouthGermanCredit.asc").read_bytes() == content

    (tmp_path / "cache" / "SouthGermanCredit.asc").unlink()
    broken = replace(good, url=serve.add("/broken.zip", archive.getvalue()[:-30]))
    monkeypatch.setattr(german_corrected.GermanCorrected, "files", (broken,))
    code, out, _ = run_cli("data", "fetch", "german-corrected")
    assert code == 1 and "archive is not usable" in out
    assert not any((tmp_path / "cache").iterdir())


BROKEN_PLUGIN = '''
import numpy as np
from recourse_bench import RecourseMethod, register


@register("method", "broken-for-cli")
class Broken(RecourseMethod):
    """Moves every column by 0.1, immutables included, and uses the global RNG."""

    def __init__(self, step: float = 0.1, random_state=None):
        self.step = step
        self.random_state = random_state

    def generate(self, X):
        self.check_fitted()
        X = self.check_factuals(X)
        return np.clip(X + self.step + 0 * np.random.rand(), 0.0, 1.0)
'''


def test_check_method_prints_a_pass_fail_table_and_exits_1_on_failures(tmp_path, run_cli):
    code, out, _ = run_cli("check-method", "nearest-neighbour")
    assert code == 0 and "## method nearest-neighbour: passes" in out
    assert "| check_immutables_kept | passed |" in out
    plugin = tmp_path / "broken.py"
    plugin.write_text(BROKEN_PLUGIN, encoding="utf-8")
    code, out, _ = run_cli("check-method", "--plugin", plugin)
    assert code == 1 and "## method broken-for-cli: fails" in out
    assert "| check_immutables_kept | failed |" in out and "| check_no_global_rng | failed |" in out
    code, out, _ = run_cli("check-method", "recourse_bench.methods.wachter:Wachter")
    assert code == 0 and "## method wachter: passes" in out
    for target in ("no_such_module:Thing", "recourse_bench.api:Schema"):
        code, _, err = run_cli("check-method", target)
        assert code == 2 and len(err.strip().splitlines()) == 1 and target in err


def test_a_new_method_with_only_computes_just_its_own_cells(
    tmp_path, tiny_config, write_config, run_cli
):
    from .conftest import ROOT

    config = write_config(tiny_config)
    code, _, _ = run_cli("run", config, "--out", tmp_path / "first", "-q", "--no-report")
    assert code == 0
    plugin = ROOT / "examples" / "shrunk_neighbour.py"
    code, _, err = run_cli(
        "run", config, "--out", tmp_path / "mine", "-q", "--no-report", "--plugin", plugin,
        "--only", "method=shrunk-neighbour,wachter",
    )  # fmt: skip
    assert code == 0, err
    stages = json.loads((tmp_path / "mine" / "run.json").read_text())["stages"]
    assert stages["base"]["cached"] == stages["base"]["units"]  # data, models and factuals
    assert stages["updates"]["cached"] == stages["updates"]["units"]  # the updated models
    assert stages["recourse"]["units"] - stages["recourse"]["cached"] == 2  # one per seed, new
    frame = pd.read_parquet(tmp_path / "mine" / "results.parquet")
    assert set(frame["method"]) == {"shrunk-neighbour", "wachter"}


def test_dry_run_checks_the_config_and_writes_nothing(tmp_path, run_cli, write_config):
    from .conftest import TINY

    config = write_config(TINY)
    code, out, _ = run_cli("run", config, "--out", tmp_path / "run", "--dry-run")
    assert code == 0
    assert out.startswith("tiny: 2 cells; 2 seed(s), at most 20 factuals per cell")
    assert "  recourse units: 2 (1 dataset(s) x 1 model(s) x 1 method(s) x 2 seed(s))" in out
    assert "cannot estimate" in out  # nothing measured in this cache yet
    assert not (tmp_path / "run").exists() and not (tmp_path / ".recourse-bench-cache").exists()
    code, _, err = run_cli("run", config, "--dry-run", "--only", "method=wachtr")
    assert code == 2 and err.strip().count("\n") == 0 and "wachter" in err


def test_list_describes_one_plugin(run_cli):
    code, out, _ = run_cli("list", "methods", "wachter")
    assert code == 0
    assert out.startswith("method wachter (recourse_bench.methods.wachter.Wachter)")
    assert "needs: gradients\nruns on: logreg, mlp, svm\n" in out
    assert "  cost = 'l1'    [one of l1, l2]" in out  # default and allowed values
    assert "  lam = 0.1    [a number > 0]" in out and "Initial weight of the validity loss" in out
    code, out, _ = run_cli("list", "datasets", "adult")  # parameters documented on a base class
    assert "  labels = 'observed'    [one of observed, gold]" in out
    code, out, _ = run_cli("list", "metrics", "violations")
    assert "stage: static; lower is better; bounds [0, 1]" in out
    code, _, err = run_cli("list", "methods", "wachtr")
    assert code == 2 and "did you mean 'wachter'" in err


def test_list_methods_shows_needs_and_models(run_cli):
    code, out, _ = run_cli("list", "methods")
    assert code == 0
    lines = out.splitlines()

    def detail(name: str) -> str:
        return lines[lines.index(next(line for line in lines if line.startswith(f"  {name} "))) + 1]

    assert detail("wachter").split() == "needs: gradients; runs on: logreg, mlp, svm".split()
    assert "needs: trees; runs on: forest" in detail("feature-tweak")
    assert "needs: predictions only; runs on: boosting, forest, logreg, mlp, svm" in detail("face")


def test_list_models_shows_which_shifts_apply(run_cli, tmp_path):
    code, out, _ = run_cli("list", "models")
    assert code == 0
    lines = out.splitlines()
    logreg = lines[lines.index(next(line for line in lines if line.startswith("  logreg"))) + 1]
    assert "shifts: all but architecture (logreg has no architecture to vary" in logreg
    plugin = tmp_path / "bare.py"
    plugin.write_text(
        "from recourse_bench import Trainer, register\n"
        "@register('model', 'bare-model')\n"
        "class Bare(Trainer):\n"
        "    def fit(self, X, y, seed):\n"
        "        raise NotImplementedError\n",
        encoding="utf-8",
    )
    code, out, _ = run_cli("list", "models", "bare-model", "--plugin", plugin)
    assert (
        "finetune (finetune needs a trainer that is Finetunable (bare-model has no finetune))"
        in out
    )
    assert "architecture (architecture needs a trainer that is ArchitectureFamily" in out
    assert "(hyperparameters needs a trainer that is Tunable (bare-model has no tunable_" in out
