"""Durable file writes: whole files replaced atomically, fsynced appends, one-line errors.

``write_atomic`` writes a temporary file with a unique name in the target's own directory, fsyncs
it, renames it over the target and fsyncs the directory: a reader, a crash or a kill sees the old
bytes or the new ones, never a mix, and two writers never share a temporary path. ``replacing``
does the same for a writer that wants a path to write to (pyarrow's Parquet writer). ``append_synced``
appends to an open file and fsyncs it; ``append_file`` opens, appends and closes. A temporary file
is removed whatever stops the write. Every failure is a ``FileWriteError``, an ``OSError`` whose
message is one line naming the file: ``cannot write PATH: No space left on device``.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["FileWriteError", "append_file", "append_synced", "fsync_dir", "replacing", "temp_path", "write_atomic"]


class FileWriteError(OSError):
    """A file could not be written; ``str()`` is ``cannot write PATH: REASON`` (one line)."""

    def __init__(self, path: str | os.PathLike[str], cause: OSError) -> None:
        reason = cause.strerror or str(cause) or type(cause).__name__
        super().__init__(cause.errno, reason, os.fspath(path))

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {' '.join(str(self.strerror).split())}"


def temp_path(path: str | os.PathLike[str]) -> Path:
    """A temporary name beside ``path`` that no other writer (process or thread) uses."""
    p = Path(path)
    return p.with_name(f".{p.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make a rename or a new file in ``directory`` durable (a no-op where directories cannot be fsynced)."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A unique temporary path beside ``path`` for the caller to write; when the block ends without an
    exception the file is fsynced and renamed over ``path`` and the directory fsynced. The temporary
    file never outlives the block. An ``OSError`` becomes a ``FileWriteError`` naming ``path``."""
    target = Path(path)
    tmp = temp_path(target)
    try:
        yield tmp
        _fsync_path(tmp)
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except FileWriteError:
        raise
    except OSError as exc:
        raise FileWriteError(target, exc) from None
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def write_atomic(path: str | os.PathLike[str], data: bytes | Iterable[bytes]) -> None:
    """Replace ``path`` with ``data`` (bytes, or an iterable of byte chunks) atomically and durably.

    The parent directory must exist. The new file gets the usual mode (0666 less the umask).
    """
    with replacing(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, (bytes, bytearray, memoryview)):
                handle.write(data)
            else:
                for chunk in data:
                    handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())


def append_synced(handle: BinaryIO, data: bytes) -> None:
    """Append ``data`` to a file opened for appending and fsync it; a failure names the file.

    The bytes go straight to the descriptor, so a failed append leaves nothing buffered in ``handle``
    for a later ``close`` to retry (the file may end in a cut line, which readers skip).
    """
    try:
        handle.flush()
        fd = handle.fileno()
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except OSError as exc:
        raise FileWriteError(str(getattr(handle, "name", "?")), exc) from None


def append_file(path: str | os.PathLike[str], data: bytes, *, sync: bool = True) -> None:
    """Open ``path`` for appending (creating it), append ``data``, fsync it unless ``sync`` is False."""
    try:
        with open(path, "ab") as handle:
            handle.write(data)
            handle.flush()
            if sync:
                os.fsync(handle.fileno())
    except OSError as exc:
        raise FileWriteError(path, exc) from None
