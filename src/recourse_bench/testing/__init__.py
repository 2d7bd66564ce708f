"""The conformance kit: check that a recourse method keeps the recourse-bench contract.

Bring your own method, in the spirit of scikit-learn's ``sklearn.utils.estimator_checks``::

    from recourse_bench.testing import check_method, parametrize_with_checks

    check_method(MyMethod())  # raises an AssertionError listing every failed check

    @parametrize_with_checks([MyMethod(), MyMethod(steps=10)])
    def test_my_method(method, check):  # one pytest test per check: my-method-check_...
        check(method)

Every check runs on a fresh ``sklearn.base.clone`` of the method (the object passed in is never
modified) and on :func:`toy_problem`, a 9-column problem with an immutable feature, a
decrease-only feature, an integer feature on a grid, a mutable and an immutable one-hot group,
all bounded by [0, 1]. The checks, in order (names as in :data:`CHECKS`):

``check_init_stores_params``
    ``__init__`` only stores its parameters (keys of ``get_params()`` equal its signature, each
    stored unchanged; no public non-parameter attribute and none ending with ``_``).
``check_parameter_constraints``
    ``parameter_constraints`` covers exactly the parameters of ``get_params()``.
``check_params_round_trip``
    ``get_params``, ``set_params`` and ``clone`` agree; ``set_params`` returns ``self``.
``check_stochastic_tag``
    The ``stochastic`` tag tells the truth: a method without it gives the same recourses with
    ``random_state`` 0 and 1; a stochastic one takes ``random_state``.
``check_not_fitted_error``
    ``generate`` before ``fit`` raises :class:`~recourse_bench.api.NotFittedError`.
``check_fit_returns_self``
    ``fit(model, splits)`` returns ``self``.
``check_inputs_not_mutated``
    ``fit`` and ``generate`` leave the factuals, the splits' arrays and the model unchanged.
``check_output_shape``
    ``generate`` returns a float (n, d) array whose rows are all finite or all NaN.
``check_offered_sets``
    ``recourse_sets()`` after ``generate`` is None, or an (n, k, d) float array whose members
    are all finite or all NaN and keep the schema's constraints.
``check_immutables_kept``
    Immutable columns keep the factual's value.
``check_feasible``
    Bounds, directions, one-hot groups and the integer grid hold (immutables aside).
``check_valid_recourses``
    The model accepts every recourse, and at least half of the 30 factuals get one
    (:data:`MIN_COVERAGE`).
``check_declared_uses``
    Every component ``fit`` and ``generate`` obtain from the registry is declared in ``uses``
    (so that it enters the method's cache keys).
``check_reproducible``
    Two clones with ``random_state=0`` give identical recourses.
``check_no_global_rng``
    numpy's legacy global state, the ``random`` module's and torch's default generator are
    unchanged by ``fit`` and ``generate`` (with ``random_state`` 0 and None).
``check_batch_invariance``
    Only for a class with the attribute ``batch_invariant = True`` (skipped otherwise):
    ``generate`` on the whole batch equals ``generate`` on row chunks.
``check_pickle_round_trip``
    A fitted method pickles, and the copy generates the same recourses.
``check_bad_factuals_raise``
    ``generate`` raises :class:`~recourse_bench.api.DataError` for a 1-D row, a wrong width and
    a NaN.

The class attribute ``_test_params`` (a dict set on every clone with ``set_params`` so that each
check runs in a fraction of a second, e.g. a shorter training budget) steers the kit without
touching the method's parameters. Checks that fit use the differentiable logistic regression,
or the first of ``mlp`` and ``forest`` that the method accepts when its ``skip_reason``
refuses it.

Every other kind of plugin has a kit too (:data:`KITS`), run by :func:`check_component` (and
``recourse-bench check --plugin FILE``): a **dataset** loads finite features in [0, 1] scaled on
the training split, matching its schema, 0/1 labels, the same splits for a seed, splits that
pickle, a future split in the same model space and declared files with a sha256; a **model**
(trainer) gives probabilities that sum to 1 and agree with ``predict``, the same model for a
seed, untouched inputs, capabilities that hold (``logits``, ``coef_``, ``classifier_type``), a
classifier that pickles and learns; a **shift** gives ``n_models`` valid models, the same for a
seed, leaves the base model and data alone, pickles, and refuses a trainer without the
capabilities it needs with ``NotApplicable``; a **metric** returns a ``MetricValue`` within its
bounds, deterministically, without touching its context, even when no recourse was found.
Every kit also checks ``__init__``, ``get_params``/``clone`` and the parameter constraints.
"""

from ._checks import CHECKS, MIN_COVERAGE
from ._common import CheckFailed, SkipCheck
from ._problem import TOY_MODELS, ToyProblem, toy_problem, toy_splits
from ._runner import (
    KITS,
    CheckResult,
    MethodCheck,
    check_component,
    check_method,
    kind_of,
    parametrize_with_checks,
    run_check,
    run_component_check,
)

__all__ = [
    "CHECKS",
    "KITS",
    "MIN_COVERAGE",
    "TOY_MODELS",
    "CheckFailed",
    "CheckResult",
    "MethodCheck",
    "SkipCheck",
    "ToyProblem",
    "check_component",
    "check_method",
    "kind_of",
    "parametrize_with_checks",
    "run_check",
    "run_component_check",
    "toy_problem",
    "toy_splits",
]
