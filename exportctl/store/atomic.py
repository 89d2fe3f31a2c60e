"""Crash-safe file writes: the only way the store puts bytes on disk.

Everything is written to a `.tmp-*` sibling, fsynced, then renamed over the final name, because rename
within a directory is atomic on POSIX: a reader (or a crash) sees the old file or the new one, never a
partial one. Leftover `.tmp-*` files are harmless litter that no reader ever treats as content.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from exportctl.canonical import DIGEST_ALGORITHM
from exportctl.errors import StoreError

TEMP_PREFIX = ".tmp-"


def temp_prefix() -> str:
    """`.tmp-<pid>-`: a temp name says which process owns it, so `gc` removes only those of dead processes."""
    return f"{TEMP_PREFIX}{os.getpid()}-"


def temp_owner(name: str) -> int | None:
    """The PID in a temp name made by `temp_prefix` (None for other names, or older temp names)."""
    if not name.startswith(TEMP_PREFIX):
        return None
    pid = name[len(TEMP_PREFIX):].split("-", 1)[0]
    return int(pid) if pid.isdigit() and len(pid) < 10 else None


def temp_sibling(directory: Path, stem: str = "") -> Path:
    """A fresh, unguessable `.tmp-*` name in `directory`; same directory so the final rename is atomic."""
    return directory / f"{temp_prefix()}{stem}{secrets.token_hex(8)}"


def fsync_dir(directory: Path) -> None:
    """Make a rename durable: without this a power cut can forget the new directory entry."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_space(store: Path, directory: Path, size: int) -> None:
    """StoreError (6) naming the store and the bytes needed, before a write that cannot fit begins."""
    directory.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(directory).free
    if size > free:
        raise no_space(store, size, free)


def no_space(store: Path, needed: int, free: int | None = None) -> StoreError:
    have = f", {free} bytes free" if free is not None else ""
    return StoreError(f"no space left in the store at {store}: writing needs {needed} bytes{have}",
                      hint="free space on its filesystem (`exportctl gc` removes what nothing references) "
                           "and run again; nothing already stored was changed")


def write_temp(directory: Path, chunks: Iterable[bytes], store: Path | None = None) -> tuple[Path, str, int]:
    """Write `chunks` to a new fsynced temp file in `directory`; return (path, digest, size).

    Hashing while writing (rather than canonical.digest_file afterwards) saves a second read of
    artifacts that can be hundreds of MB.
    """
    directory.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(directory)
    hasher, size = hashlib.new(DIGEST_ALGORITHM), 0
    try:
        with open(tmp, "xb") as f:
            for chunk in chunks:
                hasher.update(chunk)
                size += len(chunk)  # before the write: a full disk reports what this write needed
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise no_space(store or directory, size + sum(len(c) for c in chunks)) from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, f"{DIGEST_ALGORITHM}:{hasher.hexdigest()}", size


def commit(tmp: Path, final: Path) -> None:
    """Rename a finished temp file (or directory) onto its final name, durably."""
    try:
        os.replace(tmp, final)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise
    fsync_dir(final.parent)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so readers see the old or the new content, never a torn mix."""
    tmp, _, _ = write_temp(path.parent, [data])
    commit(tmp, path)


_FICLONE = 0x40049409  # linux/fs.h: share the extents copy-on-write (btrfs, XFS); the bytes stay independent


def clone_or_copy(src: Path, dst: Path) -> None:
    """An independent copy of `src`: a reflink where the filesystem offers one, else the bytes. Never a hard
    link, so writing to `dst` can never change `src` (what leaves the store cannot reach back into it)."""
    import fcntl

    with open(src, "rb") as source, open(dst, "xb") as target:
        try:
            fcntl.ioctl(target.fileno(), _FICLONE, source.fileno())
            return
        except OSError:  # not supported here (ext4, tmpfs, across filesystems): copy
            pass
        shutil.copyfileobj(source, target, 1 << 20)


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link when possible (free and instant); copy across filesystems or where links are refused."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


@contextlib.contextmanager
def new_directory(dest: Path) -> Iterator[Path]:
    """A temp sibling of `dest` to fill, renamed onto `dest` once the block ends without error.

    `dest` must be new or empty; an interrupted writer leaves no half-written directory under its name.
    """
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise StoreError(f"cannot export to {dest}: it exists and is not empty", hint="choose a new directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(dest.parent, f"{dest.name}-")
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    commit(tmp, dest)  # rename(2) may replace an empty directory


@contextlib.contextmanager
def scratch_dir(near: Path | None = None, prefix: str = "exportctl-") -> Iterator[Path]:
    """A fresh directory, removed afterwards. Under `near` when it is writable (same filesystem as the store,
    so hard links into it are free), else in the system's temp dir."""
    path: Path | None = None
    if near is not None:
        with contextlib.suppress(OSError):  # a read-only store: fall back to the system's temp dir
            near.mkdir(parents=True, exist_ok=True)
            path = Path(tempfile.mkdtemp(prefix=temp_prefix(), dir=near))
    if path is None:
        path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
