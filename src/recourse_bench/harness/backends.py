"""Where the units of a run execute: joblib's local backends, a Dask cluster, or Ray.

Every backend runs the same pure tasks (:func:`.runner.run_task`), and the runner sorts the
results, so the numbers do not depend on the backend or the number of workers.

* ``loky`` (default), ``threading``, ``sequential``: joblib's own, on this machine.
* ``dask``: joblib's Dask backend on a ``distributed`` cluster. With a scheduler address
  (``tcp://host:8786``) the run connects to that cluster; without one it starts a
  :class:`distributed.LocalCluster` on the loopback interface with ``-j`` single-threaded worker
  processes and closes it afterwards. Install with ``pip install "recourse-bench[dask]"``.
* ``ray``: joblib's Ray backend (``ray.util.joblib``); with an address it joins that Ray cluster,
  without one it starts a local Ray. Install with ``pip install "recourse-bench[ray]"``.

On a cluster every worker must reach the cache folder and the plugin files at the same paths as
the machine that starts the run (a shared file system), and have recourse-bench installed. This
is checked on every worker before any work, so a missing path is one clear error, not a
half-finished run.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from joblib import parallel_config
from joblib.parallel import get_active_backend

from ..api import ConfigError

log = logging.getLogger(__name__)
BACKENDS = ("loky", "threading", "sequential", "dask", "ray")
CLUSTER_BACKENDS = ("dask", "ray")
CONNECT_TIMEOUT = 30  # seconds to reach a Dask scheduler


@dataclass(frozen=True)
class Backend:
    """Where a run executes: a backend name, a worker count and an optional scheduler address.

    ``n_jobs`` None means one worker for the local backends, every core for a local Dask or Ray
    cluster, and every worker thread of a remote cluster.
    """

    name: str = "loky"
    n_jobs: int | None = None
    scheduler: str | None = None

    def __post_init__(self) -> None:
        if self.name not in BACKENDS:
            raise ConfigError(f"unknown backend {self.name!r}: use one of {', '.join(BACKENDS)}")
        if self.scheduler is not None and self.name not in CLUSTER_BACKENDS:
            raise ConfigError(
                f"--scheduler only applies to --backend dask or ray, not {self.name!r}; "
                "add --backend dask"
            )
        if self.n_jobs is not None and (self.n_jobs == 0 or self.n_jobs < -1):
            raise ConfigError(
                f"-j {self.n_jobs}: use a positive number of workers, or -1 for all cores"
            )

    @property
    def local_workers(self) -> int:
        """Workers on this machine: ``n_jobs``, or every core for -1 (and for None on a cluster)."""
        if self.n_jobs is None:
            return (os.cpu_count() or 1) if self.name in CLUSTER_BACKENDS else 1
        return (os.cpu_count() or 1) if self.n_jobs == -1 else self.n_jobs

    def describe(self) -> dict[str, Any]:
        """What the run metadata records about the backend."""
        return {"backend": self.name, "n_jobs": self.n_jobs, "scheduler": self.scheduler}


@contextlib.contextmanager
def activate(backend: Backend, shared_paths: Iterable[str] = ()) -> Iterator[None]:
    """Make ``backend`` the joblib backend of the enclosed ``Parallel`` calls.

    For ``dask`` and ``ray``, connect to (or start) the cluster, check that every worker sees
    ``shared_paths`` (cache folder, plugin files), and disconnect (or stop it) on exit.
    """
    cluster = {"dask": _dask_cluster, "ray": _ray_cluster}.get(backend.name)
    if cluster is None:
        with parallel_config(backend=backend.name, n_jobs=backend.local_workers):
            yield
        return
    with cluster(backend, list(shared_paths)) as n_workers:
        with parallel_config(backend=backend.name, n_jobs=n_workers):
            yield


def return_as() -> str:
    """How the active joblib backend can hand back results: as they finish, when it can.

    Ray's joblib backend returns a whole list only, so the progress bar then moves per wave.
    """
    active, _ = get_active_backend()
    return "generator_unordered" if active.supports_return_generator else "list"


def _missing_extra(backend: str, module: str) -> ConfigError:
    return ConfigError(
        f"--backend {backend} needs the {module!r} package, which is not installed: "
        f'pip install "recourse-bench[{backend}]"'
    )


@contextlib.contextmanager
def _dask_cluster(backend: Backend, shared_paths: list[str]) -> Iterator[int]:
    """A ``distributed`` client on ``backend.scheduler`` or on a new loopback LocalCluster.

    Yields the number of parallel tasks: ``-j`` when given, else every worker thread.
    """
    try:
        import distributed
    except ImportError as exc:
        raise _missing_extra("dask", "distributed") from exc
    with contextlib.ExitStack() as stack:
        if backend.scheduler is None:
            cluster = distributed.LocalCluster(
                n_workers=backend.local_workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            stack.enter_context(cluster)
            client = stack.enter_context(distributed.Client(cluster))
            log.info("started a Dask LocalCluster with %d workers", backend.local_workers)
        else:
            client = stack.enter_context(_connect(distributed, backend.scheduler))
        threads = sum(w["nthreads"] for w in client.scheduler_info()["workers"].values())
        if threads == 0:
            raise ConfigError(
                f"the Dask cluster at {backend.scheduler} has no workers; start some with "
                f"`dask worker {backend.scheduler}`"
            )
        _check_paths_on_workers(client.run(_missing_paths, shared_paths))
        yield threads if backend.n_jobs in (None, -1) else min(backend.n_jobs, threads)


def _connect(distributed: Any, address: str) -> Any:
    try:
        return distributed.Client(address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConfigError(
            f"--scheduler {address}: cannot reach a Dask scheduler there ({exc}); start one "
            "with `dask scheduler`, or leave out --scheduler for a local cluster"
        ) from exc


def _missing_paths(paths: list[str]) -> list[str]:
    """The paths of ``paths`` this process cannot see (runs on each worker)."""
    return [path for path in paths if not os.path.exists(path)]


def _check_paths_on_workers(missing_by_worker: dict[str, list[str]]) -> None:
    for worker, missing in sorted(missing_by_worker.items()):
        if missing:
            raise ConfigError(
                f"Dask worker {worker} cannot see {missing[0]}: the cache folder and plugin "
                "files must lie on a file system every worker shares (--cache-dir)"
            )


@contextlib.contextmanager
def _ray_cluster(backend: Backend, shared_paths: list[str]) -> Iterator[int]:
    """Ray's joblib backend on ``backend.scheduler`` or on a new local Ray.

    Yields the number of parallel tasks: ``-j`` when given, else every CPU Ray offers (-1).
    Ray workers are not checked for ``shared_paths``; a missing path fails the units instead.
    """
    try:
        import ray
        from ray.util.joblib import register_ray
    except ImportError as exc:
        raise _missing_extra("ray", "ray") from exc
    register_ray()
    started = not ray.is_initialized()
    if started:
        cpus = None if backend.scheduler else backend.local_workers
        ray.init(address=backend.scheduler, num_cpus=cpus, log_to_driver=False)
    try:
        yield -1 if backend.n_jobs is None else backend.n_jobs
    finally:
        if started:
            ray.shutdown()
