"""Robustness metrics that certify or compute rather than sample updated models.

* ``delta-robustness``: the share of recourses that every model in an L-infinity box of radius
  ``delta`` around the base model's parameters accepts (Jiang et al., AAAI 2023;
  :mod:`recourse_bench.certify`), with the proof (closed form, IBP, MILP) in the row's note;
* ``noise-invalidation``: PROBE's invalidation rate under Gaussian implementation noise
  (Pawelczyk et al., ICLR 2023): closed form for linear models, Monte Carlo with its standard
  error otherwise.

Both run on every method's recourses. Metrics take no parameters in a config, so each is
registered at one setting (``mcer``'s box, :data:`recourse_bench.certify.DEFAULT_DELTA`, so
that a default config holds the MILP method to its own promise, and ``probe``'s noise); a plugin
file registers another with :func:`delta_robustness_metric` or :func:`noise_invalidation_metric`::

    from recourse_bench.metrics.certified import delta_robustness_metric
    from recourse_bench.registry import register

    register("metric")(delta_robustness_metric("delta-robustness-0.05", delta=0.05))
"""

from __future__ import annotations

import hashlib

import numpy as np
from scipy.special import ndtr

from ..api import Classifier, EvalContext, Metric, MetricValue
from ..certify import DEFAULT_DELTA, PROOFS, Proof, delta_certified, relu_layers
from ..registry import register
from ..seeding import derive_seed, numpy_rng

#: PROBE's noise variance (its authors' and ``probe``'s default).
DEFAULT_NOISE_VARIANCE = 0.01
#: Monte-Carlo draws per recourse for a model without a closed form.
NOISE_DRAWS = 1000


def delta_robustness_metric(
    name: str, delta: float, delta_b: float | None = None, proof: Proof = "exact"
) -> Metric:
    """A static metric: the share of valid recourses certified Delta-robust at ``delta``.

    ``n`` is the number of recourses the base model accepts (a recourse it rejects cannot be
    certified: the base model is in the box). The note names the proof and the box. A model
    that is neither linear nor a ReLU MLP gives a ``skipped`` row with the reason.
    """
    if proof not in PROOFS:
        raise ValueError(f"proof must be one of {', '.join(PROOFS)}, got {proof!r}")

    def measure(ctx: EvalContext) -> MetricValue:
        relu_layers(ctx.model)  # NotApplicable (a skipped row) for a model without the box
        valid = ctx.accepted_by(ctx.model)
        if not valid.any():
            return MetricValue(float("nan"), 0)
        certified, how = delta_certified(ctx.model, ctx.recourses[valid], delta, delta_b, proof)
        box = f"delta={delta:g}, delta_b={delta if delta_b is None else delta_b:g}"
        return MetricValue(float(certified.mean()), int(valid.sum()), f"proof: {how}; {box}")

    measure.__doc__ = (
        f"Share of valid recourses that every model within {delta:g} of the base model's "
        "weights (and biases) accepts: closed form for linear models, interval bound "
        "propagation and the interval network's MILP for ReLU MLPs (n = valid recourses)."
    )
    return Metric(name, measure, "static", higher_is_better=True)


def _mutable(ctx: EvalContext) -> np.ndarray:
    return np.asarray(ctx.splits.schema.mutable_mask, dtype=bool)


def linear_invalidation(model: Classifier, X: np.ndarray, std: float, mask: np.ndarray):
    """Exact IR of each row for a linear model: ``1 - Phi(f(x) / (std ||w * mask||_2))``."""
    w = np.asarray(model.coef_, dtype=float) * mask
    spread = std * float(np.sqrt((w**2).sum()))
    f = np.asarray(model.decision_function(X), dtype=float)
    if spread == 0:
        return (f < 0).astype(float)
    return ndtr(-f / spread)


def monte_carlo_invalidation(
    model: Classifier, X: np.ndarray, std: float, mask: np.ndarray, draws: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Monte-Carlo IR of each row (share of ``draws`` noisy copies rejected) and its std. error."""
    rng = numpy_rng(seed)
    noise = rng.normal(0.0, std, size=(len(X), draws, X.shape[1])) * mask
    noisy = (X[:, None, :] + noise).reshape(-1, X.shape[1])
    rejected = (np.asarray(model.predict(noisy)) != 1).reshape(len(X), draws)
    rate = rejected.mean(axis=1)
    return rate, np.sqrt(rate * (1 - rate) / draws)


def noise_invalidation_metric(
    name: str, noise_variance: float = DEFAULT_NOISE_VARIANCE, draws: int = NOISE_DRAWS
) -> Metric:
    """A static metric: PROBE's invalidation rate of the valid recourses under noise.

    Each valid recourse ``x'`` is implemented as ``x' + eps``, ``eps ~ N(0, s^2)`` on each
    mutable column (a user implements only changes of mutable features, as ``probe``); the
    value is the mean over valid recourses of ``P(base model rejects x' + eps)``: exact for a
    linear model, ``1 - Phi(f(x') / (s ||w_mutable||))``, and a Monte-Carlo estimate with
    ``draws`` draws per recourse otherwise (its standard error in the note). The draws are
    seeded from the data's name and the recourses, so the value is deterministic.
    """
    std = float(np.sqrt(noise_variance))

    def measure(ctx: EvalContext) -> MetricValue:
        valid = ctx.accepted_by(ctx.model)
        n = int(valid.sum())
        if not n:
            return MetricValue(float("nan"), 0)
        X = np.asarray(ctx.recourses[valid], dtype=float)
        mask = _mutable(ctx).astype(float)
        if getattr(ctx.model, "linear", False):
            rate = linear_invalidation(ctx.model, X, std, mask)
            return MetricValue(
                float(rate.mean()), n, f"closed form (linear), s^2={noise_variance:g}"
            )
        digest = hashlib.sha256(np.ascontiguousarray(X).tobytes()).hexdigest()[:16]
        seed = derive_seed(0, name, ctx.splits.name, digest)
        rates, errors = monte_carlo_invalidation(ctx.model, X, std, mask, draws, seed)
        error = float(np.sqrt((errors**2).sum())) / n
        note = f"Monte Carlo, {draws} draws per recourse, s^2={noise_variance:g}, s.e. {error:.4f}"
        return MetricValue(float(rates.mean()), n, note)

    measure.__doc__ = (
        f"Mean probability that a valid recourse implemented with N(0, {noise_variance:g}) noise "
        "on its mutable columns is rejected by the base model (n = valid recourses; lower is "
        "better)."
    )
    return Metric(name, measure, "static", higher_is_better=False)


delta_robustness = register("metric")(delta_robustness_metric("delta-robustness", DEFAULT_DELTA))
noise_invalidation = register("metric")(noise_invalidation_metric("noise-invalidation"))
