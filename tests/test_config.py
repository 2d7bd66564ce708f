import pytest

from recourse_bench import load_config, plan
from recourse_bench.api import ConfigError


def test_tiny_config_plans_every_cell(tiny_config):
    config = load_config(tiny_config)
    assert config.seeds == (0, 1)
    assert len(plan(config)) == 2  # 1 dataset x 1 model x 1 method x 1 shift x 2 seeds


def test_grid_is_expanded_and_params_are_merged(tiny_config):
    tiny_config["methods"] = [
        {
            "name": "wachter",
            "params": {"steps": 10},
            "grid": {"lam": [0.1, 1.0], "cost": ["l1", "l2"]},
        }
    ]
    config = load_config(tiny_config)
    labels = sorted(spec.label for spec in config.methods)
    assert len(labels) == 4
    assert "wachter(cost='l2', lam=1.0, steps=10)" in labels


def test_misspelled_parameter_names_the_key_and_the_valid_ones(tiny_config, write_config, run_cli):
    tiny_config["methods"] = [{"name": "wachter", "params": {"lamda": 0.5}}]
    code, _, err = run_cli("run", write_config(tiny_config), "--out", "unused")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "'lamda'" in lines[0] and "did you mean 'lam'" in lines[0]
    assert "valid parameters of wachter: cost, lam, lam_growth" in lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"metods": ["wachter"]}, "unknown setting 'metods'; did you mean 'methods'"),
        ({"methods": ["wachtr"]}, "Unknown method 'wachtr'; did you mean 'wachter'"),
        ({"methods": []}, "expected a non-empty list"),
        ({"seeds": 0}, "seeds must be an integer >= 1"),
        ({"seeds": "three"}, "seeds must be an integer"),
        ({"metrics": ["validty"]}, "did you mean 'validity'"),
        ({"methods": [{"name": "wachter", "grid": {"lam": []}}]}, "non-empty list of values"),
        ({"methods": [{"name": "wachter", "params": {"cost": "l3"}}]}, "cost must be one of"),
        ({"methods": [{"name": "wachter", "parms": {}}]}, "unknown key 'parms'"),
        ({"methods": ["wachter", "wachter"]}, "listed twice"),
        (
            {"methods": [{"name": "wachter", "params": {"lam": 1}, "grid": {"lam": [2]}}]},
            "in both params and grid",
        ),
        ({"shifts": [{"name": "retrain-seed", "params": {"n_models": 0}}]}, "n_models must be"),
        ({"table": ["distance-l2"]}, "is not measured by this config; add it to metrics"),
        ({"table": ["valdity"]}, "did you mean 'validity'"),
        ({"table": []}, "table: expected a non-empty list"),
    ],
)
def test_bad_configs_raise_one_clear_message(tiny_config, change, message):
    tiny_config.update(change)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_config(tiny_config)


@pytest.mark.parametrize(
    ("section", "entry", "message"),
    [
        (
            "models",
            {"name": "logreg", "params": {"epochs": "ten"}},
            "epochs must be an integer >= 1",
        ),
        ("models", {"name": "logreg", "params": {"epochs": -1}}, "epochs must be an integer"),
        ("models", {"name": "mlp", "params": {"batch_size": 0}}, "batch_size must be an integer"),
        ("models", {"name": "mlp", "params": {"hidden": 32}}, "hidden must be a list of"),
        (
            "models",
            {"name": "mlp", "params": {"hidden": [-3]}},
            "hidden must be a list of integers",
        ),
        ("models", {"name": "logreg", "params": {"lr": "fast"}}, "lr must be a number > 0"),
        (
            "datasets",
            {"name": "german", "params": {"test_size": 1.5}},
            "test_size must be a number",
        ),
        (
            "datasets",
            {"name": "synthetic-gaussians", "params": {"n_samples": "many"}},
            "n_samples must be an integer >= 20",
        ),
        ("methods", {"name": "wachter", "params": {"lam": "big"}}, "lam must be a number > 0"),
        ("methods", {"name": "wachter", "params": {"margin": -0.6}}, "margin must be a number"),
        ("methods", {"name": "wachter", "params": {"steps": -5}}, "steps must be an integer >= 1"),
    ],
)
def test_parameter_values_are_checked_at_load_time(tiny_config, section, entry, message):
    tiny_config[section] = [entry]
    with pytest.raises(ConfigError, match=message):
        load_config(tiny_config)


def test_an_entry_equal_to_the_defaults_is_a_duplicate(tiny_config):
    tiny_config["methods"] = ["wachter", {"name": "wachter", "params": {"lam": 0.1}}]
    with pytest.raises(ConfigError, match="listed twice"):
        load_config(tiny_config)
    tiny_config["models"] = ["mlp", {"name": "mlp", "params": {"hidden": [32, 32]}}]
    tiny_config["methods"] = ["wachter"]
    with pytest.raises(ConfigError, match="listed twice"):
        load_config(tiny_config)


@pytest.mark.parametrize("name", ["../x", ["a"], "a/b", ""])
def test_the_name_must_be_a_plain_word(tiny_config, name):
    tiny_config["name"] = name
    if name == "":  # empty falls back to the default name
        assert load_config(tiny_config).name == "benchmark"
        return
    with pytest.raises(ConfigError, match="name must be a plain word"):
        load_config(tiny_config)


def test_a_config_that_is_not_text_is_one_clear_error(tmp_path):
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(path)


def test_missing_section_and_bad_yaml(tmp_path, tiny_config):
    del tiny_config["shifts"]
    with pytest.raises(ConfigError, match="missing section 'shifts'"):
        load_config(tiny_config)
    broken = tmp_path / "broken.yaml"
    broken.write_text("methods: [wachter\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="fix the YAML syntax"):
        load_config(broken)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_only_restricts_a_section(tiny_config):
    tiny_config["datasets"].append("german")
    config = load_config(tiny_config).only("dataset", ["german"])
    assert [spec.name for spec in config.datasets] == ["german"]
    with pytest.raises(ConfigError, match="neither in this config nor a registered method"):
        config.only("method", ["roarr"])
    with pytest.raises(ConfigError, match="needs --plugin FILE"):
        config.only("method", ["my-own-method"])  # a method from a file: the hint
    with pytest.raises(ConfigError, match=r"'adultt' is neither .* did you mean 'adult'"):
        config.only("dataset", ["adultt"])


def test_only_adds_a_registered_component_of_any_kind(tiny_config):
    config = load_config(tiny_config)
    added = config.only("dataset", ["adult"]).only("model", ["logreg", "mlp"])
    assert [spec.name for spec in added.datasets] == ["adult"]
    assert [spec.label for spec in added.models] == ["logreg(epochs=100)", "mlp"]
    shifted = config.only("shift", ["bootstrap"])
    assert [spec.name for spec in shifted.shifts] == ["bootstrap"]


def test_only_adds_a_registered_method_the_config_lacks_with_its_defaults(tiny_config):
    config = load_config(tiny_config)  # methods: wachter with parameters
    mixed = config.only("method", ["roar", "wachter"])
    assert [spec.name for spec in mixed.methods] == ["wachter", "roar"]
    assert mixed.methods[0] == config.methods[0]  # the config's entry keeps its parameters
    assert mixed.methods[1] == load_config({**tiny_config, "methods": ["roar"]}).methods[0]


# --------------------------------------------------------------------------- strictness, --set
def test_a_repeated_key_is_refused_with_both_lines(tmp_path, run_cli):
    path = tmp_path / "dup.yaml"
    path.write_text(
        "name: dup\nseeds: 3\ndatasets: [german]\nmodels: [logreg]\nmethods: [wachter]\n"
        "shifts: [retrain-seed]\nseeds: 1\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"the key 'seeds' appears twice, at lines 2 and 7"):
        load_config(path)
    nested = tmp_path / "nested.yaml"
    nested.write_text(
        "datasets: [german]\nmodels: [logreg]\nshifts: [retrain-seed]\n"
        "methods:\n  - name: wachter\n    params: {lam: 0.1, lam: 1.0}\n",
        encoding="utf-8",
    )
    code, _, err = run_cli("run", nested, "--dry-run")
    assert code == 2 and err.count("\n") == 1 and "'lam' appears twice, at lines 6 and 6" in err


def test_a_single_entry_may_be_written_without_a_list(tiny_config):
    """Documented in the README: ``datasets: german`` is ``datasets: [german]``."""
    single = load_config({**tiny_config, "datasets": "german", "models": "logreg"})
    listed = load_config({**tiny_config, "datasets": ["german"], "models": ["logreg"]})
    assert single == listed


def test_set_overrides_top_level_settings(tiny_config, write_config):
    config = load_config(write_config(tiny_config), {"seeds": 1, "n_factuals": 5})
    assert config.seeds == (0,) and config.n_factuals == 5
    config = load_config(write_config(tiny_config), {"datasets": ["german", "adult"]})
    assert [d.name for d in config.datasets] == ["german", "adult"]
    with pytest.raises(ConfigError, match="--set: unknown setting 'sedes'; did you mean 'seeds'"):
        load_config(write_config(tiny_config), {"sedes": 1})
    with pytest.raises(ConfigError, match="seeds must be an integer >= 1"):
        load_config(write_config(tiny_config), {"seeds": "two"})


def test_set_on_the_command_line(tiny_config, write_config, run_cli):
    config = write_config(tiny_config)
    code, out, _ = run_cli("run", config, "--set", "seeds=1", "--set", "n_factuals=7", "--dry-run")
    assert code == 0 and "1 seed(s), at most 7 factuals per cell" in out
    code, _, err = run_cli("run", config, "--set", "seeds", "--dry-run")
    assert code == 2 and "expected KEY=VALUE" in err
    code, _, err = run_cli("run", config, "--set", "seeds=[1", "--dry-run")
    assert code == 2 and "--set seeds" in err and err.count("\n") == 1


def test_the_effective_config_loads_back_to_itself():
    from .conftest import ROOT

    config = load_config(ROOT / "benchmarks" / "quick.yaml")
    assert load_config(config.to_dict()) == config


def test_the_main_table_is_recorded_but_is_not_part_of_the_identity(tiny_config):
    """``table:`` only shapes the report: a run folder of the same matrix accepts a new table."""
    tiny_config["metrics"] = ["validity", "cost-l1"]
    plain = load_config(tiny_config)
    tabled = load_config({**tiny_config, "table": ["cost-l1", "validity"]})
    assert tabled.table == ("cost-l1", "validity") and plain.table == ()
    assert tabled.to_dict()["table"] == ["cost-l1", "validity"] and "table" not in plain.to_dict()
    assert tabled.identity() == plain.identity()
    assert load_config(tabled.to_dict()) == tabled


@pytest.mark.parametrize("name", ["genre-table", "roar-table"])
def test_the_paper_table_configs_name_their_main_table(name):
    from .conftest import ROOT

    config = load_config(ROOT / "benchmarks" / f"{name}.yaml")
    assert config.table and set(config.table) <= set(config.metrics)
