"""The repository keeps its promises: README commands, CI, the default benchmark."""

import re

from recourse_bench import load_config, plan, registry

from .conftest import ROOT


def _readme_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```bash\n(.+?)\n```", readme)


def test_ci_runs_the_readme_test_command():
    run_command, test_command = _readme_commands()[:2]
    assert "recourse-bench run benchmarks/quick.yaml" in run_command
    assert "pytest" in test_command
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci.splitlines()
    # run twice: as a newcomer (a fresh copy, no data variable) and with the reference data
    assert "unset RECOURSE_BENCH_DATA CI && readme_tests" in ci
    assert ci.count("readme_tests") == 3  # defined, then called by each pass


def test_quick_benchmark_is_the_documented_matrix():
    config = load_config(ROOT / "benchmarks" / "quick.yaml")
    assert [d.name for d in config.datasets] == ["german", "synthetic-gaussians"]
    assert [m.name for m in config.models] == ["logreg", "mlp"]
    assert [m.name for m in config.methods] == [
        "wachter",
        "roar",
        "probe",
        "trex",
        "growing-spheres",
        "nearest-neighbour",
    ]
    assert [s.name for s in config.shifts] == ["retrain-seed", *["weight-perturbation"] * 3]
    assert [s.build().severity for s in config.shifts[1:]] == [0.01, 0.03, 0.1]  # a sweep
    assert all(s.build().n_models == 10 for s in config.shifts)
    assert config.seeds == (0, 1, 2)
    assert len(plan(config)) == 288


def test_readme_plugin_example_runs(tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```python\n(.+?)\n```", readme, re.S).group(1)
    path = tmp_path / "readme_plugin.py"
    path.write_text(example, encoding="utf-8")
    registry.load_plugin_file(path)
    method = registry.get("method", "my-method")()
    splits = registry.get("dataset", "synthetic-gaussians")(n_samples=100).load(0)
    model = registry.get("model", "logreg")(epochs=10).fit(splits.X_train, splits.y_train, 0)
    out = method.fit(model, splits).generate(splits.X_test)
    assert out.shape == splits.X_test.shape


def test_every_ready_benchmark_config_loads():
    configs = sorted((ROOT / "benchmarks").glob("*.yaml"))
    assert len(configs) >= 4
    for path in configs:
        assert plan(load_config(path)), path.name
