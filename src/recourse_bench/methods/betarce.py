"""BetaRCE: counterfactuals with a Bayesian lower bound on their robustness to model change.

Stępka, Lango and Stefanowski, "Counterfactual Explanations with Probabilistic Guarantees on
their Robustness to Model Change", KDD 2025 (arXiv:2408.04842).
Reference code read: istepka/betarce@f1e1b98, ``src/explainers/posthoc/betarob.py`` (the test
and the post-hoc search), ``src/explainers/base/growingspheres.py`` (their Growing Spheres),
``src/experiment.py`` and ``src/experiments_utils.py:get_B`` (how the model changes are drawn),
``configs/config_exp.yaml`` (the hyperparameters).

Admissible model changes. ``fit`` draws k changed models from this suite's own shift families,
with the trainer that built the model (``use_trainer(trainer)`` must come before ``fit``):
``registry.get("shift", changes)(n_models=k).updates(splits, trainer, model, seed)``, where
``changes`` is ``retrain-seed`` (new initialisation seeds), ``bootstrap`` (full-size stratified
bootstrap resamples) or ``architecture`` (the trainer family's other architectures; it raises
NotApplicable for a trainer without any, e.g. logreg, which the harness records as a skip). The
seed is ``derive_seed(random_state, "betarce", "models")``, so the method's k models are never
the evaluation's updated models of the same cell.

Test (:func:`beta_robustness`). For a candidate x', let n1 be the number of the k models that
accept it (predict 1) and n0 = k - n1. With a Jeffreys prior the posterior of the probability
that a changed model accepts x' is Beta(0.5 + n1, 0.5 + n0), and its lower bound at
confidence ``beta_conf`` is ``LB = scipy.stats.beta.ppf(1 - beta_conf, 0.5 + n1, 0.5 + n0)``
(:func:`beta_lower_bound`). x' is robust iff the base model accepts it AND LB > delta. With
k = 32 and beta_conf = 0.9: LB(32/0) = 0.9589, LB(31/1) = 0.9062, LB(30/2) = 0.8626, so
delta = 0.9 tolerates one rejecting model and delta = 0.8 three.

Search (batched over all factuals):

1. base counterfactuals: Growing Spheres (:mod:`.growing_spheres`, default parameters, the
   method's ``random_state``) for all rows; rows where it finds none stay NaN;
2. rows whose base counterfactual passes the test return it;
3. the others run Growing Spheres around their base counterfactual c on the crisp goal
   "h = 1 and LB > delta", all unfinished rows at once: in shell i = 0, 1, ..., ``max_iter`` - 1
   each row draws ``n_search_samples`` candidates c + r u, u uniform on the unit sphere of the
   coordinates its factual's box lets move (immutables stay fixed) and r uniform in
   [i step, (i + 1) step) (the authors' sampling); the candidates are snapped with
   ``schema.snap`` against the factual (box, directions, integer grids, one-hot groups) and
   tested, the base model first, then the k models in turn (one call per model for all
   candidates of the shell still in the running); a row stops at the first shell holding a passing
   candidate and keeps the one closest (L2, after snapping) to c. A row also stops once the
   inner radius exceeds the largest distance from c to any point of its box;
4. every returned recourse is tested once more; rows that fail are NaN.

Hyperparameters and defaults (``config_exp.yaml``, ``betarob``): ``k=32``, ``beta_conf=0.9``,
``delta=0.9`` (the authors run 0.8 and 0.9), Growing Spheres ``max_iter=100``,
``n_search_samples=100``, L2, ``step=0.1``; ``changes="retrain-seed"`` (the authors run
Architecture, Seed and Bootstrap as three equal settings; retrain-seed is the one that applies to
every trainer); ``random_state=None``.

Cost: ``fit`` trains k models (on German, one MLP fit takes about 1 s on a free CPU thread, so
about 30 s for k = 32); ``generate`` costs up to k + 1 forward passes per candidate. On German
with the default MLP, 3 of 84 rejected factuals' Growing Spheres counterfactuals passed the
test; all 84 got a robust recourse, at a mean L1 cost of 2.9 against 0.88 for the base ones
(random directions in the shells around the base counterfactual change many features).

Differences from the authors' code, and why:

- the k models come from this suite's shifts (the issue asks for it), not from a pretrained
  pool of 50 models sampled without replacement; our bootstrap and architecture shifts also
  draw a new training seed per model, where the authors keep the seed fixed and vary only the
  resample or the architecture, and our architecture pool is the trainer family's
  (``architecture_variants``), not MLPs with 3-5 layers of 32-256 neurons;
- the base counterfactual is always this suite's Growing Spheres (theirs: GS, DiCE or FACE);
- the search keeps immutables, directions, bounds, integer grids and one-hot groups: only the
  coordinates the factual's box lets move are sampled, one-hot members included, and every
  candidate is snapped before it is tested; the authors pass ``keys_immutable=[]`` and resample
  every binary column from Bernoulli(0.5) in each shell, which breaks immutables and one-hot
  encodings;
- a row stops once its shells lie beyond its box (snapped candidates could only repeat points of
  its surface); theirs always runs ``max_iter`` shells;
- the search is batched over the factuals; as LB grows with n1, the test is "n1 >= the least
  n1 with LB > delta", and a candidate leaves the later models' calls once more models reject it
  than that allows (the same verdicts, fewer forward passes); the authors' artefacts (LB and the
  two-sided interval) are not returned, but :func:`beta_robustness` gives LB;
- the recourse target is always class 1 (the suite's favourable class).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import stats

from .. import registry
from ..api import (
    Classifier,
    ConfigError,
    Interval,
    MethodTags,
    NotApplicable,
    Options,
    RecourseMethod,
    Splits,
)
from ..registry import register
from ..seeding import derive_seed, torch_generator

#: The shift families that may draw the admissible model changes.
CHANGES = ("retrain-seed", "bootstrap", "architecture")

# sampled values per block of rows (8 MB per float64 array)
_BLOCK_ELEMENTS = 2**20


def beta_lower_bound(
    n_accept: np.ndarray | int, n_models: int, confidence: float = 0.9
) -> np.ndarray:
    """Lower bound of the Beta credible interval of the acceptance probability (Jeffreys prior).

    ``scipy.stats.beta.ppf(1 - confidence, 0.5 + n_accept, 0.5 + n_models - n_accept)``.

    Parameters
    ----------
    n_accept : int or array of int
        Number n1 of the sampled models that accept the point (0 <= n1 <= n_models).
    n_models : int
        Number k of sampled models.
    confidence : float, default 0.9
        Confidence ``beta_conf`` of the one-sided bound, in (0, 1).

    Returns
    -------
    ndarray
        The bound LB, of the shape of ``n_accept``.

    Examples
    --------
    >>> round(float(beta_lower_bound(31, 32)), 4)
    0.9062
    """
    n1 = np.asarray(n_accept, dtype=float)
    return np.asarray(stats.beta.ppf(1.0 - confidence, 0.5 + n1, 0.5 + n_models - n1))


def acceptance_votes(models: Sequence[Classifier], X: np.ndarray) -> np.ndarray:
    """Number of ``models`` that accept (predict 1) each row of ``X``; -1 for rows with NaN."""
    X = np.asarray(X, dtype=float)
    votes = np.full(len(X), -1, dtype=int)
    rows = ~np.isnan(X).any(axis=1)
    if rows.any():
        votes[rows] = 0
        for m in models:
            votes[rows] += np.asarray(m.predict(X[rows])) == 1
    return votes


def beta_robustness(
    model: Classifier,
    models: Sequence[Classifier],
    X: np.ndarray,
    delta: float = 0.9,
    confidence: float = 0.9,
) -> tuple[np.ndarray, np.ndarray]:
    """BetaRCE's test: which rows of ``X`` are robust, and their lower bound LB.

    A row passes iff ``model`` accepts it (predict 1) and LB > ``delta``, where LB is
    :func:`beta_lower_bound` of the number of ``models`` that accept it.

    Parameters
    ----------
    model : Classifier
        The base model.
    models : sequence of Classifier
        The k sampled (changed) models.
    X : ndarray (n, d)
        Points in model space; rows with NaN fail and get LB NaN.
    delta : float, default 0.9
        Required lower bound.
    confidence : float, default 0.9
        ``beta_conf``.

    Returns
    -------
    passes : bool ndarray (n,)
    lower_bound : float ndarray (n,)
    """
    X = np.asarray(X, dtype=float)
    votes = acceptance_votes(models, X)
    rows = votes >= 0
    lower = np.full(len(X), np.nan)
    lower[rows] = beta_lower_bound(votes[rows], len(models), confidence)
    passes = np.zeros(len(X), dtype=bool)
    if rows.any():
        passes[rows] = (np.asarray(model.predict(X[rows])) == 1) & (lower[rows] > delta)
    return passes, lower


@register("method", "betarce")
class BetaRCE(RecourseMethod):
    """Growing Spheres from a base counterfactual until a Beta bound certifies its robustness.

    Parameters
    ----------
    changes : {"retrain-seed", "bootstrap", "architecture"}, default "retrain-seed"
        The suite's shift that draws the k admissible model changes.
    k : int, default 32
        Number of changed models sampled (authors' value).
    beta_conf : float, default 0.9
        Confidence of the one-sided Beta lower bound (authors' value).
    delta : float, default 0.9
        The lower bound must exceed it (authors: 0.8 and 0.9).
    max_iter : int, default 100
        Shells of the robust Growing Spheres search (authors' value).
    n_search_samples : int, default 100
        Candidates per row and shell (authors' value).
    step : float, default 0.1
        Width of every shell (L2, model space; authors' value).
    random_state : int or None, default None
        Seeds the changed models (through ``derive_seed``), the base Growing Spheres and the
        search.

    Notes
    -----
    Call ``use_trainer(trainer)`` before ``fit``: the changed models are retrained with the
    trainer that built the model. ``generate`` returns NaN rows where no base counterfactual
    is found or no candidate passes the test.
    """

    uses = (
        ("method", "growing-spheres"),
        ("shift", "retrain-seed"),
        ("shift", "bootstrap"),
        ("shift", "architecture"),
    )
    tags = MethodTags(trains=True, stochastic=True)
    _test_params = {"k": 2, "delta": 0.5, "max_iter": 30, "n_search_samples": 30}

    parameter_constraints = {
        "changes": (Options(CHANGES),),
        "k": (Interval("int", low=1),),
        "beta_conf": (Interval("float", low=0, high=1, open_low=True, open_high=True),),
        "delta": (Interval("float", low=0, high=1, open_high=True),),
        "max_iter": (Interval("int", low=0),),
        "n_search_samples": (Interval("int", low=1),),
        "step": (Interval("float", low=0, open_low=True),),
        "random_state": (Interval("int"), None),
    }

    def __init__(
        self,
        changes: str = "retrain-seed",
        k: int = 32,
        beta_conf: float = 0.9,
        delta: float = 0.9,
        max_iter: int = 100,
        n_search_samples: int = 100,
        step: float = 0.1,
        random_state: int | None = None,
    ):
        self.changes = changes
        self.k = k
        self.beta_conf = beta_conf
        self.delta = delta
        self.max_iter = max_iter
        self.n_search_samples = n_search_samples
        self.step = step
        self.random_state = random_state

    # ---------------------------------------------------------------------------------- fit
    def fit(self, model: Classifier, splits: Splits) -> BetaRCE:
        """Draw the k changed models with the ``changes`` shift and fit the base method."""
        super().fit(model, splits)
        trainer = getattr(self, "trainer_", None)
        if trainer is None:
            raise NotApplicable(
                f"{self.name} retrains the model's trainer: call use_trainer(trainer) first"
            )
        best = float(beta_lower_bound(self.k, self.k, self.beta_conf))
        if not best > self.delta:
            raise ConfigError(
                f"{self.name}: with k={self.k} and beta_conf={self.beta_conf} the lower bound is "
                f"at most {best:.4f} (all models accept), never above delta={self.delta}; "
                "raise k or lower delta"
            )
        if self.random_state is None:
            self.seed_ = int(np.random.default_rng().integers(2**31 - 1))
        else:
            self.seed_ = int(self.random_state)
        self.models_seed_ = derive_seed(self.seed_, "betarce", "models")
        shift = registry.get("shift", self.changes)(n_models=int(self.k))
        self.models_ = list(shift.updates(splits, trainer, model, self.models_seed_))
        base = registry.get("method", "growing-spheres")(random_state=self.random_state)
        self.base_ = base.fit(model, splits)
        # LB for n1 = 0..k (fit refused a delta that no n1 passes)
        self.lower_bounds_ = beta_lower_bound(np.arange(self.k + 1), self.k, self.beta_conf)
        return self

    # -------------------------------------------------------------------------------- test
    def _passes(self, Z: np.ndarray) -> np.ndarray:
        """The test on rows of ``Z`` (no NaN): the base model first, then the k models in turn.

        LB grows with n1, so the test is n1 >= the least n1 whose LB exceeds delta; a candidate
        is dropped from the later models' calls once more models reject it than that allows.
        """
        ok = np.asarray(self.model_.predict(Z)) == 1
        allowed = self.k - int(np.argmax(self.lower_bounds_ > self.delta))  # rejections allowed
        alive = np.flatnonzero(ok)
        rejections = np.zeros(len(Z), dtype=int)
        for m in self.models_:
            if not alive.size:
                break
            rejections[alive] += np.asarray(m.predict(Z[alive])) != 1
            alive = alive[rejections[alive] <= allowed]
        return ok & (rejections <= allowed)

    def robustness(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:func:`beta_robustness` of the rows of ``X`` against this method's k models."""
        self.check_fitted()
        return beta_robustness(self.model_, self.models_, X, self.delta, self.beta_conf)

    # ------------------------------------------------------------------------------ search
    def _search(self, X: np.ndarray, C: np.ndarray, generator: torch.Generator) -> np.ndarray:
        """Growing Spheres around ``C`` on the test, batched over rows; NaN where none passes."""
        d = X.shape[1]
        s = int(self.n_search_samples)
        lo, hi = self.schema_.bounds_for(X)
        free = lo < hi
        # farthest point of each row's box from its centre: shells beyond it are empty
        reach = np.sqrt((np.maximum(C - lo, hi - C) ** 2 * free).sum(axis=1))
        out = np.full_like(X, np.nan)
        active = free.any(axis=1)
        block = max(1, _BLOCK_ELEMENTS // (s * d))
        for shell in range(int(self.max_iter)):
            low = shell * float(self.step)
            active &= low <= reach
            idx = np.flatnonzero(active)
            if not idx.size:
                break
            for start in range(0, idx.size, block):
                rows = idx[start : start + block]
                m = rows.size
                u = torch.randn((m, s, d), generator=generator, dtype=torch.float64).numpy()
                u *= free[rows, None, :]
                u /= np.maximum(np.sqrt(np.einsum("ijk,ijk->ij", u, u)), 1e-300)[..., None]
                r = torch.rand((m, s), generator=generator, dtype=torch.float64).numpy()
                u *= (low + r * float(self.step))[..., None]
                u += C[rows, None, :]
                Z = self.schema_.snap(u.reshape(m * s, d), np.repeat(X[rows], s, axis=0))
                dist = np.sqrt(((Z.reshape(m, s, d) - C[rows, None, :]) ** 2).sum(axis=2))
                dist[~self._passes(Z).reshape(m, s)] = np.inf
                winner = dist.argmin(axis=1)
                hit = np.isfinite(dist[np.arange(m), winner])
                out[rows[hit]] = Z.reshape(m, s, d)[np.flatnonzero(hit), winner[hit]]
                active[rows[hit]] = False
        return out

    # ----------------------------------------------------------------------------- generate
    def generate(self, X: np.ndarray) -> np.ndarray:
        """Robust recourses for all rows of ``X`` (NaN rows where none was found)."""
        self.check_fitted()
        X = self.check_factuals(X)
        result = np.full_like(X, np.nan)
        base = self.base_.generate(X)
        found = np.flatnonzero(~np.isnan(base).any(axis=1))
        if not found.size:
            return result
        passed = self._passes(base[found])
        result[found[passed]] = base[found[passed]]
        todo = found[~passed]
        if todo.size:
            generator = torch_generator(derive_seed(self.seed_, "betarce", "search"))
            result[todo] = self._search(X[todo], base[todo], generator)
        # every recourse is feasible and passes the test, or NaN
        rows = np.flatnonzero(~np.isnan(result).any(axis=1))
        if rows.size:
            snapped = self.schema_.snap(result[rows], X[rows])
            ok = self._passes(snapped)
            result[rows] = np.where(ok[:, None], snapped, np.nan)
        return result
