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
    ],
)
def test_bad_configs_raise_one_clear_message(tiny_config, change, message):
    tiny_config.update(change)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_config(tiny_config)


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
    with pytest.raises(ConfigError, match="not in this config"):
        config.only("method", ["roar"])
