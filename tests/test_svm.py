"""The linear SVM: LinearSVC's optimum, Platt's calibration, and every shift and gradient method.

Tolerances: with ``calibration=0`` the SVM is fitted on exactly the rows LinearSVC sees, and
both minimise the same strictly convex objective (squared hinge, intercept penalised as a
weight on a constant 1), whose minimiser is unique. A tightly converged LinearSVC
(``dual=False``, ``tol=1e-12``) is the reference; Newton stops at a gradient of 1e-8 on the
objective divided by C n, which leaves the decision function within about 1e-7 (toy data) and
4e-7 (Adult, decision values up to 10) of it, so we require 1e-5 times (1 + the largest
decision value). LinearSVC at its default ``tol=1e-4`` is itself 6e-3 away on Adult. The
hinge loss is not differentiable and its optimum is flat, so there we compare the objective
(relative 1e-5) and the predicted labels (99 %).
"""

import numpy as np
import pytest
from scipy.optimize import minimize
from sklearn.svm import LinearSVC

import recourse_bench.methods.ar  # noqa: F401
import recourse_bench.models.svm as svm
from recourse_bench import registry
from recourse_bench.api import ConfigError, NotApplicable
from recourse_bench.models.svm import LinearSVM, SVMClassifier, platt_scaling
from recourse_bench.testing import check_component, toy_splits

from .conftest import assert_recourse_contract


@pytest.fixture(scope="module")
def toy():
    return toy_splits(0)


@pytest.fixture(scope="module")
def adult():
    return registry.get("dataset", "adult")().load(0)


def primal(X, y, w, b, C, loss):
    margins = (2 * y - 1) * (X @ w + b)
    slack = np.maximum(0.0, 1.0 - margins)
    return 0.5 * (w @ w + b * b) + C * np.sum(slack**2 if loss == "squared_hinge" else slack)


@pytest.mark.parametrize("C", [0.1, 1.0, 10.0])
def test_decision_function_equals_linearsvc_on_toy_data(toy, C):
    model = LinearSVM(C=C, calibration=0).fit(toy.X_train, toy.y_train, 0)
    reference = LinearSVC(C=C, dual=False, tol=1e-12, max_iter=100_000).fit(
        toy.X_train, toy.y_train
    )
    f_ref = reference.decision_function(toy.X_test)
    f = model.svm_decision_function(toy.X_test)
    assert np.abs(f - f_ref).max() <= 1e-5 * (1 + np.abs(f_ref).max())
    ours = primal(
        toy.X_train, toy.y_train, model.svm_coef_, model.svm_intercept_, C, "squared_hinge"
    )
    theirs = primal(
        toy.X_train, toy.y_train, reference.coef_[0], reference.intercept_[0], C, "squared_hinge"
    )
    assert ours <= theirs * (1 + 1e-9)


def test_decision_function_equals_linearsvc_on_adult(adult):
    model = LinearSVM(calibration=0).fit(adult.X_train, adult.y_train, 0)
    reference = LinearSVC(dual=False, tol=1e-12, max_iter=100_000).fit(adult.X_train, adult.y_train)
    f_ref = reference.decision_function(adult.X_test)
    f = model.svm_decision_function(adult.X_test)
    assert np.abs(f - f_ref).max() <= 1e-5 * (1 + np.abs(f_ref).max())


def test_hinge_loss_reaches_linearsvcs_objective(toy):
    model = LinearSVM(loss="hinge", calibration=0).fit(toy.X_train, toy.y_train, 0)
    reference = LinearSVC(loss="hinge", dual=True, tol=1e-10, max_iter=1_000_000).fit(
        toy.X_train, toy.y_train
    )
    X, y = toy.X_train, toy.y_train
    ours = primal(X, y, model.svm_coef_, model.svm_intercept_, 1.0, "hinge")
    theirs = primal(X, y, reference.coef_[0], reference.intercept_[0], 1.0, "hinge")
    assert ours <= theirs * (1 + 1e-5)
    agree = np.sign(model.svm_decision_function(toy.X_test)) == np.sign(
        reference.decision_function(toy.X_test)
    )
    assert agree.mean() >= 0.99


def test_platt_scaling_minimises_platts_objective():
    rng = np.random.default_rng(0)
    f = rng.normal(size=300)
    y = (rng.uniform(size=300) < 1 / (1 + np.exp(-2 * f + 0.3))).astype(int)
    a, b = platt_scaling(f, y)
    n_pos, n_neg = y.sum(), (1 - y).sum()
    target = np.where(y == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))

    def loss(theta):
        s = theta[0] * f + theta[1]
        return np.sum(np.logaddexp(0, s) - target * s)

    best = minimize(loss, [1.0, 0.0], method="BFGS", options={"gtol": 1e-10})
    np.testing.assert_allclose([a, b], best.x, atol=1e-5)
    assert a == pytest.approx(2.0, abs=0.5)


def test_the_classifier_is_the_platt_composed_linear_model(toy):
    model = LinearSVM().fit(toy.X_train, toy.y_train, 0)
    assert isinstance(model, SVMClassifier) and model.linear and model.differentiable
    a, b = model.platt_
    X = np.vstack([toy.X_train, toy.X_test])
    f = model.svm_decision_function(X)
    np.testing.assert_allclose(model.coef_, a * model.svm_coef_)
    assert model.intercept_ == pytest.approx(a * model.svm_intercept_ + b)
    # catalogue A6 oracles: predict = 1[w'x + b' >= 0]; the Platt map keeps the ranking
    np.testing.assert_array_equal(model.predict(X), (X @ model.coef_ + model.intercept_ >= 0))
    p = model.predict_proba(X)[:, 1]
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-(a * f + b))), rtol=1e-12)
    assert a > 0
    order = np.argsort(f)
    assert np.all(np.diff(p[order]) >= -1e-15)


def test_calibration_is_held_out_per_class_and_seeded(toy):
    trainer = LinearSVM(calibration=0.25)
    fit_rows, held = trainer.split(toy.y_train, seed=3)
    assert not set(fit_rows) & set(held)
    assert len(fit_rows) + len(held) == len(toy.y_train)
    for label in (0, 1):
        share = (toy.y_train[held] == label).sum() / (toy.y_train == label).sum()
        assert share == pytest.approx(0.25, abs=0.01)
    _, held_again = trainer.split(toy.y_train, seed=3)
    np.testing.assert_array_equal(held, held_again)
    assert not np.array_equal(held, trainer.split(toy.y_train, seed=4)[1])
    every, same = LinearSVM(calibration=0).split(toy.y_train, seed=3)
    np.testing.assert_array_equal(every, same)


def test_model_kit_passes():
    results = check_component(LinearSVM())
    assert {r.status for r in results} == {"passed"}


# ------------------------------------------------------------------------------------ shifts
@pytest.mark.parametrize("name", registry.available("shift"))
def test_every_shift_updates_the_svm_or_says_why_not(toy, name):
    cls = registry.get("shift", name)
    shift = cls(n_models=2) if "n_models" in cls.param_names() else cls()
    trainer = LinearSVM()
    base = trainer.fit(toy.X_train, toy.y_train, 0)
    before = base.predict_proba(toy.X_test)
    if name == "architecture":
        with pytest.raises(NotApplicable, match="no architecture to vary"):
            shift.updates(toy, trainer, base, 0)
        return
    models = shift.updates(toy, trainer, base, 0)
    assert len(models) == 2
    for model in models:
        assert model.linear and model.differentiable
        proba = model.predict_proba(toy.X_test)
        assert proba.shape == before.shape and np.isfinite(proba).all()
    np.testing.assert_array_equal(base.predict_proba(toy.X_test), before)  # base untouched


def test_finetune_severity_zero_is_an_exact_copy_and_more_moves_the_model(toy):
    trainer = LinearSVM()
    base = trainer.fit(toy.X_train, toy.y_train, 0)
    copy = trainer.finetune(base, toy.X_train[:100], toy.y_train[:100], 1, 0.0)
    assert copy is not base
    np.testing.assert_array_equal(copy.predict_proba(toy.X_test), base.predict_proba(toy.X_test))
    moved = trainer.finetune(base, toy.X_train[:100], toy.y_train[:100], 1, 1.0)
    assert not np.allclose(moved.svm_coef_, base.svm_coef_)
    # converged fine-tuning is the SVM of the new data (strictly convex objective)
    fresh = trainer.fit(toy.X_train[:100], toy.y_train[:100], 1)
    np.testing.assert_allclose(moved.svm_coef_, fresh.svm_coef_, atol=1e-4)
    with pytest.raises(ConfigError, match="severity"):
        trainer.finetune(base, toy.X_train, toy.y_train, 1, -1.0)


def test_weight_perturbation_moves_the_calibrated_log_odds(toy):
    base = LinearSVM().fit(toy.X_train, toy.y_train, 0)
    same = base.perturbed(0.0, "uniform", np.random.default_rng(0))
    np.testing.assert_array_equal(same.predict_proba(toy.X_test), base.predict_proba(toy.X_test))
    moved = base.perturbed(0.1, "uniform", np.random.default_rng(0))
    shift = np.append(moved.coef_ - base.coef_, moved.intercept_ - base.intercept_)
    assert 0 < np.abs(shift).max() <= 0.1


def test_hyperparameters_shift_perturbs_c(toy):
    shift = registry.get("shift", "hyperparameters")(severity=1.0, n_models=3)
    changes = [shift.changes(LinearSVM(), s) for s in (1, 2, 3)]
    assert all(set(c) == {"C"} and 0.5 <= c["C"] <= 2.0 for c in changes)


# ------------------------------------------------------------------------------ batching
def test_fit_many_equals_fit_per_model_on_samples_of_different_sizes(toy):
    X, y = toy.X_train, toy.y_train
    rng = np.random.default_rng(0)
    rows = [rng.integers(0, len(X), size) for size in (len(X), 150, 60)]
    samples = [(X[r], y[r]) for r in rows]
    trainer = LinearSVM(C=0.5)
    many = trainer.fit_many(samples, [4, 5, 6])
    assert all(isinstance(model, SVMClassifier) for model in many)
    for model, (X_k, y_k), seed in zip(many, samples, [4, 5, 6], strict=True):
        alone = trainer.fit(X_k, y_k, seed)  # its own calibration split, from its own seed
        np.testing.assert_allclose(model.svm_coef_, alone.svm_coef_, rtol=0, atol=1e-12)
        assert model.platt_ == pytest.approx(alone.platt_, abs=1e-9)  # summation order
    assert not np.allclose(many[1].svm_coef_, many[2].svm_coef_, atol=1e-3)  # samples differ
    again = trainer.fit_many(samples, [4, 5, 6])
    for first, second in zip(many, again, strict=True):
        np.testing.assert_array_equal(first.svm_coef_, second.svm_coef_)
    assert trainer.fit_many([], []) == []


def test_fit_each_solves_c_variants_as_one_newton_batch(toy, monkeypatch):
    X, y = toy.X_train, toy.y_train
    trainers = [
        LinearSVM(C=0.5),
        LinearSVM(loss="hinge"),  # L-BFGS, on its own
        LinearSVM(C=2.0),
        LinearSVM(C=1.0, calibration=0.3),  # another split share: another batch
    ]
    samples = [(X, y), (X, y), (X[:200], y[:200]), (X, y)]
    calls = []
    original = LinearSVM.hyperplanes

    def recording(self, samples, Cs, start, max_iter):
        calls.append(list(Cs))
        return original(self, samples, Cs, start, max_iter)

    monkeypatch.setattr(LinearSVM, "hyperplanes", recording)
    models = LinearSVM().fit_each(trainers, samples, [1, 2, 3, 4])
    monkeypatch.undo()
    assert calls == [[0.5, 2.0], [1.0]]
    for model, trainer, (X_k, y_k), seed in zip(
        models, trainers, samples, [1, 2, 3, 4], strict=True
    ):
        alone = trainer.fit(X_k, y_k, seed)
        np.testing.assert_allclose(model.svm_coef_, alone.svm_coef_, rtol=0, atol=1e-10)


def test_squared_hinge_newton_reaches_its_tolerance_and_the_primal_optimum(toy):
    from recourse_bench.models._newton import SQUARED_HINGE, fit_linear

    X, y = toy.X_train, toy.y_train
    result = fit_linear([(X, y)], 1.0 / len(y), loss=SQUARED_HINGE, tol=1e-10, max_iter=100)
    assert result.gradient[0] <= 1e-10 and result.iterations[0] < 30
    w, b = result.coef[0], result.intercept[0]
    theta = np.append(w, b)
    found = minimize(
        lambda t: primal(X, y, t[:-1], t[-1], 1.0, "squared_hinge"),
        np.zeros_like(theta),
        method="L-BFGS-B",
        options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10_000},
    )
    assert primal(X, y, w, b, 1.0, "squared_hinge") <= found.fun * (1 + 1e-10)


# ------------------------------------------------------------------------------- methods
@pytest.mark.parametrize("method", ["wachter", "roar", "probe", "trex", "ar"])
def test_gradient_and_linear_methods_run_on_the_svm(toy, method):
    model = LinearSVM().fit(toy.X_train, toy.y_train, 0)
    factuals = toy.X_test[model.predict(toy.X_test) == 0][:15]
    recourses = registry.get("method", method)(random_state=0).fit(model, toy).generate(factuals)
    assert_recourse_contract(toy.schema, model, factuals, recourses, min_coverage=0.8)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"C": 0}, "C must be"),
        ({"loss": "log"}, "loss must be"),
        ({"calibration": 1.0}, "calibration must be"),
        ({"max_iter": 0}, "max_iter"),
    ],
)
def test_invalid_parameters_are_rejected(toy, params, message):
    with pytest.raises(ConfigError, match=message):
        LinearSVM(**params).fit(toy.X_train, toy.y_train, 0)


def test_module_registers_the_model():
    assert registry.get("model", "svm") is svm.LinearSVM
