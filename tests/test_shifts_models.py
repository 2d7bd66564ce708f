"""The model-update shifts: architecture, hyperparameters, finetune and weight-perturbation."""

import numpy as np
import pytest
import torch
from sklearn._loss.loss import HalfBinomialLoss
from sklearn.linear_model import LogisticRegression

import recourse_bench.shifts.architecture
import recourse_bench.shifts.finetune
import recourse_bench.shifts.hyperparameters
import recourse_bench.shifts.weight_perturbation  # noqa: F401
from recourse_bench import load_config, registry
from recourse_bench.api import ConfigError, DataError, NotApplicable, Trainer
from recourse_bench.models._sklearn import SklearnClassifier
from recourse_bench.models._torch import continue_training

from .conftest import data_available

TRAINERS = {
    "logreg": {"epochs": 60},
    "mlp": {"epochs": 40, "hidden": (16, 16)},
    "forest": {"n_estimators": 10},
    "boosting": {"max_iter": 20},
}
SHIFTS = ["architecture", "hyperparameters", "finetune", "weight-perturbation"]
K = 3


def make_trainer(name: str, **params) -> Trainer:
    return registry.get("model", name)(**{**TRAINERS[name], **params})


def make_shift(name: str, **params):
    shift = registry.get("shift", name)(**params)
    shift.validate_params()
    return shift


def proba(model, X):
    return model.predict_proba(X)[:, 1]


@pytest.fixture(scope="module")
def gaussians():
    return registry.get("dataset", "synthetic-gaussians")(n_samples=400).load(0)


@pytest.fixture(scope="module")
def german():
    return registry.get("dataset", "german")().load(0)


@pytest.fixture(scope="module")
def bases(gaussians):
    """One base model per trainer on the Gaussians, trained once for the module."""
    return {
        name: make_trainer(name).fit(gaussians.X_train, gaussians.y_train, 0) for name in TRAINERS
    }


CELLS = [
    (shift, trainer)
    for shift in SHIFTS
    for trainer in TRAINERS
    if not (shift == "architecture" and trainer == "logreg")
]


@pytest.mark.parametrize(("shift_name", "trainer_name"), CELLS)
def test_invariants_of_every_shift_and_trainer(gaussians, bases, shift_name, trainer_name):
    splits, trainer, base = gaussians, make_trainer(trainer_name), bases[trainer_name]
    X = np.vstack([splits.X_test, splits.X_train])
    before = base.predict_proba(X)
    shift = make_shift(shift_name, n_models=K)
    models = shift.updates(splits, trainer, base, seed=7)
    again = shift.updates(splits, trainer, base, seed=7)
    np.testing.assert_array_equal(base.predict_proba(X), before)  # never mutated
    assert len(models) == len(again) == K
    for model, same in zip(models, again, strict=True):
        np.testing.assert_array_equal(model.predict_proba(X), same.predict_proba(X))
        assert model.predict_proba(X).shape == (len(X), 2)
    distinct = {proba(model, X).tobytes() for model in models}
    assert len(distinct) >= 2
    assert not all(np.array_equal(proba(model, X), before[:, 1]) for model in models)


@pytest.mark.parametrize("shift_name", ["finetune", "weight-perturbation"])
@pytest.mark.parametrize("trainer_name", list(TRAINERS))
def test_severity_zero_leaves_predictions_exactly_unchanged(
    gaussians, bases, shift_name, trainer_name
):
    splits, base = gaussians, bases[trainer_name]
    X = np.vstack([splits.X_test, splits.X_train])
    shift = make_shift(shift_name, severity=0, n_models=K)
    models = shift.updates(splits, make_trainer(trainer_name), base, seed=3)
    assert len(models) == K
    for model in models:
        assert model is not base
        np.testing.assert_array_equal(model.predict_proba(X), base.predict_proba(X))
        np.testing.assert_array_equal(model.predict(X), base.predict(X))


# ------------------------------------------------------------------------- weight-perturbation
@pytest.mark.parametrize("trainer_name", ["logreg", "mlp"])
def test_uniform_perturbation_of_torch_stays_in_the_box(bases, gaussians, trainer_name):
    base = bases[trainer_name]
    shift = make_shift("weight-perturbation", severity=0.1, n_models=K)
    for model in shift.updates(gaussians, make_trainer(trainer_name), base, seed=1):
        pairs = list(zip(base.net.parameters(), model.net.parameters(), strict=True))
        moves = torch.cat([(new - old).abs().reshape(-1) for old, new in pairs])
        assert moves.max() <= 0.1
        assert moves.min() > 0 and moves.max() > 0.05  # every coordinate moved, some far


def test_gaussian_perturbation_of_torch(bases, gaussians):
    base = bases["logreg"]
    shift = make_shift("weight-perturbation", severity=0.5, kind="gaussian", n_models=20)
    moves = np.concatenate(
        [
            model.coef_ - base.coef_
            for model in shift.updates(gaussians, make_trainer("logreg"), base, seed=1)
        ]
    )
    assert 0.4 < moves.std() < 0.6
    assert np.abs(moves).max() > 0.5  # unbounded, unlike the box


@pytest.mark.parametrize("trainer_name", ["logreg", "forest", "boosting"])
def test_perturbation_grows_with_severity(gaussians, bases, trainer_name):
    base = bases[trainer_name]
    X = gaussians.X_test
    changes = []
    for severity in (0.0, 0.05, 0.2):
        shift = make_shift("weight-perturbation", severity=severity, n_models=5)
        models = shift.updates(gaussians, make_trainer(trainer_name), base, seed=2)
        changes.append(np.mean([np.abs(proba(m, X) - proba(base, X)).mean() for m in models]))
    assert changes[0] == 0.0
    assert changes[0] < changes[1] < changes[2]


def test_forest_perturbation_shifts_class_fractions_within_the_box(gaussians, bases):
    base = bases["forest"]
    model = base.perturbed(0.1, "uniform", np.random.default_rng(0))
    for old, new in zip(base.estimator.estimators_, model.estimator.estimators_, strict=True):
        before, after = old.tree_.value[:, 0, :], new.tree_.value[:, 0, :]
        assert np.all((after >= 0) & (after <= 1))
        np.testing.assert_allclose(after.sum(axis=1), 1.0)
        assert np.all(np.abs(after[:, 1] - before[:, 1]) <= 0.1 + 1e-12)
        assert not np.array_equal(after, before)


def test_boosting_perturbation_adds_noise_to_every_node_value(bases):
    base = bases["boosting"]
    model = base.perturbed(0.1, "uniform", np.random.default_rng(0))
    pairs = zip(base.estimator._predictors, model.estimator._predictors, strict=True)
    for (old,), (new,) in pairs:
        moves = new.nodes["value"] - old.nodes["value"]
        assert np.all((np.abs(moves) <= 0.1) & (moves != 0))
        np.testing.assert_array_equal(new.nodes["num_threshold"], old.nodes["num_threshold"])


def test_weight_perturbation_not_applicable_without_perturbed(gaussians):
    class Plain:
        differentiable = linear = False

        def predict_proba(self, X):
            return np.full((len(X), 2), 0.5)

    shift = make_shift("weight-perturbation", n_models=2)
    with pytest.raises(NotApplicable, match="Plain"):
        shift.updates(gaussians, make_trainer("logreg"), Plain(), seed=0)
    other = SklearnClassifier(LogisticRegression().fit(gaussians.X_train, gaussians.y_train))
    with pytest.raises(NotApplicable, match="LogisticRegression"):
        shift.updates(gaussians, make_trainer("logreg"), other, seed=0)


# ------------------------------------------------------------------------------------ finetune
@pytest.mark.parametrize(
    ("trainer_name", "params"),
    [("mlp", {"epochs": 60, "hidden": (32, 32)}), ("forest", {"n_estimators": 20})],
)
def test_finetune_changes_the_model_more_with_severity(german, trainer_name, params):
    trainer = make_trainer(trainer_name, **params)
    base = trainer.fit(german.X_train, german.y_train, 0)
    labels = base.predict(german.X_test)
    disagreement = []
    for severity in (0.0, 0.25, 1.0):
        models = make_shift("finetune", severity=severity, n_models=5).updates(
            german, trainer, base, seed=4
        )
        disagreement.append(np.mean([(m.predict(german.X_test) != labels).mean() for m in models]))
    assert disagreement[0] == 0.0
    assert disagreement[0] <= disagreement[1] <= disagreement[2]
    assert disagreement[2] > 0


def test_torch_finetune_resumes_the_optimisation(gaussians):
    X, y = gaussians.X_train, gaussians.y_train
    full_batch = {"batch_size": None, "n_iter_no_change": None}  # fixed epochs, no shuffling
    trainer = make_trainer("mlp", epochs=30, **full_batch)
    base = trainer.fit(X, y, 0)
    resumed = continue_training(base, X, y, 9, 20, lr=trainer.lr, weight_decay=trainer.weight_decay)
    longer = make_trainer("mlp", epochs=50, **full_batch).fit(X, y, 0)  # the same trajectory
    np.testing.assert_allclose(
        resumed.decision_function(gaussians.X_test),
        longer.decision_function(gaussians.X_test),
        rtol=1e-9,
        atol=1e-9,
    )
    assert base.optimiser_state["state"][0]["step"] == 30  # the base's state is untouched


def test_torch_finetune_runs_round_severity_times_epochs(gaussians, bases):
    trainer = make_trainer("logreg", solver="adam")
    base = trainer.fit(gaussians.X_train, gaussians.y_train, 0)
    tuned = trainer.finetune(base, gaussians.X_train, gaussians.y_train, 1, 0.5)
    assert tuned.optimiser_state["state"][0]["step"] == 60 + 30


def test_forest_finetune_keeps_the_old_trees_and_adds_new_ones(gaussians, bases):
    base = bases["forest"]
    tuned = make_trainer("forest").finetune(base, gaussians.X_train, gaussians.y_train, 5, 0.5)
    assert len(base.estimator.estimators_) == 10
    assert len(tuned.estimator.estimators_) == 15
    for old, kept in zip(base.estimator.estimators_, tuned.estimator.estimators_, strict=False):
        np.testing.assert_array_equal(old.tree_.value, kept.tree_.value)
        np.testing.assert_array_equal(old.tree_.threshold, kept.tree_.threshold)


@pytest.mark.parametrize("trainer_name", ["forest", "boosting"])
def test_sklearn_finetune_needs_both_classes(gaussians, bases, trainer_name):
    X, y = gaussians.X_train[:20], np.ones(20, dtype=int)
    with pytest.raises(DataError, match="both classes"):
        make_trainer(trainer_name).finetune(bases[trainer_name], X, y, 0, 0.5)


def test_boosting_finetune_on_the_same_data_continues_the_fit(gaussians, bases):
    X, y = gaussians.X_train, gaussians.y_train
    base = bases["boosting"]
    tuned = make_trainer("boosting").finetune(base, X, y, 5, 0.5)
    assert tuned.estimator.n_iter_ == 30 and base.estimator.n_iter_ == 20
    longer = make_trainer("boosting", max_iter=30).fit(X, y, 0)
    np.testing.assert_allclose(
        tuned.estimator.decision_function(gaussians.X_test),
        longer.estimator.decision_function(gaussians.X_test),
        rtol=1e-7,
        atol=1e-7,
    )
    assert "_raw_predict" not in vars(tuned.estimator)


def test_boosting_finetune_starts_from_the_exact_log_odds_of_new_data(
    gaussians, bases, monkeypatch
):
    # scikit-learn's warm start would evaluate the old trees on the new data's bins
    starts = []
    original = HalfBinomialLoss.gradient_hessian

    def recording(self, y_true, raw_prediction, *args, **kwargs):
        starts.append(np.array(raw_prediction, copy=True).reshape(-1))
        return original(self, y_true, raw_prediction, *args, **kwargs)

    monkeypatch.setattr(HalfBinomialLoss, "gradient_hessian", recording)
    base = bases["boosting"]
    rows = np.random.default_rng(0).integers(0, len(gaussians.X_train), len(gaussians.X_train))
    X, y = gaussians.X_train[rows], gaussians.y_train[rows]
    make_trainer("boosting").finetune(base, X, y, 5, 0.1)
    assert len(starts) == 2
    np.testing.assert_allclose(starts[0], base.estimator._raw_predict(X).reshape(-1))


def test_finetune_resamples_with_the_draw_seed(gaussians, bases):
    calls = []

    class Recording(type(make_trainer("forest"))):
        def finetune(self, classifier, X, y, seed, severity):
            calls.append((X.copy(), seed, severity))
            return super().finetune(classifier, X, y, seed, severity)

    shift = make_shift("finetune", severity=0.3, n_models=2)
    shift.updates(gaussians, Recording(**TRAINERS["forest"]), bases["forest"], seed=0)
    seeds = shift.draw_seeds(0, 2)
    assert [seed for _, seed, _ in calls] == seeds
    assert all(severity == 0.3 for _, _, severity in calls)
    for X, seed, _ in calls:
        rows = np.random.default_rng(seed).integers(0, len(gaussians.X_train), len(X))
        np.testing.assert_array_equal(X, gaussians.X_train[rows])


def test_finetune_future_needs_a_future_split(gaussians, bases):
    shift = make_shift("finetune", data="future", n_models=2)
    with pytest.raises(NotApplicable, match="no future split"):
        shift.updates(gaussians, make_trainer("logreg"), bases["logreg"], seed=0)


@pytest.mark.skipif(not data_available(), reason="reference data folder absent")
def test_finetune_on_future_data(german):
    trainer = make_trainer("forest")
    base = trainer.fit(german.X_train, german.y_train, 0)
    models = make_shift("finetune", data="future", n_models=2).updates(german, trainer, base, 0)
    assert len(models) == 2
    assert len(models[0].estimator.estimators_) == 15


def test_finetune_not_applicable_without_finetune(gaussians, bases):
    class Bare(Trainer):
        def fit(self, X, y, seed):
            raise AssertionError("not called")

    with pytest.raises(NotApplicable, match="finetune"):
        make_shift("finetune", n_models=2).updates(gaussians, Bare(), bases["logreg"], 0)


# -------------------------------------------------------------------- architecture, hyperparams
def test_architecture_not_applicable_to_logreg(gaussians, bases):
    with pytest.raises(NotApplicable, match="logreg has no architecture to vary"):
        make_shift("architecture").updates(gaussians, make_trainer("logreg"), bases["logreg"], 0)


def test_architecture_cycles_over_the_other_variants():
    shift = make_shift("architecture", n_models=5)
    built = shift.trainers(make_trainer("mlp", hidden=[32, 32]), seed=0)
    assert [tuple(t.hidden) for t, _ in built] == [(16,), (64,), (64, 64), (32, 32, 32), (16,)]
    assert all(t.epochs == 40 for t, _ in built)
    assert [seed for _, seed in built] == shift.draw_seeds(0, 5)

    forest = make_shift("architecture", n_models=11).trainers(make_trainer("forest"), seed=0)
    shapes = {(t.max_depth, t.n_estimators) for t, _ in forest}
    assert len(shapes) == 11 and (None, 10) not in shapes
    assert {d for d, _ in shapes} == {4, 8, 16, None} and {n for _, n in shapes} == {5, 10, 20}

    boosting = make_shift("architecture", n_models=12).trainers(make_trainer("boosting"), seed=0)
    shapes = [(t.max_leaf_nodes, t.max_iter) for t, _ in boosting]
    assert (31, 20) not in shapes and {leaves for leaves, _ in shapes} == {8, 15, 31, 63}


def test_hyperparameters_severity_zero_keeps_them_with_new_seeds():
    for name in TRAINERS:
        trainer = make_trainer(name)
        shift = make_shift("hyperparameters", severity=0, n_models=4)
        built = shift.trainers(trainer, seed=5)
        assert [seed for _, seed in built] == shift.draw_seeds(5, 4)
        assert len({seed for _, seed in built}) == 4
        for new, _ in built:
            assert new.get_params() == trainer.get_params()
            for key in trainer.tunable_hyperparameters:
                assert type(getattr(new, key)) is type(getattr(trainer, key))


def test_hyperparameters_move_within_the_severity_range():
    shift = make_shift("hyperparameters", severity=1.0, n_models=10)
    for name in ("mlp", "forest", "boosting"):
        trainer = make_trainer(name)
        built = shift.trainers(trainer, seed=0)
        for key in trainer.tunable_hyperparameters:
            value = getattr(trainer, key)
            moved = [getattr(t, key) for t, _ in built]
            assert len(set(moved)) > 1
            if isinstance(value, int):  # rounded, kept >= 1
                assert all(isinstance(v, int) for v in moved)
                assert all(max(1, round(value / 2)) <= v <= 2 * value for v in moved)
            else:
                assert all(value / 2 <= v <= 2 * value for v in moved)
    forest = make_shift("hyperparameters", severity=3.0, n_models=10).trainers(
        make_trainer("forest"), seed=0
    )
    assert all(t.min_samples_leaf >= 1 for t, _ in forest)


def test_hyperparameters_not_applicable_without_tunables(gaussians, bases):
    class Bare(Trainer):
        def fit(self, X, y, seed):
            raise AssertionError("not called")

    with pytest.raises(NotApplicable, match="tunable_hyperparameters"):
        make_shift("hyperparameters", n_models=2).updates(gaussians, Bare(), bases["logreg"], 0)


# ------------------------------------------------------------------------------------- params
@pytest.mark.parametrize(
    ("name", "params", "bad"),
    [
        ("architecture", {"n_models": 0}, "n_models"),
        ("hyperparameters", {"severity": -1}, "severity"),
        ("hyperparameters", {"n_models": 2.5}, "n_models"),
        ("finetune", {"severity": "much"}, "severity"),
        ("finetune", {"data": "tomorrow"}, "data"),
        ("weight-perturbation", {"severity": -0.1}, "severity"),
        ("weight-perturbation", {"kind": "laplace"}, "kind"),
        ("weight-perturbation", {"n_models": True}, "n_models"),
    ],
)
def test_invalid_parameters_raise_config_error(gaussians, bases, tiny_config, name, params, bad):
    shift = registry.get("shift", name)(**params)
    with pytest.raises(ConfigError, match=bad):
        shift.validate_params()
    with pytest.raises(ConfigError, match=bad):  # an entry point validates first
        shift.updates(gaussians, make_trainer("forest"), bases["forest"], 0)
    with pytest.raises(ConfigError, match=bad):  # and a config, when the spec is built
        load_config({**tiny_config, "shifts": [{"name": name, "params": params}]})


def test_defaults_and_registration():
    assert registry.get("shift", "architecture").param_defaults() == {"n_models": 10}
    assert registry.get("shift", "hyperparameters").param_defaults() == {
        "severity": 1.0,
        "n_models": 10,
    }
    assert registry.get("shift", "finetune").param_defaults() == {
        "severity": 0.5,
        "data": "train",
        "n_models": 10,
    }
    assert registry.get("shift", "weight-perturbation").param_defaults() == {
        "severity": 0.05,
        "kind": "uniform",
        "n_models": 10,
    }
    assert registry.get("shift", "weight-perturbation")().severity_value == 0.05


def test_finetune_severity_is_a_share_of_the_epochs_the_base_model_trained(gaussians):
    X, y = gaussians.X_train, gaussians.y_train
    trainer = make_trainer("mlp", epochs=200, batch_size=64, tol=1e-3, n_iter_no_change=3)
    base = trainer.fit(X, y, 0)
    assert 0 < base.epochs_trained < 200  # it stopped early
    tuned = trainer.finetune(base, X, y, 1, 0.5)
    more = round(0.5 * base.epochs_trained)
    assert tuned.epochs_trained == base.epochs_trained + more
    steps_per_epoch = -(-len(X) // 64)
    step = tuned.optimiser_state["state"][0]["step"]
    assert step == base.optimiser_state["state"][0]["step"] + more * steps_per_epoch
