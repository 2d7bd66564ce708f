"""Timing of every built-in method: 1,000 rejected Adult test factuals, on one torch thread.

Run with ``python -m pytest benchmarks/perf/test_perf_methods.py`` (Adult is embedded: no data
folder needed). The deployed models are the default MLP, logistic regression and forest (seed
0), the factuals the first 1,000 test rows each rejects. Each benchmark times ``fit`` and
``generate`` together (GenRe has its own suite; the VAE methods' times include training their
network), records the coverage, validity and cost in ``extra_info``, and checks what it timed:
every recourse found is accepted by the model and breaks none of the schema's constraints. The
issue's time targets are recorded as ``extra_info["target_seconds"]`` and compared in
``docs/performance.md``, not asserted, since a shared machine would make such an assertion
flaky.
"""

from __future__ import annotations

import numpy as np
import pytest

from recourse_bench import registry
from recourse_bench.methods.vae import shared as vae_cache

N_FACTUALS = 1000
# minutes per round (training networks or models, or long searches): timed in one round
ONE_ROUND = {"revise", "cchvae", "cruds", "croco", "betarce", "mcer"}
# (method, parameters, model, target seconds on 2 cores or None)
CASES = [
    ("wachter", {}, "mlp", 2.0),
    ("roar", {"surrogate": "gradient"}, "mlp", 3.0),
    ("roar", {}, "logreg", 3.0),  # closed form: the model's own weights
    ("roar", {"surrogate": "lime"}, "mlp", 20.0),
    ("probe", {}, "mlp", None),
    ("trex", {}, "mlp", None),
    ("growing-spheres", {}, "mlp", None),
    ("nearest-neighbour", {}, "mlp", None),
    ("dice", {}, "mlp", None),
    ("ar", {}, "logreg", None),  # exact program on the model's own weights
    ("ar", {}, "mlp", None),  # LIME surrogate per factual
    ("face", {}, "mlp", None),
    ("feature-tweak", {}, "forest", None),
    ("revise", {}, "mlp", None),  # times include training the VAE (the cache is cleared)
    ("cchvae", {}, "mlp", None),
    ("cruds", {}, "mlp", None),
    ("mcer", {}, "logreg", None),  # one MILP per factual (the default MLP: see the README)
    ("rnce", {}, "mlp", None),
    ("rbr", {}, "mlp", None),
    ("croco", {}, "mlp", None),
    ("sns", {}, "mlp", None),
    ("betarce", {}, "mlp", None),  # includes retraining its 32 models
]


@pytest.fixture(scope="module")
def adult():
    return registry.get("dataset", "adult")().load(0)


@pytest.fixture(scope="module")
def deployed(adult):
    """The three base models on Adult with their first 1,000 rejected test rows."""
    out = {}
    for name in ("mlp", "logreg", "forest"):
        model = registry.get("model", name)().fit(adult.X_train, adult.y_train, seed=0)
        rejected = adult.X_test[model.predict(adult.X_test) == 0]
        assert len(rejected) >= N_FACTUALS
        out[name] = model, rejected[:N_FACTUALS]
    return out


def fit_and_generate(name, params, model_name, model, splits, factuals):
    vae_cache.clear()  # a VAE method's time includes training its network, every round
    method = registry.get("method", name)(random_state=0, **params)
    method.use_trainer(registry.get("model", model_name)()).fit(model, splits)
    return method.generate(factuals)


@pytest.mark.parametrize(
    ("name", "params", "model_name", "target"),
    CASES,
    ids=[f"{n}-{'-'.join(map(str, p.values())) or 'default'}-{m}" for n, p, m, _ in CASES],
)
def test_1000_adult_factuals(benchmark, adult, deployed, name, params, model_name, target):
    model, factuals = deployed[model_name]
    args = (name, params, model_name, model, adult, factuals)
    rounds = 1 if name in ONE_ROUND else 3  # minutes per round: one, as for GenRe
    recourses = benchmark.pedantic(fit_and_generate, args=args, rounds=rounds, iterations=1)
    found = ~np.isnan(recourses).any(axis=1)
    validity = float((model.predict(recourses[found]) == 1).sum() / len(factuals))
    benchmark.extra_info.update(
        factuals=len(factuals),
        coverage=float(found.mean()),
        validity=validity,
        cost_l1=float(np.abs(recourses - factuals)[found].sum(axis=1).mean()),
        target_seconds=target,
    )
    assert found.any()
    assert (model.predict(recourses[found]) == 1).all()
    assert not adult.schema.violations(recourses[found], factuals[found]).any()
    if name == "wachter":
        assert validity >= 0.99  # the target's quality bar
