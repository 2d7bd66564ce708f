"""Timing of the linear SVM: 10 Adult models by ``LinearSVM.fit_many`` (batched Newton).

Run with ``python -m pytest benchmarks/perf/test_perf_svm.py``. Ten bootstrap resamples of
Adult's training split (31,655 rows) are trained by ``LinearSVM.fit_many`` (the squared hinge by
generalised Newton, the models as batches of ``_newton.BATCH_BYTES``); one model alone is timed
for comparison (the L-BFGS that trained the squared hinge before is timed in
docs/performance.md, from the former revision). Each case checks that the hyperplane it found
is the optimum (a tiny gradient of LinearSVC's primal divided by C n), so a solver that stopped
early would fail.
"""

from __future__ import annotations

import numpy as np

from recourse_bench.models.svm import LinearSVM


def largest_gradient(trainer: LinearSVM, model, X, y, seed: int) -> float:
    """The largest partial derivative of the squared-hinge primal / (C n) on the fitting rows."""
    rows, _ = trainer.split(y, seed)
    X, y = X[rows], y[rows]
    w, b = model.svm_coef_, model.svm_intercept_
    t = 2.0 * y - 1.0
    slack = np.maximum(0.0, 1.0 - t * (X @ w + b))
    lam = 1.0 / (trainer.C * len(y))
    coefficient = -2.0 * t * slack / len(y)
    return float(np.abs(np.append(X.T @ coefficient + lam * w, coefficient.sum() + lam * b)).max())


def test_10_adult_svms_batched(benchmark, adult_resamples):
    *_, samples = adult_resamples
    trainer = LinearSVM()
    models = benchmark.pedantic(
        lambda: trainer.fit_many(samples, list(range(len(samples)))), rounds=3, iterations=1
    )
    assert len(models) == len(samples) == 10
    for seed, (model, (X_k, y_k)) in enumerate(zip(models, samples, strict=True)):
        assert largest_gradient(trainer, model, X_k, y_k, seed) <= trainer.tol


def test_one_adult_svm(benchmark, adult_resamples):
    X, y, _ = adult_resamples
    trainer = LinearSVM()
    model = benchmark.pedantic(lambda: trainer.fit(X, y, 0), rounds=3, iterations=1)
    assert largest_gradient(trainer, model, X, y, 0) <= trainer.tol
