"""Isolation of one unit of work: a forked child process with a time and a memory limit.

A unit that hangs, crashes the interpreter or exhausts memory must cost only its own cells. On
POSIX systems every unit that is not already cached runs in a child forked from its worker: the
worker waits for the child's result on a pipe, kills it when the per-unit ``timeout`` passes,
and reports a child that died (a segmentation fault, the kernel's out-of-memory killer) as a
failure of that unit. With a ``memory_limit`` the worker also watches the child's resident
memory and stops it once it holds that much more than the worker did (Linux only), so a runaway
allocation costs its unit and not the machine. (An address-space limit was tried first: the
memory pools of pyarrow and similar libraries reserve address space up front and fail under one.)

Forking keeps the worker's imports and registered plugins, so a child starts in about 30 ms (two
cores, torch loaded) instead of the seconds a fresh interpreter needs. Where ``os.fork`` does not
exist (Windows), units run in their worker and limits cannot be enforced.

A child process that initialised CUDA cannot be forked from safely; the worker itself never runs
an uncached unit, so only the children touch the GPU.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import pickle
import select
import signal
import sys
import time
import traceback
import warnings
from collections.abc import Callable
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
    """Call ``func`` in a forked child under ``limits``; the value must be picklable.

    An exception escaping ``func`` is an ``error`` with its first line; a child that exceeds
    the timeout is killed (``timeout``), as is one whose resident memory grows past the memory
    limit (``error``); a child that dies without a result is an ``error`` naming the signal.
    """
    read_end, write_end = os.pipe()
    baseline = _resident(os.getpid())
    with warnings.catch_warnings():  # Python >= 3.12 warns on fork in a threaded process
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        _child(func, write_end)
    os.close(write_end)
    verdict = "interrupted"  # until the child's answer is read: an interrupted wait kills it
    try:
        payload, verdict = _read_until(read_end, pid, limits, baseline)
    finally:
        os.close(read_end)
        if verdict != "done":
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    if verdict == "timeout":
        return Isolated(
            status="timeout",
            reason=f"still running after the {limits.timeout:g} s timeout; stopped",
        )
    if verdict == "memory":
        assert limits.memory is not None
        return Isolated(
            status="error",
            reason=f"used more than the memory_limit of {format_size(limits.memory)}; stopped",
        )
    if payload:
        (kind, value), records, caught = pickle.loads(payload)
        _replay(records, caught)
        return Isolated(value=value) if kind == "value" else Isolated(status="error", reason=value)
    return Isolated(status="error", reason=_death(status))


def _child(func: Callable[[], Any], write_end: int) -> None:
    """Run ``func`` and send back its outcome with its log records and warnings; then exit.

    The outcome is ``("value", v)`` or ``("error", first line)``. Log records and warnings are
    collected instead of shown here, and the parent re-emits them, so a unit logs and warns as
    if it had run in its worker.
    """
    code = 0
    try:
        _die_with_parent()
        records: list[logging.LogRecord] = []
        logging.getLogger().handlers = [_Collector(records)]
        with warnings.catch_warnings(record=True) as caught:
            try:
                outcome: tuple[str, Any] = ("value", func())
            except Exception as exc:
                outcome = ("error", _first_line(exc))
        try:
            data = pickle.dumps((outcome, records, _sendable(caught)), pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            failure = ("error", _first_line(exc, " (the unit's result cannot be sent)"))
            data = pickle.dumps((failure, [], []))
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(data)
    except BaseException:  # Ctrl-C or a failure to send: no result; the parent reports it
        traceback.print_exc(file=sys.stderr)
        code = 1
    finally:
        os._exit(code)  # no atexit handlers, no flushing of the parent's buffers


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
    """On Linux, the child is killed when its worker dies (no orphan keeps computing)."""
    if not sys.platform.startswith("linux"):
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


def _read_until(fd: int, pid: int, limits: Limits, baseline: int) -> tuple[bytes, str]:
    """Everything the child writes, until it closes the pipe (``done``) or breaks a limit.

    The child's resident memory is checked every :data:`MEMORY_POLL` seconds when there is a
    memory limit; it may overshoot by what it allocates in that time.
    """
    deadline = None if limits.timeout is None else time.monotonic() + limits.timeout
    chunks = []
    while True:
        wait = None if deadline is None else deadline - time.monotonic()
        if wait is not None and wait <= 0:
            return b"".join(chunks), "timeout"
        if limits.memory is not None:
            wait = MEMORY_POLL if wait is None else min(wait, MEMORY_POLL)
            if _resident(pid) - baseline > limits.memory:
                return b"".join(chunks), "memory"
        ready, _, _ = select.select([fd], [], [], wait)
        if not ready:
            continue
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks), "done"
        chunks.append(chunk)


def _death(status: int) -> str:
    """Why a child ended without a result, from its wait status."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        name = signal.Signals(number).name if number in signal.valid_signals() else str(number)
        hint = " (out of memory?)" if number == signal.SIGKILL else ""
        return f"the unit's process was killed by {name}{hint}; no result"
    return f"the unit's process exited with code {os.WEXITSTATUS(status)} without a result"
