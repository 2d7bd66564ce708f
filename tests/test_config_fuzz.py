"""Property: a mutated config is either accepted or refused with exit code 2 and one line.

Hypothesis mutates valid configs (the embedded quick config and the tests' tiny one): keys
dropped, renamed or added, values replaced by values of any type (NaN, huge numbers, nested
lists, empty lists, None), components renamed, parameters and grids corrupted, entries
duplicated, and the YAML text itself damaged. Each mutant goes through the command line
(``run CONFIG --dry-run``, which validates everything a run would and then stops); the result
must be exit code 0, or exit code 2 with one line on stderr and no traceback.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recourse_bench import cli

from .conftest import TINY

QUICK = yaml.safe_load((Path(__file__).parents[1] / "benchmarks" / "quick.yaml").read_text())
BASES = [TINY, QUICK]
SECTIONS = ("datasets", "models", "methods", "shifts")
JUNK = [":", "- ", "\t", "{", "]", "'", "&a", "*b", "!!x ", "\n"]
KEYS = ("name", "seed", "seeds", "n_factuals", "metrics", "data_dir", *SECTIONS)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["wachter", "german", "logreg", "retrain-seed", "validity", "", " "]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _entry(config: dict, section: str, index: int) -> dict | None:
    entries = config.get(section)
    if not isinstance(entries, list) or not entries:
        return None
    i = index % len(entries)
    if isinstance(entries[i], str):
        entries[i] = {"name": entries[i]}
    return entries[i] if isinstance(entries[i], dict) else None


@st.composite
def mutations(draw) -> dict:
    """A valid config with one to three random mutations applied."""
    config = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(
            st.sampled_from(
                ["drop", "set", "add", "rename", "entry", "param", "grid", "duplicate", "empty"]
            )
        )
        key = draw(st.sampled_from(KEYS))
        section = draw(st.sampled_from(SECTIONS))
        index = draw(st.integers(0, 10))
        if kind == "drop":
            config.pop(key, None)
        elif kind == "set":
            config[key] = draw(values)
        elif kind == "add":
            config[draw(st.text(min_size=1, max_size=10))] = draw(values)
        elif kind == "rename" and key in config:
            config[key + draw(st.sampled_from(["s", "_", "x"]))] = config.pop(key)
        elif kind == "entry" and (entry := _entry(config, section, index)) is not None:
            entry[draw(st.sampled_from(["name", "params", "grid", "label", "nme"]))] = draw(values)
        elif kind == "param" and (entry := _entry(config, section, index)) is not None:
            params = entry.setdefault("params", {})
            if isinstance(params, dict):
                name = draw(st.one_of(st.text(max_size=8), st.sampled_from(_params(entry))))
                params[name] = draw(values)
        elif kind == "grid" and (entry := _entry(config, section, index)) is not None:
            entry["grid"] = {draw(st.sampled_from(_params(entry))): draw(values)}
        elif kind == "duplicate" and isinstance(config.get(section), list) and config[section]:
            config[section].append(copy.deepcopy(config[section][index % len(config[section])]))
        elif kind == "empty":
            config[section] = draw(st.sampled_from([[], {}, None, "", [None], [{}]]))
    return config


def _params(entry: dict) -> list[str]:
    from recourse_bench import registry

    for kind in ("dataset", "model", "method", "shift"):
        if isinstance(entry.get("name"), str) and entry["name"] in registry.available(kind):
            return sorted(registry.get(kind, entry["name"]).param_names()) or ["x"]
    return ["x"]


def check_cli(path: Path, capsys) -> None:
    code = cli.main(["run", str(path), "--dry-run"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert code in (0, 2), err
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("recourse-bench: error: "), err


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(config=mutations())
def test_a_mutated_config_is_accepted_or_refused_in_one_line(config, tmp_path, capsys):
    path = tmp_path / "mutant.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    check_cli(path, capsys)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_damaged_yaml_text_is_refused_in_one_line(data, tmp_path, capsys):
    text = yaml.safe_dump(QUICK)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        junk = data.draw(st.sampled_from(JUNK))
        text = text[:at] + junk + text[at + data.draw(st.integers(0, 3)) :]
    path = tmp_path / "damaged.yaml"
    path.write_text(text, encoding="utf-8")
    check_cli(path, capsys)
