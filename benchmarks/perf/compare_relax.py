"""Time recourse-bench's Wachter against ReLax's compiled Wachter on the same model and factuals.

A standalone script, not a test: CI never runs it and nothing depends on it. It trains the MLP on
Adult (split seed 0, model seed 0), takes the first ``--factuals`` test rows the model rejects
(default 1000) and searches every factual for ``--steps`` steps (default 100, ReLax's default)
with both:

* ours: :class:`~recourse_bench.methods.wachter.Wachter` with one round of exactly ``--steps``
  Adam steps (``n_rounds=1``, ``tol=0``: no row stops early, ``shrink_steps=0``: no line
  search), so that both sides run the same number of gradient steps; a second row runs our
  defaults (up to 15 rounds of 100 steps with per-row early stop, then the line search);
* ReLax (``jax-relax`` 0.2.9): its Wachter, ``VanillaCF`` (RMSprop on a KL validity loss plus
  ``lambda_`` times the squared distance, a soft constraint step after every step, the hard one
  at the end), with its defaults (``lr=0.1``, ``lambda_=0.1``) and ``n_steps=--steps``, on a
  haiku MLP with the same layers whose weights are copied from ours (float32, jax's default).
  Two timings: the public API, ``relax.generate_cf_explanations`` (it traces and compiles on
  every call, so its time includes compilation), and the compiled core: ``jit(vmap)`` of its
  per-instance search ``relax.methods.vanilla._vanilla_cf``, called once to compile and then
  timed on a second call.

ReLax's constraints are given the schema's view of the data, as its ``DataModule`` would apply
them: an immutable feature is reset to the factual, a one-hot group is a softmax during the
search and an argmax one-hot at the end, every other column is clipped to [0, 1] (ReLax has no
direction constraints, so its counterfactuals may lower a feature that may only increase; the
``infeasible`` column counts them). The public API run uses a ``DataModule.from_numpy`` of the
factuals whose ``apply_constraints`` is replaced by the same function.

Every counterfactual of both is judged by recourse-bench's float64 model (``model.predict``):
``valid`` is the share of factuals with an accepted counterfactual, ``L1`` the mean model-space
L1 distance of the valid ones to their factuals. ``ms/step`` is the search time divided by the
number of steps (each step searches all factuals at once on both sides).

Torch and XLA run on ``--threads`` threads (default 1, as in the harness; XLA's CPU client is
limited through ``XLA_FLAGS`` and ``taskset`` is advised for a strict comparison). Timings are
wall-clock on a possibly shared machine: read them as upper bounds.

Install ReLax in a separate virtual environment (its jax pins must not touch the main one; with
``--system-site-packages`` it sees torch and the editable recourse-bench)::

    python -m venv --system-site-packages /work/venvs/relax
    /work/venvs/relax/bin/pip install jax==0.4.35 jaxlib==0.4.35 jax-relax==0.2.9 \\
        dm-haiku==0.0.13 fastcore nbdev

Run (Adult is embedded; about a minute)::

    /work/venvs/relax/bin/python benchmarks/perf/compare_relax.py --factuals 1000 --steps 100
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import json
import os
import sys
import time
from typing import Any

import numpy as np

INSTALL = (
    "pip install jax==0.4.35 jaxlib==0.4.35 jax-relax==0.2.9 dm-haiku==0.0.13 fastcore nbdev "
    "(in a separate venv, see the docstring)"
)


def version(package: str) -> str:
    """Installed version of ``package`` or ``"?"``."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def limit_threads(threads: int) -> None:
    """Ask XLA's CPU client (set before jax is imported) and torch for ``threads`` threads."""
    flags = os.environ.get("XLA_FLAGS", "")
    if threads == 1 and "multi_thread_eigen" not in flags:
        flags += " --xla_cpu_multi_thread_eigen=false"
    os.environ["XLA_FLAGS"] = flags.strip()
    import torch

    torch.set_num_threads(threads)


def import_relax() -> tuple[Any, Any, Any]:
    """``(jax, haiku, relax)`` or exit with code 2 and one line saying how to install them."""
    try:
        import haiku as hk
        import jax
        import relax
        from relax.methods import vanilla
    except Exception as exc:  # ImportError, or a broken dependency of it
        print(f"compare_relax: cannot import ReLax ({exc}); install it with: {INSTALL}")
        raise SystemExit(2) from None
    assert vanilla is not None
    return jax, hk, relax


def load(n_factuals: int) -> tuple[Any, Any, np.ndarray]:
    """Adult splits, the MLP trained on them (seed 0) and its first rejected test rows."""
    from recourse_bench import registry

    splits = registry.get("dataset", "adult")().load(0)
    model = registry.get("model", "mlp")().fit(splits.X_train, splits.y_train, seed=0)
    X_test = np.asarray(splits.X_test, dtype=float)
    return splits, model, X_test[model.predict(X_test) == 0][:n_factuals]


def summarise(model: Any, schema: Any, cfs: np.ndarray, X: np.ndarray) -> dict[str, float]:
    """Validity under our float64 model, mean L1 of the valid ones, share breaking the schema."""
    found = ~np.isnan(cfs).any(axis=1)
    valid = found.copy()
    valid[found] = model.predict(cfs[found]) == 1
    l1 = float(np.abs(cfs[valid] - X[valid]).sum(axis=1).mean()) if valid.any() else None
    broken = schema.broken_constraints(np.where(found[:, None], cfs, X), X)
    infeasible = np.zeros(len(X), dtype=bool)
    for cells in broken.values():
        infeasible |= cells.any(axis=1)
    return {"valid": float(valid.mean()), "l1": l1, "infeasible": float(infeasible[found].mean())}


# ------------------------------------------------------------------------------------- ours
def run_ours(model: Any, splits: Any, X: np.ndarray, params: dict, steps: int | None) -> dict:
    """Our Wachter with ``params``: seconds of ``generate`` (best of 3) and the results."""
    from recourse_bench import registry

    method = registry.get("method", "wachter")(**params).fit(model, splits)
    method.generate(X[:10])  # warm-up (allocator, first-call costs)
    times, cfs = [], X
    for _ in range(3):
        start = time.perf_counter()
        cfs = method.generate(X)
        times.append(time.perf_counter() - start)
    seconds = min(times)
    out = {"seconds": seconds, "ms_per_step": 1e3 * seconds / steps if steps else None}
    return out | summarise(model, splits.schema, cfs, X)


# ------------------------------------------------------------------------------------ ReLax
def haiku_mlp(jax: Any, hk: Any, model: Any) -> Any:
    """A haiku MLP with our network's layers and weights; returns P(class 1), shape (n, 1)."""
    from torch import nn

    layers = [m for m in model.net.modules() if isinstance(m, nn.Linear)]
    weights = [(m.weight.detach().numpy().T, m.bias.detach().numpy()) for m in layers]
    for m in model.net.modules():
        if not isinstance(m, nn.Linear | nn.ReLU | nn.Sequential):
            raise SystemExit(f"compare_relax: cannot copy a {type(m).__name__} layer to haiku")

    def forward(x: Any) -> Any:
        h = x
        for k, (w, _) in enumerate(weights):
            h = hk.Linear(w.shape[1], name=f"linear_{k}")(h)
            if k < len(weights) - 1:
                h = jax.nn.relu(h)
        return jax.nn.sigmoid(h)

    net = hk.without_apply_rng(hk.transform(forward))
    params = {
        f"linear_{k}": {"w": jax.numpy.asarray(w, jax.numpy.float32), "b": b.astype(np.float32)}
        for k, (w, b) in enumerate(weights)
    }
    return lambda x: net.apply(params, x)


def constraints_fn(jax: Any, schema: Any) -> Any:
    """ReLax's ``apply_constraints(x, cf, hard)`` for the schema (see the module docstring)."""
    jnp = jax.numpy
    immutable = jnp.asarray(np.asarray(schema.immutable, dtype=bool))
    groups = [list(g) for g in schema.groups]

    def apply(x: Any, cf: Any, hard: bool = False, **_: Any) -> Any:
        cf = jnp.clip(cf, 0.0, 1.0)
        for g in groups:
            block = cf[..., g[0] : g[-1] + 1]
            if hard:
                block = jax.nn.one_hot(jnp.argmax(block, axis=-1), len(g), dtype=cf.dtype)
            else:
                block = jax.nn.softmax(block, axis=-1)
            cf = cf.at[..., g[0] : g[-1] + 1].set(block)
        return jnp.where(immutable, x, cf)

    return apply


def relax_core(jax: Any, relax: Any, pred_fn: Any, apply: Any, steps: int) -> Any:
    """``jit(vmap)`` of ReLax's per-instance Wachter search with its default configuration."""
    import keras
    from relax.methods.vanilla import VanillaCFConfig, _vanilla_cf

    config = VanillaCFConfig(n_steps=steps)
    validity = keras.losses.get({"class_name": config.validity_fn, "config": {"reduction": None}})
    cost = keras.losses.get({"class_name": "MeanSquaredError", "config": {"reduction": None}})

    def one(x: Any, key: Any) -> Any:
        x = x.reshape(1, -1)
        y_target = 1 - pred_fn(x)
        cf = _vanilla_cf(
            x, y_target, pred_fn, config.n_steps, config.lr, config.lambda_,
            validity, cost, apply, key,
        )  # fmt: skip
        return cf.reshape(-1)

    return jax.jit(jax.vmap(one))


def run_relax(jax: Any, relax: Any, pred_fn: Any, apply: Any, X: np.ndarray, steps: int) -> dict:
    """ReLax's compiled core, timed on its second call; its public API, timed once."""
    from relax.methods import VanillaCF

    xs = jax.numpy.asarray(X, dtype=jax.numpy.float32)
    keys = jax.random.split(jax.random.PRNGKey(0), len(X))
    core = relax_core(jax, relax, pred_fn, apply, steps)
    quiet = contextlib.redirect_stderr(io.StringIO())  # its loop prints a tqdm bar
    with quiet:
        start = time.perf_counter()
        core(xs, keys).block_until_ready()
        first = time.perf_counter() - start
        times = []
        for _ in range(3):
            start = time.perf_counter()
            cfs = core(xs, keys).block_until_ready()
            times.append(time.perf_counter() - start)
    compiled = min(times)

    data = relax.DataModule.from_numpy(
        X.astype(np.float32), np.zeros(len(X)), transformation="identity"
    )
    data.apply_constraints = apply  # the same constraints as the core (see the docstring)
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        start = time.perf_counter()
        explanation = relax.generate_cf_explanations(
            VanillaCF({"n_steps": steps}), data, pred_fn=pred_fn
        )
        api_cfs = np.asarray(explanation.cfs).reshape(len(X), -1)
        api = time.perf_counter() - start
    return {
        "core_first_call_s": first,
        "core_seconds": compiled,
        "core_ms_per_step": 1e3 * compiled / steps,
        "api_seconds": api,
        "api_ms_per_step": 1e3 * api / steps,
        "cfs": np.asarray(cfs, dtype=np.float64),
        "api_cfs": api_cfs.astype(np.float64),
    }


def fmt(value: Any, spec: str) -> str:
    """Format a number, or ``-`` for None."""
    return "-" if value is None else format(value, spec)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description="Our Wachter against ReLax's (see docstring).")
    parser.add_argument("--factuals", type=int, default=1000, help="rejected Adult test rows")
    parser.add_argument("--steps", type=int, default=100, help="gradient steps of both")
    parser.add_argument("--threads", type=int, default=1, help="torch and XLA threads")
    parser.add_argument("--out", default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.factuals < 1 or args.steps < 1 or args.threads < 1:
        parser.error("--factuals, --steps and --threads must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run both searches and print the table."""
    args = parse_args(argv)
    limit_threads(args.threads)
    jax, hk, relax = import_relax()
    info = {
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "load_average": os.getloadavg(),
        **{p: version(p) for p in ("jax", "jaxlib", "jax-relax", "dm-haiku", "torch")},
        "recourse_bench": version("recourse-bench"),
    }
    print(" ".join(f"{k}={v}" for k, v in info.items()), flush=True)
    splits, model, X = load(args.factuals)
    schema, steps = splits.schema, args.steps
    print(f"Adult MLP: {len(X)} rejected test rows as factuals, {steps} steps", flush=True)

    fixed = {"n_rounds": 1, "steps": steps, "tol": 0.0, "shrink_steps": 0}
    rows = [
        {"method": f"ours, {steps} steps"} | run_ours(model, splits, X, fixed, steps),
        {"method": "ours, defaults"} | run_ours(model, splits, X, {}, None),
    ]
    pred_fn = haiku_mlp(jax, hk, model)
    agree = np.mean((np.asarray(pred_fn(X.astype(np.float32)))[:, 0] >= 0.5) == model.predict(X))
    print(f"haiku copy agrees with our model on {agree:.4f} of the factuals", flush=True)
    theirs = run_relax(jax, relax, pred_fn, constraints_fn(jax, schema), X, steps)
    rows.append(
        {
            "method": f"ReLax core jit(vmap), {steps} steps",
            "seconds": theirs["core_seconds"],
            "ms_per_step": theirs["core_ms_per_step"],
        }
        | summarise(model, schema, theirs["cfs"], X)
    )
    rows.append(
        {
            "method": f"ReLax generate_cf_explanations, {steps} steps",
            "seconds": theirs["api_seconds"],
            "ms_per_step": theirs["api_ms_per_step"],
        }
        | summarise(model, schema, theirs["api_cfs"], X)
    )
    core = theirs["core_ms_per_step"]
    print()
    print("| method | seconds | ms/step | x ReLax core | valid | L1 | infeasible |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = None if r["ms_per_step"] is None else core / r["ms_per_step"]
        cells = [
            r["method"],
            fmt(r["seconds"], ".3f"),
            fmt(r["ms_per_step"], ".3f"),
            fmt(ratio, ".2f"),
            fmt(r["valid"], ".3f"),
            fmt(r["l1"], ".3f"),
            fmt(r["infeasible"], ".3f"),
        ]
        print("| " + " | ".join(cells) + " |")
    print(
        f"\nReLax core: first call (trace + compile + run) {theirs['core_first_call_s']:.2f} s;"
        f" 'x ReLax core' > 1 means faster per step than ReLax's compiled core."
        f" Load average at the end: {os.getloadavg()}"
    )
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump({"machine": info, "rows": rows}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
