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
the machine that starts the run (a shared file system), and have recourse-bench installed. On
Dask, the workers present when the run starts are checked before any work: each must see a
fresh file written into the cache folder, and the plugin files, so a folder that is not shared
is one clear error, not a half-finished run. Ray workers are not checked.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import uuid
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from joblib import cpu_count, parallel_config
from joblib.parallel import get_active_backend

from ..api import ConfigError

log = logging.getLogger(__name__)
BACKENDS = ("loky", "threading", "sequential", "dask", "ray")
CLUSTER_BACKENDS = ("dask", "ray")
CONNECT_TIMEOUT = 30  # seconds to reach a Dask scheduler, and for its first worker
_CLUSTER_CAP: ContextVar[int | None] = ContextVar("cluster_cap", default=None)


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
            return cpu_count() if self.name in CLUSTER_BACKENDS else 1
        return cpu_count() if self.n_jobs == -1 else self.n_jobs

    def check_installed(self) -> None:
        """Raise one :class:`ConfigError` line if the backend's package is not installed."""
        module = {"dask": "distributed", "ray": "ray"}.get(self.name)
        if module is not None and importlib.util.find_spec(module) is None:
            raise _missing_extra(self.name, module)

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
        cap = None if backend.n_jobs in (None, -1) else n_workers
        token = _CLUSTER_CAP.set(cap)
        try:
            with parallel_config(backend=backend.name, n_jobs=n_workers):
                yield
        finally:
            _CLUSTER_CAP.reset(token)


def parallel_options() -> dict[str, Any]:
    """``Parallel`` arguments for the active backend.

    Results are handed back as they finish where the backend can (Ray's returns a whole list,
    so the progress bar then moves per wave). joblib's Dask backend ignores ``n_jobs`` and uses
    every worker thread, so a ``-j`` cap on a cluster is enforced by dispatching at most that
    many units at a time.
    """
    active, _ = get_active_backend()
    options: dict[str, Any] = {
        "return_as": "generator_unordered" if active.supports_return_generator else "list"
    }
    cap = _CLUSTER_CAP.get()
    if cap is not None:
        options.update(pre_dispatch=str(cap), batch_size=1)
    return options


def _missing_extra(backend: str, module: str) -> ConfigError:
    return ConfigError(
        f"--backend {backend} needs the {module!r} package, which is not installed: "
        f'pip install "recourse-bench[{backend}]"'
    )


@contextlib.contextmanager
def _dask_cluster(backend: Backend, shared_paths: list[str]) -> Iterator[int]:
    """A ``distributed`` client on ``backend.scheduler`` or on a new loopback LocalCluster.

    Yields the number of parallel tasks: ``-j`` when given (at most every worker thread), else
    every worker thread. Dask's own log lines are kept to errors while the run lasts.
    """
    try:
        import distributed
    except ImportError as exc:
        raise _missing_extra("dask", "distributed") from exc
    with contextlib.ExitStack() as stack:
        stack.enter_context(_quiet("distributed"))
        if backend.scheduler is None:
            cluster = distributed.LocalCluster(
                n_workers=backend.local_workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",
                silence_logs=logging.ERROR,
            )
            stack.enter_context(cluster)
            client = stack.enter_context(distributed.Client(cluster))
        else:
            client = stack.enter_context(_connect(distributed, backend.scheduler))
            _wait_for_a_worker(client, backend.scheduler)
        threads = sum(w["nthreads"] for w in client.scheduler_info()["workers"].values())
        markers = [stack.enter_context(_marker(path)) for path in shared_paths]
        _check_paths_on_workers(client.run(_missing_paths, markers))
        yield threads if backend.n_jobs in (None, -1) else min(backend.n_jobs, threads)


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    logger = logging.getLogger(logger_name)
    before = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(before)


@contextlib.contextmanager
def _marker(path: str) -> Iterator[str]:
    """A file whose presence proves that a worker shares ``path``.

    For a folder: a fresh file written into it, removed afterwards, since a folder that merely
    exists on a worker (``/tmp``) is not enough. A file stands for itself.
    """
    if not os.path.isdir(path):
        yield path
        return
    marker = os.path.join(path, f".shared-check-{uuid.uuid4().hex}")
    with open(marker, "w", encoding="utf-8") as handle:
        handle.write("recourse-bench checks that every worker sees this folder\n")
    try:
        yield marker
    finally:
        with contextlib.suppress(OSError):
            os.remove(marker)


def _wait_for_a_worker(client: Any, address: str) -> None:
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise ConfigError(
            f"the Dask cluster at {address} has no workers after {CONNECT_TIMEOUT} s; start "
            f"some with `dask worker {address} --nthreads 1`"
        ) from exc


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
            shown = missing[0]
            if os.path.basename(shown).startswith(".shared-check-"):
                shown = os.path.dirname(shown)
            raise ConfigError(
                f"Dask worker {worker} cannot see {shown}: the cache folder and plugin "
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
        try:  # "local": a new local Ray even where RAY_ADDRESS names a cluster
            ray.init(address=backend.scheduler or "local", num_cpus=cpus, log_to_driver=False)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            where = backend.scheduler or "a local Ray"
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(f"cannot start or join {where}: {message}") from exc
    try:
        yield -1 if backend.n_jobs is None else backend.n_jobs
    finally:
        if started:
            ray.shutdown()
