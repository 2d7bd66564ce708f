"""How a run's time grows with the matrix (cells) and with the factuals per cell.

Run with ``python benchmarks/perf/scaling.py [--jobs 2] [--out scaling.json]``; it needs no data
folder (the data are 10-dimensional synthetic Gaussians, large enough for 800 rejected test
points). Every configuration runs twice: cold (a fresh cache folder) and again with the same
cache (the rerun a user makes after changing nothing). A discarded warm-up run first starts the
worker processes, so every row is measured with warm workers. The table gives the harness's wall
time (``run.json``'s ``wall_seconds``, without the report; the median of ``--repeats`` runs,
each with its own fresh cache), the time per cell, and the worker
seconds spent in each wave: models (base and updated models) and recourse (the methods and the
metrics).

Axis "cells": seeds 1, 2, 4, 8 at 100 factuals (2 models x 3 methods x 1 shift per seed).
Axis "factuals": 100, 200, 400, 800 factuals per cell at 2 seeds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from recourse_bench import load_config, run_benchmark
from recourse_bench.config import plan

SEEDS = (1, 2, 4, 8)
FACTUALS = (100, 200, 400, 800)
DATA = {"n_samples": 6000, "n_features": 10}
HEADER = (
    "| seeds | factuals/cell | cells | cold s | cached s | cold ms/cell | models s | recourse s |"
)


def matrix(seeds: int, n_factuals: int) -> dict:
    """A small study: synthetic data, logreg and MLP, three fast methods, 5 retrained models."""
    return {
        "name": f"scaling-{seeds}x{n_factuals}",
        "seeds": seeds,
        "n_factuals": n_factuals,
        "datasets": [{"name": "synthetic-gaussians", "params": DATA}],
        "models": ["logreg", "mlp"],
        "methods": ["wachter", "growing-spheres", "nearest-neighbour"],
        "shifts": [{"name": "retrain-seed", "params": {"n_models": 5}}],
        "metrics": ["validity", "cost-l1", "invalidation-rate"],
    }


def measure(raw: dict, folder: Path, n_jobs: int, repeats: int = 1) -> dict:
    """Cold then cached wall seconds of one matrix: medians over ``repeats`` fresh caches."""
    config = load_config(raw)
    runs = [_cold_and_cached(config, folder / str(i), n_jobs) for i in range(repeats)]
    row = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    cells = len(plan(config))
    return {
        "seeds": raw["seeds"],
        "factuals": raw["n_factuals"],
        "cells": cells,
        "repeats": repeats,
        **row,
        "cold_ms_per_cell": round(1000 * row["cold_seconds"] / cells, 1),
    }


def _cold_and_cached(config, folder: Path, n_jobs: int) -> dict:
    times, stages = [], {}
    for _ in ("cold", "cached"):
        result = run_benchmark(
            config, folder / "run", n_jobs=n_jobs, cache_dir=folder / "cache", progress=False
        )
        times.append(result.metadata["wall_seconds"])
        stages = stages or result.metadata["stages"]
    return {
        "cold_seconds": times[0],
        "cached_seconds": times[1],
        "models_worker_seconds": stages["base"]["seconds"] + stages["updates"]["seconds"],
        "recourse_worker_seconds": stages["recourse"]["seconds"],
    }


def table(rows: list[dict]) -> str:
    """The measurements as a markdown table."""
    lines = [
        HEADER,
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['seeds']} | {r['factuals']} | {r['cells']} | {r['cold_seconds']:.1f} | "
        f"{r['cached_seconds']:.1f} | {r['cold_ms_per_cell']:.0f} | "
        f"{r['models_worker_seconds']:.1f} | {r['recourse_worker_seconds']:.1f} |"
        for r in rows
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run both axes and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="parallel workers (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per row (median; default 3)")
    parser.add_argument("--out", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    grid = [(s, 100) for s in SEEDS] + [(2, f) for f in FACTUALS if f != 100]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        measure(matrix(1, 10), Path(tmp) / "warm-up", args.jobs)  # starts the workers
        for seeds, factuals in grid:
            folder = Path(tmp) / f"{seeds}-{factuals}"
            rows.append(measure(matrix(seeds, factuals), folder, args.jobs, args.repeats))
            print(f"seeds {seeds}, factuals {factuals}: {rows[-1]}", file=sys.stderr, flush=True)
    rows.sort(key=lambda r: (r["factuals"] != 100, r["seeds"], r["factuals"]))
    print(table(rows))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
