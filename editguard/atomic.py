"""Safe writes and compute-once caches: the one place editguard writes a file or folder that others read.

A write goes to a temporary next to its target and is renamed over it, so a reader sees the old
content or the new, never half of it; on any error (KeyboardInterrupt included) the temporary is
removed and the target is untouched.

- Files and folders are created with mode 0o666 / 0o777 through ``os.open`` / ``os.mkdir``, so the
  kernel applies the umask (and a folder's default ACL); ``mkstemp``'s 0600 kept other CI users out.
- ``durable=True`` (the default) fsyncs the data before the rename and the folder after it, so a power
  loss cannot leave an empty file where a baseline, report or delta was.  Only the output cache passes
  ``durable=False``: it is rewritten often and a damaged entry there is read as a miss.
- Temporaries are named ``.{target}.{host}-{pid}-{random}.tmp``.  A SIGKILL'ed writer leaves one behind;
  every write (and ``BaselineStore.read``) first removes the stale ones in its folder: those whose
  writer, a process on this host, is gone, and any older than ``STALE_AFTER_S`` (a writer on another
  host sharing the folder).  A live writer's temporary is never touched.

``compute_once`` is the lock-check-compute pattern of the caches: check, and only if the result is
missing take a file lock, check again, and compute.  A cache is a convenience: ``cache_write`` runs a cache's
write and, when the folder cannot be written (no space, read-only, a file in the way), remembers the cause for
the run to tell once (``unwritable_caches``) and goes on; ``compute_once`` computes without its lock then.
``os_error_cause`` says an OSError's cause in a few words, for every message that names a failed write.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Generic, Literal, TypeVar

from filelock import FileLock

T = TypeVar("T")

STALE_AFTER_S = 3600.0  # a temporary this old is stale whoever wrote it; writes here take seconds
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]
_TEMPORARY = re.compile(r"^\.(?P<target>.+)\.(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-[0-9a-f]{8}\.tmp$")


def default_cache_dir() -> Path:
    """``$EDITGUARD_CACHE_DIR``, else ``$XDG_CACHE_HOME/editguard``, else ``~/.cache/editguard``."""
    if os.environ.get("EDITGUARD_CACHE_DIR"):
        return Path(os.environ["EDITGUARD_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "editguard"


# ----------------------------------------------------------------------------- file writes


def write_bytes(path: Path, data: bytes, *, durable: bool = True) -> Path:
    with atomic_open(path, "wb", durable=durable) as stream:
        stream.write(data)
    return path


def write_text(path: Path, text: str, *, durable: bool = True) -> Path:
    with atomic_open(path, "w", durable=durable) as stream:
        stream.write(text)
    return path


def write_json(path: Path, value: Any, *, durable: bool = True, indent: int | None = 2, **options: Any) -> Path:
    """``value`` as JSON plus a final newline; ``options`` go to ``json.dumps`` (``sort_keys``, ``default``)."""
    return write_text(path, json.dumps(value, indent=indent, **options) + "\n", durable=durable)


@contextlib.contextmanager
def atomic_open(path: Path, mode: Literal["w", "wb"] = "w", *, durable: bool = True) -> Iterator[IO[Any]]:
    """A stream onto a temporary that replaces ``path`` when the block ends without error (text is UTF-8)."""
    encoding = None if "b" in mode else "utf-8"
    with atomic_path(path, durable=durable) as staging, open(staging, mode, encoding=encoding) as stream:
        yield stream


@contextlib.contextmanager
def atomic_path(path: Path, *, durable: bool = True) -> Iterator[Path]:
    """The path of an empty temporary file, for writers that want a path (safetensors); it replaces ``path``
    when the block ends without error, and is removed when it raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent)
    staging = _new_temporary_file(path)
    mode = staging.stat().st_mode & 0o777  # what the umask (or the folder's default ACL) gave it
    try:
        yield staging
        os.chmod(staging, mode)  # a writer that replaced the file (safetensors does) made it 0600
        if durable:
            _fsync(staging)
        os.replace(staging, path)
        if durable:
            _fsync(path.parent)
    except BaseException as error:
        staging.unlink(missing_ok=True)
        _raise_as_os_error(error)
        raise


_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def _raise_as_os_error(error: BaseException) -> None:
    """A write that failed in the operating system but says so in another exception (safetensors' SafetensorError:
    "I/O error: No space left on device (os error 28)") is raised as the OSError it is, so every caller's
    ``except OSError`` (a cache that cannot be written, a full disk) sees it; anything else is left alone."""
    if isinstance(error, OSError):
        return
    found = _OS_ERROR.search(str(error))
    if found:
        number = int(found.group(1))
        raise OSError(number, os.strerror(number)) from error


def _new_temporary_file(path: Path) -> Path:
    while True:
        staging = path.parent / temporary_name(path.name)
        try:
            os.close(os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666))
            return staging
        except FileExistsError:  # 32 random bits collided; draw again
            continue


# ----------------------------------------------------------------------------- folder writes


@contextlib.contextmanager
def atomic_folder(path: Path, *, durable: bool = True) -> Iterator[Path]:
    """An empty staging folder that replaces the folder ``path`` when the block ends without error, and is
    removed when it raises; readers see the old folder (or none) or the complete new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent)
    staging = _new_temporary_folder(path)
    try:
        yield staging
        if durable:
            _fsync_tree(staging)
        _install_folder(staging, path)
        if durable:
            _fsync(path.parent)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        _raise_as_os_error(error)
        raise


def _new_temporary_folder(path: Path) -> Path:
    while True:
        staging = path.parent / temporary_name(path.name)
        try:
            os.mkdir(staging, 0o777)
            return staging
        except FileExistsError:
            continue


def _install_folder(staging: Path, path: Path) -> None:
    """Rename ``staging`` to ``path``; an existing folder there is moved aside first (a rename cannot
    replace a non-empty folder), put back if the rename fails, and removed after it succeeds."""
    if not path.is_dir():
        os.replace(staging, path)
        return
    aside = path.parent / temporary_name(path.name)
    os.replace(path, aside)
    try:
        os.replace(staging, path)
    except BaseException:
        os.replace(aside, path)
        raise
    shutil.rmtree(aside, ignore_errors=True)


# ----------------------------------------------------------------------------- fsync


def _fsync(path: Path) -> None:
    """Flush a file's data, or a folder's entries, to the disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_tree(folder: Path) -> None:
    for parent, folders, files in os.walk(folder):
        for name in files:
            _fsync(Path(parent, name))
        _fsync(Path(parent))


# ----------------------------------------------------------------------------- stray temporaries


def temporary_name(target_name: str) -> str:
    """A hidden name next to the target that says whose it is: ``.{target}.{host}-{pid}-{random}.tmp``."""
    return f".{target_name}.{_HOST}-{os.getpid()}-{secrets.token_hex(4)}.tmp"


def remove_stale_temporaries(folder: Path, *, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove the temporaries in ``folder`` that no write will finish (see the module docstring); the
    paths removed.  Other files, and temporaries of live writers, are left alone; errors are ignored
    (a read-only folder is not this function's problem)."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if _is_stale(entry, older_than_s):
                _remove(Path(entry.path))
                removed.append(Path(entry.path))
    return removed


def _is_stale(entry: os.DirEntry[str], older_than_s: float) -> bool:
    match = _TEMPORARY.match(entry.name)
    if match is None:
        return False
    if match["host"] == _HOST and not _process_alive(int(match["pid"])):
        return True
    with contextlib.suppress(OSError):
        return time.time() - entry.stat(follow_symlinks=False).st_mtime > older_than_s
    return False


def _process_alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie, killed but not yet reaped, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- failed writes

_CAUSES = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder, not a file",
    errno.EEXIST: "a file, or a link to nowhere, stands where a folder must be",
    errno.ENOENT: "a folder on the path does not exist (or is a link to nowhere)",
    errno.ELOOP: "a link on the path points at itself",
    errno.ENAMETOOLONG: "the name is too long",
}
_UNWRITABLE: dict[str, str] = {}  # cache folder -> why it could not be written, in this process


def os_error_cause(error: OSError) -> str:
    """An OSError's cause in a few words ("no space left on the device"), whatever file it names."""
    return _CAUSES.get(error.errno or 0, (error.strerror or error.__class__.__name__).lower())


def cache_write(folder: Path, write: Callable[[], T]) -> T | None:
    """``write()``; when it fails with an OSError, None, and ``folder`` is remembered as unwritable (told once)."""
    try:
        return write()
    except OSError as error:
        _UNWRITABLE.setdefault(str(folder), os_error_cause(error))
        return None


def forget_unwritable() -> None:
    """Start a run with no cache folder known to be unwritable (a second run in one process, pytester's included,
    would otherwise be told of the first one's folders)."""
    _UNWRITABLE.clear()


def unwritable_caches() -> dict[str, str]:
    """The cache folders this process could not write, with why: the run says so once and goes on without them."""
    return dict(_UNWRITABLE)


def unwritable_sentence(folder: str, cause: str) -> str:
    return (
        f"the cache folder {folder} cannot be written ({cause}): this run went on without caching there, so the next run "
        "computes the same results again; free the disk or point EDITGUARD_CACHE_DIR at a writable folder"
    )


# ----------------------------------------------------------------------------- compute once


@dataclass(frozen=True)
class Computed(Generic[T]):
    value: T
    computed: bool  # True when this call computed it, False when it was already there


def lock_path(target: Path) -> Path:
    return Path(str(target) + ".lock")


def compute_once(
    target: Path,
    is_done: Callable[[], bool],
    compute: Callable[[], T],
    read: Callable[[], T],
    *,
    lock: Path | None = None,
) -> Computed[T]:
    """``read()`` when ``is_done()``; otherwise, under a file lock (``<target>.lock`` by default) so that
    concurrent processes wait for the one computing, check again and ``compute()`` (which writes).

    The first check takes no lock: writes are atomic, so a finished result can be read while another
    process holds the lock.
    """
    if is_done():
        return Computed(read(), computed=False)
    lock = lock or lock_path(target)
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        held = FileLock(str(lock))
        held.acquire()
    except OSError as error:  # the cache cannot be written: compute here, unlocked (compute's write fails too)
        _UNWRITABLE.setdefault(str(lock.parent), os_error_cause(error))
        return Computed(compute(), computed=True)
    try:
        if is_done():
            return Computed(read(), computed=False)
        return Computed(compute(), computed=True)
    finally:
        held.release()
