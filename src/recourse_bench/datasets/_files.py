"""Dataset files: found, verified and (where the licence allows) downloaded, in a fixed order.

1. files embedded in the package (German credit, Adult);
2. the user's data folder: ``RECOURSE_BENCH_DATA`` (or the config key ``data_dir``), holding each
   file under its original name, optionally gzip-compressed (``name`` or ``name.gz``);
3. the download cache (``RECOURSE_BENCH_CACHE``, default ``~/.cache/recourse-bench``), filled
   from the original public source. A download goes to a temporary file, is checked against the
   pinned sha256 and only then renamed into place; a bad or interrupted download leaves nothing.

Every file is checked against its pinned sha256 (of the uncompressed content) before use. Files
whose licence forbids redistribution have no download address: their error says where to get them.
A file in a data folder whose sha256 differs is refused, never replaced or worked around: the error
(one line) names the file, the sha256 found and expected, and where to get the original. A bad
cache entry, which recourse-bench itself wrote, is discarded and downloaded again. Archives are
only read in memory, the named members only (absolute or parent-relative member paths are
refused): nothing but the verified file is ever written, and only into the cache folder.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import io
import logging
import os
import re
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath, PureWindowsPath

from ..api import DataError

log = logging.getLogger(__name__)

DATA_ENV = "RECOURSE_BENCH_DATA"
CACHE_ENV = "RECOURSE_BENCH_CACHE"
_data_dir_override: list[Path] = []


@dataclass(frozen=True)
class DataFile:
    """One raw file a dataset needs.

    Attributes
    ----------
    name : str
        The file's original name (also its name in a data folder).
    sha256 : str
        sha256 of the uncompressed content.
    url : str or None
        Public address of the original (or of a zip archive holding it); None where the licence
        forbids redistribution or no stable address exists.
    members : tuple of str
        Path of the file inside the downloaded archive, one entry per level of nested zips.
    embedded : bool
        Shipped inside the package (``datasets/data/``).
    obtain : str
        How a user gets the file where there is no download.
    """

    name: str
    sha256: str
    url: str | None = None
    members: tuple[str, ...] = ()
    embedded: bool = False
    obtain: str = ""

    def __post_init__(self) -> None:
        if _unsafe_path(self.name) or len(PureWindowsPath(self.name).parts) != 1:
            raise DataError(f"data file name {self.name!r} must be a plain file name, no folder")
        if not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise DataError(f"{self.name}: sha256 {self.sha256!r} must be 64 lower-case hex digits")


def _unsafe_path(path: str) -> bool:
    """Whether ``path`` is empty, absolute (POSIX or Windows) or climbs with ``..``."""
    posix, windows = PurePosixPath(path), PureWindowsPath(path)
    return (
        not path
        or posix.is_absolute()
        or bool(windows.drive or windows.root)
        or ".." in posix.parts
        or ".." in windows.parts
    )


def sha256_of(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def data_dir(path: str | Path | None) -> Iterator[None]:
    """Within the block, look for files in ``path`` first (the config key ``data_dir``)."""
    if path is None:
        yield
        return
    _data_dir_override.append(Path(path))
    try:
        yield
    finally:
        _data_dir_override.pop()


def data_folders() -> list[Path]:
    """The user's data folders, in the order they are searched."""
    folders = list(reversed(_data_dir_override))
    if os.environ.get(DATA_ENV):
        folders.append(Path(os.environ[DATA_ENV]))
    return folders


def cache_folder() -> Path:
    """Where downloads are kept."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path.home() / ".cache" / "recourse-bench"


def _unpack(raw: bytes) -> bytes:
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def _verified(file: DataFile, path: Path) -> bytes:
    """The content of ``path`` if it matches the pinned sha256, else a clear error."""
    try:
        content = _unpack(path.read_bytes())
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        reason = " ".join(str(getattr(exc, "strerror", None) or exc).split())
        unreadable = isinstance(exc, PermissionError)
        fix = "make it readable for this user" if unreadable else _replacement(file, path)
        raise DataError(f"{file.name}: cannot read {str(path)!r} ({reason}); {fix}") from None
    digest = sha256_of(content)
    if digest != file.sha256:
        raise DataError(
            f"{file.name}: {str(path)!r} has sha256 {digest[:16]}..., expected "
            f"{file.sha256[:16]}... ({len(content)} bytes read): the file is truncated, "
            f"corrupted or another version; {_replacement(file, path)}"
        )
    return content


def _replacement(file: DataFile, path: Path) -> str:
    """How to replace the bad copy of ``file`` at ``path``: where its original is."""
    if file.embedded and path.parent == _package_folder():
        return "the installed package is damaged: reinstall recourse-bench"
    fetch = f"`recourse-bench data fetch{_dataset_argument(file)}`"
    if file.url and path.parent == cache_folder():
        return f"delete it and run {fetch} to download it again"
    if file.url:
        inside = f" (inside the archive: {' / '.join(file.members)})" if file.members else ""
        return (
            f"replace it with the original file from {file.url}{inside}, or delete it and run "
            f"{fetch} to download and verify it"
        )
    return f"replace it with the original file from {file.obtain or 'its publisher'}"


def _dataset_argument(file: DataFile) -> str:
    """`` NAME`` of a registered dataset that reads ``file`` (for a command to suggest)."""
    from .. import registry  # the registry imports the datasets: import it late

    try:
        names = [
            name
            for name in registry.available("dataset")
            if any(f.name == file.name for f in getattr(registry.get("dataset", name), "files", ()))
        ]
    except Exception:  # an error message must not fail while it is being written
        return ""
    return f" {names[0]}" if names else ""


def _package_folder() -> Path:
    """Where the embedded files lie."""
    return Path(str(resources.files(__package__).joinpath("data")))


def candidates(file: DataFile) -> list[Path]:
    """Every place the file is looked for, in order."""
    places = []
    if file.embedded:
        folder = _package_folder()
        places += [folder / file.name, folder / f"{file.name}.gz"]
    for folder in data_folders():
        places += [folder / file.name, folder / f"{file.name}.gz"]
    places.append(cache_folder() / file.name)
    return places


def locate(file: DataFile) -> Path | None:
    """The first existing place of the file (not yet verified), or None."""
    return next((p for p in candidates(file) if p.is_file()), None)


def read(file: DataFile, *, download: bool = True) -> bytes:
    """The verified content of a data file, downloading it into the cache if needed."""
    path = locate(file)
    if path is not None and path.parent == cache_folder() and file.url and download:
        try:
            return _verified(file, path)
        except DataError as exc:  # a bad cache entry is ours: discard it and download again
            log.warning("%s; discarding it and downloading again", exc)
            path.unlink(missing_ok=True)
            path = None
    if path is not None:
        return _verified(file, path)
    if download and file.url:
        return _verified(file, fetch(file))
    raise DataError(missing_message(file))


def missing_message(file: DataFile) -> str:
    """The one line for a file found nowhere: where it was looked for and how to get it."""
    looked = ", ".join(str(p) for p in candidates(file)) or "(nowhere)"
    if file.url:
        how = f"run `recourse-bench data fetch{_dataset_argument(file)}` (downloads {file.url})"
    else:
        how = f"get it from {file.obtain}" if file.obtain else "get the original file"
    return (
        f"{file.name} not found (looked in {looked}); {how} and put it in a data folder named "
        f"by {DATA_ENV} (or the config key data_dir)"
    )


def fetch(file: DataFile, timeout: float = 60.0) -> Path:
    """Download a file into the cache, atomically, verified against its sha256."""
    if not file.url:
        raise DataError(missing_message(file))
    unsafe = [member for member in file.members if _unsafe_path(member)]
    if unsafe:  # refused before anything is downloaded
        raise DataError(f"{file.name}: refusing the archive member path {unsafe[0]!r}")
    target = cache_folder() / file.name
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{file.name}.{os.getpid()}.part")
    log.info("downloading %s from %s", file.name, file.url)
    try:
        payload = _download(file.url, timeout)
        content = _extract(payload, file.members, file.name) if file.members else payload
        digest = sha256_of(content)
        if digest != file.sha256:
            raise DataError(
                f"{file.name}: the download from {file.url} has sha256 {digest[:16]}..., expected "
                f"{file.sha256[:16]}...; nothing was saved. The source may have changed: get the "
                f"original file and put it in a data folder named by {DATA_ENV}"
            )
        tmp.write_bytes(content)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _download(url: str, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            expected = response.headers.get("Content-Length")
            payload = response.read()
    except http.client.IncompleteRead as exc:
        raise DataError(
            f"download of {url} was interrupted ({len(exc.partial)} bytes received); "
            "nothing was saved, try again"
        ) from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataError(
            f"download of {url} failed ({reason}); check the connection, or put the file in a "
            f"data folder named by {DATA_ENV}"
        ) from None
    if expected is not None and expected.isdigit() and len(payload) != int(expected):
        raise DataError(
            f"download of {url} was interrupted ({len(payload)} of {expected} bytes); "
            "nothing was saved, try again"
        )
    return payload


def _extract(payload: bytes, members: tuple[str, ...], name: str) -> bytes:
    """Read a member from (nested) zip archives, refusing absolute or parent-relative paths.

    Everything happens in memory: only the named member is read, and no archive path is ever
    used to write a file (the caller writes the verified content under ``name`` in the cache).
    """
    for member in members:
        if _unsafe_path(member):
            raise DataError(f"{name}: refusing the archive member path {member!r}")
        try:
            with zipfile.ZipFile(io.BytesIO(payload)) as archive:
                payload = archive.read(member)
        except (zipfile.BadZipFile, KeyError, zlib.error, NotImplementedError, RuntimeError) as exc:
            raise DataError(f"{name}: the downloaded archive is not usable ({exc})") from None
    return payload


def status(file: DataFile) -> tuple[str, Path | None]:
    """``ok``, ``missing`` or the error line for a file, with where it was found."""
    path = locate(file)
    if path is None:
        return "missing", None
    try:
        _verified(file, path)
    except DataError as exc:
        return str(exc), path
    return "ok", path
