"""Exact cache keys: an entry's key covers the code it was computed with, and nothing else.

The dependency set of every built-in is pinned here: a change to what a plugin imports or uses
shows up as a failing test, to be reviewed (and the pin updated) rather than slipping into the
keys unnoticed. End to end, a copy of the package is edited and a run on the copy must recompute
exactly the units whose code changed.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

import recourse_bench
from recourse_bench import registry
from recourse_bench.harness import evaluation, stages

API = {"api"}
SEEDED = API | {"seeding"}
TABULAR = SEEDED | {
    *("datasets._encoding", "datasets._files", "datasets._gold", "datasets._tabular"),
    *("models._sklearn", "models._torch"),
}
SYNTHETIC = SEEDED | {"datasets._encoding", "datasets._synthetic", "models._torch"}
SEARCH = SEEDED | {"methods._search", "models._torch"}
TORCH_MODEL = SEEDED | {"models._torch"}
RESAMPLING = SEEDED | {"shifts._resampling"}
METRIC = API | {"metrics._define"}

DEPENDENCIES = {
    **{
        f"dataset:{name}": TABULAR | {f"datasets.{name}"}
        for name in ("adult", "compas", "german", "gmsc", "heloc", "sba", "student", "taiwan")
    },
    "dataset:german-corrected": TABULAR | {"datasets.german", "datasets.german_corrected"},
    "dataset:synthetic-drift": SYNTHETIC | {"datasets.synthetic_drift"},
    "dataset:synthetic-gaussians": SYNTHETIC | {"datasets.synthetic_gaussians"},
    "dataset:synthetic-moons": SYNTHETIC | {"datasets.synthetic_moons"},
    "model:boosting": TORCH_MODEL | {"models._sklearn", "models.boosting"},
    "model:forest": TORCH_MODEL | {"models._sklearn", "models.forest"},
    "model:logreg": TORCH_MODEL | {"models._newton", "models.logreg"},
    "model:mlp": TORCH_MODEL | {"models.mlp"},
    "model:svm": TORCH_MODEL | {"models._newton", "models.svm"},
    "method:genre": TORCH_MODEL
    | {f"methods.genre{part}" for part in ("", ".layout", ".model", ".pairs", ".sample", ".train")},
    "method:growing-spheres": SEARCH | {"methods.growing_spheres"},
    "method:nearest-neighbour": SEARCH | {"methods.nearest_neighbour"},
    "method:probe": SEARCH | {"methods.probe"},
    "method:roar": SEARCH | {"methods._surrogate", "methods.roar"},
    "method:trex": SEARCH | {"methods.trex", "methods.wachter"},  # uses wachter
    "method:wachter": SEARCH | {"methods.wachter"},
    "method:ar": TORCH_MODEL | {"methods._surrogate", "methods.ar"},
    "method:dice": SEARCH | {"methods.dice"},
    "method:face": SEARCH | {"methods.face"},
    "method:feature-tweak": SEARCH | {"methods.feature_tweak"},
    **{
        f"method:{name}": TORCH_MODEL
        | {f"methods.vae.{part}" for part in ("base", "model", "shared", "train", name)}
        for name in ("revise", "cchvae", "cruds")
    },
    "method:mcer": SEARCH | {"certify", "methods.mcer"},
    "method:rnce": SEARCH | {"certify", "methods.nearest_neighbour", "methods.rnce"},
    "method:rbr": SEARCH | {"methods.rbr"},
    "method:croco": SEARCH | {"methods.croco"},
    "method:sns": SEARCH | {"methods.growing_spheres", "methods.sns", "methods.wachter"},
    "method:betarce": SEARCH
    | {"methods.betarce", "methods.growing_spheres", "shifts._resampling"}
    | {f"shifts.{name}" for name in ("architecture", "bootstrap", "retrain_seed")},
    "shift:architecture": API | {"shifts.architecture"},
    "shift:bootstrap": RESAMPLING | {"shifts.bootstrap"},
    "shift:concept-drift": RESAMPLING | {"shifts.concept_drift", "shifts.covariate"},
    "shift:covariate": RESAMPLING | {"shifts.covariate"},
    "shift:finetune": SEEDED | {"shifts.finetune"},
    "shift:hyperparameters": SEEDED | {"shifts.architecture", "shifts.hyperparameters"},
    "shift:label-shift": RESAMPLING | {"shifts.bootstrap", "shifts.label_shift"},
    "shift:natural": RESAMPLING | {"shifts.natural", "shifts.new_data"},
    "shift:new-data": RESAMPLING | {"shifts.new_data"},
    "shift:retrain-seed": API | {"shifts.retrain_seed"},
    "shift:weight-perturbation": SEEDED | {"shifts.weight_perturbation"},
    **{
        f"metric:{name}": METRIC | {"metrics.recourse"}
        for name in ("cost-l1", "coverage", "validity", "violations")
    },
    **{
        f"metric:{name}": METRIC | {"metrics.robustness"}
        for name in ("invalidation-rate", "validity-after-update", "worst-case-validity")
    },
    **{
        f"metric:{name}": METRIC | {"metrics.distance"}
        for name in ("sparsity", "distance-l2", "ynn", "diversity")
    },
    # genre-score calls cost-l1: a metric object in a module's globals counts as its function's
    # module (metrics.recourse), not as its class's (api, infrastructure)
    **{
        f"metric:{name}": METRIC | {"metrics.oracle", "metrics.recourse", "seeding"}
        for name in ("oracle-validity", "plausibility-lof", "genre-score")
    },
    **{
        f"metric:{name}": SEEDED | {"certify", "metrics.certified"}
        for name in ("delta-robustness", "noise-invalidation")
    },
}
USES = {
    "method:trex": ["method:wachter"],
    "method:sns": ["method:growing-spheres", "method:wachter"],  # its base, either one
    "method:betarce": [
        "method:growing-spheres",
        *(f"shift:{name}" for name in ("architecture", "bootstrap", "retrain-seed")),
    ],
}


def _builtins() -> list[str]:
    found = []
    for kind in registry.KINDS:
        for name in registry.available(kind):
            plugin = registry.get(kind, name)
            module = getattr(plugin, "func", plugin).__module__
            if module.startswith("recourse_bench."):
                found.append(f"{kind}:{name}")
    return found


@pytest.mark.parametrize("component", _builtins())
def test_each_builtin_depends_on_exactly_its_pinned_code(component):
    kind, name = component.split(":", 1)
    found = registry.dependencies(kind, name)
    modules = {m.removeprefix("recourse_bench.") for m in found["modules"]}
    assert modules == DEPENDENCIES[component]
    assert found["uses"] == USES.get(component, [])


def test_no_key_covers_infrastructure():
    for kind, name in (c.split(":", 1) for c in _builtins()):
        for module in registry.dependencies(kind, name)["modules"]:
            assert not registry.is_infrastructure(module), (kind, name, module)
    stage_code = {m.removeprefix("recourse_bench.") for m in registry._modules_used(stages)}
    assert stage_code == {"harness.stages", "api", "datasets._files", "seeding"}
    scoring = {m.removeprefix("recourse_bench.") for m in registry._modules_used(evaluation)}
    assert scoring == {"harness.evaluation", "api"}


def test_a_component_obtained_from_the_registry_is_in_the_version(monkeypatch):
    before = {m: registry.component_version("method", m) for m in ("trex", "roar", "wachter")}
    wachter_module = registry.get("method", "wachter").__module__
    original = registry._module_source

    def edited(module):
        source = original(module)
        return source + b"\n# edited" if module.__name__ == wachter_module else source

    monkeypatch.setattr(registry, "_module_source", edited)
    registry._module_version.cache_clear()
    try:
        after = {m: registry.component_version("method", m) for m in before}
    finally:
        registry._module_version.cache_clear()
    assert after["wachter"] != before["wachter"]
    assert after["trex"] != before["trex"]  # trex obtains wachter from the registry
    assert after["roar"] == before["roar"]


# ------------------------------------------------------------------------- end to end, copied
CONFIG = {
    "name": "keys",
    "seeds": 1,
    "n_factuals": 15,
    "datasets": [{"name": "synthetic-gaussians", "params": {"n_samples": 300}}],
    "models": [{"name": "logreg", "params": {"epochs": 100}}],
    "methods": [
        {"name": "wachter", "params": {"n_rounds": 4, "steps": 40}},
        {"name": "trex", "params": {"n_samples": 50, "max_steps": 20}},
        "nearest-neighbour",
    ],
    "shifts": [{"name": "retrain-seed", "params": {"n_models": 2}}],
    "metrics": ["validity", "cost-l1", "invalidation-rate"],
}


@pytest.fixture
def package_copy(tmp_path):
    """A copy of the installed package, to edit, and a function running the CLI on it."""
    root = tmp_path / "copy"
    shutil.copytree(
        Path(recourse_bench.__file__).parent,
        root / "recourse_bench",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    config = tmp_path / "keys.yaml"
    config.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")

    def run(out: str, cache: str = "cache") -> dict:
        flags = ["--out", tmp_path / out, "--cache-dir", tmp_path / cache, "--force"]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "recourse_bench.cli",
                "run",
                config,
                "-q",
                "--no-report",
                *flags,
            ],
            env={**os.environ, "PYTHONPATH": str(root)},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        meta = json.loads((tmp_path / out / "run.json").read_text(encoding="utf-8"))
        frame = pd.read_parquet(tmp_path / out / "results.parquet")
        return {"stages": meta["stages"], "results": frame}

    def edit(relative: str, old: str, new: str) -> None:
        path = root / "recourse_bench" / relative
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {relative}"
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    return run, edit


def _computed(stages_run: dict) -> dict[str, int]:
    return {stage: s["units"] - s["cached"] for stage, s in stages_run.items()}


def test_editing_wachter_recomputes_trex_and_the_rows_are_fresh(package_copy):
    run, edit = package_copy
    first = run("a")
    assert _computed(first["stages"]) == {"base": 1, "updates": 1, "recourse": 3}
    edit("methods/wachter.py", "        lam: float = 0.1,", "        lam: float = 2.0,")
    second = run("a")
    # wachter and trex (built on wachter) recomputed; nearest neighbour and the models not
    assert _computed(second["stages"]) == {"base": 0, "updates": 0, "recourse": 2}
    fresh = run("b", cache="fresh-cache")  # the same code with an empty cache
    pd.testing.assert_frame_equal(second["results"], fresh["results"])
    cost = second["results"][second["results"]["metric"] == "cost-l1"]
    old_cost = first["results"][first["results"]["metric"] == "cost-l1"]
    changed = cost["value"].to_numpy() != old_cost["value"].to_numpy()
    assert changed.any()  # Wachter's new default moved its numbers: no stale rows were served


@pytest.mark.parametrize(
    ("module", "old", "new"),
    [
        ("registry.py", "choose another name for", "pick another name for"),
        (
            "harness/units.py",
            "(raise `timeout` in the config, or --timeout)",
            "(raise the timeout)",
        ),
        (
            "harness/runner.py",
            '"""Rows with status ``error`` or',
            '"""The rows of status ``error`` or',
        ),
        ("config.py", "keep one of them", "keep only one"),
        ("store.py", "run `recourse-bench run CONFIG` first", "run a config first"),
    ],
    ids=["registry", "units", "runner", "config", "store"],
)
def test_editing_infrastructure_recomputes_nothing(package_copy, module, old, new):
    run, edit = package_copy
    first = run("a")
    edit(module, old, new)
    second = run("a")
    assert _computed(second["stages"]) == {"base": 0, "updates": 0, "recourse": 0}
    pd.testing.assert_frame_equal(first["results"], second["results"])
