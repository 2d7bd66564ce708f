"""Dataset options: the encodings of categorical features, and the actionability choices."""

import numpy as np
import pytest

from recourse_bench import registry
from recourse_bench.api import ConfigError
from recourse_bench.datasets import german


@pytest.fixture(scope="module")
def onehot():
    return registry.get("dataset", "german")().load(3)


@pytest.fixture(scope="module")
def ordinal():
    return registry.get("dataset", "german")(encoding="ordinal").load(3)


def multilevel(splits):
    """Names of the categorical features of more than two levels."""
    return [c.name for c in splits.encoder.columns if c.kind == "categorical"]


def test_ordinal_codes_are_levels_on_a_grid(ordinal):
    schema = ordinal.schema
    names = multilevel(ordinal)
    assert len(names) == 11 and schema.groups == ()
    assert schema.n_features == 20  # German's 20 raw features, one column each
    for name in names:
        j = schema.features.index(name)
        levels = len(german.CATEGORIES[name])
        assert schema.kinds[j] == "ordinal"
        assert schema.steps[j] == pytest.approx(1 / (levels - 1))
        codes = np.concatenate([ordinal.X_train[:, j], ordinal.X_test[:, j]]) * (levels - 1)
        np.testing.assert_allclose(codes, np.round(codes), atol=1e-6)
        assert codes.min() >= 0 and codes.max() <= levels - 1


def test_ordinal_round_trips_to_the_same_raw_rows_as_onehot(onehot, ordinal):
    raw = ordinal.encoder.inverse_transform(ordinal.X_train)
    np.testing.assert_allclose(ordinal.encoder.transform(raw), ordinal.X_train, atol=1e-12)
    # the split and the raw values do not depend on the encoding
    raw_onehot = onehot.encoder.inverse_transform(onehot.X_train)
    for column in raw.columns:
        assert list(raw[column]) == list(raw_onehot[column]), column
    np.testing.assert_array_equal(ordinal.y_train, onehot.y_train)


def test_ordinal_keeps_immutables_directions_and_bounds(onehot, ordinal):
    schema = ordinal.schema
    immutable = {f for f, i in zip(schema.features, schema.immutable, strict=True) if i}
    assert immutable == {"personal_status_sex", "foreign_worker"}
    assert schema.direction[schema.features.index("age")] == 1
    np.testing.assert_array_equal(schema.lower_array, 0.0)
    np.testing.assert_array_equal(schema.upper_array, 1.0)
    for splits in (ordinal, onehot):
        assert splits.X_train.min() >= 0 and splits.X_train.max() <= 1


def test_snap_and_violations_hold_ordinal_columns_on_their_grid(ordinal):
    schema = ordinal.schema
    j = schema.features.index("savings")  # 5 levels: codes 0, 0.25, ..., 1
    X = ordinal.X_test[:4].astype(float)
    moved = X.copy()
    moved[:, j] = [0.1, 0.2, 0.6, 0.9]
    assert schema.broken_constraints(moved, X)["integer"][:, j].sum() >= 3
    snapped = schema.snap(moved, X)
    np.testing.assert_allclose(snapped[:, j], [0.0, 0.25, 0.5, 1.0])
    assert not schema.violations(snapped, X).any()
    # an immutable ordinal column is restored to the factual's level
    k = schema.features.index("personal_status_sex")
    changed = X.copy()
    changed[:, k] = 1 - X[:, k]
    np.testing.assert_array_equal(schema.snap(changed, X)[:, k], X[:, k])


@pytest.mark.parametrize("method", ["wachter", "growing-spheres", "nearest-neighbour"])
def test_methods_give_feasible_recourse_in_ordinal_space(ordinal, method):
    model = registry.get("model", "logreg")(epochs=100).fit(ordinal.X_train, ordinal.y_train, 0)
    factuals = ordinal.X_test[model.predict(ordinal.X_test) == 0][:15]
    recourses = registry.get("method", method)(random_state=0).fit(model, ordinal)
    recourses = recourses.generate(factuals)
    found = ~np.isnan(recourses).any(axis=1)
    assert found.sum() >= 10
    assert not ordinal.schema.violations(recourses[found], factuals[found]).any()
    assert (model.predict(recourses[found]) == 1).all()


def test_encoding_is_validated():
    with pytest.raises(ConfigError, match="encoding must be one of onehot, ordinal"):
        registry.get("dataset", "german")(encoding="binary").load(0)


# ------------------------------------------------------------------------ actionability options
def test_immutable_replaces_the_datasets_immutables_and_directions_can_be_dropped():
    default = registry.get("dataset", "german")().load(3).schema
    chosen = registry.get("dataset", "german")(immutable=["age"], directions=False).load(3)
    schema = chosen.schema
    assert {f for f, i in zip(schema.features, schema.immutable, strict=True) if i} == {"age"}
    assert not any(schema.direction) and any(default.direction)
    free = registry.get("dataset", "german")(immutable=[]).load(3).schema
    assert not any(free.immutable)
    assert free.direction == default.direction
    # the data themselves do not change
    np.testing.assert_array_equal(
        chosen.X_train, registry.get("dataset", "german")().load(3).X_train
    )


def test_an_unknown_immutable_name_is_one_clear_error():
    with pytest.raises(ConfigError, match="'sexx', which is not a feature; the features are"):
        registry.get("dataset", "german")(immutable=["sexx"]).validate_params()


def test_genre_configs_run_the_authors_protocol():
    """genre.yaml: ordinal codes, the authors' immutables (race, sex; none on HELOC), no
    directions, gold labels, NNR among the methods; genre-onehot.yaml differs in the encoding."""
    from pathlib import Path

    from recourse_bench.config import load_config

    root = Path(__file__).resolve().parents[1] / "benchmarks"
    authors = {"adult": ("race", "sex"), "compas": ("race", "sex"), "heloc": ()}
    for name, encoding in (("genre.yaml", "ordinal"), ("genre-onehot.yaml", "onehot")):
        config = load_config(root / name)
        for spec in config.datasets:
            params = spec.params_dict
            assert params.get("encoding", "onehot") == encoding
            assert tuple(params["immutable"]) == authors[spec.name]
            assert params["directions"] is False and params["labels"] == "gold"
        pools = {m.params_dict.get("pool") for m in config.methods if m.name == "nearest-neighbour"}
        assert "gold" in pools
        assert "genre-score" in config.metrics
