"""Timing of the converged logistic regression: 10 Adult models by ``LogReg.fit_many``.

Run with ``python -m pytest benchmarks/perf/test_perf_logreg.py``. Ten bootstrap resamples of
Adult's training split (31,655 rows) are solved by ``LogReg.fit_many`` (batched Newton; at 12 MB
of design per Adult model, each batch holds one, see ``_newton.BATCH_BYTES``); one model alone
and the former training (300 full-batch Adam epochs) are timed for comparison. Each case checks
that what it trained is the optimum (a tiny gradient), so a solver that stopped early would
fail.
"""

from __future__ import annotations

import numpy as np

from recourse_bench import registry


def largest_gradient(model, X, y, lam):
    """The largest partial derivative of the penalised mean log-loss at the model."""
    residual = 1.0 / (1.0 + np.exp(-model.decision_function(X))) - y
    gradient = np.append(X.T @ residual / len(y) + lam * model.coef_, residual.mean())
    return np.abs(gradient).max()


def test_10_adult_logregs_batched(benchmark, adult_resamples):
    *_, samples = adult_resamples
    trainer = registry.get("model", "logreg")()
    models = benchmark.pedantic(
        lambda: trainer.fit_many(samples, list(range(len(samples)))), rounds=3, iterations=1
    )
    assert len(models) == len(samples) == 10
    for model, (X_k, y_k) in zip(models, samples, strict=True):
        assert largest_gradient(model, X_k, y_k, trainer.weight_decay) < 1e-8


def test_one_adult_logreg(benchmark, adult_resamples):
    X, y, _ = adult_resamples
    trainer = registry.get("model", "logreg")()
    model = benchmark.pedantic(lambda: trainer.fit(X, y, 0), rounds=3, iterations=1)
    assert largest_gradient(model, X, y, trainer.weight_decay) < 1e-8


def test_one_adult_logreg_by_adam(benchmark, adult_resamples):
    X, y, _ = adult_resamples
    trainer = registry.get("model", "logreg")(solver="adam")
    model = benchmark.pedantic(lambda: trainer.fit(X, y, 0), rounds=1, iterations=1)
    assert largest_gradient(model, X, y, trainer.weight_decay) > 1e-6  # Adam stops short
