"""Writing files so that a crash, Ctrl-C or a full disk never leaves half of one behind.

A file is written under a hidden temporary name in its destination folder
(``.NAME.<pid>-<random>.partial``), fsynced, renamed over the destination, and the
folder is fsynced so that the rename itself survives a power loss. A process killed
mid-write (SIGKILL, power loss) leaves only its temporary file, never a truncated
destination; the next writer of the same destination deletes it (`remove_orphans`).
"""

from __future__ import annotations

import json
import os
import stat
import sys
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file in the same folder and a rename.

    The file is fsynced before the rename, so `path` holds either the old content or all
    of the new. Temporary files that killed writers left for `path` are deleted first.
    Returns the path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix, suffix = f".{path.name}.", ".partial"
    remove_orphans(path.parent, prefix, suffix)
    fd, tmp = tempfile.mkstemp(prefix=f"{prefix}{os.getpid()}-", suffix=suffix, dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_folder(path.parent)
    return path


def read_regular_file(path: str | os.PathLike, limit: int | None = None) -> bytes:
    """The bytes of `path` (at most `limit`), refusing anything but a regular file.

    Opened without blocking and checked before reading, so a FIFO or a device named like
    a model or preset is an error instead of a hang or an endless read. Raises OSError
    (FileNotFoundError, PermissionError, ...) or ValueError (a directory, a pipe, socket
    or device, a NUL byte in the name), each with a one-line reason.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ValueError("is a directory, not a file")
        if not stat.S_ISREG(mode):
            raise ValueError("not a regular file (a pipe, socket or device)")
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as f:
        return f.read() if limit is None else f.read(limit)


def fsync_file(path: str | os.PathLike) -> None:
    """Make sure a written file's data is on disk (before a rename publishes it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: str | os.PathLike) -> None:
    """Make a rename in `folder` durable (a no-op where folders cannot be fsynced)."""
    if sys.platform == "win32":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse to fsync a folder; the data is synced
        pass
    finally:
        os.close(fd)


def remove_orphans(folder: str | os.PathLike, prefix: str, suffix: str) -> list[Path]:
    """Delete the temporary files ``PREFIX<pid>-...SUFFIX`` in `folder` whose writing
    process is gone (killed mid-write); returns what was deleted.

    Files of running processes (another writer of the same destination) are kept, and so
    are names without a process id.
    """
    try:
        candidates = [
            p for p in Path(folder).iterdir() if p.name.startswith(prefix) and p.name.endswith(suffix)
        ]
    except OSError:
        return []
    removed = []
    for p in candidates:
        pid = p.name[len(prefix) : len(p.name) - len(suffix)].split("-")[0]
        if pid.isdigit() and not process_alive(int(pid)):
            try:
                p.unlink()
            except OSError:
                continue
            removed.append(p)
    return removed


def process_alive(pid: int) -> bool:
    """Whether process `pid` exists (True when it cannot be told)."""
    if sys.platform == "win32":  # os.kill(pid, 0) would terminate the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists but belongs to someone else, or cannot tell: keep the file
    return True


def names_folder(path: str | os.PathLike) -> bool:
    """Whether `path` names a folder: an existing one, or one to be made (a path that ends
    in a separator, `videos/`). Give the text as typed: `Path` drops a final slash."""
    text = os.fspath(path)
    return text.endswith(("/", "\\")) or Path(text).is_dir()


def make_parent(path: str | os.PathLike) -> Path:
    """Create the folder `path` goes in, and its missing parents; returns `path`.

    Every command that writes a file (`render -o`, `record:`, `eval --report/--json`,
    `train --out`) creates the folders it needs the same way. OSError (naming the folder)
    when one cannot be made, e.g. a file is in the way.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_json(data, path: str | os.PathLike) -> Path:
    """Write `data` as one indented JSON document, atomically."""
    return atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode("utf-8"))
