"""The stages of a run: pure functions of small specs, cached on disk with joblib.

Every stage takes component specs, seeds and the code versions of the plugins involved, so that a
cache entry is reused exactly when nothing it depends on changed (editing a plugin's module
invalidates only the entries that used it). Seeds are derived from component names, never from the
method: every method of a cell faces the same data, base model, factuals and updated models.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from functools import cache

import numpy as np
from joblib import Memory
from joblib.memory import MemorizedFunc

from ..api import (
    Classifier,
    ContractError,
    NotApplicable,
    Splits,
    check_recourse_output,
    check_recourse_sets,
)
from ..config import ComponentSpec
from ..datasets import _files as files
from ..registry import code_version
from ..seeding import derive_seed, numpy_rng
from .cache import BACKEND

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BaseModel:
    """The base classifier of a (dataset, model, seed) and the factuals it rejects."""

    classifier: Classifier
    factual_index: np.ndarray


@dataclass(frozen=True)
class Recourse:
    """A method's recourses for the factuals of a (dataset, model, seed), with its timings."""

    recourses: np.ndarray | None
    skip_reason: str | None
    fit_seconds: float
    generate_seconds: float
    sets: np.ndarray | None = None  # several counterfactuals per factual, for ``diversity``


def spec_key(spec: ComponentSpec) -> str:
    """The identity of a component used to derive seeds: its name and parameters."""
    return f"{spec.name}{spec.params_json}"


def data_seed(base_seed: int, dataset: ComponentSpec, seed: int) -> int:
    """Seed for loading and splitting a dataset."""
    return derive_seed(base_seed, "data", spec_key(dataset), seed)


def model_seed(base_seed: int, dataset: ComponentSpec, model: ComponentSpec, seed: int) -> int:
    """Seed for training the base model (and, via the harness, choosing the factuals)."""
    return derive_seed(base_seed, "model", spec_key(dataset), spec_key(model), seed)


@cache
def harness_version() -> str:
    """The code version of the stage functions: part of every stage's cache key.

    That is this module and what it runs (seeding, the API, the data files' reader), and not the
    infrastructure (config, registry, the rest of the harness; see
    :data:`recourse_bench.registry.INFRASTRUCTURE`).
    """
    return code_version(sys.modules[__name__])


@cache
def memory(cache_dir: str) -> Memory:
    """The joblib memory of a cache folder (one per process), on the checked store.

    Entries are written atomically with a content hash, checked before they are unpickled, and
    a bad one is discarded and recomputed (see :mod:`recourse_bench.harness.cache`).
    """
    return Memory(cache_dir, backend=BACKEND, verbose=0)


class StageFunc(MemorizedFunc):
    """joblib's memoised function, without joblib's check of the function's source code.

    joblib keeps a copy of each cached function's source in the cache folder and, when the
    source it reads differs, empties the function's whole cache. Our keys carry the code
    versions of everything an entry was computed with (:meth:`Stages.key`,
    :class:`~recourse_bench.harness.evaluation.EvaluationKey`), so the check adds nothing, and
    it is not safe to interrupt: joblib reads the source under a bare ``except``, so a Ctrl-C
    that lands during the read is swallowed, the function taken for changed and every finished
    entry of the stage deleted (a resumed run then recomputed units that had finished).
    """

    def _check_previous_func_code(self, stacklevel: int = 2) -> bool:
        return True


def memoized(cache_dir: str, func, ignore: list[str]) -> StageFunc:
    """``func`` cached in ``cache_dir`` on the checked store, ``ignore`` left out of its key."""
    store = memory(cache_dir).store_backend
    return StageFunc(func, location=store, backend=BACKEND, ignore=ignore, verbose=0)


def in_cache(memorized: StageFunc, *args) -> bool:
    """Whether the result of a cached function for ``args`` is in its cache folder (and valid)."""
    return bool(memorized.check_call_in_cache(*args))


@dataclass(frozen=True)
class StageKey:
    """What a stage's result depends on: the cache key (with the code versions)."""

    base_seed: int
    n_factuals: int
    seed: int
    specs: tuple[ComponentSpec, ...]
    version: str


@dataclass(frozen=True)
class Stages:
    """Cached access to the stages of one run: its cache folder, base seed and factual budget.

    Every stage function has the signature ``(stages, key)``: the key is hashed, the
    :class:`Stages` (cache and data folders) is not, so a cache folder can be moved, and data
    files are identified by their pinned sha256, not by where they lie.
    """

    cache_dir: str
    base_seed: int
    n_factuals: int
    data_dir: str | None = None

    @property
    def memory(self) -> Memory:
        """The joblib memory of the cache folder."""
        return memory(self.cache_dir)

    def _memo(self, func):
        return memoized(self.cache_dir, func, ["stages"])

    def key(self, seed: int, *specs: ComponentSpec) -> StageKey:
        """The cache key of the stage computed from ``specs`` for ``seed``.

        It holds the specs, the seeds and the code versions of the stage functions and of each
        component (:func:`harness_version`, :meth:`ComponentSpec.code_version`).
        """
        version = "-".join([harness_version(), *(spec.code_version() for spec in specs)])
        return StageKey(self.base_seed, self.n_factuals, seed, specs, version)

    def run(self, func, seed: int, *specs: ComponentSpec):
        """Call a stage function through the cache, with the run's data folder in effect.

        Every stage may read data files (a deferred future split is read when a shift needs
        it), so the config's ``data_dir`` holds for all of them.
        """
        with files.data_dir(self.data_dir):
            return self._memo(func)(self, self.key(seed, *specs))

    def is_cached(self, func, seed: int, *specs: ComponentSpec) -> bool:
        """Whether a stage's result is already in the cache."""
        return in_cache(self._memo(func), self, self.key(seed, *specs))

    def splits(self, seed: int, dataset: ComponentSpec) -> Splits:
        """The dataset's splits for a seed."""
        return self.run(load_splits, seed, dataset)

    def base(self, seed: int, dataset: ComponentSpec, model: ComponentSpec) -> BaseModel:
        """The base model and its factuals."""
        return self.run(fit_base, seed, dataset, model)

    def updates(
        self, seed: int, dataset: ComponentSpec, model: ComponentSpec, shift: ComponentSpec
    ) -> list[Classifier]:
        """The updated models of a shift."""
        return self.run(fit_updates, seed, dataset, model, shift)

    def recourse(
        self, seed: int, dataset: ComponentSpec, model: ComponentSpec, method: ComponentSpec
    ) -> Recourse:
        """A method's recourses for the factuals."""
        return self.run(fit_recourse, seed, dataset, model, method)


def load_splits(stages: Stages, key: StageKey) -> Splits:
    """Stage 1: load, split and encode a dataset."""
    (dataset,) = key.specs
    log.debug("loading %s (seed %d)", dataset.name, key.seed)
    return dataset.build().load(data_seed(key.base_seed, dataset, key.seed))


def fit_base(stages: Stages, key: StageKey) -> BaseModel:
    """Stage 2: train the base model and pick up to ``n_factuals`` test points it rejects."""
    dataset, model = key.specs
    log.debug("training base %s on %s (seed %d)", model.name, dataset.name, key.seed)
    splits = stages.splits(key.seed, dataset)
    trained_seed = model_seed(key.base_seed, dataset, model, key.seed)
    classifier = model.build().fit(splits.X_train, splits.y_train, trained_seed)
    rejected = np.flatnonzero(classifier.predict(splits.X_test) == 0)
    if rejected.size == 0:  # a cell of the matrix with no one to help: skipped, with the reason
        raise NotApplicable(
            f"the base {model.name} model rejects no test point of {dataset.name}: there is no "
            "factual to give recourse to"
        )
    if rejected.size > key.n_factuals:
        rng = numpy_rng(derive_seed(trained_seed, "factuals"))
        rejected = np.sort(rng.choice(rejected, size=key.n_factuals, replace=False))
    return BaseModel(classifier, rejected)


def fit_updates(stages: Stages, key: StageKey) -> list[Classifier]:
    """Stage 3: the updated models of a shift (method independent)."""
    dataset, model, shift = key.specs
    log.debug("building %s on %s/%s (seed %d)", shift.name, dataset.name, model.name, key.seed)
    splits = stages.splits(key.seed, dataset)
    base = stages.base(key.seed, dataset, model)
    names = (spec_key(dataset), spec_key(model), spec_key(shift), key.seed)
    shift_seed = derive_seed(key.base_seed, "shift", *names)
    built, trainer = shift.build(), model.build()
    built.check_applies(trainer, base.classifier)  # a skip with the reason, not a crash
    return list(built.updates(splits, trainer, base.classifier, shift_seed))


def fit_recourse(stages: Stages, key: StageKey) -> Recourse:
    """Stage 4: fit the method on the base model and generate recourse for the factuals."""
    dataset, model, method = key.specs
    log.debug("running %s on %s/%s (seed %d)", method.name, dataset.name, model.name, key.seed)
    splits = stages.splits(key.seed, dataset)
    base = stages.base(key.seed, dataset, model)
    instance = method.build().use_trainer(model.build())
    reason = instance.skip_reason(base.classifier)
    if reason is not None:
        return Recourse(None, reason, 0.0, 0.0)
    if "random_state" in instance.get_params(deep=False):
        names = (spec_key(dataset), spec_key(model), key.seed)
        method_seed = derive_seed(key.base_seed, "method", *names)
        instance.set_params(random_state=method_seed)
    factuals = splits.X_test[base.factual_index]
    start = time.perf_counter()
    try:  # a method that finds it cannot work on these data says so: a recorded skip
        instance.fit(base.classifier, splits)
        fitted = time.perf_counter()
        returned = instance.generate(factuals.copy())
    except NotApplicable as exc:
        return Recourse(None, str(exc), 0.0, 0.0)
    generated = time.perf_counter()
    try:  # whatever the method returned is checked against the contract before it is scored
        recourses = check_recourse_output(returned, factuals)
        sets = check_recourse_sets(instance.recourse_sets(), factuals)
    except ContractError as exc:
        raise ContractError(f"{method.name}.generate: {exc}") from None
    return Recourse(recourses, None, fitted - start, generated - fitted, sets)
