"""Run folders are safe: a folder never mixes two runs, and run.json records the effective run."""

import hashlib
import json
import time

import pandas as pd

from .conftest import PLUGINS, TINY


def _snapshot(folder):
    """Every file under ``folder`` with its content hash and modification time."""
    return {
        str(path.relative_to(folder)): (
            hashlib.sha256(path.read_bytes()).hexdigest(),
            path.stat().st_mtime_ns,
        )
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_a_run_into_a_folder_of_another_config_is_refused_and_touches_nothing(
    tmp_path, write_config, run_cli
):
    out = tmp_path / "run"
    code, _, err = run_cli("run", write_config(TINY), "--out", out, "-q")
    assert code == 0, err
    before = _snapshot(out)
    other = dict(TINY, n_factuals=10)
    code, _, err = run_cli("run", write_config(other, "other.yaml"), "--out", out, "-q")
    assert code == 2
    line = err.strip()
    assert "\n" not in line and "holds the results of another run" in line
    assert "config.n_factuals" in line and "--force" in line and "recourse-bench report" in line
    assert _snapshot(out) == before
    # the same config again (a rerun, or a resumed run) is welcome
    code, _, err = run_cli("run", write_config(TINY), "--out", out, "-q")
    assert code == 0, err


def test_force_replaces_the_whole_report(tmp_path, write_config, run_cli):
    out = tmp_path / "run"
    swept = dict(TINY, shifts=[{"name": "weight-perturbation", "grid": {"severity": [0.01, 0.1]}}])
    code, _, err = run_cli("run", write_config(swept), "--out", out, "-q")
    assert code == 0, err
    old_files = set(_snapshot(out))
    assert "figures/invalidation-vs-severity.png" in old_files  # only a sweep draws it
    (out / "tables" / "my-notes.txt").write_text("stale", encoding="utf-8")
    started = time.time_ns()
    code, _, err = run_cli("run", write_config(TINY, "plain.yaml"), "--out", out, "-q", "--force")
    assert code == 0, err
    new = _snapshot(out)
    assert "figures/invalidation-vs-severity.png" not in new
    assert "tables/my-notes.txt" not in new  # the report folders are replaced as a whole
    assert not any(name.startswith(".report-") for name in new)  # no staging left behind
    old_left = [name for name, (_, mtime) in new.items() if mtime < started]
    assert not old_left  # every file is the new run's
    frame = pd.read_parquet(out / "results.parquet")
    assert set(frame["shift"].dropna()) == {"retrain-seed"}


def test_no_report_removes_a_report_that_no_longer_matches(tmp_path, write_config, run_cli):
    out = tmp_path / "run"
    config = write_config(TINY)
    assert run_cli("run", config, "--out", out, "-q")[0] == 0
    assert (out / "index.md").is_file()
    assert run_cli("run", config, "--out", out, "-q", "--no-report")[0] == 0
    assert not any((out / name).exists() for name in ("index.md", "report.md", "tables"))
    assert (out / "results.parquet").is_file()


def test_run_json_records_the_effective_run(tmp_path, write_config, run_cli):
    plugin = PLUGINS / "faulty.py"
    config = dict(TINY, seeds=3, methods=[*TINY["methods"], "nearest-neighbour"])
    code, _, err = run_cli(
        "run", write_config(config), "--out", tmp_path / "run", "-q",
        "--only", "method=fails-on-german", "--plugin", plugin, "--set", "seeds=1",
    )  # fmt: skip
    assert code == 0, err
    meta = json.loads((tmp_path / "run" / "run.json").read_text(encoding="utf-8"))
    assert meta["config"]["seeds"] == [0]
    assert meta["config"]["methods"] == ["fails-on-german"]
    assert meta["config"]["datasets"] == TINY["datasets"]
    assert meta["config"]["metrics"][-1] == "violations"
    digest = hashlib.sha256(plugin.read_bytes()).hexdigest()
    assert meta["plugins"] == [{"path": str(plugin.resolve()), "sha256": digest}]
    assert meta["invocation"]["set"] == {"seeds": 1}
    assert meta["invocation"]["only"] == ["method=fails-on-german"]
    frame = pd.read_parquet(tmp_path / "run" / "results.parquet")
    assert set(frame["method"]) == {"fails-on-german"} and set(frame["seed"]) == {0}


def test_a_merged_report_holds_its_results_and_is_protected_like_a_run(
    tmp_path, write_config, run_cli
):
    a, b, merged = tmp_path / "a", tmp_path / "b", tmp_path / "merged"
    assert run_cli("run", write_config(TINY), "--out", a, "-q")[0] == 0
    other = dict(TINY, methods=["nearest-neighbour"])
    assert run_cli("run", write_config(other, "b.yaml"), "--out", b, "-q")[0] == 0
    code, _, err = run_cli("report", a, b, "--out", merged)
    assert code == 0, err
    frame = pd.read_parquet(merged / "results.parquet")
    assert set(frame["method"]) == {"wachter", "nearest-neighbour"}
    assert json.loads((merged / "run.json").read_text())["merged_from"] == [
        str(a / "results.parquet"),
        str(b / "results.parquet"),
    ]
    assert run_cli("report", a, b, "--out", merged)[0] == 0  # the same merge again
    code, _, err = run_cli("report", a, "--out", merged)  # another merge into it
    assert code == 2 and "holds the results of another run or merge" in err
    code, _, err = run_cli("report", b, "--out", a)  # a run folder is not overwritten either
    assert code == 2 and "--force" in err
    assert run_cli("report", a, "--out", merged, "--force")[0] == 0
    assert set(pd.read_parquet(merged / "results.parquet")["method"]) == {"wachter"}
    code, _, err = run_cli("run", write_config(TINY), "--out", merged, "-q")
    assert code == 2 and "holds the results of another run" in err
