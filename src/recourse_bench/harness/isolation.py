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
import select
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
CAN_MEASURE_MEMORY = os.path.isdir("/proc/self")
MEMORY_POLL = 0.05  # seconds between two looks at a child's memory
_PR_SET_PDEATHSIG = 1


def check_limits(limits: Limits) -> None:
    """Refuse limits this system cannot enforce (no fork: Windows; no /proc: macOS memory)."""
    if (limits.timeout or limits.memory) and not CAN_FORK:
        raise ConfigError(
            "timeout and memory_limit need a system with fork (Linux, macOS); "
            "remove them on this system"
        )
    if limits.memory and not CAN_MEASURE_MEMORY:
        raise ConfigError("memory_limit needs Linux (/proc); remove it on this system")


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
    """Call ``func`` in this thread's child process under ``limits``.

    ``func`` and its value must be picklable. An exception escaping ``func`` is an ``error``
    with its first line; a child that exceeds the timeout is killed (``timeout``), as is one
    whose resident memory grows by more than the memory limit during the call (``error``); a
    child that dies without a result is an ``error`` naming the signal. After a kill the next
    call starts a fresh child.
    """
    key = threading.get_ident()
    child = _CHILDREN.get(key)
    if child is None or not child.alive:
        with _FORKING:  # no child may inherit the pipes of one forked at the same time
            child = _CHILDREN[key] = _Child.start()
    return child.call(func, limits)


def shutdown() -> None:
    """Stop every child process this process started (at the end of a run).

    They are idle then, with nothing to save, so they are killed rather than asked to stop.
    """
    for key in list(_CHILDREN):
        _CHILDREN.pop(key).stop(kill=True)


@contextlib.contextmanager
def children() -> Iterator[None]:
    """The child processes this process starts in the block are stopped at its end.

    A run wraps its waves in this, so that the children of the calling process (with the
    sequential backends) never outlive the run nor carry its plugins into the next one. Workers
    of a pool keep theirs until they exit.
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
    """

    def __init__(self, pid: int, to_child: int, from_child: int) -> None:
        self.pid, self.to_child, self.from_child = pid, to_child, from_child
        self.alive = True

    @classmethod
    def start(cls) -> _Child:
        """Fork a child that serves calls until its pipe closes (or its worker dies)."""
        task_read, task_write = os.pipe()
        result_read, result_write = os.pipe()
        global _FORKED_BY_MAIN_THREAD
        _FORKED_BY_MAIN_THREAD = threading.current_thread() is threading.main_thread()
        with warnings.catch_warnings():  # Python >= 3.12 warns on fork in a threaded process
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: never returns
            for other in _CHILDREN.values():  # a sibling's pipes must close when it dies
                other.close_pipes()
            os.close(task_write)
            os.close(result_read)
            _serve(task_read, result_write)
        os.close(task_read)
        os.close(result_write)
        return cls(pid, task_write, result_read)

    def call(self, func: Callable[[], Any], limits: Limits) -> Isolated:
        """Run ``func`` in the child; kill the child if it breaks a limit or is interrupted."""
        request = pickle.dumps(func, _PROTOCOL)
        baseline = _resident(self.pid)
        status = 0
        verdict = "interrupted"  # until the answer is read: an interrupted wait kills the child
        try:
            _send(self.to_child, request)
            payload, verdict = _receive(self.from_child, self.pid, limits, baseline)
        except BrokenPipeError:  # the child died between two calls
            payload, verdict = b"", "died"
        finally:
            if verdict != "done":
                status = self.stop(kill=verdict != "died")
        if verdict == "timeout":
            reason = f"still running after the {limits.timeout:g} s timeout; stopped"
            return Isolated(status="timeout", reason=reason)
        if verdict == "memory":
            assert limits.memory is not None
            reason = f"used more than the memory_limit of {format_size(limits.memory)}; stopped"
            return Isolated(status="error", reason=reason)
        if verdict == "died":
            return Isolated(status="error", reason=_death(status))
        (kind, value), records, caught = pickle.loads(payload)
        _replay(records, caught)
        return Isolated(value=value) if kind == "value" else Isolated(status="error", reason=value)

    def stop(self, kill: bool = False) -> int:
        """End the child (at the end of its pipe, or at once with ``kill``); its wait status."""
        if not self.alive:
            return 0
        self.alive = False
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        self.close_pipes()
        try:
            return os.waitpid(self.pid, 0)[1]
        except ChildProcessError:  # already reaped
            return 0

    def close_pipes(self) -> None:
        """Close this process's ends of the pipes (once: their numbers are reused after)."""
        for fd in (self.to_child, self.from_child):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.to_child = self.from_child = -1


_CHILDREN: dict[int, _Child] = {}  # per thread of this process
_FORKING = threading.Lock()
_FORKED_BY_MAIN_THREAD = False
atexit.register(shutdown)


def _serve(task_read: int, result_write: int) -> None:
    """The child's loop: read a pickled call, run it, send back its outcome; exit on EOF.

    An outcome is ``("value", v)`` or ``("error", first line)``, sent with the log records and
    warnings of the call, which are collected here instead of shown: the worker re-emits them,
    so a unit logs and warns as if it had run in its worker.
    """
    code = 0
    try:
        _die_with_parent()
        records: list[logging.LogRecord] = []
        logging.getLogger().handlers = [_Collector(records)]
        while True:
            request = _read_frame(task_read)
            if request is None:
                break
            records.clear()
            with warnings.catch_warnings(record=True) as caught:
                try:
                    outcome: tuple[str, Any] = ("value", pickle.loads(request)())
                except Exception as exc:
                    outcome = ("error", _first_line(exc))
            try:
                answer = pickle.dumps(
                    (outcome, records, _sendable(caught)), pickle.HIGHEST_PROTOCOL
                )
            except Exception as exc:
                failure = ("error", _first_line(exc, " (the unit's result cannot be sent)"))
                answer = pickle.dumps((failure, [], []))
            _send(result_write, answer)
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: the run stops
        code = 1
    except BaseException:  # a broken pipe or a failure to send: the worker reports it
        traceback.print_exc(file=sys.stderr)
        code = 1
    finally:
        os._exit(code)  # no atexit handlers, no flushing of the worker's buffers


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
    """Keeps a child's log records, made picklable (message formatted, traceback as text)."""

    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__()
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        record.msg = record.getMessage()
        record.args = None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        self.records.append(record)


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


def _die_with_parent() -> None:
    """On Linux, the child is killed when its worker dies (no orphan keeps computing).

    The kernel ties this to the thread that forked, so it is asked for only when that was the
    main thread (a loky worker, a sequential run): the threads of a thread pool end with their
    pool while their child may serve the pool's next threads. A child of a thread, or one on
    another system, still ends when its worker does, at the end of its pipe, unless it is
    busy with a unit then.
    """
    if not sys.platform.startswith("linux") or not _FORKED_BY_MAIN_THREAD:
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _resident(pid: int) -> int:
    """A process's resident memory in bytes, from /proc (0 where /proc is missing)."""
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def _receive(fd: int, pid: int, limits: Limits, baseline: int) -> tuple[bytes, str]:
    """The child's answer (``done``), or why there is none: ``timeout``, ``memory``, ``died``.

    The child's resident memory is checked every :data:`MEMORY_POLL` seconds when there is a
    memory limit; it may overshoot by what it allocates in that time.
    """
    deadline = None if limits.timeout is None else time.monotonic() + limits.timeout
    buffer = bytearray()
    size = None
    while size is None or len(buffer) < size:
        wait = None if deadline is None else deadline - time.monotonic()
        if wait is not None and wait <= 0:
            return b"", "timeout"
        if limits.memory is not None:
            wait = MEMORY_POLL if wait is None else min(wait, MEMORY_POLL)
            if _resident(pid) - baseline > limits.memory:
                return b"", "memory"
        ready, _, _ = select.select([fd], [], [], wait)
        if not ready:
            continue
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"", "died"
        buffer += chunk
        if size is None and len(buffer) >= _LENGTH.size:
            size = _LENGTH.size + _LENGTH.unpack_from(buffer)[0]
    return bytes(buffer[_LENGTH.size :]), "done"


def _death(status: int) -> str:
    """Why a child ended without a result, from its wait status."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        name = signal.Signals(number).name if number in signal.valid_signals() else str(number)
        hint = " (out of memory?)" if number == signal.SIGKILL else ""
        return f"the unit's process was killed by {name}{hint}; no result"
    return f"the unit's process exited with code {os.WEXITSTATUS(status)} without a result"
