"""The conformance kits of datasets, models, shifts and metrics: built-ins pass, faults fail.

Each broken plugin below has one fault, and must fail the check for it with a message that says
what was expected, what came and how to fix it.
"""

import numpy as np
import pytest

from recourse_bench import Dataset, Shift, Trainer, registry
from recourse_bench.api import Interval, MetricValue, Splits
from recourse_bench.metrics import metric
from recourse_bench.testing import KITS, check_component, run_component_check, toy_splits

from .conftest import ROOT


def _failed(component) -> dict[str, str]:
    return {
        r.name: r.message for r in check_component(component, raise_on_failure=False) if not r.ok
    }


@pytest.mark.parametrize("name", registry.available("model"))
def test_every_builtin_model_passes_its_kit(name):
    check_component(registry.get("model", name)())


@pytest.mark.parametrize("name", registry.available("shift"))
def test_every_builtin_shift_passes_its_kit(name):
    check_component(registry.get("shift", name)())


@pytest.mark.parametrize("name", registry.available("metric"))
def test_every_builtin_metric_passes_its_kit(name):
    check_component(registry.get("metric", name))


# --------------------------------------------------------------------------- broken plugins
class ShiftedFeatures(Dataset):
    """Toy data with every feature moved outside [0, 1]."""

    def load(self, seed):
        splits = toy_splits(seed)
        return Splits(
            splits.X_train + 2, splits.y_train, splits.X_test, splits.y_test, splits.schema
        )


class ForgetfulSeed(Trainer):
    """A logistic regression trained with a fresh seed each time (not reproducible)."""

    calls = [0]

    def fit(self, X, y, seed):
        self.calls[0] += 1
        return registry.get("model", "logreg")(solver="adam", epochs=20).fit(
            X, y, seed + self.calls[0]
        )


class MutatingShift(Shift):
    """Returns the base model after overwriting its weights in place."""

    parameter_constraints = {"n_models": (Interval("int", low=1),)}

    def __init__(self, n_models: int = 2):
        self.n_models = n_models

    def updates(self, splits, trainer, base_model, seed):
        import torch

        with torch.no_grad():
            for parameter in base_model.net.parameters():
                parameter.add_(1.0)
        return [base_model] * self.n_models


class NeedsFinetuneSilently(Shift):
    """Calls ``trainer.finetune`` without declaring that it needs it."""

    parameter_constraints = {"n_models": (Interval("int", low=1),)}

    def __init__(self, n_models: int = 2):
        self.n_models = n_models

    def updates(self, splits, trainer, base_model, seed):
        return [
            trainer.finetune(base_model, splits.X_train, splits.y_train, s, 0.5)
            for s in self.draw_seeds(seed, self.n_models)
        ]


@metric("out-of-bounds-share", stage="static", higher_is_better=True)
def out_of_bounds_share(ctx):
    """A 'share' that can exceed 1."""
    return MetricValue(2.0, len(ctx.factuals))


@pytest.mark.parametrize(
    ("component", "check", "expected"),
    [
        (ShiftedFeatures(), "check_features_in_the_unit_box", "X_train within [0, 1]"),
        (ForgetfulSeed(), "check_deterministic_for_a_seed", "the same model"),
        (ForgetfulSeed(), "check_parameter_constraints", None),
        (MutatingShift(), "check_inputs_not_mutated", "updates to leave its inputs unchanged"),
        (NeedsFinetuneSilently(), "check_capabilities_declared", "trainer_needs"),
        (out_of_bounds_share, "check_value_and_count", "within the declared bounds [0, 1]"),
    ],
    ids=["dataset", "model", "model-params", "shift", "shift-capabilities", "metric"],
)
def test_a_broken_plugin_fails_its_check_with_expected_got_and_fix(component, check, expected):
    result = run_component_check(component, check)
    if expected is None:  # a class without parameters declares none: that passes
        assert result.status == "passed"
        return
    assert result.status == "failed", result
    assert result.message.startswith("expected ") and "; got " in result.message
    assert "To fix: " in result.message and expected in result.message


def test_each_kit_checks_every_component_the_same_way():
    for kind in ("dataset", "model", "shift"):
        assert {
            "check_init_stores_params",
            "check_parameter_constraints",
            "check_params_round_trip",
        } <= set(KITS[kind])


def test_a_broken_dataset_fails_exactly_its_fault():
    failed = _failed(ShiftedFeatures())
    assert set(failed) == {
        "check_features_in_the_unit_box",
        "check_schema_matches_the_columns",
        "check_scaled_on_the_training_split",
    }  # one fault, seen from the three sides a dataset is checked


# ------------------------------------------------------------------------------- the command
def test_check_runs_the_kit_of_every_plugin_a_file_registers(run_cli):
    plugins = [ROOT / "examples" / f for f in ("loan_applicants.py", "label_noise.py")]
    plugins.append(ROOT / "examples" / "shrunk_neighbour.py")
    code, out, _ = run_cli("check", *[arg for p in plugins for arg in ("--plugin", p)])
    assert code == 0
    assert "## dataset loan-applicants: passes" in out
    assert "## shift label-noise(severity=0.1): passes" in out
    assert "## method shrunk-neighbour: passes" in out
    assert "| check_schema_matches_the_columns | passed |" in out
    assert "| check_capabilities_declared | passed |" in out
    code, out, _ = run_cli("check", "shifts", "bootstrap")
    assert code == 0 and "## shift bootstrap(severity=0.0): passes" in out


def test_check_exits_1_and_says_what_to_fix_for_a_broken_plugin(tmp_path, run_cli):
    plugin = tmp_path / "broken_dataset.py"
    plugin.write_text(
        "from recourse_bench import Dataset, register\n"
        "from recourse_bench.api import Splits\n"
        "from recourse_bench.testing import toy_splits\n"
        "@register('dataset', 'outside-the-box')\n"
        "class Outside(Dataset):\n"
        "    def load(self, seed):\n"
        "        s = toy_splits(seed)\n"
        "        return Splits(s.X_train * 3, s.y_train, s.X_test, s.y_test, s.schema)\n",
        encoding="utf-8",
    )
    code, out, _ = run_cli("check", "--plugin", plugin)
    assert code == 1 and "## dataset outside-the-box: fails 3 of" in out
    assert "| check_features_in_the_unit_box | failed |" in out and "To fix: scale every" in out


def test_the_example_dataset_exposes_its_true_concept():
    registry.load_plugin_file(ROOT / "examples" / "loan_applicants.py")
    dataset = registry.get("dataset", "loan-applicants")(n_samples=400)
    splits = dataset.load(3)
    raw = splits.encoder.inverse_transform(splits.X_train)
    oracle_log_odds = splits.oracle.decision_function(splits.X_train)
    np.testing.assert_allclose(oracle_log_odds, dataset.score(raw), atol=1e-4)


def test_the_example_shift_flips_a_severity_share_of_the_labels():
    registry.load_plugin_file(ROOT / "examples" / "label_noise.py")
    shift = registry.get("shift", "label-noise")(severity=0.0, n_models=2)
    splits = toy_splits(0)
    trainer = registry.get("model", "logreg")(epochs=50)
    base = trainer.fit(splits.X_train, splits.y_train, 0)
    same = shift.updates(splits, trainer, base, 1)
    again = [trainer.fit(splits.X_train, splits.y_train, s) for s in shift.draw_seeds(1, 2)]
    for a, b in zip(same, again, strict=True):  # severity 0: retraining on the same labels
        np.testing.assert_array_equal(
            a.predict_proba(splits.X_test), b.predict_proba(splits.X_test)
        )
