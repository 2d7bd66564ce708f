"""GenRe: pair synthesis, the soft-target loss, the transformer and batched sampling."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

import recourse_bench.methods.genre  # noqa: F401
from recourse_bench import registry
from recourse_bench.api import ConfigError, Schema
from recourse_bench.methods.genre.layout import Layout, soft_bin_targets
from recourse_bench.methods.genre.model import GenReTransformer
from recourse_bench.methods.genre.pairs import make_pairs, pair_distribution, split_pairs
from recourse_bench.methods.genre.sample import allowed_levels, draw, sample_candidates
from recourse_bench.methods.genre.train import Batches, EarlyStopping, mean_loss, pair_loss, train

from .conftest import assert_recourse_contract

TINY = {
    "width": 16,
    "n_heads": 2,
    "n_encoder_layers": 1,
    "n_decoder_layers": 1,
    "ffn_width": 16,
    "max_steps": 20,
    "eval_every": 5,
    "batch_size": 128,
    "top_k": 100,
    "progress": False,
}


def small_schema() -> Schema:
    """Columns: continuous, integer (step 0.25), a 3-level group, an immutable binary."""
    return Schema(
        features=("a", "n", "g=x", "g=y", "g=z", "s"),
        kinds=("continuous", "integer", "categorical", "categorical", "categorical", "binary"),
        immutable=(False, False, False, False, False, True),
        direction=(0, 1, 0, 0, 0, 0),
        lower=(0.0,) * 6,
        upper=(1.0,) * 6,
        steps=(0.0, 0.25, 0.0, 0.0, 0.0, 1.0),
        groups=((2, 3, 4),),
    )


# ----------------------------------------------------------------------------------- pairs
def test_pair_weights_and_the_immutables_rule_match_a_direct_computation():
    rng = np.random.default_rng(0)
    sources = rng.uniform(size=(7, 4))
    targets = rng.uniform(size=(12, 4))
    immutable = np.array([False, False, False, True])
    sources[:, 3] = [0, 0, 1, 1, 0, 1, 2]  # the last source agrees with no target
    targets[:, 3] = [0, 1] * 6
    lam, k = 5.0, 4
    neighbours, probs, has_target = pair_distribution(sources, targets, immutable, lam, k)

    distance = np.abs(sources[:, None, :] - targets[None, :, :]).sum(axis=2)
    agree = sources[:, None, 3] == targets[None, :, 3]
    weight = np.exp(-lam * distance) * agree
    np.testing.assert_array_equal(has_target, weight.sum(axis=1) > 0)
    for i in range(len(sources)):
        dense = np.zeros(len(targets))
        dense[neighbours[i].numpy()] = probs[i].numpy()
        if not has_target[i]:
            np.testing.assert_array_equal(dense, 0.0)
            continue
        top = np.argsort(-weight[i])[:k]
        expected = np.zeros(len(targets))
        expected[top] = weight[i, top] / weight[i, top].sum()
        np.testing.assert_allclose(dense, expected, rtol=1e-5, atol=1e-7)
        assert (expected[~agree[i]] == 0).all()  # never a target with other immutables

    pairs = make_pairs(sources, np.zeros(7, dtype=int), targets, immutable, lam, k)
    assert pairs.n_sources == 6  # the source without an admissible target is dropped
    drawn = pairs.draw(torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(targets[drawn.numpy(), 3], pairs.sources[:, 3])


def test_pairs_split_sources_and_targets_and_respect_gamma():
    rng = np.random.default_rng(1)
    X = rng.uniform(size=(400, 3)).astype(np.float32)
    scores = X[:, 0]
    gold = (rng.uniform(size=400) < 0.8).astype(int)

    def pairs(**options):
        return split_pairs(X, scores, gold, np.zeros(3, dtype=bool), gamma=0.7, lam=5.0,
                           top_k=50, val_fraction=0.1, rng=np.random.default_rng(0),
                           **options)  # fmt: skip

    train, val = pairs()
    n_src, n_tgt = int((scores <= 0.7).sum()), int(((scores > 0.7) & (gold == 1)).sum())
    assert train.n_sources + val.n_sources == n_src
    assert len(train.targets) + len(val.targets) == n_tgt
    assert (train.targets[:, 0] > 0.7).all() and (train.sources[:, 0] <= 0.7).all()
    both = np.concatenate([train.targets, val.targets])
    assert len(np.unique(both, axis=0)) == n_tgt  # the two target pools are disjoint
    assert val.n_sources == int(np.floor(0.1 * n_src))
    train, val = pairs(val_targets="train")
    assert len(train.targets) == n_tgt
    np.testing.assert_array_equal(val.targets, train.targets)
    # targets: model takes every point scored above gamma, whatever its label
    train, _ = pairs(val_targets="train", gold_targets=False)
    assert len(train.targets) == int((scores > 0.7).sum()) > n_tgt


# ------------------------------------------------------------------------------------ loss
def test_soft_target_loss_matches_a_direct_numpy_computation():
    schema = small_schema()
    layout = Layout.from_schema(schema, n_bins=50)
    assert layout.columns == ((0,), (1,), (2, 3, 4), (5,))
    rng = np.random.default_rng(2)
    X = rng.uniform(size=(5, 6))
    X[:, 2:5] = np.eye(3)[rng.integers(0, 3, 5)]
    X[:, 5] = rng.integers(0, 2, 5)
    logits = rng.normal(size=(5, 4, layout.n_out)) * 3
    masked = torch.as_tensor(logits).masked_fill(~layout.class_mask(), -1e4)
    weights = torch.as_tensor(~layout.immutable, dtype=torch.float64)
    got = pair_loss(masked, layout.soft_targets(torch.as_tensor(X)), weights).numpy()

    B, bins = 50, np.arange(50) / 49  # both ends of [0, 1] are bins

    def log_softmax(v):
        v = v - v.max()
        return v - np.log(np.exp(v).sum())

    expected = np.zeros(5)
    for i in range(5):
        for unit, col in ((0, 0), (1, 1)):  # binned units
            q = np.exp(-(B**2 / 2) * (X[i, col] - bins) ** 2)
            q /= q.sum()
            expected[i] -= (q * log_softmax(logits[i, unit, :B])).sum()
        level = int(np.argmax(X[i, 2:5]))  # categorical unit: cross-entropy on the level
        expected[i] -= log_softmax(logits[i, 2, :3])[level]
        # unit 3 (immutable) is not in the loss
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    q = soft_bin_targets(torch.tensor([0.0, 0.5, 1.0]), B)
    np.testing.assert_allclose(q.sum(dim=-1).numpy(), 1.0, rtol=1e-6)
    assert q[0].argmax() == 0 and q[2].argmax() == B - 1  # 0 and 1 are bin values
    np.testing.assert_allclose(Layout.from_schema(schema, n_bins=B).bins()[[0, -1]], [0.0, 1.0])


# -------------------------------------------------------------------------------- training
def _tiny_training_problem(seed: int = 0):
    schema = small_schema()
    layout = Layout.from_schema(schema, n_bins=10)
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(60, 6))
    X[:, 2:5] = np.eye(3)[rng.integers(0, 3, 60)]
    X[:, 5] = rng.integers(0, 2, 60)
    immutable = ~schema.mutable_mask
    pairs = make_pairs(X[:40], np.zeros(40, dtype=int), X[40:], immutable, 5.0, 5)
    val = make_pairs(X[30:40], np.zeros(10, dtype=int), X[40:], immutable, 5.0, 5)
    net = GenReTransformer(layout.n_units, layout.k_max, layout.class_mask(), width=8,
                           n_heads=2, n_encoder_layers=1, n_decoder_layers=1, ffn_width=8,
                           dropout=0.0, generator=torch.Generator().manual_seed(seed))  # fmt: skip
    return layout, pairs, val, net


def _train(net, layout, pairs, val, **budget):
    return train(net, layout, pairs, val, batch_size=16, device=torch.device("cpu"),
                 data_generator=torch.Generator().manual_seed(1),
                 dropout_generator=torch.Generator().manual_seed(2), progress=False,
                 **budget)  # fmt: skip


def test_training_budget_is_counted_in_steps_with_evaluations_every_eval_every():
    layout, pairs, val, net = _tiny_training_problem()
    history = _train(net, layout, pairs, val, max_steps=23, eval_every=5, lr=1e-2, patience=100)
    assert history.steps == [5, 10, 15, 20, 23]  # and one at the last step
    assert len(history.train) == len(history.val) == 5
    assert pairs.n_sources == 40  # batches of 16, 16 and 8: 3 steps per pass, fresh pairs each
    assert history.epochs == pytest.approx(7 + 32 / 40)  # 7 passes and 2 steps
    # the network kept is the one with the lowest validation loss, and it is restored
    assert history.best_step == history.steps[int(np.argmin(history.val))]
    data = Batches.build(val, layout, torch.device("cpu"))
    chosen = val.draw(torch.Generator().manual_seed(1))
    weights = torch.as_tensor(~layout.immutable, dtype=torch.float32)
    # the fixed validation draw is the first draw of the data generator
    assert mean_loss(net, data, chosen, weights, 64) == pytest.approx(min(history.val), rel=1e-5)


def test_training_stops_after_patience_evaluations_without_improvement():
    layout, pairs, val, net = _tiny_training_problem()
    history = _train(net, layout, pairs, val, max_steps=1000, eval_every=4, lr=0.0, patience=3)
    assert history.steps == [4, 8, 12, 16]  # nothing improves after the first evaluation
    assert history.best_step == 4


def test_early_stopping_keeps_every_new_lowest_but_only_a_real_improvement_resets_patience():
    net = _tiny_training_problem()[3]
    stopping = EarlyStopping(patience=2)
    assert stopping.update(net, 1.0) and stopping.waited == 0
    assert stopping.update(net, 0.99995)  # a new lowest is kept ...
    assert stopping.waited == 1 and stopping.best_loss == 0.99995  # ... but is no real gain
    assert not stopping.update(net, 1.2) and stopping.done
    assert stopping.update(net, 0.5) and stopping.waited == 0 and not stopping.done


def test_inverse_cdf_draws_follow_the_probabilities_and_never_a_class_of_probability_zero():
    probs = torch.tensor([[0.0, 0.2, 0.0, 0.8, 0.0]]).repeat(20000, 1)
    choice = draw(probs, torch.Generator().manual_seed(0))
    counts = torch.bincount(choice, minlength=5).double() / len(choice)
    assert counts[[0, 2, 4]].sum() == 0
    assert abs(float(counts[1]) - 0.2) < 4 * (0.2 * 0.8 / 20000) ** 0.5
    again = draw(probs, torch.Generator().manual_seed(0))
    assert torch.equal(choice, again)


# ----------------------------------------------------------------------------------- model
def test_incremental_decoding_matches_the_teacher_forced_forward():
    layout = Layout.from_schema(small_schema(), n_bins=10)
    net = GenReTransformer(
        layout.n_units,
        layout.k_max,
        layout.class_mask(),
        width=16,
        n_heads=2,
        n_encoder_layers=2,
        n_decoder_layers=2,
        ffn_width=24,
        dropout=0.1,
        generator=torch.Generator().manual_seed(0),
    ).eval()
    rng = np.random.default_rng(3)
    X = torch.as_tensor(rng.uniform(size=(6, 6)), dtype=torch.float32)
    Y = torch.as_tensor(rng.uniform(size=(6, 6)), dtype=torch.float32)
    with torch.inference_mode():
        full = net(layout.tokens(X, 1.0), layout.tokens(Y, 1.0)[:, :-1])
        caches = net.start_decoding(net.encode(layout.tokens(X, 1.0)))
        token = layout.tokens(Y, 1.0)[:, 0]
        for t in range(layout.n_units):
            step = net.decode_step(token, t, caches)
            np.testing.assert_allclose(step.numpy(), full[:, t].numpy(), rtol=1e-4, atol=1e-5)
            token = layout.unit_token(Y, t)


def test_parameters_are_checked():
    with pytest.raises(ConfigError, match="multiple of n_heads"):
        registry.get("method", "genre")(width=30, n_heads=4).validate_params()
    with pytest.raises(ConfigError, match="device"):
        registry.get("method", "genre")(device="tpu").validate_params()


# -------------------------------------------------------------------------------- sampling
@pytest.fixture(scope="module")
def german():
    splits = registry.get("dataset", "german")().load(0)
    model = registry.get("model", "mlp")().fit(splits.X_train, splits.y_train, seed=0)
    factuals = splits.X_test[model.predict(splits.X_test) == 0][:40].astype(float)
    method = registry.get("method", "genre")(random_state=0, **TINY).fit(model, splits)
    return splits, model, factuals, method


def test_sampling_never_draws_a_level_the_factuals_box_rules_out():
    layout, _, _, net = _tiny_training_problem()
    schema = small_schema()
    direction = list(schema.direction)
    direction[4] = -1  # level "g=z" may be left but never entered
    schema = Schema(**{**schema.__dict__, "direction": tuple(direction)})
    X = np.tile([0.5, 0.5, 1.0, 0.0, 0.0, 1.0], (50, 1))  # level "g=x", so "g=z" is ruled out
    candidates = sample_candidates(net, layout, schema, X, n_candidates=20, tau=1.0, noise=0.0,
                                   generator=torch.Generator().manual_seed(0),
                                   device=torch.device("cpu"))  # fmt: skip
    levels = candidates[..., 2:5]
    assert (levels[..., 2] == 0).all()
    assert (levels[..., 1] == 1).any()  # the other level is still drawn
    np.testing.assert_array_equal(levels.sum(axis=-1), 1.0)
    # a level fixed at 1 (it may only increase) is the only level allowed
    lo = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    hi = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 1.0]])
    expected = torch.tensor([[False, False, True], [True, False, True]])
    assert torch.equal(allowed_levels(lo, hi), expected)


def test_samples_respect_immutables_bounds_and_categorical_groups(german):
    splits, _, factuals, method = german
    schema = splits.schema
    candidates = sample_candidates(
        method.network_,
        method.layout_,
        schema,
        factuals,
        n_candidates=5,
        tau=10.0,
        noise=0.0,
        generator=torch.Generator().manual_seed(0),
        device=torch.device("cpu"),
    )
    flat = candidates.reshape(-1, schema.n_features)
    repeated = np.repeat(factuals, 5, axis=0)
    frozen = ~schema.mutable_mask
    np.testing.assert_allclose(flat[:, frozen], repeated[:, frozen], atol=1e-6)
    lo, hi = schema.bounds_for(repeated)
    assert ((flat >= lo - 1e-6) & (flat <= hi + 1e-6)).all()
    for group in schema.groups:
        block = flat[:, list(group)]
        assert np.isin(block, (0.0, 1.0)).all() and (block.sum(axis=1) == 1).all()
    # the candidates really vary on the mutable features
    assert np.abs(flat[:, ~frozen] - repeated[:, ~frozen]).sum() > 0


def test_generate_keeps_the_recourse_contract(german):
    splits, model, factuals, method = german
    recourses = method.generate(factuals)
    found = assert_recourse_contract(splits.schema, model, factuals, recourses)
    assert found.any()


def test_same_seed_same_samples_and_pickle_round_trip(german):
    splits, model, factuals, method = german
    first = method.generate(factuals)
    np.testing.assert_array_equal(first, method.generate(factuals))
    copy = pickle.loads(pickle.dumps(method))
    np.testing.assert_array_equal(first, copy.generate(factuals))
    other = registry.get("method", "genre")(random_state=0, **TINY).fit(model, splits)
    np.testing.assert_array_equal(first, other.generate(factuals))  # fit is seeded too
    method.set_params(random_state=1)
    try:
        assert not np.array_equal(first, method.generate(factuals), equal_nan=True)
    finally:
        method.set_params(random_state=0)


def test_select_cheapest_returns_the_cheapest_accepted_candidate(german):
    """The two selection rules pick from the same candidates; brute force over them."""
    splits, model, factuals, method = german
    k = method.n_candidates
    candidates = sample_candidates(
        method.network_,
        method.layout_,
        splits.schema,
        factuals,
        n_candidates=k,
        tau=float(method.tau),
        noise=0.0,
        generator=torch.Generator().manual_seed(method._seed("sample")),
        device=torch.device("cpu"),
    )
    flat = splits.schema.snap(candidates.reshape(-1, splits.schema.n_features),
                              np.repeat(factuals, k, axis=0)).reshape(candidates.shape)  # fmt: skip
    by_score = method.generate(factuals)
    method.set_params(select="cheapest")
    try:
        chosen = method.generate(factuals)
    finally:
        method.set_params(select="score")
    for i, x in enumerate(factuals):
        accepted = [c for c in flat[i] if model.predict(c[None])[0] == 1]
        if not accepted:
            assert np.isnan(chosen[i]).all()
            continue
        costs = [np.abs(c - x).sum() for c in accepted]
        assert np.abs(chosen[i] - x).sum() == pytest.approx(min(costs))
        assert np.abs(chosen[i] - x).sum() <= np.abs(by_score[i] - x).sum() + 1e-9
    found = ~np.isnan(chosen).any(axis=1)
    assert found.sum() == (~np.isnan(by_score).any(axis=1)).sum()


def test_genre_in_ordinal_space_keeps_levels_on_their_grid():
    """encoding: ordinal (the authors' space): a level code is a binned unit, rounded."""
    splits = registry.get("dataset", "german")(encoding="ordinal").load(0)
    model = registry.get("model", "mlp")().fit(splits.X_train, splits.y_train, seed=0)
    factuals = splits.X_test[model.predict(splits.X_test) == 0][:30].astype(float)
    method = registry.get("method", "genre")(random_state=0, **TINY).fit(model, splits)
    assert method.layout_.n_units == splits.schema.n_features  # one token per feature
    recourses = method.generate(factuals)
    found = assert_recourse_contract(splits.schema, model, factuals, recourses)
    assert found.sum() >= 10
    ordinal = np.array([k == "ordinal" for k in splits.schema.kinds])
    steps = np.asarray(splits.schema.steps)[ordinal]
    codes = recourses[found][:, ordinal] / steps
    np.testing.assert_allclose(codes, np.round(codes), atol=1e-6)


def test_fit_and_generate_leave_the_global_random_state_alone():
    splits = registry.get("dataset", "synthetic-gaussians")(n_features=3, n_samples=300).load(0)
    model = registry.get("model", "logreg")().fit(splits.X_train, splits.y_train, seed=0)
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()[1].copy()  # noqa: NPY002
    method = registry.get("method", "genre")(random_state=0, **{**TINY, "max_steps": 2})
    method.fit(model, splits).generate(splits.X_test[:10])
    assert torch.equal(torch_state, torch.get_rng_state())
    np.testing.assert_array_equal(numpy_state, np.random.get_state()[1])  # noqa: NPY002


# ------------------------------------------------------------------------------ end to end
@pytest.mark.parametrize("model_name", ["mlp", "forest"])
def test_end_to_end_recourses_are_mostly_valid_on_an_easy_problem(model_name):
    splits = registry.get("dataset", "synthetic-gaussians")(n_features=5, n_samples=2000).load(0)
    model = registry.get("model", model_name)().fit(splits.X_train, splits.y_train, seed=0)
    factuals = splits.X_test[model.predict(splits.X_test) == 0][:100]
    params = {**TINY, "width": 32, "n_heads": 4, "max_steps": 60, "eval_every": 10, "top_k": 1000}
    method = registry.get("method", "genre")(random_state=0, **params).fit(model, splits)
    recourses = method.generate(factuals)
    found = assert_recourse_contract(splits.schema, model, factuals, recourses)
    assert found.mean() >= 0.9, found.mean()
    assert method.history_.best_step > 0 and len(method.history_.val) >= 1


def test_no_pairs_to_learn_from_is_not_applicable():
    from recourse_bench.api import NotApplicable

    X = np.array([[0.1, 0.0], [0.2, 0.0], [0.9, 1.0], [0.8, 1.0]])
    scores = np.array([0.1, 0.2, 0.9, 0.8])
    gold = np.array([0, 0, 1, 1])
    immutable = np.array([False, True])  # sources and targets never share column 1
    with pytest.raises(NotApplicable, match="agrees with any target"):
        split_pairs(X, scores, gold, immutable, gamma=0.7, lam=5.0, top_k=10,
                    val_fraction=0.1, rng=np.random.default_rng(0))  # fmt: skip
    with pytest.raises(NotApplicable, match="sources"):
        split_pairs(X, np.zeros(4), gold, immutable, gamma=0.7, lam=5.0, top_k=10,
                    val_fraction=0.1, rng=np.random.default_rng(0))  # fmt: skip
