"""Contracts shared by every part of recourse-bench.

The data model is array-first: every dataset is encoded into *model space*, where each feature lies
in [0, 1] (scaled with training statistics) and categorical features are one-hot groups. A
:class:`Schema` says what each model-space column is and what a recourse may do with it; a
:class:`Splits` carries the arrays. Plugins (datasets, model trainers, recourse methods, shifts) are
small classes whose ``__init__`` only stores keyword parameters, in the scikit-learn manner, so that
``get_params``, ``set_params``, ``clone`` and a readable :attr:`Component.label` come for free.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, Protocol, runtime_checkable

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

FeatureKind = Literal["continuous", "integer", "binary", "categorical", "ordinal"]

#: The constraints a recourse must keep, in the order a broken one is reported.
CONSTRAINTS = ("immutable", "direction", "bound", "one-hot", "integer")

#: Tolerance in model space (features in [0, 1]) of every feasibility check.
FEASIBILITY_TOLERANCE = 1e-6
Stage = Literal["static", "update", "shift"]


# --------------------------------------------------------------------------------------- errors
class RecourseBenchError(Exception):
    """Base class of every error that recourse-bench reports to a user as one line."""


class ConfigError(RecourseBenchError, ValueError):
    """A configuration, a component name or a parameter is invalid."""


class UnknownNameError(ConfigError, KeyError):
    """A plugin name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DuplicateNameError(RecourseBenchError):
    """Two plugins of one kind registered under the same name."""


class NotFittedError(RecourseBenchError, _SklearnNotFittedError):
    """``generate`` was called before ``fit``."""


class DataError(RecourseBenchError):
    """A dataset file or array is missing, corrupted or malformed."""


class ContractError(RecourseBenchError):
    """What a plugin returned breaks the contract of its kind (a recourse array of another shape).

    The message says what was expected, what came and how to fix it (:func:`contract_message`).
    Unlike :class:`DataError` and :class:`ConfigError` it is the plugin's fault, not the user's
    input: the harness records the plugin's cells as ``error`` rows and the run goes on.
    """


def contract_message(expected: str, got: str, fix: str) -> str:
    """The three parts of every contract message: ``expected ...; got .... To fix: ...``."""
    return f"expected {expected}; got {got}. To fix: {fix}"


class NotApplicable(RecourseBenchError):
    """A shift cannot apply to this dataset or trainer (recorded as ``skipped`` with the reason)."""


# --------------------------------------------------------------------------------------- schema
@dataclass(frozen=True)
class Schema:
    """What each model-space column is and what a recourse may do with it.

    Parameters
    ----------
    features : tuple of str
        Model-space column names (one-hot columns are named ``feature=value``).
    kinds : tuple of str
        Per column: ``continuous``, ``integer``, ``binary``, ``categorical`` (one-hot member) or
        ``ordinal`` (a categorical feature as one level code in [0, 1], on a grid of ``steps``).
    immutable : tuple of bool
        Per column: True if a recourse must leave it unchanged (e.g. sex, foreign worker).
    direction : tuple of int
        Per column: +1 may only increase (age), -1 may only decrease, 0 either way.
    lower, upper : tuple of float
        Per column bounds in model space.
    steps : tuple of float
        Per column grid step in model space: one raw unit for integer features, one level for
        ordinal ones; 0 otherwise.
    groups : tuple of tuple of int
        Column indices of each one-hot group: exactly one member of a group is 1.
    favourable_class : int
        The desired class; always 1 after loading.
    """

    features: tuple[str, ...]
    kinds: tuple[str, ...]
    immutable: tuple[bool, ...]
    direction: tuple[int, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    steps: tuple[float, ...]
    groups: tuple[tuple[int, ...], ...] = ()
    favourable_class: int = 1

    def __post_init__(self) -> None:
        d = len(self.features)
        for name in ("kinds", "immutable", "direction", "lower", "upper", "steps"):
            if len(getattr(self, name)) != d:
                raise DataError(
                    f"Schema.{name} has {len(getattr(self, name))} entries for {d} features"
                )

    @property
    def n_features(self) -> int:
        """Number of model-space columns."""
        return len(self.features)

    @property
    def mutable_mask(self) -> np.ndarray:
        """Boolean array, True where a recourse may change the column."""
        return ~np.asarray(self.immutable, dtype=bool)

    @property
    def lower_array(self) -> np.ndarray:
        """Lower bounds as a float array."""
        return np.asarray(self.lower, dtype=float)

    @property
    def upper_array(self) -> np.ndarray:
        """Upper bounds as a float array."""
        return np.asarray(self.upper, dtype=float)

    def bounds_for(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-row box for recourses of factuals ``X``: bounds, directions and immutables.

        Immutable columns are pinned to the factual; a column that may only increase has the
        factual as its lower bound (and symmetrically for decrease).
        """
        X = np.asarray(X, dtype=float)
        lo = np.broadcast_to(self.lower_array, X.shape).copy()
        hi = np.broadcast_to(self.upper_array, X.shape).copy()
        direction = np.asarray(self.direction)
        up, down = direction > 0, direction < 0
        lo[:, up] = np.maximum(lo[:, up], X[:, up])
        hi[:, down] = np.minimum(hi[:, down], X[:, down])
        frozen = ~self.mutable_mask
        lo[:, frozen] = X[:, frozen]
        hi[:, frozen] = X[:, frozen]
        return lo, hi

    def snap(self, X_cf: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Make candidate recourses feasible for factuals ``X``.

        Clips to :meth:`bounds_for`, rounds integer and ordinal columns to their grid and each
        one-hot group to its largest member. Rows of NaN stay NaN.
        """
        X_cf = np.array(X_cf, dtype=float, copy=True)
        lo, hi = self.bounds_for(X)
        X_cf = np.clip(X_cf, lo, hi)
        steps = np.asarray(self.steps, dtype=float)
        grid = steps > 0
        if grid.any():
            snapped = np.round((X_cf[:, grid] - self.lower_array[grid]) / steps[grid])
            X_cf[:, grid] = np.clip(
                self.lower_array[grid] + snapped * steps[grid], lo[:, grid], hi[:, grid]
            )
        for group in self.groups:
            cols = list(group)
            block = X_cf[:, cols]
            missing = np.isnan(block).any(axis=1)
            onehot = np.zeros_like(block)
            winner = np.argmax(np.nan_to_num(block, nan=-np.inf), axis=1)
            onehot[np.arange(len(block)), winner] = 1.0
            onehot[missing] = np.nan
            X_cf[:, cols] = onehot
        return X_cf

    def broken_constraints(
        self, X_cf: np.ndarray, X: np.ndarray, atol: float = FEASIBILITY_TOLERANCE
    ) -> dict[str, np.ndarray]:
        """Per kind of constraint (:data:`CONSTRAINTS`), the (n, d) cells of ``X_cf`` that break it.

        ``immutable``: an immutable column differs from the factual; ``direction``: a column that
        may only increase (decrease) went down (up); ``bound``: a column lies outside its
        ``[lower, upper]``; ``one-hot``: a member of a one-hot group that is not 0 or 1, or a group
        whose members do not sum to 1 (every member of such a group is marked); ``integer``: an
        integer or ordinal column off its grid of ``steps``. Every comparison allows ``atol`` in
        model space; a bound or grid is held only against a column the recourse changed (a factual's
        own value is not the method's doing). Rows of NaN (no recourse) break nothing.
        """
        X_cf = np.asarray(X_cf, dtype=float)
        X = np.asarray(X, dtype=float)
        if X_cf.ndim != 2 or X_cf.shape != X.shape or X_cf.shape[1] != self.n_features:
            raise DataError(
                f"recourses of shape {X_cf.shape} do not match factuals of shape {X.shape} "
                f"with {self.n_features} features"
            )
        found = ~np.isnan(X_cf).any(axis=1)[:, None]
        mutable = self.mutable_mask
        direction = np.asarray(self.direction)
        with np.errstate(invalid="ignore"):
            changed = np.abs(X_cf - X) > atol  # a factual's own value is never held against it
            immutable = ~mutable & changed
            up = mutable & (direction > 0) & (X_cf < X - atol)
            down = mutable & (direction < 0) & (X_cf > X + atol)
            bound = (X_cf < self.lower_array - atol) | (X_cf > self.upper_array + atol)
            one_hot = np.zeros_like(bound)
            for group in self.groups:
                cols = list(group)
                block = X_cf[:, cols]
                binary = (np.abs(block) <= atol) | (np.abs(block - 1.0) <= atol)
                sums_to_one = np.abs(block.sum(axis=1, keepdims=True) - 1.0) <= atol * len(cols)
                one_hot[:, cols] = ~binary | ~sums_to_one
            steps = np.asarray(self.steps, dtype=float)
            grid = mutable & (steps > 0)
            integer = np.zeros_like(bound)
            if grid.any():
                on_grid = (
                    self.lower_array[grid]
                    + np.round((X_cf[:, grid] - self.lower_array[grid]) / steps[grid]) * steps[grid]
                )
                integer[:, grid] = np.abs(X_cf[:, grid] - on_grid) > atol
        cells = {
            "immutable": immutable,
            "direction": up | down,
            "bound": bound & mutable & changed,
            "one-hot": one_hot & mutable,
            "integer": integer & changed,
        }
        return {kind: mask & found for kind, mask in cells.items()}

    def violations(
        self, X_cf: np.ndarray, X: np.ndarray, atol: float = FEASIBILITY_TOLERANCE
    ) -> np.ndarray:
        """Per row, True if a recourse breaks any constraint (see :meth:`broken_constraints`)."""
        broken = self.broken_constraints(X_cf, X, atol)
        return np.logical_or.reduce([mask.any(axis=1) for mask in broken.values()])

    def first_violation(
        self, X_cf: np.ndarray, X: np.ndarray, atol: float = FEASIBILITY_TOLERANCE
    ) -> np.ndarray:
        """Per row, the first kind of :data:`CONSTRAINTS` it breaks ("" where it breaks none)."""
        first = np.full(len(X_cf), "", dtype=object)
        for kind, mask in reversed(self.broken_constraints(X_cf, X, atol).items()):
            first[mask.any(axis=1)] = kind
        return first


NO_RECOURSE_FIX = (
    "return np.full_like(X, np.nan) filled with a recourse in each row where one was found"
)


def check_recourse_output(out: Any, factuals: np.ndarray) -> np.ndarray:
    """What ``generate(factuals)`` returned, checked against the method contract.

    The contract: a float ndarray of the factuals' shape whose rows are each all finite (a
    recourse) or all NaN (none found). Returns ``out`` as float64; raises
    :class:`ContractError` (expected / got / fix) for anything else: another type (a list, a
    tensor), another shape, a non-float dtype, a row that is partly NaN or holds an infinity.
    The conformance kit (``check_output_shape``) and the harness judge by this one function.
    """
    if not isinstance(out, np.ndarray):
        raise ContractError(
            contract_message(
                "generate(X) to return a numpy array", type(out).__name__, NO_RECOURSE_FIX
            )
        )
    if out.shape != factuals.shape:
        raise ContractError(
            contract_message(
                f"an output of shape {factuals.shape} (n, d)", f"shape {out.shape}", NO_RECOURSE_FIX
            )
        )
    if not np.issubdtype(out.dtype, np.floating):
        raise ContractError(
            contract_message(
                "a float array (NaN marks a missing recourse)",
                f"dtype {out.dtype}",
                NO_RECOURSE_FIX,
            )
        )
    out = np.asarray(out, dtype=float)
    broken = ~(np.isfinite(out).all(axis=1) | np.isnan(out).all(axis=1))
    if broken.any():
        rows = np.flatnonzero(broken)
        shown = ", ".join(map(str, rows[:5])) + (
            f" and {len(rows) - 5} more" if len(rows) > 5 else ""
        )
        raise ContractError(
            contract_message(
                "each row to be all finite (a recourse) or all NaN (none found)",
                f"{'row' if len(rows) == 1 else 'rows'} {shown} partly NaN or infinite",
                "set a whole row to NaN where no recourse was found: X_cf[~found] = np.nan",
            )
        )
    return out


def check_recourse_sets(sets: Any, factuals: np.ndarray) -> np.ndarray | None:
    """What ``recourse_sets()`` returned after ``generate(factuals)``, checked (None passes).

    The contract: None, or a float ndarray of shape ``(n, k, d)`` for the ``n`` factuals of
    shape ``(n, d)``, ``k >= 1``, each member all finite or all NaN; raises
    :class:`ContractError` otherwise.
    """
    if sets is None:
        return None
    n, d = factuals.shape
    fix = "return the last generate's sets as an (n, k, d) float array, or None"
    if not isinstance(sets, np.ndarray) or not np.issubdtype(sets.dtype, np.floating):
        got = type(sets).__name__ if not isinstance(sets, np.ndarray) else f"dtype {sets.dtype}"
        raise ContractError(contract_message("recourse_sets() to be a float array", got, fix))
    if sets.ndim != 3 or sets.shape[0] != n or sets.shape[2] != d or sets.shape[1] < 1:
        raise ContractError(
            contract_message(f"recourse_sets() of shape ({n}, k, {d})", f"{sets.shape}", fix)
        )
    flat = sets.reshape(-1, d)
    if (~(np.isfinite(flat).all(axis=1) | np.isnan(flat).all(axis=1))).any():
        raise ContractError(
            contract_message(
                "each member of recourse_sets() all finite or all NaN", "a partly NaN member", fix
            )
        )
    return np.asarray(sets, dtype=float)


class Encoder(Protocol):
    """Maps model space back to raw, human units."""

    def inverse_transform(self, X: np.ndarray) -> Any:
        """Return the rows of ``X`` in raw units (a DataFrame)."""


@dataclass(frozen=True)
class Splits:
    """A dataset encoded in model space.

    Attributes
    ----------
    X_train, y_train, X_test, y_test : ndarray
        Features in model space and 0/1 labels (1 is favourable).
    schema : Schema
        What each column is.
    encoder : Encoder or None
        Maps model space back to raw units for reports.
    future : tuple of (X, y) or None
        A shifted split for natural shifts (temporal, geospatial, correction), when it is
        materialised with the data; use :meth:`future_split`, which also reads a deferred one.
    future_source : callable or None
        Reads and encodes a deferred future split on demand (its files may not be needed, or
        present, for the base data).
    oracle : Classifier or None
        The ground-truth labeller where the dataset has one: the Bayes classifier of synthetic
        data, or the gold labeller of a real dataset loaded with ``labels: gold``.
    name : str
        The dataset's registered name.
    concept : callable or None
        Where the dataset's true concept is linear and known (``synthetic-drift``): a function
        of an angle in radians giving the model-space log-odds ``(coef, intercept)`` of that
        concept with its boundary rotated by the angle; the ``concept-drift`` shift draws new
        labels from it.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    schema: Schema
    encoder: Encoder | None = None
    future: tuple[np.ndarray, np.ndarray] | None = None
    oracle: Classifier | None = None
    name: str = ""
    future_source: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None
    concept: Callable[[float], tuple[np.ndarray, float]] | None = None

    def future_split(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The natural-shift split ``(X, y)`` in this model space, or None if there is none.

        A deferred split is read now; a missing file raises :class:`DataError` saying how to
        get it.
        """
        if self.future is not None:
            return self.future
        return self.future_source() if self.future_source is not None else None

    @property
    def has_future(self) -> bool:
        """Whether the dataset has a natural-shift split (materialised or deferred)."""
        return self.future is not None or self.future_source is not None

    def __post_init__(self) -> None:
        parts = {"X_train": self.X_train, "X_test": self.X_test}
        if self.future is not None:
            parts["X_future"] = self.future[0]
        for part, X in parts.items():
            if X.ndim != 2 or X.shape[1] != self.schema.n_features:
                raise DataError(
                    f"{part} has shape {X.shape}; expected (n, {self.schema.n_features})"
                )
            if not np.isfinite(X).all():
                raise DataError(f"{part} of dataset {self.name!r} contains NaN or inf values")


# ----------------------------------------------------------------------------------- classifier
@runtime_checkable
class Classifier(Protocol):
    """A trained binary classifier in model space (scikit-learn conventions).

    ``predict_proba`` returns an (n, 2) array; column 1 is the favourable class. Capabilities are
    declared as attributes: ``differentiable`` classifiers also offer ``logits(X: torch.Tensor)``
    (the log-odds of class 1, differentiable in ``X``); ``linear`` ones offer ``coef_`` and
    ``intercept_`` such that the log-odds are ``X @ coef_ + intercept_``.
    """

    differentiable: bool
    linear: bool

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (n, 2)."""

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted 0/1 labels, shape (n,)."""


# ------------------------------------------------------------------------- parameter constraints
@dataclass(frozen=True)
class Interval:
    """A number in a range: ``Interval("int", low=1)`` admits the integers >= 1.

    ``kind`` ``"float"`` admits ints too; booleans and non-finite numbers are never admitted.
    """

    kind: Literal["int", "float"] = "float"
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def admits(self, value: Any) -> bool:
        """Whether ``value`` is a number of this kind inside the range."""
        types = (int,) if self.kind == "int" else (int, float)
        if isinstance(value, bool) or not isinstance(value, types) or not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        return self.high is None or (value < self.high if self.open_high else value <= self.high)

    def describe(self, plural: bool = False) -> str:
        """``an integer >= 1``, ``a number > 0 and < 1`` (``numbers ...`` with ``plural``)."""
        nouns = {"int": ("an integer", "integers"), "float": ("a number", "numbers")}
        lower = "" if self.low is None else f"{'>' if self.open_low else '>='} {self.low:g}"
        upper = "" if self.high is None else f"{'<' if self.open_high else '<='} {self.high:g}"
        wanted = " and ".join(part for part in (lower, upper) if part)
        noun = nouns[self.kind][plural]
        return f"{noun} {wanted}" if wanted else noun


@dataclass(frozen=True)
class Options:
    """One of a few values: ``Options(("l1", "l2"))``."""

    values: tuple[Any, ...]

    def admits(self, value: Any) -> bool:
        """Whether ``value`` is one of the options (of the same type: True is not 1)."""
        return any(same_value(value, option) for option in self.values)

    def describe(self) -> str:
        """``one of l1, l2``, or the value itself where there is one."""
        if len(self.values) == 1:
            return repr(self.values[0])
        return "one of " + ", ".join(map(str, self.values))


@dataclass(frozen=True)
class ListOf:
    """A list (or tuple) of values that each lie in ``item``; ``non_empty`` refuses ``[]``."""

    item: Interval | Text
    non_empty: bool = False

    def admits(self, value: Any) -> bool:
        """Whether ``value`` is a list of admitted items."""
        if not isinstance(value, list | tuple) or (self.non_empty and not value):
            return False
        return all(self.item.admits(v) for v in value)

    def describe(self) -> str:
        """``a non-empty list of numbers > 0``."""
        return f"a {'non-empty ' if self.non_empty else ''}list of {self.item.describe(True)}"


@dataclass(frozen=True)
class Text:
    """Any string, described by what it names: ``Text("a model-space feature name")``.

    ``plural`` names several of them, for a :class:`ListOf` texts.
    """

    what: str = "a string"
    plural: str = "strings"

    def admits(self, value: Any) -> bool:
        """Whether ``value`` is a string."""
        return isinstance(value, str)

    def describe(self, plural: bool = False) -> str:
        """What the string names (or, with ``plural``, what several of them name)."""
        return self.plural if plural else self.what


Constraint = Interval | Options | ListOf | Text


def admits(constraint: Constraint | None, value: Any) -> bool:
    """Whether one constraint admits ``value`` (None admits None)."""
    return value is None if constraint is None else constraint.admits(value)


def describe_constraints(allowed: tuple[Constraint | None, ...]) -> str:
    """``a number > 0 or 'auto'``; ``(or null)`` where None is admitted."""
    text = " or ".join(c.describe() for c in allowed if c is not None) or "null"
    return f"{text} (or null)" if None in allowed and text != "null" else text


# --------------------------------------------------------------------------------- capabilities
@runtime_checkable
class Finetunable(Protocol):
    """A trainer that continues training a model it made (needed by the ``finetune`` shift)."""

    def finetune(
        self, classifier: Classifier, X: np.ndarray, y: np.ndarray, seed: int, severity: float
    ) -> Classifier:
        """A copy of ``classifier`` trained further on ``(X, y)``; ``classifier`` is unchanged."""


@runtime_checkable
class ArchitectureFamily(Protocol):
    """A trainer with other architectures in its family (needed by ``architecture``)."""

    def architecture_variants(self) -> list[dict[str, Any]]:
        """Parameter changes, each giving another architecture (may include its own)."""


@runtime_checkable
class Tunable(Protocol):
    """A trainer with numeric hyperparameters a shift may perturb (``hyperparameters``)."""

    tunable_hyperparameters: tuple[str, ...]


@runtime_checkable
class Perturbable(Protocol):
    """A classifier whose parameters can be perturbed (needed by ``weight-perturbation``)."""

    def perturbed(self, scale: float, kind: str, rng: np.random.Generator) -> Classifier:
        """A copy with every parameter perturbed by noise of ``scale``; the model is unchanged."""


def _members(capability: type) -> list[str]:
    return sorted(
        {
            name
            for base in capability.__mro__
            if base not in (object, Protocol, Generic)
            for name in (*vars(base), *getattr(base, "__annotations__", {}))
            if not name.startswith("_")
        }
    )


def _lacks(obj: Any, capability: type) -> str:
    """``has no finetune``: the members of ``capability`` that ``obj`` lacks."""
    missing = [name for name in _members(capability) if getattr(obj, name, None) is None]
    return f"has no {', '.join(missing)}"


def provides(obj: Any, capability: type) -> bool:
    """Whether ``obj`` (an instance or a class) has every member of the protocol ``capability``.

    Unlike ``isinstance`` it also answers for classes (a trainer's ``classifier_type``), and a
    member that is None (a trainer that declares no tunable hyperparameters) counts as absent.
    """
    return all(getattr(obj, name, None) is not None for name in _members(capability))


# ----------------------------------------------------------------------------------- components
def _validating(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` that first calls ``self.validate_params()``."""

    @functools.wraps(method)
    def run(self: Component, *args: Any, **kwargs: Any) -> Any:
        self.validate_params()
        return method(self, *args, **kwargs)

    run._validates = True  # type: ignore[attr-defined]
    return run


class Component(BaseEstimator):
    """Base of every parametrised plugin: datasets, trainers, methods and shifts.

    Subclasses list their parameters as keyword arguments of ``__init__`` and only store them.
    """

    name: ClassVar[str] = ""
    #: Per ``__init__`` parameter, the values it admits: any of the constraints
    #: (:class:`Interval`, :class:`Options`, :class:`ListOf`, :class:`Text`; None admits None),
    #: in the manner of scikit-learn's ``_parameter_constraints``.
    parameter_constraints: ClassVar[dict[str, tuple[Constraint | None, ...]]] = {}
    #: Components this one obtains from the registry, e.g. ``(("method", "wachter"),)``: their
    #: code is part of this component's cache keys (see ``registry.component_version``).
    uses: ClassVar[tuple[tuple[str, str], ...]] = ()
    #: The methods that validate the parameters before they run (``load``, ``fit``, ...).
    validated_entry_points: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Make each entry point a subclass defines validate the parameters first.

        So a component used directly (``Wachter(lam=-1).fit(...)``) fails in one clear line
        before any work, as scikit-learn estimators do in ``fit``; the harness validates every
        component once more when its spec is built from a config.
        """
        super().__init_subclass__(**kwargs)
        for name in cls.validated_entry_points:
            method = cls.__dict__.get(name)
            if callable(method) and not getattr(method, "_validates", False):
                setattr(cls, name, _validating(method))

    @classmethod
    def param_names(cls) -> list[str]:
        """Names of the keyword parameters ``__init__`` accepts."""
        return sorted(cls._get_param_names())

    @classmethod
    def param_defaults(cls) -> dict[str, Any]:
        """Default value of every keyword parameter that has one."""
        return {
            p.name: p.default
            for p in inspect.signature(cls.__init__).parameters.values()
            if p.default is not inspect.Parameter.empty
        }

    def validate_params(self) -> None:
        """Raise one :class:`ConfigError` for the first parameter that breaks its constraints.

        Every parameter is declared in the class attribute :attr:`parameter_constraints`
        (checked by the conformance kits); a component with a rule across parameters (a width
        that must be a multiple of the number of heads) extends this method, calling it first.
        The harness validates every component once, when its spec is built from a config.
        """
        for name, allowed in self.parameter_constraints.items():
            value = getattr(self, name)
            if not any(admits(constraint, value) for constraint in allowed):
                raise ConfigError(
                    f"{self.name}: {name} must be {describe_constraints(allowed)}, got {value!r}"
                )

    @property
    def label(self) -> str:
        """Readable label: the name plus every parameter that differs from its default."""
        defaults = self.param_defaults()
        changed = [
            f"{key}={value!r}"
            for key, value in sorted(self.get_params(deep=False).items())
            if key not in defaults or not same_value(defaults[key], value)
        ]
        name = self.name or type(self).__name__
        return f"{name}({', '.join(changed)})" if changed else name


def same_value(a: Any, b: Any) -> bool:
    """Whether two parameter values are equal and of the same type (lists equal tuples)."""
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:  # arrays or odd types: compare their representations
        return repr(a) == repr(b)


class Dataset(Component):
    """A dataset plugin: ``load(seed)`` returns :class:`Splits` in model space."""

    validated_entry_points = ("load",)

    def load(self, seed: int) -> Splits:
        """Load, split (with ``seed``) and encode the data."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Fetch files once (sha256-checked, cached). Embedded datasets need nothing."""

    def data_files(self, future: bool = False) -> tuple[Any, ...]:
        """The files :meth:`load` reads (with ``future``, also those of the future split).

        Each is a :class:`recourse_bench.datasets._files.DataFile`; generated datasets have
        none. ``run --dry-run`` checks that each is present and verified before any work.
        """
        return ()


class Trainer(Component):
    """A model plugin: ``fit(X, y, seed)`` trains and returns a :class:`Classifier`.

    ``fit_many(samples, seeds)`` trains K classifiers at once, model k equal to
    ``fit(*samples[k], seeds[k])``; the shifts that retrain K updated models call it once (or
    :meth:`fit_each` for K variants of the trainer), so that a trainer able to train several
    models together (the torch trainers, as one batched network) does so. The default loops
    over ``fit``.

    A trainer declares what its models can do through ``classifier_type`` (the class ``fit``
    returns, None where it varies) and, by implementing them, the capabilities shifts need
    (:class:`Finetunable`, :class:`ArchitectureFamily`, :class:`Tunable`).
    """

    classifier_type: ClassVar[type | None] = None
    #: What the trained models offer recourse methods (see :data:`MODEL_CAPABILITIES`):
    #: ``recourse-bench list methods`` shows from it which models a method runs on, and the
    #: model kit checks that a fitted model has each declared capability.
    model_capabilities: ClassVar[frozenset[str]] = frozenset()
    validated_entry_points = ("fit", "fit_many", "finetune")

    def fit(self, X: np.ndarray, y: np.ndarray, seed: int) -> Classifier:
        """Train a classifier on model-space data with the given seed."""
        raise NotImplementedError

    def fit_many(
        self, samples: Sequence[tuple[np.ndarray, np.ndarray]], seeds: Sequence[int]
    ) -> list[Classifier]:
        """Train K classifiers: model k on ``samples[k] = (X_k, y_k)`` with ``seeds[k]``.

        Model k must be what ``fit(X_k, y_k, seeds[k])`` returns (the same distribution; the
        torch trainers give the same numbers up to rounding), so a shift that trains K updated
        models calls this once and a trainer may train them together (the torch trainers
        train them as one batched network). This default calls :meth:`fit` K times.

        Parameters
        ----------
        samples : sequence of (X, y)
            The K training samples in model space (they may differ in size).
        seeds : sequence of int
            One seed per sample.

        Returns
        -------
        list of Classifier
            The K classifiers, in the order of ``samples``.
        """
        check_many(samples, seeds)
        return [self.fit(X, y, seed) for (X, y), seed in zip(samples, seeds, strict=True)]

    def fit_each(
        self,
        trainers: Sequence[Trainer],
        samples: Sequence[tuple[np.ndarray, np.ndarray]],
        seeds: Sequence[int],
    ) -> list[Classifier]:
        """Model k trained by ``trainers[k]`` (variants of this trainer) on ``samples[k]``.

        The shifts that retrain with other parameters (``hyperparameters``, ``architecture``)
        ask the base trainer to train its variants. This default groups the trainers with equal
        class and parameters and calls :meth:`fit_many` once per group; a trainer class that
        can train models of different parameters together (the torch trainers: other learning
        rates and epochs) overrides it. Model k is always ``trainers[k].fit(*samples[k],
        seeds[k])``, in the order of ``trainers``.
        """
        check_many(samples, seeds, trainers)
        groups: list[list[int]] = []
        for k, trainer in enumerate(trainers):
            for group in groups:
                first = trainers[group[0]]
                if type(first) is type(trainer) and same_value(
                    sorted(first.get_params(deep=False).items()),
                    sorted(trainer.get_params(deep=False).items()),
                ):
                    group.append(k)
                    break
            else:
                groups.append([k])
        models: dict[int, Classifier] = {}
        for group in groups:
            fitted = trainers[group[0]].fit_many(
                [samples[k] for k in group], [seeds[k] for k in group]
            )
            models.update(zip(group, fitted, strict=True))
        return [models[k] for k in range(len(trainers))]


def check_many(
    samples: Sequence[Any], seeds: Sequence[Any], trainers: Sequence[Any] | None = None
) -> None:
    """Raise :class:`ConfigError` unless there is one seed (and trainer) per sample."""
    counts = [len(samples), len(seeds), *([] if trainers is None else [len(trainers)])]
    if len(set(counts)) > 1:
        what = "seeds" if trainers is None else "seeds and trainers"
        raise ConfigError(f"fit_many needs as many {what} as samples, got {counts}")


#: A model's capabilities that recourse methods need, and how a fitted classifier shows each.
MODEL_CAPABILITIES = {
    "gradients": "logits differentiable in the input (Classifier.differentiable)",
    "linear": "linear weights coef_ and intercept_ (Classifier.linear)",
    "trees": "the decision trees of a forest (Classifier.trees)",
}


def model_has(model: Any, capability: str) -> bool:
    """Whether a fitted classifier has ``capability`` (a key of :data:`MODEL_CAPABILITIES`)."""
    attribute = {"gradients": "differentiable", "linear": "linear", "trees": "trees"}[capability]
    return bool(getattr(model, attribute, None))


@dataclass(frozen=True)
class MethodTags:
    """Capabilities a recourse method declares (never sniffed from a model's internals).

    Attributes
    ----------
    requires_differentiable : bool
        Needs ``Classifier.logits`` (gradient-based search).
    requires_linear : bool
        Needs ``coef_`` and ``intercept_``.
    requires_trees : bool
        Needs the model's decision trees (``Classifier.trees``: a random forest or a tree).
    trains : bool
        ``fit`` learns from the training data (GenRe, nearest neighbour).
    stochastic : bool
        Results depend on ``random_state`` (the kit checks that an untagged method's do not).
    batch_invariant : bool
        A factual's recourse does not depend on the other factuals of the batch (the kit
        checks it by generating in chunks).
    """

    requires_differentiable: bool = False
    requires_linear: bool = False
    requires_trees: bool = False
    trains: bool = False
    stochastic: bool = False
    batch_invariant: bool = False

    @property
    def needs(self) -> tuple[str, ...]:
        """The model capabilities (keys of :data:`MODEL_CAPABILITIES`) the method needs."""
        flags = {
            "gradients": self.requires_differentiable,
            "linear": self.requires_linear,
            "trees": self.requires_trees,
        }
        return tuple(name for name, flag in flags.items() if flag)

    def runs_on(self, trainer: type[Trainer] | Trainer) -> bool:
        """Whether the models ``trainer`` declares (``model_capabilities``) meet :attr:`needs`."""
        return set(self.needs) <= trainer.model_capabilities


class RecourseMethod(Component):
    """A recourse method: ``fit(model, splits)`` then ``generate(X) -> X_cf``.

    ``generate`` handles all factuals in one batched computation and returns an array of the same
    shape; a row of NaN means no recourse was found for that factual.
    """

    tags: ClassVar[MethodTags] = MethodTags()
    validated_entry_points = ("fit",)

    def skip_reason(self, model: Classifier) -> str | None:
        """Why this method cannot run on ``model`` (recorded as a skip), or None."""
        if self.tags.requires_differentiable and not getattr(model, "differentiable", False):
            return f"{self.name} needs a differentiable model; {type(model).__name__} is not"
        if self.tags.requires_linear and not getattr(model, "linear", False):
            return f"{self.name} needs a linear model; {type(model).__name__} is not"
        if self.tags.requires_trees and not getattr(model, "trees", None):
            return f"{self.name} needs a tree model (forest); {type(model).__name__} is not"
        return None

    def fit(self, model: Classifier, splits: Splits) -> RecourseMethod:
        """Attach the model and data; methods that learn override and call this first.

        Raises :class:`NotApplicable` (with :meth:`skip_reason`) for a model the method cannot
        use, such as a random forest for a gradient method.
        """
        reason = self.skip_reason(model)
        if reason is not None:
            raise NotApplicable(reason)
        self.model_ = model
        self.schema_ = splits.schema
        return self

    def use_trainer(self, trainer: Trainer | None) -> RecourseMethod:
        """Say which trainer built the model the method is about to be fitted on; returns self.

        The harness and the conformance kit call it before :meth:`fit`, so that a method which
        samples model changes from the model's own training recipe (BetaRCE retrains it with
        other seeds or bootstrap samples) finds the trainer in ``self.trainer_``. Methods that do
        not need it ignore it; a method fitted by hand without this call sees None.
        """
        self.trainer_ = trainer
        return self

    def generate(self, X: np.ndarray) -> np.ndarray:
        """Return recourses for the factuals ``X`` (NaN rows where none was found)."""
        raise NotImplementedError

    def recourse_sets(self) -> np.ndarray | None:
        """The several counterfactuals per factual of the last ``generate``, if the method has them.

        A method that computes a set per factual (DiCE's ``k``) returns it here, shape
        ``(n, k, d)`` for the ``n`` factuals of the last ``generate``, NaN rows for the members
        it does not offer; the harness reads it right after ``generate`` and the ``diversity``
        metric scores it. None (the default): one recourse per factual.
        """
        return None

    def check_factuals(self, X: Any) -> np.ndarray:
        """Return the factuals as a new float64 (n, d) array; raise one clear error if unusable."""
        try:
            X = np.array(X, dtype=float)
        except (TypeError, ValueError) as exc:
            raise DataError(f"{self.name}: factuals must be numbers ({exc})") from None
        d = self.schema_.n_features
        if X.ndim != 2:
            raise DataError(
                f"{self.name}: expected a 2-D array of factuals (n, {d}), got shape {X.shape}; "
                "pass one factual as x.reshape(1, -1)"
            )
        if X.shape[1] != d:
            raise DataError(
                f"{self.name}: factuals have {X.shape[1]} columns, but the data the method was "
                f"fitted on has {d}; encode them with the same dataset"
            )
        bad = ~np.isfinite(X).all(axis=1)
        if bad.any():
            rows = ", ".join(map(str, np.flatnonzero(bad)[:5]))
            raise DataError(
                f"{self.name}: factual rows {rows} contain NaN or inf; drop or impute them first"
            )
        return X

    def check_fitted(self) -> None:
        """Raise :class:`NotFittedError` unless :meth:`fit` was called."""
        if not hasattr(self, "model_"):
            raise NotFittedError(
                f"{self.label} is not fitted yet: call fit(model, splits) before generate(X)"
            )


class Shift(Component):
    """A model update or distribution shift producing the updated models.

    ``updates(splits, trainer, base_model, seed)`` returns ``n_models`` classifiers and never
    mutates ``base_model``. Shifts with a size have a ``severity`` parameter (0 = no shift). A
    shift that cannot apply (a natural shift on a dataset without a future split, say) raises
    :class:`NotApplicable`; the harness records the cells as skipped with that reason.
    """

    validated_entry_points = ("updates",)

    def updates(
        self, splits: Splits, trainer: Trainer, base_model: Classifier, seed: int
    ) -> list[Classifier]:
        """Return the updated models."""
        raise NotImplementedError

    #: Capabilities (protocols of this module) the trainer must provide.
    trainer_needs: ClassVar[tuple[type, ...]] = ()
    #: Capabilities the trainer's models (its ``classifier_type``) must provide.
    model_needs: ClassVar[tuple[type, ...]] = ()

    def reads_future(self) -> bool:
        """Whether :meth:`updates` reads the dataset's future split (its files must be there)."""
        return False

    def not_applicable(self, trainer: Trainer) -> str | None:
        """Why this shift cannot update the models of ``trainer`` (None when it can).

        By default, the first capability of ``trainer_needs`` the trainer lacks, or of
        ``model_needs`` its ``classifier_type`` lacks; a shift with more conditions (a trainer
        with no other architecture) extends it. :meth:`updates` raises :class:`NotApplicable`
        with this reason, and ``recourse-bench list models`` shows it.
        """
        who = trainer.name or type(trainer).__name__
        for capability in self.trainer_needs:
            if not provides(trainer, capability):
                lacks = _lacks(trainer, capability)
                return f"{self.name} needs a trainer that is {capability.__name__} ({who} {lacks})"
        model = trainer.classifier_type
        for capability in self.model_needs:
            if model is not None and not provides(model, capability):
                lacks = _lacks(model, capability)
                return f"{self.name} needs models that are {capability.__name__} ({who}'s {lacks})"
        return None

    def check_applies(self, trainer: Trainer, base_model: Classifier | None = None) -> None:
        """Raise :class:`NotApplicable` with :meth:`not_applicable`'s reason, if any.

        With ``base_model``, its own capabilities are checked too (a trainer whose
        ``classifier_type`` is unknown).
        """
        reason = self.not_applicable(trainer)
        if reason is None and base_model is not None:
            missing = [c for c in self.model_needs if not provides(base_model, c)]
            if missing:
                model = type(base_model).__name__
                reason = f"{self.name} needs models that are {missing[0].__name__} ({model} "
                reason += f"{_lacks(base_model, missing[0])})"
        if reason is not None:
            raise NotApplicable(reason)

    def draw_seeds(self, seed: int, n: int) -> list[int]:
        """One seed per updated model, derived from the shift's seed (never from a method)."""
        from .seeding import derive_seed

        return [derive_seed(seed, self.name, draw) for draw in range(int(n))]

    @property
    def severity_value(self) -> float:
        """The shift's severity, NaN where it has none."""
        return float(getattr(self, "severity", float("nan")))

    @property
    def label(self) -> str:
        """The name and changed parameters, always with the severity first where there is one.

        In a sweep every point of the curve is then labelled by its severity, the default too,
        and the parameters keep one order.
        """
        params = self.get_params(deep=False)
        if "severity" not in params:
            return super().label
        defaults = self.param_defaults()
        others = [
            f"{key}={value!r}"
            for key, value in sorted(params.items())
            if key != "severity" and (key not in defaults or not same_value(defaults[key], value))
        ]
        return f"{self.name}({', '.join([f'severity={self.severity!r}', *others])})"


# -------------------------------------------------------------------------------------- metrics
@dataclass(frozen=True)
class EvalContext:
    """Everything a metric may look at.

    ``updated`` is set for ``update``-stage metrics (one updated model at a time), and
    ``updated_models`` for ``shift``-stage metrics (all K updated models of a shift at once).
    In a run, ``recourses`` holds only the feasible recourses (an infeasible one is a NaN row,
    "not found") and ``returned`` what the method returned (see :meth:`feasible_only`).
    """

    factuals: np.ndarray
    recourses: np.ndarray
    model: Classifier
    splits: Splits
    updated: Classifier | None = None
    updated_models: tuple[Classifier, ...] = ()
    returned: np.ndarray | None = None
    sets: np.ndarray | None = None

    @classmethod
    def feasible_only(
        cls,
        factuals: np.ndarray,
        returned: np.ndarray,
        model: Classifier,
        splits: Splits,
        sets: np.ndarray | None = None,
    ) -> EvalContext:
        """The context of what a method returned, as the harness scores it.

        A recourse that breaks a constraint of ``splits.schema`` (an immutable feature, a
        direction, a bound, a one-hot group, an integer grid; see
        :meth:`Schema.broken_constraints`) counts as *not found*: its row of ``recourses`` is
        NaN, so it is never valid and never enters cost or plausibility; ``returned`` keeps
        the rows as returned, for the ``violations`` metric. The members of ``sets`` (a
        method's several counterfactuals per factual, :meth:`RecourseMethod.recourse_sets`)
        that break a constraint are NaN likewise.
        """
        returned = np.asarray(returned, dtype=float)
        recourses = returned.copy()
        recourses[splits.schema.violations(returned, factuals)] = np.nan
        if sets is not None:
            sets = np.array(sets, dtype=float)
            n, k, d = sets.shape
            flat = sets.reshape(n * k, d)
            flat[splits.schema.violations(flat, np.repeat(factuals, k, axis=0))] = np.nan
            sets = flat.reshape(n, k, d)
        return cls(factuals, recourses, model, splits, returned=returned, sets=sets)

    @property
    def returned_recourses(self) -> np.ndarray:
        """The recourses as the method returned them (``recourses`` where not recorded)."""
        return self.recourses if self.returned is None else self.returned

    @property
    def found(self) -> np.ndarray:
        """Rows where a recourse was found."""
        return ~np.isnan(self.recourses).any(axis=1)

    def accepted_by(self, model: Classifier) -> np.ndarray:
        """Rows whose recourse ``model`` accepts (False where none was found)."""
        accepted = np.zeros(len(self.recourses), dtype=bool)
        found = self.found
        if found.any():
            accepted[found] = model.predict(self.recourses[found]) == 1
        return accepted


@dataclass(frozen=True)
class MetricValue:
    """A metric's value, the denominator ``n`` behind it, and a note for the row's ``reason``.

    ``note`` (one line, optional) says something the number alone does not, such as which
    constraint the first infeasible recourse broke; the harness writes it into ``reason``.
    """

    value: float
    n: int
    note: str = field(default="", repr=False)


@dataclass(frozen=True)
class Metric:
    """A pure function of an :class:`EvalContext`, with metadata.

    Attributes
    ----------
    name : str
        Registered name (e.g. ``invalidation-rate``).
    func : callable
        ``func(ctx) -> MetricValue``.
    stage : {"static", "update", "shift"}
        ``static`` metrics run once per recourse set, ``update`` ones once per updated model,
        ``shift`` ones once per shift with all its updated models.
    higher_is_better : bool
    bounds : tuple of float
        The value's range.
    """

    name: str
    func: Callable[[EvalContext], MetricValue] = field(repr=False)
    stage: Stage
    higher_is_better: bool
    bounds: tuple[float, float] = (0.0, 1.0)

    def __call__(self, ctx: EvalContext) -> MetricValue:
        """Evaluate the metric."""
        return self.func(ctx)

    @property
    def __doc__(self) -> str | None:  # type: ignore[override]
        return self.func.__doc__


def share(mask: np.ndarray, of: np.ndarray | None = None) -> MetricValue:
    """The share of True in ``mask`` among rows selected by ``of`` (NaN when none is selected)."""
    mask = np.asarray(mask, dtype=bool)
    if of is not None:
        mask = mask[np.asarray(of, dtype=bool)]
    n = int(mask.size)
    return MetricValue(float(mask.mean()) if n else float("nan"), n)


__all__ = [
    "CONSTRAINTS",
    "ArchitectureFamily",
    "Classifier",
    "Component",
    "ConfigError",
    "Constraint",
    "ContractError",
    "DataError",
    "Dataset",
    "DuplicateNameError",
    "EvalContext",
    "Finetunable",
    "Interval",
    "ListOf",
    "MethodTags",
    "Metric",
    "MetricValue",
    "NotFittedError",
    "Options",
    "Perturbable",
    "RecourseBenchError",
    "RecourseMethod",
    "Schema",
    "Shift",
    "Splits",
    "Text",
    "Trainer",
    "Tunable",
    "UnknownNameError",
    "check_recourse_output",
    "check_recourse_sets",
    "provides",
    "share",
]
