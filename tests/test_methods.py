"""The contract every built-in recourse method keeps, on German and on synthetic data.

One test parametrised over the registry (a new built-in method is covered by adding nothing): a
recourse from every method breaks no immutable, bound, direction or one-hot group, is accepted by
the model it was made for, and a gradient method is skipped with a reason on a random forest.
"""

from __future__ import annotations

import numpy as np
import pytest

from recourse_bench import registry
from recourse_bench.api import DataError, NotApplicable, RecourseMethod, Splits, model_has
from recourse_bench.testing import toy_splits

from .conftest import assert_recourse_contract, builtin_methods

N_FACTUALS = 30
PROBLEMS = [
    ("toy", {}, "logreg"),
    ("toy", {}, "mlp"),
    ("toy", {}, "svm"),
    ("german", {}, "logreg"),
    ("german", {}, "mlp"),
    ("german", {}, "forest"),
    ("synthetic-gaussians", {"n_features": 5, "n_samples": 600}, "mlp"),
    ("synthetic-gaussians", {"n_features": 5, "n_samples": 600}, "forest"),
]


def load(dataset: str, params: dict) -> Splits:
    """The splits of a problem: the hand-made toy one or a registered dataset."""
    if dataset == "toy":
        return toy_splits(0, n=1500)  # the kit's toy problem, with more rows
    return registry.get("dataset", dataset)(**params).load(0)


def method_with_defaults(name: str) -> RecourseMethod:
    """Method ``name`` with ``random_state=0`` and its ``_test_params`` (a short training budget;
    the defaults are exercised by the benchmarks)."""
    cls = registry.get("method", name)
    return cls(random_state=0, **getattr(cls, "_test_params", {}))


def usable_model(name: str, model_name: str) -> str:
    """``model_name``, or the forest for a method that needs trees; the linear model for a
    method with a wall-clock budget (``mcer``'s ``time_limit``), whose results repeat only
    where the budget does not bind: on the linear model its programs are small."""
    method = registry.get("method", name)
    if "trees" in method.tags.needs:
        return "forest"
    return "logreg" if "time_limit" in method().get_params() else model_name


def usable_problem(problems: dict, name: str, model_name: str) -> tuple:
    """German with ``model_name``, or with the forest for a method that needs trees."""
    return problems["german", usable_model(name, model_name)]


@pytest.fixture(scope="module")
def problems():
    """Splits, a trained model and rejected factuals per problem, built once."""
    built = {}
    for dataset, params, model_name in PROBLEMS:
        splits = load(dataset, params)
        model = registry.get("model", model_name)().fit(splits.X_train, splits.y_train, seed=0)
        factuals = splits.X_test[model.predict(splits.X_test) == 0][:N_FACTUALS]
        built[dataset, model_name] = (splits, model, factuals)
    return built


def fitted(name: str, model_name: str, model, splits: Splits) -> RecourseMethod:
    """Method ``name`` (test defaults), told its model's trainer as the harness does, fitted."""
    trainer = registry.get("model", model_name)()
    return method_with_defaults(name).use_trainer(trainer).fit(model, splits)


def test_every_method_of_the_specification_is_registered():
    expected = {"wachter", "growing-spheres", "nearest-neighbour", "roar", "probe", "trex", "genre"}
    expected |= {"dice", "ar", "face", "revise", "cchvae", "cruds", "feature-tweak"}
    assert expected <= set(builtin_methods())


@pytest.mark.parametrize("problem", [f"{d}/{m}" for d, _, m in PROBLEMS])
@pytest.mark.parametrize("name", builtin_methods())
def test_recourses_keep_the_schema_and_are_accepted(problems, name, problem):
    dataset, model_name = problem.split("/")
    splits, model, factuals = problems[dataset, model_name]
    method = method_with_defaults(name)
    reason = method.skip_reason(model)
    # what `list methods` says (runs on) agrees with what the method does on a fitted model
    assert method.tags.runs_on(registry.get("model", model_name)) == (reason is None), reason
    lacking = [need for need in method.tags.needs if not model_has(model, need)]
    if lacking:  # e.g. a gradient method on a forest, feature-tweak on an MLP
        assert reason and name in reason, (lacking, reason)
        return
    if reason is not None:
        pytest.fail(f"{name} refused {model_name} without declaring why in its tags: {reason}")
    before = factuals.copy()
    method.use_trainer(registry.get("model", model_name)()).fit(model, splits)
    recourses = method.generate(factuals)
    np.testing.assert_array_equal(factuals, before)  # the input is not mutated
    found = assert_recourse_contract(splits.schema, model, factuals, recourses)
    assert found.any(), f"{name} found no recourse at all on {problem}"


@pytest.mark.parametrize("name", builtin_methods())
def test_a_fitted_method_pickles_and_generates_the_same(problems, name):
    import pickle

    splits, model, factuals = usable_problem(problems, name, "mlp")
    method = fitted(name, usable_model(name, "mlp"), model, splits)
    copy = pickle.loads(pickle.dumps(method))
    np.testing.assert_array_equal(method.generate(factuals[:5]), copy.generate(factuals[:5]))


@pytest.mark.parametrize("name", builtin_methods())
def test_generate_works_under_no_grad(problems, name):
    import torch

    splits, model, factuals = usable_problem(problems, name, "mlp")
    method = fitted(name, usable_model(name, "mlp"), model, splits)
    expected = method.generate(factuals[:5])
    with torch.no_grad():
        np.testing.assert_array_equal(method.generate(factuals[:5]), expected)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (lambda X: X[0], "2-D array"),
        (lambda X: X[:, :-1], "columns"),
        (lambda X: np.where(np.arange(X.shape[1]) == 0, np.nan, X), "NaN or inf"),
    ],
)
@pytest.mark.parametrize("name", builtin_methods())
def test_unusable_factuals_get_one_clear_error(problems, name, bad, message):
    splits, model, factuals = usable_problem(problems, name, "logreg")
    method = fitted(name, usable_model(name, "logreg"), model, splits)
    with pytest.raises(DataError, match=message):
        method.generate(bad(factuals[:3]))


@pytest.mark.parametrize("name", builtin_methods())
def test_fit_refuses_a_model_the_method_cannot_use(problems, name):
    for model_name in ("forest", "mlp"):
        splits, model, _ = problems["german", model_name]
        method = method_with_defaults(name).use_trainer(registry.get("model", model_name)())
        if method.skip_reason(model) is None:
            method.fit(model, splits)
        else:
            with pytest.raises(NotApplicable, match=name):
                method.fit(model, splits)


@pytest.mark.parametrize(
    ("name", "params"),
    [("wachter", {"lam": float("inf")}), ("roar", {"delta_max": float("inf")})],
)
def test_infinite_parameters_are_refused(name, params):
    from recourse_bench.api import ConfigError

    with pytest.raises(ConfigError, match="must be a number"):
        registry.get("method", name)(**params).validate_params()
