"""The on-disk store of the stage cache: atomic writes and a content hash checked before unpickling.

The harness caches every stage with :class:`joblib.Memory` (see
:func:`recourse_bench.harness.stages.memory`), on the store backend defined here and registered
with joblib as ``"recourse-bench"``. It keeps joblib's layout
(``<cache>/joblib/<module>/<function>/<argument hash>/output.pkl`` beside ``metadata.json``) and
changes how ``output.pkl`` is written and read:

* **Written atomically.** The result is pickled into memory, then written as one file, a header
  (:data:`MAGIC`, the sha256 of the payload in hex, a newline) followed by the payload, to a
  temporary file in the entry's folder that :func:`os.replace` renames to ``output.pkl``. A reader
  sees the old file or the new one, never half of one, and as the hash travels in the same file
  as its payload, two processes writing one entry at once cannot leave a hash that disagrees with
  the payload beside it.
* **Checked before anything is unpickled.** An entry is used only if ``output.pkl`` resolves
  (symbolic links followed) inside the cache folder, starts with the header and its payload has
  the sha256 of the header. The payload is then unpickled from the bytes that were checked, never
  by reading the file again.
* **A bad entry is recomputed.** A truncated or corrupted entry, one without the header (written
  by another version or another tool) or one that leads outside the cache folder is discarded
  (its folder removed) and recomputed, with one warning line on the ``logging`` logger of this
  module (shown by the CLI). joblib's own traceback warning is not reached: the check runs in
  :meth:`CheckedStoreBackend.contains_item`, which joblib asks before it loads an entry.

Threat model: the hash detects truncation (a killed writer, a full disk, a copy cut short) and
corruption (a flipped bit, a file edited by mistake), and the folder check keeps a symbolic link
from making the cache unpickle a file that lies elsewhere. The hash is **not a signature**: anyone
who can write to the cache folder can write a valid header for a payload of their choosing, and
unpickling runs code. A cache folder must therefore be trusted like code: never use a cache
folder (or a copy of one) from someone you do not trust.

Checking costs one sha256 of each entry the first time a process uses it (about 30 ms for 50 MiB
on the 2-core reference machine, against 10 to 30 ms to load such an entry), and one more read
of the file; the result is remembered per file identity (path, device, inode, size, modification
time), so the check joblib makes before loading and the load itself hash an entry once.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import shutil
import uuid
import warnings
from typing import Any

from joblib import numpy_pickle, register_store_backend
from joblib._store_backends import CacheWarning, FileSystemStoreBackend

from ..api import RecourseBenchError

log = logging.getLogger(__name__)

BACKEND = "recourse-bench"
"""The name under which the store is registered with joblib (``Memory(..., backend=BACKEND)``)."""

MAGIC = b"recourse-bench cache v1 sha256 "
"""How every ``output.pkl`` written by this store starts, followed by the payload's hex digest."""

OUTPUT = "output.pkl"
_HEADER_SIZE = len(MAGIC) + 64 + 1  # the hex digest and a newline
_CHUNK = 1 << 20
_MAX_REMEMBERED = 65_536

# File identity (real path, device, inode, size, mtime in ns) -> the sha256 its payload was found
# to have. Module level so that every store of a process shares it (and the store pickles).
_verified: dict[tuple[str, int, int, int, int], str] = {}


class CacheEntryError(RecourseBenchError):
    """A cache entry failed its integrity check; it was not unpickled.

    Parameters
    ----------
    entry : str
        The entry's folder, relative to the cache folder.
    reason : str
        What is wrong with it, e.g. ``"content hash mismatch"``.
    """

    def __init__(self, entry: str, reason: str):
        super().__init__(f"cache entry {entry} is {reason}")
        self.entry = entry
        self.reason = reason


class CheckedStoreBackend(FileSystemStoreBackend):
    """joblib's file-system store with atomic, hashed entries checked before they are unpickled.

    Registered with joblib as :data:`BACKEND`. Results are always loaded into memory from the
    checked bytes: ``mmap_mode`` is ignored.
    """

    def configure(self, location: str, verbose: int = 1, backend_options: Any = None) -> None:
        """Set up the store in ``location`` (``<cache>/joblib``), as joblib's own store does."""
        super().configure(location, verbose=verbose, backend_options=backend_options)
        self._root = os.path.realpath(self.location)
        parent, name = os.path.split(os.path.normpath(self.location))
        self._shown_root = parent if name == "joblib" else self.location

    # -------------------------------------------------------------------- joblib's interface
    def contains_item(self, call_id: Any) -> bool:
        """Whether a valid entry exists for ``call_id``; a bad one is discarded (with a warning).

        joblib asks this before loading an entry, and ``check_call_in_cache`` answers with it,
        so a discarded entry is simply recomputed.
        """
        item_path = os.path.join(self.location, *call_id)
        filename = os.path.join(item_path, OUTPUT)
        if not os.path.lexists(filename):
            return False
        try:
            self._check_file(item_path)
        except FileNotFoundError:  # removed by another process meanwhile
            return False
        except (CacheEntryError, OSError) as exc:
            self._discard(item_path, exc)
            return False
        return True

    def load_item(
        self, call_id: Any, verbose: int = 1, timestamp: Any = None, metadata: Any = None
    ) -> Any:
        """Load an entry, checking it first; raise :class:`CacheEntryError` when it is bad.

        :meth:`contains_item` has normally checked the entry already (the hash is then not
        computed again); this check is the second line of defence, e.g. against an entry
        damaged between the two calls. A bad entry is discarded before the error is raised.
        """
        item_path = os.path.join(self.location, *call_id)
        try:
            payload = self._read_payload(item_path)
        except FileNotFoundError as exc:
            raise KeyError(f"Non-existing item (may have been cleared): {exc.filename}") from exc
        except CacheEntryError as exc:
            self._discard(item_path, exc)
            raise
        return numpy_pickle.load(payload)

    def dump_item(self, call_id: Any, item: Any, verbose: int = 1) -> None:
        """Store an entry atomically: header and payload to a temporary file, then a rename.

        As with joblib's store, a failure to write only warns (:class:`CacheWarning`): the
        result is still returned, it is just not cached.
        """
        item_path = os.path.join(self.location, *call_id)
        try:
            buffer = io.BytesIO()
            numpy_pickle.dump(item, buffer, compress=self.compress)
            payload = buffer.getbuffer()
            digest = hashlib.sha256(payload).hexdigest()
            if not self._inside(item_path):
                raise CacheEntryError(self._shown(item_path), "outside the cache folder")
            self.create_location(item_path)
            filename = os.path.join(item_path, OUTPUT)
            temporary = f"{filename}.{uuid.uuid4().hex}-{os.getpid()}.tmp"
            try:
                with open(temporary, "wb") as file:
                    file.write(MAGIC + digest.encode("ascii") + b"\n")
                    file.write(payload)
                    file.flush()
                    status = os.fstat(file.fileno())  # a rename keeps inode and mtime
                os.replace(temporary, filename)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
            _remember(_identity(os.path.realpath(filename), status), digest)
        except Exception as exc:
            warnings.warn(f"Unable to cache to disk: {exc}", CacheWarning, stacklevel=2)

    # -------------------------------------------------------------------------- the check
    def _inside(self, path: str) -> bool:
        real = os.path.realpath(path)
        return real == self._root or real.startswith(self._root + os.sep)

    def _shown(self, item_path: str) -> str:
        return os.path.relpath(item_path, self._shown_root)

    def _open_checked(self, item_path: str) -> tuple[io.FileIO, tuple[str, int, int, int, int]]:
        """Open ``output.pkl`` (unbuffered) once it is known to lie in the cache folder."""
        real = os.path.realpath(os.path.join(item_path, OUTPUT))
        if not real.startswith(self._root + os.sep):
            raise CacheEntryError(self._shown(item_path), "outside the cache folder")
        file = open(real, "rb", buffering=0)  # closed by the callers
        return file, _identity(real, os.fstat(file.fileno()))

    def _header_digest(self, item_path: str, header: bytes) -> str:
        if len(header) < _HEADER_SIZE or not header.startswith(MAGIC) or header[-1:] != b"\n":
            reason = "corrupted (no recourse-bench header: truncated, or written by another tool)"
            raise CacheEntryError(self._shown(item_path), reason)
        return header[len(MAGIC) : -1].decode("ascii", errors="replace")

    def _check_file(self, item_path: str) -> None:
        """Check an entry without keeping it in memory (the payload is hashed in chunks)."""
        file, identity = self._open_checked(item_path)
        with file:
            digest = self._header_digest(item_path, file.read(_HEADER_SIZE))
            if _verified.get(identity) == digest:
                return
            hasher = hashlib.sha256()
            chunk = bytearray(_CHUNK)
            view = memoryview(chunk)
            while size := file.readinto(chunk):
                hasher.update(view[:size])
        self._compare(item_path, identity, digest, hasher.hexdigest())

    def _read_payload(self, item_path: str) -> io.BufferedReader:
        """The checked payload of an entry, in memory, from one read of the file."""
        file, identity = self._open_checked(item_path)
        with file:
            data = file.read()
        digest = self._header_digest(item_path, data[:_HEADER_SIZE])
        if _verified.get(identity) != digest:
            payload = memoryview(data)[_HEADER_SIZE:]
            self._compare(item_path, identity, digest, hashlib.sha256(payload).hexdigest())
        # BytesIO shares the bytes (no copy of a model of tens of MB); the buffered reader can
        # peek, so joblib does not rewind to the start of the header to detect a compression.
        buffer = io.BytesIO(data)
        buffer.seek(_HEADER_SIZE)
        return io.BufferedReader(buffer)

    def _compare(self, item_path: str, identity: Any, expected: str, found: str) -> None:
        if found != expected:
            reason = "corrupted (content hash mismatch: truncated or damaged)"
            raise CacheEntryError(self._shown(item_path), reason)
        _remember(identity, expected)

    def _discard(self, item_path: str, exc: Exception) -> None:
        """Remove a bad entry's folder (a link is unlinked, never followed) and say so once."""
        if isinstance(exc, CacheEntryError):
            message = str(exc)
        else:
            message = f"cache entry {self._shown(item_path)} is unreadable ({exc})"
        log.warning("%s; discarded, recomputing", message)
        if os.path.islink(item_path):
            with contextlib.suppress(OSError):
                os.unlink(item_path)
        elif self._inside(item_path):
            shutil.rmtree(item_path, ignore_errors=True)


def _identity(real: str, status: os.stat_result) -> tuple[str, int, int, int, int]:
    return (real, status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


def _remember(identity: tuple[str, int, int, int, int], digest: str) -> None:
    if len(_verified) >= _MAX_REMEMBERED:
        _verified.clear()
    _verified[identity] = digest


register_store_backend(BACKEND, CheckedStoreBackend)
