"""Isolation of one unit of work: a forked child process with a time and a memory limit.

A unit that hangs, crashes the interpreter or exhausts memory must cost only its own cells. On
POSIX systems every unit that is not already cached runs in a child forked from its worker: the
worker waits for the child's result on a pipe, kills it when the per-unit ``timeout`` passes,
and reports a child that died (a segmentation fault, the kernel's out-of-memory killer) as a
failure of that unit. With a ``memory_limit`` the worker also watches the child's resident
memory and stops it once it holds that much more than when the unit started (Linux only), so
a runaway allocation costs its unit and not the machine. (An address-space limit was tried
first: the memory pools of pyarrow and similar libraries reserve address space up front and
fail under one.)

Each worker thread forks one child and sends it unit after unit over a pipe; the child keeps
what the units imported and loaded, as the worker would, so isolation costs no measurable time
(docs/performance.md). Only a kill (a timeout, the memory limit, a crash) costs a new fork, from
the worker's state. Forking keeps the worker's imports and registered plugins; a fork with torch
loaded takes about 12 ms on two cores, against seconds for a fresh interpreter. Where
``os.fork`` does not exist (Windows), units run in their worker and limits cannot be enforced.

A process that initialised CUDA cannot hand it to a forked child; the worker itself never runs an
uncached unit, so only its child touches the GPU.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import pickle
import selectors
import signal
import struct
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..api import ConfigError
from ..config import Limits

CAN_FORK = hasattr(os, "fork")
CAN_MEASURE_MEMORY = os.access("/proc/self/status", os.R_OK)
MEMORY_POLL = 0.05  # seconds between two looks at a child's memory
DEATH_POLL = 0.5  # seconds between two checks that a child is alive
ISOLATING_BACKENDS = ("loky", "sequential")
WATCHDOG_POLL = 1.0  # seconds between two checks, in a child, that its worker is alive
_PR_SET_PDEATHSIG = 1


def check_limits(limits: Limits, backend: str = "loky") -> None:
    """Refuse limits that cannot be enforced on this system or backend, in one line."""
    if not limits.active:
        return
    if not CAN_FORK:
        raise ConfigError(
            "timeout and memory_limit need a system with fork (Linux, macOS); "
            "remove them on this system"
        )
    if backend not in ISOLATING_BACKENDS:
        raise ConfigError(
            f"timeout and memory_limit need --backend loky or sequential: the {backend} "
            "backend runs units on worker threads, from which a child process cannot be forked "
            "safely; remove the limits or change the backend"
        )
    if limits.memory and not CAN_MEASURE_MEMORY:
        raise ConfigError("memory_limit needs Linux (/proc); remove it on this system")


def isolates(backend: str, limits: Limits) -> bool:
    """Whether a run on ``backend`` under ``limits`` runs its uncached units in a child.

    By default on Linux with the loky backend, whose units run on the main thread of their
    process. With the sequential backend (for a debugger or a profiler), and on macOS (where
    system libraries may not survive a fork), only when limits ask for it; never on the
    thread-based backends (threading, Dask, Ray) or where there is no fork.
    """
    if not CAN_FORK or backend not in ISOLATING_BACKENDS:
        return False
    return limits.active or (backend == "loky" and sys.platform.startswith("linux"))


def format_size(size: int) -> str:
    """A byte count in the largest binary unit that keeps it at least 1 (e.g. ``1.5 GiB``)."""
    for unit, factor in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= factor:
            return f"{size / factor:.3g} {unit}"
    return f"{size} B"


@dataclass(frozen=True)
class Isolated:
    """What came back from a child: its value, or a ``timeout`` / ``error`` with the reason."""

    value: Any = None
    status: str = "ok"  # "ok", "timeout" or "error"
    reason: str = ""


def run_isolated(func: Callable[[], Any], limits: Limits) -> Isolated:
    """Call ``func`` in this process's child under ``limits``.

    ``func`` and its value must be picklable, and the caller must be the main thread (a child
    forked from any other thread could inherit a lock held by a thread that does not exist in
    it). An exception escaping ``func`` is an ``error`` with its first line; a child that
    exceeds the timeout is killed (``timeout``), as is one whose memory grows by more than the
    memory limit during the call (``error``); a child that dies without a result is an ``error``
    naming the signal. After a kill the next call starts a fresh child.
    """
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("units can be isolated only from the main thread of a process")
    global _CHILD
    for _ in range(2):  # once more if the child had died while idle
        if _CHILD is None or not _CHILD.alive:
            _CHILD = _Child.start()
        result = _CHILD.call(func, limits)
        if result is not _GONE:
            return result
    return Isolated(status="error", reason="the unit's process could not be started")


def shutdown() -> None:
    """Stop this process's child (at the end of a run).

    It is idle then, with nothing to save, so it is killed (with anything it started) rather
    than asked to stop.
    """
    global _CHILD
    if _CHILD is not None:
        _CHILD.stop(kill=True)
        _CHILD = None


@contextlib.contextmanager
def children() -> Iterator[None]:
    """The child this process starts in the block is stopped at its end.

    A run wraps its waves in this, so that the child of the calling process (a run at ``-j 1``)
    never outlives the run nor carries its plugins into the next one. Pool workers keep theirs
    until they exit.
    """
    try:
        yield
    finally:
        shutdown()


class _Child:
    """A process forked from a worker that runs the worker's units one at a time.

    It stays up between units, so the modules and data a unit loads stay loaded for the next
    one, as in the worker itself; only a kill (a timeout, the memory limit) costs a new fork,
    and a fresh child starts from the worker's state, not from the state of the one killed.
    The child leads its own process group, so that a kill also reaches the processes a unit
    started (a nested joblib pool, for instance).
    """

    def __init__(self, pid: int, to_child: int, from_child: int) -> None:
        self.pid, self.to_child, self.from_child = pid, to_child, from_child
        self.alive = True

    @classmethod
    def start(cls) -> _Child:
        """Fork a child that serves calls until its pipe closes or its worker dies."""
        task_read, task_write = os.pipe()
        result_read, result_write = os.pipe()
        parent = os.getpid()
        for stream in (sys.stdout, sys.stderr):  # or the child would print them again
            with contextlib.suppress(Exception):
                stream.flush()
        with warnings.catch_warnings():  # Python >= 3.12 warns on fork in a threaded process
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: never returns to the worker's code
            try:
                os.close(task_write)
                os.close(result_read)
                _become_child(parent)
                _serve(task_read, result_write)
            finally:
                os._exit(1)
        with contextlib.suppress(OSError):  # a race with the child's own call; either wins
            os.setpgid(pid, pid)
        os.close(task_read)
        os.close(result_write)
        return cls(pid, task_write, result_read)

    def call(self, func: Callable[[], Any], limits: Limits) -> Isolated:
        """Run ``func`` in the child; kill the child if it breaks a limit or is interrupted.

        Returns :data:`_GONE` when the child had died before it could be asked.
        """
        request = pickle.dumps(func, _PROTOCOL)
        baseline = _resident(self.pid)
        try:
            _send(self.to_child, request)
        except BrokenPipeError:  # it died between two calls (the OOM killer picks idle ones too)
            self.stop(kill=True)
            return _GONE
        verdict, payload, status = "interrupted", b"", 0
        try:  # until the answer is read, an interruption (Ctrl-C) kills the child
            verdict, payload, status = _receive(self.from_child, self.pid, limits, baseline)
        finally:
            if verdict != "done":  # also what it started, even when it died first
                status = self.stop(kill=True) or status
        if verdict == "timeout":
            reason = f"still running after the {limits.timeout:g} s timeout; stopped"
            return Isolated(status="timeout", reason=reason)
        if verdict == "memory":
            assert limits.memory is not None
            reason = f"used more than the memory_limit of {format_size(limits.memory)}; stopped"
            return Isolated(status="error", reason=reason)
        if verdict == "died":
            return Isolated(status="error", reason=_death(status))
        outcome, records, caught = pickle.loads(payload)
        _replay(records, caught)
        kind, value = pickle.loads(outcome)
        return Isolated(value=value) if kind == "value" else Isolated(status="error", reason=value)

    def stop(self, kill: bool = False) -> int:
        """End the child (at the end of its pipe, or at once with ``kill``); its wait status."""
        if not self.alive:
            return 0
        self.alive = False
        if kill:
            for send in (os.killpg, os.kill):  # its group: what the unit started goes too
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    send(self.pid, signal.SIGKILL)
        for fd in (self.to_child, self.from_child):
            with contextlib.suppress(OSError):
                os.close(fd)
        try:
            return os.waitpid(self.pid, 0)[1]
        except ChildProcessError:  # already reaped (by _receive)
            return 0


_CHILD: _Child | None = None
_GONE = Isolated(status="error", reason="gone")
atexit.register(shutdown)


def _become_child(parent: int) -> None:
    """Set up a fresh child: its own process group, and gone when its worker is."""
    atexit.unregister(shutdown)
    global _CHILD
    _CHILD = None
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    if sys.platform.startswith("linux"):  # the kernel kills it when the worker dies
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the worker died before that took effect
        os._exit(1)
    watchdog = threading.Thread(target=_exit_with, args=(parent,), daemon=True)
    watchdog.start()  # elsewhere (macOS), and as a second line of defence


def exit_with_parent(parent: int) -> None:
    """Make this process exit when ``parent`` does (once per process; a daemon thread).

    A pool worker calls it with the run's main process: loky's workers do not notice a main
    process killed with SIGKILL, and would wait (with their children) for work that never
    comes.
    """
    global _WATCHED
    if _WATCHED != parent and os.getppid() == parent:
        _WATCHED = parent
        threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


_WATCHED: int | None = None


def _exit_with(parent: int) -> None:
    """Exit as soon as the worker ``parent`` is gone (the child is then adopted)."""
    while os.getppid() == parent:
        time.sleep(WATCHDOG_POLL)
    os._exit(1)


def _serve(task_read: int, result_write: int) -> None:
    """The child's loop: read a pickled call, run it, send back its outcome; return at EOF.

    An outcome is ``("value", v)`` or ``("error", first line)``, sent with the log records and
    warnings of the call, which are collected here instead of shown: the worker re-emits them,
    so a unit logs and warns as if it had run in its worker. The outcome is pickled on its own,
    so a record or a warning that cannot be sent never costs the result.
    """
    records: list[logging.LogRecord] = []
    logging.getLogger().handlers = [_Collector(records)]
    try:
        while (request := _read_frame(task_read)) is not None:
            records.clear()
            with warnings.catch_warnings(record=True) as caught:
                try:
                    outcome: tuple[str, Any] = ("value", pickle.loads(request)())
                except Exception as exc:
                    outcome = ("error", _first_line(exc))
            _send(result_write, _answer(outcome, records, caught))
            for stream in (sys.stdout, sys.stderr):  # what the unit printed, now
                with contextlib.suppress(Exception):
                    stream.flush()
    except KeyboardInterrupt:  # Ctrl-C: the worker stops too
        pass
    except BaseException:  # a broken pipe or a failure to send: the worker reports it
        traceback.print_exc(file=sys.stderr)


def _answer(outcome: tuple[str, Any], records: list[logging.LogRecord], caught: list[Any]) -> bytes:
    """The pickled answer to a call: the outcome (pickled apart), log records and warnings."""
    try:
        pickled = pickle.dumps(outcome, _PROTOCOL)
    except Exception as exc:
        pickled = pickle.dumps(("error", _first_line(exc, " (the unit's result cannot be sent)")))
    try:
        return pickle.dumps((pickled, records, _sendable(caught)), _PROTOCOL)
    except Exception:
        return pickle.dumps((pickled, [], []), _PROTOCOL)


def _send(fd: int, payload: bytes) -> None:
    """Write one frame: the payload's length (8 bytes) and the payload."""
    data = memoryview(_LENGTH.pack(len(payload)) + payload)
    while data:
        data = data[os.write(fd, data) :]


def _read_frame(fd: int) -> bytes | None:
    """Read one frame, blocking; None at the end of the pipe."""
    head = _read_exact(fd, _LENGTH.size)
    if head is None:
        return None
    body = _read_exact(fd, _LENGTH.unpack(head)[0])
    if body is None:
        raise EOFError("the worker closed the pipe in the middle of a call")
    return body


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


_LENGTH = struct.Struct(">Q")
_PROTOCOL = pickle.HIGHEST_PROTOCOL


class _Collector(logging.Handler):
    """Keeps a child's log records as plain, picklable records (message formatted)."""

    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__()
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        try:
            plain = {key: getattr(record, key, None) for key in _RECORD_FIELDS}
            plain.update(msg=record.getMessage(), args=None, exc_info=None)
            if record.exc_info and not record.exc_text:
                plain["exc_text"] = logging.Formatter().formatException(record.exc_info)
            self.records.append(logging.makeLogRecord(plain))
        except Exception:
            self.handleError(record)


_RECORD_FIELDS = (
    "name",
    "levelno",
    "levelname",
    "pathname",
    "filename",
    "module",
    "lineno",
    "funcName",
    "created",
    "msecs",
    "relativeCreated",
    "thread",
    "threadName",
    "process",
    "processName",
    "exc_text",
    "stack_info",
)


def _sendable(caught: list[warnings.WarningMessage]) -> list[tuple[str, type, str, int]]:
    """A child's warnings as (message, category, file, line); unknown categories as UserWarning."""
    sendable = []
    for warning in caught:
        category = warning.category
        if sys.modules.get(category.__module__) is None:
            category = UserWarning
        sendable.append((str(warning.message), category, warning.filename, warning.lineno))
    return sendable


def _replay(records: list[logging.LogRecord], caught: list[tuple[str, type, str, int]]) -> None:
    """Re-emit a child's log records and warnings in this process."""
    for record in records:
        logging.getLogger(record.name).handle(record)
    for message, category, filename, lineno in caught:
        warnings.warn_explicit(message, category, filename, lineno)


def _first_line(exc: BaseException, suffix: str = "") -> str:
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return text + suffix


def _resident(pid: int) -> int:
    """A process's own resident memory in bytes (anonymous and shared, not mapped files).

    Pages of mapped files (libraries, which a fresh child faults in again) do not count. 0 where
    /proc is missing.
    """
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
        kib = int(fields["RssAnon"].split()[0]) + int(fields["RssShmem"].split()[0])
    except (OSError, ValueError, KeyError, IndexError):
        return 0
    return kib * 1024


def _receive(fd: int, pid: int, limits: Limits, baseline: int) -> tuple[str, bytes, int]:
    """The child's answer: (verdict, payload, wait status).

    The verdict is ``done`` (the payload is the answer) or why there is none: ``timeout``,
    ``memory``, ``died`` (with the wait status when it was reaped here). The child's memory is
    checked every :data:`MEMORY_POLL` seconds under a memory limit (it may overshoot by what it
    allocates in that time), and whether it is still alive every :data:`DEATH_POLL` seconds: a
    process it started may hold the pipe open after it died.
    """
    deadline = None if limits.timeout is None else time.monotonic() + limits.timeout
    poll = MEMORY_POLL if limits.memory is not None else DEATH_POLL
    buffer = bytearray()
    size = None
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while size is None or len(buffer) < size:
            wait = poll if deadline is None else min(poll, deadline - time.monotonic())
            if wait <= 0:
                return "timeout", b"", 0
            if limits.memory is not None and _resident(pid) - baseline > limits.memory:
                return "memory", b"", 0
            if not selector.select(wait):
                reaped, status = os.waitpid(pid, os.WNOHANG)
                if reaped:
                    return "died", b"", status
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return "died", b"", 0
            buffer += chunk
            if size is None and len(buffer) >= _LENGTH.size:
                size = _LENGTH.size + _LENGTH.unpack_from(buffer)[0]
    return "done", bytes(buffer[_LENGTH.size :]), 0


def _death(status: int) -> str:
    """Why a child ended without a result, from its wait status."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        name = signal.Signals(number).name if number in signal.valid_signals() else str(number)
        hint = " (out of memory?)" if number == signal.SIGKILL else ""
        return f"the unit's process was killed by {name}{hint}; no result"
    return f"the unit's process exited with code {os.WEXITSTATUS(status)} without a result"
